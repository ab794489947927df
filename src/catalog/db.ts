// The catalog handle shared by both editions. Repositories take a `Catalog` and use only the
// query builder (awaitable on better-sqlite3 and on D1). Multi-statement writes go through
// `atomically`, because D1 has no interactive transactions and better-sqlite3 has no batch.

import type { BaseSQLiteDatabase } from "drizzle-orm/sqlite-core";
import type * as schema from "./schema.js";

export type Schema = typeof schema;
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type CatalogDb = BaseSQLiteDatabase<"sync" | "async", any, Schema>;

/** A statement built but not yet executed (an insert/update/delete builder). */
export interface PendingStatement {
  run(): unknown;
}

export interface Catalog {
  db: CatalogDb;
  /** Runs the statements all-or-nothing: transaction() on better-sqlite3, batch() on D1. */
  atomically(statements: PendingStatement[]): Promise<unknown[]>;
  /** Sum of `changes` reported by a write (both drivers report it differently). */
  changes(result: unknown): number;
}

/** Number of rows a write touched: better-sqlite3 returns `{changes}`, D1 `{meta:{changes}}`. */
export function rowsChanged(result: unknown): number {
  const r = result as { changes?: number; meta?: { changes?: number }; rowsAffected?: number };
  return r?.changes ?? r?.meta?.changes ?? r?.rowsAffected ?? 0;
}
