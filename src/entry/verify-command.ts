// `etcd-vault verify <bundle.tar | bundle folder | -> --identity key.txt`: proves a restore bundle is
// whole and decryptable before anyone relies on it during an incident.
//
// One streaming pass over snapshot.db.age computes, at the same time: its SHA-256 (against
// SHA256SUMS and backup.json), the age decryption (wrong key, tampered or truncated ciphertext all
// fail here), the plaintext SHA-256 and size (against backup.json), and etcd's hash trailer (the
// last 32 bytes are the SHA-256 of everything before them when size % 512 == 32). Nothing is
// spooled to disk: the decrypted snapshot is written only when --output asks for it (to a
// temporary name, renamed once every check has passed).
//
// Tar input is read with our own streaming reader (core/tar-reader.ts) rather than the system
// tar: it works on a pipe (`curl … | etcd-vault verify -`), needs no scratch space for an 8 GiB
// snapshot, behaves the same on every OS (bsdtar on macOS), and the order of entries does not
// matter because all comparisons happen after the pass.

import { createHash } from "node:crypto";
import { createReadStream, createWriteStream, type WriteStream } from "node:fs";
import { readFile, rename, rm, stat } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { once } from "node:events";
import { parseArgs } from "node:util";
import { z } from "zod";
import { ageDecrypt } from "../crypto/age-stream.js";
import { readEntryText, readTar } from "../core/tar-reader.js";
import { CIPHERTEXT_FILE } from "../core/restore/bundle.js";
import { restoreView } from "../core/restore/restore-view.js";
import type { Backup } from "../core/backup-types.js";
import { VaultError } from "../core/errors.js";

export interface VerifyIO {
  stdout: { write(text: string): unknown };
  stderr: { write(text: string): unknown };
  /** Progress bar when true, plain progress lines otherwise. */
  isTTY: boolean;
  /** The archive when the source is `-` (default: process.stdin). */
  stdin?: AsyncIterable<Uint8Array>;
}

export const VERIFY_USAGE = `etcd-vault verify <bundle.tar | bundle folder | -> --identity FILE [--output FILE]

Checks a restore bundle: snapshot.db.age against SHA256SUMS and backup.json, decrypts it with the
age identity, and checks the decrypted size, SHA-256 and etcd hash trailer. Exit 0 when all hold.

  --identity, -i FILE   age identity file (repeatable; lines starting with # are ignored)
  --output, -o FILE     also write the decrypted snapshot there (only kept if every check passes)
  -                     read the .tar from stdin, e.g. curl -fsSL URL | etcd-vault verify - -i key.txt`;

// Only the fields verify relies on; the rest of backup.json is shown, not trusted.
const backupSchema = z.object({
  id: z.string(),
  cluster: z.string(),
  createdAt: z.string(),
  plaintext: z.object({ size: z.number().int().nonnegative(), sha256: z.string().regex(/^[0-9a-f]{64}$/) }),
  ciphertext: z.object({ size: z.number().int().nonnegative(), sha256: z.string().regex(/^[0-9a-f]{64}$/) }),
  etcd: z.object({ revision: z.number().nullable(), keys: z.number().nullable(), version: z.string().nullable() }),
  recipients: z.array(z.string()),
  facts: z.unknown(),
});

class VerifyFailure extends Error {}

interface BundleParts {
  sums: string | null;
  backupJson: string | null;
  stream: StreamResult | null;
}

interface StreamResult {
  cipherSha256: string;
  cipherSize: number;
  decryptError: unknown;
  plainSha256: string;
  plainSize: number;
  trailer: "ok" | "absent" | "mismatch";
}

export async function runVerify(argv: string[], io: VerifyIO): Promise<number> {
  let values: { identity?: string[]; output?: string; help?: boolean };
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        identity: { type: "string", short: "i", multiple: true },
        output: { type: "string", short: "o" },
        help: { type: "boolean", short: "h" },
      },
    }));
  } catch (e) {
    io.stderr.write(`etcd-vault verify: ${(e as Error).message}\n\n${VERIFY_USAGE}\n`);
    return 2;
  }
  if (values.help) {
    io.stdout.write(`${VERIFY_USAGE}\n`);
    return 0;
  }
  if (positionals.length !== 1 || !values.identity?.length) {
    io.stderr.write(`etcd-vault verify: need one bundle and --identity\n\n${VERIFY_USAGE}\n`);
    return 2;
  }
  try {
    if (values.output !== undefined) await checkOutput(values.output);
    const identities = await loadIdentities(values.identity);
    const outcome = await verifyBundle(positionals[0]!, identities, values.output ?? null, io);
    io.stdout.write(outcome);
    return 0;
  } catch (e) {
    const reason = e instanceof VerifyFailure ? e.message : `error: ${(e as Error).message}`;
    io.stderr.write(`etcd-vault verify: FAILED: ${reason}\n`);
    return 1;
  }
}

/** --output must name a file in an existing directory: found out before any work is done. */
async function checkOutput(file: string): Promise<void> {
  const existing = await stat(file).catch(() => null);
  if (existing?.isDirectory()) throw new VerifyFailure(`--output ${file} is a directory; name a file`);
  const dir = await stat(dirname(file)).catch(() => null);
  if (!dir?.isDirectory()) throw new VerifyFailure(`--output ${file}: the directory ${dirname(file)} does not exist`);
}

async function loadIdentities(files: string[]): Promise<string[]> {
  const out: string[] = [];
  for (const file of files) {
    let text: string;
    try {
      text = await readFile(file, "utf8");
    } catch (e) {
      throw new VerifyFailure(`cannot read identity file ${file}: ${(e as Error).message}`);
    }
    const keys = text.split(/\r?\n/).map((l) => l.trim()).filter((l) => l && !l.startsWith("#"));
    if (keys.length === 0) throw new VerifyFailure(`${file} holds no age identity`);
    out.push(...keys);
  }
  return out;
}

async function verifyBundle(source: string, identities: string[], output: string | null, io: VerifyIO): Promise<string> {
  const progress = new Progress(io);
  const parts: BundleParts = { sums: null, backupJson: null, stream: null };
  let writer: PlaintextWriter | null = null;
  const makeWriter = () => (writer = output ? new PlaintextWriter(output) : null);
  try {
    const st = source === "-" ? null : await stat(source).catch((e: NodeJS.ErrnoException) => {
      throw new VerifyFailure(`cannot open ${source}: ${e.code === "ENOENT" ? "no such file or folder" : e.message}`);
    });
    if (st?.isDirectory()) {
      parts.sums = await readSmall(join(source, "SHA256SUMS"));
      parts.backupJson = await readSmall(join(source, "backup.json"));
      const file = join(source, CIPHERTEXT_FILE);
      const size = (await stat(file).catch(() => null))?.size;
      if (size === undefined) throw new VerifyFailure(`${file} is missing`);
      parts.stream = await checkCiphertext(createReadStream(file, { highWaterMark: 1 << 20 }), size, identities, makeWriter(), progress);
    } else {
      const input = source === "-" ? (io.stdin ?? process.stdin) : createReadStream(source, { highWaterMark: 1 << 20 });
      const tops = new Set<string>();
      const entries = (async function* () {
        try {
          yield* readTar(input);
        } catch (e) {
          if (e instanceof VaultError && e.message.startsWith("tar:")) {
            throw new VerifyFailure(`${source === "-" ? "stdin" : source} is not a readable bundle archive (${e.message})`);
          }
          throw e;
        }
      })();
      for await (const entry of entries) {
        const slash = entry.name.indexOf("/");
        if (slash > 0) tops.add(entry.name.slice(0, slash));
        const name = basename(entry.name);
        if (entry.type !== "file") continue;
        if (name === "SHA256SUMS") parts.sums = await readEntryText(entry);
        else if (name === "backup.json") parts.backupJson = await readEntryText(entry);
        else if (name === CIPHERTEXT_FILE) {
          parts.stream = await checkCiphertext(entry.body, entry.size, identities, makeWriter(), progress);
        }
      }
      if (tops.size > 1) throw new VerifyFailure(`the archive has ${tops.size} top folders; a bundle has one`);
    }
    const report = judge(parts);
    await (writer as PlaintextWriter | null)?.commit();
    return report;
  } catch (e) {
    await (writer as PlaintextWriter | null)?.discard();
    throw e;
  }
}

async function readSmall(file: string): Promise<string | null> {
  try {
    return await readFile(file, "utf8");
  } catch {
    return null;
  }
}

/** Compares what the pass measured with SHA256SUMS and backup.json; returns the report or throws. */
function judge(parts: BundleParts): string {
  if (parts.sums === null) throw new VerifyFailure("SHA256SUMS is missing from the bundle");
  if (parts.backupJson === null) throw new VerifyFailure("backup.json is missing from the bundle");
  if (parts.stream === null) throw new VerifyFailure(`${CIPHERTEXT_FILE} is missing from the bundle`);
  const listed = parts.sums
    .split("\n")
    .map((l) => /^([0-9a-f]{64}) [ *](.+)$/.exec(l.trim()))
    .find((m) => m?.[2] === CIPHERTEXT_FILE)?.[1];
  if (!listed) throw new VerifyFailure(`SHA256SUMS does not list ${CIPHERTEXT_FILE}`);
  let backup: Backup;
  try {
    backup = backupSchema.parse(JSON.parse(parts.backupJson)) as unknown as Backup;
  } catch (e) {
    throw new VerifyFailure(`backup.json is not a backup record: ${(e as Error).message.split("\n")[0]}`);
  }
  const s = parts.stream;
  if (s.cipherSha256 !== listed) {
    throw new VerifyFailure(`${CIPHERTEXT_FILE} does not match SHA256SUMS (sha256 ${s.cipherSha256}, expected ${listed}): the file is corrupt or was altered`);
  }
  if (backup.ciphertext.sha256 !== listed || backup.ciphertext.size !== s.cipherSize) {
    throw new VerifyFailure(`backup.json does not describe this ${CIPHERTEXT_FILE} (it says ${backup.ciphertext.size} bytes, sha256 ${backup.ciphertext.sha256})`);
  }
  if (s.decryptError !== null) {
    // Our own failure to write --output is not damage in the bundle: said as it is.
    if (s.decryptError instanceof VerifyFailure) throw s.decryptError;
    const msg = (s.decryptError as Error).message ?? String(s.decryptError);
    if (/no identity matched/i.test(msg)) {
      throw new VerifyFailure(`wrong key: no identity given can decrypt ${CIPHERTEXT_FILE} (it was encrypted to ${backup.recipients.join(", ") || "unknown recipients"})`);
    }
    throw new VerifyFailure(`decryption failed: ${msg} (the ciphertext is damaged although its checksum matches: the damage predates the checksum)`);
  }
  if (s.plainSize !== backup.plaintext.size) {
    throw new VerifyFailure(`decrypted snapshot is ${s.plainSize} bytes; backup.json says ${backup.plaintext.size}`);
  }
  if (s.plainSha256 !== backup.plaintext.sha256) {
    throw new VerifyFailure(`decrypted snapshot has sha256 ${s.plainSha256}; backup.json says ${backup.plaintext.sha256}`);
  }
  if (s.trailer === "mismatch") {
    throw new VerifyFailure("the snapshot's etcd hash trailer does not match its content: the snapshot was corrupt when taken");
  }
  return describe(backup, parts.backupJson, s);
}

function describe(backup: Backup, json: string, s: StreamResult): string {
  const full = JSON.parse(json) as Backup;
  const v = restoreView({ ...full, facts: typeof full.facts === "object" ? full.facts : null });
  const masters = v.masters.filter((m) => !m.placeholder);
  const lines = [
    `cluster          ${backup.cluster}`,
    `backup           ${backup.id} (taken ${backup.createdAt})`,
    `etcd             version ${v.etcdVersion ?? "unknown"}, revision ${backup.etcd.revision ?? "unknown"}, keys ${backup.etcd.keys ?? "unknown"}`,
    `masters          ${masters.length ? masters.map((m) => `${m.name} (${m.ipKnown ? m.ip : "IP unknown"})`).join(", ") : "unknown"}` +
      (v.topology === "unknown" ? "" : ` — ${v.topology}-master restore`),
    `encrypted to     ${backup.recipients.join(", ") || "unknown"}`,
    `SHA256SUMS       OK (${s.cipherSize} bytes, sha256 ${s.cipherSha256})`,
    `decryption       OK`,
    `snapshot         OK (${s.plainSize} bytes, sha256 ${s.plainSha256})`,
    s.trailer === "ok"
      ? "etcd trailer     OK"
      : "etcd trailer     absent (restore needs --skip-hash-check; restore.sh adds it)",
    "bundle OK",
  ];
  return `${lines.join("\n")}\n`;
}

/**
 * The single pass. The ciphertext is read through a tap that hashes it; if decryption stops early
 * (wrong key, bad chunk) the rest is still read and hashed, so a corrupt download is reported as
 * such rather than as a decryption error.
 */
async function checkCiphertext(
  body: AsyncIterable<Uint8Array>,
  size: number,
  identities: string[],
  writer: PlaintextWriter | null,
  progress: Progress,
): Promise<StreamResult> {
  const source = body[Symbol.asyncIterator]();
  const cipherHash = createHash("sha256");
  let cipherSize = 0;
  progress.start("decrypting and checking", size);
  const next = async (): Promise<IteratorResult<Uint8Array>> => {
    const r = await source.next();
    if (!r.done) {
      cipherHash.update(r.value);
      cipherSize += r.value.length;
      progress.update(cipherSize);
    }
    return r;
  };
  // `return` deliberately leaves `source` open: after a failure we keep reading it below.
  const tapped: AsyncIterable<Uint8Array> = {
    [Symbol.asyncIterator]: () => ({ next, return: async () => ({ done: true, value: undefined }) }),
  };

  const plainHash = createHash("sha256");
  const trailer = new TrailerCheck();
  let plainSize = 0;
  let decryptError: unknown = null;
  try {
    for await (const chunk of ageDecrypt(tapped, identities)) {
      plainHash.update(chunk);
      trailer.update(chunk);
      plainSize += chunk.length;
      if (writer) await writer.write(chunk);
    }
  } catch (e) {
    decryptError = e;
  }
  while (!(await next()).done) {
    // drain: finish the ciphertext hash
  }
  progress.finish();
  return {
    cipherSha256: cipherHash.digest("hex"),
    cipherSize,
    decryptError,
    plainSha256: plainHash.digest("hex"),
    plainSize,
    trailer: trailer.result(),
  };
}

/** Hashes all but the last 32 bytes seen, keeping those 32 aside to compare at the end. */
class TrailerCheck {
  private readonly hash = createHash("sha256");
  private tail = new Uint8Array(0);
  private size = 0;

  update(chunk: Uint8Array): void {
    this.size += chunk.length;
    if (chunk.length >= 32) {
      if (this.tail.length) this.hash.update(this.tail);
      this.hash.update(chunk.subarray(0, chunk.length - 32));
      this.tail = chunk.slice(chunk.length - 32);
      return;
    }
    const joined = new Uint8Array(this.tail.length + chunk.length);
    joined.set(this.tail);
    joined.set(chunk, this.tail.length);
    if (joined.length > 32) this.hash.update(joined.subarray(0, joined.length - 32));
    this.tail = joined.length > 32 ? joined.slice(joined.length - 32) : joined;
  }

  result(): "ok" | "absent" | "mismatch" {
    if (this.size % 512 !== 32) return "absent";
    return Buffer.from(this.tail).equals(this.hash.digest()) ? "ok" : "mismatch";
  }
}

/** Writes the decrypted snapshot to `<file>.partial`, renamed to `<file>` only on success. */
class PlaintextWriter {
  private readonly partial: string;
  private readonly out: WriteStream;
  /** The stream's own error (it cannot be created, the disk is full): reported, never thrown at the process. */
  private failed: Error | null = null;
  constructor(private readonly file: string) {
    this.partial = `${file}.partial`;
    this.out = createWriteStream(this.partial, { mode: 0o600 });
    this.out.on("error", (e) => (this.failed ??= e));
  }
  private check(): void {
    if (this.failed) throw new VerifyFailure(`cannot write ${this.partial}: ${this.failed.message}`);
  }
  async write(chunk: Uint8Array): Promise<void> {
    this.check();
    // Copy: the decrypter may reuse its buffer once we return.
    try {
      if (!this.out.write(Buffer.from(chunk))) await Promise.race([once(this.out, "drain"), once(this.out, "close")]);
    } catch (e) {
      this.failed ??= e as Error; // once() rejects with the stream's 'error'
    }
    this.check();
  }
  private async close(): Promise<void> {
    this.check();
    if (this.out.closed) return;
    await new Promise<void>((resolve, reject) => this.out.end((e?: Error | null) => (e ? reject(e) : resolve())));
  }
  async commit(): Promise<void> {
    await this.close();
    await rename(this.partial, this.file);
  }
  async discard(): Promise<void> {
    await this.close().catch(() => undefined);
    await rm(this.partial, { force: true });
  }
}

/** A progress bar on a terminal (redrawn at most 10 times a second), two plain lines otherwise. */
class Progress {
  private total = 0;
  private label = "";
  private lastDraw = 0;
  private started = 0;
  constructor(private readonly io: VerifyIO) {}

  start(label: string, total: number): void {
    this.label = label;
    this.total = total;
    this.started = Date.now();
    if (!this.io.isTTY) this.io.stderr.write(`${label} ${CIPHERTEXT_FILE} (${total} bytes)…\n`);
  }

  update(done: number): void {
    if (!this.io.isTTY) return;
    const now = Date.now();
    if (now - this.lastDraw < 100 && done < this.total) return;
    this.lastDraw = now;
    const frac = this.total > 0 ? Math.min(1, done / this.total) : 1;
    const width = 30;
    const filled = Math.round(frac * width);
    const bar = `${"#".repeat(filled)}${"-".repeat(width - filled)}`;
    this.io.stderr.write(`\r${this.label} [${bar}] ${(frac * 100).toFixed(0).padStart(3)}% ${mib(done)}/${mib(this.total)} MiB`);
  }

  finish(): void {
    const secs = ((Date.now() - this.started) / 1000).toFixed(1);
    this.io.stderr.write(this.io.isTTY ? `\n` : `${this.label}: done in ${secs}s\n`);
  }
}

const mib = (n: number): string => (n / (1 << 20)).toFixed(1);
