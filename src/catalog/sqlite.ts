// Node edition catalog: a SQLite file through better-sqlite3, WAL mode, a busy timeout so that
// two processes (server + `etcd-vault tick --db`) can share it, and migrations applied at open.

import Database from "better-sqlite3";
import { drizzle } from "drizzle-orm/better-sqlite3";
import { migrate } from "drizzle-orm/better-sqlite3/migrator";
import { existsSync, mkdirSync, readdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import * as schema from "./schema.js";
import { rowsChanged, type Catalog, type CatalogDb, type PendingStatement } from "./db.js";

/**
 * The package's migrations/ folder: the nearest one above this module, which is src/catalog/ when
 * run from source and dist/ when run as the bundle bin/build.js writes.
 */
export const MIGRATIONS_DIR = findMigrations(dirname(fileURLToPath(import.meta.url)));

function findMigrations(from: string): string {
  for (let dir = from, i = 0; i < 4; i++, dir = dirname(dir)) {
    if (existsSync(join(dir, "migrations", "meta", "_journal.json"))) return join(dir, "migrations");
  }
  return join(from, "..", "..", "migrations");
}

export interface SqliteCatalog extends Catalog {
  sqlite: Database.Database;
  close(): void;
}

export function openSqliteCatalog(file: string, options: { migrate?: boolean } = {}): SqliteCatalog {
  if (file !== ":memory:") mkdirSync(dirname(file), { recursive: true });
  const sqlite = new Database(file);
  sqlite.pragma("journal_mode = WAL");
  sqlite.pragma("busy_timeout = 5000");
  sqlite.pragma("synchronous = NORMAL");
  sqlite.pragma("foreign_keys = ON");
  // 64 MiB page cache (SQLite's default is 2 MiB): the tick inserts tens of thousands of runs into
  // indexes of a million-row table, and list queries stay in memory (see docs/performance.md).
  sqlite.pragma("cache_size = -65536");
  const db = drizzle(sqlite, { schema });
  if (options.migrate !== false) migrate(db, { migrationsFolder: MIGRATIONS_DIR });
  // Statistics for the query planner (cheap; only analyses what changed since the last run).
  sqlite.pragma("optimize = 0x10002");
  return {
    sqlite,
    db: db as unknown as CatalogDb,
    async atomically(statements: PendingStatement[]) {
      // IMMEDIATE takes the write lock up front, so concurrent tickers serialize instead of
      // failing with SQLITE_BUSY on lock upgrade.
      return sqlite
        .transaction(() => statements.map((s) => s.run()))
        .immediate();
    },
    changes: rowsChanged,
    close() {
      sqlite.close();
    },
  };
}

/** Migrations on disk vs applied: readiness fails until every file has been applied. */
export function pendingMigrations(sqlite: Database.Database): number {
  const files = readdirSync(MIGRATIONS_DIR).filter((f) => f.endsWith(".sql")).length;
  try {
    const row = sqlite.prepare("select count(*) as n from __drizzle_migrations").get() as { n: number };
    return Math.max(0, files - row.n);
  } catch {
    return files;
  }
}
