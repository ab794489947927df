import { describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { VaultError } from "../src/core/errors.js";
import { parseKubeconfig } from "../src/core/kubeconfig.js";

const TOKEN = "s3cr3t-token-value-0123456789abcdef";
const PEM_CERT = "-----BEGIN CERTIFICATE-----\nMIIBfake\n-----END CERTIFICATE-----\n";
const PEM_KEY = "-----BEGIN EC PRIVATE KEY-----\nMHcfake-private-key-material\n-----END EC PRIVATE KEY-----\n";
const b64 = (s: string) => Buffer.from(s).toString("base64");
const KEY_DATA = b64(PEM_KEY);

type Doc = Record<string, any>;

function doc(over: { cluster?: Doc; user?: Doc; current?: string | null; contexts?: Doc[] } = {}): Doc {
  return {
    apiVersion: "v1",
    kind: "Config",
    clusters: [{ name: "prod", cluster: { server: "https://10.0.0.1:6443", "certificate-authority-data": b64(PEM_CERT), ...over.cluster } }],
    users: [{ name: "vault", user: over.user ?? { token: TOKEN } }],
    contexts: over.contexts ?? [
      { name: "prod-ctx", context: { cluster: "prod", user: "vault" } },
      { name: "other", context: { cluster: "prod", user: "vault", namespace: "x" } },
    ],
    "current-context": over.current === undefined ? "prod-ctx" : over.current,
  };
}

function failure(text: string, context?: string): VaultError {
  try {
    parseKubeconfig(text, context);
  } catch (e) {
    expect(e).toBeInstanceOf(VaultError);
    const err = e as VaultError;
    expect(err.code).toBe("invalid_input");
    // No secret value ever appears in a reason.
    for (const secret of [TOKEN, KEY_DATA, "fake-private-key-material", "hunter2"]) expect(err.message).not.toContain(secret);
    return err;
  }
  throw new Error("expected parseKubeconfig to throw");
}

describe("parseKubeconfig", () => {
  it("summarises the current context without secrets", () => {
    const s = parseKubeconfig(stringify(doc()));
    expect(s).toEqual({ contextName: "prod-ctx", server: "https://10.0.0.1:6443", host: "10.0.0.1:6443", auth: "token" });
    expect(JSON.stringify(s)).not.toContain(TOKEN);
  });

  it("accepts JSON (a YAML subset) and a default https port", () => {
    const d = doc({ cluster: { server: "https://api.example.com" } });
    expect(parseKubeconfig(JSON.stringify(d)).host).toBe("api.example.com");
  });

  it("uses the given context instead of current-context", () => {
    expect(parseKubeconfig(stringify(doc({ current: null })), "other").contextName).toBe("other");
  });

  it("rejects an unknown given context on field `context`", () => {
    const err = failure(stringify(doc()), "nope");
    expect(err.field).toBe("context");
    expect(err.message).toContain("'nope'");
  });

  it("needs a current-context when no context is given", () => {
    expect(failure(stringify(doc({ current: null }))).message).toMatch(/kubeconfig: has no current-context/);
  });

  it("rejects a current-context that is not defined", () => {
    expect(failure(stringify(doc({ current: "ghost" }))).message).toContain("current-context 'ghost' is not defined");
  });

  it("rejects contexts naming missing clusters or users", () => {
    expect(failure(stringify(doc({ contexts: [{ name: "prod-ctx", context: { cluster: "nope", user: "vault" } }] }))).message).toContain("cluster 'nope'");
    expect(failure(stringify(doc({ contexts: [{ name: "prod-ctx", context: { cluster: "prod", user: "nope" } }] }))).message).toContain("user 'nope'");
  });

  it("reports invalid YAML by position only, never quoting the line (it may hold the token)", () => {
    const text = `apiVersion: v1\nusers:\n- name: u\n  user:\n    token: ${TOKEN}\n   bad: [indent\n`;
    const err = failure(text);
    expect(err.field).toBe("kubeconfig");
    expect(err.message).toMatch(/not valid YAML \(\w+ at line \d+, column \d+\)/);
  });

  it("rejects documents that are not mappings", () => {
    expect(failure("- a\n- b\n").message).toContain("must be a YAML mapping");
    expect(failure("just a string").message).toContain("must be a YAML mapping");
    expect(failure("   ").message).toContain("is empty");
  });

  it("names the field of a schema violation without its value", () => {
    const d = doc();
    d.users[0].user.token = 12345;
    expect(failure(stringify(d)).message).toMatch(/users\[0\]\.user\.token: /);
  });

  it("requires an https server URL", () => {
    expect(failure(stringify(doc({ cluster: { server: "http://10.0.0.1:8080" } }))).message).toContain("must be an https:// URL");
    expect(failure(stringify(doc({ cluster: { server: "not a url" } }))).message).toContain("not a URL");
    expect(failure(stringify(doc({ cluster: { server: "https://admin:hunter2@10.0.0.1" } }))).message).toContain("must not carry credentials");
  });

  it("requires embedded CA data that is a PEM certificate", () => {
    expect(failure(stringify(doc({ cluster: { "certificate-authority-data": "%%%" } }))).message).toContain("certificate-authority-data");
    expect(failure(stringify(doc({ cluster: { "certificate-authority-data": b64("hello") } }))).message).toContain("not base64 of a PEM certificate");
    expect(failure(stringify(doc({ cluster: { "certificate-authority": "/etc/k8s/ca.crt" } }))).message).toContain("file path");
  });

  it("accepts client certificate + key and auth-provider credentials", () => {
    expect(parseKubeconfig(stringify(doc({ user: { "client-certificate-data": b64(PEM_CERT), "client-key-data": KEY_DATA } }))).auth).toBe("client-certificate");
    expect(parseKubeconfig(stringify(doc({ user: { "auth-provider": { name: "oidc", config: { "id-token": "x" } } } }))).auth).toBe("auth-provider");
  });

  it("refuses credentials that run a command on this host unless allowed", () => {
    const exec = stringify(doc({ user: { exec: { apiVersion: "client.authentication.k8s.io/v1", command: "/bin/sh", args: ["-c", "touch /tmp/pwned"] } } }));
    const cmdPath = stringify(doc({ user: { "auth-provider": { name: "gcp", config: { "cmd-path": "/usr/bin/gcloud", "cmd-args": "config config-helper" } } } }));
    for (const [text, what] of [[exec, "an exec credential plugin"], [cmdPath, "an auth-provider with cmd-path"]] as const) {
      const e = failure(text);
      expect(e.code).toBe("invalid_input");
      expect(e.field).toBe("kubeconfig");
      expect(e.message).toContain(what);
      expect(e.message).toContain("ETCD_VAULT_ALLOW_CREDENTIAL_COMMANDS=true");
      // The command itself is never echoed.
      expect(e.message).not.toContain("/bin/sh");
      expect(e.message).not.toContain("gcloud");
    }
    expect(parseKubeconfig(exec, undefined, { allowCommands: true }).auth).toBe("exec");
    expect(parseKubeconfig(cmdPath, undefined, { allowCommands: true }).auth).toBe("auth-provider");
  });

  it("rejects users without usable credentials", () => {
    expect(failure(stringify(doc({ user: {} }))).message).toContain("has no credentials");
    expect(failure(stringify(doc({ user: { username: "admin", password: "hunter2" } }))).message).toContain("basic auth");
    expect(failure(stringify(doc({ user: { "client-key-data": KEY_DATA } }))).message).toContain("must be given together");
    expect(failure(stringify(doc({ user: { "client-certificate-data": b64(PEM_CERT), "client-key-data": b64("not pem") } }))).message).toContain("client-key-data");
    expect(failure(stringify(doc({ user: { tokenFile: "/var/run/token" } }))).message).toContain("file path");
    expect(failure(stringify(doc({ user: { "client-certificate": "/c.crt", "client-key": "/c.key" } }))).message).toContain("file path");
  });
});
