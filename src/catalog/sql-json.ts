// Pieces for rendering resources as JSON text inside SQLite (json_object), byte for byte what
// JSON.stringify gives for the same view built in JavaScript. List routes send that text as it
// is: parsing stored JSON columns, building objects and serialising them again was most of a
// list request's CPU (docs/performance.md). Both SQLite (better-sqlite3) and D1 have these
// functions.
//
// "Byte for byte" holds for what the service writes, and only for that: instants and counts as
// integers (SQLite prints a REAL its own way, e.g. 1.0e+21), booleans as 0/1, JSON columns as
// JSON.stringify wrote them (json() keeps their text), years 0–9999. Keep every write so.

import { sql, type SQL, type SQLWrapper } from "drizzle-orm";

/** An epoch-ms integer column as `new Date(ms).toISOString()` writes it (exact to the millisecond). */
export function isoText(column: SQLWrapper): SQL {
  return sql`strftime('%Y-%m-%dT%H:%M:%fZ', ${column} / 1000.0, 'unixepoch')`;
}

/** `isoText`, or JSON null when the column is null. */
export function isoTextOrNull(column: SQLWrapper): SQL {
  return sql`case when ${column} is null then null else ${isoText(column)} end`;
}

/** An integer 0/1 column as JSON true/false. */
export function jsonBoolean(column: SQLWrapper): SQL {
  return sql`json(case when ${column} then 'true' else 'false' end)`;
}

/**
 * `{"items":[…],"nextCursor":…}` from up to `limit + 1` rows rendered as JSON text; a row beyond
 * `limit` only says there is more, and the cursor then comes from the last row shown.
 */
export function pageJson<R extends { json: string }>(rows: R[], limit: number, cursorAfter: (last: R) => string): string {
  const items = rows.slice(0, limit);
  const next = rows.length > limit ? JSON.stringify(cursorAfter(items[items.length - 1]!)) : "null";
  return `{"items":[${items.map((r) => r.json).join(",")}],"nextCursor":${next}}`;
}
