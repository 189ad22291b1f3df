import type { Generated } from "kysely";

/** The `leases` table: named locks with a holder, an expiry and a fencing counter. */
export interface LeasesTable {
  name: string;
  holder: string;
  /** Epoch milliseconds, by the database's clock. */
  expires_at: number;
  acquired_at: number;
  /** Incremented each time the lease changes hands; lets a writer prove it still holds the lease. */
  fence: Generated<number>;
}

/** Every table Ferry stores, for kysely's type checking. Later features add theirs here. */
export interface Database {
  leases: LeasesTable;
}
