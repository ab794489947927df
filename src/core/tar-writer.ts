// A streaming POSIX tar (ustar) writer over Web Streams only, so it runs unchanged on Node and on
// Cloudflare workerd. The restore bundle is a plain .tar: the snapshot inside is age ciphertext and
// does not compress, and `curl … | tar x` must unpack it with nothing but the system tar.
//
// Layout (POSIX.1-1988 ustar, as read by GNU tar, bsdtar and busybox):
//   per entry: a 512-byte header, then the body padded with zeros to a multiple of 512;
//   at the end: two 512-byte zero blocks.
// Names longer than 100 bytes are split at a '/' into the 155-byte prefix field and the 100-byte
// name field (at most 155 + '/' + 100 = 256 bytes). Sizes above the 11-octal-digit limit
// (8 GiB - 1, reachable: etcd's quota is up to 8 GiB and age adds 16 bytes per 64 KiB) get a
// POSIX.1-2001 pax `size` record in front of the header, and the header's own size field carries
// the GNU base-256 form so that readers without pax support still skip the body correctly.

import { invalidInput, VaultError } from "./errors.js";

export const BLOCK_SIZE = 512;
/** Largest size the ustar octal field holds (11 octal digits). */
export const USTAR_MAX_SIZE = 0o77777777777;

export interface TarEntry {
  /** Path inside the archive, '/'-separated, relative. A trailing '/' marks a directory. */
  name: string;
  /** Permission bits, e.g. 0o644. */
  mode: number;
  mtime: Date;
  /** Exact body length in bytes (0 for directories). */
  size: number;
  /** Omitted for directories. A stream must deliver exactly `size` bytes. */
  body?: Uint8Array | ReadableStream<Uint8Array>;
  /** Defaults to "directory" when the name ends with '/', else "file". */
  type?: "file" | "directory";
}

const encoder = new TextEncoder();
const ZERO_BLOCK = new Uint8Array(BLOCK_SIZE);
const END_OF_ARCHIVE = new Uint8Array(2 * BLOCK_SIZE);

const padLength = (size: number): number => (BLOCK_SIZE - (size % BLOCK_SIZE)) % BLOCK_SIZE;
const entryType = (e: TarEntry): "file" | "directory" => e.type ?? (e.name.endsWith("/") ? "directory" : "file");

/** Exact byte length of the archive `tarStream(entries)` produces (for Content-Length). */
export function tarSize(entries: readonly TarEntry[]): number {
  let total = END_OF_ARCHIVE.length;
  for (const entry of entries) {
    const size = checkedSize(entry);
    total += BLOCK_SIZE + size + padLength(size);
    if (size > USTAR_MAX_SIZE) {
      const pax = paxRecords(size);
      total += BLOCK_SIZE + pax.length + padLength(pax.length);
    }
  }
  return total;
}

/**
 * The archive as a pull-driven stream: each entry's header is built when the consumer reaches it,
 * stream bodies are read only as fast as the consumer reads, and body chunks are passed through
 * as they are (no copy). Entry metadata is validated up front, so a bad name fails before any byte.
 */
export function tarStream(entries: readonly TarEntry[]): ReadableStream<Uint8Array> {
  entries.forEach((entry) => {
    checkedSize(entry);
    splitName(normalizedName(entry));
    if (entry.body instanceof Uint8Array && entryType(entry) === "file" && entry.body.length !== entry.size) {
      throw invalidInput(entry.name, `body has ${entry.body.length} bytes but size says ${entry.size}`);
    }
  });
  let index = 0;
  let reader: ReadableStreamDefaultReader<Uint8Array> | null = null;
  let remaining = 0; // body bytes still expected from `reader`
  let current: TarEntry | null = null;

  const cancelRest = async (reason: unknown): Promise<void> => {
    const pending: Promise<unknown>[] = [];
    if (reader) pending.push(reader.cancel(reason).catch(() => undefined));
    for (let i = index; i < entries.length; i++) {
      const body = entries[i]!.body;
      if (body instanceof ReadableStream && !body.locked) pending.push(body.cancel(reason).catch(() => undefined));
    }
    reader = null;
    await Promise.all(pending);
  };

  // One step of the archive; returns whether it enqueued (or closed). A pull must not resolve
  // without enqueuing: with highWaterMark 0 the stream would not ask again and the reader hangs.
  const step = async (controller: ReadableStreamDefaultController<Uint8Array>): Promise<boolean> => {
    if (reader && current) {
      const { done, value } = await reader.read();
      if (done) {
        reader = null;
        if (remaining !== 0) {
          throw invalidInput(current.name, `stream ended ${remaining} bytes short of its declared size ${current.size}`);
        }
        const pad = padLength(current.size);
        current = null;
        if (pad === 0) return false;
        controller.enqueue(ZERO_BLOCK.subarray(0, pad));
        return true;
      }
      if (value.length > remaining) {
        throw invalidInput(current.name, `stream delivered more than its declared size ${current.size}`);
      }
      remaining -= value.length;
      if (value.length === 0) return false;
      controller.enqueue(value);
      return true;
    }
    if (index >= entries.length) {
      controller.enqueue(END_OF_ARCHIVE.slice());
      controller.close();
      return true;
    }
    const entry = entries[index++]!;
    const body = entryType(entry) === "directory" ? undefined : entry.body;
    if (body === undefined && entryType(entry) === "file" && entry.size !== 0) {
      throw invalidInput(entry.name, `no body for ${entry.size} bytes`);
    }
    controller.enqueue(encodeEntryHeaders(entry));
    if (body instanceof ReadableStream) {
      current = entry;
      remaining = entry.size;
      reader = body.getReader();
    } else if (body !== undefined && body.length > 0) {
      controller.enqueue(body);
      const pad = padLength(body.length);
      if (pad > 0) controller.enqueue(ZERO_BLOCK.subarray(0, pad));
    }
    return true;
  };

  return new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        try {
          while (!(await step(controller))) {
            // nothing produced yet (empty chunk, end of an unpadded body): take the next step
          }
        } catch (error) {
          await cancelRest(error);
          controller.error(error);
        }
      },
      async cancel(reason) {
        await cancelRest(reason);
      },
    },
    { highWaterMark: 0 },
  );
}

/** The header block(s) of one entry: a pax `x` header first when the size needs it. */
export function encodeEntryHeaders(entry: TarEntry): Uint8Array {
  const size = checkedSize(entry);
  const name = normalizedName(entry);
  const header = ustarHeader(name, entry, size, entryType(entry) === "directory" ? "5" : "0");
  if (size <= USTAR_MAX_SIZE) return header;
  const pax = paxRecords(size);
  const paxName = `PaxHeaders/${lastComponent(name)}`.slice(0, 100);
  const paxHeader = ustarHeader(paxName, entry, pax.length, "x");
  const out = new Uint8Array(BLOCK_SIZE + pax.length + padLength(pax.length) + BLOCK_SIZE);
  out.set(paxHeader, 0);
  out.set(pax, BLOCK_SIZE);
  out.set(header, out.length - BLOCK_SIZE);
  return out;
}

function ustarHeader(name: string, entry: TarEntry, size: number, typeflag: "0" | "5" | "x"): Uint8Array {
  const h = new Uint8Array(BLOCK_SIZE);
  const { prefix, base } = splitName(name);
  writeBytes(h, 0, 100, encoder.encode(base));
  writeOctal(h, 100, 8, entry.mode & 0o7777);
  writeOctal(h, 108, 8, 0); // uid
  writeOctal(h, 116, 8, 0); // gid
  if (size <= USTAR_MAX_SIZE) writeOctal(h, 124, 12, size);
  else writeBase256(h, 124, 12, size);
  writeOctal(h, 136, 12, Math.max(0, Math.floor(entry.mtime.getTime() / 1000)));
  h.fill(0x20, 148, 156); // checksum is computed with its own field read as spaces
  h[156] = typeflag.charCodeAt(0);
  writeBytes(h, 257, 6, encoder.encode("ustar\0"));
  writeBytes(h, 263, 2, encoder.encode("00"));
  writeBytes(h, 265, 32, encoder.encode("root"));
  writeBytes(h, 297, 32, encoder.encode("root"));
  writeOctal(h, 329, 8, 0); // devmajor
  writeOctal(h, 337, 8, 0); // devminor
  writeBytes(h, 345, 155, encoder.encode(prefix));
  let sum = 0;
  for (const byte of h) sum += byte;
  // Six octal digits, NUL, space: the form every tar since V7 accepts.
  writeBytes(h, 148, 8, encoder.encode(`${sum.toString(8).padStart(6, "0")}\0 `));
  return h;
}

/** pax records are `"<len> <key>=<value>\n"` where <len> counts the whole record, itself included. */
function paxRecords(size: number): Uint8Array {
  const record = (key: string, value: string): string => {
    const body = ` ${key}=${value}\n`;
    let len = body.length + 1;
    while (`${len}${body}`.length !== len) len = `${len}${body}`.length;
    return `${len}${body}`;
  };
  return encoder.encode(record("size", String(size)));
}

function normalizedName(entry: TarEntry): string {
  const dir = entryType(entry) === "directory";
  let name = entry.name;
  if (dir && !name.endsWith("/")) name += "/";
  if (!dir && name.endsWith("/")) throw invalidInput("name", `file entry '${name}' ends with '/'`);
  if (name.length === 0 || name.startsWith("/") || name.split("/").includes("..") || name.includes("\0")) {
    throw invalidInput("name", `'${name}' is not a safe relative archive path`);
  }
  return name;
}

/** ustar keeps up to 100 bytes in `name` and 155 more in `prefix`, split at a '/'. */
function splitName(name: string): { prefix: string; base: string } {
  const bytes = encoder.encode(name).length;
  if (bytes <= 100) return { prefix: "", base: name };
  if (bytes > 256) throw invalidInput("name", `'${name.slice(0, 40)}…' is ${bytes} bytes; ustar holds at most 256`);
  // Try every '/' (ignoring a directory's trailing one) and keep the first split that fits.
  const searchEnd = name.endsWith("/") ? name.length - 1 : name.length;
  for (let i = name.lastIndexOf("/", searchEnd - 1); i > 0; i = name.lastIndexOf("/", i - 1)) {
    const prefix = name.slice(0, i);
    const base = name.slice(i + 1);
    if (encoder.encode(prefix).length <= 155 && encoder.encode(base).length <= 100 && base.length > 0) {
      return { prefix, base };
    }
  }
  throw invalidInput("name", `'${name.slice(0, 40)}…' cannot be split into ustar prefix (155) and name (100)`);
}

function lastComponent(name: string): string {
  const trimmed = name.endsWith("/") ? name.slice(0, -1) : name;
  return trimmed.slice(trimmed.lastIndexOf("/") + 1);
}

function checkedSize(entry: TarEntry): number {
  const size = entryType(entry) === "directory" ? 0 : entry.size;
  if (!Number.isSafeInteger(size) || size < 0) throw invalidInput(entry.name, `size ${entry.size} is not a byte count`);
  if (!Number.isSafeInteger(entry.mode) || entry.mode < 0) throw invalidInput(entry.name, `mode ${entry.mode} is invalid`);
  if (Number.isNaN(entry.mtime.getTime())) throw invalidInput(entry.name, "mtime is not a valid date");
  return size;
}

function writeBytes(h: Uint8Array, offset: number, length: number, bytes: Uint8Array): void {
  if (bytes.length > length) throw new VaultError("internal", `tar header field overflow at ${offset}`);
  h.set(bytes, offset);
}

/** Zero-padded octal with a terminating NUL, filling the field. */
function writeOctal(h: Uint8Array, offset: number, length: number, value: number): void {
  const digits = value.toString(8).padStart(length - 1, "0");
  if (digits.length > length - 1) throw new VaultError("internal", `tar header value ${value} too large for field at ${offset}`);
  writeBytes(h, offset, length, encoder.encode(`${digits}\0`));
}

/** GNU base-256: first byte 0x80, the value big-endian in the remaining bytes. */
function writeBase256(h: Uint8Array, offset: number, length: number, value: number): void {
  let v = BigInt(value);
  for (let i = offset + length - 1; i > offset; i--) {
    h[i] = Number(v & 0xffn);
    v >>= 8n;
  }
  h[offset] = 0x80;
}
