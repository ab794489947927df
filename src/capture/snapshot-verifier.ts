// Verifies an etcd snapshot stream while it flows: everything passes through untouched, the
// hasher runs 32 bytes behind so that at the end it holds SHA-256(db) to compare with the
// trailer. The hash of the whole stream (db ‖ trailer) comes from a copy of the same hasher —
// one pass over the data, not two.

import { createHash, type Hash } from "node:crypto";
import { VaultError } from "../core/errors.js";
import { TRAILER_SIZE, hasTrailer } from "../core/etcd-trailer.js";

export interface VerifiedStats {
  /** Bytes of the whole stream (db + trailer). */
  size: number;
  /** SHA-256 (hex) of the whole stream, i.e. of the plaintext we encrypt and store. */
  sha256: string;
  /** SHA-256 (hex) of the bbolt database, equal to the trailer. */
  dbSha256: string;
}

export function verifyEtcdSnapshot(
  source: AsyncIterable<Uint8Array>,
  onDone: (stats: VerifiedStats) => void,
  onProgress?: (bytes: number) => void,
): AsyncIterable<Uint8Array> {
  return {
    async *[Symbol.asyncIterator]() {
      const h: Hash = createHash("sha256");
      const tail = new Uint8Array(TRAILER_SIZE);
      let tailLen = 0;
      let size = 0;
      for await (const chunk of source) {
        if (chunk.length === 0) continue;
        size += chunk.length;
        // Keep the last 32 bytes seen out of the hasher: hash whatever they push out.
        if (chunk.length >= TRAILER_SIZE) {
          if (tailLen) h.update(tail.subarray(0, tailLen));
          h.update(chunk.subarray(0, chunk.length - TRAILER_SIZE));
          tail.set(chunk.subarray(chunk.length - TRAILER_SIZE));
          tailLen = TRAILER_SIZE;
        } else {
          const overflow = tailLen + chunk.length - TRAILER_SIZE;
          if (overflow > 0) {
            h.update(tail.slice(0, overflow));
            tail.copyWithin(0, overflow, tailLen);
            tailLen -= overflow;
          }
          tail.set(chunk, tailLen);
          tailLen += chunk.length;
        }
        onProgress?.(size);
        yield chunk;
      }
      if (size === 0) throw new VaultError("snapshot_corrupt", "the snapshot stream was empty");
      if (!hasTrailer(size)) {
        throw new VaultError(
          "snapshot_corrupt",
          `snapshot stream of ${size} bytes has no SHA-256 trailer (length % 512 = ${size % 512}, expected 32): truncated or not an etcd snapshot`,
        );
      }
      const whole = h.copy();
      whole.update(tail);
      const db = h.digest();
      if (!db.equals(tail)) {
        throw new VaultError(
          "snapshot_corrupt",
          `snapshot SHA-256 trailer mismatch: database hashes to ${db.toString("hex").slice(0, 16)}…, trailer says ${Buffer.from(tail).toString("hex").slice(0, 16)}…`,
        );
      }
      onDone({ size, sha256: whole.digest("hex"), dbSha256: db.toString("hex") });
    },
  };
}

/** Counts and hashes bytes passing through (the ciphertext side). */
export function hashingTap(
  source: AsyncIterable<Uint8Array>,
  onDone: (stats: { size: number; sha256: string }) => void,
): AsyncIterable<Uint8Array> {
  return {
    async *[Symbol.asyncIterator]() {
      const h = createHash("sha256");
      let size = 0;
      for await (const chunk of source) {
        h.update(chunk);
        size += chunk.length;
        yield chunk;
      }
      onDone({ size, sha256: h.digest("hex") });
    },
  };
}
