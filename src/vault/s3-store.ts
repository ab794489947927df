// A BlobStore over S3 (AWS or S3-compatible), with our own multipart loop instead of lib-storage:
// memory is bounded by construction (at most `queueSize` parts in flight plus one being filled,
// all in a fixed pool of part buffers), every request has the same retry policy, and a failed or
// cancelled upload always ends with AbortMultipartUpload so no parts are left behind to bill.
//
// Retries are ours alone: the SDK client is built with `maxAttempts: 1`, so what is retried, how
// often and after which delay is decided in `withRetry` below (and proven by the proxy tests).
//
// Part and object bodies go out with `x-amz-content-sha256: UNSIGNED-PAYLOAD` (see
// `unsignedPayload` below): the SDK would otherwise SHA-256 every body only to sign it.

import {
  ListMultipartUploadsCommand,
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
  type CompletedPart,
  type S3ClientConfig,
  type StorageClass,
} from "@aws-sdk/client-s3";
import { createHash } from "node:crypto";
import type { Readable } from "node:stream";
import { crc32 } from "node:zlib";
import { invalidInput, isVaultError, notFound, VaultError } from "../core/errors.js";
import type { BlobInfo, BlobStore, GetResult, Logger, MultipartOps, PutOptions } from "../core/ports.js";
import { assertListPrefix, assertObjectKey } from "../core/storage-url.js";
import { checkRange } from "./local-store.js";

const MiB = 1024 * 1024;
/** S3's floor for every part but the last. */
export const MIN_PART_SIZE = 5 * MiB;
export const DEFAULT_PART_SIZE = 8 * MiB;
/** S3's ceiling on parts per upload: 8 MiB parts reach 78 GiB, far above etcd's 8 GiB quota. */
const MAX_PARTS = 10_000;

export interface S3Credentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}

export interface RetryPolicy {
  /** Tries per request, the first included (default 5; at least 1). */
  attempts?: number;
  /** First back-off step; doubles per retry, with jitter (default 200 ms). */
  baseDelayMs?: number;
  /** Ceiling of one back-off (default 10 s). */
  maxDelayMs?: number;
}

export interface S3StoreOptions {
  bucket: string;
  /** Key prefix inside the bucket (no leading/trailing slash); every key is stored under it. */
  prefix?: string;
  region: string;
  endpoint?: string | null;
  forcePathStyle?: boolean;
  /** Absent/null: the SDK's default chain (AWS_* environment, profiles, instance roles). */
  credentials?: S3Credentials | null;
  storageClass?: string | null;
  /**
   * true: per-part checksums (CRC32 by default) sent on UploadPart and listed in
   * CompleteMultipartUpload. false: no checksum headers at all (`requestChecksumCalculation:
   * "WHEN_REQUIRED"`), for servers that store aws-chunked bodies raw, like s3rver.
   */
  checksums: boolean;
  checksumAlgorithm?: "CRC32" | "SHA256";
  /** true: the SDK's SigV4 body hash on parts and objects; default false: UNSIGNED-PAYLOAD (see useUnsignedPayload). */
  signedPayload?: boolean;
  /** Bytes per part (default 8 MiB, at least 5 MiB); also the single-PUT threshold. */
  partSize?: number;
  /** Parts uploading at once (default 2). Memory ≈ (queueSize + 1) × partSize. */
  queueSize?: number;
  retry?: RetryPolicy;
  /** Socket idle timeout per request (default 120 s). */
  requestTimeoutMs?: number;
  /** Keys per ListObjectsV2 page (default 1000, S3's maximum). */
  listPageSize?: number;
  log?: Logger;
}

type Op<T> = (signal: AbortSignal | undefined, attempt: number) => Promise<T>;

/** An S3 request that failed for good, with how many times it was tried. */
class RequestFailed extends Error {
  constructor(
    readonly operation: string,
    readonly attempts: number,
    readonly inner: unknown,
  ) {
    super(`${operation} failed after ${attempts} attempt${attempts === 1 ? "" : "s"}: ${describeError(inner)}`, {
      cause: scrubbed(inner),
    });
  }
}

/** Marks an error thrown by the caller's source iterable. */
class SourceError extends Error {
  constructor(readonly inner: unknown) {
    super(`the source stream failed: ${describeError(inner)}`, { cause: inner });
  }
}

export class S3BlobStore implements BlobStore {
  readonly kind = "s3" as const;
  readonly bucket: string;
  readonly prefix: string;
  readonly client: S3Client;
  private readonly base: string;
  private readonly partSize: number;
  private readonly queueSize: number;
  private readonly attempts: number;
  private readonly baseDelayMs: number;
  private readonly maxDelayMs: number;
  private readonly listPageSize: number;
  private readonly pool: Buffer[] = [];

  constructor(private readonly options: S3StoreOptions) {
    this.bucket = options.bucket;
    this.prefix = (options.prefix ?? "").replace(/^\/+|\/+$/g, "");
    this.base = this.prefix ? `${this.prefix}/` : "";
    this.partSize = options.partSize ?? DEFAULT_PART_SIZE;
    if (!Number.isSafeInteger(this.partSize) || this.partSize < MIN_PART_SIZE) {
      throw invalidInput("partSize", `must be an integer of at least ${MIN_PART_SIZE} bytes (5 MiB)`);
    }
    this.queueSize = options.queueSize ?? 2;
    if (!Number.isSafeInteger(this.queueSize) || this.queueSize < 1) throw invalidInput("queueSize", "must be at least 1");
    this.attempts = Math.max(1, options.retry?.attempts ?? 5);
    this.baseDelayMs = options.retry?.baseDelayMs ?? 200;
    this.maxDelayMs = options.retry?.maxDelayMs ?? 10_000;
    this.listPageSize = options.listPageSize ?? 1000;
    this.client = new S3Client(clientConfig(options));
    if (!options.signedPayload) useUnsignedPayload(this.client);
  }

  async put(key: string, body: AsyncIterable<Uint8Array>, options: PutOptions = {}): Promise<BlobInfo> {
    assertObjectKey(key);
    const lock = lockParams(options);
    const Key = this.base + key;
    const where = `s3://${this.bucket}/${Key}`;
    // One controller for everything this upload sends: the caller's signal, or our own when a
    // part fails and the others in flight must stop.
    const ac = new AbortController();
    const onAbort = () => ac.abort(options.signal?.reason);
    options.signal?.addEventListener("abort", onAbort, { once: true });
    if (options.signal?.aborted) onAbort();
    const reader = new PartReader(body);
    const common = {
      Bucket: this.bucket,
      Key,
      ...(options.contentType ? { ContentType: options.contentType } : {}),
      ...(this.options.storageClass ? { StorageClass: this.options.storageClass as StorageClass } : {}),
      ...lock,
    };
    let uploadId: string | undefined;
    let size = 0;
    const first = this.takeBuffer();
    try {
      const n = await reader.fill(first, ac.signal);
      if (n < this.partSize || (await reader.atEnd(ac.signal))) {
        // Fits in one part: a single PUT, no multipart bookkeeping.
        const data = first.subarray(0, n);
        await this.withRetry(`PutObject ${where}`, ac.signal, (signal) =>
          this.client.send(
            new PutObjectCommand({ ...common, Body: data, ContentLength: n, ...this.checksumOf(data, lock !== null) }),
            { abortSignal: signal },
          ),
        );
        size = n;
        this.giveBuffer(first);
      } else {
        const created = await this.withRetry(`CreateMultipartUpload ${where}`, ac.signal, (signal) =>
          this.client.send(
            new CreateMultipartUploadCommand({
              ...common,
              ...(this.options.checksums ? { ChecksumAlgorithm: this.options.checksumAlgorithm ?? "CRC32" } : {}),
            }),
            { abortSignal: signal },
          ),
        );
        if (!created.UploadId) throw new Error("CreateMultipartUpload returned no UploadId");
        uploadId = created.UploadId;
        const parts = await this.uploadParts(Key, uploadId, reader, first, n, ac, lock !== null);
        size = parts.size;
        const id = uploadId;
        await this.withRetry(`CompleteMultipartUpload ${where}`, ac.signal, async (signal, attempt) => {
          try {
            await this.client.send(
              new CompleteMultipartUploadCommand({ Bucket: this.bucket, Key, UploadId: id, MultipartUpload: { Parts: parts.parts } }),
              { abortSignal: signal },
            );
          } catch (e) {
            // A retry after a lost response finds the upload already completed; the HEAD below
            // decides whether the object is really there.
            if (attempt > 1 && errorName(e) === "NoSuchUpload") return;
            throw e;
          }
        });
        uploadId = undefined;
      }
    } catch (e) {
      ac.abort();
      reader.release();
      let abortProblem = "";
      if (uploadId) abortProblem = await this.abortUpload(Key, uploadId);
      throw this.putFailure(e, where, options.signal, abortProblem);
    } finally {
      options.signal?.removeEventListener("abort", onAbort);
    }
    // The object is committed: verify it without the caller's signal.
    await this.verifySize(Key, where, size);
    return { key, size };
  }

  /**
   * Part-by-part uploads driven by the control plane for remote runners. The `etag` handed back
   * is opaque to callers: the part's ETag plus its checksum, both needed to complete.
   */
  readonly multipart: MultipartOps = {
    create: async (key, options = {}) => {
      assertObjectKey(key);
      const Key = this.base + key;
      const created = await this.withRetry(`CreateMultipartUpload s3://${this.bucket}/${Key}`, undefined, (signal) =>
        this.client.send(
          new CreateMultipartUploadCommand({
            Bucket: this.bucket,
            Key,
            ...(options.contentType ? { ContentType: options.contentType } : {}),
            ...(this.options.storageClass ? { StorageClass: this.options.storageClass as StorageClass } : {}),
            ...lockParams(options),
            ...(this.options.checksums ? { ChecksumAlgorithm: this.options.checksumAlgorithm ?? "CRC32" } : {}),
          }),
          { abortSignal: signal },
        ),
      ).catch((e) => {
        throw storageFailed(e, `s3://${this.bucket}/${Key}`, "");
      });
      if (!created.UploadId) throw new VaultError("storage_failed", "CreateMultipartUpload returned no UploadId");
      return created.UploadId;
    },
    uploadPart: async (key, uploadId, partNumber, body) => {
      const Key = this.base + key;
      const locked = false;
      const part = await this.uploadPart(Key, uploadId, partNumber, Buffer.from(body.buffer, body.byteOffset, body.byteLength), new AbortController().signal, locked).catch(
        (e) => {
          throw storageFailed(e, `s3://${this.bucket}/${Key}`, "");
        },
      );
      return { etag: JSON.stringify(part) };
    },
    complete: async (key, uploadId, parts) => {
      const Key = this.base + key;
      const where = `s3://${this.bucket}/${Key}`;
      const completed = parts.map((p) => JSON.parse(p.etag) as CompletedPart);
      await this.withRetry(`CompleteMultipartUpload ${where}`, undefined, async (signal, attempt) => {
        try {
          await this.client.send(
            new CompleteMultipartUploadCommand({ Bucket: this.bucket, Key, UploadId: uploadId, MultipartUpload: { Parts: completed } }),
            { abortSignal: signal },
          );
        } catch (e) {
          if (attempt > 1 && errorName(e) === "NoSuchUpload") return;
          throw e;
        }
      }).catch((e) => {
        throw storageFailed(e, where, "");
      });
      const head = await this.head(key);
      if (!head) throw new VaultError("storage_failed", `${where}: completed, but the object is not there`);
      return head;
    },
    abort: async (key, uploadId) => {
      await this.abortUpload(this.base + key, uploadId);
    },
  };

  async discardPartial(key: string): Promise<void> {
    const Key = this.base + key;
    try {
      const res = await this.client.send(new ListMultipartUploadsCommand({ Bucket: this.bucket, Prefix: Key }));
      for (const u of res.Uploads ?? []) if (u.Key === Key && u.UploadId) await this.abortUpload(Key, u.UploadId);
    } catch (e) {
      // Servers without ListMultipartUploads (s3rver): a bucket lifecycle rule must clean up.
      this.options.log?.warn("could not list unfinished multipart uploads", { bucket: this.bucket, key: Key, error: describeError(e) });
    }
  }

  async get(key: string, range?: { start: number; end?: number }): Promise<GetResult> {
    assertObjectKey(key);
    const Key = this.base + key;
    const where = `s3://${this.bucket}/${Key}`;
    let Range: string | undefined;
    if (range && !(range.start === 0 && range.end === undefined)) {
      checkRange(range);
      Range = `bytes=${range.start}-${range.end ?? ""}`;
    }
    let res;
    try {
      res = await this.withRetry(`GetObject ${where}`, undefined, (signal) =>
        this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key, Range }), { abortSignal: signal }),
      );
    } catch (e) {
      const inner = e instanceof RequestFailed ? e.inner : e;
      if (isNotFound(inner)) throw notFound("object", key);
      if (statusOf(inner) === 416) {
        throw invalidInput("range", `bytes ${range?.start}- is not satisfiable for ${key}`);
      }
      throw storageFailed(e, where);
    }
    const size = res.ContentLength ?? 0;
    const total = /\/(\d+)\s*$/.exec(res.ContentRange ?? "")?.[1];
    return {
      body: webStreamOf(res.Body as Readable | undefined, where),
      size,
      totalSize: total === undefined ? size : Number(total),
    };
  }

  async head(key: string): Promise<BlobInfo | null> {
    assertObjectKey(key);
    const Key = this.base + key;
    try {
      const res = await this.withRetry(`HeadObject s3://${this.bucket}/${Key}`, undefined, (signal) =>
        this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key }), { abortSignal: signal }),
      );
      return { key, size: res.ContentLength ?? 0 };
    } catch (e) {
      if (isNotFound(e instanceof RequestFailed ? e.inner : e)) return null;
      throw storageFailed(e, `s3://${this.bucket}/${Key}`);
    }
  }

  async delete(key: string): Promise<void> {
    assertObjectKey(key);
    const Key = this.base + key;
    try {
      await this.withRetry(`DeleteObject s3://${this.bucket}/${Key}`, undefined, (signal) =>
        this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key }), { abortSignal: signal }),
      );
    } catch (e) {
      if (isNotFound(e instanceof RequestFailed ? e.inner : e)) return;
      throw storageFailed(e, `s3://${this.bucket}/${Key}`);
    }
  }

  /** Keys under the store prefix that start with `prefix`, in S3's (byte) order. */
  async *list(prefix: string): AsyncIterable<BlobInfo> {
    assertListPrefix(prefix);
    let token: string | undefined;
    do {
      let page;
      try {
        page = await this.withRetry(`ListObjectsV2 s3://${this.bucket}/${this.base}${prefix}`, undefined, (signal) =>
          this.client.send(
            new ListObjectsV2Command({
              Bucket: this.bucket,
              Prefix: this.base + prefix,
              ContinuationToken: token,
              MaxKeys: this.listPageSize,
            }),
            { abortSignal: signal },
          ),
        );
      } catch (e) {
        throw storageFailed(e, `s3://${this.bucket}/${this.base}${prefix}`);
      }
      for (const o of page.Contents ?? []) {
        if (o.Key?.startsWith(this.base)) yield { key: o.Key.slice(this.base.length), size: o.Size ?? 0 };
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
  }

  /** Closes the SDK client's sockets. */
  destroy(): void {
    this.client.destroy();
  }

  // -------------------------------------------------------------------------------------------

  private async uploadParts(
    Key: string,
    UploadId: string,
    reader: PartReader,
    first: Buffer,
    firstLength: number,
    ac: AbortController,
    locked: boolean,
  ): Promise<{ size: number; parts: CompletedPart[] }> {
    const parts: CompletedPart[] = [];
    const inflight = new Set<Promise<void>>();
    let failure: { error: unknown } | null = null;
    let buf = first;
    let length = firstLength;
    let size = 0;
    try {
      for (let partNumber = 1; length > 0; partNumber++) {
        if (partNumber > MAX_PARTS) {
          throw new Error(`object exceeds ${MAX_PARTS} parts of ${this.partSize} bytes`);
        }
        // Wait for a slot: never more than queueSize parts on the wire.
        while (inflight.size >= this.queueSize && !failure) await Promise.race(inflight);
        if (failure) break;
        const owned = buf;
        const data = owned.subarray(0, length);
        size += length;
        const p: Promise<void> = this.uploadPart(Key, UploadId, partNumber, data, ac.signal, locked)
          .then(
            (part) => void parts.push(part),
            (error: unknown) => {
              failure ??= { error };
              ac.abort();
            },
          )
          .finally(() => {
            inflight.delete(p);
            this.giveBuffer(owned);
          });
        inflight.add(p);
        // Fill the next part while the queue uploads.
        buf = this.takeBuffer();
        try {
          length = await reader.fill(buf, ac.signal);
        } catch (e) {
          this.giveBuffer(buf);
          throw e;
        }
        if (length === 0) this.giveBuffer(buf);
      }
    } catch (e) {
      failure ??= { error: e };
      ac.abort();
    }
    // Parts still on the wire must settle before the caller aborts or completes the upload:
    // S3 may keep a part whose upload was still running when AbortMultipartUpload arrived.
    while (inflight.size) await Promise.allSettled([...inflight]);
    if (failure) throw (failure as { error: unknown }).error;
    parts.sort((a, b) => (a.PartNumber ?? 0) - (b.PartNumber ?? 0));
    return { size, parts };
  }

  private async uploadPart(
    Key: string,
    UploadId: string,
    PartNumber: number,
    data: Buffer,
    signal: AbortSignal,
    locked: boolean,
  ): Promise<CompletedPart> {
    const checksum = this.checksumOf(data, locked);
    const res = await this.withRetry(`UploadPart ${PartNumber} of s3://${this.bucket}/${Key}`, signal, (sig) =>
      this.client.send(
        new UploadPartCommand({ Bucket: this.bucket, Key, UploadId, PartNumber, Body: data, ContentLength: data.length, ...checksum }),
        { abortSignal: sig },
      ),
    );
    if (!res.ETag) throw new Error(`UploadPart ${PartNumber} returned no ETag`);
    const { ContentMD5: _md5, ...partChecksum } = checksum;
    return { PartNumber, ETag: res.ETag, ...partChecksum };
  }

  /**
   * Checksum fields for one request body. With checksums on: our own CRC32/SHA256 (the same value
   * goes into CompleteMultipartUpload). With them off but object lock asked: Content-MD5, which S3
   * requires on PUTs that set a retention.
   */
  private checksumOf(
    data: Uint8Array,
    locked: boolean,
  ): { ChecksumCRC32?: string; ChecksumSHA256?: string; ContentMD5?: string } {
    if (this.options.checksums) {
      if ((this.options.checksumAlgorithm ?? "CRC32") === "SHA256") {
        return { ChecksumSHA256: createHash("sha256").update(data).digest("base64") };
      }
      const b = Buffer.alloc(4);
      b.writeUInt32BE(crc32(data) >>> 0);
      return { ChecksumCRC32: b.toString("base64") };
    }
    if (locked) return { ContentMD5: createHash("md5").update(data).digest("base64") };
    return {};
  }

  private async verifySize(Key: string, where: string, size: number): Promise<void> {
    let stored: number | undefined;
    try {
      const res = await this.withRetry(`HeadObject ${where}`, undefined, (signal) =>
        this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key }), { abortSignal: signal }),
      );
      stored = res.ContentLength;
    } catch (e) {
      throw storageFailed(e, where, `${where} was uploaded, but checking it failed: `);
    }
    if (stored === size) return;
    let cleanup = "deleted it";
    try {
      await this.withRetry(`DeleteObject ${where}`, undefined, (signal) =>
        this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key }), { abortSignal: signal }),
      );
    } catch (e) {
      cleanup = `deleting it failed too: ${describeError(e)}`;
    }
    throw new VaultError("storage_failed", `${where}: sent ${size} bytes but the stored object has ${stored ?? "unknown"}; ${cleanup}`);
  }

  /** Best effort; returns a note for the error message on what became of the upload. */
  private async abortUpload(Key: string, UploadId: string): Promise<string> {
    const done = "; the multipart upload was aborted";
    try {
      await this.withRetry(`AbortMultipartUpload s3://${this.bucket}/${Key}`, undefined, (signal) =>
        this.client.send(new AbortMultipartUploadCommand({ Bucket: this.bucket, Key, UploadId }), { abortSignal: signal }),
      );
      return done;
    } catch (e) {
      const inner = e instanceof RequestFailed ? e.inner : e;
      if (errorName(inner) === "NoSuchUpload") return done;
      this.options.log?.warn("abort of multipart upload failed; parts may remain until a lifecycle rule removes them", {
        bucket: this.bucket,
        key: Key,
        uploadId: UploadId,
        error: describeError(inner),
      });
      return `; AbortMultipartUpload (upload id ${UploadId}) failed too: ${describeError(inner)}`;
    }
  }

  private putFailure(e: unknown, where: string, signal: AbortSignal | undefined, abortProblem: string): VaultError {
    if (signal?.aborted) {
      const reason: unknown = signal.reason;
      if (isVaultError(reason)) return reason;
      return new VaultError("cancelled", `upload to ${where} was cancelled${abortProblem}`, { cause: reason });
    }
    if (e instanceof SourceError) {
      // The pipeline's own errors (snapshot_corrupt, exec_failed, …) keep their code.
      if (isVaultError(e.inner)) return e.inner;
      return new VaultError("storage_failed", `upload to ${where} failed: ${e.message}${abortProblem}`, { cause: e.inner });
    }
    if (!(e instanceof RequestFailed) && !isVaultError(e)) {
      return new VaultError("storage_failed", `upload to ${where} failed: ${describeError(e)}${abortProblem}`, { cause: scrubbed(e) });
    }
    if (isVaultError(e)) return e;
    return storageFailed(e, where, "", abortProblem);
  }

  /** Runs `op` up to `attempts` times, backing off exponentially with jitter on transient errors. */
  private async withRetry<T>(operation: string, signal: AbortSignal | undefined, op: Op<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      signal?.throwIfAborted();
      try {
        return await op(signal, attempt);
      } catch (e) {
        if (signal?.aborted) throw signal.reason;
        if (attempt >= this.attempts || !isTransient(e)) throw new RequestFailed(operation, attempt, e);
        const step = Math.min(this.maxDelayMs, this.baseDelayMs * 2 ** (attempt - 1));
        const delayMs = Math.round(step / 2 + (Math.random() * step) / 2);
        this.options.log?.warn("S3 request failed; retrying", { operation, attempt, delayMs, error: describeError(e) });
        await sleep(delayMs, signal);
      }
    }
  }

  private takeBuffer(): Buffer {
    // allocUnsafe: every byte sent is first written by PartReader.fill.
    return this.pool.pop() ?? Buffer.allocUnsafe(this.partSize);
  }

  private giveBuffer(b: Buffer): void {
    // Concurrent puts on one store may briefly exceed the steady state; keep the pool small.
    if (this.pool.length < this.queueSize + 1) this.pool.push(b);
  }
}

/** Reads the caller's iterable into part-sized buffers, carrying any remainder over. */
class PartReader {
  private readonly it: AsyncIterator<Uint8Array>;
  private pending: Uint8Array = new Uint8Array(0);
  private done = false;

  constructor(source: AsyncIterable<Uint8Array>) {
    this.it = source[Symbol.asyncIterator]();
  }

  /** Fills `buf` from the start; returns the bytes written (< buf.length only at the end). */
  async fill(buf: Uint8Array, signal: AbortSignal): Promise<number> {
    let n = 0;
    while (n < buf.length) {
      if (this.pending.length === 0) {
        if (!(await this.pull(signal))) break;
        continue;
      }
      const take = Math.min(buf.length - n, this.pending.length);
      buf.set(take === this.pending.length ? this.pending : this.pending.subarray(0, take), n);
      n += take;
      this.pending = this.pending.subarray(take);
    }
    return n;
  }

  /** True when the source has nothing more (pulls one chunk ahead to find out). */
  async atEnd(signal: AbortSignal): Promise<boolean> {
    while (this.pending.length === 0) {
      if (!(await this.pull(signal))) return true;
    }
    return false;
  }

  /** Lets the source clean up after a failure, without waiting on it (it may be stuck). */
  release(): void {
    if (this.done) return;
    this.done = true;
    void Promise.resolve(this.it.return?.()).catch(() => undefined);
  }

  private async pull(signal: AbortSignal): Promise<boolean> {
    if (this.done) return false;
    let r: IteratorResult<Uint8Array>;
    try {
      r = await abortable(this.it.next(), signal);
    } catch (e) {
      if (signal.aborted) throw e;
      this.done = true;
      throw new SourceError(e);
    }
    if (r.done) {
      this.done = true;
      return false;
    }
    if (!(r.value instanceof Uint8Array)) throw new SourceError(new TypeError("source yielded a non-Uint8Array chunk"));
    this.pending = r.value;
    return true;
  }
}

function clientConfig(o: S3StoreOptions): S3ClientConfig {
  return {
    region: o.region,
    ...(o.endpoint ? { endpoint: o.endpoint } : {}),
    forcePathStyle: o.forcePathStyle ?? false,
    ...(o.credentials ? { credentials: o.credentials } : {}),
    // Our withRetry is the only retry layer.
    maxAttempts: 1,
    requestChecksumCalculation: o.checksums ? "WHEN_SUPPORTED" : "WHEN_REQUIRED",
    // Ranged GETs cannot be checked against a whole-object checksum.
    responseChecksumValidation: "WHEN_REQUIRED",
    requestHandler: { connectionTimeout: 10_000, requestTimeout: o.requestTimeoutMs ?? 120_000 },
  };
}

/** Operations whose bodies are signed as UNSIGNED-PAYLOAD. */
const UNSIGNED_BODY_COMMANDS = new Set(["UploadPartCommand", "PutObjectCommand"]);
const CONTENT_SHA256 = "x-amz-content-sha256";

/**
 * SigV4 puts a hash of the body into the signature; for a Buffer body @aws-sdk/client-s3 (3.x)
 * computes it with SHA-256 over every byte — over plain http and https alike — and has no setting
 * to skip it. Its signer takes the hash from an `x-amz-content-sha256` header when the request
 * already has one, so this middleware, placed right before signing, sets the literal
 * `UNSIGNED-PAYLOAD` (an S3 SigV4 mode of its own: the header itself is still signed) on UploadPart
 * and PutObject. The bytes stay checked without it: per-part CRC32/SHA-256 headers that S3
 * verifies when `checksums` is on (and Content-MD5 under object lock), the stored size compared
 * after every put, and the capture's own SHA-256 of the ciphertext; the payload is age-encrypted
 * and authenticated. A header set earlier (the SDK's aws-chunked `STREAMING-…` modes) is left alone.
 */
function unsignedPayload<A extends { request: unknown }, R>(
  next: (args: A) => Promise<R>,
  context: { commandName?: string },
): (args: A) => Promise<R> {
  return async (args) => {
    const request = args.request as { headers?: Record<string, string> } | null;
    if (request?.headers && context.commandName && UNSIGNED_BODY_COMMANDS.has(context.commandName)) {
      const present = Object.keys(request.headers).some((h) => h.toLowerCase() === CONTENT_SHA256);
      if (!present) request.headers[CONTENT_SHA256] = "UNSIGNED-PAYLOAD";
    }
    return next(args);
  };
}

/** Makes `client` send UploadPart and PutObject bodies as UNSIGNED-PAYLOAD (see above). */
export function useUnsignedPayload(client: S3Client): void {
  client.middlewareStack.addRelativeTo(unsignedPayload, {
    name: "etcdVaultUnsignedPayload",
    relation: "before",
    toMiddleware: "httpSigningMiddleware",
  });
}

function lockParams(o: PutOptions): { ObjectLockMode: "GOVERNANCE" | "COMPLIANCE"; ObjectLockRetainUntilDate: Date } | null {
  const until = o.lockUntil ?? null;
  const mode = o.lockMode ?? null;
  if (until === null && mode === null) return null;
  if (until === null || mode === null) throw invalidInput("lockUntil", "object lock needs both lockMode and lockUntil");
  if (!Number.isFinite(until.getTime())) throw invalidInput("lockUntil", "is not a valid date");
  return { ObjectLockMode: mode, ObjectLockRetainUntilDate: until };
}

/** Wraps the SDK's Node body in a pull-driven web stream: one chunk read per pull (backpressure). */
function webStreamOf(body: Readable | undefined, where: string): ReadableStream<Uint8Array> {
  if (!body) return new ReadableStream({ start: (c) => c.close() });
  const it = body[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  return new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        try {
          const r = await it.next();
          if (r.done) controller.close();
          else controller.enqueue(new Uint8Array(r.value.buffer, r.value.byteOffset, r.value.byteLength));
        } catch (e) {
          controller.error(new VaultError("storage_failed", `reading ${where} failed: ${describeError(e)}`, { cause: scrubbed(e) }));
        }
      },
      cancel() {
        body.destroy();
      },
    },
    { highWaterMark: 1 },
  );
}

function storageFailed(e: unknown, where: string, lead = "", tail = ""): VaultError {
  if (isVaultError(e)) return e;
  // A RequestFailed message already names the operation, bucket and key.
  const detail = e instanceof RequestFailed ? e.message : `${where}: ${describeError(e)}`;
  return new VaultError("storage_failed", `${lead}${detail}${tail}`, { cause: scrubbed(e instanceof RequestFailed ? e.inner : e) });
}

const TRANSIENT_NAMES = new Set([
  "SlowDown",
  "Throttling",
  "ThrottlingException",
  "TooManyRequestsException",
  "RequestTimeout",
  "RequestTimeoutException",
  "InternalError",
  "ServiceUnavailable",
  "TimeoutError",
]);
const TRANSIENT_CODES = new Set(["ECONNRESET", "EPIPE", "ETIMEDOUT", "ECONNREFUSED", "ECONNABORTED", "EAI_AGAIN", "ENETUNREACH", "EHOSTUNREACH"]);

/** 5xx, throttling (503 SlowDown, 429) and dropped connections; everything else is final. */
export function isTransient(e: unknown): boolean {
  const status = statusOf(e);
  if (status !== undefined && (status >= 500 || status === 429)) return true;
  if (TRANSIENT_NAMES.has(errorName(e) ?? "")) return true;
  for (let cur: unknown = e, depth = 0; cur && depth < 4; cur = (cur as { cause?: unknown }).cause, depth++) {
    const code = (cur as { code?: unknown }).code;
    if (typeof code === "string" && TRANSIENT_CODES.has(code)) return true;
    const msg = (cur as { message?: unknown }).message;
    if (typeof msg === "string" && /socket hang up|ECONNRESET|EPIPE|premature close/i.test(msg)) return true;
  }
  return false;
}

const statusOf = (e: unknown): number | undefined =>
  (e as { $metadata?: { httpStatusCode?: number } } | null)?.$metadata?.httpStatusCode;

const errorName = (e: unknown): string | undefined => {
  const x = e as { name?: unknown; Code?: unknown } | null;
  return typeof x?.Code === "string" ? x.Code : typeof x?.name === "string" ? x.name : undefined;
};

const isNotFound = (e: unknown) => {
  const name = errorName(e);
  return statusOf(e) === 404 || name === "NoSuchKey" || name === "NotFound";
};

/** `Name (HTTP 500): message` or `ECONNRESET: message`; never includes request headers. */
function describeError(e: unknown): string {
  if (e instanceof RequestFailed || e instanceof SourceError) return e.message;
  if (!(e instanceof Error)) return String(e);
  const status = statusOf(e);
  const code = (e as { code?: unknown }).code;
  const label = typeof code === "string" && code !== e.name ? `${e.name} ${code}` : e.name;
  const message = e.message && e.message !== "UnknownError" ? e.message : "(no message)";
  return `${label}${status !== undefined ? ` (HTTP ${status})` : ""}: ${message}`;
}

/**
 * The SDK's exceptions keep the raw HTTP exchange (`$response`, with the request's headers:
 * Authorization, X-Amz-Security-Token). Errors we hand on carry a copy without it, so a logger
 * that prints causes cannot leak a credential.
 */
function scrubbed(e: unknown): unknown {
  if (!(e instanceof Error) || isVaultError(e)) return e;
  const copy = new Error(e.message);
  copy.name = e.name;
  copy.stack = e.stack;
  const x = e as Error & { code?: unknown; Code?: unknown; $metadata?: unknown };
  if (x.code !== undefined) Object.assign(copy, { code: x.code });
  if (x.Code !== undefined) Object.assign(copy, { Code: x.Code });
  if (x.$metadata !== undefined) Object.assign(copy, { $metadata: x.$metadata });
  if (x.cause !== undefined) Object.defineProperty(copy, "cause", { value: scrubbed(x.cause), configurable: true, writable: true });
  return copy;
}

function abortable<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    p.then(
      (v) => {
        signal.removeEventListener("abort", onAbort);
        resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener("abort", onAbort);
        reject(e);
      },
    );
  });
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const t = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      reject(signal?.reason);
    };
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}
