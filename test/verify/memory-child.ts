/**
 * Run by memory.test.ts in its own process (`node --expose-gc`), so its heap is measured alone:
 * `node memory-child.ts CONFIG_FILE ROUNDS WARMUP REF...` verifies WARMUP once (code loaded, registry
 * client warm), samples memory (`before`), verifies every REF in the environment `memory` ROUNDS
 * times over, and prints `{before, after, peak, reasons}` as JSON, `after` sampled once the last
 * round is done. Every sample follows a full garbage collection.
 */
import { readFileSync } from "node:fs";
import { parseConfigText } from "../../src/config/load.ts";
import { createRegistryClient } from "../../src/registry/client.ts";
import { createVerificationService } from "../../src/verify/create.ts";

const [file, roundsText, warmup, ...refs] = process.argv.slice(2);
const gc = (globalThis as { gc?: () => void }).gc;
if (!file || !warmup || !gc) {
  throw new Error("usage: node --expose-gc memory-child.ts CONFIG ROUNDS WARMUP REF...");
}
const { config } = parseConfigText(readFileSync(file, "utf8"), file, {});
const client = createRegistryClient(config);
const service = createVerificationService(config, { readerFor: (ref) => client.repository(ref) });

const sample = async () => {
  // Buffers of responses that ended in the last round are released over the next turns of the
  // event loop (undici's body streams close asynchronously): let them go, then collect twice.
  for (let i = 0; i < 3; i++) await new Promise((resolve) => setTimeout(resolve, 20));
  gc();
  gc();
  const m = process.memoryUsage();
  return { rss: m.rss, arrayBuffers: m.arrayBuffers, heapUsed: m.heapUsed };
};
const reasons = new Set<string>();
await service.verify(warmup, "memory");
const before = await sample();
let peak = 0;
for (let round = 0; round < Number(roundsText); round++) {
  for (const ref of refs) {
    const report = await service.verify(ref, "memory");
    reasons.add(report.checks.map((c) => c.reason).join(","));
    peak = Math.max(peak, process.memoryUsage().arrayBuffers);
  }
}
const after = await sample();
process.stdout.write(`${JSON.stringify({ before, after, peak, reasons: [...reasons].sort() })}\n`);
