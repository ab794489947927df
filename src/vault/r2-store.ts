// A BlobStore over a Workers R2 bucket binding (Worker edition). Runtime-neutral: it only calls
// the binding and Web Streams, so nothing here pulls a Node module into the Worker bundle.
//
// R2 facts this file relies on (Workers R2 binding API):
// - `put()` with a ReadableStream needs a known length, so a stream of unknown length cannot be
//   handed over as is: put() buffers up to one part; a larger body becomes a multipart upload.
// - Multipart: every part but the last must be at least 5 MiB and all of them the same size;
//   an upload not completed is invisible under its key, and `abort()` drops its parts.
// - `resumeMultipartUpload(key, id)` is synchronous and does no I/O: each runner part request may
//   land on a different isolate, so every multipart op rebuilds the handle from (key, uploadId).
// - `get()` takes `range: {offset, length}`; the returned object's `size` is the whole object's.

import { invalidInput, isVaultError, notFound, VaultError } from "../core/errors.js";
import type { BlobInfo, BlobStore, GetResult, MultipartOps, PutOptions } from "../core/ports.js";
import { assertListPrefix, assertObjectKey } from "../core/storage-url.js";

// ---- The slice of the R2 binding we use (no @cloudflare/workers-types in this project) ----

export interface R2ObjectLike {
  key: string;
  size: number;
  etag: string;
}
export interface R2ObjectBodyLike extends R2ObjectLike {
  body: ReadableStream<Uint8Array>;
}
export interface R2UploadedPartLike {
  partNumber: number;
  etag: string;
}
export interface R2MultipartUploadLike {
  readonly key: string;
  readonly uploadId: string;
  uploadPart(partNumber: number, value: Uint8Array): Promise<R2UploadedPartLike>;
  abort(): Promise<void>;
  complete(parts: R2UploadedPartLike[]): Promise<R2ObjectLike>;
}
export interface R2PutOptionsLike {
  httpMetadata?: { contentType?: string };
}
export interface R2BucketLike {
  head(key: string): Promise<R2ObjectLike | null>;
  get(key: string, options?: { range?: { offset: number; length?: number } }): Promise<R2ObjectBodyLike | null>;
  put(key: string, value: Uint8Array, options?: R2PutOptionsLike): Promise<R2ObjectLike | null>;
  delete(keys: string | string[]): Promise<void>;
  list(options?: { prefix?: string; cursor?: string; limit?: number }): Promise<{
    objects: R2ObjectLike[];
    truncated: boolean;
    cursor?: string;
  }>;
  createMultipartUpload(key: string, options?: R2PutOptionsLike): Promise<R2MultipartUploadLike>;
  resumeMultipartUpload(key: string, uploadId: string): R2MultipartUploadLike;
}

/** True when `v` has the methods of an R2 bucket binding (used to validate Worker bindings). */
export function isR2Bucket(v: unknown): v is R2BucketLike {
  const b = v as Record<string, unknown> | null;
  return (
    !!b &&
    typeof b === "object" &&
    ["head", "get", "put", "delete", "list", "createMultipartUpload", "resumeMultipartUpload"].every((m) => typeof b[m] === "function")
  );
}

const MiB = 1024 * 1024;
/** R2's floor for every part but the last. */
export const R2_MIN_PART_SIZE = 5 * MiB;
export const R2_DEFAULT_PART_SIZE = 8 * MiB;

export interface R2StoreOptions {
  /** Name of the binding, for messages (`r2://VAULT/…`). */
  binding: string;
  /** Key prefix inside the bucket, without leading or trailing slash; "" for none. */
  prefix?: string;
  /** Part size of put() for large bodies, also its single-put threshold (default 8 MiB). */
  partSize?: number;
  /** Keys per list request (default 1000, R2's maximum). */
  listPageSize?: number;
}

export class R2BlobStore implements BlobStore {
  readonly kind = "r2" as const;
  readonly multipart: MultipartOps;
  private readonly base: string;
  private readonly partSize: number;
  private readonly listPageSize: number;
  private readonly name: string;

  constructor(
    private readonly bucket: R2BucketLike,
    options: R2StoreOptions,
  ) {
    const prefix = (options.prefix ?? "").replace(/^\/+|\/+$/g, "");
    this.base = prefix ? `${prefix}/` : "";
    this.name = `r2://${options.binding}`;
    this.partSize = options.partSize ?? R2_DEFAULT_PART_SIZE;
    if (!Number.isSafeInteger(this.partSize) || this.partSize < R2_MIN_PART_SIZE) {
      throw invalidInput("partSize", `must be an integer of at least ${R2_MIN_PART_SIZE} bytes (5 MiB)`);
    }
    this.listPageSize = options.listPageSize ?? 1000;
    this.multipart = this.multipartOps();
  }

  private where(key: string): string {
    return `${this.name}/${this.base}${key}`;
  }

  async put(key: string, body: AsyncIterable<Uint8Array>, options: PutOptions = {}): Promise<BlobInfo> {
    assertObjectKey(key);
    refuseLock(options);
    const full = this.base + key;
    const meta = options.contentType ? { httpMetadata: { contentType: options.contentType } } : {};
    const parts = new PartSlicer(body, this.partSize);
    let upload: R2MultipartUploadLike | null = null;
    let size = 0;
    try {
      options.signal?.throwIfAborted();
      const first = await parts.next();
      const second = first && first.length === this.partSize ? await parts.next() : null;
      if (!second) {
        // Fits in one part: a single put with a known length.
        const data = first ?? new Uint8Array(0);
        options.signal?.throwIfAborted();
        const stored = await this.bucket.put(full, data, meta);
        size = data.length;
        checkSize(stored?.size, size, this.where(key));
        return { key, size };
      }
      upload = await this.bucket.createMultipartUpload(full, meta);
      const done: R2UploadedPartLike[] = [];
      let partNumber = 1;
      // One part uploading while the next one fills: memory stays at two parts.
      let pending: Uint8Array | null = second;
      let current: Uint8Array = first!;
      for (;;) {
        options.signal?.throwIfAborted();
        const sending = upload.uploadPart(partNumber, current);
        const [uploaded, following] = await Promise.all([sending, pending ? Promise.resolve(pending) : parts.next()]);
        done.push(uploaded);
        size += current.length;
        partNumber++;
        pending = null;
        if (!following) break;
        current = following;
      }
      options.signal?.throwIfAborted();
      const stored = await upload.complete(done);
      upload = null;
      checkSize(stored.size, size, this.where(key));
      return { key, size };
    } catch (e) {
      if (upload) await upload.abort().catch(() => undefined);
      throw this.failure(e, `storing ${this.where(key)}`, options.signal);
    }
  }

  async get(key: string, range?: { start: number; end?: number }): Promise<GetResult> {
    assertObjectKey(key);
    if (range) checkRange(range);
    const full = this.base + key;
    let obj: R2ObjectBodyLike | null;
    try {
      if (range && !(range.start === 0 && range.end === undefined)) {
        // The total size is needed to clamp `end` and to refuse an unsatisfiable start.
        const head = await this.bucket.head(full);
        if (!head) throw notFound("object", key);
        if (range.start >= head.size) {
          throw invalidInput("range", `bytes ${range.start}- is not satisfiable: the object has ${head.size} bytes`);
        }
        const end = Math.min(range.end ?? head.size - 1, head.size - 1);
        obj = await this.bucket.get(full, { range: { offset: range.start, length: end - range.start + 1 } });
        if (!obj) throw notFound("object", key);
        return { body: obj.body, size: end - range.start + 1, totalSize: obj.size };
      }
      obj = await this.bucket.get(full);
    } catch (e) {
      throw this.failure(e, `reading ${this.where(key)}`);
    }
    if (!obj) throw notFound("object", key);
    return { body: obj.body, size: obj.size, totalSize: obj.size };
  }

  async head(key: string): Promise<BlobInfo | null> {
    assertObjectKey(key);
    try {
      const h = await this.bucket.head(this.base + key);
      return h ? { key, size: h.size } : null;
    } catch (e) {
      throw this.failure(e, `HEAD ${this.where(key)}`);
    }
  }

  async delete(key: string): Promise<void> {
    assertObjectKey(key);
    try {
      // Deleting a key that does not exist is not an error in R2 (nor for callers here).
      await this.bucket.delete(this.base + key);
    } catch (e) {
      throw this.failure(e, `deleting ${this.where(key)}`);
    }
  }

  async *list(prefix: string): AsyncIterable<BlobInfo> {
    assertListPrefix(prefix);
    let cursor: string | undefined;
    for (;;) {
      let page;
      try {
        page = await this.bucket.list({ prefix: this.base + prefix, ...(cursor ? { cursor } : {}), limit: this.listPageSize });
      } catch (e) {
        throw this.failure(e, `listing ${this.where(prefix)}`);
      }
      for (const o of page.objects) yield { key: o.key.slice(this.base.length), size: o.size };
      if (!page.truncated || !page.cursor) return;
      cursor = page.cursor;
    }
  }

  private multipartOps(): MultipartOps {
    const resume = (key: string, uploadId: string) => {
      assertObjectKey(key);
      return this.bucket.resumeMultipartUpload(this.base + key, uploadId);
    };
    return {
      create: async (key, options = {}) => {
        assertObjectKey(key);
        refuseLock(options);
        try {
          const meta = options.contentType ? { httpMetadata: { contentType: options.contentType } } : {};
          return (await this.bucket.createMultipartUpload(this.base + key, meta)).uploadId;
        } catch (e) {
          throw this.failure(e, `starting a multipart upload to ${this.where(key)}`);
        }
      },
      uploadPart: async (key, uploadId, partNumber, body) => {
        try {
          const part = await resume(key, uploadId).uploadPart(partNumber, body);
          return { etag: part.etag };
        } catch (e) {
          throw this.failure(e, `uploading part ${partNumber} of ${this.where(key)}`);
        }
      },
      complete: async (key, uploadId, parts) => {
        try {
          const stored = await resume(key, uploadId).complete(parts.map((p) => ({ partNumber: p.partNumber, etag: p.etag })));
          return { key, size: stored.size };
        } catch (e) {
          throw this.failure(e, `completing the multipart upload of ${this.where(key)}`);
        }
      },
      abort: async (key, uploadId) => {
        try {
          await resume(key, uploadId).abort();
        } catch (e) {
          // Already completed or aborted (a retried cleanup): nothing is left to drop.
          if (/NoSuchUpload|does not exist|not found/i.test(messageOf(e))) return;
          throw this.failure(e, `aborting the multipart upload of ${this.where(key)}`);
        }
      },
    };
  }

  private failure(e: unknown, what: string, signal?: AbortSignal): VaultError {
    if (signal?.aborted) {
      const reason: unknown = signal.reason;
      return isVaultError(reason) ? reason : new VaultError("cancelled", `${what} was cancelled`, { cause: reason });
    }
    if (isVaultError(e)) return e;
    return new VaultError("storage_failed", `${what} failed: ${messageOf(e)}`, { cause: e });
  }
}

/** R2 locks objects with bucket rules, not per request: a per-object lock cannot be honoured here. */
function refuseLock(options: PutOptions): void {
  if (options.lockUntil || options.lockMode) {
    throw new VaultError("invalid_input", "objectLock: R2 targets do not take per-object locks (use R2 bucket lock rules)", {
      field: "objectLock",
    });
  }
}

function checkSize(stored: number | undefined, sent: number, where: string): void {
  if (stored !== undefined && stored !== sent) {
    throw new VaultError("storage_failed", `${where}: sent ${sent} bytes but the stored object has ${stored}`);
  }
}

function checkRange(range: { start: number; end?: number }): void {
  const { start, end } = range;
  if (!Number.isSafeInteger(start) || start < 0) throw invalidInput("range", "start must be a non-negative integer");
  if (end !== undefined && (!Number.isSafeInteger(end) || end < start)) {
    throw invalidInput("range", "end must be an integer not below start");
  }
}

const messageOf = (e: unknown) => (e instanceof Error ? e.message : String(e));

/**
 * Cuts a byte stream into parts of exactly `size` bytes (the last may be shorter), copying each
 * chunk once. `next()` resolves with null at the end.
 */
class PartSlicer {
  private readonly it: AsyncIterator<Uint8Array>;
  private rest: Uint8Array | null = null;
  private ended = false;

  constructor(
    source: AsyncIterable<Uint8Array>,
    private readonly size: number,
  ) {
    this.it = source[Symbol.asyncIterator]();
  }

  async next(): Promise<Uint8Array | null> {
    if (this.ended && !this.rest) return null;
    const part = new Uint8Array(this.size);
    let fill = 0;
    while (fill < this.size) {
      let chunk = this.rest;
      this.rest = null;
      if (!chunk) {
        if (this.ended) break;
        const r = await this.it.next();
        if (r.done) {
          this.ended = true;
          break;
        }
        chunk = r.value;
      }
      const take = Math.min(this.size - fill, chunk.length);
      part.set(chunk.subarray(0, take), fill);
      fill += take;
      if (take < chunk.length) this.rest = chunk.subarray(take);
    }
    if (fill === 0) return null;
    return fill === this.size ? part : part.subarray(0, fill);
  }
}
