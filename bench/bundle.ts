// bench:bundle — restore-bundle downloads through signed links, served by the real HTTP server.
//
//   npm run bench:bundle [-- --size 1g] [--repeat 3]
//
// Setup (real parts, each in its own process): a random "database" of --size (a multiple of 512
// bytes) made into an etcd snapshot stream by the simulator's exec (`cat` + its SHA-256 trailer,
// test/support/kube-sim.ts rawDbWithTrailerCommand); the service (`etcd-vault serve`) captures it
// twice: into the local vault (target `default`, a file:// dir) and into s3rver (target `s3`).
// The service is then restarted, so its VmHWM covers downloads only.
//
// Measured per target, from this process (the client) against the service process:
//   bundle   GET /dl/{token} of a `bundle` link: the plain tar (RESTORE.md, restore.sh, … and the
//            encrypted snapshot streamed from the vault), read to the end;
//   snapshot GET /dl/{token} of a `snapshot` link: the object alone through the same server;
//   direct   the object read straight from the vault by this process (the file for `default`,
//            GetObject from s3rver for `s3`), no service involved.
// Time to first byte is request → first body byte. The service's RSS is sampled every 50 ms.
//
// Targets (issue 7): first byte of a bundle < 200 ms; bundle throughput within 10 % of reading the
// object straight from the vault; service memory flat for a 1 GiB snapshot.

import { GetObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { randomFillSync } from "node:crypto";
import { createReadStream, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { open } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Readable } from "node:stream";
import { parseArgs } from "node:util";
import { etcdPod, masterNode, rawDbWithTrailerCommand } from "../test/support/kube-sim.js";
import { ageKeygen } from "../test/support/restore-fixtures.js";
import { S3RVER_CREDENTIALS, S3RVER_REGION, s3ClientFor, startS3Server, type S3Server } from "../test/support/s3-server.js";
import { RssSampler, procMemory } from "./harness/proc-stats.js";
import { startServiceProcess, startSimProcess, type ServiceProcess, type SimProcess } from "./harness/processes.js";
import { MiB, fixed, formatSize, machineFacts, parseSize, pass, percentile, printFacts, printTable } from "./harness/report.js";

// This process reads from s3rver through the SDK too; its Node-version notice is noise here.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = "true";

const { values } = parseArgs({
  options: {
    size: { type: "string", default: "1g" },
    repeat: { type: "string", default: "3" },
  },
});
const SIZE = Math.ceil(parseSize(values.size!) / 512) * 512;
const REPEAT = Math.max(1, Number(values.repeat));

interface Download {
  ttfbMs: number;
  seconds: number;
  bytes: number;
}

/** Reads a body to the end; first byte = first non-empty chunk. */
async function drain(start: number, body: AsyncIterable<Uint8Array>): Promise<Download> {
  let ttfb = -1;
  let bytes = 0;
  for await (const chunk of body) {
    if (ttfb < 0 && chunk.length) ttfb = performance.now() - start;
    bytes += chunk.length;
  }
  return { ttfbMs: ttfb, seconds: (performance.now() - start) / 1000, bytes };
}

async function httpDownload(url: string): Promise<Download> {
  const start = performance.now();
  const res = await fetch(url);
  if (res.status !== 200 || !res.body) throw new Error(`GET ${url}: ${res.status} ${await res.text()}`);
  return drain(start, res.body as unknown as AsyncIterable<Uint8Array>);
}

/** Time to the first body byte only; the rest is abandoned (the service sees a cancelled download). */
async function firstByte(url: string): Promise<number> {
  const start = performance.now();
  const res = await fetch(url);
  const reader = res.body!.getReader();
  for (;;) {
    const { value, done } = await reader.read();
    if (done || (value && value.length)) break;
  }
  const ms = performance.now() - start;
  await reader.cancel();
  return ms;
}

const dir = mkdtempSync(join(tmpdir(), "etcd-vault-bench-bundle-"));
let s3: S3Server | null = null;
let sim: SimProcess | null = null;
let svc: ServiceProcess | null = null;
let client: S3Client | null = null;

try {
  printFacts(machineFacts());
  // A random database of SIZE bytes (incompressible, like ciphertext-bound snapshots).
  const db = join(dir, "db.bin");
  const t0 = performance.now();
  const fh = await open(db, "w");
  const block = Buffer.alloc(8 * MiB);
  for (let off = 0; off < SIZE; off += block.length) {
    const n = Math.min(block.length, SIZE - off);
    randomFillSync(block, 0, n);
    await fh.write(block, 0, n);
  }
  await fh.close();
  process.stdout.write(`source database: ${formatSize(SIZE)} of random bytes in ${fixed((performance.now() - t0) / 1000)} s\n`);

  s3 = await startS3Server({ dir: join(dir, "s3rver") });
  const bucket = await s3.createBucket();
  client = new S3Client(s3ClientFor(s3));
  const simDir = join(dir, "sim");
  mkdirSync(simDir);
  sim = await startSimProcess(
    {
      nodes: [masterNode("master-0", "127.0.0.1")],
      pods: [etcdPod("master-0", { exec: [{ argvIncludes: ["snapshot", "pipe"], run: rawDbWithTrailerCommand(db) }] })],
    },
    simDir,
  );
  const recipient = ageKeygen(join(dir, "key.txt"));
  const dataDir = join(dir, "service");
  mkdirSync(dataDir);
  svc = await startServiceProcess({ dataDir });
  const t = await svc.call("POST", "/v1/targets", {
    name: "s3",
    url: `s3://${bucket}/backups?endpoint=${encodeURIComponent(s3.endpoint)}&region=${S3RVER_REGION}&forcePathStyle=true&checksums=false`,
    credentials: S3RVER_CREDENTIALS,
  });
  if (t.status !== 201) throw new Error(`target: ${t.status} ${t.text}`);
  const c = await svc.call("POST", "/v1/clusters", { name: "bench", labels: {}, kubeconfig: sim.kubeconfig, recipients: [recipient] });
  if (c.status !== 201) throw new Error(`cluster: ${c.status} ${c.text}`);

  const backups: Record<string, any> = {};
  for (const target of ["default", "s3"]) {
    process.stdout.write(`capturing into ${target}…\n`);
    const post = await svc.call("POST", "/v1/clusters/bench/backups", { target });
    if (post.status !== 202) throw new Error(`backup: ${post.status} ${post.text}`);
    let run: any;
    for (;;) {
      run = (await svc.call("GET", `/v1/runs/${post.json.id}`)).json;
      if (run.state !== "queued" && run.state !== "running") break;
      await new Promise((r) => setTimeout(r, 200));
    }
    if (run.state !== "succeeded") throw new Error(`capture into ${target}: ${run.state} ${JSON.stringify(run.error)}`);
    backups[target] = (await svc.call("GET", `/v1/backups/${run.backupId}`)).json;
  }

  // A fresh service process: its peak RSS is start-up plus the downloads.
  await svc.stop();
  svc = await startServiceProcess({ dataDir });
  await new Promise((r) => setTimeout(r, 500));
  const idle = procMemory(svc.pid)!;
  const sampler = new RssSampler(svc.pid, 50).start();

  const rows: Array<Array<string | number>> = [];
  const ttfbRows: Array<Array<string | number>> = [];
  const verdicts: Array<Array<string | number>> = [];
  for (const target of ["default", "s3"]) {
    const b = backups[target];
    const link = async (kind: string) => {
      const r = await svc!.call("POST", `/v1/backups/${b.id}/links`, { kind, ttlSeconds: 3600 });
      if (r.status !== 201) throw new Error(`link: ${r.status} ${r.text}`);
      return r.json.url as string;
    };
    const bundleUrl = await link("bundle");
    const snapshotUrl = await link("snapshot");
    const direct = async (): Promise<Download> => {
      const start = performance.now();
      if (target === "default") return drain(start, createReadStream(join(dataDir, "vault", b.objectKey), { highWaterMark: 1024 * 1024 }));
      const out = await client!.send(new GetObjectCommand({ Bucket: bucket, Key: `backups/${b.objectKey}` }));
      return drain(start, out.Body as Readable);
    };
    const runs: Record<string, Download[]> = { bundle: [], snapshot: [], direct: [] };
    // Interleaved, so that a slow moment of the machine does not hit one kind only.
    for (let i = 0; i < REPEAT; i++) {
      runs.direct!.push(await direct());
      runs.bundle!.push(await httpDownload(bundleUrl));
      runs.snapshot!.push(await httpDownload(snapshotUrl));
    }
    const best = (kind: string) => runs[kind]!.reduce((a, d) => (d.seconds < a.seconds ? d : a));
    for (const kind of ["bundle", "snapshot", "direct"]) {
      const d = best(kind);
      const label = kind === "direct" ? (target === "default" ? "direct: read the vault file" : "direct: GetObject from s3rver") : `GET /dl (${kind} link)`;
      rows.push([target, label, formatSize(d.bytes), fixed(d.ttfbMs, 1), fixed(d.seconds, 2), fixed(d.bytes / MiB / d.seconds, 0)]);
    }
    const ttfbs: number[] = [];
    for (let i = 0; i < 20; i++) ttfbs.push(await firstByte(bundleUrl));
    ttfbs.sort((a, b) => a - b);
    ttfbRows.push([target, fixed(percentile(ttfbs, 50), 1), fixed(percentile(ttfbs, 90), 1), fixed(ttfbs[ttfbs.length - 1]!, 1), pass(percentile(ttfbs, 90) < 200)]);
    const bundleRate = best("bundle").bytes / best("bundle").seconds;
    const directRate = best("direct").bytes / best("direct").seconds;
    const snapshotRate = best("snapshot").bytes / best("snapshot").seconds;
    verdicts.push([`${target}: bundle / direct vault read`, `${fixed((bundleRate / directRate) * 100, 0)} %`, "≥ 90 %", pass(bundleRate >= 0.9 * directRate)]);
    verdicts.push([`${target}: bundle / snapshot link (same server)`, `${fixed((bundleRate / snapshotRate) * 100, 0)} %`, "(context)", ""]);
  }
  const peak = sampler.stop();
  const hwm = procMemory(svc.pid)!.hwmMiB;

  const size = backups.default.ciphertext.size as number;
  printTable(`Downloads of a ${formatSize(size)} encrypted snapshot (best of ${REPEAT}; MiB/s)`, ["target", "read", "bytes", "first byte ms", "s", "MiB/s"], rows);
  printTable("Time to first byte of a bundle (20 requests per target; ms)", ["target", "p50", "p90", "max", "p90 < 200 ms"], ttfbRows);
  verdicts.push(["service RSS: idle → peak while serving", `${fixed(idle.rssMiB, 0)} → ${fixed(Math.max(peak, hwm), 0)} MiB`, "flat", pass(Math.max(peak, hwm) - idle.rssMiB < 64)]);
  printTable("Targets", ["figure", "value", "target", "result"], verdicts);
  process.stdout.write(
    `service: idle RSS ${fixed(idle.rssMiB, 1)} MiB, sampled peak ${fixed(peak, 1)} MiB, VmHWM ${fixed(hwm, 1)} MiB over ${2 * REPEAT * 2} full downloads of ${formatSize(size)} and 40 first-byte requests\n`,
  );
} finally {
  client?.destroy();
  await svc?.stop();
  await sim?.stop();
  await s3?.stop();
  rmSync(dir, { recursive: true, force: true });
}
