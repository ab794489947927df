// Signed links: creation/listing/revocation (bearer auth) and the download itself, GET /dl/{token},
// which needs no bearer token. Downloads stream straight from the vault; `snapshot` links honour
// HTTP Range so an 8 GiB download can resume; `bundle` links stream a plain tar.

import { OpenAPIHono, createRoute, z } from "@hono/zod-openapi";
import type { Context } from "hono";
import { VaultError } from "../core/errors.js";
import { bundleStream } from "../core/restore/bundle.js";
import { base64Encode } from "../crypto/secret-box.js";
import { backupView } from "../services/backups.js";
import { auditLinkRefusal, createLink, listLinks, recordLinkUse, resolveLink, revokeLink } from "../services/links.js";
import { requireRole } from "./auth.js";
import type { AppEnv, RemoteAddrFn } from "./env.js";
import { IdParam, ListQuery, errorResponses, jsonOk, page } from "./schemas.js";
import { respondError } from "./errors.js";

const Link = z
  .object({
    id: z.string(),
    backupId: z.string(),
    kind: z.enum(["bundle", "snapshot"]),
    url: z.string(),
    expiresAt: z.string(),
    revokedAt: z.string().nullable(),
    uses: z.number(),
    createdAt: z.string(),
  })
  .openapi("Link");
const LinkCreate = z
  .strictObject({ kind: z.enum(["bundle", "snapshot"]), ttlSeconds: z.number().int().optional() })
  .openapi("LinkCreate");

export function linkRoutes(remoteAddr: RemoteAddrFn) {
  return (app: OpenAPIHono<AppEnv>): void => {
    app.openapi(
      createRoute({
        method: "post",
        path: "/v1/backups/{id}/links",
        tags: ["links"],
        middleware: [requireRole("operator")],
        request: { params: IdParam, body: { content: { "application/json": { schema: LinkCreate } }, required: true } },
        responses: { 201: jsonOk(Link, "Created"), ...errorResponses },
      }),
      async (c) => c.json(await createLink(c.get("ctx"), c.req.valid("param").id, c.req.valid("json")), 201),
    );
    app.openapi(
      createRoute({
        method: "get",
        path: "/v1/backups/{id}/links",
        tags: ["links"],
        middleware: [requireRole("operator")],
        request: { params: IdParam, query: ListQuery },
        responses: { 200: jsonOk(page(Link)), ...errorResponses },
      }),
      async (c) => c.json(await listLinks(c.get("ctx"), c.req.valid("param").id, c.req.valid("query")), 200),
    );
    app.openapi(
      createRoute({
        method: "delete",
        path: "/v1/links/{id}",
        tags: ["links"],
        middleware: [requireRole("operator")],
        request: { params: IdParam },
        responses: { 200: jsonOk(Link, "Revoked"), ...errorResponses },
      }),
      async (c) => c.json(await revokeLink(c.get("ctx"), c.req.valid("param").id), 200),
    );
    app.get("/dl/:token", (c) => download(c, remoteAddr));
    app.on("HEAD", "/dl/:token", (c) => download(c, remoteAddr));
  };
}

async function download(c: Context<AppEnv>, remoteAddr: RemoteAddrFn): Promise<Response> {
  const svc = c.get("svc");
  const addr = remoteAddr(c);
  const ua = c.req.header("user-agent") ?? null;
  let resolved;
  try {
    resolved = await resolveLink(svc, c.req.param("token") ?? "");
  } catch (e) {
    if (e instanceof VaultError) {
      await auditLinkRefusal(svc, e.code, addr, ua);
      return respondError(c, e.code, e.message);
    }
    throw e;
  }
  const { link, backup: row } = resolved;
  const backup = backupView(row);
  const store = await svc.storeFor(row.target);
  const head = c.req.method === "HEAD";
  // The object can vanish behind our back (a bucket lifecycle rule, a hand-run delete): HEAD must
  // not promise what GET cannot serve, and the link holder gets no internal object key.
  const missing = () =>
    respondError(c, "not_found", `the encrypted snapshot of backup ${row.id} is missing from target '${row.target}'; tell an operator`);
  const fetchObject = async (range?: { start: number; end: number }) => {
    try {
      return await store.get(row.objectKey, range);
    } catch (e) {
      if (e instanceof VaultError && e.code === "not_found") return null;
      throw e;
    }
  };
  if (head && !(await store.head(row.objectKey))) return missing();
  const use = (bytes: number, complete: boolean, range: string | null) =>
    recordLinkUse(svc, link, { remoteAddr: addr, userAgent: ua, range, bytes, complete }).catch((e) =>
      svc.log.warn("could not audit a link use", { link: link.id, error: (e as Error).message }),
    );

  if (link.kind === "bundle") {
    const object = head ? null : await fetchObject();
    if (!head && !object) return missing();
    const b = bundleStream(backup, object?.body ?? new ReadableStream(), svc.clock.now());
    const headers = {
      "content-type": "application/x-tar",
      "content-length": String(b.size),
      "content-disposition": `attachment; filename="${b.filename}"`,
      "cache-control": "no-store",
    };
    if (head) return new Response(null, { headers });
    return new Response(counted(b.stream, (n, done) => use(n, done, null)), { headers });
  }

  const total = row.cipherSize ?? 0;
  const digest = `sha-256=:${base64Encode(hexToBytes(row.cipherSha256 ?? ""))}:`;
  const common: Record<string, string> = {
    "content-type": "application/octet-stream",
    "content-disposition": `attachment; filename="${backup.cluster}-${backup.id}.db.age"`,
    "accept-ranges": "bytes",
    "repr-digest": digest,
    etag: `"${row.cipherSha256}"`,
    "cache-control": "no-store",
  };
  const rangeHeader = c.req.header("range") ?? null;
  const range = rangeHeader && (!c.req.header("if-range") || c.req.header("if-range") === common.etag) ? parseRange(rangeHeader, total) : null;
  if (range === "unsatisfiable") {
    return new Response(null, { status: 416, headers: { ...common, "content-range": `bytes */${total}` } });
  }
  if (range) {
    const headers = { ...common, "content-length": String(range.end - range.start + 1), "content-range": `bytes ${range.start}-${range.end}/${total}` };
    if (head) return new Response(null, { status: 206, headers });
    const part = await fetchObject(range);
    if (!part) return missing();
    return new Response(counted(part.body, (n, done) => use(n, done, rangeHeader)), { status: 206, headers });
  }
  const headers = { ...common, "content-length": String(total) };
  if (head) return new Response(null, { headers });
  const whole = await fetchObject();
  if (!whole) return missing();
  return new Response(counted(whole.body, (n, done) => use(n, done, null)), { headers });
}

/** Single byte ranges (`a-b`, `a-`, `-n`); anything else is served whole, as RFC 9110 allows. */
export function parseRange(header: string, total: number): { start: number; end: number } | "unsatisfiable" | null {
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m || (m[1] === "" && m[2] === "")) return null;
  let start: number;
  let end: number;
  if (m[1] === "") {
    const n = Number(m[2]);
    if (n === 0) return "unsatisfiable";
    start = Math.max(0, total - n);
    end = total - 1;
  } else {
    start = Number(m[1]);
    end = m[2] === "" ? total - 1 : Math.min(Number(m[2]), total - 1);
    if (m[2] !== "" && Number(m[2]) < start) return null;
  }
  if (start >= total) return "unsatisfiable";
  return { start, end };
}

/** Passes a stream through, counting bytes; reports once, on completion or cancellation. */
function counted(body: ReadableStream<Uint8Array>, report: (bytes: number, complete: boolean) => void): ReadableStream<Uint8Array> {
  const reader = body.getReader();
  let bytes = 0;
  let reported = false;
  const once = (complete: boolean) => {
    if (!reported) {
      reported = true;
      report(bytes, complete);
    }
  };
  return new ReadableStream<Uint8Array>(
    {
      async pull(ctl) {
        try {
          const { done, value } = await reader.read();
          if (done) {
            once(true);
            ctl.close();
            return;
          }
          bytes += value.byteLength;
          ctl.enqueue(value);
        } catch (e) {
          once(false);
          ctl.error(e);
        }
      },
      async cancel(reason) {
        once(false);
        await reader.cancel(reason);
      },
    },
    { highWaterMark: 0 },
  );
}

function hexToBytes(hex: string): Uint8Array {
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(i * 2, i * 2 + 2), 16);
  return out;
}

