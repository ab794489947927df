// Storage target URLs (`ETCD_VAULT_STORAGE`, target `url`) and the object-key layout
// (DESIGN "Pinned semantics → Storage layout"). Runtime-neutral: only the WHATWG URL parser.
//
//   file:///abs/dir            file://./rel/dir
//   s3://bucket/prefix?endpoint=http://127.0.0.1:9000&region=eu-west-1&forcePathStyle=true
//                     &storageClass=STANDARD_IA&checksums=false&signedPayload=true
//   r2://BINDING/prefix        (Worker edition: an R2 bucket binding)
//
// Messages never echo the URL: a pasted URL may carry secrets in its userinfo.

import { invalidInput } from "./errors.js";

export interface FileTargetSpec {
  kind: "file";
  /** As written: absolute, or relative (`./x`, resolved by the Node store against the cwd). */
  dir: string;
}

export interface S3TargetSpec {
  kind: "s3";
  bucket: string;
  /** Key prefix inside the bucket, without leading or trailing slash; "" for none. */
  prefix: string;
  endpoint: string | null;
  region: string;
  forcePathStyle: boolean;
  storageClass: string | null;
  /**
   * Per-part CRC32 checksums on upload (default true). `checksums=false` is for S3-compatible
   * servers that reject or mangle them (s3rver stores aws-chunked bodies raw).
   */
  checksums: boolean;
  /**
   * Part and object bodies hashed into the SigV4 signature (default false: sent as
   * UNSIGNED-PAYLOAD, which saves a SHA-256 pass over every byte). `signedPayload=true` is for
   * S3-compatible servers that refuse UNSIGNED-PAYLOAD.
   */
  signedPayload: boolean;
}

export interface R2TargetSpec {
  kind: "r2";
  /** Worker binding name of the bucket (`VAULT`). */
  binding: string;
  prefix: string;
}

export type TargetSpec = FileTargetSpec | S3TargetSpec | R2TargetSpec;

export const DEFAULT_S3_REGION = "us-east-1";

const S3_PARAMS = new Set(["endpoint", "region", "forcePathStyle", "storageClass", "checksums", "signedPayload"]);
// AWS rules (3–63 chars, lowercase letters, digits, dots, hyphens), plus `_` which some
// S3-compatible servers still accept for old buckets.
const BUCKET_RE = /^[a-z0-9][a-z0-9._-]{1,61}[a-z0-9]$/;
const REGION_RE = /^[a-z0-9][a-z0-9-]{0,62}$/;
const STORAGE_CLASS_RE = /^[A-Z][A-Z0-9_]{0,63}$/;
const BINDING_RE = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;

export function parseStorageUrl(url: string, field: string): TargetSpec {
  const text = url.trim();
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(text)?.[1]?.toLowerCase();
  switch (scheme) {
    case "file":
      return parseFileUrl(text.slice("file://".length), field);
    case "s3":
      return parseS3Url(text, field);
    case "r2":
      return parseR2Url(text, field);
    default:
      throw invalidInput(field, "must be a file://, s3:// or r2:// URL");
  }
}

function parseFileUrl(rest: string, field: string): FileTargetSpec {
  // Parsed by hand: the WHATWG parser reads `file://./rel` as host "." and drops the dot.
  if (/[?#]/.test(rest)) throw invalidInput(field, "a file:// URL takes no query or fragment");
  let path = rest.startsWith("localhost/") ? rest.slice("localhost".length) : rest;
  if (!(path.startsWith("/") || path === "." || path === ".." || path.startsWith("./") || path.startsWith("../"))) {
    throw invalidInput(field, "use file:///absolute/dir or file://./relative/dir");
  }
  path = decodeLoosely(path);
  if (path.includes("\0")) throw invalidInput(field, "the path contains a NUL byte");
  if (path.length > 1) path = path.replace(/\/+$/, "");
  return { kind: "file", dir: path };
}

function parseS3Url(text: string, field: string): S3TargetSpec {
  const u = parseUrl(text, field);
  if (u.username || u.password) {
    throw invalidInput(field, "credentials do not belong in the URL; set them on the target or use the AWS environment");
  }
  if (u.port) throw invalidInput(field, "an s3:// URL names a bucket, not a host:port; put the server in ?endpoint=");
  if (u.hash) throw invalidInput(field, "an s3:// URL takes no fragment");
  const bucket = u.hostname;
  if (!bucket) throw invalidInput(field, "the bucket name is missing (s3://bucket/prefix)");
  if (!BUCKET_RE.test(bucket) || bucket.includes("..")) {
    throw invalidInput(field, `'${bucket}' is not a valid bucket name (3–63 lowercase letters, digits, '.', '-')`);
  }
  const prefix = parsePrefix(rawPath(text), field);
  const params = singleParams(u.searchParams, S3_PARAMS, field);

  let endpoint: string | null = null;
  if (params.endpoint !== undefined) {
    let e: URL;
    try {
      e = new URL(params.endpoint);
    } catch {
      throw invalidInput(field, "endpoint must be an http:// or https:// URL");
    }
    if (e.protocol !== "http:" && e.protocol !== "https:") throw invalidInput(field, "endpoint must be an http:// or https:// URL");
    if (e.username || e.password) throw invalidInput(field, "endpoint must not carry credentials");
    if (e.search || e.hash) throw invalidInput(field, "endpoint must not carry a query or fragment");
    endpoint = e.href.replace(/\/+$/, "");
  }
  const region = params.region ?? DEFAULT_S3_REGION;
  if (!REGION_RE.test(region)) throw invalidInput(field, `'${region}' is not a valid region name`);
  const storageClass = params.storageClass ?? null;
  if (storageClass !== null && !STORAGE_CLASS_RE.test(storageClass)) {
    throw invalidInput(field, `storageClass '${storageClass}' is not a storage class name (like STANDARD_IA)`);
  }
  return {
    kind: "s3",
    bucket,
    prefix,
    endpoint,
    region,
    forcePathStyle: parseBool(params.forcePathStyle, false, "forcePathStyle", field),
    storageClass,
    checksums: parseBool(params.checksums, true, "checksums", field),
    signedPayload: parseBool(params.signedPayload, false, "signedPayload", field),
  };
}

function parseR2Url(text: string, field: string): R2TargetSpec {
  const u = parseUrl(text, field);
  if (u.username || u.password || u.port || u.search || u.hash) {
    throw invalidInput(field, "an r2:// URL is r2://BINDING/prefix, nothing more");
  }
  if (!BINDING_RE.test(u.hostname)) throw invalidInput(field, "r2://BINDING/prefix needs a Worker binding name");
  return { kind: "r2", binding: u.hostname, prefix: parsePrefix(rawPath(text), field) };
}

function parseUrl(text: string, field: string): URL {
  try {
    return new URL(text);
  } catch {
    throw invalidInput(field, "is not a valid URL");
  }
}

/** The path as written: the URL parser would resolve `a/../b` to `b` without a word. */
function rawPath(text: string): string {
  const afterScheme = text.slice(text.indexOf("://") + 3);
  const end = afterScheme.search(/[?#]/);
  const hostAndPath = end < 0 ? afterScheme : afterScheme.slice(0, end);
  const slash = hostAndPath.indexOf("/");
  return slash < 0 ? "" : hostAndPath.slice(slash);
}

function parsePrefix(pathname: string, field: string): string {
  const raw = pathname.replace(/^\/+/, "").replace(/\/+$/, "");
  if (raw === "") return "";
  const prefix = decodeLoosely(raw);
  const bad = keyProblem(prefix);
  if (bad) throw invalidInput(field, `prefix ${bad}`);
  return prefix;
}

function singleParams(sp: URLSearchParams, allowed: Set<string>, field: string): Record<string, string | undefined> {
  const out: Record<string, string | undefined> = {};
  for (const [name, value] of sp) {
    if (!allowed.has(name)) {
      throw invalidInput(field, `unknown parameter '${name}' (allowed: ${[...allowed].join(", ")})`);
    }
    if (out[name] !== undefined) throw invalidInput(field, `parameter '${name}' is given twice`);
    out[name] = value;
  }
  return out;
}

function parseBool(v: string | undefined, fallback: boolean, name: string, field: string): boolean {
  if (v === undefined || v === "") return fallback;
  if (v === "true" || v === "1") return true;
  if (v === "false" || v === "0") return false;
  throw invalidInput(field, `${name} must be true or false`);
}

/** Percent-decodes, keeping the text as is where it is not valid percent-encoding (`100%`). */
function decodeLoosely(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

// ---------------------------------------------------------------------------------------------
// Object keys

/** Suffix of the temp files the local store writes; never a valid key, never listed. */
export const TEMP_SUFFIX = ".etcd-vault-tmp";

/**
 * Why `key` is not a safe relative object key, or null when it is. Keys are `/`-separated,
 * relative, with no empty, `.` or `..` segment, no backslash, NUL or other control character,
 * so that a key can never name a path outside a store's root.
 */
export function keyProblem(key: string): string | null {
  if (key === "") return "is empty";
  if (key.length > 1024) return "is longer than 1024 characters";
  if (key.startsWith("/")) return "must be relative (starts with '/')";
  if (key.includes("\\")) return "must not contain a backslash";
  if (/[\u0000-\u001f\u007f]/.test(key)) return "must not contain NUL or control characters";
  for (const seg of key.split("/")) {
    if (seg === "") return "must not contain empty segments ('//' or a trailing '/')";
    if (seg === "." || seg === "..") return "must not contain '.' or '..' segments";
  }
  if (key.endsWith(TEMP_SUFFIX)) return `must not end with ${TEMP_SUFFIX}`;
  return null;
}

/** Throws `invalid_input` (field `key`) unless `key` is a safe object key. */
export function assertObjectKey(key: string, field = "key"): void {
  const bad = keyProblem(key);
  if (bad) throw invalidInput(field, `object key '${printable(key)}' ${bad}`);
}

/**
 * Throws unless `prefix` is a safe list prefix: "" or a key-like string that may end with `/`
 * or in the middle of a segment (`2026/0` matches `2026/01/…`).
 */
export function assertListPrefix(prefix: string, field = "prefix"): void {
  if (prefix === "") return;
  const cut = prefix.lastIndexOf("/");
  const dirs = cut < 0 ? "" : prefix.slice(0, cut);
  const tail = prefix.slice(cut + 1);
  let bad = cut < 0 ? null : keyProblem(dirs || "/");
  if (!bad && /[\\\u0000-\u001f\u007f]/.test(tail)) bad = "must not contain a backslash or control characters";
  if (bad) throw invalidInput(field, `list prefix '${printable(prefix)}' ${bad}`);
}

const printable = (s: string) => s.replace(/[\u0000-\u001f\u007f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, "0")}`);

export type ObjectSuffix = ".db.age" | ".json";

/**
 * `<prefix>/<cluster>/<YYYY>/<MM>/<DD>/<backupId><suffix>`, date in UTC, no leading slash when
 * the prefix is empty, no double slashes.
 *
 * Note: a store opened from a target spec already applies the target's own prefix to every key,
 * so keys handed to `BlobStore.put/get` are built with `prefix = ""`; pass the target prefix only
 * to show the full bucket key.
 */
export function objectKey(prefix: string, cluster: string, createdAt: Date, backupId: string, suffix: ObjectSuffix): string {
  const t = createdAt.getTime();
  if (!Number.isFinite(t)) throw invalidInput("createdAt", "is not a valid date");
  for (const [name, v] of [["cluster", cluster], ["backupId", backupId]] as const) {
    if (v === "" || v.includes("/") || v === "." || v === ".." || keyProblem(v)) {
      throw invalidInput(name, `'${printable(v)}' cannot be part of an object key`);
    }
  }
  const y = String(createdAt.getUTCFullYear()).padStart(4, "0");
  const m = String(createdAt.getUTCMonth() + 1).padStart(2, "0");
  const d = String(createdAt.getUTCDate()).padStart(2, "0");
  const head = prefix.split("/").filter(Boolean).join("/");
  return [head, cluster, y, m, d, `${backupId}${suffix}`].filter(Boolean).join("/");
}
