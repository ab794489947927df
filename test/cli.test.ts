// The command line as a user meets it: help for every command, the version, configuration errors
// that name the variable, and the first start (admin token printed once, master key generated).
import { describe, expect, it } from "vitest";
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startCli } from "./helpers/processes.js";
import { freePort } from "./support/etcd.js";

async function runCli(args: string[], env: Record<string, string> = {}) {
  const p = startCli(args, env);
  const code = await p.exited;
  return { code, out: p.output() };
}

describe("etcd-vault CLI", () => {
  it("prints help for every command and the version", async () => {
    const top = await runCli(["--help"]);
    expect(top.code).toBe(0);
    for (const cmd of ["serve", "migrate", "tick", "runner", "verify"]) {
      expect(top.out).toContain(cmd);
      const h = await runCli([cmd, "--help"]);
      expect(h.code, cmd).toBe(0);
      expect(h.out).toContain(`etcd-vault ${cmd}`);
    }
    const v = await runCli(["--version"]);
    expect(v.out.trim()).toMatch(/^\d+\.\d+\.\d+$/);
    const unknown = await runCli(["frobnicate"]);
    expect(unknown.code).toBe(2);
    expect(unknown.out).toContain("unknown command");
  }, 60_000);

  it("exits non-zero naming the variable and the reason for bad configuration", async () => {
    const dir = mkdtempSync(join(tmpdir(), "ev-cli-"));
    for (const [name, value, reason] of [
      ["PORT", "70000", "65535"],
      ["ETCD_VAULT_SCHEDULER", "maybe", "on"],
      ["ETCD_VAULT_LEASE", "2 minutes", "duration"],
      ["ETCD_VAULT_STORAGE", "ftp://x", "file://"],
      ["ETCD_VAULT_LISTEN_HOST", "not a host!", "IP address or a host name"],
    ] as const) {
      const r = await runCli(["serve"], { ETCD_VAULT_DATA_DIR: dir, [name]: value });
      expect(r.code, name).not.toBe(0);
      expect(r.out).toContain(name);
      expect(r.out).toContain(reason);
      expect(r.out).not.toMatch(/at .*\.ts:\d+/); // no stack trace
    }
    rmSync(dir, { recursive: true, force: true });
  }, 60_000);

  it("tick --db refuses a missing catalog and times that are not RFC 3339 instants", async () => {
    const dir = mkdtempSync(join(tmpdir(), "ev-cli-tick-"));
    const missing = join(dir, "typo", "catalog.db");
    const r = await runCli(["tick", "--db", missing]);
    expect(r.code).not.toBe(0);
    expect(r.out).toContain("does not exist");
    expect(readdirSync(dir)).toEqual([]); // nothing created
    expect((await runCli(["migrate", "--db", join(dir, "c.db")])).code).toBe(0);
    for (const [args, says] of [
      [["--now", "2026-02-30T00:00:00Z"], "not a real date"],
      [["--now", "2026-01-01"], "not an RFC 3339 time"],
      [["--every", "1h"], "--every needs --until"],
      [["--now", "2026-01-02T00:00:00Z", "--until", "2026-01-01T00:00:00Z", "--every", "1h"], "must not be before --now"],
    ] as const) {
      const bad = await runCli(["tick", "--db", join(dir, "c.db"), ...args]);
      expect(bad.code, args.join(" ")).not.toBe(0);
      expect(bad.out).toContain(says);
      expect(bad.out).not.toMatch(/\n\s+at /);
    }
    const ok = await runCli(["tick", "--db", join(dir, "c.db"), "--now", "2026-11-24T06:00:00+03:00"]);
    expect(ok.code).toBe(0);
    expect(JSON.parse(ok.out.trim().split("\n").at(-1)!).now).toBe("2026-11-24T03:00:00.000Z");
    rmSync(dir, { recursive: true, force: true });
  }, 60_000);

  it("first start generates an admin token printed once and a 0600 master key with a warning", async () => {
    const dir = mkdtempSync(join(tmpdir(), "ev-first-"));
    const port = String(await freePort());
    const env = { ETCD_VAULT_DATA_DIR: dir, PORT: port, ETCD_VAULT_SCHEDULER: "off" };
    const first = startCli(["serve"], env);
    let token = "";
    for (let i = 0; i < 100 && !first.output().includes("listening"); i++) await new Promise((r) => setTimeout(r, 100));
    const m = /(evt_[A-Za-z0-9]+_[A-Za-z0-9_-]+)/.exec(first.output());
    expect(m).not.toBeNull();
    token = m![1]!;
    expect(first.output()).toContain("master key");
    const st = statSync(join(dir, "master.key"));
    expect(st.mode & 0o777).toBe(0o600);
    const res = await fetch(`http://127.0.0.1:${port}/v1/tokens`, { headers: { authorization: `Bearer ${token}` } });
    expect(res.status).toBe(200);
    first.kill("SIGTERM");
    expect(await first.exited).toBe(0);
    // The catalog holds the hash only; a second start prints no token.
    // The secret is everything after the id: base64url may itself contain "_".
    const secret = /^evt_[A-Za-z0-9]+_(.+)$/.exec(token)![1]!;
    expect(secret.length).toBeGreaterThanOrEqual(32);
    for (const f of readdirSync(dir).filter((n) => n.startsWith("catalog.db"))) {
      expect(readFileSync(join(dir, f)).includes(Buffer.from(secret)), f).toBe(false);
    }
    // Second start, listening on 127.0.0.2 only (every 127/8 address is loopback on Linux).
    const second = startCli(["serve"], { ...env, ETCD_VAULT_LISTEN_HOST: "127.0.0.2" });
    for (let i = 0; i < 100 && !second.output().includes("listening"); i++) await new Promise((r) => setTimeout(r, 100));
    expect(second.output()).not.toMatch(/evt_/);
    expect(second.output()).toContain('"host":"127.0.0.2"');
    const again = await fetch(`http://127.0.0.2:${port}/v1/tokens`, { headers: { authorization: `Bearer ${token}` } });
    expect(again.status).toBe(200);
    const elsewhere = await fetch(`http://127.0.0.1:${port}/healthz`).then(
      (r) => `answered ${r.status}`,
      (e: Error & { cause?: { code?: string } }) => e.cause?.code,
    );
    expect(elsewhere).toBe("ECONNREFUSED");
    second.kill("SIGTERM");
    await second.exited;
    rmSync(dir, { recursive: true, force: true });
  }, 60_000);
});
