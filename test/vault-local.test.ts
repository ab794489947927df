import { execFile, spawnSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { VaultError } from "../src/core/errors.js";
import type { BlobInfo, BlobStore } from "../src/core/ports.js";
import { parseStorageUrl, TEMP_SUFFIX } from "../src/core/storage-url.js";
import { LocalBlobStore } from "../src/vault/local-store.js";
import { openBlobStore } from "../src/vault/open-store.js";
import { chunks, collect, failure, readAll } from "./helpers/blobs.js";
import { S3BlobStore } from "../src/vault/s3-store.js";

const REPO = fileURLToPath(new URL("..", import.meta.url));


/** Every file under `dir`, relative, recursively. */
function filesUnder(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((d) => d.isFile())
    .map((d) => join(d.parentPath ?? d.path, d.name).slice(dir.length + 1))
    .sort();
}

const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

let work: string;
let root: string;
let store: LocalBlobStore;

beforeEach(() => {
  work = mkdtempSync(join(tmpdir(), "vault-local-"));
  root = join(work, "vault");
  store = new LocalBlobStore(root);
});
afterEach(() => {
  rmSync(work, { recursive: true, force: true });
});

describe("LocalBlobStore round trips", () => {
  it.each([0, 1, 3 * 1024 * 1024 + 7])("stores and reads back %i bytes", async (n) => {
    const data = randomBytes(n);
    const key = `c1/2026/01/05/b${n}.db.age`;
    expect(await store.put(key, chunks(data, 100_003))).toEqual({ key, size: n });
    expect(await store.head(key)).toEqual({ key, size: n });
    const got = await store.get(key);
    expect(got.size).toBe(n);
    expect(got.totalSize).toBe(n);
    expect(sha(await readAll(got.body))).toBe(sha(data));
    expect(filesUnder(root)).toEqual([key]);
  });

  it("replaces an object atomically and leaves no temp files", async () => {
    await store.put("k", chunks(Buffer.from("first version")));
    await store.put("k", chunks(Buffer.from("second")));
    expect((await readAll((await store.get("k")).body)).toString()).toBe("second");
    expect(filesUnder(root)).toEqual(["k"]);
  });

  it("goes through openBlobStore for a file:// target", async () => {
    const s: BlobStore = openBlobStore(parseStorageUrl(`file://${root}`, "url"));
    expect(s.kind).toBe("file");
    await s.put("x.json", chunks(Buffer.from("{}")));
    expect(readFileSync(join(root, "x.json"), "utf8")).toBe("{}");
  });

  it("openBlobStore builds an S3 store for s3:// and refuses r2:// in the Node edition", () => {
    const s3 = openBlobStore(parseStorageUrl("s3://bucket/pre?endpoint=http://127.0.0.1:1&checksums=false", "url"));
    expect(s3).toBeInstanceOf(S3BlobStore);
    expect((s3 as S3BlobStore).prefix).toBe("pre");
    (s3 as S3BlobStore).destroy();
    let err: unknown;
    try {
      openBlobStore(parseStorageUrl("r2://VAULT/etcd", "url"));
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(VaultError);
    expect((err as Error).message).toMatch(/R2 is only available in the Worker edition/);
  });
});

describe("LocalBlobStore ranges, head, delete, list", () => {
  const data = Buffer.from("0123456789abcdefghij");
  beforeEach(async () => {
    await store.put("r.bin", chunks(data, 3));
  });

  it("reads inclusive ranges, clamping the end like HTTP", async () => {
    const a = await store.get("r.bin", { start: 5, end: 9 });
    expect([a.size, a.totalSize, (await readAll(a.body)).toString()]).toEqual([5, 20, "56789"]);
    const b = await store.get("r.bin", { start: 15 });
    expect([b.size, (await readAll(b.body)).toString()]).toEqual([5, "fghij"]);
    const c = await store.get("r.bin", { start: 18, end: 1000 });
    expect([c.size, (await readAll(c.body)).toString()]).toEqual([2, "ij"]);
    const d = await store.get("r.bin", { start: 0, end: 0 });
    expect((await readAll(d.body)).toString()).toBe("0");
  });

  it("refuses unsatisfiable or malformed ranges and reports missing objects", async () => {
    expect((await failure(store.get("r.bin", { start: 20 }))).code).toBe("invalid_input");
    expect((await failure(store.get("r.bin", { start: 5, end: 4 }))).code).toBe("invalid_input");
    expect((await failure(store.get("r.bin", { start: -1 }))).code).toBe("invalid_input");
    expect((await failure(store.get("nope.bin"))).code).toBe("not_found");
    expect((await failure(store.get("r.bin/below"))).code).toBe("not_found");
  });

  it("reads a large range in bounded chunks and can be cancelled", async () => {
    await store.put("big", chunks(randomBytes(2 * 1024 * 1024)));
    const got = await store.get("big");
    const reader = got.body.getReader();
    const first = await reader.read();
    expect(first.value!.length).toBeLessThanOrEqual(256 * 1024);
    await reader.cancel();
  });

  it("heads, deletes (idempotently) and lists by prefix in key order", async () => {
    for (const k of ["c1/2026/01/05/a.json", "c1/2026/01/05/a.db.age", "c1/2026/01/06/b.json", "c10/x", "c1.txt", "c2/y"]) {
      await store.put(k, chunks(Buffer.from(k)));
    }
    // A crashed put leaves a temp file: never listed.
    writeFileSync(join(root, "c1", "2026", "01", "05", `.a.json.123${TEMP_SUFFIX}`), "partial");
    expect((await collect(store.list("c1/"))).map((x) => x.key)).toEqual([
      "c1/2026/01/05/a.db.age",
      "c1/2026/01/05/a.json",
      "c1/2026/01/06/b.json",
    ]);
    // A plain string prefix, as in S3: "c1" matches c1.txt, c1/… and c10/….
    expect((await collect(store.list("c1"))).map((x) => x.key)).toEqual([
      "c1.txt",
      "c1/2026/01/05/a.db.age",
      "c1/2026/01/05/a.json",
      "c1/2026/01/06/b.json",
      "c10/x",
    ]);
    expect((await collect(store.list("c1/2026/01/0"))).length).toBe(3);
    expect(await collect(store.list("nothing/here/"))).toEqual([]);
    const all = await collect(store.list(""));
    expect(all.map((x) => x.key)).toEqual([...all.map((x) => x.key)].sort());
    expect(all.find((x) => x.key === "c10/x")).toEqual({ key: "c10/x", size: 5 });

    expect(await store.head("c1/2026/01/06/b.json")).toEqual({ key: "c1/2026/01/06/b.json", size: 20 });
    await store.delete("c1/2026/01/06/b.json");
    expect(await store.head("c1/2026/01/06/b.json")).toBeNull();
    await store.delete("c1/2026/01/06/b.json");
    await store.delete("never/existed");
    expect(await store.head("c1")).toBeNull(); // a directory is not an object
  });
});

describe("LocalBlobStore part uploads", () => {
  it("assembles the parts the etags name: a part uploaded twice never mixes, stray files go", async () => {
    const id = await store.multipart!.create("c/m.db.age");
    const one = await store.multipart!.uploadPart("c/m.db.age", id, 1, Buffer.from("first-"));
    const loser = await store.multipart!.uploadPart("c/m.db.age", id, 2, Buffer.from("LOSER!"));
    const two = await store.multipart!.uploadPart("c/m.db.age", id, 2, Buffer.from("second"));
    expect(loser.etag).not.toBe(two.etag);
    await store.multipart!.complete("c/m.db.age", id, [
      { partNumber: 1, etag: one.etag },
      { partNumber: 2, etag: two.etag },
    ]);
    expect((await readAll((await store.get("c/m.db.age")).body)).toString()).toBe("first-second");
    expect(filesUnder(root).filter((f) => f.includes(".part"))).toEqual([]);
    // An etag of another form is refused; one of the untagged form (a part written before this
    // naming, an upload in flight across an upgrade) is read from its untagged file.
    const id2 = await store.multipart!.create("c/n.db.age");
    await expect(store.multipart!.complete("c/n.db.age", id2, [{ partNumber: 1, etag: "1:5:zz" }])).rejects.toThrow(/not an etag/);
    writeFileSync(join(root, "c", `.n.db.age.${id2}.part1${TEMP_SUFFIX}`), "older");
    await store.multipart!.complete("c/n.db.age", id2, [{ partNumber: 1, etag: "1:5" }]);
    expect((await readAll((await store.get("c/n.db.age")).body)).toString()).toBe("older");
  });
});

describe("LocalBlobStore refuses keys that escape the root", () => {
  it.each(["../outside", "a/../../outside", "/etc/passwd", "a\\..\\b", "a\0b", "a//b", "", "a/"])("%j", async (key) => {
    const e1 = await failure(store.put(key, chunks(Buffer.from("x"))));
    expect(e1.code).toBe("invalid_input");
    expect((await failure(store.get(key))).code).toBe("invalid_input");
    expect((await failure(store.head(key))).code).toBe("invalid_input");
    expect((await failure(store.delete(key))).code).toBe("invalid_input");
    expect(readdirSync(work)).toEqual([]); // not even the root was created
  });

  it("refuses an escaping list prefix", async () => {
    await expect(collect(store.list("../"))).rejects.toMatchObject({ code: "invalid_input" });
  });
});

describe("LocalBlobStore failures leave nothing behind", () => {
  it("a root below a regular file (ENOTDIR) fails clearly — even as root", async () => {
    writeFileSync(join(work, "file"), "I am a file");
    const s = new LocalBlobStore(join(work, "file", "vault"));
    const e = await failure(s.put("c/a.db.age", chunks(Buffer.from("data"))));
    expect(e.code).toBe("storage_failed");
    expect(e.message).toContain("ENOTDIR");
    expect(e.message).toContain(join(work, "file", "vault", "c"));
    expect(e.message).toContain("'c/a.db.age'");
    expect(filesUnder(work)).toEqual(["file"]);
  });

  it("a root under /proc or behind a dangling symlink fails at once (Node's recursive mkdir loops there forever)", async () => {
    symlinkSync(join(work, "nowhere"), join(work, "dangling"));
    for (const dir of ["/proc/etcd-vault-test", join(work, "dangling", "vault")]) {
      const s = new LocalBlobStore(dir);
      const t0 = Date.now();
      const put = failure(s.put("c/a.db.age", chunks(Buffer.from("data"))));
      const e = await Promise.race([put, new Promise<never>((_, no) => setTimeout(() => no(new Error(`put under ${dir} did not end`)), 5000))]);
      expect(e.code).toBe("storage_failed");
      expect(e.message).toContain("ENOENT");
      expect(Date.now() - t0).toBeLessThan(5000);
      const part = await s.multipart!.uploadPart("c/b.db.age", await s.multipart!.create("c/b.db.age"), 1, new Uint8Array(8)).then(
        () => null,
        (x: unknown) => x,
      );
      expect(part).toBeInstanceOf(Error);
    }
    expect(existsSync(join(work, "nowhere"))).toBe(false);
  });

  it("a read-only directory fails clearly (as an unprivileged user: root ignores mode bits)", async () => {
    mkdirSync(root);
    chmodSync(root, 0o555);
    chmodSync(work, 0o755);
    let outcome: { ok?: boolean; code?: string; message?: string };
    const helper = fileURLToPath(new URL("./fixtures/local-put.mts", import.meta.url));
    if (process.getuid?.() === 0) {
      // The service runs as a non-root user (deploy/Dockerfile); so does this write.
      const r = spawnSync(process.execPath, ["--import", "tsx", helper, root], { encoding: "utf8" });
      expect(r.status, r.stderr).toBe(0);
      outcome = JSON.parse(r.stdout.trim().split("\n").pop()!);
    } else {
      const e = await failure(store.put("a.bin", chunks(Buffer.from("x"))));
      outcome = { code: e.code, message: e.message };
    }
    expect(outcome.code).toBe("storage_failed");
    expect(outcome.message).toContain("EACCES");
    expect(outcome.message).toContain(root);
    chmodSync(root, 0o755);
    expect(filesUnder(root)).toEqual([]);
  });

  it("a source that throws mid-way: storage_failed, no temp file, the previous object intact", async () => {
    await store.put("c/obj", chunks(Buffer.from("previous good version")));
    async function* broken() {
      yield randomBytes(100_000);
      yield randomBytes(100_000);
      throw new Error("exec stream reset by peer");
    }
    const e = await failure(store.put("c/obj", broken()));
    expect(e.code).toBe("storage_failed");
    expect(e.message).toContain("exec stream reset by peer");
    expect(e.message).toContain("'c/obj'");
    expect(filesUnder(root)).toEqual(["c/obj"]);
    expect((await readAll((await store.get("c/obj")).body)).toString()).toBe("previous good version");
  });

  it("a source failing with a VaultError keeps its code (e.g. snapshot_corrupt)", async () => {
    let finalized = false;
    async function* corrupt() {
      try {
        yield Buffer.from("abc");
        throw new VaultError("snapshot_corrupt", "trailer mismatch");
      } finally {
        finalized = true;
      }
    }
    const e = await failure(store.put("c/x", corrupt()));
    expect(e.code).toBe("snapshot_corrupt");
    expect(finalized).toBe(true);
    expect(filesUnder(root)).toEqual([]);
  });

  it("an aborted put: cancelled, no temp file, the source is told to stop", async () => {
    const ac = new AbortController();
    let finalized = false;
    async function* slow() {
      try {
        for (let i = 0; ; i++) {
          if (i === 3) ac.abort();
          yield Buffer.alloc(1000, i);
        }
      } finally {
        finalized = true;
      }
    }
    const e = await failure(store.put("c/y", slow(), { signal: ac.signal }));
    expect(e.code).toBe("cancelled");
    await new Promise((r) => setTimeout(r, 10));
    expect(finalized).toBe(true);
    expect(filesUnder(root)).toEqual([]);
  });

  it("a full disk (EFBIG from RLIMIT_FSIZE, which binds root too): clear error, no partial file", async () => {
    mkdirSync(root, { recursive: true });
    const script = `
      import { LocalBlobStore } from ${JSON.stringify(join(REPO, "src/vault/local-store.ts"))};
      const store = new LocalBlobStore(${JSON.stringify(root)});
      async function* data() { for (let i = 0; i < 64; i++) yield new Uint8Array(64 * 1024).fill(i); }
      try { await store.put("c/big.db.age", data()); console.log(JSON.stringify({ ok: true })); }
      catch (e) { console.log(JSON.stringify({ code: e.code, message: e.message })); }
    `;
    // ulimit -f counts 1 KiB blocks: writes past 1 MiB fail with EFBIG (Node ignores SIGXFSZ).
    const { stdout } = await promisify(execFile)(
      "bash",
      ["-c", `ulimit -f 1024; exec "$0" --import tsx --input-type=module -e "$1"`, process.execPath, script],
      { cwd: REPO },
    );
    const out = JSON.parse(stdout.trim().split("\n").pop()!) as { code: string; message: string };
    expect(out.code).toBe("storage_failed");
    expect(out.message).toContain("EFBIG");
    expect(out.message).toContain("'c/big.db.age'");
    expect(filesUnder(root)).toEqual([]);
  });

  it("concurrent puts of one key never interleave", async () => {
    const a = Buffer.alloc(3 * 1024 * 1024, 0xaa);
    const b = Buffer.alloc(3 * 1024 * 1024, 0xbb);
    await Promise.all([store.put("k", chunks(a, 4096)), store.put("k", chunks(b, 4096))]);
    const got = await readAll((await store.get("k")).body);
    expect([sha(a), sha(b)]).toContain(sha(got));
    expect(filesUnder(root)).toEqual(["k"]);
  });
});
