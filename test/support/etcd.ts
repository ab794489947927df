// A real etcd (Debian's 3.4) for tests and benchmarks: free loopback ports, a temp dir, its own
// process group (stop() kills the group, nothing is left behind). Data goes in through the
// gRPC-gateway JSON API (`/v3/kv/put`, base64), which with a handful of parallel ~256 KiB puts
// fills etcd at ~30-40 MiB/s on this machine — 1 GiB in well under a minute.
//
// Trailer fact, checked here with etcd/etcdctl 3.4.23: the file `etcdctl snapshot save` writes is
// the bbolt db followed by the 32-byte SHA-256 the server appends to the snapshot stream
// (length % 512 == 32 and the last 32 bytes are sha256 of the rest). So a snapshot saved by 3.4 is
// byte-for-byte what Deckhouse's `etcdctl snapshot pipe` writes to stdout; nothing to append.

import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, openSync, closeSync, readFileSync, rmSync, statSync, writeFileSync, chmodSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { killGroup, trackGroup, untrackGroup } from "./process-groups.js";
import { join } from "node:path";

export interface EtcdOptions {
  /** `--name` of the member (default `etcd-test`). */
  name?: string;
  /** `--quota-backend-bytes` (default 4 GiB, so 1 GiB fills never hit the space alarm). */
  quotaBackendBytes?: number;
  /** Parent of the temp dir (default the OS temp dir). */
  parentDir?: string;
}

export interface PutOptions {
  /** How many keys (default 100). */
  count: number;
  /** Bytes per value (default 512). Values are `k8s\0` + random bytes, like apiserver protobuf. */
  valueSize?: number;
  /** Resource part of the key (default `configmaps`). */
  resource?: string;
  /** Keys are spread over this many namespaces `ns-<i>` (default 3). */
  namespaces?: number;
  /** Name prefix (default `obj`). */
  namePrefix?: string;
  /** Parallel requests (default 8). */
  concurrency?: number;
}

export interface FillOptions {
  /** Bytes per value (default 256 KiB; the gateway's request limit is raised to allow up to 6 MiB). */
  valueSize?: number;
  /** Parallel requests (default 6). */
  concurrency?: number;
}

export interface EtcdStatus {
  dbSize: number;
  revision: number;
  version: string;
}

export interface TestEtcd {
  readonly name: string;
  readonly clientUrl: string;
  readonly peerUrl: string;
  readonly dir: string;
  readonly dataDir: string;
  readonly pid: number;
  put(key: string, value: string | Uint8Array): Promise<void>;
  /** Writes `count` keys `/registry/<resource>/<ns>/<name>`; returns them in write order. */
  putObjects(options: PutOptions): Promise<string[]>;
  /** Writes big objects until the backend db is at least `bytes` (approximately: one round over). */
  fillTo(bytes: number, options?: FillOptions): Promise<EtcdStatus & { keys: number }>;
  status(): Promise<EtcdStatus>;
  /** All keys, sorted as etcd sorts them (bytewise). */
  keys(): Promise<string[]>;
  /** All keys with values; fine for test-sized data, not for a filled GiB. */
  getAll(): Promise<Map<string, Buffer>>;
  /** `etcdctl snapshot save file`; returns the file's size. */
  snapshotTo(file: string): Promise<number>;
  /**
   * argv of a local command that streams a fresh snapshot of this etcd to stdout exactly as
   * `etcdctl snapshot pipe` would (db + SHA-256 trailer): for the kube simulator's exec rules.
   * etcdctl's own log lines go to stderr.
   */
  snapshotPipeCommand(): string[];
  stop(): Promise<void>;
}


export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      const port = typeof addr === "object" && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

const b64 = (v: string | Uint8Array) => Buffer.from(v).toString("base64");
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function k8sValue(size: number): Buffer {
  const v = randomBytes(Math.max(size, 4));
  v.write("k8s\0", 0, "latin1");
  return v.subarray(0, Math.max(size, 4));
}

async function runPool<T>(n: number, concurrency: number, job: (i: number) => Promise<T>): Promise<T[]> {
  const out: T[] = new Array(n);
  let next = 0;
  const worker = async () => {
    while (next < n) {
      const i = next++;
      out[i] = await job(i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, n) }, worker));
  return out;
}

export async function startEtcd(options: EtcdOptions = {}): Promise<TestEtcd> {
  let lastError: unknown;
  // Free ports are found by binding and releasing; another process may grab one in between.
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      return await startOnce(options);
    } catch (e) {
      lastError = e;
      if (!String((e as Error).message).includes("address already in use")) throw e;
    }
  }
  throw lastError;
}

async function startOnce(options: EtcdOptions): Promise<TestEtcd> {
  const name = options.name ?? "etcd-test";
  const dir = mkdtempSync(join(options.parentDir ?? tmpdir(), "etcd-vault-etcd-"));
  const dataDir = join(dir, "data");
  const logFile = join(dir, "etcd.log");
  const [clientPort, peerPort] = [await freePort(), await freePort()];
  const clientUrl = `http://127.0.0.1:${clientPort}`;
  const peerUrl = `http://127.0.0.1:${peerPort}`;
  const args = [
    "--name", name,
    "--data-dir", dataDir,
    "--listen-client-urls", clientUrl,
    "--advertise-client-urls", clientUrl,
    "--listen-peer-urls", peerUrl,
    "--initial-advertise-peer-urls", peerUrl,
    "--initial-cluster", `${name}=${peerUrl}`,
    "--initial-cluster-state", "new",
    "--quota-backend-bytes", String(options.quotaBackendBytes ?? 4 * 1024 ** 3),
    "--max-request-bytes", String(8 * 1024 * 1024),
    // Big values: keep fewer raft entries in memory between snapshots.
    "--snapshot-count", "2000",
    "--logger", "zap",
    "--log-level", "warn",
  ];
  const logFd = openSync(logFile, "a");
  const proc = spawn("etcd", args, { cwd: dir, detached: true, stdio: ["ignore", logFd, logFd] });
  closeSync(logFd);
  trackGroup(proc);
  let exited = false;
  proc.on("exit", () => {
    exited = true;
    untrackGroup(proc);
  });

  const cleanup = async () => {
    if (!exited) {
      killGroup(proc, "SIGTERM");
      for (let i = 0; i < 50 && !exited; i++) await sleep(100);
      if (!exited) killGroup(proc, "SIGKILL");
      for (let i = 0; i < 20 && !exited; i++) await sleep(50);
    }
    rmSync(dir, { recursive: true, force: true });
  };

  const deadline = Date.now() + 15_000;
  for (;;) {
    if (exited) {
      const log = readFileSync(logFile, "utf8").slice(-2000);
      rmSync(dir, { recursive: true, force: true });
      throw new Error(`etcd exited during start-up: ${log}`);
    }
    try {
      const r = await fetch(`${clientUrl}/health`);
      const body = (await r.json()) as { health?: string };
      if (body.health === "true") break;
    } catch {
      /* not listening yet */
    }
    if (Date.now() > deadline) {
      await cleanup();
      throw new Error("etcd did not become healthy within 15 s");
    }
    await sleep(100);
  }

  const call = async <T>(path: string, body: unknown): Promise<T> => {
    const r = await fetch(`${clientUrl}${path}`, { method: "POST", body: JSON.stringify(body) });
    const text = await r.text();
    if (!r.ok) throw new Error(`etcd ${path}: HTTP ${r.status}: ${text.slice(0, 300)}`);
    return JSON.parse(text) as T;
  };

  const put = async (key: string, value: string | Uint8Array) => {
    await call("/v3/kv/put", { key: b64(key), value: b64(value) });
  };

  const status = async (): Promise<EtcdStatus> => {
    const s = await call<{ header?: { revision?: string }; version?: string; dbSize?: string }>("/v3/maintenance/status", {});
    return { dbSize: Number(s.dbSize ?? 0), revision: Number(s.header?.revision ?? 0), version: s.version ?? "" };
  };

  const range = async (keysOnly: boolean): Promise<Array<{ key: string; value: Buffer }>> => {
    const out: Array<{ key: string; value: Buffer }> = [];
    let from = Buffer.from([0]);
    for (;;) {
      const r = await call<{ kvs?: Array<{ key: string; value?: string }>; more?: boolean }>("/v3/kv/range", {
        key: from.toString("base64"),
        range_end: b64("\0"),
        limit: 1000,
        keys_only: keysOnly,
      });
      const kvs = r.kvs ?? [];
      for (const kv of kvs) out.push({ key: Buffer.from(kv.key, "base64").toString("utf8"), value: Buffer.from(kv.value ?? "", "base64") });
      if (!r.more || kvs.length === 0) return out;
      from = Buffer.concat([Buffer.from(kvs[kvs.length - 1]!.key, "base64"), Buffer.from([0])]);
    }
  };

  let fillSeq = 0;
  const etcd: TestEtcd = {
    name,
    clientUrl,
    peerUrl,
    dir,
    dataDir,
    pid: proc.pid!,
    put,
    status,
    async putObjects(o) {
      const resource = o.resource ?? "configmaps";
      const namespaces = o.namespaces ?? 3;
      const prefix = o.namePrefix ?? "obj";
      const keys = Array.from({ length: o.count }, (_, i) => `/registry/${resource}/ns-${i % namespaces}/${prefix}-${i}`);
      await runPool(keys.length, o.concurrency ?? 8, (i) => put(keys[i]!, k8sValue(o.valueSize ?? 512)));
      return keys;
    },
    async fillTo(bytes, o = {}) {
      const valueSize = o.valueSize ?? 256 * 1024;
      let keys = 0;
      for (;;) {
        const s = await status();
        if (s.dbSize >= bytes) return { ...s, keys };
        // bbolt adds ~15 % over the raw values; aim a little under and check again.
        const n = Math.max(1, Math.ceil(((bytes - s.dbSize) * 0.85) / valueSize));
        const round = fillSeq++;
        await runPool(n, o.concurrency ?? 6, (i) => put(`/registry/secrets/fill-${round % 7}/blob-${round}-${i}`, k8sValue(valueSize)));
        keys += n;
      }
    },
    async keys() {
      return (await range(true)).map((kv) => kv.key);
    },
    async getAll() {
      return new Map((await range(false)).map((kv) => [kv.key, kv.value]));
    },
    async snapshotTo(file) {
      const r = spawnSync("etcdctl", ["--endpoints", clientUrl, "snapshot", "save", file], { encoding: "utf8" });
      if (r.status !== 0) throw new Error(`etcdctl snapshot save failed: ${r.stderr.slice(-1000)}`);
      return statSync(file).size;
    },
    snapshotPipeCommand() {
      const script = join(dir, "snapshot-pipe.sh");
      writeFileSync(
        script,
        [
          "#!/bin/bash",
          "# Stand-in for Deckhouse's `etcdctl snapshot pipe`: save a snapshot (3.4 keeps the SHA-256",
          "# trailer in the file), stream it to stdout, remove it.",
          "set -euo pipefail",
          `tmp=$(mktemp -p ${JSON.stringify(dir)} pipe.XXXXXX)`,
          'trap \'rm -f "$tmp" "$tmp.part"\' EXIT',
          `etcdctl --endpoints ${clientUrl} snapshot save "$tmp" >&2`,
          'cat "$tmp"',
          "",
        ].join("\n"),
      );
      chmodSync(script, 0o755);
      return ["bash", script];
    },
    async stop() {
      await cleanup();
    },
  };
  return etcd;
}
