// The R2 BlobStore against the real local R2 of wrangler's runtime (Miniflare's R2 binding in
// workerd, the one `wrangler dev` serves), reached from Node through Miniflare's binding proxy.
// Covers what the end-to-end Worker test does not reach: put() of a large body (multipart),
// failed and aborted uploads leaving nothing behind, ranges, listing and prefixes.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createHash, randomBytes } from "node:crypto";
import { Miniflare } from "miniflare";
import { VaultError } from "../src/core/errors.js";
import { R2BlobStore, type R2BucketLike } from "../src/vault/r2-store.js";

const MiB = 1024 * 1024;
let mf: Miniflare;
let bucket: R2BucketLike;

beforeAll(async () => {
  mf = new Miniflare({
    modules: true,
    script: "export default { fetch() { return new Response('') } }",
    r2Buckets: ["VAULT"],
    r2Persist: false,
    // No download of request.cf data: this test runs offline.
    cf: false,
  });
  bucket = (await mf.getR2Bucket("VAULT")) as unknown as R2BucketLike;
});

afterAll(async () => {
  await mf?.dispose();
});

async function* chunks(data: Uint8Array, size: number): AsyncIterable<Uint8Array> {
  for (let i = 0; i < data.length; i += size) yield data.subarray(i, Math.min(i + size, data.length));
}
const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");
const read = async (s: ReadableStream<Uint8Array>) => new Uint8Array(await new Response(s).arrayBuffer());

describe("R2BlobStore on the local R2 binding", () => {
  it("puts a small object in one request and reads it whole and in ranges", async () => {
    const store = new R2BlobStore(bucket, { binding: "VAULT", prefix: "vault/a" });
    const data = new Uint8Array(randomBytes(100_000));
    expect(await store.put("c/2026/01/01/x.db.age", chunks(data, 7_001), { contentType: "application/octet-stream" })).toEqual({
      key: "c/2026/01/01/x.db.age",
      size: data.length,
    });
    // The target's prefix is applied under the hood, never seen by callers.
    expect((await bucket.head("vault/a/c/2026/01/01/x.db.age"))?.size).toBe(data.length);
    expect(await store.head("c/2026/01/01/x.db.age")).toEqual({ key: "c/2026/01/01/x.db.age", size: data.length });
    const whole = await store.get("c/2026/01/01/x.db.age");
    expect(whole.size).toBe(data.length);
    expect(sha(await read(whole.body))).toBe(sha(data));
    const mid = await store.get("c/2026/01/01/x.db.age", { start: 10, end: 19 });
    expect([mid.size, mid.totalSize]).toEqual([10, data.length]);
    expect(await read(mid.body)).toEqual(data.subarray(10, 20));
    const tail = await store.get("c/2026/01/01/x.db.age", { start: 99_990 });
    expect(await read(tail.body)).toEqual(data.subarray(99_990));
    const clamped = await store.get("c/2026/01/01/x.db.age", { start: 99_999, end: 10_000_000 });
    expect(clamped.size).toBe(1);
    await expect(store.get("c/2026/01/01/x.db.age", { start: data.length })).rejects.toMatchObject({ code: "invalid_input" });
    await expect(store.get("c/missing")).rejects.toMatchObject({ code: "not_found" });
    expect(await store.head("c/missing")).toBeNull();
  });

  it("puts a large body of unknown length as a multipart upload of equal parts", async () => {
    const store = new R2BlobStore(bucket, { binding: "VAULT", partSize: 5 * MiB });
    const data = new Uint8Array(randomBytes(12 * MiB + 12_345));
    const info = await store.put("big/one.db.age", chunks(data, 300_001));
    expect(info.size).toBe(data.length);
    const got = await store.get("big/one.db.age");
    expect(sha(await read(got.body))).toBe(sha(data));
    // Exactly one part's worth is a single put (no second part to send).
    const exact = new Uint8Array(5 * MiB);
    expect((await store.put("big/exact", chunks(exact, MiB))).size).toBe(5 * MiB);
    expect((await store.put("big/empty", chunks(new Uint8Array(0), 1))).size).toBe(0);
    expect((await store.head("big/empty"))?.size).toBe(0);
  });

  it("leaves nothing under the key when the source fails or the upload is cancelled", async () => {
    const store = new R2BlobStore(bucket, { binding: "VAULT", partSize: 5 * MiB });
    async function* failing(): AsyncIterable<Uint8Array> {
      yield new Uint8Array(6 * MiB);
      yield new Uint8Array(6 * MiB);
      throw new Error("exec stream cut");
    }
    const err = await store.put("broken/x", failing()).catch((e) => e);
    expect(err).toBeInstanceOf(VaultError);
    expect(err.code).toBe("storage_failed");
    expect(err.message).toContain("exec stream cut");
    expect(await store.head("broken/x")).toBeNull();
    const ac = new AbortController();
    ac.abort(new VaultError("cancelled", "run cancelled"));
    await expect(store.put("broken/y", chunks(new Uint8Array(10), 5), { signal: ac.signal })).rejects.toMatchObject({ code: "cancelled" });
    expect(await store.head("broken/y")).toBeNull();
  });

  it("offers the part-by-part multipart ops the runner routes use, across handles", async () => {
    const store = new R2BlobStore(bucket, { binding: "VAULT", prefix: "p" });
    const mp = store.multipart;
    const id = await mp.create("runs/r1.db.age", { contentType: "application/octet-stream" });
    const p1 = new Uint8Array(randomBytes(5 * MiB));
    const p2 = new Uint8Array(randomBytes(1234));
    // Each call rebuilds the upload from (key, uploadId), as separate Worker requests do.
    const e1 = await mp.uploadPart("runs/r1.db.age", id, 1, p1);
    const e2 = await mp.uploadPart("runs/r1.db.age", id, 2, p2);
    expect(await store.head("runs/r1.db.age")).toBeNull(); // invisible until completed
    const done = await mp.complete("runs/r1.db.age", id, [
      { partNumber: 1, etag: e1.etag },
      { partNumber: 2, etag: e2.etag },
    ]);
    expect(done).toEqual({ key: "runs/r1.db.age", size: p1.length + p2.length });
    const back = await read((await store.get("runs/r1.db.age")).body);
    expect(sha(back)).toBe(sha(new Uint8Array([...p1, ...p2])));

    const id2 = await mp.create("runs/r2.db.age");
    await mp.uploadPart("runs/r2.db.age", id2, 1, p1);
    await mp.abort("runs/r2.db.age", id2);
    expect(await store.head("runs/r2.db.age")).toBeNull();
    await expect(mp.complete("runs/r2.db.age", id2, [{ partNumber: 1, etag: "x" }])).rejects.toMatchObject({ code: "storage_failed" });
  });

  it("lists under a prefix page by page and deletes", async () => {
    const store = new R2BlobStore(bucket, { binding: "VAULT", prefix: "listing", listPageSize: 2 });
    for (let i = 0; i < 5; i++) await store.put(`c/2026/0${i + 1}/k${i}`, chunks(new Uint8Array(i + 1), 10));
    const all: Array<{ key: string; size: number }> = [];
    for await (const o of store.list("c/2026/0")) all.push(o);
    expect(all.map((o) => o.key).sort()).toEqual(["c/2026/01/k0", "c/2026/02/k1", "c/2026/03/k2", "c/2026/04/k3", "c/2026/05/k4"]);
    expect(all.find((o) => o.key === "c/2026/03/k2")?.size).toBe(3);
    await store.delete("c/2026/03/k2");
    await store.delete("c/2026/03/k2"); // absent: not an error
    expect(await store.head("c/2026/03/k2")).toBeNull();
  });

  it("refuses unsafe keys and per-object locks", async () => {
    const store = new R2BlobStore(bucket, { binding: "VAULT" });
    await expect(store.put("../x", chunks(new Uint8Array(1), 1))).rejects.toMatchObject({ code: "invalid_input" });
    await expect(store.head("/abs")).rejects.toMatchObject({ code: "invalid_input" });
    await expect(store.multipart.create("k", { lockUntil: new Date(), lockMode: "COMPLIANCE" })).rejects.toMatchObject({ code: "invalid_input" });
    expect(() => new R2BlobStore(bucket, { binding: "VAULT", partSize: MiB })).toThrow(/5 MiB/);
  });
});
