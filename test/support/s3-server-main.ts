// s3rver as its own process, for tests that must not share memory (or an event loop) with the
// server, and for benchmarks:
//
//   NODE_OPTIONS=--openssl-legacy-provider npx tsx test/support/s3-server-main.ts --port 9000 --dir /tmp/s3
//
// Prints one JSON line `{"url","port","dir","pid"}` once listening. Credentials: S3RVER / S3RVER,
// region us-east-1, path-style. s3rver encrypts ListObjectsV2 continuation tokens with DES, which
// OpenSSL 3 only offers in its legacy provider: without --openssl-legacy-provider a truncated
// listing answers 500 (the harness in s3-server.ts passes the flag).

import { createCipheriv } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";

// s3rver ships no type declarations; this is the part of its API used here.
interface S3rverServer {
  run(): Promise<{ port: number }>;
  close(): Promise<void>;
}
type S3rverClass = new (options: { address: string; port: number; directory: string; silent: boolean }) => S3rverServer;
const S3rver = createRequire(import.meta.url)("s3rver") as S3rverClass;

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

const port = Number(arg("port") ?? 0);
const ownDir = arg("dir") === undefined;
const dir = arg("dir") ?? mkdtempSync(join(tmpdir(), "s3rver-"));

try {
  createCipheriv("des", Buffer.alloc(8), Buffer.alloc(8));
} catch {
  process.stderr.write("s3-server-main: DES is unavailable; ListObjectsV2 pagination needs --openssl-legacy-provider\n");
}

const server = new S3rver({ address: "127.0.0.1", port, directory: dir, silent: true });
const addr = await server.run();
process.stdout.write(`${JSON.stringify({ url: `http://127.0.0.1:${addr.port}`, port: addr.port, dir, pid: process.pid })}\n`);

let stopping = false;
const stop = async () => {
  if (stopping) return;
  stopping = true;
  await server.close().catch(() => undefined);
  if (ownDir) rmSync(dir, { recursive: true, force: true });
  process.exit(0);
};
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
// Started by the harness: exit when the parent goes away (its end of stdin closes), so a
// crashed test run leaves no server behind.
if (process.argv.includes("--exit-with-stdin")) {
  process.stdin.on("end", stop).on("close", stop).resume();
}
