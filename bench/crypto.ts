// bench:crypto — age encryption of an in-memory plaintext, side by side:
//   ours        ageEncrypt (header by age-encryption, payload by node:crypto ChaCha20-Poly1305)
//   library     age-encryption's Encrypter alone (pure-JS payload)
//   age CLI     `age -r … -o /dev/null`, the plaintext piped to its stdin
// Every figure covers a whole file: header, nonce, all chunks, and (for the CLI) process start.
// Each contender gets a warm-up run first; the timed figure is the median of 5 runs (1 for the
// library at 1 GiB, which is ~10 s per run).
//
//   npm run bench:crypto                # 1 GiB for everyone
//   npm run bench:crypto -- --quick     # 256 MiB for the library (its 1 GiB run takes ~10 s)

import { spawn } from "node:child_process";
import { randomFillSync } from "node:crypto";
import { availableParallelism, cpus, loadavg } from "node:os";
import { Encrypter } from "age-encryption";
import { ageEncrypt, generateIdentity } from "../src/crypto/age-stream.js";

const MiB = 1024 * 1024;
const SIZE = 1024 * MiB;
const quick = process.argv.includes("--quick");
const LIBRARY_SIZE = quick ? 256 * MiB : SIZE;
const RUNS = 5;

async function* slices(data: Uint8Array, piece: number): AsyncGenerator<Uint8Array> {
  for (let offset = 0; offset < data.length; offset += piece) yield data.subarray(offset, offset + piece);
}

async function drain(source: AsyncIterable<Uint8Array>): Promise<number> {
  let n = 0;
  for await (const chunk of source) n += chunk.length;
  return n;
}

async function ours(data: Uint8Array, piece: number, recipient: string): Promise<number> {
  return drain(ageEncrypt(slices(data, piece), [recipient]));
}

async function library(data: Uint8Array, recipient: string): Promise<number> {
  const encrypter = new Encrypter();
  encrypter.addRecipient(recipient);
  let offset = 0;
  const input = new ReadableStream<Uint8Array>(
    {
      pull(controller) {
        if (offset >= data.length) return controller.close();
        controller.enqueue(data.subarray(offset, offset + MiB));
        offset += MiB;
      },
    },
    { highWaterMark: 0 },
  );
  const output = await encrypter.encrypt(input);
  let n = 0;
  for await (const chunk of output as unknown as AsyncIterable<Uint8Array>) n += chunk.length;
  return n;
}

function ageCli(data: Uint8Array, recipient: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn("age", ["-r", recipient, "-o", "/dev/null"], { stdio: ["pipe", "ignore", "inherit"] });
    child.on("error", reject);
    child.on("close", (code) => (code === 0 ? resolve(data.length) : reject(new Error(`age exited ${code}`))));
    let offset = 0;
    const write = () => {
      while (offset < data.length) {
        const piece = data.subarray(offset, offset + MiB);
        offset += piece.length;
        if (!child.stdin.write(piece)) return void child.stdin.once("drain", write);
      }
      child.stdin.end();
    };
    write();
  });
}

async function timed(label: string, size: number, run: () => Promise<number>): Promise<number> {
  const seconds: number[] = [];
  const runs = size === SIZE && label.startsWith("age-encryption") ? 1 : RUNS;
  for (let i = 0; i < runs; i++) {
    const start = performance.now();
    const produced = await run();
    seconds.push((performance.now() - start) / 1000);
    if (produced < size) throw new Error(`${label}: produced ${produced} bytes for ${size}`);
  }
  seconds.sort((a, b) => a - b);
  const median = seconds[Math.floor(seconds.length / 2)]!;
  const rate = size / median / 1e6;
  const sizeText = `${size / MiB} MiB`;
  console.log(
    `${label.padEnd(44)} ${sizeText.padStart(9)}  ${rate.toFixed(0).padStart(5)} MB/s  ` +
      `(median of ${runs}: ${seconds.map((s) => s.toFixed(2)).join(" / ")} s)`,
  );
  return rate;
}

async function main(): Promise<void> {
  const { recipient } = await generateIdentity();
  const data = new Uint8Array(SIZE);
  for (let offset = 0; offset < SIZE; offset += 64 * MiB) randomFillSync(data, offset, 64 * MiB);

  const cpu = cpus()[0]?.model ?? "unknown";
  console.log(`node ${process.version}, ${availableParallelism()} CPUs (${cpu}), ${process.platform}/${process.arch}`);
  console.log(`plaintext ${SIZE / MiB} MiB from memory; output bytes counted and discarded`);
  // Other work on a small machine skews every figure; the load average makes that visible.
  console.log(`load average before: ${loadavg().map((l) => l.toFixed(2)).join(" ")}\n`);

  // Warm-up, one untimed full pass each (the library: 16 MiB): JIT tiers, OpenSSL, page faults on
  // the input, the CLI binary in the page cache. Short warm-ups left the first timed run ~30% slow.
  await ours(data, MiB, recipient);
  await ours(data, 16 * 1024, recipient);
  await library(data.subarray(0, 16 * MiB), recipient);
  await ageCli(data, recipient);

  const oursAligned = await timed("ours (1 MiB input pieces, zero-copy)", SIZE, () => ours(data, MiB, recipient));
  const oursSmall = await timed("ours (16 KiB input pieces, re-chunked)", SIZE, () => ours(data, 16 * 1024, recipient));
  const oursOdd = await timed("ours (100003 B input pieces, mixed)", SIZE, () => ours(data, 100_003, recipient));
  const cli = await timed("age CLI 1.1.1 (pipe → age -r … -o /dev/null)", SIZE, () => ageCli(data, recipient));
  const lib = await timed(
    "age-encryption 0.3.1 alone (pure JS)",
    LIBRARY_SIZE,
    () => library(data.subarray(0, LIBRARY_SIZE), recipient),
  );

  console.log("");
  console.log(`ours / age CLI:          ${(oursAligned / cli).toFixed(2)}x (1 MiB pieces), ${(oursSmall / cli).toFixed(2)}x (16 KiB), ${(oursOdd / cli).toFixed(2)}x (100003 B)`);
  console.log(`ours / age-encryption:   ${(oursAligned / lib).toFixed(1)}x (1 MiB pieces), ${(oursSmall / lib).toFixed(1)}x (16 KiB)`);
  console.log(`load average after: ${loadavg().map((l) => l.toFixed(2)).join(" ")}`);
  if (LIBRARY_SIZE !== SIZE) console.log(`note: age-encryption measured on ${LIBRARY_SIZE / MiB} MiB (--quick); the others on ${SIZE / MiB} MiB`);
}

await main();
