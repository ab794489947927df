// Small helpers shared by the blob store tests.
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

export { failure } from "./expect-error.js";
