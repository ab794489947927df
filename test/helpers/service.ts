// Builds a real Node-edition service for integration tests: a SQLite file and a vault directory
// in a temp dir, a known admin token, the scheduler off unless asked for. Requests go through
// the real Hono app (app.request) — the same code path as the HTTP server.

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadConfig } from "../../src/entry/config.js";
import { buildNodeService, type NodeService } from "../../src/entry/node.js";
import type { Clock } from "../../src/core/ports.js";

export const ADMIN_TOKEN = "test-admin-token-0123456789abcdef";

export interface TestService extends NodeService {
  dir: string;
  call(method: string, path: string, body?: unknown, token?: string | null, headers?: Record<string, string>): Promise<{ status: number; json: any; text: string; headers: Headers }>;
  stop(): Promise<void>;
}

export async function startTestService(env: Record<string, string> = {}, opts: { clock?: Clock; dir?: string } = {}): Promise<TestService> {
  const dir = opts.dir ?? mkdtempSync(join(tmpdir(), "etcd-vault-test-"));
  const config = loadConfig({
    ETCD_VAULT_DATA_DIR: join(dir, "data"),
    ETCD_VAULT_ADMIN_TOKEN: ADMIN_TOKEN,
    ETCD_VAULT_MASTER_KEY: "00".repeat(31) + "01",
    ETCD_VAULT_SCHEDULER: "off",
    ETCD_VAULT_LOG_LEVEL: "error",
    ...env,
  });
  const svc = await buildNodeService(config, { quiet: true, clock: opts.clock });
  const call: TestService["call"] = async (method, path, body, token = ADMIN_TOKEN, headers = {}) => {
    const h: Record<string, string> = { ...headers };
    if (token) h.authorization = `Bearer ${token}`;
    let payload: string | undefined;
    if (body !== undefined) {
      payload = typeof body === "string" ? body : JSON.stringify(body);
      h["content-type"] ??= "application/json";
    }
    const res = await svc.app.request(path, { method, headers: h, body: payload });
    const text = await res.text();
    let json: unknown = null;
    try {
      json = text ? JSON.parse(text) : null;
    } catch {
      /* not JSON */
    }
    return { status: res.status, json, text, headers: res.headers };
  };
  return {
    ...svc,
    dir,
    call,
    async stop() {
      await svc.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
