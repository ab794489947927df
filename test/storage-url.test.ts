import { describe, expect, it } from "vitest";
import {
  assertListPrefix,
  assertObjectKey,
  keyProblem,
  objectKey,
  parseStorageUrl,
  TEMP_SUFFIX,
} from "../src/core/storage-url.js";
import { rejection as fails } from "./helpers/expect-error.js";

describe("parseStorageUrl: file://", () => {
  it("takes absolute and relative directories", () => {
    expect(parseStorageUrl("file:///var/lib/etcd-vault/vault", "f")).toEqual({ kind: "file", dir: "/var/lib/etcd-vault/vault" });
    expect(parseStorageUrl("file:///srv/vault/", "f")).toEqual({ kind: "file", dir: "/srv/vault" });
    expect(parseStorageUrl("file://./var/vault", "f")).toEqual({ kind: "file", dir: "./var/vault" });
    expect(parseStorageUrl("file://../vault", "f")).toEqual({ kind: "file", dir: "../vault" });
    expect(parseStorageUrl("file://localhost/srv/v", "f")).toEqual({ kind: "file", dir: "/srv/v" });
    expect(parseStorageUrl("file:///", "f")).toEqual({ kind: "file", dir: "/" });
  });

  it("decodes percent-encoding, and keeps a path that is not percent-encoded as written", () => {
    expect(parseStorageUrl("file:///srv/my%20vault", "f")).toEqual({ kind: "file", dir: "/srv/my vault" });
    // config.ts builds `file://${resolve(dataDir)}` from a raw path.
    expect(parseStorageUrl("file:///data/100%/vault", "f")).toEqual({ kind: "file", dir: "/data/100%/vault" });
  });

  it("refuses hosts, empty paths, queries and NUL, naming the field", () => {
    for (const bad of ["file://", "file://server/share", "file:///a?x=1", "file:///a#frag", "file:///a%00b"]) {
      const e = fails(() => parseStorageUrl(bad, "ETCD_VAULT_STORAGE"));
      expect(e.code).toBe("invalid_input");
      expect(e.field).toBe("ETCD_VAULT_STORAGE");
      expect(e.message).toMatch(/^ETCD_VAULT_STORAGE: /);
    }
  });
});

describe("parseStorageUrl: s3://", () => {
  it("parses every parameter", () => {
    expect(
      parseStorageUrl(
        "s3://backups/etcd/prod?endpoint=http://127.0.0.1:9000&region=eu-central-1&forcePathStyle=true&storageClass=STANDARD_IA",
        "url",
      ),
    ).toEqual({
      kind: "s3",
      bucket: "backups",
      prefix: "etcd/prod",
      endpoint: "http://127.0.0.1:9000",
      region: "eu-central-1",
      forcePathStyle: true,
      storageClass: "STANDARD_IA",
      checksums: true,
      signedPayload: false,
    });
  });

  it("has defaults, strips slashes and decodes an encoded endpoint", () => {
    expect(parseStorageUrl("s3://my.bucket-1", "url")).toEqual({
      kind: "s3",
      bucket: "my.bucket-1",
      prefix: "",
      endpoint: null,
      region: "us-east-1",
      forcePathStyle: false,
      storageClass: null,
      checksums: true,
      signedPayload: false,
    });
    const s = parseStorageUrl("s3://b12/a/b/?endpoint=https%3A%2F%2Fs3.example.com%2F&checksums=false&forcePathStyle=0", "url");
    expect(s).toMatchObject({ prefix: "a/b", endpoint: "https://s3.example.com", checksums: false, forcePathStyle: false });
    expect(parseStorageUrl("s3://b12?signedPayload=true", "url")).toMatchObject({ signedPayload: true, checksums: true });
    expect(() => parseStorageUrl("s3://b12?signedPayload=maybe", "url")).toThrow(/signedPayload/);
  });

  it.each([
    ["s3://", /bucket name is missing/],
    ["s3:///prefix", /bucket name is missing/],
    ["s3://ab", /not a valid bucket name/],
    ["s3://Upper/x", /not a valid bucket name/],
    ["s3://a..b/x", /not a valid bucket name/],
    ["s3://bucket:9000/x", /put the server in \?endpoint=/],
    ["s3://bucket/x?forcepathstyle=true", /unknown parameter 'forcepathstyle'/],
    ["s3://bucket/x?region=a&region=b", /given twice/],
    ["s3://bucket/x?endpoint=ftp://h", /http:\/\/ or https:\/\//],
    ["s3://bucket/x?endpoint=nonsense", /http:\/\/ or https:\/\//],
    ["s3://bucket/x?forcePathStyle=yes", /forcePathStyle must be true or false/],
    ["s3://bucket/x?storageClass=cold%20storage", /storage class name/],
    ["s3://bucket/x?region=EU%20West", /not a valid region/],
    ["s3://bucket/a//b", /empty segments/],
    ["s3://bucket/a/../b", /'\.' or '\.\.' segments/],
    ["s3://bucket/a/%2e%2e/b", /'\.' or '\.\.' segments/],
    ["s3://bucket/x#f", /no fragment/],
    ["gs://bucket/x", /file:\/\/, s3:\/\/ or r2:\/\//],
    ["/just/a/path", /file:\/\/, s3:\/\/ or r2:\/\//],
  ])("refuses %s", (url, why) => {
    const e = fails(() => parseStorageUrl(url, "url"));
    expect(e.code).toBe("invalid_input");
    expect(e.field).toBe("url");
    expect(e.message).toMatch(why);
  });

  it("refuses credentials in the URL without echoing them", () => {
    const e = fails(() => parseStorageUrl("s3://AKIAEXAMPLE:TopSecretValue@bucket/x", "url"));
    expect(e.message).toMatch(/credentials do not belong in the URL/);
    expect(e.message).not.toContain("TopSecretValue");
    expect(e.message).not.toContain("AKIAEXAMPLE");
    const e2 = fails(() => parseStorageUrl("s3://bucket/x?endpoint=http://k:TopSecretValue@127.0.0.1:9000", "url"));
    expect(e2.message).not.toContain("TopSecretValue");
  });
});

describe("parseStorageUrl: r2://", () => {
  it("names a Worker binding and an optional prefix", () => {
    expect(parseStorageUrl("r2://VAULT/etcd", "url")).toEqual({ kind: "r2", binding: "VAULT", prefix: "etcd" });
    expect(parseStorageUrl("r2://VAULT", "url")).toEqual({ kind: "r2", binding: "VAULT", prefix: "" });
    expect(fails(() => parseStorageUrl("r2://VAULT/x?region=auto", "url")).code).toBe("invalid_input");
  });
});

describe("objectKey", () => {
  const at = new Date("2026-01-05T23:59:59.999Z");
  it("lays keys out as <prefix>/<cluster>/<YYYY>/<MM>/<DD>/<backupId><suffix> in UTC", () => {
    expect(objectKey("etcd", "prod-1", at, "01JABCDEF", ".db.age")).toBe("etcd/prod-1/2026/01/05/01JABCDEF.db.age");
    expect(objectKey("etcd", "prod-1", at, "01JABCDEF", ".json")).toBe("etcd/prod-1/2026/01/05/01JABCDEF.json");
    // 23:59 UTC is already the 6th in Moscow; the layout follows UTC.
    expect(objectKey("", "c", new Date("2026-12-31T21:30:00+03:00"), "id", ".json")).toBe("c/2026/12/31/id.json");
  });

  it("has no leading slash for an empty prefix and never doubles slashes", () => {
    expect(objectKey("", "c", at, "id", ".db.age")).toBe("c/2026/01/05/id.db.age");
    expect(objectKey("/", "c", at, "id", ".db.age")).toBe("c/2026/01/05/id.db.age");
    expect(objectKey("/a//b/", "c", at, "id", ".db.age")).toBe("a/b/c/2026/01/05/id.db.age");
  });

  it("refuses parts that would change the layout", () => {
    expect(fails(() => objectKey("", "a/b", at, "id", ".json")).field).toBe("cluster");
    expect(fails(() => objectKey("", "..", at, "id", ".json")).field).toBe("cluster");
    expect(fails(() => objectKey("", "c", at, "", ".json")).field).toBe("backupId");
    expect(fails(() => objectKey("", "c", new Date(Number.NaN), "id", ".json")).field).toBe("createdAt");
  });
});

describe("object keys and list prefixes", () => {
  it.each([
    ["", /is empty/],
    ["k".repeat(1025), /longer than 1024/],
    ["/etc/passwd", /relative/],
    ["../x", /'\.\.' segments/],
    ["a/../../x", /'\.\.' segments/],
    ["a/./b", /'\.' or/],
    ["a//b", /empty segments/],
    ["a/", /empty segments/],
    ["a\\b", /backslash/],
    ["a\0b", /NUL/],
    ["a\nb", /control/],
    [`x/y${TEMP_SUFFIX}`, /must not end with/],
  ])("refuses key %#", (key, why) => {
    expect(keyProblem(key)).toMatch(why);
    const e = fails(() => assertObjectKey(key));
    expect(e.code).toBe("invalid_input");
    expect(e.field).toBe("key");
    expect(e.message).not.toContain("\0");
  });

  it("accepts ordinary keys", () => {
    for (const key of ["a", "c/2026/01/05/01J.db.age", ".etcd-vault-check/123-abc", "a b/ü.json", "x..y"]) {
      expect(keyProblem(key)).toBeNull();
    }
  });

  it("accepts list prefixes that end mid-segment or with a slash, refuses escapes", () => {
    for (const p of ["", "c", "c/", "c/2026/0", "c/2026/01/"]) expect(() => assertListPrefix(p)).not.toThrow();
    for (const p of ["/", "/c", "../", "a/../", "a//", "a\\b", "a\0"]) {
      expect(fails(() => assertListPrefix(p)).field).toBe("prefix");
    }
  });
});
