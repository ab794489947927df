// A BlobStore over a local directory (the Node edition's default vault).
//
// put() writes to a temp file next to the final name, fsyncs it, renames it into place and fsyncs
// the directory: a reader sees the old object or the whole new one, never a torn file, and a crash
// leaves at most a temp file (`…etcd-vault-tmp`, which list() skips). Keys are checked before they
// become paths, so no key can name a file outside the root.

import { randomBytes } from "node:crypto";
import { mkdir, open, readdir, rename, stat, unlink, type FileHandle } from "node:fs/promises";
import { dirname, join, resolve, sep } from "node:path";
import { invalidInput, isVaultError, notFound, VaultError } from "../core/errors.js";
import type { BlobInfo, BlobStore, GetResult, MultipartOps, PutOptions } from "../core/ports.js";
import { assertListPrefix, assertObjectKey, keyProblem, TEMP_SUFFIX } from "../core/storage-url.js";

/** Bytes per chunk of a get() stream. */
const READ_CHUNK = 256 * 1024;

/** Marks an error thrown by the caller's source iterable (as opposed to the filesystem). */
class SourceError extends Error {
  constructor(readonly inner: unknown) {
    super("source failed", { cause: inner });
  }
}

export class LocalBlobStore implements BlobStore {
  readonly kind = "file" as const;
  readonly root: string;

  constructor(dir: string) {
    this.root = resolve(dir);
  }

  async put(key: string, body: AsyncIterable<Uint8Array>, options: PutOptions = {}): Promise<BlobInfo> {
    const path = this.pathOf(key);
    const dir = dirname(path);
    // Same directory as the target, so rename() is atomic (same filesystem).
    const tmp = join(dir, `.${path.slice(dir.length + 1)}.${randomBytes(6).toString("hex")}${TEMP_SUFFIX}`);
    const { signal } = options;
    const it = body[Symbol.asyncIterator]();
    let fh: FileHandle | undefined;
    let size = 0;
    let step = "create directory";
    let where = dir;
    let sourceDone = false;
    try {
      signal?.throwIfAborted();
      await makeDirs(dir);
      step = "create temp file";
      where = tmp;
      fh = await open(tmp, "wx", 0o640);
      step = "write";
      for (;;) {
        let r: IteratorResult<Uint8Array>;
        try {
          r = await it.next();
        } catch (e) {
          sourceDone = true;
          throw new SourceError(e);
        }
        signal?.throwIfAborted();
        if (r.done) {
          sourceDone = true;
          break;
        }
        const chunk = r.value;
        if (!(chunk instanceof Uint8Array)) throw new SourceError(new TypeError("source yielded a non-Uint8Array chunk"));
        let off = 0;
        while (off < chunk.length) {
          const { bytesWritten } = await fh.write(chunk, off, chunk.length - off);
          off += bytesWritten;
        }
        size += chunk.length;
      }
      step = "fsync";
      await fh.sync();
      await fh.close();
      fh = undefined;
      step = "rename into place";
      where = path;
      await rename(tmp, path);
      step = "fsync directory";
      where = dir;
      await syncDir(dir);
      step = "check size";
      where = path;
      const st = await stat(path);
      if (st.size !== size) {
        await unlink(path).catch(() => undefined);
        throw new VaultError("storage_failed", `stored ${path} has ${st.size} bytes, expected ${size}; removed it`);
      }
      return { key, size };
    } catch (e) {
      await fh?.close().catch(() => undefined);
      await unlink(tmp).catch(() => undefined);
      // Let the source clean up (an async generator runs its finally blocks); never wait on it.
      if (!sourceDone) void Promise.resolve(it.return?.()).catch(() => undefined);
      throw this.putFailure(e, key, where, step, signal);
    }
  }

  /**
   * Part-by-part uploads for remote runners: each part is its own temp file next to the target
   * (skipped by list(), like every temp file); complete() streams them in order through put(),
   * so the object still appears atomically, then removes the parts.
   *
   * Every upload of a part gets a file of its own, named by a random tag that its etag carries,
   * and complete() reads exactly the files the given etags name. Two requests for the same part
   * number (a retry racing the original) therefore never write into one file: whichever the
   * catalog recorded is the one assembled, as S3 and R2 do by checking etags.
   */
  readonly multipart: MultipartOps = {
    create: async (key) => {
      this.pathOf(key);
      return randomBytes(12).toString("hex");
    },
    uploadPart: async (key, uploadId, partNumber, body) => {
      const tag = randomBytes(8).toString("hex");
      const part = this.partPath(key, uploadId, partNumber, tag);
      await makeDirs(dirname(part));
      const fh = await open(part, "wx", 0o640).catch((e) => {
        throw fsFailure(`cannot create part file ${part}`, e);
      });
      try {
        let off = 0;
        while (off < body.length) off += (await fh.write(body, off, body.length - off)).bytesWritten;
        await fh.sync();
      } catch (e) {
        await unlink(part).catch(() => undefined);
        throw fsFailure(`cannot write part file ${part}`, e);
      } finally {
        await fh.close().catch(() => undefined);
      }
      return { etag: `${partNumber}:${body.length}:${tag}` };
    },
    complete: async (key, uploadId, parts) => {
      const files: string[] = [];
      for (const p of [...parts].sort((a, b) => a.partNumber - b.partNumber)) {
        // `n:len` without a tag: a part written before per-request files (an upload in flight
        // across an upgrade), stored under the untagged name.
        const m = /^(\d+):(\d+)(?::([0-9a-f]{16}))?$/.exec(p.etag);
        if (!m || Number(m[1]) !== p.partNumber) throw invalidInput("parts", `part ${p.partNumber}: not an etag this store gave out`);
        const file = this.partPath(key, uploadId, p.partNumber, m[3] ?? null);
        const size = await stat(file).then(
          (st) => st.size,
          () => -1,
        );
        if (size !== Number(m[2])) throw fsFailure(`part ${p.partNumber} of upload ${uploadId}`, new Error(size < 0 ? "part file missing" : `part file has ${size} bytes, ${m[2]} were uploaded`));
        files.push(file);
      }
      const info = await this.put(
        key,
        (async function* () {
          for (const file of files) {
            const fh = await open(file, "r");
            try {
              for await (const chunk of fh.createReadStream({ highWaterMark: READ_CHUNK, autoClose: false })) yield chunk as Uint8Array;
            } finally {
              await fh.close();
            }
          }
        })(),
      );
      // The assembled parts and any that lost a race: every file of this upload goes.
      await this.multipart.abort(key, uploadId);
      return info;
    },
    abort: async (key, uploadId) => {
      const path = this.pathOf(key);
      const dir = dirname(path);
      const prefix = `.${path.slice(dir.length + 1)}.${uploadId}.part`;
      const names = await readdir(dir).catch(() => [] as string[]);
      await Promise.all(names.filter((n) => n.startsWith(prefix)).map((n) => unlink(join(dir, n)).catch(() => undefined)));
    },
  };

  async discardPartial(key: string): Promise<void> {
    const path = this.pathOf(key);
    const dir = dirname(path);
    const prefix = `.${path.slice(dir.length + 1)}.`;
    const names = await readdir(dir).catch(() => [] as string[]);
    await Promise.all(
      names.filter((n) => n.startsWith(prefix) && n.endsWith(TEMP_SUFFIX)).map((n) => unlink(join(dir, n)).catch(() => undefined)),
    );
  }

  private partPath(key: string, uploadId: string, partNumber: number, tag: string | null): string {
    if (!/^[0-9a-f]{24}$/.test(uploadId)) throw invalidInput("uploadId", "not an upload id of this store");
    const path = this.pathOf(key);
    const dir = dirname(path);
    return join(dir, `.${path.slice(dir.length + 1)}.${uploadId}.part${partNumber}${tag === null ? "" : `-${tag}`}${TEMP_SUFFIX}`);
  }

  async get(key: string, range?: { start: number; end?: number }): Promise<GetResult> {
    const path = this.pathOf(key);
    let fh: FileHandle;
    try {
      fh = await open(path, "r");
    } catch (e) {
      if (isMissing(e)) throw notFound("object", key);
      throw fsFailure(`cannot open ${path}`, e);
    }
    try {
      // Size from the open handle: a concurrent rename() cannot change what this read sees.
      const st = await fh.stat();
      if (!st.isFile()) throw notFound("object", key);
      const { start, end } = resolveRange(range, st.size);
      return { body: fileStream(fh, path, start, end + 1), size: end + 1 - start, totalSize: st.size };
    } catch (e) {
      await fh.close().catch(() => undefined);
      throw isVaultError(e) ? e : fsFailure(`cannot read ${path}`, e);
    }
  }

  async head(key: string): Promise<BlobInfo | null> {
    const path = this.pathOf(key);
    try {
      const st = await stat(path);
      return st.isFile() ? { key, size: st.size } : null;
    } catch (e) {
      if (isMissing(e)) return null;
      throw fsFailure(`cannot stat ${path}`, e);
    }
  }

  async delete(key: string): Promise<void> {
    const path = this.pathOf(key);
    try {
      await unlink(path);
    } catch (e) {
      if (isMissing(e)) return;
      throw fsFailure(`cannot delete ${path}`, e);
    }
  }

  /** Keys starting with `prefix` (a plain string prefix, as in S3), in byte order of the key. */
  async *list(prefix: string): AsyncIterable<BlobInfo> {
    assertListPrefix(prefix);
    const cut = prefix.lastIndexOf("/");
    yield* this.walk(cut < 0 ? "" : prefix.slice(0, cut), prefix);
  }

  private async *walk(dirKey: string, prefix: string): AsyncGenerator<BlobInfo> {
    const dirPath = dirKey ? join(this.root, ...dirKey.split("/")) : this.root;
    let entries;
    try {
      entries = await readdir(dirPath, { withFileTypes: true });
    } catch (e) {
      if (isMissing(e)) return;
      throw fsFailure(`cannot list ${dirPath}`, e);
    }
    // Sorting a directory's entries by `name` for files and `name/` for directories yields the
    // keys of a depth-first walk in plain key order, the order S3 lists in.
    const items = entries
      .filter((d) => d.isFile() || d.isDirectory())
      .map((d) => ({ name: d.name, dir: d.isDirectory(), sortKey: d.isDirectory() ? `${d.name}/` : d.name }))
      .sort((a, b) => (a.sortKey < b.sortKey ? -1 : a.sortKey > b.sortKey ? 1 : 0));
    for (const item of items) {
      const key = dirKey ? `${dirKey}/${item.name}` : item.name;
      if (item.dir) {
        const asDir = `${key}/`;
        if (asDir.startsWith(prefix) || prefix.startsWith(asDir)) yield* this.walk(key, prefix);
      } else if (key.startsWith(prefix) && keyProblem(key) === null) {
        const info = await this.head(key);
        if (info) yield info;
      }
    }
  }

  private pathOf(key: string): string {
    assertObjectKey(key);
    const path = join(this.root, ...key.split("/"));
    // Defence in depth: assertObjectKey already refuses every key that could climb out.
    if (!path.startsWith(this.root.endsWith(sep) ? this.root : this.root + sep)) {
      throw invalidInput("key", `object key '${key}' resolves outside the store`);
    }
    return path;
  }

  private putFailure(e: unknown, key: string, path: string, step: string, signal: AbortSignal | undefined): VaultError {
    if (signal?.aborted) {
      const reason: unknown = signal.reason;
      return isVaultError(reason) ? reason : new VaultError("cancelled", `storing '${key}' was cancelled`, { cause: reason });
    }
    if (e instanceof SourceError) {
      if (isVaultError(e.inner)) return e.inner;
      return new VaultError("storage_failed", `storing '${key}' failed: the source stream failed: ${messageOf(e.inner)}`, {
        cause: e.inner,
      });
    }
    if (isVaultError(e)) return e;
    return fsFailure(`storing '${key}' failed (${step} ${path})`, e);
  }
}

/** Inclusive byte range within an object of `total` bytes; HTTP semantics (end is clamped). */
export function resolveRange(range: { start: number; end?: number } | undefined, total: number): { start: number; end: number } {
  if (!range || (range.start === 0 && range.end === undefined)) return { start: 0, end: total - 1 };
  checkRange(range);
  if (range.start >= total) {
    throw invalidInput("range", `bytes ${range.start}- is not satisfiable: the object has ${total} bytes`);
  }
  return { start: range.start, end: Math.min(range.end ?? total - 1, total - 1) };
}

/** Throws `invalid_input` unless start/end are non-negative integers with end >= start. */
export function checkRange(range: { start: number; end?: number }): void {
  const { start, end } = range;
  if (!Number.isSafeInteger(start) || start < 0) throw invalidInput("range", "start must be a non-negative integer");
  if (end !== undefined && (!Number.isSafeInteger(end) || end < start)) {
    throw invalidInput("range", "end must be an integer not below start");
  }
}

/** A pull-driven web stream over [start, endExclusive) of an open file; closes the handle when done. */
function fileStream(fh: FileHandle, path: string, start: number, endExclusive: number): ReadableStream<Uint8Array> {
  let pos = start;
  let closed = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    await fh.close().catch(() => undefined);
  };
  return new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        const want = Math.min(READ_CHUNK, endExclusive - pos);
        if (want <= 0) {
          await close();
          controller.close();
          return;
        }
        try {
          const buf = new Uint8Array(want);
          const { bytesRead } = await fh.read(buf, 0, want, pos);
          if (bytesRead === 0) throw new Error(`file ended early at byte ${pos} (truncated while being read?)`);
          pos += bytesRead;
          controller.enqueue(bytesRead === want ? buf : buf.subarray(0, bytesRead));
        } catch (e) {
          await close();
          controller.error(fsFailure(`cannot read ${path}`, e));
        }
      },
      async cancel() {
        await close();
      },
    },
    { highWaterMark: 1 },
  );
}

async function syncDir(dir: string): Promise<void> {
  const dh = await open(dir, "r");
  try {
    await dh.sync();
  } finally {
    await dh.close();
  }
}

const isMissing = (e: unknown) => {
  const code = (e as NodeJS.ErrnoException | null)?.code;
  return code === "ENOENT" || code === "ENOTDIR";
};

const messageOf = (e: unknown) => (e instanceof Error ? e.message : String(e));

// Node's fs messages already read "ENOSPC: no space left on device, write" and name the path for
// path-taking calls; the prefix adds what we were doing and where.
function fsFailure(what: string, e: unknown): VaultError {
  return new VaultError("storage_failed", `${what}: ${messageOf(e)}`, { cause: e });
}

/**
 * `mkdir -p` that always ends. Node's `mkdir(…, { recursive: true })` retries for as long as
 * mkdir says ENOENT and the parent says EEXIST, which never stops under /proc or a dangling
 * symlink (a target check on `file:///proc` spun the event loop until restart). Here each level is
 * created at most once, and a level that still cannot be created fails with its own error.
 */
export async function makeDirs(dir: string, depth = 0): Promise<void> {
  try {
    await mkdir(dir);
    return;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "EEXIST") {
      if ((await stat(dir)).isDirectory()) return;
      throw e;
    }
    const parent = dirname(dir);
    if (code !== "ENOENT" || parent === dir || depth > 255) throw e;
    await makeDirs(parent, depth + 1);
  }
  // The parents exist now; one more try, and its error (ENOENT again under /proc) is final.
  try {
    await mkdir(dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "EEXIST" && (await stat(dir)).isDirectory()) return;
    throw e;
  }
}
