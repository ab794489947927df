// The Hono app shared by both editions. Routes are thin: validate, call one verb, map the result.

import { OpenAPIHono } from "@hono/zod-openapi";
import { bodyLimit } from "hono/body-limit";
import { VaultError } from "../core/errors.js";
import type { ServiceContext } from "../services/context.js";
import { authMiddleware, requireRole } from "./auth.js";
import { renderMetrics } from "../services/metrics.js";
import { dashboardRoutes } from "../ui/dashboard.js";
import type { AppEnv, RemoteAddrFn } from "./env.js";
import { describeZodError, onError, respondError } from "./errors.js";
import { clusterRoutes } from "./routes-clusters.js";
import { auditRoutes } from "./routes-system.js";
import { tokenRoutes } from "./routes-tokens.js";
import { targetRoutes } from "./routes-targets.js";
import { backupRoutes } from "./routes-backups.js";
import { runnerRoutes } from "./routes-runners.js";
import { retentionRoutes } from "./routes-retention.js";

export function maskPath(path: string): string {
  return path.replace(/\/dl\/[^/?#]+/g, "/dl/***");
}

export const JSON_BODY_LIMIT = 1024 * 1024;

export interface AppOptions {
  svc: ServiceContext;
  remoteAddr: RemoteAddrFn;
  /** Readiness probe of the hosting runtime (db reachable, migrations applied). */
  ready: () => Promise<{ ok: boolean; reason?: string }>;
  version: string;
  /** Extra route groups added by later layers (capture, scheduler, links, runners, UI). */
  extend?: Array<(app: OpenAPIHono<AppEnv>) => void>;
}

export function createApp(opts: AppOptions): OpenAPIHono<AppEnv> {
  const app = new OpenAPIHono<AppEnv>({
    defaultHook: (result, c) => {
      if (!result.success) {
        const where = (result as { target?: string }).target ?? "body";
        return respondError(c as never, "invalid_input", describeZodError(result.error, where));
      }
    },
  });

  app.use("*", async (c, next) => {
    c.set("svc", opts.svc);
    c.set("requestId", c.req.header("x-request-id")?.slice(0, 64) || crypto.randomUUID());
    // Set before the handler builds its response: a header added to a finished response makes
    // Hono copy it, and @hono/node-server then builds a full fetch Response instead of writing
    // the body directly (~0.1 ms a request, bench:tick). Handlers that return a Response of their
    // own (the streamed /dl downloads) do not get the context's headers: the check after next()
    // adds it to those.
    c.header("x-request-id", c.get("requestId"));
    const t0 = Date.now();
    await next();
    if (!c.res.headers.has("x-request-id")) c.header("x-request-id", c.get("requestId"));
    // Access log: signed-link tokens are masked, query strings dropped.
    opts.svc.log.info("http", { method: c.req.method, path: maskPath(c.req.path), status: c.res.status, ms: Date.now() - t0 });
  });

  // Runner part uploads carry up to 64 MiB; every other JSON body is limited to 1 MiB.
  app.use("/v1/*", async (c, next) => {
    if (c.req.path.startsWith("/v1/runners/") && c.req.path.includes("/parts/")) return next();
    // GET and HEAD carry no body. Asking the request for one makes @hono/node-server build a full
    // fetch Request (~0.1 ms), which every list call would pay.
    if (c.req.method === "GET" || c.req.method === "HEAD") return next();
    return bodyLimit({
      maxSize: JSON_BODY_LIMIT,
      onError: (c2) => respondError(c2 as never, "payload_too_large", `request body exceeds ${JSON_BODY_LIMIT} bytes`),
    })(c, next);
  });
  app.use("/v1/*", authMiddleware(opts.remoteAddr));
  // A JSON key "__proto__" is an own property after JSON.parse but vanishes when zod copies a
  // record (labels, matchLabels): `{"matchLabels":{"__proto__":"x"}}` became `{}` and matched every
  // cluster. Refused outright; the substring test keeps the extra parse off every other body.
  app.use("/v1/*", async (c, next) => {
    if (c.req.method === "GET" || c.req.method === "HEAD" || (c.req.path.startsWith("/v1/runners/") && c.req.path.includes("/parts/"))) return next();
    if (!/json/i.test(c.req.header("content-type") ?? "")) return next();
    const text = await c.req.text();
    // A key can also be spelled with escapes ("__pro\u0074o__"): then the parse decides.
    if (!text.includes("__proto__") && !text.includes("\\u")) return next();
    let found = false;
    try {
      JSON.parse(text, (key, value) => {
        if (key === "__proto__") found = true;
        return value;
      });
    } catch (e) {
      // Malformed JSON: the validator answers it. Anything else (nesting too deep for the
      // reviver) could hide a key: refused rather than let through unchecked.
      if (e instanceof SyntaxError) return next();
      return respondError(c as never, "invalid_input", "body: nested too deeply to be checked");
    }
    if (found) return respondError(c as never, "invalid_input", 'body: a key named "__proto__" is not allowed');
    return next();
  });

  app.get("/healthz", (c) => c.json({ ok: true, version: opts.version }));
  // Metrics name clusters, so they need a bearer token (viewer or better), like the API.
  app.get("/metrics", authMiddleware(opts.remoteAddr), requireRole("viewer"), async (c) => {
    c.header("content-type", "text/plain; version=0.0.4; charset=utf-8");
    return c.body(await renderMetrics(opts.svc));
  });
  app.get("/readyz", async (c) => {
    const r = await opts.ready();
    return c.json(r, r.ok ? 200 : 503);
  });

  dashboardRoutes(app);
  tokenRoutes(app);
  clusterRoutes(app);
  auditRoutes(app);
  targetRoutes(app);
  backupRoutes(app);
  runnerRoutes(app);
  retentionRoutes(app);
  for (const add of opts.extend ?? []) add(app);

  app.doc31("/openapi.json", {
    openapi: "3.1.0",
    info: { title: "etcd-vault", version: opts.version, description: "Offsite, encrypted etcd backups for a fleet" },
  });
  app.openAPIRegistry.registerComponent("securitySchemes", "bearer", { type: "http", scheme: "bearer" });

  app.notFound((c) => respondError(c as never, "not_found", `no route for ${c.req.method} ${c.req.path}`));
  app.onError((err, c) => onError(err, c as never));
  return app;
}

export { VaultError };
