// bench:crypto — age encryption of an in-memory plaintext, side by side:
//   ours        ageEncrypt (header by age-encryption, payload by node:crypto ChaCha20-Poly1305)
//   library     age-encryption's Encrypter alone (pure-JS payload)
//   age CLI     `age -r … -o /dev/null`, the plaintext piped to its stdin
// Every figure covers a whole file: header, nonce, all chunks, and (for the CLI) process start.
// Each contender gets a warm-up run first, then 5 timed runs interleaved round-robin (1 for the
// library at 1 GiB, ~10 s a run); median and best are printed, and MB per CPU-second (our process;
// for the CLI the age process alone, from /usr/bin/time, not the node side writing the pipe), which
// holds up when other work shares the machine. Wall-clock figures do not: the CLI runs as two
// processes (writer + age) and gets a bigger share of a contended CPU than our one thread, so run
// it on an otherwise idle machine; the load average is printed so a busy one shows.
//
//   npm run bench:crypto                # 1 GiB for everyone
//   npm run bench:crypto -- --quick     # 256 MiB for the library (its 1 GiB run takes ~10 s)

import { spawn } from "node:child_process";
import { randomFillSync } from "node:crypto";
import { existsSync } from "node:fs";
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

/** What one timed run reports: bytes produced, and CPU seconds spent by whoever encrypted. */
interface RunResult {
  produced: number;
  cpu: number;
}

async function inProcess(run: () => Promise<number>): Promise<RunResult> {
  const before = process.cpuUsage();
  const produced = await run();
  const used = process.cpuUsage(before);
  return { produced, cpu: (used.user + used.system) / 1e6 };
}

const ours = (data: Uint8Array, piece: number, recipient: string): Promise<RunResult> =>
  inProcess(() => drain(ageEncrypt(slices(data, piece), [recipient])));

const library = (data: Uint8Array, recipient: string): Promise<RunResult> =>
  inProcess(async () => {
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
  });

// GNU time (Debian package `time`) reports the CPU time of age alone; without it, CPU shows NaN.
const GNU_TIME = "/usr/bin/time";
const haveGnuTime = existsSync(GNU_TIME);

/** `age` reading the plaintext from a pipe; its CPU time comes from GNU time. */
function ageCli(data: Uint8Array, recipient: string): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const ageArgs = ["age", "-r", recipient, "-o", "/dev/null"];
    const [command, ...args] = haveGnuTime ? [GNU_TIME, "-f", "cpu %U %S", ...ageArgs] : ageArgs;
    const child = spawn(command!, args, { stdio: ["pipe", "ignore", "pipe"] });
    let stderr = "";
    child.stderr.on("data", (b: Buffer) => (stderr += b.toString("utf8")));
    child.on("error", reject);
    child.on("close", (code) => {
      if (code !== 0) return reject(new Error(`age exited ${code}: ${stderr}`));
      const cpu = /cpu ([\d.]+) ([\d.]+)\s*$/.exec(stderr);
      resolve({ produced: data.length, cpu: cpu ? Number(cpu[1]) + Number(cpu[2]) : Number.NaN });
    });
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

interface Contender {
  label: string;
  size: number;
  runs: number;
  run: () => Promise<RunResult>;
  seconds: number[];
  cpu: number[];
}

const rate = (c: Contender, s: number) => c.size / s / 1e6;
const median = (c: Contender) => rate(c, [...c.seconds].sort((a, b) => a - b)[Math.floor(c.seconds.length / 2)]!);
const best = (c: Contender) => rate(c, Math.min(...c.seconds));
/** MB per CPU-second (median run): what the work costs, whatever else the machine is doing. */
const perCpu = (c: Contender) => rate(c, [...c.cpu].sort((a, b) => a - b)[Math.floor(c.cpu.length / 2)]!);

/**
 * Runs are interleaved round-robin across contenders, so a burst of other work on the machine
 * slows all of them alike instead of whichever happened to be running.
 */
async function measure(contenders: Contender[]): Promise<void> {
  const rounds = Math.max(...contenders.map((c) => c.runs));
  for (let round = 0; round < rounds; round++) {
    for (const c of contenders) {
      if (round >= c.runs) continue;
      const start = performance.now();
      const { produced, cpu } = await c.run();
      c.seconds.push((performance.now() - start) / 1000);
      c.cpu.push(cpu);
      if (produced < c.size) throw new Error(`${c.label}: produced ${produced} bytes for ${c.size}`);
    }
  }
  for (const c of contenders) {
    console.log(
      `${c.label.padEnd(44)} ${`${c.size / MiB} MiB`.padStart(9)}  median ${median(c).toFixed(0).padStart(5)} MB/s` +
        `  best ${best(c).toFixed(0).padStart(5)} MB/s  per CPU-s ${perCpu(c).toFixed(0).padStart(5)} MB` +
        `  (${c.seconds.map((s) => s.toFixed(2)).join(" / ")} s)`,
    );
  }
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

  const contender = (label: string, size: number, runs: number, run: () => Promise<RunResult>): Contender =>
    ({ label, size, runs, run, seconds: [], cpu: [] });
  const aligned = contender("ours (1 MiB input pieces, zero-copy)", SIZE, RUNS, () => ours(data, MiB, recipient));
  const small = contender("ours (16 KiB input pieces, re-chunked)", SIZE, RUNS, () => ours(data, 16 * 1024, recipient));
  const odd = contender("ours (100003 B input pieces, mixed)", SIZE, RUNS, () => ours(data, 100_003, recipient));
  const cli = contender("age CLI 1.1.1 (pipe → age -r … -o /dev/null)", SIZE, RUNS, () => ageCli(data, recipient));
  // One run of the library: at ~110 MB/s a 1 GiB run takes ~10 s.
  const lib = contender("age-encryption 0.3.1 alone (pure JS)", LIBRARY_SIZE, quick ? RUNS : 1, () =>
    library(data.subarray(0, LIBRARY_SIZE), recipient),
  );
  await measure([aligned, small, odd, cli, lib]);

  const ratio = (a: Contender, b: Contender, f: (c: Contender) => number) => (f(a) / f(b)).toFixed(2);
  console.log("");
  for (const [name, f] of [["median", median], ["best", best], ["per CPU-s", perCpu]] as const) {
    console.log(
      `${`ours / age CLI (${name}):`.padEnd(32)}${ratio(aligned, cli, f)}x (1 MiB pieces), ${ratio(small, cli, f)}x (16 KiB), ${ratio(odd, cli, f)}x (100003 B)`,
    );
  }
  console.log(`ours / age-encryption (median): ${ratio(aligned, lib, median)}x (1 MiB pieces), ${ratio(small, lib, median)}x (16 KiB)`);
  console.log(`load average after: ${loadavg().map((l) => l.toFixed(2)).join(" ")}`);
  if (LIBRARY_SIZE !== SIZE) console.log(`note: age-encryption measured on ${LIBRARY_SIZE / MiB} MiB (--quick); the others on ${SIZE / MiB} MiB`);
}

await main();
