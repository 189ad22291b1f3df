import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { parseExport } from "../../src/audit/format.ts";
import { canonicalJson, entryHash } from "../../src/audit/hash.ts";
import { policyHash } from "../../src/audit/policy-hash.ts";
import { type AuditEntry, GENESIS_HASH } from "../../src/audit/types.ts";
import { verifyChain } from "../../src/audit/verify.ts";

const first: Omit<AuditEntry, "hash"> = {
  seq: 1,
  at: 1_780_000_000_123,
  type: "config_loaded",
  actor: "ferry",
  subject: "/etc/ferry/ferry.yaml",
  outcome: "loaded",
  reason: null,
  data: { policyHash: "ab".repeat(32), keyId: "cd".repeat(32) },
  prev_hash: GENESIS_HASH,
};

describe("entry hash (docs/evidence.md)", () => {
  it("is SHA-256 over prev_hash's 64 ASCII bytes, then the entry's canonical JSON without hash", () => {
    // Written out by hand, as a third party would: keys sorted, no whitespace.
    const text =
      '{"actor":"ferry","at":1780000000123,"data":{"keyId":"' +
      "cd".repeat(32) +
      '","policyHash":"' +
      "ab".repeat(32) +
      '"},"outcome":"loaded","prev_hash":"' +
      GENESIS_HASH +
      '","reason":null,"seq":1,"subject":"/etc/ferry/ferry.yaml","type":"config_loaded"}';
    expect(canonicalJson(first)).toBe(text);
    expect(entryHash(first)).toBe(
      createHash("sha256")
        .update(GENESIS_HASH + text)
        .digest("hex"),
    );
  });

  it("canonicalises numbers and strings as RFC 8785 does (its own examples)", () => {
    const numbers = JSON.parse("[333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001]");
    expect(canonicalJson({ numbers, string: '€$\u000f\nA\'B"\\\\"/' })).toBe(
      '{"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],"string":"€$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}',
    );
    expect(canonicalJson({ b: 1, a: { d: 2, c: 3 } })).toBe('{"a":{"c":3,"d":2},"b":1}');
  });
});

describe("verifyChain over exports", () => {
  const chain = (n: number): AuditEntry[] => {
    const out: AuditEntry[] = [];
    let prev = GENESIS_HASH;
    for (let seq = 1; seq <= n; seq++) {
      const e = { ...first, seq, prev_hash: prev, data: { n: seq } };
      const hash = entryHash(e);
      out.push({ ...e, hash });
      prev = hash;
    }
    return out;
  };

  it("an empty chain verifies; one starting elsewhere than seq 1 does not", () => {
    expect(verifyChain([])).toEqual({ ok: true, size: 0, head: GENESIS_HASH });
    expect(verifyChain(chain(4).slice(1))).toMatchObject({ ok: false, seq: 1 });
  });

  it("locates entries out of order in a file, and an unknown type", () => {
    const entries = chain(5);
    const swapped = [entries[0]!, entries[2]!, entries[1]!, entries[3]!, entries[4]!];
    expect(verifyChain(swapped)).toMatchObject({ ok: false, seq: 2 });
    const unknown = chain(3).map((e) => ({ ...e }));
    (unknown[1] as { type: string }).type = "made_up";
    expect(verifyChain(unknown)).toMatchObject({
      ok: false,
      seq: 2,
      problem: expect.stringMatching(/unknown/),
    });
  });

  it("parses JSON lines and names the first line that is not an entry", () => {
    const text = chain(2)
      .map((e) => JSON.stringify(e))
      .join("\n");
    expect(parseExport(`${text}\n`)).toMatchObject({ ok: true, entries: chain(2) });
    expect(parseExport(`${text}\n{"seq":3}\n`)).toMatchObject({ ok: false, line: 3 });
    expect(parseExport(`${text}\nnot json\n`)).toMatchObject({ ok: false, line: 3, problem: "not JSON" });
  });
});

describe("policy hash", () => {
  const config = {
    store: { postgres: "postgres://ferry:hunter2@db/ferry" },
    registries: [{ url: "https://r.example", auth: { username: "u", password: "p1" } }],
    environments: [{ name: "staging" }],
  };

  it("ignores secrets and where the store is, and changes with the policy", () => {
    const base = policyHash(config);
    expect(
      policyHash({
        ...config,
        store: { postgres: "postgres://ferry:other@db2/ferry" },
        registries: [{ url: "https://r.example", auth: { username: "u", password: "p2" } }],
      }),
    ).toBe(base);
    expect(policyHash({ ...config, environments: [{ name: "production" }] })).not.toBe(base);
    expect(policyHash({ ...config, store: { sqlite: "/data/ferry.db" } })).not.toBe(base);
  });
});
