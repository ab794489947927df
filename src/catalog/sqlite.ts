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
import type { RetentionSeriesColumns, RetentionSeriesScan } from "../core/ports.js";
import { retentionColumnsFromRows } from "../core/retention-planner.js";

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

export interface SqliteCatalog extends Catalog, RetentionSeriesScan {
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
  // Reads through a memory map of the file (up to SQLite's built-in cap of 2 GiB − 64 KiB): pages
  // already in the OS page cache cost a page fault instead of a read() and a copy into the cache
  // above, which is what a fresh process's first tick and first queries pay (docs/performance.md).
  // Writes still go through the page cache and the WAL. Mapped pages count as shared, file-backed
  // memory in the process's RSS; the kernel reclaims them like any cached file page.
  sqlite.pragma("mmap_size = 2147418112");
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
    scanRetentionSeries: (scope, visit) => scanRetentionSeries(sqlite, scope, visit),
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

// ---------------------------------------------------------------------------------------------
// Retention's series scan (the RetentionSeriesScan capability, core/ports.ts).

/**
 * Series per query: each page is one index range scan; pages keep memory to their series. The
 * scan yields to the event loop between pages, so a fleet-wide plan holds it for one page at a
 * time (~25,000 backups, some 30 ms here) instead of the whole plan (1–2 s over a million).
 */
const SERIES_PAGE = 1000;

/** Exactly the expression of backups_retention_idx, so that SQLite groups straight off the index. */
const SERIES_POLICY = `case when "policy" is null then '' else "policy" end`;

/**
 * Every series of available backups in scope, one row per series with its columns concatenated by
 * SQLite: handing a million rows to JavaScript one by one costs several times what reading the
 * index does, 40,000 rows of strings do not. All aggregates of a group step through the same rows
 * in the same order, and `indexed by` makes that the index's (createdAt, id) order even when a
 * policy scope would tempt SQLite into another index and a sort by series alone (which leaves the
 * order within a series undefined); decodeSeries still checks it.
 * Flags per backup are one digit: 4 for a hold, + 1 when it has a lock (whose times follow in
 * their own list); 9 or 10 mark a hold that is neither 0 nor 1.
 */
function seriesQuery(scope: { policy?: string; cluster?: string }, after: boolean, indexed: boolean): string {
  return `select cluster, ${SERIES_POLICY}, json_group_array(id), group_concat(created_at),
      group_concat((case hold when 0 then 0 when 1 then 4 else 9 end) + (locked_until is not null), ''),
      group_concat(locked_until), group_concat(ifnull(cipher_size, 0))
    from backups${indexed ? " indexed by backups_retention_idx" : ""}
    where state = 'available'${scope.cluster !== undefined ? " and cluster = ?" : ""}${scope.policy !== undefined ? " and policy = ?" : ""}${
      after ? ` and (cluster, ${SERIES_POLICY}) > (?, ?)` : ""
    }
    group by cluster, ${SERIES_POLICY}
    order by cluster, ${SERIES_POLICY}
    limit ${SERIES_PAGE}`;
}

type SeriesRow = [cluster: string, policy: string, ids: string, createdAt: string, flags: string, locks: string | null, sizes: string];

async function scanRetentionSeries(
  sqlite: Database.Database,
  scope: { policy?: string; cluster?: string },
  visit: (series: RetentionSeriesColumns) => void,
): Promise<void> {
  const prepare = (after: boolean): Database.Statement => {
    try {
      return sqlite.prepare(seriesQuery(scope, after, true)).raw();
    } catch (err) {
      // A catalog from before migration 0002: still correct (decodeSeries checks the order and
      // reads a series as rows when it is off), only slower.
      if (!String(err).includes("no such index")) throw err;
      return sqlite.prepare(seriesQuery(scope, after, false)).raw();
    }
  };
  const first = prepare(false);
  const next = prepare(true);
  const rowsOf = sqlite.prepare(
    `select id, created_at, hold, locked_until, cipher_size from backups
      where state = 'available' and cluster = ? and ${SERIES_POLICY} = ?${scope.policy !== undefined ? " and policy = ?" : ""}
      order by created_at, id`,
  ).raw();
  const params: unknown[] = [];
  if (scope.cluster !== undefined) params.push(scope.cluster);
  if (scope.policy !== undefined) params.push(scope.policy);
  const columns: RetentionSeriesColumns = {
    cluster: "",
    policy: null,
    count: 0,
    ids: [],
    createdAt: new Float64Array(256),
    hold: new Uint8Array(256),
    lockedUntil: new Float64Array(256),
    size: new Float64Array(256),
  };
  let page = first.all(...params) as SeriesRow[];
  for (;;) {
    for (const row of page) {
      const [cluster, seriesPolicy] = row;
      const policy = seriesPolicy === "" ? null : seriesPolicy;
      if (decodeSeries(row, columns)) {
        columns.cluster = cluster;
        columns.policy = policy;
        visit(columns);
      } else {
        // Something the concatenation cannot carry faithfully (a null id, a time that is not an
        // integer, a hold that is neither 0 nor 1): this series is read row by row, as the
        // generic path reads it.
        const rows = rowsOf.all(cluster, seriesPolicy, ...(scope.policy !== undefined ? [scope.policy] : [])) as Array<
          [string, string | number, unknown, string | number | null, number | null]
        >;
        visit(retentionColumnsFromRows(cluster, policy, rows));
      }
    }
    if (page.length < SERIES_PAGE) return;
    const last = page[page.length - 1]!;
    await new Promise<void>((resolve) => setImmediate(resolve));
    page = next.all(...params, last[0], last[1]) as SeriesRow[];
  }
}

/**
 * Decimal integers separated by commas into `out` (at most `count`); the number read, or -1 when
 * the text is anything else (a real, text, more than 15 digits).
 */
function parseIntegers(text: string, out: Float64Array, count: number): number {
  let n = 0;
  let i = 0;
  const length = text.length;
  while (i < length) {
    if (n === count) return -1;
    let negative = false;
    if (text.charCodeAt(i) === 45) {
      negative = true;
      i++;
    }
    const start = i;
    let value = 0;
    for (; i < length; i++) {
      const digit = text.charCodeAt(i) - 48;
      if (digit < 0 || digit > 9) break;
      value = value * 10 + digit;
    }
    if (i === start || i - start > 15) return -1;
    if (i < length && text.charCodeAt(i++) !== 44) return -1;
    if (i === length && text.charCodeAt(length - 1) === 44) return -1;
    out[n++] = negative ? -value : value;
  }
  return n;
}

/** One series row into `columns` (grown as needed); false when it cannot be decoded exactly. */
function decodeSeries(row: SeriesRow, columns: RetentionSeriesColumns): boolean {
  const [, , ids, createdAt, flags, locks, sizes] = row;
  if (typeof ids !== "string" || typeof createdAt !== "string" || typeof flags !== "string" || typeof sizes !== "string") return false;
  // JSON, not a list split at commas: ids may hold any character, and JSON.parse makes each its
  // own string (pieces of one split string would keep the whole list alive while one id is kept).
  // Its length is the series' length (a null id stays in it as null).
  const list: unknown = JSON.parse(ids);
  if (!Array.isArray(list)) return false;
  const count = list.length;
  for (let i = 0; i < count; i++) if (typeof list[i] !== "string") return false;
  if (columns.createdAt.length < count) {
    const size = Math.max(count, 2 * columns.createdAt.length);
    columns.createdAt = new Float64Array(size);
    columns.hold = new Uint8Array(size);
    columns.lockedUntil = new Float64Array(size);
    columns.size = new Float64Array(size);
  }
  if (flags.length !== count) return false;
  if (parseIntegers(createdAt, columns.createdAt, count) !== count) return false;
  if (parseIntegers(sizes, columns.size, count) !== count) return false;
  // Oldest first, ties by id, or the series is read as rows (which SQL orders: JavaScript compares
  // ids by UTF-16 units, SQLite by UTF-8 bytes, and a few characters sort differently).
  const times = columns.createdAt;
  for (let i = 1; i < count; i++) {
    if (!(times[i]! > times[i - 1]! || (times[i] === times[i - 1] && (list[i] as string) > (list[i - 1] as string)))) return false;
  }
  columns.count = count;
  columns.ids = list as string[];
  const { hold, lockedUntil } = columns;
  let locked = 0;
  for (let i = 0; i < count; i++) {
    const flag = flags.charCodeAt(i) - 48;
    if (flag !== 0 && flag !== 1 && flag !== 4 && flag !== 5) return false;
    hold[i] = flag >> 2;
    lockedUntil[i] = flag & 1 ? -1 : NaN;
    locked += flag & 1;
  }
  if (locked > 0) {
    const until = new Float64Array(locked);
    if (locks === null || parseIntegers(locks, until, locked) !== locked) return false;
    for (let i = 0, k = 0; i < count; i++) {
      if (lockedUntil[i] === -1) {
        const time = until[k++]!;
        if (Number.isNaN(new Date(time).getTime())) return false; // out of Date's range: read as rows
        lockedUntil[i] = time;
      }
    }
  } else if (locks !== null) return false;
  return true;
}
