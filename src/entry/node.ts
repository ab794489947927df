// Node edition: builds every service once (catalog, secrets, stores, kube access, scheduler,
// in-process runner) and serves the Hono app. `etcd-vault serve` and `npm start` land here.

import { serve, type ServerType } from "@hono/node-server";
import { getConnInfo } from "@hono/node-server/conninfo";
import { randomBytes } from "node:crypto";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { createApp } from "../api/app.js";
import type { RemoteAddrFn } from "../api/env.js";
import { openSqliteCatalog, pendingMigrations, type SqliteCatalog } from "../catalog/sqlite.js";
import { createSecretBox } from "../crypto/secret-box.js";
import { KubeClusterAccess } from "../kube/cluster-access.js";
import { PoolRoutedAccess } from "../services/runner-handoff.js";
import { settingsFrom, type ServiceContext } from "../services/context.js";
import type { Clock } from "../core/ports.js";
import { ensureAdminToken } from "../services/tokens.js";
import { createStoreResolver, ensureDefaultTarget } from "../services/targets.js";
import { nodeStoreFactory } from "../vault/open-store.js";
import type { Config } from "./config.js";
import { createLogger } from "./logger.js";
import { loadMasterKeys } from "./master-key.js";
import { nodeExtensions, startBackground } from "./node-extensions.js";

import { VERSION } from "./version.js";
export { VERSION };

export interface NodeService {
  svc: ServiceContext;
  catalog: SqliteCatalog;
  app: ReturnType<typeof createApp>;
  close(): Promise<void>;
}

export async function buildNodeService(
  config: Config,
  opts: { quiet?: boolean; clock?: Clock } = {},
): Promise<NodeService> {
  const log = createLogger(opts.quiet ? "error" : config.ETCD_VAULT_LOG_LEVEL);
  mkdirSync(config.dataDir, { recursive: true });
  const catalog = openSqliteCatalog(join(config.dataDir, "catalog.db"));
  const secrets = await createSecretBox(loadMasterKeys(config.ETCD_VAULT_MASTER_KEY, config.dataDir, log));
  let wake: () => void = () => {};
  // Direct access for clusters without a pool (and for the in-process runner, which serves them).
  const kube = new KubeClusterAccess({ log, allowCredentialCommands: config.ETCD_VAULT_ALLOW_CREDENTIAL_COMMANDS });
  const svc: ServiceContext = {
    catalog,
    secrets,
    clock: opts.clock ?? { now: () => new Date() },
    log,
    access: new PoolRoutedAccess(kube, () => svc),
    storeFor: async () => {
      throw new Error("stores not ready");
    },
    settings: settingsFrom(config, config.publicUrl),
    notifyWork: () => wake(),
    randomBytes: (n) => new Uint8Array(randomBytes(n)),
  };
  svc.storeFor = createStoreResolver(svc, nodeStoreFactory);
  await ensureDefaultTarget(svc, config.storageUrl);

  const admin = await ensureAdminToken(svc, config.ETCD_VAULT_ADMIN_TOKEN);
  if (admin.token) {
    // Printed once, on the terminal only; only its hash is stored.
    process.stderr.write(
      `\n  etcd-vault: generated the first admin token (shown only now, store it safely):\n\n    ${admin.token}\n\n`,
    );
  }

  const remoteAddr: RemoteAddrFn = (c) => {
    try {
      return getConnInfo(c).remote.address ?? null;
    } catch {
      return null;
    }
  };
  const app = createApp({
    svc,
    version: VERSION,
    remoteAddr,
    ready: async () => {
      try {
        const pending = pendingMigrations(catalog.sqlite);
        return pending ? { ok: false, reason: `${pending} migration(s) not applied` } : { ok: true };
      } catch (e) {
        return { ok: false, reason: `catalog unreachable: ${(e as Error).message}` };
      }
    },
    extend: nodeExtensions(remoteAddr),
  });
  const background = await startBackground({ ...svc, access: kube }, config, (fn) => (wake = fn));
  return {
    svc,
    catalog,
    app,
    async close() {
      await background.stop();
      catalog.close();
    },
  };
}

export async function serveNode(config: Config): Promise<{ server: ServerType; service: NodeService }> {
  const service = await buildNodeService(config);
  const server = serve({ fetch: service.app.fetch, port: config.PORT, hostname: config.ETCD_VAULT_LISTEN_HOST });
  service.svc.log.info("etcd-vault listening", {
    host: config.ETCD_VAULT_LISTEN_HOST,
    port: config.PORT,
    dataDir: config.dataDir,
    publicUrl: config.publicUrl,
    scheduler: config.ETCD_VAULT_SCHEDULER,
  });
  const stop = async () => {
    service.svc.log.info("shutting down");
    server.close();
    await service.close();
    process.exit(0);
  };
  process.once("SIGTERM", stop);
  process.once("SIGINT", stop);
  return { server, service };
}
