// The ustar writer against GNU tar (a real `tar` process lists and extracts what we write) and
// against our own streaming reader.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, statSync, writeFileSync, writeSync, ftruncateSync } from "node:fs";
import { randomBytes } from "node:crypto";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { encodeEntryHeaders, tarSize, tarStream, USTAR_MAX_SIZE, type TarEntry } from "../src/core/tar-writer.js";
import { readEntryText, readTar } from "../src/core/tar-reader.js";
import { mustRun, run } from "./support/restore-fixtures.js";

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "tar-writer-"));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function collect(stream: ReadableStream<Uint8Array>): Promise<Buffer> {
  const parts: Uint8Array[] = [];
  const reader = stream.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    parts.push(value);
  }
  return Buffer.concat(parts);
}

function chunked(data: Uint8Array, chunk: number): ReadableStream<Uint8Array> {
  let at = 0;
  return new ReadableStream({
    pull(c) {
      if (at >= data.length) return c.close();
      c.enqueue(data.subarray(at, at + chunk));
      at += chunk;
    },
  });
}

const mtime = new Date("2026-11-20T14:03:05Z");

describe("tar writer", () => {
  it("writes an archive GNU tar lists and extracts byte for byte", async () => {
    const big = randomBytes(300_001);
    const entries: TarEntry[] = [
      { name: "bundle/", mode: 0o755, mtime, size: 0 },
      { name: "bundle/empty", mode: 0o644, mtime, size: 0, body: new Uint8Array(0) },
      { name: "bundle/one-block", mode: 0o644, mtime, size: 512, body: randomBytes(512) },
      { name: "bundle/restore.sh", mode: 0o755, mtime, size: 12, body: new TextEncoder().encode("#!/bin/sh\n:\n") },
      { name: "bundle/big.bin", mode: 0o600, mtime, size: big.length, body: chunked(big, 65_536) },
    ];
    const expected = tarSize(entries);
    const bytes = await collect(tarStream(entries));
    expect(bytes.length).toBe(expected);
    expect(bytes.length % 512).toBe(0);
    const file = join(dir, "a.tar");
    writeFileSync(file, bytes);

    const listing = mustRun("tar", ["--utc", "-tvf", file]).trim().split("\n");
    expect(listing.map((l) => l.split(/\s+/).slice(-1)[0])).toEqual([
      "bundle/", "bundle/empty", "bundle/one-block", "bundle/restore.sh", "bundle/big.bin",
    ]);
    expect(listing[0]).toMatch(/^drwxr-xr-x root\/root\s+0 2026-11-20 14:03 bundle\/$/);
    expect(listing[3]).toMatch(/^-rwxr-xr-x .* 12 2026-11-20 14:03 bundle\/restore\.sh$/);
    expect(listing[4]).toMatch(/^-rw------- .* 300001 /);

    const out = join(dir, "x");
    mustRun("mkdir", ["-p", out]);
    mustRun("tar", ["-xf", file, "-C", out]);
    expect(readFileSync(join(out, "bundle/big.bin")).equals(big)).toBe(true);
    expect(readFileSync(join(out, "bundle/one-block")).equals(Buffer.from((entries[2]!.body as Uint8Array)))).toBe(true);
    expect(statSync(join(out, "bundle/restore.sh")).mode & 0o777).toBe(0o755);
    expect(statSync(join(out, "bundle/empty")).size).toBe(0);
  });

  it("puts long names in the ustar prefix field and refuses what does not fit", async () => {
    const longDir = `${"d".repeat(120)}/${"e".repeat(30)}`;
    const name = `${longDir}/${"f".repeat(90)}.txt`; // 245 bytes
    const entries: TarEntry[] = [{ name, mode: 0o644, mtime, size: 3, body: new TextEncoder().encode("hi\n") }];
    const file = join(dir, "long.tar");
    writeFileSync(file, await collect(tarStream(entries)));
    expect(mustRun("tar", ["-tf", file]).trim()).toBe(name);
    const out = join(dir, "long");
    mustRun("mkdir", ["-p", out]);
    mustRun("tar", ["-xf", file, "-C", out]);
    expect(readFileSync(join(out, name), "utf8")).toBe("hi\n");

    for await (const e of readTar([readFileSync(file)])) expect(e.name).toBe(name);

    expect(() => tarStream([{ name: `${"a/".repeat(150)}x`, mode: 0o644, mtime, size: 0, body: new Uint8Array(0) }])).toThrow(/at most 256/);
    expect(() => tarStream([{ name: `${"z".repeat(101)}`, mode: 0o644, mtime, size: 0, body: new Uint8Array(0) }])).toThrow(/split/);
    expect(() => tarStream([{ name: "../etc/passwd", mode: 0o644, mtime, size: 0, body: new Uint8Array(0) }])).toThrow(/safe/);
  });

  it("fails a streamed entry that is shorter or longer than declared, and cancels the rest", async () => {
    const short: TarEntry[] = [{ name: "s", mode: 0o644, mtime, size: 1000, body: chunked(randomBytes(999), 100) }];
    await expect(collect(tarStream(short))).rejects.toThrow(/1 bytes short/);

    let cancelled = false;
    const later = new ReadableStream<Uint8Array>({ pull: () => undefined, cancel: () => { cancelled = true; } });
    const long: TarEntry[] = [
      { name: "l", mode: 0o644, mtime, size: 1000, body: chunked(randomBytes(1001), 1001) },
      { name: "later", mode: 0o644, mtime, size: 5, body: later },
    ];
    await expect(collect(tarStream(long))).rejects.toThrow(/more than its declared size/);
    expect(cancelled).toBe(true);

    expect(() => tarStream([{ name: "u", mode: 0o644, mtime, size: 3, body: new Uint8Array(2) }])).toThrow(/2 bytes/);
  });

  it("passes body chunks through without copying", async () => {
    const chunks = [randomBytes(4096), randomBytes(1000)];
    let i = 0;
    const body = new ReadableStream<Uint8Array>({ pull: (c) => (i < chunks.length ? c.enqueue(chunks[i++]!) : c.close()) });
    const reader = tarStream([{ name: "p", mode: 0o644, mtime, size: 5096, body }]).getReader();
    const seen: Uint8Array[] = [];
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      seen.push(value);
    }
    expect(seen.includes(chunks[0]!)).toBe(true);
    expect(seen.includes(chunks[1]!)).toBe(true);
  });

  it("streams a large body with flat memory", async () => {
    const chunk = new Uint8Array(1 << 20).fill(7);
    const total = 512 * chunk.length; // 512 MiB
    let sent = 0;
    const body = new ReadableStream<Uint8Array>({
      pull(c) {
        if (sent >= total) return c.close();
        sent += chunk.length;
        c.enqueue(chunk);
      },
    }, { highWaterMark: 0 });
    const entries: TarEntry[] = [{ name: "big", mode: 0o644, mtime, size: total, body }];
    const reader = tarStream(entries).getReader();
    const rssBefore = process.memoryUsage().rss;
    let peak = rssBefore;
    let bytes = 0;
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      bytes += value.length;
      if ((bytes & 0x3ffffff) === 0) peak = Math.max(peak, process.memoryUsage().rss);
    }
    expect(bytes).toBe(tarSize(entries));
    expect(peak - rssBefore).toBeLessThan(64 * 1024 * 1024);
  });

  it("runs in workerd (Miniflare): a Worker streams an archive GNU tar reads", async () => {
    // Bundle a tiny Worker around the writer and reader and run it in the real workerd runtime.
    const { build } = await import("esbuild");
    const { Miniflare } = await import("miniflare");
    const workerSrc = [
      `import { tarStream, tarSize } from ${JSON.stringify(join(import.meta.dirname, "../src/core/tar-writer.ts"))};`,
      `import { readTar } from ${JSON.stringify(join(import.meta.dirname, "../src/core/tar-reader.ts"))};`,
      "export default { async fetch() {",
      "  const body = new ReadableStream({ start(c) { c.enqueue(new Uint8Array(1000).fill(65)); c.enqueue(new Uint8Array(24).fill(66)); c.close(); } });",
      "  const entries = [{ name: 'top/', mode: 0o755, mtime: new Date(0), size: 0 }, { name: 'top/a.txt', mode: 0o644, mtime: new Date(0), size: 1024, body }];",
      "  const [out, check] = tarStream(entries).tee();",
      "  const names = []; for await (const e of readTar(check)) { names.push(e.name); for await (const _ of e.body) {} }",
      "  return new Response(out, { headers: { 'x-size': String(tarSize(entries)), 'x-names': names.join(',') } });",
      "} };",
    ].join("\n");
    const bundled = await build({ stdin: { contents: workerSrc, resolveDir: dir, loader: "ts" }, bundle: true, format: "esm", write: false, logLevel: "silent" });
    const mf = new Miniflare({ modules: true, script: bundled.outputFiles[0]!.text, compatibilityDate: "2025-01-01" });
    try {
      const r = await mf.dispatchFetch("http://localhost/");
      const bytes = Buffer.from(await r.arrayBuffer());
      expect(r.headers.get("x-names")).toBe("top/,top/a.txt");
      expect(bytes.length).toBe(Number(r.headers.get("x-size")));
      const file = join(dir, "workerd.tar");
      writeFileSync(file, bytes);
      expect(mustRun("tar", ["--utc", "-tvf", file])).toMatch(/ 1024 1970-01-01 00:00 top\/a\.txt\n$/);
    } finally {
      await mf.dispose();
    }
  });

  it("keeps core runtime-neutral: no node:* imports, no Buffer", () => {
    for (const f of ["tar-writer.ts", "tar-reader.ts", "restore/bundle.ts", "restore/render-restore-md.ts", "restore/render-restore-sh.ts", "restore/restore-view.ts"]) {
      const src = readFileSync(join(import.meta.dirname, "../src/core", f), "utf8");
      expect(src, f).not.toMatch(/from "node:|require\(|\bBuffer\b|process\./);
    }
  });

  it("computes the exact size for any body length", async () => {
    for (const n of [0, 1, 511, 512, 513, 1023, 1024, 65_537]) {
      const entries: TarEntry[] = [
        { name: "top/", mode: 0o755, mtime, size: 0 },
        { name: "top/f", mode: 0o644, mtime, size: n, body: chunked(randomBytes(n), 777) },
      ];
      expect((await collect(tarStream(entries))).length).toBe(tarSize(entries));
    }
  });

  it("describes sizes beyond 8 GiB with a pax record GNU tar understands", () => {
    const size = USTAR_MAX_SIZE + 1 + 12_345; // 8 GiB + 12345
    const entry: TarEntry = { name: "top/snapshot.db.age", mode: 0o644, mtime, size, body: new Uint8Array(0) };
    const headers = encodeEntryHeaders(entry);
    expect(headers.length).toBe(3 * 512); // pax header, pax records, ustar header
    expect(tarSize([entry])).toBe(headers.length + size + ((512 - (size % 512)) % 512) + 1024);
    // A sparse file holds the body, so GNU tar seeks over 8 GiB of zeros instead of reading them.
    const file = join(dir, "huge.tar");
    const fd = openSync(file, "w");
    writeSync(fd, headers);
    ftruncateSync(fd, tarSize([entry]));
    closeSync(fd);
    const r = run("tar", ["-tvf", file]);
    expect(r.stderr).toBe("");
    expect(r.stdout).toMatch(new RegExp(` ${size} .* top/snapshot\\.db\\.age\\n$`));
    rmSync(file);
  });

  it("reads back with the streaming reader, which checks header checksums", async () => {
    const entries: TarEntry[] = [
      { name: "b/", mode: 0o755, mtime, size: 0 },
      { name: "b/SHA256SUMS", mode: 0o644, mtime, size: 4, body: new TextEncoder().encode("abc\n") },
    ];
    const bytes = await collect(tarStream(entries));
    const names: string[] = [];
    for await (const e of readTar([bytes.subarray(0, 700), bytes.subarray(700)])) {
      names.push(`${e.type}:${e.name}`);
      if (e.type === "file") expect(await readEntryText(e)).toBe("abc\n");
    }
    expect(names).toEqual(["directory:b/", "file:b/SHA256SUMS"]);

    const bad = Buffer.from(bytes);
    bad[600] = bad[600]! ^ 0xff; // inside the second header's name
    await expect(async () => {
      for await (const e of readTar([bad])) void e;
    }).rejects.toThrow(/checksum/);
    // GNU tar agrees that the archive is damaged.
    const file = join(dir, "bad.tar");
    writeFileSync(file, bad);
    expect(run("tar", ["-tf", file]).code).not.toBe(0);
  });
});
