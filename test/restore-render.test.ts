// RESTORE.md and restore.sh rendered for a single-master, a three-master and a fact-less backup:
// the real node names and addresses land in the right commands, missing facts become visible
// placeholders, and the script passes a real shellcheck.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { renderRestoreMd } from "../src/core/restore/render-restore-md.js";
import { renderRestoreSh } from "../src/core/restore/render-restore-sh.js";
import { bundleEntries, bundleName } from "../src/core/restore/bundle.js";
import { makeBackup, makeFacts, run } from "./support/restore-fixtures.js";

const single = makeBackup();
const three = makeBackup({
  etcd: { revision: 99, keys: 10, version: "3.5.16" },
  facts: makeFacts(
    [
      { name: "master-0", internalIP: "10.0.0.10" },
      { name: "master-1", internalIP: "10.0.0.11" },
      { name: "master-2", internalIP: "10.0.0.12" },
    ],
    { etcdVersion: "3.5.16" },
  ),
});
const bare = makeBackup({ facts: null, etcd: { revision: null, keys: null, version: null }, recipients: [] });

/** Body of the `## N.` section of RESTORE.md. */
function section(md: string, n: number): string {
  const start = md.indexOf(`\n## ${n}. `);
  expect(start, `section ${n}`).toBeGreaterThan(0);
  const end = md.indexOf("\n## ", start + 1);
  return md.slice(start, end < 0 ? undefined : end);
}

/** No JS value leaked into the text ("/dev/null" in a shell redirect is fine). */
const expectNoLeaks = (text: string) => expect(text.replaceAll("/dev/null", "")).not.toMatch(/undefined|\bnull\b|NaN|\[object /);

const md = (b = single) => renderRestoreMd(b, { bundleName: bundleName(b), downloadedAt: "2026-11-21T08:00:00.000Z" });

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "restore-render-"));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("RESTORE.md", () => {
  it("is written for a single-master cluster", () => {
    const text = md();
    expect(text).toContain("# Restoring etcd of cluster `prod-a`");
    expect(text).toContain("Backup `01JD0000000000000000000000`, taken 2026-11-20T14:03:05.123Z. Bundle `prod-a-20261120T140305Z-restore`");
    expect(text).toMatch(/\| etcd revision \| 1234 \|/);
    expect(text).toContain(`\`${"a".repeat(64)}\``);
    expect(text).toMatch(/\| `master-0` \| `10\.0\.0\.10` \| etcd-master-0 \|/);
    expect(text).toContain("This cluster has one master: follow [the single-master restore]");

    const decrypt = section(text, 1);
    expect(decrypt).toContain("age -d -i key.txt -o snapshot.db snapshot.db.age");
    expect(decrypt).toContain("sha256sum -c SHA256SUMS");
    expect(decrypt).toContain(`echo "${"a".repeat(64)}  snapshot.db" | sha256sum -c -`);
    expect(decrypt).toContain("size % 512");

    const tools = section(text, 2);
    expect(tools).toContain("https://github.com/etcd-io/etcd/releases/download/v3.4.23/etcd-v3.4.23-linux-amd64.tar.gz");
    expect(tools).toContain("etcd 3.4 has no `etcdutl`");
    expect(tools).toContain("crictl");

    const restore = section(text, 3);
    expect(restore).toContain("ETCDCTL_API=3 etcdctl snapshot restore snapshot.db");
    expect(restore).toContain("--name master-0");
    expect(restore).toContain("--initial-cluster master-0=https://10.0.0.10:2380");
    expect(restore).toContain("--initial-advertise-peer-urls https://10.0.0.10:2380");
    expect(restore).toContain("./restore.sh --identity key.txt --yes");
    expect(restore).toContain("mv /etc/kubernetes/manifests/etcd.yaml ~/etcd.yaml");

    expect(section(text, 4)).toContain("d8 k delete node <MASTER_NODE_NAME>");
    expect(section(text, 5)).toContain("etcdhelper -endpoint 127.0.0.1:2379");
    expect(section(text, 5)).toContain("etcd-vault extract");
    expect(section(text, 6)).toContain("--endpoints https://10.0.0.10:2379 endpoint status -w table");
    expect(section(text, 6)).toContain("member list -w table");
    expect(section(text, 7)).toContain("--force-new-cluster");
    expect(section(text, 8)).toContain(
      "--initial-cluster=master-0=https://10.0.0.10:2380 --initial-advertise-peer-urls=https://10.0.0.10:2380",
    );
    expect(section(text, 8)).toContain("ETCDCTL_API=3 etcdctl snapshot restore /var/lib/etcd/member/snap/db --name master-0");
    expectNoLeaks(text);
  });

  it("names the other masters for each master that may stay in a three-master cluster", () => {
    const text = md(three);
    expect(text).toContain("This cluster has 3 masters: follow [the multi-master restore]");
    const multi = section(text, 4);
    const ips: Record<string, string> = { "master-0": "10.0.0.10", "master-1": "10.0.0.11", "master-2": "10.0.0.12" };
    const names = Object.keys(ips);
    for (const keep of names) {
      const start = multi.indexOf(`### Keeping \`${keep}\` (${ips[keep]})`);
      expect(start).toBeGreaterThan(0);
      const next = multi.indexOf("### Keeping", start + 1);
      const block = multi.slice(start, next < 0 ? undefined : next);
      expect(block).toContain(`./restore.sh --identity key.txt --node ${keep} --yes`);
      const deletes = block.match(/^d8 k delete node .+$/gm) ?? [];
      expect(deletes.sort()).toEqual(names.filter((n) => n !== keep).map((n) => `d8 k delete node ${n}`));
    }
    // Section 3 has the restore command for each master, etcdutl for 3.5.
    const restore = section(text, 3);
    for (const n of names) {
      expect(restore).toContain(`etcdutl snapshot restore snapshot.db \\\n  --name ${n} \\\n  --initial-cluster ${n}=https://${ips[n]}:2380`);
    }
    // One endpoint status line with all three masters.
    expect(section(text, 6)).toContain(
      "--endpoints https://10.0.0.10:2379,https://10.0.0.11:2379,https://10.0.0.12:2379 endpoint status -w table",
    );
    // Infinite-restart fix, one block per master with its own name and address.
    const fix = section(text, 8);
    for (const n of names) {
      expect(fix).toContain(`On \`${n}\`:`);
      expect(fix).toContain(
        `etcdutl snapshot restore /var/lib/etcd/member/snap/db --name ${n} \\\n  --initial-cluster=${n}=https://${ips[n]}:2380 --initial-advertise-peer-urls=https://${ips[n]}:2380 \\\n  --skip-hash-check=true --data-dir /var/lib/etcdtest`,
      );
    }
    expect(section(text, 2)).toContain("etcd-v3.5.16-linux-amd64/etcdctl etcd-v3.5.16-linux-amd64/etcdutl");
    expectNoLeaks(text);
  });

  it("renders placeholders and warnings when facts are missing", () => {
    const text = md(bare);
    expectNoLeaks(text);
    expect(text).toContain("> **Warning");
    expect(text).toContain("no cluster facts");
    expect(text).toContain("The etcd version is unknown");
    expect(text).toContain("releases/download/v<ETCD_VERSION>/etcd-v<ETCD_VERSION>-linux-amd64.tar.gz");
    expect(text).toContain("--name <NODE_NAME>");
    expect(text).toContain("https://<NODE_IP>:2380");
    expect(text).toContain("The number of masters is unknown");

    const partial = makeBackup({ facts: makeFacts([{ name: "master-0", internalIP: null }, { name: "master-1", internalIP: "10.1.0.2" }]) });
    const p = md(partial);
    expect(p).toContain("The InternalIP of master `master-0` is unknown");
    expect(p).toContain("--initial-cluster=master-0=https://<IP_OF_master-0>:2380");
    expectNoLeaks(p);
  });

  it("says when age 1.3 is required", () => {
    const pq = makeBackup({ recipients: ["age1pq1" + "x".repeat(40)] });
    expect(md(pq)).toContain("needs age 1.3 or newer.** Debian's age 1.1.1 cannot read it");
    expect(md()).toContain("any age release works");
  });
});

describe("restore.sh", () => {
  it("bakes in the facts", () => {
    const sh = renderRestoreSh(three);
    expect(sh.startsWith("#!/usr/bin/env bash\n")).toBe(true);
    expect(sh).toContain("set -euo pipefail");
    expect(sh).toContain("MASTER_NAMES=('master-0' 'master-1' 'master-2')");
    expect(sh).toContain("MASTER_IPS=('10.0.0.10' '10.0.0.11' '10.0.0.12')");
    expect(sh).toContain("ETCD_VERSION='3.5.16'");
    expect(sh).toContain(`SNAPSHOT_SHA256='${"a".repeat(64)}'`);
    expect(sh).toContain("SNAPSHOT_SIZE=20512");
    for (const v of ["ETCD_MANIFEST", "ETCD_MANIFESTS_DIR", "ETCD_DATA_DIR", "ETCD_PKI_DIR", "ETCD_BACKUP_PARENT", "ETCDCTL", "ETCDUTL"]) {
      expect(sh).toMatch(new RegExp(`^#   ${v} `, "m"));
    }
    expect(sh).not.toContain("@{");
  });

  it("passes shellcheck for single, three-master and fact-less backups", () => {
    for (const [name, b] of Object.entries({ single, three, bare })) {
      const file = join(dir, `${name}.sh`);
      const text = renderRestoreSh(b);
      expectNoLeaks(text);
      writeFileSync(file, text);
      const r = run("shellcheck", ["--severity=style", file]);
      expect(r.stdout + r.stderr, name).toBe("");
      expect(r.code, name).toBe(0);
    }
  });

  it("drops master names that are not node names instead of pasting them into bash", () => {
    const evil = makeBackup({ facts: makeFacts([{ name: "x'; rm -rf / #", internalIP: "10.0.0.1" }, { name: "ok-0", internalIP: "10.0.0.2" }]) });
    const sh = renderRestoreSh(evil);
    expect(sh).not.toContain("rm -rf /");
    expect(sh).toContain("MASTER_NAMES=('ok-0')");
    expect(md(evil)).toContain("Skipped a master");
  });
});

describe("bundle entries", () => {
  it("puts everything under one folder named after cluster and UTC time", async () => {
    expect(bundleName(single)).toBe("prod-a-20261120T140305Z-restore");
    const body = new ReadableStream<Uint8Array>({ pull: (c) => c.close() });
    const entries = bundleEntries(single, body, new Date("2026-11-21T08:00:00Z"));
    const top = "prod-a-20261120T140305Z-restore";
    expect(entries.map((e) => e.name)).toEqual([
      `${top}/`, `${top}/SHA256SUMS`, `${top}/backup.json`, `${top}/RESTORE.md`, `${top}/restore.sh`, `${top}/snapshot.db.age`,
    ]);
    const byName = Object.fromEntries(entries.map((e) => [e.name.slice(top.length + 1), e]));
    expect(new TextDecoder().decode(byName.SHA256SUMS!.body as Uint8Array)).toBe(`${"b".repeat(64)}  snapshot.db.age\n`);
    expect(JSON.parse(new TextDecoder().decode(byName["backup.json"]!.body as Uint8Array))).toEqual(single);
    expect(byName["restore.sh"]!.mode).toBe(0o755);
    expect(byName["snapshot.db.age"]!.size).toBe(single.ciphertext.size);
    expect(new TextDecoder().decode(byName["RESTORE.md"]!.body as Uint8Array)).toContain("assembled 2026-11-21T08:00:00.000Z");
  });
});
