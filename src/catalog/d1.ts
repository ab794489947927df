// Worker edition catalog: the same drizzle schema over a D1 binding. D1 has no interactive
// transactions; `batch()` runs its statements in one implicit transaction (all or nothing), which
// is exactly the `atomically` contract. Migrations are applied by wrangler
// (`wrangler d1 migrations apply`), from the same migrations/ folder the Node migrator reads.

import { drizzle } from "drizzle-orm/d1";
import journal from "../../migrations/meta/_journal.json";
import * as schema from "./schema.js";
import { rowsChanged, type Catalog, type CatalogDb, type PendingStatement } from "./db.js";

/** The slice of the D1 binding we rely on (no @cloudflare/workers-types in this project). */
export interface D1DatabaseLike {
  prepare(query: string): {
    bind(...values: unknown[]): unknown;
    all<T = Record<string, unknown>>(): Promise<{ results: T[] }>;
  };
  batch(statements: unknown[]): Promise<unknown[]>;
  exec(query: string): Promise<unknown>;
}

export function isD1Database(v: unknown): v is D1DatabaseLike {
  const d = v as Record<string, unknown> | null;
  return !!d && typeof d === "object" && ["prepare", "batch", "exec"].every((m) => typeof d[m] === "function");
}

export interface D1Catalog extends Catalog {
  /** Migrations in migrations/ that wrangler has not applied to this database yet. */
  pendingMigrations(): Promise<string[]>;
}

export function openD1Catalog(d1: D1DatabaseLike): D1Catalog {
  const db = drizzle(d1 as never, { schema });
  return {
    db: db as unknown as CatalogDb,
    async atomically(statements: PendingStatement[]) {
      if (statements.length === 0) return [];
      return db.batch(statements as never);
    },
    changes: rowsChanged,
    async pendingMigrations() {
      // wrangler records applied files by name in `d1_migrations` (see `migrations_table`).
      const expected = journal.entries.map((e) => `${e.tag}.sql`);
      let applied: Set<string>;
      try {
        const r = await d1.prepare("select name from d1_migrations").all<{ name: string }>();
        applied = new Set(r.results.map((row) => row.name));
      } catch {
        return expected;
      }
      return expected.filter((name) => !applied.has(name));
    },
  };
}
