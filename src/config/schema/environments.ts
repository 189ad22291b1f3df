/** Environments (what a digest needs, freeze windows, promoters), apps, and promotion. */
import { z } from "zod";
import { compileCron } from "../../common/cron.ts";
import { isTimeZone } from "../../common/zoned-time.ts";
import { duration } from "../duration.ts";
import { d, identityRule, name, positiveInt } from "./base.ts";
import { gitopsTarget } from "./gitops.ts";
import { authorityRefs } from "./trust.ts";

const absoluteFreeze = z
  .strictObject({
    from: z.iso.datetime({ offset: true }).meta(d("Start of the window (ISO 8601 with offset), included.")),
    to: z.iso.datetime({ offset: true }).meta(d("End of the window (ISO 8601 with offset), excluded.")),
  })
  .refine((w) => Date.parse(w.to) > Date.parse(w.from), {
    message: "`to` must be after `from`",
    path: ["to"],
  });

const recurringFreeze = z.strictObject({
  cron: z
    .string()
    .min(1)
    .superRefine((expression, ctx) => {
      // Compiled as the freeze gate compiles it (src/promotion/freeze.ts), so a bad expression is a
      // config error with its path, not a start-up failure or a freeze that never applies.
      try {
        if (compileCron(expression, "UTC").nextRun(new Date(0)) === null)
          ctx.addIssue({ code: "custom", message: "this cron expression never fires" });
      } catch (err) {
        const reason = (err as Error).message.replace(/^CronPattern: /, "");
        ctx.addIssue({ code: "custom", message: `invalid cron expression: ${reason}` });
      }
    })
    .meta(
      d(
        'When each window opens: five cron fields (minute hour day-of-month month day-of-week), e.g. `"0 16 * * 5"` for Fridays at 16:00, in `timeZone`.',
      ),
    ),
  duration: duration.meta(
    d(
      "How long each window lasts, in local wall-clock time (`64h` from Friday 16:00 ends Monday 08:00, across a daylight-saving change too).",
    ),
  ),
  timeZone: z
    .string()
    .min(1)
    .refine(isTimeZone, { message: 'expected an IANA time zone such as "Europe/Berlin" or "UTC"' })
    .meta(
      d("The IANA time zone the cron expression and the window's end are read in, e.g. `Europe/Berlin`."),
    ),
});

export const environment = z.strictObject({
  name,
  after: name.optional().meta(d("The environment a digest must have reached before this one.")),
  soak: duration.optional().meta(d("How long a digest must have been in `after` before promotion here.")),
  freeze: z
    .array(z.union([absoluteFreeze, recurringFreeze]))
    .optional()
    .meta(
      d(
        "Windows in which promotion into this environment waits until the window (and any window overlapping or abutting it) ends: absolute `{from, to}`, or recurring `{cron, duration, timeZone}`.",
      ),
    ),
  promoters: z
    .strictObject({
      pipelines: z
        .array(identityRule)
        .optional()
        .meta(
          d(
            "Narrows the app's `pipelines` here: a pipeline must also match one of these rules. Absent: no pipeline may promote here.",
          ),
        ),
      groups: z
        .array(z.string().min(1))
        .min(1)
        .optional()
        .meta(d("People (human issuers) in any of these groups may promote and roll back here.")),
    })
    .refine((p) => p.pipelines !== undefined || p.groups !== undefined, {
      message: "promoters needs `pipelines`, `groups` or both",
    })
    .optional()
    .meta(d("Who may promote into this environment. Absent: every pipeline of the app, and no person.")),
  require: z
    .strictObject({
      signature: z
        .strictObject({
          authorities: authorityRefs,
          count: positiveInt
            .default(1)
            .meta(d("How many distinct authorities of the list must have signed (default 1: any one).")),
          multiArch: z
            .enum(["index", "index-and-platforms"])
            .default("index")
            .meta(
              d(
                "For an image index: `index` needs a signature on the index digest itself; `index-and-platforms` also on every platform manifest it lists. A signature on a platform manifest never stands in for one on the index.",
              ),
            ),
        })
        .refine((s) => s.count <= s.authorities.length, {
          message: "count is larger than the number of authorities listed",
          path: ["count"],
        })
        .optional(),
      sbom: z
        .strictObject({
          authorities: authorityRefs,
          maxAge: duration
            .optional()
            .meta(d("Refuse an SBOM whose document creation time is older than this.")),
        })
        .optional(),
      provenance: z
        .strictObject({
          authorities: authorityRefs,
          builderId: z.string().min(1).optional().meta(d("The SLSA builder id, matched exactly.")),
          sourceRepository: z
            .string()
            .min(1)
            .optional()
            .meta(d("The source repository URL (a `git+` prefix and `.git` suffix are ignored).")),
          ref: z
            .string()
            .min(1)
            .optional()
            .meta(d("The source ref, e.g. `refs/heads/main`, matched exactly.")),
        })
        .optional(),
      summary: z
        .strictObject({
          from: name.meta(
            d("The environment the summary is about: its `policy.uri` must name this environment."),
          ),
          maxAge: duration.meta(d("Refuse a summary whose `timeVerified` is older than this, e.g. `7d`.")),
          verifier: name.meta(
            d(
              "The `trust.authorities` entry whose key signed the summary; it must set `verifierId`, which the summary's `verifier.id` must equal.",
            ),
          ),
        })
        .optional()
        .meta(
          d(
            "A signed SLSA verification summary of this digest, by another Ferry (or this one) for `from`, instead of or besides re-verifying the evidence (docs/evidence.md).",
          ),
        ),
    })
    .prefault({})
    .meta(d("What a digest must carry to enter this environment.")),
  evidence: z
    .strictObject({
      summary: z
        .boolean()
        .default(true)
        .meta(
          d(
            "Sign a SLSA verification summary with Ferry's key for each promotion into this environment, and attach it to the promoted digest in the target repository (docs/evidence.md).",
          ),
        ),
    })
    .prefault({})
    .meta(d("What Ferry signs and attaches for a promotion into this environment.")),
  approvals: z
    .strictObject({
      count: positiveInt.meta(d("How many distinct approvers are needed.")),
      groups: z
        .array(z.string().min(1))
        .min(1)
        .meta(
          d(
            "Approvers must belong to one of these groups (or of `requireEach`), read from the human issuer's `groupsClaim`.",
          ),
        ),
      requireEach: z
        .array(z.string().min(1))
        .min(1)
        .optional()
        .meta(d("At least one counting approver from each of these groups, e.g. `[security, release]`.")),
      expiresAfter: duration
        .prefault("24h")
        .meta(d("How long an approval counts; after that the person approves again.")),
      separationOfDuties: z
        .strictObject({
          requireLinkedIdentity: z
            .boolean()
            .default(true)
            .meta(
              d(
                "Refuse an approver (`sod_unverifiable`) when their token has no link claim (`issuers[].links`) to compare with the requester's CI actor.",
              ),
            ),
        })
        .prefault({})
        .meta(
          d(
            "An approver is never the requester, the pipeline run's actor, or the same person under another identity (docs/approvals.md).",
          ),
        ),
    })
    .optional()
    .meta(d("People who must approve a promotion into this environment (docs/approvals.md).")),
  breakGlass: z
    .strictObject({
      groups: z
        .array(z.string().min(1))
        .min(1)
        .optional()
        .meta(d("People (human issuers) in any of these groups may break glass here.")),
      pipelines: z
        .array(identityRule)
        .min(1)
        .optional()
        .meta(d("Pipelines matching one of these identity rules may break glass here.")),
      reviewWithin: duration
        .prefault("24h")
        .meta(
          d(
            "A break-glass promotion is reviewed by one of the environment's approvers within this time; a later review is accepted and marked late.",
          ),
        ),
    })
    .refine((b) => b.groups !== undefined || b.pipelines !== undefined, {
      message: "breakGlass needs `groups`, `pipelines` or both",
    })
    .optional()
    .meta(
      d(
        "Who may ask for a break-glass promotion here (`breakGlass: {justification}`): it skips order, soak, freeze and approvals, never verification, and needs a review afterwards (docs/approvals.md). It narrows `promoters`, never widens them. Needs `approvals`: its approvers review.",
      ),
    ),
});

export const app = z
  .strictObject({
    name,
    images: z
      .record(name, z.string().min(1))
      .meta(
        d(
          "Repository of this app per environment name, e.g. `{staging: 127.0.0.1:5000/staging/web}`, or an OCI image layout `oci-layout:PATH` (relative to this file; created by the first promotion into it), which verification, signing and promotion read and write as they do a repository, in dev mode or not (an air-gapped mirror).",
        ),
      ),
    pipelines: z.array(identityRule).default([]).meta(d("Pipeline identities that act for this app.")),
    gitops: z
      .record(name, gitopsTarget)
      .optional()
      .meta(d("Per environment name: the Git file the promoted digest is written into (docs/gitops.md).")),
  })
  .superRefine((a, ctx) => {
    for (const env of Object.keys(a.gitops ?? {}))
      if (!Object.hasOwn(a.images, env))
        ctx.addIssue({
          code: "custom",
          path: ["gitops", env],
          message: `the app has no repository in "${env}" (apps[].images)`,
        });
  });

/** `promotion`: the worker that moves digests between environments. */
export const promotionSection = z
  .strictObject({
    maxWait: duration
      .prefault("24h")
      .meta(d("A promotion still waiting on a gate this long after it was requested ends `expired`.")),
    pollInterval: duration
      .prefault("2s")
      .meta(
        d(
          "How often the promotion worker looks for work it was not woken for (requests made on another replica, a missed timer).",
        ),
      ),
    leaseTtl: duration
      .prefault("30s")
      .meta(
        d(
          "How long the worker's lease on one app and environment lasts without renewal (renewed every third of it); after a crash, another replica takes over once it expires.",
        ),
      ),
    stepRetries: z
      .int()
      .min(0)
      .max(100)
      .default(5)
      .meta(
        d(
          "Retries of a step that failed with a retryable error (network, 5xx, timeout, lost lease), with jittered exponential backoff from 500 ms up to 30 s; then the promotion fails.",
        ),
      ),
    concurrency: positiveInt
      .default(8)
      .meta(d("Apps and environments one replica works on at once (each runs one promotion at a time).")),
  })
  .prefault({})
  .meta(d("Promotion of digests between environments (`POST /v1/promotions`)."));
