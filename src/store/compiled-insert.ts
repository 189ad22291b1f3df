import { type Compilable, type CompiledQuery, createQueryId, type Kysely, type QueryResult } from "kysely";

/**
 * A multi-row insert that kysely builds and compiles once per number of rows, then runs again with
 * each batch's values: the SQL of an n-row insert never changes, only its parameters do, and the
 * group-committed writes of the token exchange (see `WriteBatcher`) would otherwise rebuild and
 * recompile the same statement for every batch. Works on every engine the store supports: the
 * statement is compiled by the same `Kysely` that runs it.
 *
 * `columns` must list every column the rows carry, in the order their objects are built (kysely
 * takes its column list from the rows' keys), and rows carry no other key. A compiled statement is
 * only reused after it was seen to take exactly `columns` of each row, in order, as its parameters;
 * otherwise each batch is built afresh (correct, merely slower).
 */
export class CompiledInsert<DB, Row extends Record<string, unknown>, Out> {
  readonly #db: Kysely<DB>;
  readonly #build: (rows: readonly Row[]) => Compilable<Out>;
  readonly #columns: readonly (keyof Row & string)[];
  readonly #bySize = new Map<number, CompiledQuery<Out> | null>();

  constructor(
    db: Kysely<DB>,
    columns: readonly (keyof Row & string)[],
    build: (rows: readonly Row[]) => Compilable<Out>,
  ) {
    this.#db = db;
    this.#columns = columns;
    this.#build = build;
  }

  /** Inserts the rows in one statement. */
  execute(rows: readonly Row[]): Promise<QueryResult<Out>> {
    const parameters = this.#parameters(rows);
    const known = parameters && this.#bySize.get(rows.length);
    if (parameters && known) return this.#db.executeQuery({ ...known, queryId: createQueryId(), parameters });
    const compiled = this.#build(rows).compile();
    if (known === undefined && parameters) {
      const same =
        compiled.parameters.length === parameters.length &&
        compiled.parameters.every((p, i) => p === parameters[i]);
      this.#bySize.set(rows.length, same ? compiled : null);
    }
    return this.#db.executeQuery(compiled);
  }

  /** The rows' values in statement order, or undefined when a row lacks a column (kysely would differ). */
  #parameters(rows: readonly Row[]): unknown[] | undefined {
    const columns = this.#columns;
    const out = new Array<unknown>(rows.length * columns.length);
    let i = 0;
    for (const row of rows) {
      for (const column of columns) {
        const value = row[column];
        if (value === undefined) return undefined;
        out[i++] = value;
      }
    }
    return out;
  }
}
