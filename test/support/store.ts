import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll } from "vitest";
import type { StoreSpec } from "../../src/store/store.ts";
import { startPostgres, type TestPostgres } from "./postgres.ts";

/** A store engine's name and a factory of fresh, empty databases of it. */
export type StoreEngine = [engine: string, freshSpec: () => Promise<StoreSpec>];

/**
 * The store engines to run a suite against (`describe.each`): SQLite in a new temp dir, and a new
 * database in a PostgreSQL server that this registers `beforeAll`/`afterAll` hooks to start and stop,
 * so call it at the top level of a test file. `name` names the temp dirs and databases;
 * `sqliteFile` is the database's path inside its temp dir.
 */
export function storeEngines(name: string, sqliteFile = "ferry.db"): StoreEngine[] {
  let postgres: TestPostgres | undefined;
  let databases = 0;
  beforeAll(async () => {
    postgres = await startPostgres();
  });
  afterAll(async () => {
    await postgres?.stop();
  });
  return [
    [
      "sqlite",
      async () => ({ sqlite: path.join(mkdtempSync(path.join(tmpdir(), `ferry-${name}-`)), sqliteFile) }),
    ],
    ["postgres", async () => ({ postgres: await postgres!.createDatabase(`ferry_${name}_${++databases}`) })],
  ];
}
