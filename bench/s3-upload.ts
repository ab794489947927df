// Peak memory and throughput of S3BlobStore.put for a generated stream, against s3rver running in
// its own process (so only the uploader's memory is measured).
//
//   npx tsx bench/s3-upload.ts [--size 1GiB] [--part-size 8MiB] [--queue 2] [--chunk 64KiB]
//                              [--source fresh|reused] [--verify] [--runtime bundle|tsx]
//                              [--endpoint http://127.0.0.1:PORT --bucket NAME]
//
// --runtime bundle (the default) measures the uploader as the product runs: this file bundled by
// esbuild (bin/build.js) and run by plain `node` with the V8 flags of `npm start`, in a process of
// its own; --runtime tsx uploads from this (tsx) process instead. Prints one JSON line. maxRssMiB
// is process.resourceUsage().maxRSS taken right after the upload: the peak over the uploading
// process's whole life, start-up included. Results: docs/performance.md, "S3 upload memory".

import { spawn } from "node:child_process";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { GetObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { createHash } from "node:crypto";
import type { Readable } from "node:stream";
import { S3BlobStore } from "../src/vault/s3-store.js";
import { s3ClientFor, s3StoreOptionsFor, startS3Server, type S3Server } from "../test/support/s3-server.js";

const UNITS: Record<string, number> = { "": 1, B: 1, KiB: 1024, MiB: 1024 ** 2, GiB: 1024 ** 3 };

function size(text: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*(B|KiB|MiB|GiB)?$/.exec(text);
  if (!m) throw new Error(`not a size: ${text} (like 256MiB)`);
  return Math.round(Number(m[1]) * UNITS[m[2] ?? ""]!);
}

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

const total = size(arg("size") ?? "1GiB");
const partSize = size(arg("part-size") ?? "8MiB");
const queueSize = Number(arg("queue") ?? 2);
const chunkSize = size(arg("chunk") ?? "64KiB");
const verify = process.argv.includes("--verify");
// fresh: a new buffer per chunk, like exec frames (their garbage counts against RSS until V8
// collects it); reused: views of one buffer, so the figure is the store's own memory.
const source = arg("source") ?? "fresh";
if (source !== "fresh" && source !== "reused") throw new Error("--source is fresh or reused");

const runtime = arg("runtime") ?? "bundle";
if (runtime !== "bundle" && runtime !== "tsx") throw new Error("--runtime is bundle or tsx");
const ROOT = fileURLToPath(new URL("..", import.meta.url));

let server: S3Server | null = null;
let endpoint = arg("endpoint");
let bucket = arg("bucket");
if (!endpoint) {
  server = await startS3Server();
  endpoint = server.endpoint;
}
if (!bucket) {
  if (!server) throw new Error("--bucket is required with --endpoint");
  bucket = await server.createBucket();
}

// Bundled: build this file and run it against the same s3rver in a plain-node child, which
// uploads (the branch below with --runtime tsx, as the bundle has no tsx) and prints the line.
if (runtime === "bundle" && !process.argv.includes("--bundled-child")) {
  const { bundle, startNodeArgs } = await import("../bin/build.js");
  const out = join(ROOT, "bench", ".scratch", "s3-upload.mjs");
  await bundle(fileURLToPath(import.meta.url), out, { quiet: true });
  const nodeFlags = startNodeArgs().flags;
  const passOn = process.argv.slice(2).filter((a, i, all) => !["--endpoint", "--bucket", "--runtime"].includes(a) && !["--endpoint", "--bucket", "--runtime"].includes(all[i - 1]!));
  const child = spawn(process.execPath, [...nodeFlags, out, ...passOn, "--endpoint", endpoint, "--bucket", bucket, "--runtime", "tsx", "--bundled-child"], { stdio: ["ignore", "pipe", "inherit"] });
  let line = "";
  child.stdout.on("data", (d) => (line += d));
  const code = await new Promise<number | null>((r) => child.on("exit", r));
  await server?.stop();
  const result = { ...(JSON.parse(line) as Record<string, unknown>), runtime: `bundle (node ${nodeFlags.join(" ")})`.replace(" )", ")") };
  process.stdout.write(`${JSON.stringify(result)}\n`);
  process.exit(code ?? 1);
}

/** `total` bytes in `chunkSize` pieces (see --source). */
async function* generate(hash: ReturnType<typeof createHash> | null): AsyncGenerator<Uint8Array> {
  const shared = Buffer.allocUnsafe(chunkSize);
  let sent = 0;
  for (let i = 0; sent < total; i++) {
    const n = Math.min(chunkSize, total - sent);
    // A reused buffer is rewritten after each yield: that the store copied it in time shows in
    // --verify.
    const b = source === "reused" ? shared.subarray(0, n) : Buffer.allocUnsafe(n);
    b.fill((i * 131) & 0xff);
    b.writeUInt32LE(i, 0);
    hash?.update(b);
    sent += n;
    yield b;
  }
}

const store = new S3BlobStore(s3StoreOptionsFor({ endpoint }, bucket, { partSize, queueSize }));
const baselineRss = process.memoryUsage().rss;
const sentHash = verify ? createHash("sha256") : null;
const cpu0 = process.cpuUsage();
const t0 = performance.now();
const info = await store.put("bench/upload.bin", generate(sentHash));
const seconds = (performance.now() - t0) / 1000;
const cpu = process.cpuUsage(cpu0);
const maxRssKiB = process.resourceUsage().maxRSS;

let verified: boolean | null = null;
if (verify) {
  const client = new S3Client(s3ClientFor({ endpoint }));
  const res = await client.send(new GetObjectCommand({ Bucket: bucket, Key: "bench/upload.bin" }));
  const h = createHash("sha256");
  for await (const c of res.Body as Readable) h.update(c as Buffer);
  verified = h.digest("hex") === sentHash!.digest("hex");
  client.destroy();
}

store.destroy();
await server?.stop();

const MiB = 1024 * 1024;
process.stdout.write(
  `${JSON.stringify({
    sizeBytes: info.size,
    seconds: Number(seconds.toFixed(2)),
    MiBps: Number((info.size / MiB / seconds).toFixed(1)),
    /** CPU of the uploading process (user + system) during the upload. */
    cpuSeconds: Number(((cpu.user + cpu.system) / 1e6).toFixed(2)),
    maxRssMiB: Number((maxRssKiB / 1024).toFixed(1)),
    baselineRssMiB: Number((baselineRss / MiB).toFixed(1)),
    partSizeMiB: partSize / MiB,
    queueSize,
    chunkBytes: chunkSize,
    source,
    verified,
    runtime: process.argv.includes("--bundled-child") ? "bundle" : "tsx",
  })}\n`,
);
if (verified === false) process.exit(1);
