import type { Command } from "commander";
import { CliError, type CliIo } from "./io.ts";
import {
  AppList,
  formatApps,
  formatPromotion,
  formatPromotionList,
  PromotionList,
  PromotionResource,
} from "./promotion-format.ts";
import { addServerOptions, connect, type ServerOptions } from "./server-options.ts";

interface ListOpts extends ServerOptions {
  app?: string;
  env?: string;
  state?: string;
  limit?: string;
  cursor?: string;
  breakGlass?: boolean;
  unreviewed?: boolean;
  json?: boolean;
}

interface JsonOpts extends ServerOptions {
  json?: boolean;
}

const path = (id: string) => `/v1/promotions/${encodeURIComponent(id)}`;

/** Registers `ferry promotions list|show|cancel`. */
export function registerPromotions(program: Command, io: CliIo): void {
  const promotions = program.command("promotions").description("list, show and cancel promotions");
  addServerOptions(
    promotions
      .command("list")
      .description("list promotions, newest first")
      .option("--app <name>", "only this app")
      .option("--env <name>", "only promotions into this environment")
      .option("--state <state>", "only promotions in this state")
      .option("--limit <n>", "at most this many")
      .option("--cursor <cursor>", "the page after the one that printed this cursor")
      .option("--break-glass", "only break-glass promotions")
      .option("--unreviewed", "only break-glass promotions not reviewed yet")
      .option("--json", "print the answer as JSON"),
  ).action(async (opts: ListOpts) => {
    if (opts.limit !== undefined && !/^[1-9]\d{0,5}$/.test(opts.limit)) {
      throw new CliError(`--limit ${JSON.stringify(opts.limit)} is not a positive integer`);
    }
    const client = await connect(opts, io);
    const { data } = await client.get("/v1/promotions", PromotionList, {
      query: {
        app: opts.app,
        environment: opts.env,
        state: opts.state,
        limit: opts.limit,
        cursor: opts.cursor,
        breakGlass: opts.breakGlass || opts.unreviewed ? "true" : undefined,
        reviewed: opts.unreviewed ? "false" : undefined,
      },
    });
    if (opts.json) {
      io.out(`${JSON.stringify(data, null, 2)}\n`);
      return;
    }
    io.out(formatPromotionList(data.items));
    if (data.next) io.out(`more: --cursor ${data.next}\n`);
  });

  addServerOptions(
    promotions
      .command("show")
      .description("show one promotion: its gates, steps and result")
      .argument("<id>", "the promotion's id")
      .option("--json", "print the resource as JSON"),
  ).action(async (id: string, opts: JsonOpts) => {
    const client = await connect(opts, io);
    const { data } = await client.get(path(id), PromotionResource);
    io.out(opts.json ? `${JSON.stringify(data, null, 2)}\n` : formatPromotion(data));
  });

  addServerOptions(
    promotions
      .command("cancel")
      .description("cancel a promotion that has not started its steps (a finished or running one: exit 2)")
      .argument("<id>", "the promotion's id")
      .option("--json", "print the resource as JSON"),
  ).action(async (id: string, opts: JsonOpts) => {
    const client = await connect(opts, io);
    const { data } = await client.post(`${path(id)}/cancel`, PromotionResource);
    io.out(opts.json ? `${JSON.stringify(data, null, 2)}\n` : `promotion ${data.id}: ${data.state}\n`);
  });
}

/** Registers `ferry apps [--json]`. */
export function registerApps(program: Command, io: CliIo): void {
  addServerOptions(
    program
      .command("apps")
      .description("list apps and, per environment, the digest current there")
      .option("--json", "print the answer as JSON"),
  ).action(async (opts: JsonOpts) => {
    const client = await connect(opts, io);
    const { data } = await client.get("/v1/apps", AppList);
    io.out(opts.json ? `${JSON.stringify(data, null, 2)}\n` : formatApps(data));
  });
}
