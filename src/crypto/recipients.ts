// age recipients: validation, classification and fingerprints. Runtime-neutral (no node:*): the
// API layer, the Worker and the capture pipeline all call this before anything is encrypted.

import { Encrypter } from "age-encryption";
import { invalidInput } from "../core/errors.js";

// bech32 data characters never include "1", so "age1pq1…" cannot be an X25519 recipient and the
// prefix alone tells the kinds apart.
const PQ_PREFIX = "age1pq1";
const X25519_PREFIX = "age1";
// Tag recipients (p256tag, hardware-backed) need a plugin-capable age ≥ 1.3 to decrypt; restores
// must work with a plain age CLI, so they are refused up front.
const UNSUPPORTED_PREFIXES = ["age1tag1", "age1tagpq1"];

/** True for a post-quantum hybrid (ML-KEM-768 + X25519) recipient, `age1pq1…`. */
export const isPostQuantum = (recipient: string): boolean => recipient.startsWith(PQ_PREFIX);

/**
 * Validates and de-duplicates a recipient list (order kept, surrounding whitespace ignored).
 * Throws `invalid_input` naming `field[i]` for a recipient that does not parse, or `field` for an
 * empty list or one mixing post-quantum and classic recipients: age ≥ 1.3 refuses to decrypt such
 * files, because a classic stanza would undo the post-quantum protection.
 */
export function parseRecipients(list: readonly string[], field = "recipients"): string[] {
  if (list.length === 0) {
    throw invalidInput(field, "at least one age recipient is required (backups are never stored in plaintext)");
  }
  const seen = new Set<string>();
  list.forEach((raw, i) => {
    const recipient = typeof raw === "string" ? raw.trim() : "";
    validateOne(recipient, `${field}[${i}]`);
    seen.add(recipient);
  });
  const result = [...seen];
  const pq = result.filter(isPostQuantum).length;
  if (pq > 0 && pq < result.length) {
    throw invalidInput(
      field,
      "post-quantum (age1pq1…) and classic (age1…) recipients cannot be mixed in one set",
    );
  }
  return result;
}

function validateOne(recipient: string, field: string): void {
  if (recipient === "") throw invalidInput(field, "empty recipient");
  if (UNSUPPORTED_PREFIXES.some((p) => recipient.startsWith(p))) {
    throw invalidInput(field, "tag recipients are not supported; use an X25519 (age1…) or post-quantum (age1pq1…) recipient");
  }
  if (!recipient.startsWith(X25519_PREFIX)) {
    throw invalidInput(field, "not an age recipient (expected age1… or age1pq1…)");
  }
  // age-encryption decodes the bech32 string and checks the key length when a recipient is added;
  // that is the same parser the encrypter uses, so what passes here can be encrypted to.
  try {
    new Encrypter().addRecipient(recipient);
  } catch {
    throw invalidInput(field, "not a valid age recipient (bad encoding, checksum or key length)");
  }
}

/**
 * A short, stable identifier for a recipient, safe to store and show: the first 16 hex digits of
 * SHA-256 over the recipient string. WebCrypto, so it runs on Node and Workers alike.
 */
export async function recipientFingerprint(recipient: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(recipient.trim()));
  let hex = "";
  for (const byte of new Uint8Array(digest, 0, 8)) hex += byte.toString(16).padStart(2, "0");
  return hex;
}
