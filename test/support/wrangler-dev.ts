// wrangler's local runtime for tests: `wrangler d1 migrations apply --local` and `wrangler dev`
// (workerd with local D1 and R2) as real processes, fully offline: no login, no telemetry, no
// update check, no download of the `request.cf` data. `wrangler dev` runs in its own process
// group (it starts workerd and esbuild as children) and stop() kills the whole group.

import { spawn, type ChildProcess } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { join } from "node:path";
import { killGroup, trackGroup, untrackGroup } from "./process-groups.js";
import { freePort } from "./etcd.js";

export const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const WRANGLER = join(ROOT, "node_modules/.bin/wrangler");

/** Environment that keeps wrangler local and quiet. */
export function offlineEnv(): NodeJS.ProcessEnv {
  return {
    ...process.env,
    WRANGLER_SEND_METRICS: "false",
    WRANGLER_SEND_ERROR_REPORTS: "false",
    // The banner is what triggers the npm update check.
    WRANGLER_HIDE_BANNER: "true",
    // Miniflare would fetch https://workers.cloudflare.com/cf.json for `request.cf`.
    CLOUDFLARE_CF_FETCH_ENABLED: "false",
    // wrangler still asks the npm registry for a newer version when it reports an error: point
    // that at a closed loopback port so nothing leaves the machine.
    npm_config_registry: "http://127.0.0.1:9/",
    NO_COLOR: "1",
    CI: "1",
  };
}


function run(args: string[], timeoutMs: number): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(WRANGLER, args, { cwd: ROOT, env: offlineEnv(), stdio: ["ignore", "pipe", "pipe"], detached: true });
    trackGroup(child);
    let output = "";
    child.stdout!.on("data", (d) => (output += d));
    child.stderr!.on("data", (d) => (output += d));
    const timer = setTimeout(() => killGroup(child, "SIGKILL"), timeoutMs);
    child.on("error", reject);
    child.on("exit", (code) => {
      clearTimeout(timer);
      untrackGroup(child);
      resolve({ code, output });
    });
  });
}

/** `wrangler d1 migrations apply DB --local --persist-to dir`; returns wrangler's output. */
export async function applyD1Migrations(persistTo: string, binding = "DB"): Promise<string> {
  const r = await run(["d1", "migrations", "apply", binding, "--local", "--persist-to", persistTo], 60_000);
  if (r.code !== 0) throw new Error(`wrangler d1 migrations apply exited ${r.code}:\n${r.output.slice(-3000)}`);
  return r.output;
}

export interface BuiltWorker {
  /** A wrangler config for `wrangler dev`: the top-level wrangler.toml, pointed at the bundle. */
  config: string;
  script: string;
  /** esbuild metafile of the bundle: which modules are on the Worker's import graph. */
  metafile: { inputs: Record<string, unknown>; outputs: Record<string, { imports?: Array<{ path: string; external?: boolean }> }> };
}

/**
 * Bundles the Worker exactly as `wrangler deploy` would (`--dry-run`), and writes a config that
 * serves that bundle unchanged (`no_bundle`). `wrangler dev` on the source tree would rebuild
 * and restart the Worker whenever a file under src/ changes mid-test; on a fixed bundle it cannot.
 */
export async function buildWorker(outDir: string): Promise<BuiltWorker> {
  const metafilePath = join(outDir, "meta.json");
  const r = await run(["deploy", "--dry-run", "--outdir", outDir, "--metafile", metafilePath], 60_000);
  if (r.code !== 0) throw new Error(`wrangler deploy --dry-run exited ${r.code}:\n${r.output.slice(-3000)}`);
  const script = join(outDir, "worker.js");
  const toml = readFileSync(join(ROOT, "wrangler.toml"), "utf8");
  const main = /^main = .*$/m;
  if (!main.test(toml)) throw new Error("wrangler.toml has no top-level `main = …` line");
  const config = join(outDir, "wrangler.toml");
  writeFileSync(
    config,
    toml
      .replace(main, `main = ${JSON.stringify(script)}\nno_bundle = true`)
      .replace(/^migrations_dir = "(.*)"$/m, (_, dir: string) => `migrations_dir = ${JSON.stringify(join(ROOT, dir))}`),
  );
  return { config, script, metafile: JSON.parse(readFileSync(metafilePath, "utf8")) };
}

export interface WranglerDev {
  url: string;
  port: number;
  output(): string;
  stop(): Promise<void>;
}

/** `wrangler dev --local` on a free loopback port; resolves once /healthz answers. */
export async function startWranglerDev(o: {
  persistTo: string;
  vars: Record<string, string>;
  testScheduled?: boolean;
  /** Config file (default: the top-level wrangler.toml, i.e. the source tree, rebuilt on change). */
  config?: string;
}): Promise<WranglerDev> {
  const [port, inspector] = [await freePort(), await freePort()];
  const args = [
    "dev",
    ...(o.config ? ["--config", o.config] : []),
    "--local",
    "--ip", "127.0.0.1",
    "--port", String(port),
    "--inspector-port", String(inspector),
    "--persist-to", o.persistTo,
    "--show-interactive-dev-session=false",
    "--log-level", "log",
    ...(o.testScheduled ? ["--test-scheduled"] : []),
    // Values go through argv, never into a file: they are per-test secrets.
    ...Object.entries(o.vars).flatMap(([k, v]) => ["--var", `${k}:${v}`]),
  ];
  const child = spawn(WRANGLER, args, { cwd: ROOT, env: offlineEnv(), stdio: ["ignore", "pipe", "pipe"], detached: true });
  trackGroup(child);
  let out = "";
  child.stdout!.on("data", (d) => (out += d));
  child.stderr!.on("data", (d) => (out += d));
  let exited = false;
  child.on("exit", () => {
    exited = true;
    untrackGroup(child);
  });
  const stop = async () => {
    if (!exited) {
      killGroup(child, "SIGTERM");
      for (let i = 0; i < 50 && !exited; i++) await new Promise((r) => setTimeout(r, 100));
      if (!exited) killGroup(child, "SIGKILL");
    }
    // workerd may outlive wrangler's exit by a moment; the group kill reaches it too.
    killGroup(child, "SIGKILL");
  };
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 45_000;
  for (;;) {
    if (exited) throw new Error(`wrangler dev exited early:\n${out.slice(-3000)}`);
    try {
      const res = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(2000) });
      if (res.ok) break;
    } catch {
      /* not up yet */
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`wrangler dev did not answer /healthz within 45 s:\n${out.slice(-3000)}`);
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  return { url, port, output: () => out, stop };
}
