// Fixtures for the restore-bundle tests: Backup records, an etcd that runs on a data dir we choose
// and leaves it in place when stopped (test/support/etcd.ts owns and deletes its own dir, but a
// restore test needs the node's data dir to survive etcd and to start etcd again on restored
// data), and helpers to build a bundle folder with our own tar writer and GNU tar.

import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { closeSync, createReadStream, createWriteStream, openSync, readFileSync, statSync } from "node:fs";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { Backup } from "../../src/core/backup-types.js";
import type { ClusterFacts, MasterFact } from "../../src/core/cluster-types.js";
import { bundleStream } from "../../src/core/restore/bundle.js";
import { freePort } from "./etcd.js";

export function makeFacts(masters: MasterFact[], overrides: Partial<ClusterFacts> = {}): ClusterFacts {
  return {
    masters,
    etcdPods: masters.map((m) => ({ name: `etcd-${m.name}`, node: m.name, ready: true })),
    etcdVersion: "3.4.23",
    kubernetesVersion: "1.30.4",
    deckhouseVersion: "1.68.2",
    multiMaster: masters.length > 1,
    discoveredAt: "2026-11-20T13:59:00Z",
    ...overrides,
  };
}

export function makeBackup(overrides: Partial<Backup> = {}): Backup {
  return {
    id: "01JD0000000000000000000000",
    cluster: "prod-a",
    policy: "prod-6h",
    runId: "01JD0000000000000000000001",
    state: "available",
    createdAt: "2026-11-20T14:03:05.123Z",
    target: "default",
    objectKey: "prod-a/2026/11/20/01JD0000000000000000000000.db.age",
    plaintext: { size: 20512, sha256: "a".repeat(64) },
    ciphertext: { size: 20700, sha256: "b".repeat(64) },
    etcd: { revision: 1234, keys: 56, version: "3.4.23" },
    recipients: ["age1qyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqs3290gq"],
    facts: makeFacts([{ name: "master-0", internalIP: "10.0.0.10" }]),
    hold: false,
    holdReason: null,
    lockedUntil: null,
    ...overrides,
  };
}

export const sha256File = (file: string): string =>
  spawnSync("sha256sum", [file], { encoding: "utf8" }).stdout.split(" ")[0]!;

export function run(cmd: string, args: string[], options: { env?: NodeJS.ProcessEnv; cwd?: string; input?: string } = {}) {
  const r = spawnSync(cmd, args, { encoding: "utf8", env: options.env ?? process.env, cwd: options.cwd, input: options.input });
  return { code: r.status ?? -1, stdout: r.stdout ?? "", stderr: r.stderr ?? "" };
}

export function mustRun(cmd: string, args: string[], options: { env?: NodeJS.ProcessEnv; cwd?: string } = {}): string {
  const r = run(cmd, args, options);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(" ")} exited ${r.code}: ${r.stderr.slice(-2000)}`);
  return r.stdout;
}

/** A fresh age identity from the age CLI: the key file and its recipient. */
export function ageKeygen(file: string): string {
  mustRun("age-keygen", ["-o", file]);
  return mustRun("age-keygen", ["-y", file]).trim();
}

/** The Backup record of a real encrypted snapshot. */
export function backupFor(plaintextFile: string, ciphertextFile: string, recipient: string, overrides: Partial<Backup> = {}): Backup {
  return makeBackup({
    plaintext: { size: statSync(plaintextFile).size, sha256: sha256File(plaintextFile) },
    ciphertext: { size: statSync(ciphertextFile).size, sha256: sha256File(ciphertextFile) },
    recipients: [recipient],
    ...overrides,
  });
}

/** Writes the bundle tar (our writer, snapshot streamed from disk); returns its declared size. */
export async function writeBundleTar(backup: Backup, ciphertextFile: string, tarFile: string, now = new Date()): Promise<number> {
  const body = Readable.toWeb(createReadStream(ciphertextFile)) as ReadableStream<Uint8Array>;
  const { stream, size } = bundleStream(backup, body, now);
  await pipeline(Readable.fromWeb(stream as import("node:stream/web").ReadableStream), createWriteStream(tarFile));
  return size;
}

export interface NodeEtcd {
  clientUrl: string;
  stop(): Promise<void>;
}

/** etcd on `dataDir` with member `name`, loopback ports; stop() leaves the data dir in place. */
export async function runEtcd(dataDir: string, name: string, logFile: string, port?: number): Promise<NodeEtcd> {
  const [clientPort, peerPort] = [port ?? (await freePort()), await freePort()];
  const clientUrl = `http://127.0.0.1:${clientPort}`;
  const peerUrl = `http://127.0.0.1:${peerPort}`;
  const fd = openSync(logFile, "a");
  const proc: ChildProcess = spawn(
    "etcd",
    [
      "--name", name,
      "--data-dir", dataDir,
      "--listen-client-urls", clientUrl,
      "--advertise-client-urls", clientUrl,
      "--listen-peer-urls", peerUrl,
      "--initial-advertise-peer-urls", peerUrl,
      "--initial-cluster", `${name}=${peerUrl}`,
      "--logger", "zap",
      "--log-level", "warn",
    ],
    { stdio: ["ignore", fd, fd] },
  );
  closeSync(fd);
  let exited = false;
  const exitedP = new Promise<void>((resolve) => proc.on("exit", () => {
    exited = true;
    resolve();
  }));
  const deadline = Date.now() + 15_000;
  for (;;) {
    if (exited) throw new Error(`etcd exited: ${readFileSync(logFile, "utf8").slice(-1500)}`);
    const ok = await fetch(`${clientUrl}/health`).then((r) => r.json() as Promise<{ health?: string }>).then((b) => b.health === "true", () => false);
    if (ok) break;
    if (Date.now() > deadline) {
      proc.kill("SIGKILL");
      throw new Error("etcd did not become healthy");
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    clientUrl,
    async stop() {
      if (!exited) proc.kill("SIGTERM");
      await Promise.race([exitedP, new Promise((r) => setTimeout(r, 10_000))]);
      if (!exited) {
        proc.kill("SIGKILL");
        await exitedP;
      }
    },
  };
}

export const etcdctl = (clientUrl: string, ...args: string[]): string =>
  mustRun("etcdctl", ["--endpoints", clientUrl, ...args], { env: { ...process.env, ETCDCTL_API: "3" } });

/** All keys under the prefix (all keys by default), sorted. */
export const etcdKeys = (clientUrl: string, prefix = ""): string[] =>
  etcdctl(clientUrl, "get", prefix, "--prefix", "--keys-only")
    .split("\n")
    .filter(Boolean)
    .sort();

/** Collects what runVerify writes to stdout/stderr. */
export function textSink(): { sink: { write(s: string): boolean }; text(): string } {
  let out = "";
  return { sink: { write: (s: string) => ((out += s), true) }, text: () => out };
}

/** Paths of a temporary node root that restore.sh is pointed at through its environment overrides. */
export interface NodeRootPaths {
  manifests: string;
  data: string;
  pki: string;
  parent: string;
}

/** restore.sh's environment for a temporary node root (Debian's etcdctl 3.4). */
export function restoreEnv(paths: NodeRootPaths, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return {
    ...process.env,
    ETCD_MANIFESTS_DIR: paths.manifests,
    ETCD_DATA_DIR: paths.data,
    ETCD_PKI_DIR: paths.pki,
    ETCD_BACKUP_PARENT: paths.parent,
    ETCDCTL: "/usr/bin/etcdctl",
    ETCD_STOP_TIMEOUT: "10",
    ...extra,
  };
}
