// A second OS process appending to one PostgreSQL audit log (test/audit/replicas.test.ts): opens
// the store, says "ready", waits for "go" on stdin, appends `waves` × `perWave` entries (each wave
// concurrently, so they batch), then says "done N" and exits. Arguments: URL LABEL WAVES PER_WAVE.
import { once } from "node:events";
import { AuditLog } from "../../src/audit/log.ts";
import { openStore } from "../../src/store/store.ts";

const [url, label, waves, perWave] = process.argv.slice(2) as [string, string, string, string];
const store = await openStore({ postgres: url });
const log = new AuditLog({ store, maxBatch: 50 });
process.stdout.write("ready\n");
await once(process.stdin, "data");
let n = 0;
let failed = 0;
for (let w = 0; w < Number(waves); w++) {
  const wave = Array.from({ length: Number(perWave) }, () =>
    log
      .append({
        type: "token_exchange",
        actor: { issuer: "https://replica.test", subject: label },
        subject: `${label}-${n++}`,
        outcome: "granted",
        data: { wave: w },
      })
      .catch(() => {
        failed++;
      }),
  );
  await Promise.all(wave);
}
await log.close();
await store.close();
process.stdout.write(`done ${n - failed} failed ${failed}\n`);
