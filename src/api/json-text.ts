// Responses whose JSON the catalog already rendered (the list routes: catalog/sql-json.ts).
import type { Context } from "hono";

/**
 * 200 with `body`, JSON text sent as it is under c.json's content type. Typed `never` so that it
 * stands for the route's declared JSON response, which Hono only infers for c.json.
 */
export function jsonText(c: Context, body: string): never {
  return c.body(body, 200, { "content-type": "application/json" }) as never;
}
