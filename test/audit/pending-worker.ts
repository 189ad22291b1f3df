// A process that stores promotion changes with the audit write hook and dies before any appender
// chains their entries (test/audit/pending.test.ts): opens the store (argument: a store spec as
// JSON), inserts and changes a promotion (argument: its id), says "written", and kills itself.
import { auditPromotionWrites } from "../../src/audit/pending.ts";
import { PromotionStore } from "../../src/promotion/store.ts";
import { openStore } from "../../src/store/store.ts";
import { ISSUERS, requested } from "./promotion-fixtures.ts";

const [spec, id] = process.argv.slice(2) as [string, string];
const store = await openStore(JSON.parse(spec));
const promotions = new PromotionStore(store);
// No appender: this process dies with its entries only in audit_pending.
auditPromotionWrites(promotions, ISSUERS, () => undefined);
const first = await promotions.insert(requested(id), undefined);
const waiting = await promotions.update(
  first.promotion,
  {
    state: "waiting",
    gates: [{ name: "soak", status: "waiting", reason: "soaking", message: "soaks until later" }],
  },
  2_000,
);
if (waiting === undefined) throw new Error("the update did not apply");
await promotions.update(
  waiting,
  { state: "cancelled", nextCheckAt: null, result: { reason: "cancelled", message: "by a test" } },
  3_000,
);
process.stdout.write("written\n");
process.kill(process.pid, "SIGKILL");
