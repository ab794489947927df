// The environment checks: the Worker's bindings and secrets (and, where a rule is shared, the Node
// edition's) are validated once, and a bad value is reported by name and reason (never by value)
// instead of a Worker that half works.
import { describe, expect, it } from "vitest";
import { loadWorkerConfig, WorkerConfigError } from "../src/entry/worker-config.js";
import { loadConfig } from "../src/entry/config.js";

// Stand-ins with the binding methods: the check is about shape, the real bindings are exercised
// by worker.test.ts and worker-r2-store.test.ts.
const fn = () => undefined;
const d1 = { prepare: fn, batch: fn, exec: fn };
const r2 = { head: fn, get: fn, put: fn, delete: fn, list: fn, createMultipartUpload: fn, resumeMultipartUpload: fn };
const KEY = "ab".repeat(32);
const TOKEN = "a-long-enough-admin-token-0123456789";
const base = { DB: d1, VAULT: r2, ETCD_VAULT_MASTER_KEY: KEY, ETCD_VAULT_ADMIN_TOKEN: TOKEN };

function problems(env: Record<string, unknown>): string {
  try {
    loadWorkerConfig(env);
  } catch (e) {
    expect(e).toBeInstanceOf(WorkerConfigError);
    return (e as Error).message;
  }
  throw new Error("expected the configuration to be refused");
}

describe("loadWorkerConfig", () => {
  it("accepts the wrangler.toml defaults plus the two secrets", () => {
    const c = loadWorkerConfig({ ...base, ETCD_VAULT_STORAGE: "r2://VAULT", ETCD_VAULT_PUBLIC_URL: "", ETCD_VAULT_LEASE: "2m" });
    expect(c.ETCD_VAULT_STORAGE).toBe("r2://VAULT");
    expect(c.ETCD_VAULT_PUBLIC_URL).toBeUndefined(); // "" means unset
    expect(c.ETCD_VAULT_LEASE).toBe(120_000);
    expect(c.ETCD_VAULT_MASTER_KEY).toHaveLength(1);
    expect(c.bindings.VAULT).toBe(r2);
  });

  it("takes a comma-separated master key ring (first seals, all open)", () => {
    expect(loadWorkerConfig({ ...base, ETCD_VAULT_MASTER_KEY: `${KEY}, ${"cd".repeat(32)}` }).ETCD_VAULT_MASTER_KEY).toHaveLength(2);
  });

  it("refuses an admin token of the issued form (evt_<id>_<secret>), in both editions, without echoing it", () => {
    const value = "evt_01JABCDEF_0123456789abcdefghijklmnop";
    const msg = problems({ ...base, ETCD_VAULT_ADMIN_TOKEN: value });
    expect(msg).toMatch(/ETCD_VAULT_ADMIN_TOKEN: must not have the form of an issued token/);
    expect(msg).not.toContain(value);
    let nodeMessage = "";
    try {
      loadConfig({ ETCD_VAULT_DATA_DIR: "/tmp/unused", ETCD_VAULT_ADMIN_TOKEN: value });
    } catch (e) {
      nodeMessage = (e as Error).message;
    }
    expect(nodeMessage).toMatch(/ETCD_VAULT_ADMIN_TOKEN: must not have the form of an issued token/);
    expect(nodeMessage).not.toContain(value);
    // Any other value of that length is still accepted.
    expect(loadWorkerConfig({ ...base, ETCD_VAULT_ADMIN_TOKEN: "evt-like-but-not-issued-0123456789" }).ETCD_VAULT_ADMIN_TOKEN).toBe("evt-like-but-not-issued-0123456789");
  });

  it("checks ETCD_VAULT_DEFAULT_RECIPIENTS at start in both editions, naming the entry", () => {
    const good = "age1tnkyet5qkt4d8pmvxc9838ryegkhm6ahwz7xews4fmlw4p3qegmszj5u3v";
    expect(loadWorkerConfig({ ...base, ETCD_VAULT_DEFAULT_RECIPIENTS: ` ${good} , ` }).ETCD_VAULT_DEFAULT_RECIPIENTS).toEqual([good]);
    expect(loadConfig({ ETCD_VAULT_DATA_DIR: "/tmp/unused", ETCD_VAULT_DEFAULT_RECIPIENTS: good }).ETCD_VAULT_DEFAULT_RECIPIENTS).toEqual([good]);
    expect(problems({ ...base, ETCD_VAULT_DEFAULT_RECIPIENTS: `${good},age1bogus` })).toMatch(/ETCD_VAULT_DEFAULT_RECIPIENTS: recipient\[1\]: /);
    expect(() => loadConfig({ ETCD_VAULT_DATA_DIR: "/tmp/unused", ETCD_VAULT_DEFAULT_RECIPIENTS: "ssh-ed25519 AAAA" })).toThrow(
      /invalid configuration:\n  ETCD_VAULT_DEFAULT_RECIPIENTS: recipient\[0\]: /,
    );
  });

  it("names missing secrets and how to set them, without echoing values", () => {
    const msg = problems({ DB: d1, VAULT: r2, ETCD_VAULT_ADMIN_TOKEN: "short" });
    expect(msg).toMatch(/ETCD_VAULT_MASTER_KEY: is required.*wrangler secret put/);
    expect(msg).toMatch(/ETCD_VAULT_ADMIN_TOKEN: must be at least 24 characters/);
    expect(msg).not.toContain("short");
    expect(problems({ ...base, ETCD_VAULT_MASTER_KEY: "not-a-key" })).toMatch(/ETCD_VAULT_MASTER_KEY: master key must be 32 bytes/);
  });

  it("refuses missing or wrong bindings and non-R2 storage", () => {
    expect(problems({ ...base, DB: undefined })).toMatch(/DB: must be a D1 binding/);
    expect(problems({ ...base, VAULT: { get: fn } })).toMatch(/VAULT: must be an R2 bucket binding/);
    expect(problems({ ...base, ETCD_VAULT_STORAGE: "r2://OTHER/backups" })).toMatch(/OTHER: must be an R2 bucket binding/);
    expect(problems({ ...base, ETCD_VAULT_STORAGE: "s3://bucket/x" })).toMatch(/ETCD_VAULT_STORAGE: must be r2:\/\/BINDING/);
    expect(problems({ ...base, ETCD_VAULT_LEASE: "soon" })).toMatch(/ETCD_VAULT_LEASE: .*not a duration/);
    expect(loadWorkerConfig({ ...base, BACKUPS: r2, ETCD_VAULT_STORAGE: "r2://BACKUPS/etcd" }).ETCD_VAULT_STORAGE).toBe("r2://BACKUPS/etcd");
  });
});
