// A real S3 protocol server for tests and benchmarks: s3rver in its own process on 127.0.0.1 with
// a free port and a temp dir (DESIGN "Testing with real parts → S3"). Its own process keeps its
// memory out of the uploader's RSS and lets it run with --openssl-legacy-provider (see
// s3-server-main.ts).
//
//   const s3 = await startS3Server();
//   const bucket = await s3.createBucket();
//   const store = new S3BlobStore({ ...s3StoreOptionsFor(s3, bucket) });
//   …
//   await s3.stop();

import { CreateBucketCommand, S3Client, type S3ClientConfig } from "@aws-sdk/client-s3";
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { S3StoreOptions } from "../../src/vault/s3-store.js";

export const S3RVER_CREDENTIALS = { accessKeyId: "S3RVER", secretAccessKey: "S3RVER" } as const;
/** s3rver only accepts continuation tokens minted for us-east-1. */
export const S3RVER_REGION = "us-east-1";

const REPO_ROOT = fileURLToPath(new URL("../../", import.meta.url));
const MAIN = fileURLToPath(new URL("./s3-server-main.ts", import.meta.url));

export interface S3Endpoint {
  /** `http://127.0.0.1:PORT` */
  endpoint: string;
}

export interface S3Server extends S3Endpoint {
  port: number;
  dir: string;
  pid: number;
  /** Creates a fresh, empty bucket (a new name every call) and returns its name. */
  createBucket(name?: string): Promise<string>;
  stop(): Promise<void>;
}

/** SDK client config for s3rver (or a proxy in front of it, given its endpoint). */
export function s3ClientFor(server: S3Endpoint, overrides: Partial<S3ClientConfig> = {}): S3ClientConfig {
  return {
    endpoint: server.endpoint,
    region: S3RVER_REGION,
    forcePathStyle: true,
    credentials: { ...S3RVER_CREDENTIALS },
    // s3rver stores aws-chunked bodies raw and checks no checksums (DESIGN, S3 testing).
    requestChecksumCalculation: "WHEN_REQUIRED",
    responseChecksumValidation: "WHEN_REQUIRED",
    ...overrides,
  };
}

/** S3BlobStore options for a bucket on s3rver (or a proxy in front of it). */
export function s3StoreOptionsFor(server: S3Endpoint, bucket: string, extra: Partial<S3StoreOptions> = {}): S3StoreOptions {
  return {
    bucket,
    endpoint: server.endpoint,
    region: S3RVER_REGION,
    forcePathStyle: true,
    credentials: { ...S3RVER_CREDENTIALS },
    checksums: false,
    ...extra,
  };
}

let bucketSeq = 0;

export async function startS3Server(options: { port?: number; dir?: string } = {}): Promise<S3Server> {
  const ownDir = options.dir === undefined;
  const dir = options.dir ?? mkdtempSync(join(tmpdir(), "etcd-vault-s3-"));
  const child = spawn(
    process.execPath,
    ["--openssl-legacy-provider", "--import", "tsx", MAIN, "--port", String(options.port ?? 0), "--dir", dir, "--exit-with-stdin"],
    {
      cwd: REPO_ROOT,
      stdio: ["pipe", "pipe", "pipe"],
      env: { ...process.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true" },
    },
  );
  let info: { url: string; port: number; pid: number };
  try {
    info = await readReadyLine(child);
  } catch (e) {
    child.kill("SIGKILL");
    if (ownDir) rmSync(dir, { recursive: true, force: true });
    throw e;
  }
  const endpoint = info.url;
  const client = new S3Client(s3ClientFor({ endpoint }, { maxAttempts: 3 }));
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  let stopped = false;
  return {
    endpoint,
    port: info.port,
    dir,
    pid: info.pid,
    async createBucket(name) {
      const bucket = name ?? `t${process.pid.toString(36)}-${Date.now().toString(36)}-${++bucketSeq}`;
      await client.send(new CreateBucketCommand({ Bucket: bucket }));
      return bucket;
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      client.destroy();
      child.stdin?.end();
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
      await exited;
      clearTimeout(timer);
      if (ownDir) rmSync(dir, { recursive: true, force: true });
    },
  };
}

function readReadyLine(child: ChildProcess): Promise<{ url: string; port: number; pid: number }> {
  return new Promise((resolve, reject) => {
    let out = "";
    let err = "";
    const timer = setTimeout(() => fail(new Error(`s3rver did not start within 30 s; stderr: ${err.trim()}`)), 30_000);
    const fail = (e: Error) => {
      clearTimeout(timer);
      reject(e);
    };
    child.stderr?.on("data", (d: Buffer) => {
      err = (err + d.toString()).slice(-4000);
    });
    child.stdout?.on("data", (d: Buffer) => {
      out += d.toString();
      const nl = out.indexOf("\n");
      if (nl < 0) return;
      clearTimeout(timer);
      try {
        resolve(JSON.parse(out.slice(0, nl)) as { url: string; port: number; pid: number });
      } catch {
        reject(new Error(`s3rver printed an unexpected line: ${out.slice(0, nl)}`));
      }
    });
    child.once("exit", (code, signal) => fail(new Error(`s3rver exited early (${code ?? signal}); stderr: ${err.trim()}`)));
  });
}
