import { type Kysely, type Migration, type MigrationProvider, sql } from "kysely";

/**
 * One ordered migration set for both engines. Migrations use only what SQLite and PostgreSQL both
 * understand (kysely's schema builder, `bigint` for epoch milliseconds). Never edit a released
 * migration: add a new one.
 */
export const MIGRATIONS: Record<string, Migration> = {
  "0001_leases": {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable("leases")
        .addColumn("name", "varchar(200)", (c) => c.primaryKey())
        .addColumn("holder", "varchar(200)", (c) => c.notNull())
        .addColumn("expires_at", "bigint", (c) => c.notNull())
        .addColumn("acquired_at", "bigint", (c) => c.notNull())
        .addColumn("fence", "bigint", (c) => c.notNull().defaultTo(sql`1`))
        .execute();
    },
  },
};

/** Serves {@link MIGRATIONS} to kysely's Migrator. */
export const migrationProvider: MigrationProvider = {
  getMigrations: async () => MIGRATIONS,
};
