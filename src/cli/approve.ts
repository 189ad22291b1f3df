import type { Command } from "commander";
import { z } from "zod";
import { CliError, type CliIo } from "./io.ts";
import { PromotionResource, shortDigest, table } from "./promotion-format.ts";
import { addServerOptions, connect, type ServerOptions } from "./server-options.ts";

interface VoteOpts extends ServerOptions {
  comment?: string;
  json?: boolean;
}

const Vote = z.looseObject({
  decision: z.string(),
  counts: z.boolean(),
  whyNot: z.string().optional(),
});

const Voted = PromotionResource.and(
  z.looseObject({
    vote: Vote,
    approvals: z.array(z.looseObject({ decision: z.string(), counts: z.boolean() })).optional(),
  }),
);

const Pending = z.looseObject({
  items: z.array(
    z.looseObject({
      id: z.string(),
      app: z.string(),
      digest: z.string(),
      to: z.string(),
      createdAt: z.string().optional(),
      needs: z.looseObject({ more: z.number(), groups: z.array(z.string()) }),
    }),
  ),
});

const path = (id: string) => `/v1/promotions/${encodeURIComponent(id)}/approvals`;

/**
 * Registers `ferry approve ID [--comment]`, `ferry reject ID --comment` and `ferry approvals
 * pending`, for a person's token (`--token-file` or `$FERRY_TOKEN`). A refusal (403 with its reason)
 * exits 2 with the reason, as every API error does.
 */
export function registerApprovals(program: Command, io: CliIo): void {
  const vote = (decision: "approve" | "reject") => async (id: string, opts: VoteOpts) => {
    const comment = opts.comment?.trim();
    if (decision === "reject" && !comment) throw new CliError("ferry reject needs --comment TEXT saying why");
    const client = await connect(opts, io);
    const { data } = await client.post(path(id), Voted, {
      body: { decision, ...(comment ? { comment } : {}) },
    });
    if (opts.json) {
      io.out(`${JSON.stringify(data, null, 2)}\n`);
      return;
    }
    const counts = data.vote.counts ? "" : ` (does not count: ${data.vote.whyNot ?? "rejected"})`;
    const done = decision === "approve" ? `approved${counts}` : "rejected";
    io.out(`promotion ${data.id}: ${done}; now ${data.state}\n`);
    // The gates were decided before this vote (the worker decides them again now), so their
    // message would be stale: count what stands instead.
    if (decision === "approve" && (data.state === "waiting" || data.state === "pending")) {
      const counting = (data.approvals ?? []).filter((a) => a.decision === "approve" && a.counts).length;
      io.out(
        `approvals that count so far: ${counting}; \`ferry promotions show ${data.id}\` shows what is still needed\n`,
      );
    }
  };

  addServerOptions(
    program
      .command("approve")
      .description("approve a promotion that waits for approvals (a person's token)")
      .argument("<id>", "the promotion's id")
      .option("--comment <text>", "a note kept with the approval")
      .option("--json", "print the promotion resource as JSON"),
  ).action(vote("approve"));

  addServerOptions(
    program
      .command("reject")
      .description("reject a promotion: it ends rejected, with your name and comment")
      .argument("<id>", "the promotion's id")
      .requiredOption("--comment <text>", "why (required)")
      .option("--json", "print the promotion resource as JSON"),
  ).action(vote("reject"));

  const approvals = program.command("approvals").description("approvals waiting for you");
  addServerOptions(
    approvals
      .command("pending")
      .description("the promotions you may approve and have not: your inbox")
      .option("--json", "print the answer as JSON"),
  ).action(async (opts: VoteOpts) => {
    const client = await connect(opts, io);
    const { data } = await client.get("/v1/approvals/pending", Pending);
    if (opts.json) {
      io.out(`${JSON.stringify(data, null, 2)}\n`);
      return;
    }
    if (data.items.length === 0) {
      io.out("no promotion waits for your approval\n");
      return;
    }
    io.out(
      table(
        ["ID", "APP", "TO", "DIGEST", "NEEDS"],
        data.items.map((p) => [
          p.id,
          p.app,
          p.to,
          shortDigest(p.digest),
          `${p.needs.more} more from ${p.needs.groups.join("|")}`,
        ]),
      ),
    );
  });
}
