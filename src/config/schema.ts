import { z } from "zod";
import { fetchableUrlProblem } from "../common/url-policy.ts";
import { auditSection } from "./schema/audit.ts";
import { d } from "./schema/base.ts";
import { app, environment, promotionSection } from "./schema/environments.ts";
import { gitopsSection } from "./schema/gitops.ts";
import { credential, issuer } from "./schema/identity.ts";
import { notificationsSection } from "./schema/notifications.ts";
import { registries, registryClient } from "./schema/registry.ts";
import {
  devSection,
  keysSection,
  logSection,
  serverSection,
  signingSection,
  storeSection,
} from "./schema/service.ts";
import { trustSection, verificationSection } from "./schema/trust.ts";

export { claimMatcher, claimRules } from "./schema/base.ts";

/**
 * The whole `ferry.yaml`, assembled from one part per context (`schema/*.ts`); the names are the
 * contract that docs/config.md documents. The checks across parts (names that refer to other
 * entries) live here, each problem with its path.
 */
export const configSchema = z
  .strictObject({
    dev: devSection,
    server: serverSection,
    log: logSection,
    store: storeSection,
    keys: keysSection,
    issuers: z
      .array(issuer)
      .default([])
      .meta(d("OIDC issuers whose tokens Ferry accepts (exact `iss` match).")),
    registries,
    registryClient,
    signing: signingSection,
    verification: verificationSection,
    trust: trustSection,
    environments: z
      .array(environment)
      .default([])
      .meta(d("Deployment environments in promotion order, each with what a digest needs to enter it.")),
    apps: z
      .array(app)
      .default([])
      .meta(d("Applications: their repositories per environment and their pipelines.")),
    credentials: z
      .array(credential)
      .default([])
      .meta(d("Short-lived credentials that pipelines obtain through `POST /v1/token`.")),
    promotion: promotionSection,
    notifications: notificationsSection,
    audit: auditSection,
    gitops: gitopsSection,
  })
  .superRefine((config, ctx) => {
    const unique = (items: { name: string }[], key: string) => {
      const seen = new Map<string, number>();
      items.forEach((item, i) => {
        const first = seen.get(item.name);
        if (first !== undefined) {
          ctx.addIssue({
            code: "custom",
            path: [key, i, "name"],
            message: `duplicate name "${item.name}" (also ${key}[${first}]); names must be unique`,
          });
        } else seen.set(item.name, i);
      });
      return new Set(seen.keys());
    };
    const issuers = unique(config.issuers, "issuers");
    const environments = unique(config.environments, "environments");
    const authorities = unique(config.trust.authorities, "trust.authorities");
    // A keyless authority trusts one root: the one it names, which must be configured, else the only one.
    const files = config.trust.trustedRoot;
    const fileList = files === undefined ? [] : Array.isArray(files) ? files : [files];
    const roots = [
      ...((config.trust.publicGood ?? fileList.length === 0) ? ["public-good"] : []),
      ...fileList,
    ];
    config.trust.authorities.forEach((a, i) => {
      if (!a.keyless) return;
      const path = ["trust", "authorities", i, "keyless", "trustedRoot"];
      const named = a.keyless.trustedRoot;
      if (named !== undefined && !roots.includes(named)) {
        ctx.addIssue({
          code: "custom",
          path,
          message: `unknown trusted root "${named}" (configured: ${roots.join(", ")})`,
        });
      } else if (named === undefined && roots.length > 1) {
        ctx.addIssue({
          code: "custom",
          path,
          message: `required when several trusted roots are configured (${roots.join(", ")}): name the one whose CA issues this signer's certificates`,
        });
      }
    });
    unique(config.apps, "apps");
    unique(config.credentials, "credentials");

    const known = (set: Set<string>, value: string, path: (string | number)[], what: string) => {
      if (!set.has(value)) {
        const choices = [...set].join(", ") || "none are defined";
        ctx.addIssue({ code: "custom", path, message: `unknown ${what} "${value}" (known: ${choices})` });
      }
    };
    config.environments.forEach((env, i) => {
      if (env.after !== undefined)
        known(environments, env.after, ["environments", i, "after"], "environment");
      env.promoters?.pipelines?.forEach((rule, j) => {
        const path = ["environments", i, "promoters", "pipelines", j, "issuer"];
        known(issuers, rule.issuer, path, "issuer");
        // People are admitted by groups; a rule naming a human issuer would be a second, unnarrowed door.
        if (config.issuers.some((iss) => iss.name === rule.issuer && iss.kind === "human"))
          ctx.addIssue({
            code: "custom",
            path,
            message: `issuer "${rule.issuer}" is a human issuer; admit people with promoters.groups`,
          });
      });
      env.breakGlass?.pipelines?.forEach((rule, j) => {
        const path = ["environments", i, "breakGlass", "pipelines", j, "issuer"];
        known(issuers, rule.issuer, path, "issuer");
        if (config.issuers.some((iss) => iss.name === rule.issuer && iss.kind === "human"))
          ctx.addIssue({
            code: "custom",
            path,
            message: `issuer "${rule.issuer}" is a human issuer; admit people with breakGlass.groups`,
          });
      });
      // Break-glass promotions are reviewed by the environment's approvers: without any, none could be.
      if (env.breakGlass !== undefined && env.approvals === undefined)
        ctx.addIssue({
          code: "custom",
          path: ["environments", i, "breakGlass"],
          message:
            "break-glass promotions are reviewed by the environment's approvers: configure `approvals` too",
        });
      for (const [check, rule] of Object.entries(env.require)) {
        if (rule === undefined || !("authorities" in rule)) continue;
        rule.authorities.forEach((a, j) => {
          known(authorities, a, ["environments", i, "require", check, "authorities", j], "authority");
        });
      }
      // An upstream summary names the environment it is about and the signer it must come from.
      const summary = env.require.summary;
      if (summary !== undefined) {
        const path = ["environments", i, "require", "summary"];
        known(environments, summary.from, [...path, "from"], "environment");
        known(authorities, summary.verifier, [...path, "verifier"], "authority");
        const signer = config.trust.authorities.find((a) => a.name === summary.verifier);
        if (signer !== undefined && signer.verifierId === undefined)
          ctx.addIssue({
            code: "custom",
            path: [...path, "verifier"],
            message: `authority "${summary.verifier}" has no verifierId: set trust.authorities[].verifierId to the verifier.id its summaries carry`,
          });
      }
    });
    config.apps.forEach((app, i) => {
      for (const [envName, image] of Object.entries(app.images)) {
        known(environments, envName, ["apps", i, "images", envName], "environment");
        const problem = layoutImageProblem(image);
        if (problem !== undefined)
          ctx.addIssue({ code: "custom", path: ["apps", i, "images", envName], message: problem });
      }
      app.pipelines.forEach((p, j) => {
        known(issuers, p.issuer, ["apps", i, "pipelines", j, "issuer"], "issuer");
      });
      // git's file transport reads any repository the process can: the embedded default's only.
      for (const [envName, target] of Object.entries(app.gitops ?? {}))
        if (target.repo.startsWith("file://") && !config.dev)
          ctx.addIssue({
            code: "custom",
            path: ["apps", i, "gitops", envName, "repo"],
            message: "a file:// repository is allowed only with `dev: true`: use https or ssh",
          });
    });
    config.credentials.forEach((cred, i) => {
      known(environments, cred.environment, ["credentials", i, "environment"], "environment");
      cred.allow.forEach((rule, j) => {
        known(issuers, rule.issuer, ["credentials", i, "allow", j, "issuer"], "issuer");
      });
      if (cred.type === "ferry-jwt" && cred.aws !== undefined) {
        ctx.addIssue({
          code: "custom",
          path: ["credentials", i, "aws"],
          message: "`aws` applies only to an aws-sts credential",
        });
      }
      if (cred.type === "aws-sts" && cred.aws === undefined) {
        ctx.addIssue({
          code: "custom",
          path: ["credentials", i, "aws"],
          message: "an aws-sts credential needs `aws`",
        });
      }
    });
    config.issuers.forEach((iss, i) => {
      if (iss.leeway > 300_000) {
        ctx.addIssue({ code: "custom", path: ["issuers", i, "leeway"], message: "leeway is at most 5m" });
      }
      if (iss.devKey !== undefined) {
        if (!config.dev)
          ctx.addIssue({
            code: "custom",
            path: ["issuers", i, "devKey"],
            message:
              "a dev issuer (devKey) is accepted only with `dev: true`: anyone who can read its key file can mint its tokens",
          });
        if (iss.jwksUri !== undefined)
          ctx.addIssue({
            code: "custom",
            path: ["issuers", i, "jwksUri"],
            message: "a dev issuer's tokens are checked with its devKey: remove jwksUri",
          });
        // Its URL is only the `iss` its tokens carry: Ferry never fetches it.
        return;
      }
      for (const key of ["url", "jwksUri"] as const) {
        // A value that is not an http(s) URL at all already has its own problem.
        const value = iss[key];
        const problem =
          value === undefined || !/^https?:\/\//.test(value)
            ? undefined
            : fetchableUrlProblem(value, iss.allowInsecureHttp);
        if (problem !== undefined)
          ctx.addIssue({ code: "custom", path: ["issuers", i, key], message: problem });
      }
    });
  });

/**
 * What is wrong with an `oci-layout:` value of apps[].images, if anything: it names a directory
 * (relative to the config file), and only a digest may follow it, never inside the config.
 */
function layoutImageProblem(image: string): string | undefined {
  if (!image.startsWith("oci-layout:")) return undefined;
  const dir = image.slice("oci-layout:".length);
  if (dir.trim() === "") return "oci-layout: needs a directory, e.g. oci-layout:./data/layouts/staging";
  if (dir.includes("@"))
    return "an OCI layout here names its directory only: no @digest, and no @ in the path";
  return undefined;
}

/** The config as written (before defaults and transforms). */
export type ConfigInput = z.input<typeof configSchema>;
/** The parsed config, durations in milliseconds, defaults filled in. */
export type FerryConfig = z.output<typeof configSchema>;
