import { describe, expect, it } from "vitest";
import { FakeClock } from "../../src/common/clock.ts";
import { storeSigningRecords } from "../../src/signing/records.ts";
import type { SignedItem, SigningRecord } from "../../src/signing/service.ts";
import { openStore } from "../../src/store/store.ts";
import { storeEngines } from "../support/store.ts";

const engines = storeEngines("signing_records");
const DIGEST = `sha256:${"cd".repeat(32)}`;

function record(items: SignedItem[]): SigningRecord {
  return {
    requestId: "req-1",
    issuer: "https://token.actions.githubusercontent.com",
    subject: "repo:acme/web:ref:refs/heads/main",
    tokenSha256: "ab".repeat(32),
    app: "web",
    repository: "registry.test/team/web",
    digest: DIGEST,
    keyId: "ef".repeat(32),
    items,
  };
}
const sig: SignedItem = {
  kind: "signature",
  format: "cosign-legacy",
  status: "created",
  location: "sha256-cd.sig",
};
const bundle: SignedItem = {
  kind: "signature",
  format: "sigstore-bundle",
  status: "existing",
  location: `sha256:${"12".repeat(32)}`,
};

describe.each(engines)("signing records on %s", (_engine, freshSpec) => {
  it("records every item of a request, with UUIDv7 ids and the clock's time", async () => {
    const clock = new FakeClock(Date.UTC(2026, 5, 1));
    const store = await openStore(await freshSpec());
    try {
      await storeSigningRecords(store, clock).record(record([sig, bundle]));
      const rows = await store.db.selectFrom("signings").selectAll().execute();
      expect(rows.map((r) => `${r.format} ${r.status}`).sort()).toEqual([
        "cosign-legacy created",
        "sigstore-bundle existing",
      ]);
      for (const r of rows) {
        expect(r.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
        expect(r.at).toBe(Date.UTC(2026, 5, 1));
      }
    } finally {
      await store.close();
    }
  });

  it("an item that cannot be stored leaves no row of its request: no partial record", async () => {
    const store = await openStore(await freshSpec());
    try {
      // The second item breaks a NOT NULL constraint after the first row was inserted.
      const broken = { ...bundle, kind: null } as unknown as SignedItem;
      await expect(storeSigningRecords(store).record(record([sig, broken]))).rejects.toThrow();
      expect(await store.db.selectFrom("signings").selectAll().execute()).toEqual([]);
    } finally {
      await store.close();
    }
  });
});
