// Worker edition (Cloudflare Workers, wrangler.toml): the same Hono app as the Node edition over
// D1 (catalog) and R2 (vault); the cron trigger calls the same `tick`. Kube exec needs network
// reach into clusters, so discovery and captures are done by remote runners (`etcd-vault runner
// --server <this Worker>`), which upload ciphertext parts through the runner routes into R2.
//
// Everything is built once per isolate, on the first event, and reused: env is validated with
// zod, then the admin token from the secret and target `default` are ensured (retried on the
// next event if that failed). Nothing on this file's import graph may need a Node-only module
// (better-sqlite3, node:fs, @kubernetes/client-node, @aws-sdk): check with
// `wrangler deploy --dry-run --outdir <dir> --metafile`.

import type { OpenAPIHono } from "@hono/zod-openapi";
import { createApp } from "../api/app.js";
import type { AppEnv, RemoteAddrFn } from "../api/env.js";
import { errorBody } from "../api/errors.js";
import { linkRoutes } from "../api/routes-links.js";
import { policyRoutes } from "../api/routes-policies.js";
import { openD1Catalog, type D1Catalog } from "../catalog/d1.js";
import { VaultError } from "../core/errors.js";
import type { BlobStore } from "../core/ports.js";
import type { TargetSpec } from "../core/storage-url.js";
import { createSecretBox } from "../crypto/secret-box.js";
import { tick } from "../scheduler/tick.js";
import { settingsFrom, type ServiceContext } from "../services/context.js";
import { retentionSweep } from "../services/retention.js";
import { RunnerHandoffAccess } from "../services/runner-handoff.js";
import { createStoreResolver, ensureDefaultTarget, type StoreFactory } from "../services/targets.js";
import { ensureAdminToken } from "../services/tokens.js";
import { isR2Bucket, R2BlobStore } from "../vault/r2-store.js";
import { createLogger } from "./logger.js";
import { VERSION } from "./version.js";
import { loadWorkerConfig, WorkerConfigError, type WorkerConfig } from "./worker-config.js";

/** The parts of the Workers runtime's handler arguments we use (no workers-types here). */
interface ExecutionContextLike {
  waitUntil(promise: Promise<unknown>): void;
}
interface ScheduledControllerLike {
  cron: string;
  scheduledTime: number;
}
type WorkerEnv = Record<string, unknown>;

interface WorkerService {
  config: WorkerConfig;
  svc: ServiceContext;
  catalog: D1Catalog;
  app: OpenAPIHono<AppEnv>;
  /** Admin token and target `default`; once per isolate (again after a failure). */
  ensureReady(): Promise<void>;
}

// Workers hand the connecting client's address to the Worker in a header; there is no socket.
const remoteAddr: RemoteAddrFn = (c) => c.req.header("cf-connecting-ip") ?? null;

/** Stores for targets: only R2 bindings exist here (file and S3 targets belong to the Node edition). */
export function r2StoreFactory(bindings: WorkerEnv): StoreFactory {
  return async (spec: TargetSpec): Promise<BlobStore> => {
    if (spec.kind !== "r2") {
      throw new VaultError(
        "invalid_input",
        `${spec.kind}:// targets are served by the Node edition; the Worker edition stores in R2 (r2://BINDING/prefix)`,
        { field: "url" },
      );
    }
    const bucket = bindings[spec.binding];
    if (!isR2Bucket(bucket)) {
      throw new VaultError("invalid_input", `r2://${spec.binding}: this Worker has no R2 binding named '${spec.binding}'`, { field: "url" });
    }
    return new R2BlobStore(bucket, { binding: spec.binding, prefix: spec.prefix });
  };
}

async function buildService(env: WorkerEnv): Promise<WorkerService> {
  const config = loadWorkerConfig(env);
  const log = createLogger(config.ETCD_VAULT_LOG_LEVEL, (line) => console.log(line));
  const catalog = openD1Catalog(config.DB);
  const secrets = await createSecretBox(config.ETCD_VAULT_MASTER_KEY);
  const svc: ServiceContext = {
    catalog,
    secrets,
    clock: { now: () => new Date() },
    log,
    access: new RunnerHandoffAccess(() => svc),
    storeFor: async () => {
      throw new Error("stores not ready");
    },
    // Unset: filled in from the first request's origin (see `fetch`).
    settings: settingsFrom(config, config.ETCD_VAULT_PUBLIC_URL?.replace(/\/+$/, "") ?? ""),
    // Runners are remote and long-poll the claim route; there is nobody in-process to wake.
    notifyWork: () => {},
    randomBytes: (n) => crypto.getRandomValues(new Uint8Array(n)),
  };
  svc.storeFor = createStoreResolver(svc, r2StoreFactory(config.bindings));

  let readyOnce: Promise<void> | null = null;
  const ensureReady = () =>
    (readyOnce ??= (async () => {
      await ensureDefaultTarget(svc, config.ETCD_VAULT_STORAGE);
      await ensureAdminToken(svc, config.ETCD_VAULT_ADMIN_TOKEN);
    })().catch((e) => {
      readyOnce = null;
      throw e;
    }));

  const app = createApp({
    svc,
    version: VERSION,
    remoteAddr,
    ready: async () => {
      try {
        const pending = await catalog.pendingMigrations();
        if (pending.length) return { ok: false, reason: `migrations not applied: ${pending.join(", ")} (wrangler d1 migrations apply DB)` };
        await ensureReady();
        return { ok: true };
      } catch (e) {
        return { ok: false, reason: `catalog unreachable: ${driverReason(e)}` };
      }
    },
    extend: [policyRoutes(retentionSweep), linkRoutes(remoteAddr)],
  });
  log.info("etcd-vault worker isolate started", { version: VERSION, storage: config.ETCD_VAULT_STORAGE, publicUrl: svc.settings.publicUrl || null });
  return { config, svc, catalog, app, ensureReady };
}

// One service per isolate; a different env object (a new deployment's bindings) builds anew.
let cached: { env: WorkerEnv; service: Promise<WorkerService> } | null = null;

function serviceFor(env: WorkerEnv): Promise<WorkerService> {
  if (cached?.env !== env) {
    const service = buildService(env);
    cached = { env, service };
    // A failed build (bad configuration) is retried by the next event, not cached forever.
    service.catch(() => {
      if (cached?.service === service) cached = null;
    });
  }
  return cached.service;
}

/** drizzle wraps driver errors with the query and its parameters: keep the driver's reason only. */
function driverReason(e: unknown): string {
  const cause = (e as { cause?: unknown })?.cause;
  return cause instanceof Error ? cause.message : e instanceof Error ? e.message : String(e);
}

/** A Worker that cannot start says why, in the error envelope (config messages carry no secrets). */
function notReadyResponse(e: unknown): Response {
  const message =
    e instanceof WorkerConfigError || e instanceof VaultError
      ? e.message
      : `the catalog is not ready: ${driverReason(e)} (were the D1 migrations applied? wrangler d1 migrations apply DB)`;
  console.error(message);
  const body = errorBody("internal", message, crypto.randomUUID());
  return new Response(JSON.stringify(body), { status: 500, headers: { "content-type": "application/json" } });
}

async function handleFetch(request: Request, env: WorkerEnv, ectx: ExecutionContextLike): Promise<Response> {
  let w: WorkerService;
  try {
    w = await serviceFor(env);
    if (!w.svc.settings.publicUrl) w.svc.settings.publicUrl = new URL(request.url).origin;
    // /healthz and /readyz answer without a ready catalog: they are how one finds out why not.
    const path = new URL(request.url).pathname;
    if (path !== "/healthz" && path !== "/readyz") await w.ensureReady();
  } catch (e) {
    return notReadyResponse(e);
  }
  return withDeclaredLength(await w.app.fetch(request, env, ectx as never));
}

/**
 * workerd drops a Content-Length header set on a Response whose body is a plain ReadableStream
 * and answers chunked, so `/dl` downloads would lose their length (curl progress, resumption
 * planning). Piping the body through workerd's FixedLengthStream makes the runtime send the
 * declared length, and fail the response if the body does not match it.
 */
function withDeclaredLength(res: Response): Response {
  const declared = res.headers.get("content-length");
  const Fixed = (globalThis as { FixedLengthStream?: new (n: number) => TransformStream<Uint8Array, Uint8Array> }).FixedLengthStream;
  if (!res.body || declared === null || !Fixed || !/^\d+$/.test(declared)) return res;
  return new Response(res.body.pipeThrough(new Fixed(Number(declared))), res);
}

async function handleScheduled(controller: ScheduledControllerLike, env: WorkerEnv): Promise<void> {
  const w = await serviceFor(env);
  await w.ensureReady();
  const t0 = Date.now();
  try {
    const r = await tick(w.svc, { sweep: retentionSweep });
    w.svc.log.info("tick", { cron: controller.cron, ...r, ms: Date.now() - t0 });
  } catch (e) {
    w.svc.log.error("tick failed", { cron: controller.cron, error: (e as Error).stack ?? String(e) });
    throw e;
  }
}

// wrangler requires the Worker's handlers as the module's default export.
export default {
  fetch: handleFetch,
  scheduled: handleScheduled,
};
