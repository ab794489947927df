// Envelope encryption of secrets at rest (kubeconfigs, S3 credentials) with AES-256-GCM under the
// master key. WebCrypto only, so the Worker edition can open what the Node edition sealed.
// Sealed form: `v1:<keyId>:<base64(iv ‖ ciphertext+tag)>`. The key id (first 8 hex of SHA-256 of
// the key) lets a keyring of several master keys open old values while sealing with the first.

import { VaultError } from "../core/errors.js";
import { sha256Sync } from "../core/sha256.js";

const enc = new TextEncoder();
const dec = new TextDecoder();

export interface SecretBox {
  readonly keyId: string;
  seal(plaintext: string, aad?: string): Promise<string>;
  open(sealed: string, aad?: string): Promise<string>;
  /** Derive a sub-key for another purpose (link signing) so the master key is used once per role. */
  deriveHmacKey(purpose: string): Promise<CryptoKey>;
}

export function decodeMasterKey(text: string): Uint8Array {
  const t = text.trim();
  let bytes: Uint8Array | null = null;
  if (/^[0-9a-fA-F]{64}$/.test(t)) {
    bytes = new Uint8Array(32);
    for (let i = 0; i < 32; i++) bytes[i] = parseInt(t.slice(i * 2, i * 2 + 2), 16);
  } else if (/^[A-Za-z0-9+/_-]{43}=?$/.test(t)) {
    bytes = base64Decode(t.replace(/-/g, "+").replace(/_/g, "/"));
  }
  if (!bytes || bytes.length !== 32) {
    throw new VaultError("invalid_input", "master key must be 32 bytes, as 64 hex digits or base64");
  }
  return bytes;
}

export async function createSecretBox(masterKeys: Uint8Array[]): Promise<SecretBox> {
  if (masterKeys.length === 0) throw new VaultError("internal", "no master key");
  const ring = new Map<string, CryptoKey>();
  let currentId = "";
  for (const raw of masterKeys) {
    const id = hex(new Uint8Array(await crypto.subtle.digest("SHA-256", buf(raw)))).slice(0, 8);
    ring.set(id, await crypto.subtle.importKey("raw", buf(raw), "AES-GCM", false, ["encrypt", "decrypt"]));
    if (!currentId) currentId = id;
  }
  const hkdfBase = await crypto.subtle.importKey("raw", buf(masterKeys[0]!), "HKDF", false, ["deriveKey"]);
  return {
    keyId: currentId,
    async seal(plaintext, aad = "") {
      const iv = crypto.getRandomValues(new Uint8Array(12));
      const ct = new Uint8Array(
        await crypto.subtle.encrypt(
          { name: "AES-GCM", iv, additionalData: enc.encode(aad) },
          ring.get(currentId)!,
          enc.encode(plaintext),
        ),
      );
      const out = new Uint8Array(iv.length + ct.length);
      out.set(iv);
      out.set(ct, iv.length);
      return `v1:${currentId}:${base64Encode(out)}`;
    },
    async open(sealed, aad = "") {
      const [v, id, body] = sealed.split(":");
      const key = id ? ring.get(id) : undefined;
      if (v !== "v1" || !key || !body) {
        throw new VaultError("internal", `sealed secret uses unknown master key id '${id ?? "?"}'`);
      }
      const bytes = base64Decode(body);
      try {
        const pt = await crypto.subtle.decrypt(
          { name: "AES-GCM", iv: buf(bytes.subarray(0, 12)), additionalData: enc.encode(aad) },
          key,
          buf(bytes.subarray(12)),
        );
        return dec.decode(pt);
      } catch {
        throw new VaultError("internal", `sealed secret failed authentication (key id ${id})`);
      }
    },
    async deriveHmacKey(purpose) {
      return crypto.subtle.deriveKey(
        { name: "HKDF", hash: "SHA-256", salt: new Uint8Array(0), info: enc.encode(`etcd-vault/${purpose}`) },
        hkdfBase,
        { name: "HMAC", hash: "SHA-256", length: 256 },
        false,
        ["sign", "verify"],
      );
    },
  };
}

/** WebCrypto's types want ArrayBuffer-backed views; ours always are, this just says so. */
export const buf = (b: Uint8Array): Uint8Array<ArrayBuffer> => b as Uint8Array<ArrayBuffer>;

export function hex(bytes: Uint8Array): string {
  let s = "";
  for (const b of bytes) s += b.toString(16).padStart(2, "0");
  return s;
}

export function base64Encode(bytes: Uint8Array): string {
  let s = "";
  for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(s);
}

export function base64Decode(text: string): Uint8Array {
  const s = atob(text);
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}

export function base64UrlEncode(bytes: Uint8Array): string {
  return base64Encode(bytes).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

export function base64UrlDecode(text: string): Uint8Array {
  const b = text.replace(/-/g, "+").replace(/_/g, "/");
  return base64Decode(b + "=".repeat((4 - (b.length % 4)) % 4));
}

export async function sha256Hex(text: string): Promise<string> {
  return hex(new Uint8Array(await crypto.subtle.digest("SHA-256", enc.encode(text))));
}

/**
 * The same digest without WebCrypto's promise round trip, for short texts on a hot path (every
 * API request hashes its token's secret: one SHA-256 block, ~70 µs a request saved, bench:tick).
 */
export function sha256HexSync(text: string): string {
  return hex(sha256Sync(enc.encode(text)));
}

/** Constant-time comparison of two equal-length strings (hashes, MACs). */
export function timingSafeEqualStr(a: string, b: string): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a.charCodeAt(i) ^ b.charCodeAt(i);
  return diff === 0;
}
