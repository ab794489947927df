// Small helpers shared by the blob store tests.
import { expect } from "vitest";
import { VaultError } from "../../src/core/errors.js";
import type { BlobInfo } from "../../src/core/ports.js";

/** `data` as an async stream of `size`-byte chunks. */
export async function* chunks(data: Uint8Array, size = 64 * 1024): AsyncGenerator<Uint8Array> {
  for (let off = 0; off < data.length; off += size) yield data.subarray(off, off + size);
}

export async function readAll(body: ReadableStream<Uint8Array>): Promise<Buffer> {
  return Buffer.from(await new Response(body).arrayBuffer());
}

export async function collect(it: AsyncIterable<BlobInfo>): Promise<BlobInfo[]> {
  const out: BlobInfo[] = [];
  for await (const x of it) out.push(x);
  return out;
}

/** The VaultError a promise rejects with (fails the test if it resolves or throws anything else). */
export async function failure(p: Promise<unknown>): Promise<VaultError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(VaultError);
    return e as VaultError;
  }
  throw new Error("expected the promise to reject");
}
