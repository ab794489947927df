// Tokens, roles, audit, the cluster registry and the error envelope, through the real app over a
// real SQLite file. Discovery against the Kubernetes simulator lives in discovery.test.ts.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import Database from "better-sqlite3";
import { join } from "node:path";
import { startTestService, type TestService } from "./helpers/service.js";

// Shape-valid PEM (the registry checks the framing; a TLS handshake would check the rest).
const FAKE_PEM = "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIUZXRjZC12YXVsdC10ZXN0LWNhMAoGCCqGSM49BAMCMBgx\n-----END CERTIFICATE-----\n";

const KUBECONFIG = `apiVersion: v1
kind: Config
clusters:
- name: c1
  cluster:
    server: https://127.0.0.1:6443
    certificate-authority-data: ${Buffer.from(FAKE_PEM).toString("base64")}
users:
- name: u1
  user:
    token: super-secret-token-value-123
contexts:
- name: ctx1
  context: {cluster: c1, user: u1}
current-context: ctx1
`;

let s: TestService;
beforeAll(async () => {
  s = await startTestService();
});
afterAll(async () => {
  await s.stop();
});

function expectError(r: { status: number; json: any }, status: number, code: string, mentions?: string) {
  expect(r.status).toBe(status);
  expect(r.json.error.code).toBe(code);
  expect(typeof r.json.error.requestId).toBe("string");
  if (mentions) expect(r.json.error.message).toContain(mentions);
}

describe("tokens and roles", () => {
  it("401 without a token, with a bad one, and with an expired one", async () => {
    expectError(await s.call("GET", "/v1/clusters", undefined, null), 401, "unauthorized");
    expectError(await s.call("GET", "/v1/clusters", undefined, "evt_nope_nope"), 401, "unauthorized");
    const t = await s.call("POST", "/v1/tokens", { name: "short", role: "viewer", expiresAt: new Date(Date.now() + 1500).toISOString() });
    expect(t.status).toBe(201);
    expect((await s.call("GET", "/v1/clusters", undefined, t.json.token)).status).toBe(200);
    await new Promise((r) => setTimeout(r, 1600));
    expectError(await s.call("GET", "/v1/clusters", undefined, t.json.token), 401, "unauthorized", "expired");
  });

  it("creates a token shown once, stored hashed, listed without the secret, revocable", async () => {
    const t = await s.call("POST", "/v1/tokens", { name: "ops", role: "operator" });
    expect(t.status).toBe(201);
    expect(t.json.token).toMatch(/^evt_/);
    const list = await s.call("GET", "/v1/tokens");
    const item = list.json.items.find((i: any) => i.id === t.json.id);
    expect(item).toMatchObject({ name: "ops", role: "operator", pool: null });
    const secret: string = /^evt_[A-Za-z0-9]+_(.+)$/.exec(t.json.token)![1]!; // base64url may hold "_"
    expect(secret.length).toBeGreaterThanOrEqual(32);
    expect(JSON.stringify(list.json)).not.toContain(secret);
    const db = new Database(join(s.dir, "data", "catalog.db"), { readonly: true });
    const dump = JSON.stringify(db.prepare("select * from tokens").all());
    db.close();
    expect(dump).not.toContain(secret);
    expect((await s.call("DELETE", `/v1/tokens/${t.json.id}`)).status).toBe(204);
    expectError(await s.call("GET", "/v1/clusters", undefined, t.json.token), 401, "unauthorized");
    expectError(await s.call("DELETE", `/v1/tokens/${t.json.id}`), 404, "not_found");
  });

  it("403 for a role that may not act", async () => {
    const viewer = (await s.call("POST", "/v1/tokens", { name: "v", role: "viewer" })).json.token;
    const runner = (await s.call("POST", "/v1/tokens", { name: "r", role: "runner", pool: "a" })).json.token;
    expectError(await s.call("POST", "/v1/tokens", { name: "x", role: "admin" }, viewer), 403, "forbidden");
    expectError(await s.call("POST", "/v1/clusters", { name: "x", kubeconfig: KUBECONFIG }, viewer), 403, "forbidden");
    expectError(await s.call("GET", "/v1/clusters", undefined, runner), 403, "forbidden");
    expectError(await s.call("GET", "/v1/audit", undefined, viewer), 403, "forbidden");
  });

  it("rejects bad token input with the field named", async () => {
    expectError(await s.call("POST", "/v1/tokens", { name: "x", role: "root" }), 400, "invalid_input", "role");
    expectError(await s.call("POST", "/v1/tokens", { name: "x", role: "viewer", expiresAt: "2001-01-01T00:00:00Z" }), 400, "invalid_input", "expiresAt");
  });
});

describe("cluster registry", () => {
  it("registers a cluster with Deckhouse etcd defaults and never returns the kubeconfig", async () => {
    const r = await s.call("POST", "/v1/clusters", { name: "prod-a", labels: { env: "prod", tier: "core" }, kubeconfig: KUBECONFIG });
    expect(r.status).toBe(201);
    expect(r.json.etcd).toEqual({
      namespace: "kube-system",
      selector: "component=etcd",
      container: "etcd",
      command: [
        "/usr/bin/etcdctl", "--endpoints", "https://127.0.0.1:2379/", "--key", "/etc/kubernetes/pki/etcd/ca.key",
        "--cert", "/etc/kubernetes/pki/etcd/ca.crt", "--cacert", "/etc/kubernetes/pki/etcd/ca.crt", "snapshot", "pipe",
      ],
    });
    expect(r.json.facts).toBeNull();
    expect(r.text).not.toContain("super-secret-token-value-123");
    const got = await s.call("GET", "/v1/clusters/prod-a");
    expect(got.text).not.toContain("super-secret-token-value-123");
    expect(got.text).not.toContain("kubeconfig");
    // Sealed at rest: the catalog file does not hold the token in clear.
    const db = new Database(join(s.dir, "data", "catalog.db"), { readonly: true });
    const dump = JSON.stringify(db.prepare("select * from clusters").all());
    db.close();
    expect(dump).not.toContain("super-secret-token-value-123");
  });

  it("filters by label selector and patches with JSON merge patch", async () => {
    await s.call("POST", "/v1/clusters", { name: "stage-a", labels: { env: "stage" }, kubeconfig: KUBECONFIG });
    await s.call("POST", "/v1/clusters", { name: "prod-b", labels: { env: "prod", tier: "edge" }, kubeconfig: KUBECONFIG });
    const prod = await s.call("GET", "/v1/clusters?selector=env=prod");
    expect(prod.json.items.map((c: any) => c.name).sort()).toEqual(["prod-a", "prod-b"]);
    const core = await s.call("GET", "/v1/clusters?selector=env=prod,tier=core");
    expect(core.json.items.map((c: any) => c.name)).toEqual(["prod-a"]);
    // One key twice could match nothing: refused rather than the last value winning.
    expectError(await s.call("GET", "/v1/clusters?selector=env=prod,env=stage"), 400, "invalid_input", "'env' is given twice");
    const p = await s.call("PATCH", "/v1/clusters/prod-b", { labels: { tier: null, zone: "eu" } }, undefined, {
      "content-type": "application/merge-patch+json",
    });
    expect(p.status).toBe(200);
    expect(p.json.labels).toEqual({ env: "prod", zone: "eu" });
    // `?limit=` is the default; anything but 1–500 in decimal digits is refused, naming the field.
    expect((await s.call("GET", "/v1/clusters?limit=")).json).toEqual((await s.call("GET", "/v1/clusters?limit=50")).json);
    for (const bad of ["0x10", "1e2", "0", "501", "2.0", "-1"]) {
      expectError(await s.call("GET", `/v1/clusters?limit=${bad}`), 400, "invalid_input", "limit: must be a whole number from 1 to 500");
    }
    const paged = await s.call("GET", "/v1/clusters?limit=2");
    expect(paged.json.items).toHaveLength(2);
    expect(paged.json.nextCursor).toBeTruthy();
    const rest = await s.call("GET", `/v1/clusters?limit=2&cursor=${paged.json.nextCursor}`);
    expect(rest.json.items.length).toBeGreaterThan(0);
    expect(rest.json.items[0].name > paged.json.items[1].name).toBe(true);
    // Walking page by page (with and without a selector) visits every cluster once, in name order.
    for (const filter of ["", "&selector=env=prod"]) {
      const whole = (await s.call("GET", `/v1/clusters?limit=500${filter}`)).json;
      expect(whole.nextCursor).toBeNull();
      const walked: string[] = [];
      let cursor: string | null = null;
      do {
        const page: any = (await s.call("GET", `/v1/clusters?limit=1${filter}${cursor ? `&cursor=${cursor}` : ""}`)).json;
        expect(page.items.length).toBeLessThanOrEqual(1);
        walked.push(...page.items.map((c: any) => c.name));
        cursor = page.nextCursor;
      } while (cursor);
      expect(walked).toEqual(whole.items.map((c: any) => c.name));
      expect(walked).toEqual([...walked].sort());
      expect(walked.length).toBe(filter ? 2 : whole.items.length);
    }
  });

  it("rotates the kubeconfig on PATCH and audits without secrets", async () => {
    const kc2 = KUBECONFIG.replace("super-secret-token-value-123", "rotated-secret-456");
    expect((await s.call("PATCH", "/v1/clusters/prod-a", { kubeconfig: kc2 })).status).toBe(200);
    const audit = await s.call("GET", "/v1/audit?subject=cluster/prod-a");
    expect(audit.json.items.map((e: any) => e.action)).toEqual(expect.arrayContaining(["cluster.create", "cluster.update"]));
    expect(audit.text).not.toContain("rotated-secret-456");
    expect(audit.text).not.toContain("super-secret-token-value-123");
  });

  it("answers each bad input with the envelope, a code and the field, and writes nothing", async () => {
    const before = (await s.call("GET", "/v1/clusters?limit=500")).json.items.length;
    expectError(await s.call("POST", "/v1/clusters", "{not json"), 400, "invalid_input", "malformed JSON");
    expectError(await s.call("POST", "/v1/clusters", { name: "ok-name", kubeconfig: KUBECONFIG, colour: "red" }), 400, "invalid_input", "colour");
    expectError(await s.call("POST", "/v1/clusters", { name: "Not_A_Label", kubeconfig: KUBECONFIG }), 400, "invalid_input", "name");
    expectError(await s.call("POST", "/v1/clusters", { name: "bad-yaml", kubeconfig: "a: [unclosed" }), 400, "invalid_input", "kubeconfig");
    expectError(
      await s.call("POST", "/v1/clusters", { name: "no-ctx", kubeconfig: KUBECONFIG.replace("current-context: ctx1", "") }),
      400,
      "invalid_input",
      "kubeconfig",
    );
    expectError(await s.call("POST", "/v1/clusters", { name: "bad-rcpt", kubeconfig: KUBECONFIG, recipients: ["age1nope"] }), 400, "invalid_input", "recipients");
    // A user that is an exec plugin would run its command on this host: refused (not allowed here).
    const execUser = KUBECONFIG.replace(
      "    token: super-secret-token-value-123",
      "    exec:\n      apiVersion: client.authentication.k8s.io/v1\n      command: /bin/sh\n      args: [-c, 'touch /tmp/etcd-vault-pwned']",
    );
    expect(execUser).toContain("command: /bin/sh");
    const refused = await s.call("POST", "/v1/clusters", { name: "exec-user", kubeconfig: execUser });
    expectError(refused, 400, "invalid_input", "ETCD_VAULT_ALLOW_CREDENTIAL_COMMANDS");
    expect(refused.json.error.message).toContain("kubeconfig");
    expect(refused.json.error.message).not.toContain("/bin/sh");
    expectError(await s.call("PATCH", "/v1/clusters/prod-a", { kubeconfig: execUser }), 400, "invalid_input", "exec credential plugin");
    // Not JSON: 415 with a code, never a 500.
    for (const [type, body] of [["text/plain", JSON.stringify({ name: "typed", kubeconfig: KUBECONFIG })], ["application/x-www-form-urlencoded", "name=x&role=admin"]] as const) {
      const r = await s.call("POST", "/v1/clusters", body, undefined, { "content-type": type });
      expectError(r, 415, "unsupported_media_type", "application/json");
      expect(r.json.error.message).toContain(type);
    }
    expectError(await s.call("POST", "/v1/tokens", "name=x&role=admin", undefined, { "content-type": "application/x-www-form-urlencoded" }), 415, "unsupported_media_type");
    // "__proto__" as a label key would vanish in parsing (and a selector of it would match every
    // cluster): refused in bodies and in selectors. Raw text, since a JS literal would set the prototype.
    const protoLabels = `{"name":"proto-labels","kubeconfig":${JSON.stringify(KUBECONFIG)},"labels":{"__proto__":"x","a":"b"}}`;
    expectError(await s.call("POST", "/v1/clusters", protoLabels), 400, "invalid_input", "__proto__");
    expectError(await s.call("PATCH", "/v1/clusters/prod-a", `{"labels":{"__proto__":"x"}}`), 400, "invalid_input", "__proto__");
    expectError(await s.call("GET", "/v1/clusters?selector=__proto__%3Dx"), 400, "invalid_input", "__proto__");
    // Nesting too deep for the key check is refused, not let through unchecked.
    const deep = `{"name":"deep","kubeconfig":${JSON.stringify(KUBECONFIG)},"labels":{"__proto__":"x"},"junk":${"[".repeat(20000)}${"]".repeat(20000)}}`;
    const deepRes = await s.call("POST", "/v1/clusters", deep);
    expect(deepRes.status).toBe(400);
    expect(deepRes.json.error.code).toBe("invalid_input");
    const manyLabels = Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`k${i}`, "v"]));
    expectError(await s.call("POST", "/v1/clusters", { name: "many-labels", kubeconfig: KUBECONFIG, labels: manyLabels }), 400, "invalid_input", "labels: at most 64 labels");
    expectError(await s.call("POST", "/v1/tokens", { name: "x\u0000\n\u001b[31mred", role: "viewer" }), 400, "invalid_input", "name: must not contain control characters");
    expectError(await s.call("POST", "/v1/tokens", `{"name":"\\ud800","role":"viewer"}`), 400, "invalid_input", "name: must be well-formed Unicode");
    // Where the etcd pods are and what to exec: checked when written, not at capture time.
    for (const [etcd, field] of [
      [{ selector: "!!! ,,, ===" }, "etcd.selector"],
      [{ selector: "===" }, "etcd.selector"],
      [{ selector: "tier in (a,b" }, "etcd.selector"],
      [{ selector: "tier in ()" }, "etcd.selector"],
      [{ container: "../../x y" }, "etcd.container"],
      [{ container: "A B/.." }, "etcd.container"],
      [{ namespace: "Kube_System" }, "etcd.namespace"],
      [{ command: ["\u0000rm", "-rf"] }, "etcd.command[0]"],
    ] as const) {
      expectError(await s.call("POST", "/v1/clusters", { name: "bad-etcd", kubeconfig: KUBECONFIG, etcd }), 400, "invalid_input", field);
      expectError(await s.call("PATCH", "/v1/clusters/prod-a", { etcd }), 400, "invalid_input", field);
    }
    const good = { selector: "component=etcd,tier in (control-plane, master),!ignored,app.kubernetes.io/part-of!=x,gen>2", container: "etcd-2", namespace: "kube-system" };
    const patched = await s.call("PATCH", "/v1/clusters/prod-a", { etcd: good });
    expect(patched.status).toBe(200);
    expect(patched.json.etcd).toMatchObject(good);
    expect((await s.call("PATCH", "/v1/clusters/prod-a", { etcd: null })).json.etcd.selector).toBe("component=etcd");
    expect((await s.call("GET", "/v1/clusters/prod-a")).json.labels).not.toHaveProperty("a");
    expectError(await s.call("POST", "/v1/clusters", { name: "prod-a", kubeconfig: KUBECONFIG }), 409, "conflict", "prod-a");
    const big = { name: "huge", kubeconfig: KUBECONFIG, labels: { pad: "x" }, etcd: { command: ["x".repeat(1024 * 1024 + 10)] } };
    expectError(await s.call("POST", "/v1/clusters", big), 413, "payload_too_large");
    expectError(await s.call("GET", "/v1/clusters/nope"), 404, "not_found", "nope");
    expectError(await s.call("POST", "/v1/clusters/nope/discover"), 404, "not_found", "nope");
    const after = (await s.call("GET", "/v1/clusters?limit=500")).json.items.length;
    expect(after).toBe(before);
  });

  it("answers every response with the request's id (given, or made up), errors included", async () => {
    const given = await s.call("GET", "/v1/clusters?limit=5", undefined, undefined, { "x-request-id": "trace-42" });
    expect(given.status).toBe(200);
    expect(given.headers.get("x-request-id")).toBe("trace-42");
    const made = await s.call("GET", "/v1/tokens");
    expect(made.headers.get("x-request-id")).toMatch(/^[0-9a-f-]{36}$/);
    const missing = await s.call("GET", "/v1/backups/nope", undefined, undefined, { "x-request-id": "trace-43" });
    expect(missing.status).toBe(404);
    expect(missing.headers.get("x-request-id")).toBe("trace-43");
    expect(missing.json.error.requestId).toBe("trace-43");
    const denied = await s.call("GET", "/v1/clusters", undefined, null, { "x-request-id": "trace-44" });
    expect(denied.status).toBe(401);
    expect(denied.headers.get("x-request-id")).toBe("trace-44");
    const metrics = await s.call("GET", "/metrics", undefined, undefined, { "x-request-id": "trace-45" });
    expect(metrics.status).toBe(200);
    expect(metrics.headers.get("x-request-id")).toBe("trace-45");
  });

  it("serves health, readiness and the OpenAPI document", async () => {
    expect((await s.call("GET", "/healthz", undefined, null)).json.ok).toBe(true);
    expect((await s.call("GET", "/readyz", undefined, null)).status).toBe(200);
    const doc = await s.call("GET", "/openapi.json", undefined, null);
    expect(doc.json.openapi).toBe("3.1.0");
    expect(Object.keys(doc.json.paths)).toEqual(expect.arrayContaining(["/v1/clusters", "/v1/clusters/{name}/discover", "/v1/tokens"]));
    // The one route with a raw body is documented too.
    const part = doc.json.paths["/v1/runners/runs/{id}/parts/{part}"];
    expect(Object.keys(part.put.requestBody.content)).toEqual(["application/octet-stream"]);
    expect(part.put.parameters.map((p: { name: string }) => p.name)).toEqual(expect.arrayContaining(["id", "part", "x-part-sha256"]));
  });

  it("refuses to delete a cluster with available backups unless purged", async () => {
    const db = new Database(join(s.dir, "data", "catalog.db"));
    db.prepare(
      "insert into backups (id, cluster, run_id, state, created_at, target, object_key, recipients, hold, updated_at) values ('01TESTBACKUP', 'stage-a', 'r', 'available', 0, 'default', 'k', '[]', 0, 0)",
    ).run();
    db.close();
    expectError(await s.call("DELETE", "/v1/clusters/stage-a"), 409, "conflict", "purgeBackups");
    // A held or object-locked backup stops even a purge, and nothing changes.
    const setBackup = (sqlText: string) => {
      const d = new Database(join(s.dir, "data", "catalog.db"));
      d.prepare(sqlText).run();
      d.close();
    };
    setBackup("update backups set hold = 1, hold_reason = 'incident 7' where id = '01TESTBACKUP'");
    expectError(await s.call("DELETE", "/v1/clusters/stage-a?purgeBackups=true"), 409, "conflict", "1 on hold");
    setBackup("update backups set hold = 0, hold_reason = null, locked_until = 4102444800000 where id = '01TESTBACKUP'");
    expectError(await s.call("DELETE", "/v1/clusters/stage-a?purgeBackups=true"), 409, "conflict", "object-locked (the last until 2100-01-01T00:00:00.000Z)");
    expect((await s.call("GET", "/v1/clusters/stage-a")).status).toBe(200);
    expect((await s.call("GET", "/v1/backups/01TESTBACKUP")).json.state).toBe("available");
    setBackup("update backups set locked_until = 1 where id = '01TESTBACKUP'"); // the lock has expired
    expect((await s.call("DELETE", "/v1/clusters/stage-a?purgeBackups=true")).status).toBe(204);
    expectError(await s.call("GET", "/v1/clusters/stage-a"), 404, "not_found");
    expect((await s.call("GET", "/v1/backups/01TESTBACKUP")).json.state).toBe("deleting");
    // The tick's sweep removes it, and counts it (and so audits the tick).
    expect((await s.call("POST", "/v1/tick")).json.deleted).toBe(1);
    expect((await s.call("GET", "/v1/backups/01TESTBACKUP")).json.state).toBe("deleted");
    expect((await s.call("GET", "/v1/audit?action=scheduler.tick")).json.items[0].detail.deleted).toBe(1);
  });
});
