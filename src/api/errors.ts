// One error model on the wire: `{"error":{"code","message","requestId"}}` with the status mapped
// from the code. Users never see a stack trace; the log always gets one for unexpected errors.

import type { Context } from "hono";
import { HTTPException } from "hono/http-exception";
import type { ZodError } from "zod";
import { HTTP_STATUS, VaultError, type ErrorCode } from "../core/errors.js";
import type { AppEnv } from "./env.js";

export function errorBody(code: ErrorCode, message: string, requestId: string) {
  return { error: { code, message, requestId } };
}

export function respondError(c: Context<AppEnv>, code: ErrorCode, message: string) {
  const requestId = c.get("requestId") ?? "-";
  return c.json(errorBody(code, message, requestId), HTTP_STATUS[code] as 400);
}

/** `recipients[0]`, `labels.env`, `etcd.command[2]`: array positions as the services write them. */
function fieldPath(path: ReadonlyArray<PropertyKey>): string {
  let out = "";
  for (const seg of path) out += typeof seg === "number" ? `[${seg}]` : `${out ? "." : ""}${String(seg)}`;
  return out;
}

/** zod issues → one readable message naming the field(s): `labels.env: expected string`. */
export function describeZodError(err: ZodError, where: string): string {
  // A value of the wrong type also fails its length or size checks, which zod reports on the
  // same path ("expected array, received string; Too big: expected string to have <=32
  // characters"): only the type is news to the caller.
  const mistyped = new Set(err.issues.filter((i) => i.code === "invalid_type").map((i) => fieldPath(i.path)));
  const issues = err.issues.filter((i) => i.code === "invalid_type" || !mistyped.has(fieldPath(i.path)));
  const parts = issues.slice(0, 5).map((i) => {
    const path = i.path.length ? fieldPath(i.path) : where;
    if (i.code === "unrecognized_keys") {
      const keys = (i as unknown as { keys: string[] }).keys;
      const base = i.path.length ? `${fieldPath(i.path)}.` : "";
      return `${keys.map((k) => base + k).join(", ")}: unknown field${keys.length > 1 ? "s" : ""}`;
    }
    return `${path}: ${i.message}`;
  });
  return parts.join("; ");
}

export function onError(err: Error, c: Context<AppEnv>) {
  if (err instanceof VaultError) {
    if (err.status >= 500) c.get("svc")?.log.warn("request failed", { code: err.code, message: err.message });
    return respondError(c, err.code, err.message);
  }
  if (err instanceof HTTPException) {
    if (err.status === 413) return respondError(c, "payload_too_large", "request body exceeds the 1 MiB limit");
    if (err.status === 400) {
      const msg = /json/i.test(err.message) ? "body: malformed JSON" : `body: ${err.message}`;
      return respondError(c, "invalid_input", msg);
    }
    if (err.status === 415) {
      // zod-openapi's gate in front of a JSON body: another Content-Type, or a body without one.
      const given = c.req.header("content-type");
      return respondError(c, "unsupported_media_type", `Content-Type: the body must be application/json${given ? ` (got ${JSON.stringify(given.slice(0, 100))})` : " (none was given)"}`);
    }
    if (err.status === 401) return respondError(c, "unauthorized", err.message);
    if (err.status === 404) return respondError(c, "not_found", err.message);
  }
  c.get("svc")?.log.error("unhandled error", { err: err?.stack ?? String(err), requestId: c.get("requestId") });
  return respondError(c, "internal", "internal error; see the server log for request " + (c.get("requestId") ?? "-"));
}
