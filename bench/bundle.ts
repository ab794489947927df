// bench:bundle — restore-bundle downloads through signed links, served by the real HTTP server.
//
//   npm run bench:bundle [-- --size 1g] [--repeat 3] [--profile DIR]
//
// Setup (real parts, each in its own process): a random "database" of --size (a multiple of 512
// bytes) made into an etcd snapshot stream by the simulator's exec (`cat` + its SHA-256 trailer,
// test/support/kube-sim.ts rawDbWithTrailerCommand); the service (`etcd-vault serve`) captures it
// twice: into the local vault (target `default`, a file:// dir) and into s3rver (target `s3`).
// The service is then restarted, so its VmHWM covers downloads only.
//
// Measured per target with curl (its own process, output to /dev/null), against the service:
//   bundle   GET /dl/{token} of a `bundle` link: the plain tar (RESTORE.md, restore.sh, … and the
//            encrypted snapshot streamed from the vault), read to the end;
//   snapshot GET /dl/{token} of a `snapshot` link: the object alone through the same server;
//   store    the object read straight from the vault the way the service reads it (BlobStore.get
//            of the target's store, drained in this process): what serving it could at best be;
//   direct   the object straight from the vault by curl, no Node at all: curl file:// of the vault
//            file for `default`, a SigV4-signed GET to s3rver for `s3` (curl --aws-sigv4).
// Time to first byte: 20 more bundle requests from this process (fetch), request → first body
// byte, then cancelled. The service's RSS is sampled every 50 ms.
//
// Targets (issue 7): first byte of a bundle < 200 ms; bundle throughput within 10 % of reading the
// object straight from the vault (judged against both `store` and `direct`); service memory flat
// for a 1 GiB snapshot (peak minus idle RSS under 64 MiB while serving).

import { randomFillSync } from "node:crypto";
import { execFile } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { open } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { etcdPod, masterNode, rawDbWithTrailerCommand } from "../test/support/kube-sim.js";
import { ageKeygen } from "../test/support/restore-fixtures.js";
import { S3RVER_CREDENTIALS, S3RVER_REGION, s3StoreOptionsFor, startS3Server, type S3Server } from "../test/support/s3-server.js";
import type { BlobStore } from "../src/core/ports.js";
import { LocalBlobStore } from "../src/vault/local-store.js";
import { S3BlobStore } from "../src/vault/s3-store.js";
import { RssSampler, procMemory } from "./harness/proc-stats.js";
import { startServiceProcess, startSimProcess, type ServiceProcess, type SimProcess } from "./harness/processes.js";
import { MiB, fixed, formatSize, machineFacts, parseSize, pass, percentile, printFacts, printTable } from "./harness/report.js";

// This process creates the bucket through the SDK; its Node-version notice is noise here.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = "true";

const { values } = parseArgs({
  options: {
    size: { type: "string", default: "1g" },
    repeat: { type: "string", default: "3" },
    // Write a V8 CPU profile of the serving process into this directory (--cpu-prof).
    profile: { type: "string" },
  },
});
const SIZE = Math.ceil(parseSize(values.size!) / 512) * 512;
const REPEAT = Math.max(1, Number(values.repeat));

interface Download {
  ttfbMs: number;
  seconds: number;
  bytes: number;
}

/**
 * One download by curl (in its own process, to /dev/null): the client an operator on a master
 * node uses (`curl -fsSL URL | tar x`), and one client for every kind of read, so that the
 * comparison is between the sources, not between clients. `time_starttransfer` is the first
 * response byte.
 */
function curl(url: string, extra: string[] = []): Promise<Download> {
  return new Promise((resolve, reject) => {
    execFile(
      "curl",
      ["-sS", "-o", "/dev/null", "-w", "%{http_code} %{time_starttransfer} %{time_total} %{size_download}", ...extra, url],
      (err, stdout, stderr) => {
        if (err) return reject(new Error(`curl ${url}: ${stderr || err.message}`));
        const [code, start, total, size] = stdout.trim().split(" ");
        if (code !== "200" && code !== "000") return reject(new Error(`curl ${url}: HTTP ${code}`));
        resolve({ ttfbMs: Number(start) * 1000, seconds: Number(total), bytes: Number(size) });
      },
    );
  });
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
  svc = await startServiceProcess({ dataDir, nodeArgs: values.profile ? ["--cpu-prof", `--cpu-prof-dir=${values.profile}`] : [] });
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
    // Straight from the vault: the file itself, or a SigV4-signed GetObject to s3rver.
    const direct = (): Promise<Download> =>
      target === "default"
        ? curl(`file://${join(dataDir, "vault", b.objectKey)}`)
        : curl(`${s3!.endpoint}/${bucket}/backups/${b.objectKey}`, [
            // s3rver insists on the header; curl 7.88 signs it when it is given.
            "-H",
            "x-amz-content-sha256: UNSIGNED-PAYLOAD",
            "--aws-sigv4",
            `aws:amz:${S3RVER_REGION}:s3`,
            "--user",
            `${S3RVER_CREDENTIALS.accessKeyId}:${S3RVER_CREDENTIALS.secretAccessKey}`,
          ]);
    // The vault read the service itself does (BlobStore.get), in this process, drained.
    const store: BlobStore =
      target === "default" ? new LocalBlobStore(join(dataDir, "vault")) : new S3BlobStore(s3StoreOptionsFor(s3!, bucket, { prefix: "backups" }));
    const storeRead = async (): Promise<Download> => {
      const start = performance.now();
      const got = await store.get(b.objectKey);
      const reader = got.body.getReader();
      let ttfb = -1;
      let bytes = 0;
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        if (ttfb < 0) ttfb = performance.now() - start;
        bytes += value.length;
      }
      return { ttfbMs: ttfb, seconds: (performance.now() - start) / 1000, bytes };
    };
    const runs: Record<string, Download[]> = { bundle: [], snapshot: [], direct: [], store: [] };
    // Interleaved, so that a slow moment of the machine does not hit one kind only.
    for (let i = 0; i < REPEAT; i++) {
      runs.store!.push(await storeRead());
      runs.direct!.push(await direct());
      runs.bundle!.push(await curl(bundleUrl));
      runs.snapshot!.push(await curl(snapshotUrl));
    }
    const best = (kind: string) => runs[kind]!.reduce((a, d) => (d.seconds < a.seconds ? d : a));
    const labels: Record<string, string> = {
      bundle: "curl GET /dl (bundle link)",
      snapshot: "curl GET /dl (snapshot link)",
      store: `vault: ${target === "default" ? "LocalBlobStore" : "S3BlobStore"}.get, drained in-process`,
      direct: target === "default" ? "vault: curl file:// of the object" : "vault: curl GetObject (SigV4) from s3rver",
    };
    for (const kind of ["bundle", "snapshot", "store", "direct"]) {
      const d = best(kind);
      const label = labels[kind]!;
      rows.push([target, label, formatSize(d.bytes), fixed(d.ttfbMs, 1), fixed(d.seconds, 2), fixed(d.bytes / MiB / d.seconds, 0)]);
    }
    const ttfbs: number[] = [];
    for (let i = 0; i < 20; i++) ttfbs.push(await firstByte(bundleUrl));
    ttfbs.sort((a, b) => a - b);
    ttfbRows.push([target, fixed(percentile(ttfbs, 50), 1), fixed(percentile(ttfbs, 90), 1), fixed(ttfbs[ttfbs.length - 1]!, 1), pass(percentile(ttfbs, 90) < 200)]);
    const rate = (kind: string) => best(kind).bytes / best(kind).seconds;
    const share = (kind: string) => `${fixed((rate("bundle") / rate(kind)) * 100, 0)} %`;
    verdicts.push([`${target}: bundle / the vault read through the store`, share("store"), "≥ 90 %", pass(rate("bundle") >= 0.9 * rate("store"))]);
    verdicts.push([`${target}: bundle / the object by curl straight from the vault`, share("direct"), "≥ 90 %", pass(rate("bundle") >= 0.9 * rate("direct"))]);
    verdicts.push([`${target}: bundle / snapshot link (same server, no tar)`, share("snapshot"), "(context)", ""]);
    if ("destroy" in store) (store as S3BlobStore).destroy();
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
  await svc?.stop();
  await sim?.stop();
  await s3?.stop();
  rmSync(dir, { recursive: true, force: true });
}
