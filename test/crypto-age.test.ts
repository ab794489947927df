// age encryption against two independent decrypters: the Debian `age` CLI (Go, run as a real
// process) and age-encryption's Decrypter. Tampered files are built byte by byte, and files with
// wrong last-chunk flags are built by a separate STREAM writer in this file, so a failure to
// reject them is the decrypters' bug, not a quirk of ours.

import { spawn } from "node:child_process";
import { createCipheriv, createHash, hkdfSync, randomBytes } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Encrypter } from "age-encryption";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import {
  CHUNK_SIZE,
  ageDecrypt,
  ageEncrypt,
  defaultPayloadEngine,
  generateIdentity,
  type PayloadEngine,
} from "../src/crypto/age-stream.js";
import { loadNodeChunkSealer } from "../src/crypto/payload-node.js";
import { isPostQuantum, parseRecipients, recipientFingerprint } from "../src/crypto/recipients.js";
import { rejection as thrown } from "./helpers/expect-error.js";

const SEALED_CHUNK = CHUNK_SIZE + 16;

// ---- helpers -------------------------------------------------------------------------------

async function* fromParts(parts: Uint8Array[]): AsyncGenerator<Uint8Array> {
  for (const p of parts) yield p;
}

async function collect(source: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const parts: Uint8Array[] = [];
  for await (const p of source) parts.push(p);
  return Buffer.concat(parts);
}

/** Deterministic PRNG (mulberry32) so a failing chunking can be replayed from its seed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Splits `data` into pieces of random sizes: empty ones, tiny ones, and ones spanning chunks. */
function randomSplit(data: Uint8Array, seed: number): Uint8Array[] {
  const next = prng(seed);
  const parts: Uint8Array[] = [];
  let offset = 0;
  while (offset < data.length) {
    const r = next();
    const size = r < 0.1 ? 0 : r < 0.4 ? Math.floor(next() * 100) + 1 : Math.floor(next() * 3 * CHUNK_SIZE) + 1;
    parts.push(data.subarray(offset, Math.min(data.length, offset + size)));
    offset += size;
  }
  if (data.length === 0) parts.push(new Uint8Array(0));
  return parts;
}

/** Length of the age header: through the "--- <mac>" line. */
function headerLength(file: Uint8Array): number {
  const text = Buffer.from(file.subarray(0, Math.min(file.length, 8192))).toString("latin1");
  const mac = text.indexOf("\n--- ");
  expect(mac).toBeGreaterThan(0);
  return text.indexOf("\n", mac + 1) + 1;
}

const expectedPayloadSize = (size: number) => 16 + size + 16 * Math.max(1, Math.ceil(size / CHUNK_SIZE));

interface CliResult {
  code: number | null;
  stdout: Buffer;
  stderr: string;
}

/** `age -d -i keyfile`, ciphertext on stdin, as a real process. */
function ageCliDecrypt(keyFile: string, ciphertext: Uint8Array): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn("age", ["-d", "-i", keyFile], { stdio: ["pipe", "pipe", "pipe"] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on("data", (b: Buffer) => out.push(b));
    child.stderr.on("data", (b: Buffer) => err.push(b));
    // age exits early on a bad header; the rest of our write then hits a closed pipe.
    child.stdin.on("error", () => undefined);
    child.on("error", reject);
    child.on("close", (code) =>
      resolve({ code, stdout: Buffer.concat(out), stderr: Buffer.concat(err).toString("utf8") }),
    );
    child.stdin.end(ciphertext);
  });
}

let dir: string;
const keyFiles = new Map<string, string>();
async function keyFileFor(identity: string): Promise<string> {
  let path = keyFiles.get(identity);
  if (!path) {
    path = join(dir, `key-${keyFiles.size}.txt`);
    await writeFile(path, `${identity}\n`, { mode: 0o600 });
    keyFiles.set(identity, path);
  }
  return path;
}

async function expectBothDecrypt(file: Uint8Array, identity: string, plaintext: Uint8Array): Promise<void> {
  const cli = await ageCliDecrypt(await keyFileFor(identity), file);
  expect(cli.stderr).toBe("");
  expect(cli.code).toBe(0);
  expect(cli.stdout.equals(plaintext)).toBe(true);
  const lib = await collect(ageDecrypt(fromParts([file]), [identity]));
  expect(lib.equals(plaintext)).toBe(true);
}

async function expectBothReject(file: Uint8Array, identity: string): Promise<void> {
  const cli = await ageCliDecrypt(await keyFileFor(identity), file);
  expect(cli.code, "age CLI accepted a corrupt file").not.toBe(0);
  expect(cli.stderr).toMatch(/age: error/);
  await expect(collect(ageDecrypt(fromParts([file]), [identity]))).rejects.toThrow();
}

let classic: { identity: string; recipient: string };

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "crypto-age-"));
  classic = await generateIdentity();
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

// ---- round trips ----------------------------------------------------------------------------

describe("ageEncrypt output decrypts with the age CLI and age-encryption", () => {
  it("uses the native payload cipher by default on Node", () => {
    expect(defaultPayloadEngine()).toBe("native");
  });

  const sizes = [0, 1, CHUNK_SIZE - 1, CHUNK_SIZE, CHUNK_SIZE + 1, 10 * 1024 * 1024 + 7];
  const engines: PayloadEngine[] = ["native", "portable"];
  const cases = engines.flatMap((engine) => sizes.map((size) => ({ engine, size })));

  it.each(cases)("$engine engine, $size bytes in random input chunks", async ({ engine, size }) => {
    const plaintext = randomBytes(size);
    const seed = size * 31 + (engine === "native" ? 1 : 2);
    const file = await collect(ageEncrypt(fromParts(randomSplit(plaintext, seed)), [classic.recipient], { engine }));
    // Exact STREAM layout: one chunk per started 64 KiB, an empty plaintext is one empty chunk,
    // and an exact multiple of 64 KiB has no trailing empty chunk.
    expect(file.length - headerLength(file)).toBe(expectedPayloadSize(size));
    await expectBothDecrypt(file, classic.identity, plaintext);
  });

  it("re-chunks any input splitting correctly (property, age-encryption as oracle)", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 0, max: 3 * CHUNK_SIZE + 300 }),
        fc.array(fc.integer({ min: 0, max: 2 * CHUNK_SIZE }), { maxLength: 12 }),
        async (size, cuts) => {
          const plaintext = randomBytes(size);
          const points = [...new Set(cuts.map((c) => Math.min(c, size)))].sort((a, b) => a - b);
          const parts: Uint8Array[] = [];
          let last = 0;
          for (const p of [...points, size]) {
            parts.push(plaintext.subarray(last, p));
            last = p;
          }
          const file = await collect(ageEncrypt(fromParts(parts), [classic.recipient]));
          expect(file.length - headerLength(file)).toBe(expectedPayloadSize(size));
          const back = await collect(ageDecrypt(fromParts([file]), [classic.identity]));
          expect(back.equals(plaintext)).toBe(true);
        },
      ),
      { numRuns: 40 },
    );
  });

  it("encrypts to several recipients; each identity decrypts, an outsider cannot", async () => {
    const people = await Promise.all([generateIdentity(), generateIdentity(), generateIdentity()]);
    const outsider = await generateIdentity();
    const plaintext = randomBytes(3 * CHUNK_SIZE + 11);
    const file = await collect(ageEncrypt(fromParts([plaintext]), people.map((p) => p.recipient)));
    const header = file.subarray(0, headerLength(file)).toString("latin1");
    expect(header.match(/^-> X25519 /gm)).toHaveLength(3);
    for (const p of people) await expectBothDecrypt(file, p.identity, plaintext);
    await expectBothReject(file, outsider.identity);
  });

  it("is pull-driven: reads the source only as far as the consumer has asked", async () => {
    let pulled = 0;
    async function* source(): AsyncGenerator<Uint8Array> {
      for (let i = 0; i < 1000; i++) {
        pulled++;
        yield new Uint8Array(CHUNK_SIZE);
      }
    }
    const iterator = ageEncrypt(source(), [classic.recipient])[Symbol.asyncIterator]();
    await iterator.next(); // header + nonce
    expect(pulled).toBe(0);
    await iterator.next(); // first sealed chunk: needs chunk 2 to know chunk 1 is not the last
    expect(pulled).toBe(2);
    await iterator.return?.();
  });
});

// ---- runtime selection ----------------------------------------------------------------------

describe("payload engine selection (Workers have no native ChaCha20-Poly1305)", () => {
  // payload-node.ts finds node:crypto through process.getBuiltinModule; replacing that function is
  // how these tests present a runtime without it, or with a shim that lacks the cipher.
  function withBuiltin(fake: (id: string) => unknown): () => void {
    const original = process.getBuiltinModule;
    (process as { getBuiltinModule: unknown }).getBuiltinModule = fake;
    return () => {
      (process as { getBuiltinModule: unknown }).getBuiltinModule = original;
    };
  }

  it("falls back to age-encryption when node:crypto is absent, and the output still decrypts", async () => {
    const restore = withBuiltin(() => undefined);
    try {
      vi.resetModules(); // age-stream caches its choice per module instance
      const fresh = await import("../src/crypto/age-stream.js");
      expect(fresh.defaultPayloadEngine()).toBe("portable");
      expect(() => fresh.ageEncrypt(fromParts([]), [classic.recipient], { engine: "native" })).toThrow(/not available/);
      const plaintext = randomBytes(CHUNK_SIZE + 5);
      const file = await collect(fresh.ageEncrypt(fromParts([plaintext]), [classic.recipient]));
      restore();
      await expectBothDecrypt(file, classic.identity, plaintext);
    } finally {
      restore();
      vi.resetModules();
    }
  });

  it("ignores a node:crypto shim whose chacha20-poly1305 does not work", () => {
    const restore = withBuiltin((id) =>
      id === "node:crypto"
        ? {
            createSecretKey: (k: Uint8Array) => k,
            createCipheriv: () => {
              throw new Error("Unknown cipher");
            },
          }
        : undefined,
    );
    try {
      expect(loadNodeChunkSealer()).toBeNull();
    } finally {
      restore();
    }
    expect(loadNodeChunkSealer()).not.toBeNull();
  });
});

// ---- tampering ------------------------------------------------------------------------------

describe("a modified file fails with both decrypters", () => {
  // Four chunks: three full, one partial last chunk of 1000 bytes.
  const plaintext = randomBytes(3 * CHUNK_SIZE + 1000);
  let file: Buffer;
  let hdr: number;
  beforeAll(async () => {
    file = await collect(ageEncrypt(fromParts(randomSplit(plaintext, 7)), [classic.recipient]));
    hdr = headerLength(file);
    await expectBothDecrypt(file, classic.identity, plaintext); // the control
  });

  const flip = (at: (hdr: number, len: number) => number) => {
    const copy = Buffer.from(file);
    const i = at(hdr, copy.length);
    copy[i] = copy[i]! ^ 0x01;
    return copy;
  };

  it.each([
    ["header: recipient stanza", (_h: number) => 40],
    ["header: MAC", (h: number) => h - 10],
    ["payload nonce", (h: number) => h + 5],
    ["first chunk", (h: number) => h + 16 + 100],
    ["middle chunk", (h: number) => h + 16 + SEALED_CHUNK + 500],
    ["last chunk body", (h: number) => h + 16 + 3 * SEALED_CHUNK + 10],
    ["last chunk tag", (_h: number, len: number) => len - 1],
  ])("flipped bit in the %s", async (_name, at) => {
    await expectBothReject(flip(at), classic.identity);
  });

  it("truncated inside the last chunk", async () => {
    await expectBothReject(file.subarray(0, file.length - 1), classic.identity);
  });

  it("truncated at a chunk boundary (last chunk dropped)", async () => {
    await expectBothReject(file.subarray(0, hdr + 16 + 3 * SEALED_CHUNK), classic.identity);
  });

  it("an exact-multiple file with its full last chunk dropped", async () => {
    const exact = await collect(ageEncrypt(fromParts([randomBytes(2 * CHUNK_SIZE)]), [classic.recipient]));
    const h = headerLength(exact);
    expect(exact.length).toBe(h + 16 + 2 * SEALED_CHUNK);
    await expectBothReject(exact.subarray(0, h + 16 + SEALED_CHUNK), classic.identity);
  });

  it("garbage appended after the last chunk", async () => {
    await expectBothReject(Buffer.concat([file, randomBytes(100)]), classic.identity);
  });
});

describe("last-chunk flag (files written by an independent STREAM writer)", () => {
  /** A real header from age-encryption plus a payload sealed here with chosen last flags. */
  async function craft(chunks: Uint8Array[], lastFlags: boolean[]): Promise<Buffer> {
    let fileKey: Uint8Array | undefined;
    const encrypter = new Encrypter();
    encrypter.addRecipient(classic.recipient);
    encrypter.addRecipient({ wrapFileKey: (k) => ((fileKey = Uint8Array.from(k)), []) });
    const empty = await encrypter.encrypt(new Uint8Array(0));
    const header = empty.subarray(0, empty.length - 32);
    const nonce = randomBytes(16);
    const key = Buffer.from(hkdfSync("sha256", fileKey!, nonce, "payload", 32));
    const sealed = chunks.map((chunk, i) => {
      const iv = Buffer.alloc(12);
      iv.writeUIntBE(i, 5, 6);
      iv[11] = lastFlags[i] ? 1 : 0;
      const c = createCipheriv("chacha20-poly1305", key, iv, { authTagLength: 16 });
      return Buffer.concat([c.update(chunk), c.final(), c.getAuthTag()]);
    });
    return Buffer.concat([header, nonce, ...sealed]);
  }
  const a = randomBytes(CHUNK_SIZE);
  const b = randomBytes(CHUNK_SIZE);
  const tail = randomBytes(500);

  it("control: correct flags decrypt (so the failures below are the flags)", async () => {
    await expectBothDecrypt(await craft([a, b, tail], [false, false, true]), classic.identity, Buffer.concat([a, b, tail]));
  });

  it("final chunk re-labelled as not last", async () => {
    await expectBothReject(await craft([a, b, tail], [false, false, false]), classic.identity);
  });

  it("full final chunk re-labelled as not last (exact multiple)", async () => {
    await expectBothReject(await craft([a, b], [false, false]), classic.identity);
  });

  it("a middle chunk labelled last, followed by more chunks", async () => {
    await expectBothReject(await craft([a, b, tail], [false, true, true]), classic.identity);
  });

  it("a trailing empty last chunk after a full one", async () => {
    await expectBothReject(await craft([a, b, new Uint8Array(0)], [false, false, true]), classic.identity);
  });
});

// ---- post-quantum ---------------------------------------------------------------------------

describe("post-quantum hybrid recipients (age1pq1…)", () => {
  // Debian's age 1.1.1 predates ML-KEM; these files are checked with age-encryption only.
  it.each<PayloadEngine>(["native", "portable"])("round-trip through age-encryption (%s engine)", async (engine) => {
    const [p1, p2] = await Promise.all([generateIdentity("pq"), generateIdentity("pq")]);
    expect(p1!.recipient.startsWith("age1pq1")).toBe(true);
    expect(isPostQuantum(p1!.recipient)).toBe(true);
    const plaintext = randomBytes(2 * CHUNK_SIZE + 3);
    const file = await collect(
      ageEncrypt(fromParts(randomSplit(plaintext, 99)), [p1!.recipient, p2!.recipient], { engine }),
    );
    const header = file.subarray(0, headerLength(file)).toString("latin1");
    expect(header.match(/^-> mlkem768x25519 /gm)).toHaveLength(2);
    expect(header).not.toMatch(/^-> X25519 /m);
    for (const p of [p1!, p2!]) {
      expect((await collect(ageDecrypt(fromParts([file]), [p.identity]))).equals(plaintext)).toBe(true);
    }
    await expect(collect(ageDecrypt(fromParts([file]), [classic.identity]))).rejects.toThrow(/no identity matched/);
  });
});

// ---- recipient validation -------------------------------------------------------------------

describe("parseRecipients", () => {
  it("keeps order, trims, de-duplicates", async () => {
    const other = await generateIdentity();
    expect(parseRecipients([classic.recipient, ` ${other.recipient} `, classic.recipient])).toEqual([
      classic.recipient,
      other.recipient,
    ]);
  });

  it("rejects an empty list", () => {
    const e = thrown(() => parseRecipients([]));
    expect(e.code).toBe("invalid_input");
    expect(e.field).toBe("recipients");
    expect(e.status).toBe(400);
  });

  it("names the index of a garbage recipient", () => {
    const e = thrown(() => parseRecipients([classic.recipient, "not-a-key"]));
    expect(e.code).toBe("invalid_input");
    expect(e.field).toBe("recipients[1]");
    expect(e.message).toMatch(/^recipients\[1\]: /);
  });

  it("rejects a recipient with a broken checksum or length, with the caller's field name", () => {
    const r = classic.recipient;
    const badChecksum = r.slice(0, -1) + (r.endsWith("q") ? "p" : "q");
    expect(thrown(() => parseRecipients([badChecksum], "policy.recipients")).field).toBe("policy.recipients[0]");
    expect(thrown(() => parseRecipients([r, r.slice(0, -6)])).field).toBe("recipients[1]");
    expect(thrown(() => parseRecipients([""])).field).toBe("recipients[0]");
    expect(thrown(() => parseRecipients(["AGE-SECRET-KEY-1QQQ"])).field).toBe("recipients[0]");
    expect(thrown(() => parseRecipients(["age1tag1qqqqqqqq"])).message).toMatch(/tag recipients/);
  });

  it("rejects a set mixing post-quantum and classic recipients", async () => {
    const pq = await generateIdentity("pq");
    const e = thrown(() => parseRecipients([pq.recipient, classic.recipient]));
    expect(e.code).toBe("invalid_input");
    expect(e.field).toBe("recipients");
    expect(e.message).toMatch(/mixed/);
  });

  it("ageEncrypt validates before reading any input", async () => {
    const pq = await generateIdentity("pq");
    let pulled = false;
    async function* source(): AsyncGenerator<Uint8Array> {
      pulled = true;
      yield new Uint8Array(1);
    }
    expect(thrown(() => ageEncrypt(source(), [classic.recipient, pq.recipient])).field).toBe("recipients");
    expect(thrown(() => ageEncrypt(source(), [classic.recipient, "age1oops"])).field).toBe("recipients[1]");
    expect(thrown(() => ageEncrypt(source(), [])).field).toBe("recipients");
    expect(pulled).toBe(false);
  });

  it("ageDecrypt rejects a malformed identity without echoing it", () => {
    const e = thrown(() => ageDecrypt(fromParts([]), [classic.identity, "AGE-SECRET-KEY-1BOGUS"]));
    expect(e.field).toBe("identities[1]");
    expect(e.message).not.toContain("BOGUS");
  });
});

describe("recipientFingerprint", () => {
  it("is the first 16 hex digits of SHA-256 of the recipient, stable and distinct", async () => {
    const other = await generateIdentity();
    const fp = await recipientFingerprint(classic.recipient);
    expect(fp).toMatch(/^[0-9a-f]{16}$/);
    expect(fp).toBe(createHash("sha256").update(classic.recipient).digest("hex").slice(0, 16));
    expect(await recipientFingerprint(classic.recipient)).toBe(fp);
    expect(await recipientFingerprint(other.recipient)).not.toBe(fp);
  });
});
