// `etcd-vault verify` on a bundle built from a real etcd snapshot encrypted with the age CLI: a good
// bundle passes (as .tar, as a folder, from stdin); a wrong key, a flipped byte, a tampered
// backup.json and a bad etcd trailer each fail with their own reason.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createHash } from "node:crypto";
import { createReadStream, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Backup } from "../src/core/backup-types.js";
import { bundleName } from "../src/core/restore/bundle.js";
import { runVerify } from "../src/entry/verify-command.js";
import { startEtcd } from "./support/etcd.js";
import { ageKeygen, backupFor, makeFacts, mustRun, textSink, writeBundleTar } from "./support/restore-fixtures.js";

let dir: string;
let tar: string;
let folder: string;
let snap: string;
let backup: Backup;
let recipient: string;

async function verify(args: string[], opts: { isTTY?: boolean; stdin?: AsyncIterable<Uint8Array> } = {}) {
  const out = textSink();
  const err = textSink();
  const code = await runVerify(args, { stdout: out.sink, stderr: err.sink, isTTY: opts.isTTY ?? false, stdin: opts.stdin });
  return { code, stdout: out.text(), stderr: err.text() };
}

/** A bundle folder (copy of the good one) that a test may damage. */
function copyFolder(name: string): string {
  const copy = join(dir, name);
  mustRun("cp", ["-a", folder, copy]);
  return copy;
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "verify-cmd-"));
  const etcd = await startEtcd({ name: "master-0" });
  try {
    await etcd.putObjects({ count: 50 });
    snap = join(dir, "snap.db");
    await etcd.snapshotTo(snap);
  } finally {
    await etcd.stop();
  }
  recipient = ageKeygen(join(dir, "key.txt"));
  ageKeygen(join(dir, "other.txt"));
  mustRun("age", ["-r", recipient, "-o", join(dir, "snapshot.db.age"), snap]);
  backup = backupFor(snap, join(dir, "snapshot.db.age"), recipient, {
    facts: makeFacts([
      { name: "master-0", internalIP: "10.0.0.10" },
      { name: "master-1", internalIP: "10.0.0.11" },
      { name: "master-2", internalIP: "10.0.0.12" },
    ]),
  });
  tar = join(dir, "bundle.tar");
  await writeBundleTar(backup, join(dir, "snapshot.db.age"), tar);
  mkdirSync(join(dir, "x"));
  mustRun("tar", ["-xf", tar, "-C", join(dir, "x")]);
  folder = join(dir, "x", bundleName(backup));
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("etcd-vault verify", () => {
  it("accepts a good bundle and prints its facts", async () => {
    const r = await verify([tar, "--identity", join(dir, "key.txt")]);
    expect(r.stderr).toContain("decrypting and checking snapshot.db.age");
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("cluster          prod-a");
    expect(r.stdout).toContain(`backup           ${backup.id} (taken ${backup.createdAt})`);
    expect(r.stdout).toContain("masters          master-0 (10.0.0.10), master-1 (10.0.0.11), master-2 (10.0.0.12) — multi-master restore");
    expect(r.stdout).toContain(`snapshot         OK (${backup.plaintext.size} bytes, sha256 ${backup.plaintext.sha256})`);
    expect(r.stdout).toContain("etcd trailer     OK");
    expect(r.stdout).toMatch(/bundle OK\n$/);
  });

  it("accepts the extracted folder and the tar on stdin, and draws a bar on a terminal", async () => {
    expect((await verify([folder, "-i", join(dir, "key.txt")])).code).toBe(0);
    const piped = await verify(["-", "-i", join(dir, "key.txt")], { stdin: createReadStream(tar, { highWaterMark: 7_000 }), isTTY: true });
    expect(piped.code).toBe(0);
    expect(piped.stderr).toMatch(/\rdecrypting and checking \[#+\] 100%/);
  });

  it("writes the decrypted snapshot with --output only when every check passes", async () => {
    const out = join(dir, "out.db");
    expect((await verify([tar, "-i", join(dir, "key.txt"), "-o", out])).code).toBe(0);
    expect(readFileSync(out).equals(readFileSync(snap))).toBe(true);
    const bad = join(dir, "bad-out.db");
    expect((await verify([tar, "-i", join(dir, "other.txt"), "-o", bad])).code).toBe(1);
    expect(existsSync(bad) || existsSync(`${bad}.partial`)).toBe(false);
  });

  it("an --output it cannot write is one clear line, never a stack trace", async () => {
    for (const [out, says] of [
      [join(dir, "no-such-dir", "x", "out.db"), "does not exist"],
      [dir, "is a directory"],
      ["/proc/version", "cannot write /proc/version.partial"],
    ] as const) {
      const r = await verify([tar, "-i", join(dir, "key.txt"), "-o", out]);
      expect(r.code, out).toBe(1);
      expect(r.stderr).toContain("FAILED:");
      expect(r.stderr).toContain(says);
      expect(r.stderr).not.toMatch(/\n\s+at /);
    }
    expect(existsSync(join(dir, "no-such-dir"))).toBe(false);
  });

  it("fails with a wrong identity", async () => {
    const r = await verify([tar, "--identity", join(dir, "other.txt")]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`FAILED: wrong key: no identity given can decrypt snapshot.db.age (it was encrypted to ${recipient})`);
  });

  it("fails on a flipped byte: first by SHA256SUMS, and by decryption when the sums were forged too", async () => {
    const damaged = copyFolder("flipped");
    const file = join(damaged, "snapshot.db.age");
    const bytes = readFileSync(file);
    bytes.writeUInt8(bytes.readUInt8(bytes.length - 100) ^ 0x01, bytes.length - 100);
    writeFileSync(file, bytes);
    const r = await verify([damaged, "-i", join(dir, "key.txt")]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/FAILED: snapshot\.db\.age does not match SHA256SUMS .* corrupt or was altered/);

    const forged = createHash("sha256").update(bytes).digest("hex");
    writeFileSync(join(damaged, "SHA256SUMS"), `${forged}  snapshot.db.age\n`);
    const record = JSON.parse(readFileSync(join(damaged, "backup.json"), "utf8")) as Backup;
    record.ciphertext.sha256 = forged;
    writeFileSync(join(damaged, "backup.json"), JSON.stringify(record));
    const f = await verify([damaged, "-i", join(dir, "key.txt")]);
    expect(f.code).toBe(1);
    expect(f.stderr).toContain("FAILED: decryption failed:");

    // The same flip inside the .tar.
    const tarBytes = readFileSync(tar);
    const at = tarBytes.indexOf(readFileSync(join(folder, "snapshot.db.age")).subarray(0, 64));
    tarBytes.writeUInt8(tarBytes.readUInt8(at + 1000) ^ 0x01, at + 1000);
    const badTar = join(dir, "flipped.tar");
    writeFileSync(badTar, tarBytes);
    const t = await verify([badTar, "-i", join(dir, "key.txt")]);
    expect(t.code).toBe(1);
    expect(t.stderr).toContain("does not match SHA256SUMS");
  });

  it("fails when backup.json's plaintext hash was tampered with", async () => {
    const tampered = copyFolder("tampered");
    const record = JSON.parse(readFileSync(join(tampered, "backup.json"), "utf8")) as Backup;
    record.plaintext.sha256 = "0".repeat(64);
    writeFileSync(join(tampered, "backup.json"), JSON.stringify(record, null, 2));
    const r = await verify([tampered, "-i", join(dir, "key.txt")]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`FAILED: decrypted snapshot has sha256 ${backup.plaintext.sha256}; backup.json says ${"0".repeat(64)}`);
  });

  it("fails when the etcd trailer does not match the snapshot", async () => {
    // A consistent bundle (sums and record match) around a snapshot whose trailer is wrong.
    const bytes = readFileSync(snap);
    bytes.writeUInt8(bytes.readUInt8(bytes.length - 1) ^ 0xff, bytes.length - 1);
    const badSnap = join(dir, "bad-trailer.db");
    writeFileSync(badSnap, bytes);
    mustRun("age", ["-r", recipient, "-o", join(dir, "bad-trailer.db.age"), badSnap]);
    const b = backupFor(badSnap, join(dir, "bad-trailer.db.age"), recipient);
    const badTar = join(dir, "bad-trailer.tar");
    await writeBundleTar(b, join(dir, "bad-trailer.db.age"), badTar);
    const r = await verify([badTar, "-i", join(dir, "key.txt")]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("FAILED: the snapshot's etcd hash trailer does not match its content");
  });

  it("explains usage errors", async () => {
    expect((await verify([tar])).code).toBe(2);
    expect((await verify(["--bogus"])).code).toBe(2);
    const missing = await verify([join(dir, "nope.tar"), "-i", join(dir, "key.txt")]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/FAILED: .*nope\.tar/);
  });
});
