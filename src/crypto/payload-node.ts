// The Node-specific half of age encryption: sealing one 64 KiB STREAM chunk with OpenSSL's
// ChaCha20-Poly1305 (~1.8 GB/s here, ~16x the pure-JS cipher in age-encryption).
//
// This file has no `import … from "node:crypto"` on purpose. A static import would be hoisted into
// the Worker bundle and break workerd at load time (or at build time without nodejs_compat), and
// even a literal `import("node:crypto")` is resolved by the bundler. `process.getBuiltinModule`
// (Node ≥ 20.16; our floor is 20.19) is invisible to bundlers and simply absent where there is no
// Node, so the module is looked up at runtime and the caller falls back when it is missing (workerd
// without nodejs_compat) or when a runtime's node:crypto shim cannot run chacha20-poly1305.

import type { ChunkSealer, ChunkSealerFactory } from "./age-stream.js";

type NodeCrypto = typeof import("node:crypto");

const CIPHER = "chacha20-poly1305";
const TAG_SIZE = 16;

function nodeCryptoModule(): NodeCrypto | undefined {
  const proc = (globalThis as { process?: { getBuiltinModule?: (id: string) => unknown } }).process;
  try {
    return proc?.getBuiltinModule?.("node:crypto") as NodeCrypto | undefined;
  } catch {
    return undefined;
  }
}

/**
 * OpenSSL-backed chunk sealers, or null when this runtime has no usable native ChaCha20-Poly1305.
 * The answer is checked by sealing one empty chunk, not just by name, since shims may list
 * ciphers they cannot run.
 */
export function loadNodeChunkSealer(): ChunkSealerFactory | null {
  const nodeCrypto = nodeCryptoModule();
  if (!nodeCrypto || typeof nodeCrypto.createCipheriv !== "function") return null;
  const { createCipheriv, createSecretKey } = nodeCrypto;

  const factory: ChunkSealerFactory = (payloadKey) => {
    // One KeyObject per file, so the key is imported once rather than for each of the 16k chunks
    // per GiB (createCipheriv with raw bytes imports it every call; the gain is small here).
    const key = createSecretKey(payloadKey);
    const seal: ChunkSealer = (nonce, plaintext) => {
      const cipher = createCipheriv(CIPHER, key, nonce, { authTagLength: TAG_SIZE });
      // update() returns a fresh buffer (never aliases `plaintext`), so callers may reuse theirs.
      const body = cipher.update(plaintext);
      cipher.final();
      return [body, cipher.getAuthTag()];
    };
    return seal;
  };

  try {
    const probe = factory(new Uint8Array(32))(new Uint8Array(12), new Uint8Array(0));
    if (probe[1].length !== TAG_SIZE) return null;
  } catch {
    return null;
  }
  return factory;
}
