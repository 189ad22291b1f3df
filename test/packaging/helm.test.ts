// The Helm chart (helm/ferry): `helm lint --strict` and `helm template` with the real helm binary,
// offline, and assertions on the rendered objects.

import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse, parseAllDocuments, stringify } from "yaml";
import { helmBinary, type RunResult, repoRoot, runHelm } from "../support/helm.ts";

const chart = join(repoRoot, "helm", "ferry");
const release = "ferry";

interface Metadata {
  name: string;
  namespace?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

interface Manifest {
  apiVersion: string;
  kind: string;
  metadata: Metadata;
  data?: Record<string, string>;
  spec?: unknown;
}

interface Probe {
  httpGet?: { path: string; port: string | number };
}

interface Container {
  name: string;
  image: string;
  args?: string[];
  ports?: { name: string; containerPort: number }[];
  env?: { name: string; value?: string }[];
  envFrom?: { secretRef?: { name: string } }[];
  securityContext?: {
    runAsNonRoot?: boolean;
    runAsUser?: number;
    readOnlyRootFilesystem?: boolean;
    allowPrivilegeEscalation?: boolean;
    privileged?: boolean;
    capabilities?: { drop?: string[]; add?: string[] };
    seccompProfile?: { type: string };
  };
  livenessProbe?: Probe;
  readinessProbe?: Probe;
  startupProbe?: Probe;
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
  volumeMounts?: { name: string; mountPath: string; subPath?: string; readOnly?: boolean }[];
}

interface Volume {
  name: string;
  configMap?: { name: string };
  secret?: { secretName: string; items?: { key: string; path: string }[] };
  emptyDir?: { sizeLimit?: string; medium?: string };
  persistentVolumeClaim?: { claimName: string };
}

interface DeploymentSpec {
  replicas: number;
  strategy?: { type: string };
  selector: { matchLabels: Record<string, string> };
  template: {
    metadata: { annotations?: Record<string, string>; labels: Record<string, string> };
    spec: {
      serviceAccountName: string;
      automountServiceAccountToken?: boolean;
      enableServiceLinks?: boolean;
      securityContext?: {
        runAsNonRoot?: boolean;
        runAsUser?: number;
        fsGroup?: number;
        seccompProfile?: { type: string };
      };
      containers: Container[];
      volumes: Volume[];
    };
  };
}

let work: string;

beforeAll(async () => {
  await helmBinary(); // extract once, before the tests run in parallel with it
  work = await mkdtemp(join(tmpdir(), "ferry-helm-values-"));
});

afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

let valuesFiles = 0;

/** Writes a values file and returns the `-f` arguments for it. */
async function valuesFile(values: unknown): Promise<string[]> {
  const path = join(work, `values-${++valuesFiles}.yaml`);
  await writeFile(path, typeof values === "string" ? values : stringify(values));
  return ["-f", path];
}

async function helm(args: string[]): Promise<RunResult> {
  return runHelm(args);
}

function failure(result: RunResult): string {
  return `helm exited ${result.code}\n${result.stdout}\n${result.stderr}`;
}

async function lint(args: string[] = []): Promise<RunResult> {
  return helm(["lint", "--strict", chart, ...args]);
}

async function render(args: string[] = []): Promise<Manifest[]> {
  const result = await helm(["template", release, chart, "--namespace", "ferry", ...args]);
  expect(result.code, failure(result)).toBe(0);
  const docs = parseAllDocuments(result.stdout);
  const manifests: Manifest[] = [];
  for (const doc of docs) {
    expect(doc.errors, `invalid YAML from helm template: ${doc.errors.join("; ")}`).toEqual([]);
    const value = doc.toJS() as Manifest | null;
    if (value) manifests.push(value);
  }
  return manifests;
}

function find(manifests: Manifest[], kind: string): Manifest | undefined {
  return manifests.find((m) => m.kind === kind);
}

function get(manifests: Manifest[], kind: string): Manifest {
  const found = find(manifests, kind);
  if (!found) throw new Error(`no ${kind} in ${manifests.map((m) => m.kind).join(", ")}`);
  return found;
}

function deployment(manifests: Manifest[]): DeploymentSpec {
  return get(manifests, "Deployment").spec as DeploymentSpec;
}

function ferryContainer(manifests: Manifest[]): Container {
  const container = deployment(manifests).template.spec.containers.find((c) => c.name === "ferry");
  if (!container) throw new Error("no ferry container");
  return container;
}

function checksum(manifests: Manifest[]): string | undefined {
  return deployment(manifests).template.metadata.annotations?.["checksum/config"];
}

/** Everything optional switched on, on the single-replica SQLite layout. */
const allOnSingle = [
  "--set",
  "podDisruptionBudget.enabled=true",
  "--set",
  "networkPolicy.enabled=true",
  "--set",
  "networkPolicy.egress.restrict=true",
  "--set",
  "serviceMonitor.enabled=true",
  "--set",
  "serviceMonitor.labels.release=prometheus",
  "--set",
  "persistence.enabled=true",
  "--set",
  "persistence.storageClass=fast",
  "--set",
  `image.digest=sha256:${"ab".repeat(32)}`,
  "--set",
  "tmp.medium=Memory",
  "--set",
  "envFrom[0].secretRef.name=ferry-env",
  "--set",
  "env[0].name=LOG_LEVEL",
  "--set",
  "env[0].value=debug",
  "--set",
  "priorityClassName=high",
];

/** Several replicas on PostgreSQL, with everything optional on. */
const allOnHa = [
  "--set",
  "replicaCount=3",
  "--set",
  "config.store.sqlite=null",
  "--set",
  "config.store.postgres=${FERRY_DATABASE_URL}",
  "--set",
  "networkPolicy.enabled=true",
  "--set",
  "networkPolicy.ingressFrom[0].namespaceSelector.matchLabels.name=ci",
  "--set",
  "networkPolicy.egress.restrict=true",
  "--set",
  "networkPolicy.egress.rules[0].ports[0].port=5432",
  "--set",
  "serviceMonitor.enabled=true",
  "--set",
  "serviceMonitor.namespace=monitoring",
  "--set",
  "podDisruptionBudget.maxUnavailable=1",
  "--set",
  "envFrom[0].secretRef.name=ferry-db",
];

describe("helm chart helm/ferry", () => {
  it("finds a working helm binary", async () => {
    const result = await helm(["version", "--short"]);
    expect(result.code, failure(result)).toBe(0);
    expect(result.stdout).toMatch(/^v[34]\.\d+\.\d+/);
  });

  it("passes helm lint --strict with the default values", async () => {
    const result = await lint();
    expect(result.code, failure(result)).toBe(0);
    expect(result.stdout).toContain("0 chart(s) failed");
  });

  it("passes helm lint --strict with every optional part on (single replica, SQLite on a PVC)", async () => {
    const result = await lint(allOnSingle);
    expect(result.code, failure(result)).toBe(0);
  });

  it("passes helm lint --strict with every optional part on (three replicas on PostgreSQL)", async () => {
    const result = await lint(allOnHa);
    expect(result.code, failure(result)).toBe(0);
  });

  it("renders the core objects by default and no optional ones", async () => {
    const manifests = await render();
    expect(manifests.map((m) => m.kind).sort()).toEqual([
      "ConfigMap",
      "Deployment",
      "Service",
      "ServiceAccount",
    ]);
    for (const m of manifests) {
      expect(m.metadata.namespace).toBe("ferry");
      expect(m.metadata.labels?.["app.kubernetes.io/name"]).toBe("ferry");
      expect(m.metadata.labels?.["app.kubernetes.io/instance"]).toBe(release);
    }
    const sa = get(manifests, "ServiceAccount") as Manifest & { automountServiceAccountToken?: boolean };
    expect(sa.automountServiceAccountToken).toBe(false);
    const service = get(manifests, "Service").spec as {
      selector: Record<string, string>;
      ports: { port: number; targetPort: string }[];
    };
    expect(service.selector).toEqual(deployment(manifests).selector.matchLabels);
    expect(service.ports[0]).toMatchObject({ port: 8080, targetPort: "http" });
  });

  it("locks the Ferry pod down: non-root, read-only root FS, no privilege escalation, no capabilities", async () => {
    const manifests = await render();
    const pod = deployment(manifests).template.spec;
    expect(pod.securityContext).toMatchObject({
      runAsNonRoot: true,
      runAsUser: 10001,
      fsGroup: 10001,
      seccompProfile: { type: "RuntimeDefault" },
    });
    expect(pod.automountServiceAccountToken).toBe(false);
    expect(pod.enableServiceLinks).toBe(false);
    const container = ferryContainer(manifests);
    expect(container.securityContext).toMatchObject({
      runAsNonRoot: true,
      readOnlyRootFilesystem: true,
      allowPrivilegeEscalation: false,
      privileged: false,
      capabilities: { drop: ["ALL"] },
      seccompProfile: { type: "RuntimeDefault" },
    });
    expect(container.securityContext?.runAsUser).toBeGreaterThan(0);
    expect(container.securityContext?.capabilities?.add).toBeUndefined();
    expect(container.image).toBe("ferry:0.1.0");
    expect(container.args).toEqual(["serve", "--config", "/etc/ferry/ferry.yaml"]);
  });

  it("probes /healthz for liveness and /readyz for readiness on the http port", async () => {
    const container = ferryContainer(await render());
    expect(container.ports).toEqual([{ name: "http", containerPort: 8080, protocol: "TCP" }]);
    expect(container.livenessProbe?.httpGet).toEqual({ path: "/healthz", port: "http" });
    expect(container.readinessProbe?.httpGet).toEqual({ path: "/readyz", port: "http" });
    expect(container.startupProbe?.httpGet).toEqual({ path: "/healthz", port: "http" });
  });

  it("sets resource requests and a memory limit", async () => {
    const { resources } = ferryContainer(await render());
    expect(resources?.requests?.cpu).toBeTruthy();
    expect(resources?.requests?.memory).toBeTruthy();
    expect(resources?.limits?.memory).toBeTruthy();
  });

  it("ships ferry.yaml in a ConfigMap mounted at /etc/ferry/ferry.yaml, the key from a Secret, writable data and /tmp", async () => {
    const manifests = await render();
    const configMap = get(manifests, "ConfigMap");
    const text = configMap.data?.["ferry.yaml"];
    expect(text).toBeTypeOf("string");
    const config = parse(text ?? "") as {
      server: { listen: string; publicUrl: string };
      store: { sqlite?: string; postgres?: string };
      keys: { signing: string };
    };
    expect(config.server.listen).toBe("0.0.0.0:8080");
    expect(config.store).toEqual({ sqlite: "/var/lib/ferry/ferry.db" });
    expect(config.keys.signing).toBe("/etc/ferry/keys/signing.pem");

    const spec = deployment(manifests).template.spec;
    const mounts = ferryContainer(manifests).volumeMounts ?? [];
    const mount = (path: string) => mounts.find((m) => m.mountPath === path);
    const volume = (name: string | undefined) => spec.volumes.find((v) => v.name === name);

    const configMount = mount("/etc/ferry/ferry.yaml");
    expect(configMount).toMatchObject({ subPath: "ferry.yaml", readOnly: true });
    expect(volume(configMount?.name)?.configMap?.name).toBe(configMap.metadata.name);

    const keyMount = mount("/etc/ferry/keys");
    expect(keyMount?.readOnly).toBe(true);
    expect(volume(keyMount?.name)?.secret).toMatchObject({
      secretName: "ferry-signing-key",
      items: [{ key: "signing.pem", path: "signing.pem" }],
    });

    expect(volume(mount("/var/lib/ferry")?.name)?.emptyDir).toBeDefined();
    expect(volume(mount("/tmp")?.name)?.emptyDir).toBeDefined();
    // Nothing else is writable: every other mount is read-only.
    for (const m of mounts) {
      if (m.mountPath !== "/var/lib/ferry" && m.mountPath !== "/tmp")
        expect(m.readOnly, m.mountPath).toBe(true);
    }
  });

  it("takes the signing key from the named existing Secret and env from values and Secrets", async () => {
    const manifests = await render([
      ...(await valuesFile({
        signingKey: { existingSecret: "prod-ferry-key", secretKey: "key.pem" },
        config: { keys: { signing: "/etc/ferry/keys/key.pem" } },
        env: [{ name: "LOG_LEVEL", value: "info" }],
        envFrom: [{ secretRef: { name: "ferry-env" } }],
      })),
    ]);
    const spec = deployment(manifests).template.spec;
    expect(spec.volumes.find((v) => v.secret)?.secret).toMatchObject({
      secretName: "prod-ferry-key",
      items: [{ key: "key.pem", path: "key.pem" }],
    });
    const container = ferryContainer(manifests);
    expect(container.env).toEqual([{ name: "LOG_LEVEL", value: "info" }]);
    expect(container.envFrom).toEqual([{ secretRef: { name: "ferry-env" } }]);
    expect(find(manifests, "Secret")).toBeUndefined();
  });

  it("changes the config checksum annotation when, and only when, the config changes", async () => {
    const base = checksum(await render());
    expect(base).toMatch(/^[0-9a-f]{64}$/);
    const changed = checksum(await render(["--set", "config.server.publicUrl=https://ferry.acme.test"]));
    expect(changed).toMatch(/^[0-9a-f]{64}$/);
    expect(changed).not.toBe(base);
    const unrelated = checksum(await render(["--set", "podAnnotations.team=platform"]));
    expect(unrelated).toBe(base);
  });

  it("creates the PodDisruptionBudget with several replicas, or when asked, and not otherwise", async () => {
    expect(find(await render(), "PodDisruptionBudget")).toBeUndefined();

    const ha = await render(allOnHa);
    expect(deployment(ha).replicas).toBe(3);
    const pdb = get(ha, "PodDisruptionBudget").spec as {
      maxUnavailable?: number;
      minAvailable?: number;
      selector: { matchLabels: Record<string, string> };
    };
    expect(pdb.maxUnavailable).toBe(1);
    expect(pdb.minAvailable).toBeUndefined();
    expect(pdb.selector.matchLabels).toEqual(deployment(ha).selector.matchLabels);
    expect(parse(get(ha, "ConfigMap").data?.["ferry.yaml"] ?? "").store).toEqual({
      postgres: "${FERRY_DATABASE_URL}",
    });

    const threeDefault = await render([
      ...(await valuesFile({ replicaCount: 3, config: { store: { sqlite: null, postgres: "${DB}" } } })),
    ]);
    expect((get(threeDefault, "PodDisruptionBudget").spec as { minAvailable: number }).minAvailable).toBe(1);

    const forced = await render(["--set", "podDisruptionBudget.enabled=true"]);
    expect(get(forced, "PodDisruptionBudget")).toBeDefined();
  });

  it("renders the NetworkPolicy and the ServiceMonitor only when enabled", async () => {
    const defaults = await render();
    expect(find(defaults, "NetworkPolicy")).toBeUndefined();
    expect(find(defaults, "ServiceMonitor")).toBeUndefined();

    const single = await render(allOnSingle);
    const netpol = get(single, "NetworkPolicy").spec as {
      podSelector: { matchLabels: Record<string, string> };
      policyTypes: string[];
      ingress: { ports: { port: string | number }[]; from?: unknown[] }[];
      egress?: { ports?: { port: number; protocol: string }[] }[];
    };
    expect(netpol.podSelector.matchLabels).toEqual(deployment(single).selector.matchLabels);
    expect(netpol.policyTypes).toEqual(["Ingress", "Egress"]);
    expect(netpol.ingress[0]?.ports).toEqual([{ port: "http", protocol: "TCP" }]);
    expect(netpol.ingress[0]?.from).toBeUndefined();
    expect(netpol.egress?.[0]?.ports?.map((p) => p.port)).toEqual([53, 53]);

    const monitor = get(single, "ServiceMonitor");
    expect(monitor.apiVersion).toBe("monitoring.coreos.com/v1");
    expect(monitor.metadata.labels?.release).toBe("prometheus");
    const endpoints = (monitor.spec as { endpoints: { port: string; path: string }[] }).endpoints;
    expect(endpoints).toEqual([expect.objectContaining({ port: "http", path: "/metrics" })]);

    const ha = await render(allOnHa);
    const haNetpol = get(ha, "NetworkPolicy").spec as {
      ingress: { from?: unknown[] }[];
      egress: { ports?: { port: number }[] }[];
    };
    expect(haNetpol.ingress[0]?.from).toEqual([{ namespaceSelector: { matchLabels: { name: "ci" } } }]);
    expect(haNetpol.egress.at(-1)?.ports).toEqual([{ port: 5432 }]);
    expect(get(ha, "ServiceMonitor").metadata.namespace).toBe("monitoring");

    const ingressOnly = await render(["--set", "networkPolicy.enabled=true"]);
    const ingressOnlySpec = get(ingressOnly, "NetworkPolicy").spec as {
      policyTypes: string[];
      egress?: unknown;
    };
    expect(ingressOnlySpec.policyTypes).toEqual(["Ingress"]);
    expect(ingressOnlySpec.egress).toBeUndefined();
  });

  it("keeps /var/lib/ferry on a PVC with persistence, recreating pods instead of rolling them", async () => {
    const manifests = await render(allOnSingle);
    const pvc = get(manifests, "PersistentVolumeClaim");
    expect(pvc.metadata.annotations?.["helm.sh/resource-policy"]).toBe("keep");
    expect(pvc.spec).toMatchObject({
      accessModes: ["ReadWriteOnce"],
      storageClassName: "fast",
      resources: { requests: { storage: "1Gi" } },
    });
    const spec = deployment(manifests);
    expect(spec.strategy).toEqual({ type: "Recreate" });
    const data = spec.template.spec.volumes.find((v) => v.name === "data");
    expect(data?.persistentVolumeClaim?.claimName).toBe(pvc.metadata.name);
    expect(ferryContainer(manifests).image).toBe(`ferry:0.1.0@sha256:${"ab".repeat(32)}`);
    expect(spec.template.spec.volumes.find((v) => v.name === "tmp")?.emptyDir?.medium).toBe("Memory");

    const existing = await render([
      "--set",
      "persistence.enabled=true",
      "--set",
      "persistence.existingClaim=mine",
    ]);
    expect(find(existing, "PersistentVolumeClaim")).toBeUndefined();
    expect(
      deployment(existing).template.spec.volumes.find((v) => v.name === "data")?.persistentVolumeClaim,
    ).toEqual({
      claimName: "mine",
    });
  });

  it("refuses several replicas on SQLite, a listen port other than containerPort, and a loopback listen", async () => {
    const sqlite = await helm(["template", release, chart, "--set", "replicaCount=2"]);
    expect(sqlite.code).not.toBe(0);
    expect(sqlite.stderr).toContain("several replicas need the PostgreSQL store");

    const port = await helm(["template", release, chart, "--set", "config.server.listen=0.0.0.0:9090"]);
    expect(port.code).not.toBe(0);
    expect(port.stderr).toContain("must listen on containerPort 8080");

    const loopback = await helm(["template", release, chart, "--set", "config.server.listen=127.0.0.1:8080"]);
    expect(loopback.code).not.toBe(0);
    expect(loopback.stderr).toContain("loopback");

    const both = await helm(["template", release, chart, "--set", "config.store.postgres=${DB}"]);
    expect(both.code).not.toBe(0);
    expect(both.stderr).toContain("both sqlite and postgres");
  });

  it("fails lint when values break the schema", async () => {
    const badReplicas = await lint(await valuesFile("replicaCount: two\n"));
    expect(badReplicas.code).not.toBe(0);
    expect(`${badReplicas.stdout}${badReplicas.stderr}`).toMatch(/replicaCount/);

    const typo = await lint(await valuesFile({ replicas: 2 }));
    expect(typo.code).not.toBe(0);
    expect(`${typo.stdout}${typo.stderr}`).toMatch(/replicas/);

    const badPolicy = await lint(await valuesFile({ image: { pullPolicy: "Sometimes" } }));
    expect(badPolicy.code).not.toBe(0);
  });

  it("documents every value of values.yaml in docs/deployment.md", async () => {
    const values = parse(await readFile(join(chart, "values.yaml"), "utf8")) as Record<string, unknown>;
    const docs = await readFile(join(repoRoot, "docs", "deployment.md"), "utf8");
    const keys: string[] = [];
    const walk = (node: unknown, prefix: string) => {
      if (node && typeof node === "object" && !Array.isArray(node) && Object.keys(node).length > 0) {
        // config is ferry.yaml itself (documented as a whole); probes and security contexts are
        // Kubernetes objects documented as one value each.
        const opaque = ["config", "podSecurityContext", "securityContext", "resources", "strategy"];
        if (!opaque.includes(prefix) && !prefix.endsWith("Probe")) {
          for (const [key, child] of Object.entries(node)) walk(child, prefix ? `${prefix}.${key}` : key);
          return;
        }
      }
      keys.push(prefix);
    };
    walk(values, "");
    expect(keys.length).toBeGreaterThan(30);
    const undocumented = keys.filter((key) => !docs.includes(`\`${key}\``));
    expect(undocumented).toEqual([]);
  });
});
