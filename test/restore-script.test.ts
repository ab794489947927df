// THE REAL RESTORE: a real etcd (Debian 3.4) runs on a temporary node root, its snapshot goes
// through the age CLI into a bundle built by our code (tar writer → GNU tar x), etcd moves on
// (more keys, deletions) and stops, then restore.sh from the bundle puts it back. etcd started on
// the restored data must hold exactly the keys of backup time.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { spawn } from "node:child_process";
import { appendFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { createHash } from "node:crypto";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import type { Backup } from "../src/core/backup-types.js";
import { bundleName } from "../src/core/restore/bundle.js";
import { renderRestoreSh } from "../src/core/restore/render-restore-sh.js";
import { freePort } from "./support/etcd.js";
import {
  ageKeygen, backupFor, etcdctl, etcdKeys, makeFacts, mustRun, restoreEnv, run, runEtcd, writeBundleTar,
} from "./support/restore-fixtures.js";

const MANIFEST = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: etcd\n  namespace: kube-system\n# test manifest\n";
const BEFORE = ["/registry/configmaps/default/alpha", "/registry/configmaps/default/beta", "/registry/secrets/default/doomed"];

let root: string;
let work: string;
let bundleDir: string;
let backup: Backup;
const paths = {} as { manifests: string; manifest: string; pki: string; data: string; parent: string };

const nodeEnv = (extra: Record<string, string> = {}): NodeJS.ProcessEnv => restoreEnv(paths, extra);

const restoreSh = (dir: string, args: string[], extra: Record<string, string> = {}) =>
  run("bash", [join(dir, "restore.sh"), "--allow-non-root", ...args], { env: nodeEnv(extra) });

/** Every file and folder of the node root and the bundle folder, with size, mtime and content hash. */
function nodeState(): string {
  const out: string[] = [];
  const walk = (dir: string) => {
    for (const name of readdirSync(dir).sort()) {
      const p = join(dir, name);
      const st = statSync(p);
      if (st.isDirectory()) {
        out.push(`${relative(root, p)}/`);
        walk(p);
      } else {
        const hash = createHash("sha256").update(readFileSync(p)).digest("hex").slice(0, 16);
        out.push(`${relative(root, p)} ${st.size} ${st.mtimeMs} ${hash}`);
      }
    }
  };
  walk(join(root, "etc"));
  walk(join(root, "var"));
  walk(bundleDir);
  return out.join("\n");
}

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), "restore-node-"));
  work = join(root, "work");
  paths.manifests = join(root, "etc/kubernetes/manifests");
  paths.manifest = join(paths.manifests, "etcd.yaml");
  paths.pki = join(root, "etc/kubernetes/pki/etcd");
  paths.data = join(root, "var/lib/etcd");
  paths.parent = join(root, "var/lib");
  for (const d of [work, paths.manifests, paths.pki, paths.data]) mkdirSync(d, { recursive: true });
  writeFileSync(paths.manifest, MANIFEST);
  writeFileSync(join(paths.manifests, "kube-apiserver.yaml"), "# other static pod\n");

  // The live etcd of "master-1", on the node's data dir.
  const etcd = await runEtcd(paths.data, "master-1", join(work, "etcd-live.log"));
  try {
    for (const k of BEFORE) etcdctl(etcd.clientUrl, "put", k, `value of ${k}`);
    const snap = join(work, "snap.db");
    etcdctl(etcd.clientUrl, "snapshot", "save", snap);
    // Debian's etcdctl 3.4 keeps the server's 32-byte SHA-256 trailer in the saved file, which is
    // then byte for byte what Deckhouse's `snapshot pipe` streams. Append one only if it is missing.
    const bytes = readFileSync(snap);
    const hasTrailer = bytes.length % 512 === 32 &&
      createHash("sha256").update(bytes.subarray(0, -32)).digest().equals(bytes.subarray(-32));
    if (!hasTrailer) appendFileSync(snap, createHash("sha256").update(bytes).digest());
    expect(hasTrailer).toBe(true);

    const recipient = ageKeygen(join(work, "key.txt"));
    ageKeygen(join(work, "other-key.txt"));
    mustRun("age", ["-r", recipient, "-o", join(work, "snapshot.db.age"), snap]);
    const masters = ["master-0", "master-1", "master-2"].map((name) => ({ name, internalIP: "127.0.0.1" }));
    backup = backupFor(snap, join(work, "snapshot.db.age"), recipient, {
      etcd: { revision: null, keys: BEFORE.length, version: "3.4.23" },
      facts: makeFacts(masters, { etcdVersion: "3.4.23" }),
    });
    const tar = join(work, "bundle.tar");
    const declared = await writeBundleTar(backup, join(work, "snapshot.db.age"), tar);
    expect(statSync(tar).size).toBe(declared);
    mkdirSync(join(root, "dl"));
    mustRun("tar", ["-xf", tar, "-C", join(root, "dl")]);
    bundleDir = join(root, "dl", bundleName(backup));

    // Life goes on after the backup: a new key, a deleted one.
    etcdctl(etcd.clientUrl, "put", "/registry/configmaps/default/later", "written after the backup");
    etcdctl(etcd.clientUrl, "del", "/registry/secrets/default/doomed");
    expect(etcdKeys(etcd.clientUrl)).toEqual([...BEFORE.slice(0, 2), "/registry/configmaps/default/later"].sort());
  } finally {
    await etcd.stop();
  }
});

afterAll(() => {
  if (root) rmSync(root, { recursive: true, force: true });
});

describe("restore.sh", () => {
  it("prints its plan and changes nothing without --yes", () => {
    const before = nodeState();
    const r = restoreSh(bundleDir, ["--identity", join(work, "key.txt"), "--node", "master-1"]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("this node:     master-1, peer URL https://127.0.0.1:2380 (chosen by --node)");
    expect(r.stdout).toContain("restore tool:  /usr/bin/etcdctl 3.4.23 (backup: etcd 3.4.23)");
    expect(r.stdout).toContain(`stop etcd: move ${paths.manifest}`);
    expect(r.stdout).toContain(`copy ${paths.data}/member to ${paths.parent}/deckhouse-etcd-backup-`);
    expect(r.stdout).toContain("this cluster has 3 masters");
    expect(r.stdout).toContain("Nothing was changed. Run again with --yes");
    expect(nodeState()).toBe(before);
  });

  it("refuses to guess the master on a multi-master backup when the hostname matches none", () => {
    const before = nodeState();
    const r = restoreSh(bundleDir, ["--identity", join(work, "key.txt"), "--yes"]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/none of the masters in the backup \(master-0 master-1 master-2\); pass --node NAME/);
    expect(nodeState()).toBe(before);
  });

  it("fails with a wrong identity before touching anything", () => {
    const before = nodeState();
    const r = restoreSh(bundleDir, ["--identity", join(work, "other-key.txt"), "--node", "master-1", "--yes"]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain("age could not decrypt snapshot.db.age");
    expect(r.stdout + r.stderr).toContain("Nothing on this node was changed.");
    expect(nodeState()).toBe(before);
  });

  it("fails the SHA256SUMS check on a corrupted ciphertext", () => {
    const bad = join(root, "dl-bad");
    mustRun("cp", ["-a", bundleDir, bad]);
    const file = join(bad, "snapshot.db.age");
    const bytes = readFileSync(file);
    bytes.writeUInt8(bytes.readUInt8(Math.floor(bytes.length / 2)) ^ 0x01, Math.floor(bytes.length / 2));
    writeFileSync(file, bytes);
    const before = nodeState();
    const r = restoreSh(bad, ["--identity", join(work, "key.txt"), "--node", "master-1", "--yes"]);
    expect(r.code).not.toBe(0);
    expect(r.stdout).toContain("snapshot.db.age: FAILED");
    expect(r.stderr).toContain("snapshot.db.age does not match SHA256SUMS");
    expect(nodeState()).toBe(before);
    rmSync(bad, { recursive: true });
  });

  it("refuses a minor version mismatch without --force and only warns on a patch mismatch", () => {
    const other = join(root, "dl-version");
    mustRun("cp", ["-a", bundleDir, other]);
    const withVersion = (version: string) => {
      const b = { ...backup, etcd: { ...backup.etcd, version }, facts: { ...backup.facts!, etcdVersion: version } };
      writeFileSync(join(other, "restore.sh"), renderRestoreSh(b), { mode: 0o755 });
    };
    const before = nodeState();
    withVersion("3.5.16");
    const r = restoreSh(other, ["--identity", join(work, "key.txt"), "--node", "master-1", "--yes"]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain("/usr/bin/etcdctl is 3.4.23 but the backup is from etcd 3.5.16; get a 3.5.x tool");
    withVersion("3.4.20");
    const p = restoreSh(other, ["--identity", join(work, "key.txt"), "--node", "master-1"]);
    expect(p.code).toBe(0);
    expect(p.stderr).toContain("patch releases differ");
    expect(nodeState()).toBe(before);
    rmSync(other, { recursive: true });
  });

  it("checks free space and, on a single-master backup, restores as its master whatever the hostname", () => {
    const other = join(root, "dl-preflight");
    mustRun("cp", ["-a", bundleDir, other]);
    const before = nodeState();
    const huge = { ...backup, plaintext: { ...backup.plaintext, size: 2 ** 50 } };
    writeFileSync(join(other, "restore.sh"), renderRestoreSh(huge), { mode: 0o755 });
    const r = restoreSh(other, ["--identity", join(work, "key.txt"), "--node", "master-1"]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/not enough space on the filesystem of .*: need \d+ bytes, have \d+/);

    const lone = { ...backup, facts: makeFacts([{ name: "not-this-host", internalIP: "127.0.0.1" }]) };
    writeFileSync(join(other, "restore.sh"), renderRestoreSh(lone), { mode: 0o755 });
    const p = restoreSh(other, ["--identity", join(work, "key.txt")]);
    expect(p.code).toBe(0);
    expect(p.stderr).toMatch(/this host \(.*\) is not not-this-host, the only master in the backup; restoring as not-this-host/);
    expect(p.stdout).toContain("this node:     not-this-host, peer URL https://127.0.0.1:2380 (chosen by only master)");
    expect(nodeState()).toBe(before);
    rmSync(other, { recursive: true });
  });

  it("restores the snapshot: etcd comes back with exactly the keys of backup time", async () => {
    const oldDb = readFileSync(join(paths.data, "member/snap/db"));
    const r = restoreSh(bundleDir, ["--identity", join(work, "key.txt"), "--node", "master-1", "--yes", "--no-wait"]);
    expect(r.stderr).not.toMatch(/WARNING|ERROR/); // etcdctl logs its progress as JSON on stderr
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("size, sha256 and etcd hash trailer OK");
    expect(r.stdout).toContain("Restored etcd on master-1");

    // The manifest is back, unchanged; the old data and the manifest are kept in a new folder.
    expect(readFileSync(paths.manifest, "utf8")).toBe(MANIFEST);
    const kept = readdirSync(paths.parent).filter((n) => n.startsWith("deckhouse-etcd-backup-"));
    expect(kept).toHaveLength(1);
    expect(kept[0]).toMatch(/^deckhouse-etcd-backup-\d{8}T\d{6}Z(-\d+)?$/);
    const keptDir = join(paths.parent, kept[0]!);
    expect(readFileSync(join(keptDir, "member/snap/db")).equals(oldDb)).toBe(true);
    expect(readFileSync(join(keptDir, "etcd.yaml"), "utf8")).toBe(MANIFEST);
    // No leftovers: staging folder, replaced member, decrypted snapshot.
    expect(readdirSync(paths.data)).toEqual(["member"]);
    expect(readdirSync(bundleDir).sort()).toEqual(["RESTORE.md", "SHA256SUMS", "backup.json", "restore.sh", "snapshot.db.age"]);

    const etcd = await runEtcd(paths.data, "master-1", join(work, "etcd-restored.log"));
    try {
      expect(etcdKeys(etcd.clientUrl)).toEqual([...BEFORE].sort());
      expect(etcdctl(etcd.clientUrl, "get", "/registry/secrets/default/doomed", "--print-value-only").trim())
        .toBe("value of /registry/secrets/default/doomed");
      const members = etcdctl(etcd.clientUrl, "member", "list");
      expect(members).toMatch(/started, master-1, https:\/\/127\.0\.0\.1:2380,/);
      expect(members.trim().split("\n")).toHaveLength(1);
    } finally {
      await etcd.stop();
    }
  });

  it("with --snapshot of a trailer-less db and --force, restores with --skip-hash-check and waits for health", async () => {
    // A snapshot without etcd's trailer (what copying member/snap/db gives); it differs from the
    // backup record, so --force is needed. This run also waits for health: the test plays kubelet
    // and starts etcd when the manifest comes back.
    const bytes = readFileSync(join(work, "snap.db"));
    const stripped = join(work, "stripped.db");
    writeFileSync(stripped, bytes.subarray(0, -32));
    const port = await freePort();
    // Folders of the coming seconds already exist: the script must pick a new name, not reuse one.
    const stamp = (d: Date) => d.toISOString().replace(/\.\d{3}Z$/, "Z").replace(/[-:]/g, "");
    const taken = [0, 1, 2].map((s) => `deckhouse-etcd-backup-${stamp(new Date(Date.now() + s * 1000))}`);
    const created = taken.filter((t) => !existsSync(join(paths.parent, t)));
    for (const t of created) mkdirSync(join(paths.parent, t));
    const child = spawn("bash", [join(bundleDir, "restore.sh"), "--allow-non-root", "--snapshot", stripped, "--node", "master-1", "--yes", "--force"], {
      env: nodeEnv({ ETCD_ENDPOINT: `http://127.0.0.1:${port}`, ETCD_HEALTH_TIMEOUT: "60" }),
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += String(d)));
    child.stderr.on("data", (d) => (stderr += String(d)));
    const exited = new Promise<number>((resolve) => child.on("exit", (code) => resolve(code ?? -1)));

    // kubelet: once the manifest is back and the script waits, start etcd from it.
    let gone = false;
    void exited.then(() => (gone = true));
    for (let i = 0; i < 300 && !gone && !stdout.includes("==> waiting for"); i++) await new Promise((r) => setTimeout(r, 100));
    expect(stdout, stderr).toContain("==> waiting for");
    expect(existsSync(paths.manifest)).toBe(true);
    const etcd = await runEtcd(paths.data, "master-1", join(work, "etcd-kubelet.log"), port);
    try {
      const code = await exited;
      expect(stderr).toContain("the snapshot has no etcd hash trailer; restoring with --skip-hash-check");
      expect(stderr).toContain("snapshot differs from the backup record; going on because of --force");
      expect(code).toBe(0);
      expect(stdout).toContain("etcd is healthy");
      expect(etcdKeys(etcd.clientUrl)).toEqual([...BEFORE].sort());
    } finally {
      await etcd.stop();
    }
    const made = readdirSync(paths.parent).filter((n) => n.startsWith("deckhouse-etcd-backup-") && /-\d+$/.test(n));
    expect(made).toHaveLength(1);
    expect(taken.some((t) => made[0]!.startsWith(`${t}-`))).toBe(true);
    expect(existsSync(join(paths.parent, made[0]!, "member/snap/db"))).toBe(true);
    for (const t of created) expect(readdirSync(join(paths.parent, t))).toEqual([]);
  });
});
