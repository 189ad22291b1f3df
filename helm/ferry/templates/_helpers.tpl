{{/*
Chart name, truncated to the 63 characters of a DNS label.
*/}}
{{- define "ferry.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Fully qualified name: "<release>-<chart>", or the release name when it already contains the
chart name, or fullnameOverride.
*/}}
{{- define "ferry.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/*
"<chart>-<version>" for the helm.sh/chart label.
*/}}
{{- define "ferry.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Labels on every resource.
*/}}
{{- define "ferry.labels" -}}
helm.sh/chart: {{ include "ferry.chart" . }}
{{ include "ferry.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: ferry
{{- end }}

{{/*
Selector labels (immutable in a Deployment: never add to them).
*/}}
{{- define "ferry.selectorLabels" -}}
app.kubernetes.io/name: {{ include "ferry.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
ServiceAccount name.
*/}}
{{- define "ferry.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "ferry.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
Image reference: repository[:tag][@digest]; the tag defaults to the chart's appVersion.
*/}}
{{- define "ferry.image" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag }}
{{- if .Values.image.digest }}
{{- printf "%s:%s@%s" .Values.image.repository $tag .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository $tag }}
{{- end }}
{{- end }}

{{/*
Name of the Secret holding the signing key.
*/}}
{{- define "ferry.signingKeySecretName" -}}
{{- default (printf "%s-signing-key" (include "ferry.fullname" .)) .Values.signingKey.existingSecret }}
{{- end }}

{{/*
Name of the PVC for /var/lib/ferry.
*/}}
{{- define "ferry.dataClaimName" -}}
{{- default (printf "%s-data" (include "ferry.fullname" .)) .Values.persistence.existingClaim }}
{{- end }}

{{/*
Whether a PodDisruptionBudget is rendered: forced by value, or automatic with several replicas.
*/}}
{{- define "ferry.pdbEnabled" -}}
{{- if or .Values.podDisruptionBudget.enabled (gt (int .Values.replicaCount) 1) }}true{{ end }}
{{- end }}

{{/*
Render-time checks of combinations the schema cannot express. Fails the render with a message.
*/}}
{{- define "ferry.validate" -}}
{{- $config := .Values.config | default dict }}
{{- $store := get $config "store" | default dict }}
{{- if and (gt (int .Values.replicaCount) 1) (not (get $store "postgres")) }}
{{- fail (printf "replicaCount is %d but config.store has no postgres: several replicas need the PostgreSQL store (config.store.postgres, with config.store.sqlite set to null); SQLite is one database per pod" (int .Values.replicaCount)) }}
{{- end }}
{{- if and (get $store "postgres") (get $store "sqlite") }}
{{- fail "config.store sets both sqlite and postgres: keep one (set config.store.sqlite to null to use PostgreSQL)" }}
{{- end }}
{{- $server := get $config "server" | default dict }}
{{- $listen := get $server "listen" | default "" | toString }}
{{- if not (hasSuffix (printf ":%d" (int .Values.containerPort)) $listen) }}
{{- fail (printf "config.server.listen (%q) must listen on containerPort %d, e.g. \"0.0.0.0:%d\"" $listen (int .Values.containerPort) (int .Values.containerPort)) }}
{{- end }}
{{- if or (hasPrefix "127." $listen) (hasPrefix "localhost:" $listen) (hasPrefix "[::1]:" $listen) }}
{{- fail (printf "config.server.listen (%q) is a loopback address: the probes and the Service cannot reach it; use \"0.0.0.0:%d\"" $listen (int .Values.containerPort)) }}
{{- end }}
{{- end }}
