// The service and the Kubernetes API simulator, each as its own process, for benchmarks that must
// measure one process alone. Everything started here is stopped by `stop()`, and killed by an exit
// hook if the benchmark dies first.

import { spawn, type ChildProcess } from "node:child_process";
import { openSync, closeSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { build, BUNDLE, startNodeArgs } from "../../bin/build.js";
import { loadConfig, type Config } from "../../src/entry/config.js";
import { freePort } from "../../test/support/etcd.js";
import type { KubeSimConfig } from "../../test/support/kube-sim.js";

export const REPO_ROOT = fileURLToPath(new URL("../../", import.meta.url));
export const BENCH_ADMIN_TOKEN = "bench-admin-token-0123456789abcdef";
export const BENCH_MASTER_KEY = "00".repeat(31) + "07";

/**
 * The configuration of a service built in the benchmark's own process (bench:tick,
 * bench:retention): the bench's token and key, no scheduler timer, quiet logs.
 */
export function inProcessServiceConfig(dataDir: string): Config {
  return loadConfig({
    ETCD_VAULT_DATA_DIR: dataDir,
    ETCD_VAULT_ADMIN_TOKEN: BENCH_ADMIN_TOKEN,
    ETCD_VAULT_MASTER_KEY: BENCH_MASTER_KEY,
    ETCD_VAULT_SCHEDULER: "off",
    ETCD_VAULT_LOG_LEVEL: "error",
  });
}

const live = new Set<ChildProcess>();
let hooked = false;
function track(p: ChildProcess): void {
  live.add(p);
  p.once("exit", () => live.delete(p));
  if (hooked) return;
  hooked = true;
  process.on("exit", () => {
    for (const c of live) c.kill("SIGKILL");
  });
}

async function stopChild(p: ChildProcess, graceMs = 10_000): Promise<void> {
  if (p.exitCode !== null || p.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => p.once("exit", () => resolve()));
  p.kill("SIGTERM");
  const timer = setTimeout(() => p.kill("SIGKILL"), graceMs);
  await exited;
  clearTimeout(timer);
}

/** First stdout line of a child, parsed as JSON (the ready line of our *-main.ts scripts). */
function readyLine<T>(child: ChildProcess, what: string, timeoutMs = 30_000): Promise<T> {
  return new Promise((resolve, reject) => {
    let out = "";
    let err = "";
    const timer = setTimeout(() => reject(new Error(`${what} did not start within ${timeoutMs / 1000} s: ${err.slice(-2000)}`)), timeoutMs);
    child.stderr?.on("data", (d: Buffer) => (err = (err + d.toString()).slice(-4000)));
    child.stdout?.on("data", (d: Buffer) => {
      out += d.toString();
      const nl = out.indexOf("\n");
      if (nl < 0) return;
      clearTimeout(timer);
      try {
        resolve(JSON.parse(out.slice(0, nl)) as T);
      } catch {
        reject(new Error(`${what} printed an unexpected line: ${out.slice(0, nl)}`));
      }
    });
    child.once("exit", (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`${what} exited early (${code ?? signal}): ${err.slice(-2000)}`));
    });
  });
}

export interface CallResult {
  status: number;
  json: any; // eslint-disable-line @typescript-eslint/no-explicit-any
  text: string;
}

export interface ServiceProcess {
  url: string;
  pid: number;
  port: number;
  dataDir: string;
  logFile: string;
  call(method: string, path: string, body?: unknown): Promise<CallResult>;
  stop(): Promise<void>;
}

/**
 * What `npm start` runs after `node`, with bin/etcd-vault.js replaced by the bundle it loads: its
 * V8 flags, dist/etcd-vault.mjs and `serve`. The harness builds the bundle once per benchmark
 * process (ensureBundle) and runs it directly, so that an edit under src/ during a benchmark
 * cannot make a measured service rebuild it at start-up.
 */
const START_ARGS = ((): string[] => {
  const { flags, args } = startNodeArgs();
  return [...flags, BUNDLE, ...args];
})();

let bundled: Promise<void> | null = null;
/** Builds dist/etcd-vault.mjs from the current sources, once per benchmark process. */
function ensureBundle(): Promise<void> {
  bundled ??= build({ quiet: true });
  return bundled;
}

/**
 * `node --max-semi-space-size=1 dist/etcd-vault.mjs serve`, what `npm start` runs once the bin
 * has checked the bundle, with its own data dir: the Node edition exactly as deployed (scheduler
 * and in-process runner on unless `env` says otherwise).
 */
export async function startServiceProcess(o: {
  dataDir: string;
  env?: Record<string, string>;
  port?: number;
  /** Extra node options, e.g. `--cpu-prof` (the profile is written when the service stops). */
  nodeArgs?: string[];
}): Promise<ServiceProcess> {
  const port = o.port ?? (await freePort());
  const url = `http://127.0.0.1:${port}`;
  const logFile = join(o.dataDir, `service-${port}.log`);
  const log = openSync(logFile, "a");
  await ensureBundle();
  const child = spawn(process.execPath, [...(o.nodeArgs ?? []), ...START_ARGS], {
    cwd: REPO_ROOT,
    stdio: ["ignore", log, log],
    env: {
      ...process.env,
      PORT: String(port),
      ETCD_VAULT_DATA_DIR: o.dataDir,
      ETCD_VAULT_ADMIN_TOKEN: BENCH_ADMIN_TOKEN,
      ETCD_VAULT_MASTER_KEY: BENCH_MASTER_KEY,
      ETCD_VAULT_PUBLIC_URL: url,
      ETCD_VAULT_SCHEDULER: "on",
      ETCD_VAULT_LOG_LEVEL: "warn",
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true",
      ...o.env,
    },
  });
  closeSync(log);
  track(child);
  const call = async (method: string, path: string, body?: unknown): Promise<CallResult> => {
    const res = await fetch(url + path, {
      method,
      headers: { authorization: `Bearer ${BENCH_ADMIN_TOKEN}`, ...(body === undefined ? {} : { "content-type": "application/json" }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    let json: unknown = null;
    try {
      json = text ? JSON.parse(text) : null;
    } catch {
      /* not JSON */
    }
    return { status: res.status, json, text };
  };
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`the service exited during start-up: ${readFileSync(logFile, "utf8").slice(-2000)}`);
    try {
      const r = await fetch(`${url}/readyz`);
      if (r.ok) break;
    } catch {
      /* not listening yet */
    }
    if (Date.now() > deadline) {
      await stopChild(child);
      throw new Error(`the service did not become ready within 60 s: ${readFileSync(logFile, "utf8").slice(-2000)}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return { url, port, pid: child.pid!, dataDir: o.dataDir, logFile, call, stop: () => stopChild(child) };
}

export interface SimProcess {
  url: string;
  pid: number;
  kubeconfig: string;
  stop(): Promise<void>;
}

/** test/support/kube-sim-main.ts in its own process, configured once from `config`. */
export async function startSimProcess(config: KubeSimConfig, dir: string): Promise<SimProcess> {
  const configFile = join(dir, "kube-sim.json");
  writeFileSync(configFile, JSON.stringify(config));
  const child = spawn(process.execPath, ["--import", "tsx", "test/support/kube-sim-main.ts", "--config", configFile], {
    cwd: REPO_ROOT,
    stdio: ["ignore", "pipe", "pipe"],
  });
  track(child);
  let info: { url: string; kubeconfigPath: string };
  try {
    info = await readyLine(child, "kube-sim");
  } catch (e) {
    child.kill("SIGKILL");
    throw e;
  }
  return { url: info.url, pid: child.pid!, kubeconfig: readFileSync(info.kubeconfigPath, "utf8"), stop: () => stopChild(child) };
}

export interface TsxChild {
  pid: number;
  /** Resolves with the child's stdout once it exits with 0; rejects otherwise. */
  done: Promise<string>;
  /** Asks it to finish (SIGTERM) and waits for its output. */
  finish(): Promise<string>;
}

/** Starts `node --import tsx <script> args…` (a benchmark helper) in its own process. */
export function spawnTsx(script: string, args: string[], opts: { timeoutMs?: number } = {}): TsxChild {
  const child = spawn(process.execPath, ["--import", "tsx", script, ...args], { cwd: REPO_ROOT, stdio: ["ignore", "pipe", "pipe"] });
  track(child);
  let out = "";
  let err = "";
  child.stdout!.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr!.on("data", (d: Buffer) => (err = (err + d.toString()).slice(-4000)));
  const timer = opts.timeoutMs ? setTimeout(() => child.kill("SIGKILL"), opts.timeoutMs) : null;
  const done = new Promise<string>((resolve, reject) => {
    child.once("exit", (code, signal) => {
      if (timer) clearTimeout(timer);
      if (code === 0) resolve(out);
      else reject(new Error(`${script} failed (${code ?? signal}): ${err.trim().slice(-2000)}`));
    });
  });
  return {
    pid: child.pid!,
    done,
    finish() {
      child.kill("SIGTERM");
      return done;
    },
  };
}

/** Runs `node --import tsx <script> args…` to completion; resolves with its stdout. */
export function runTsx(script: string, args: string[], opts: { timeoutMs?: number } = {}): Promise<string> {
  return spawnTsx(script, args, opts).done;
}
