// age v1 streaming encryption (https://age-encryption.org/v1) at native speed.
//
// age-encryption writes the header (recipient stanzas + HMAC) and is the reference decrypter, but
// its payload cipher is pure JS (~117 MB/s here). The payload format is small, so where the runtime
// has a native ChaCha20-Poly1305 (Node) we write it ourselves:
//   nonce(16 random bytes) ‖ STREAM chunks
//   payload key = HKDF-SHA-256(ikm = file key, salt = nonce, info = "payload")
//   each chunk  = ChaCha20-Poly1305(payload key, 11-byte big-endian counter ‖ last flag, ≤ 64 KiB)
//   the last chunk has flag 0x01; it is empty only when the whole plaintext is; a plaintext that is
//   an exact multiple of 64 KiB ends with a full last chunk.
// Where no native cipher is found (WebCrypto has no ChaCha20, so: Workers without nodejs_compat),
// age-encryption encrypts the whole file. Checked under `wrangler dev` (workerd): without
// nodejs_compat the portable engine is picked, with it workerd's node:crypto runs the native one;
// both outputs decrypt with the age CLI.

import {
  Decrypter,
  Encrypter,
  generateHybridIdentity,
  generateX25519Identity,
  identityToRecipient,
  type Recipient,
} from "age-encryption";
import { VaultError, invalidInput } from "../core/errors.js";
import { loadNodeChunkSealer } from "./payload-node.js";
import { parseRecipients } from "./recipients.js";

export const CHUNK_SIZE = 64 * 1024;
const TAG_SIZE = 16;
const PAYLOAD_NONCE_SIZE = 16;
// The header ends with "--- " + base64 of the 32-byte HMAC (43 chars, unpadded) + "\n".
const HEADER_PREFIX = "age-encryption.org/v1\n";
const MAC_LINE_SIZE = 4 + 43 + 1;

/**
 * Seals one STREAM chunk under `nonce` (12 bytes). Returns the ciphertext body then the 16-byte tag,
 * in buffers that alias neither argument: the caller reuses both as soon as this returns.
 */
export type ChunkSealer = (nonce: Uint8Array, plaintext: Uint8Array) => [body: Uint8Array, tag: Uint8Array];
/** Builds the chunk sealer for one file from its 32-byte payload key (copied: the caller wipes it). */
export type ChunkSealerFactory = (payloadKey: Uint8Array) => ChunkSealer;

/** `native`: our STREAM writer over a native cipher; `portable`: age-encryption end to end. */
export type PayloadEngine = "native" | "portable";

export interface AgeEncryptOptions {
  /** Default: native when the runtime has it, else portable. Tests force one to cover both. */
  engine?: PayloadEngine;
}

let nativeFactory: ChunkSealerFactory | null | undefined;
function nativeSealers(): ChunkSealerFactory | null {
  if (nativeFactory === undefined) nativeFactory = loadNodeChunkSealer();
  return nativeFactory;
}

/** The engine `ageEncrypt` uses by default in this runtime. */
export const defaultPayloadEngine = (): PayloadEngine => (nativeSealers() ? "native" : "portable");

/**
 * Encrypts `source` to `recipients` in the age v1 format, as a pull-driven stream (nothing is read
 * ahead of the consumer, nothing is buffered beyond one 64 KiB chunk). Recipients are validated
 * here, before the first byte is read: a bad list throws `invalid_input` synchronously.
 * Source chunks must not be modified after they are yielded (up to 64 KiB of one may be held until
 * the next arrives, to learn whether it ends the file).
 */
export function ageEncrypt(
  source: AsyncIterable<Uint8Array>,
  recipients: readonly string[],
  options: AgeEncryptOptions = {},
): AsyncIterable<Uint8Array> {
  const list = parseRecipients(recipients);
  const engine = options.engine ?? defaultPayloadEngine();
  if (engine === "portable") return encryptPortable(source, list);
  const factory = nativeSealers();
  if (!factory) throw new VaultError("internal", "native ChaCha20-Poly1305 is not available in this runtime");
  return encryptNative(source, list, factory);
}

async function* encryptNative(
  source: AsyncIterable<Uint8Array>,
  recipients: string[],
  factory: ChunkSealerFactory,
): AsyncGenerator<Uint8Array> {
  const { header, fileKey } = await writeHeader(recipients);
  const nonce = crypto.getRandomValues(new Uint8Array(PAYLOAD_NONCE_SIZE));
  const payloadKey = await hkdfSha256(fileKey, nonce, "payload");
  fileKey.fill(0);
  const start = new Uint8Array(header.length + nonce.length);
  start.set(header);
  start.set(nonce, header.length);
  yield start;
  const seal = factory(payloadKey);
  payloadKey.fill(0);
  yield* sealChunks(source, seal);
}

/**
 * The header for a fresh file key, by age-encryption's Encrypter. Its public `Recipient` interface
 * hands every recipient the file key, so an extra recipient that adds no stanza observes it. We let
 * it encrypt an empty file — header ‖ 16-byte nonce ‖ one empty last chunk (a bare 16-byte tag) —
 * keep the header and drop the rest: our own nonce and payload follow under the same file key.
 */
async function writeHeader(recipients: string[]): Promise<{ header: Uint8Array; fileKey: Uint8Array<ArrayBuffer> }> {
  let fileKey: Uint8Array<ArrayBuffer> | undefined;
  const observer: Recipient = {
    wrapFileKey(key) {
      fileKey = Uint8Array.from(key);
      return [];
    },
  };
  const encrypter = new Encrypter();
  for (const r of recipients) encrypter.addRecipient(r);
  encrypter.addRecipient(observer);
  const emptyFile = await encrypter.encrypt(new Uint8Array(0));
  const header = emptyFile.subarray(0, emptyFile.length - PAYLOAD_NONCE_SIZE - TAG_SIZE);
  if (!fileKey || fileKey.length !== 16 || !looksLikeHeader(header)) {
    // Only a change in age-encryption's output layout can get here; fail loudly rather than
    // write files nobody can decrypt.
    throw new VaultError("internal", "age-encryption produced an unexpected header layout");
  }
  return { header, fileKey };
}

function looksLikeHeader(header: Uint8Array): boolean {
  if (header.length < HEADER_PREFIX.length + MAC_LINE_SIZE) return false;
  const text = new TextDecoder().decode(header);
  const macLine = text.slice(text.length - MAC_LINE_SIZE);
  return text.startsWith(HEADER_PREFIX) && text[text.length - MAC_LINE_SIZE - 1] === "\n" &&
    macLine.startsWith("--- ") && macLine.endsWith("\n");
}

async function hkdfSha256(ikm: Uint8Array<ArrayBuffer>, salt: Uint8Array<ArrayBuffer>, info: string): Promise<Uint8Array> {
  const key = await crypto.subtle.importKey("raw", ikm, "HKDF", false, ["deriveBits"]);
  const bits = await crypto.subtle.deriveBits(
    { name: "HKDF", hash: "SHA-256", salt, info: new TextEncoder().encode(info) },
    key,
    256,
  );
  return new Uint8Array(bits);
}

/**
 * Re-chunks arbitrary input into exact 64 KiB STREAM chunks and seals them. Whole chunks inside an
 * input buffer are sealed in place (a subarray, no copy); only chunks straddling input buffers are
 * assembled in one staging buffer. A full chunk is held back until more input (or the end) shows
 * whether it is the last one, because the last flag is part of its nonce.
 */
async function* sealChunks(source: AsyncIterable<Uint8Array>, seal: ChunkSealer): AsyncGenerator<Uint8Array> {
  const nonce = new Uint8Array(12); // bytes 0..10: big-endian chunk counter; byte 11: last flag
  const staging = new Uint8Array(CHUNK_SIZE);
  let staged = 0;
  let pending: Uint8Array | null = null;

  for await (const input of source) {
    let offset = 0;
    while (offset < input.length) {
      if (pending) {
        // More plaintext exists, so the held chunk is not the last one. Sealing it here, before
        // anything new is written to `staging`, is what lets one staging buffer suffice.
        // Explicit yields: `yield*` over an array in an async generator adds an async-from-sync
        // iterator step (an extra await) per element.
        const [body, tag] = seal(nonce, pending);
        yield body;
        yield tag;
        incrementCounter(nonce);
        pending = null;
      }
      const available = input.length - offset;
      if (staged === 0 && available >= CHUNK_SIZE) {
        pending = input.subarray(offset, offset + CHUNK_SIZE);
        offset += CHUNK_SIZE;
        continue;
      }
      const n = Math.min(CHUNK_SIZE - staged, available);
      staging.set(input.subarray(offset, offset + n), staged);
      staged += n;
      offset += n;
      if (staged === CHUNK_SIZE) {
        pending = staging;
        staged = 0;
      }
    }
  }

  nonce[11] = 1;
  // Either a held full chunk (staged is then 0) or the partial remainder, which is empty only when
  // the whole plaintext was.
  const last = pending ?? staging.subarray(0, staged);
  const [body, tag] = seal(nonce, last);
  if (body.length > 0) yield body;
  yield tag;
}

function incrementCounter(nonce: Uint8Array): void {
  for (let i = 10; i >= 0; i--) {
    nonce[i] = (nonce[i]! + 1) & 0xff;
    if (nonce[i] !== 0) return;
  }
  throw new VaultError("internal", "age STREAM counter overflow");
}

async function* encryptPortable(source: AsyncIterable<Uint8Array>, recipients: string[]): AsyncGenerator<Uint8Array> {
  const encrypter = new Encrypter();
  for (const r of recipients) encrypter.addRecipient(r);
  yield* readStream(await encrypter.encrypt(toReadableStream(source)));
}

/**
 * Decrypts an age file with age-encryption's Decrypter (the reference implementation; used to
 * verify stored objects and in tests). Throws if no identity matches, the header MAC is wrong, or
 * any chunk fails authentication, including a truncated or extended file.
 */
export function ageDecrypt(source: AsyncIterable<Uint8Array>, identities: readonly string[]): AsyncIterable<Uint8Array> {
  if (identities.length === 0) throw invalidInput("identities", "at least one age identity is required");
  const decrypter = new Decrypter();
  identities.forEach((identity, i) => {
    try {
      decrypter.addIdentity(identity.trim());
    } catch {
      // Never echo the value: it is a secret key.
      throw invalidInput(`identities[${i}]`, "not an age identity (AGE-SECRET-KEY-1… or AGE-SECRET-KEY-PQ-1…)");
    }
  });
  return (async function* () {
    yield* readStream(await decrypter.decrypt(toReadableStream(source)));
  })();
}

/** A new identity and its recipient (tests, local setups). `pq` gives an ML-KEM-768 + X25519 hybrid. */
export async function generateIdentity(kind: "x25519" | "pq" = "x25519"): Promise<{ identity: string; recipient: string }> {
  const identity = kind === "pq" ? await generateHybridIdentity() : await generateX25519Identity();
  return { identity, recipient: await identityToRecipient(identity) };
}

// Pull-driven bridges between async iterables and web streams (highWaterMark 0: the source is
// read only when the consumer asks, so backpressure passes straight through).
function toReadableStream(source: AsyncIterable<Uint8Array>): ReadableStream<Uint8Array> {
  const iterator = source[Symbol.asyncIterator]();
  return new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        const next = await iterator.next();
        if (next.done) controller.close();
        else controller.enqueue(next.value);
      },
      async cancel(reason) {
        await iterator.return?.(reason);
      },
    },
    { highWaterMark: 0 },
  );
}

async function* readStream(stream: ReadableStream<Uint8Array>): AsyncGenerator<Uint8Array> {
  const reader = stream.getReader();
  let finished = false;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) {
        finished = true;
        return;
      }
      yield value;
    }
  } finally {
    if (!finished) await reader.cancel().catch(() => undefined);
    reader.releaseLock();
  }
}
