// A streaming reader for the tar archives our own writer produces (ustar, pax `size`/`path`
// records, GNU base-256 sizes) and for what GNU tar or bsdtar write when an operator re-packs a
// bundle. Bodies are handed out as subarrays of the incoming chunks: nothing is copied and nothing
// beyond one chunk is held, so an 8 GiB snapshot can be checked straight off a pipe.
//
// Each entry's `body` must be consumed (or abandoned) before asking for the next entry; whatever
// is left of it is skipped.

import { VaultError } from "./errors.js";

export interface TarReadEntry {
  name: string;
  type: "file" | "directory" | "other";
  size: number;
  mode: number;
  mtime: Date;
  body: AsyncIterable<Uint8Array>;
}

const BLOCK = 512;
const decoder = new TextDecoder();

const corrupt = (message: string): VaultError => new VaultError("invalid_input", `tar: ${message}`);

/** Pulls bytes from a chunked source, handing out subarrays where it can. */
class ByteSource {
  private chunk: Uint8Array = new Uint8Array(0);
  private offset = 0;
  constructor(private readonly iterator: AsyncIterator<Uint8Array>) {}

  /** Up to `max` bytes (at least 1), or null at end of input. */
  async take(max: number): Promise<Uint8Array | null> {
    while (this.offset >= this.chunk.length) {
      const next = await this.iterator.next();
      if (next.done) return null;
      this.chunk = next.value;
      this.offset = 0;
    }
    const n = Math.min(max, this.chunk.length - this.offset);
    const out = this.chunk.subarray(this.offset, this.offset + n);
    this.offset += n;
    return out;
  }

  /** Exactly `n` bytes (copied when they straddle chunks), or null at a clean end before the first. */
  async exact(n: number): Promise<Uint8Array | null> {
    const first = await this.take(n);
    if (first === null) return null;
    if (first.length === n) return first;
    const out = new Uint8Array(n);
    out.set(first);
    let filled = first.length;
    while (filled < n) {
      const part = await this.take(n - filled);
      if (part === null) throw corrupt("archive ends inside a header");
      out.set(part, filled);
      filled += part.length;
    }
    return out;
  }

  async skip(n: number): Promise<void> {
    let left = n;
    while (left > 0) {
      const part = await this.take(Math.min(left, 1 << 20));
      if (part === null) throw corrupt("archive is truncated");
      left -= part.length;
    }
  }

  async close(): Promise<void> {
    await this.iterator.return?.();
  }
}

export async function* readTar(source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>): AsyncGenerator<TarReadEntry> {
  const bytes = new ByteSource(Symbol.asyncIterator in source ? source[Symbol.asyncIterator]() : fromSync(source));
  let pax: Map<string, string> | null = null;
  try {
    for (;;) {
      const header = await bytes.exact(BLOCK);
      if (header === null) throw corrupt("archive ends without the end-of-archive blocks");
      if (header.every((b) => b === 0)) return; // end of archive (a second zero block may follow)
      verifyChecksum(header);
      const typeflag = String.fromCharCode(header[156]!);
      let size = parseNumber(header.subarray(124, 136), "size");
      if (typeflag === "x" || typeflag === "g") {
        const records = await readWhole(bytes, size);
        if (typeflag === "x") pax = parsePax(records);
        continue;
      }
      if (pax?.has("size")) size = Number(pax.get("size"));
      const magic = decoder.decode(header.subarray(257, 262));
      const prefix = magic === "ustar" ? cString(header.subarray(345, 500)) : "";
      const base = cString(header.subarray(0, 100));
      const name = pax?.get("path") ?? (prefix ? `${prefix}/${base}` : base);
      pax = null;
      const type = typeflag === "0" || typeflag === "\0" || typeflag === "7" ? "file" : typeflag === "5" ? "directory" : "other";
      if (type !== "file" && type !== "other") size = 0;

      let left = size;
      const body = (async function* () {
        while (left > 0) {
          const part = await bytes.take(left);
          if (part === null) throw corrupt(`archive is truncated inside '${name}'`);
          left -= part.length;
          yield part;
        }
      })();
      yield {
        name,
        type,
        size,
        mode: parseNumber(header.subarray(100, 108), "mode"),
        mtime: new Date(parseNumber(header.subarray(136, 148), "mtime") * 1000),
        body,
      };
      await bytes.skip(left + ((BLOCK - (size % BLOCK)) % BLOCK));
    }
  } finally {
    await bytes.close();
  }
}

async function* fromSync(source: Iterable<Uint8Array>): AsyncGenerator<Uint8Array> {
  yield* source;
}

/** Collects one entry's body into memory; for small files only (refuses more than `limit` bytes). */
export async function readEntryText(entry: TarReadEntry, limit = 1 << 20): Promise<string> {
  if (entry.size > limit) throw corrupt(`'${entry.name}' is ${entry.size} bytes, more than expected`);
  const out = new Uint8Array(entry.size);
  let filled = 0;
  for await (const part of entry.body) {
    out.set(part, filled);
    filled += part.length;
  }
  return decoder.decode(out);
}

async function readWhole(bytes: ByteSource, size: number): Promise<Uint8Array> {
  if (size > 1 << 20) throw corrupt("pax header is implausibly large");
  const data = size === 0 ? new Uint8Array(0) : await bytes.exact(size);
  if (data === null) throw corrupt("archive ends inside a pax header");
  const copy = Uint8Array.from(data);
  await bytes.skip((BLOCK - (size % BLOCK)) % BLOCK);
  return copy;
}

function parsePax(data: Uint8Array): Map<string, string> {
  const out = new Map<string, string>();
  const text = decoder.decode(data);
  let at = 0;
  while (at < text.length) {
    const space = text.indexOf(" ", at);
    const len = Number(text.slice(at, space));
    if (space < 0 || !Number.isInteger(len) || len <= 0) throw corrupt("malformed pax record");
    const record = text.slice(space + 1, at + len - 1);
    const eq = record.indexOf("=");
    if (eq > 0) out.set(record.slice(0, eq), record.slice(eq + 1));
    at += len;
  }
  return out;
}

function verifyChecksum(header: Uint8Array): void {
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : header[i]!;
  const stored = parseNumber(header.subarray(148, 156), "checksum");
  if (stored !== sum) throw corrupt(`header checksum mismatch (stored ${stored}, computed ${sum})`);
}

/** Octal (space/NUL terminated) or GNU base-256 (first byte has the high bit set). */
function parseNumber(field: Uint8Array, what: string): number {
  if ((field[0]! & 0x80) !== 0) {
    let v = BigInt(field[0]! & 0x7f);
    for (let i = 1; i < field.length; i++) v = (v << 8n) | BigInt(field[i]!);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw corrupt(`${what} is too large`);
    return Number(v);
  }
  const text = decoder.decode(field).replace(/[\0 ]+$/g, "").replace(/^[ ]+/, "");
  if (text === "") return 0;
  if (!/^[0-7]+$/.test(text)) throw corrupt(`${what} field is not octal`);
  return parseInt(text, 8);
}

function cString(field: Uint8Array): string {
  const end = field.indexOf(0);
  return decoder.decode(end < 0 ? field : field.subarray(0, end));
}
