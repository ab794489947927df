// Maps what client-node 1.4 rejects with — node-fetch FetchErrors (REST), ws ErrorEvents and
// ExecSocketErrors (exec handshake), ApiExceptions (HTTP status) — to one VaultError whose message
// names the API host and the class of failure an operator can act on: TLS, auth, refused, DNS,
// timeout. Messages are built from codes and statuses, never from request data, and scrubbed of
// credential strings.

import { VaultError, type ErrorCode } from "../core/errors.js";

const TLS_CODE = /^(CERT_|UNABLE_TO_|DEPTH_ZERO_SELF_SIGNED_CERT|SELF_SIGNED_CERT_IN_CHAIN|ERR_TLS_|ERR_SSL_|ERR_OSSL_|EPROTO$|HOSTNAME_MISMATCH)/;

type Loose = { code?: unknown; errno?: unknown; cause?: unknown; error?: unknown; message?: unknown; name?: unknown; type?: unknown; body?: unknown };

/** The system/TLS error code anywhere in the usual wrappings (ErrorEvent.error, Error.cause). */
export function errorCode(err: unknown, depth = 0): string | undefined {
  if (!err || typeof err !== "object" || depth > 3) return undefined;
  const e = err as Loose;
  if (typeof e.code === "string") return e.code;
  if (typeof e.errno === "string") return e.errno;
  return errorCode(e.error, depth + 1) ?? errorCode(e.cause, depth + 1);
}

/** HTTP status of a rejected request: ApiException.code, or ws's "Unexpected server response: 401". */
export function httpStatus(err: unknown): number | undefined {
  if (!err || typeof err !== "object") return undefined;
  const e = err as Loose;
  if (typeof e.code === "number") return e.code;
  const text = [e.message, (e.error as Loose | undefined)?.message].find((m) => typeof m === "string") as string | undefined;
  const m = text ? /Unexpected server response: (\d{3})/.exec(text) : null;
  return m ? Number(m[1]) : undefined;
}

export function scrub(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const s of secrets) if (s) out = out.split(s).join("[redacted]");
  return out.replace(/Bearer\s+[A-Za-z0-9._~+/=-]+/g, "Bearer [redacted]");
}

function firstLine(err: unknown): string {
  const e = err as Loose;
  const m = typeof e?.message === "string" ? e.message : typeof (e?.error as Loose)?.message === "string" ? String((e.error as Loose).message) : String(err);
  return m.split("\n")[0]!.slice(0, 200);
}

/** A Status body's message (ApiException.body or the body read off a rejected upgrade). */
export function statusMessage(body: unknown): string | undefined {
  if (body && typeof body === "object" && typeof (body as Loose).message === "string") return String((body as Loose).message);
  if (typeof body === "string") {
    try {
      return statusMessage(JSON.parse(body));
    } catch {
      return undefined;
    }
  }
  return undefined;
}

/** Why, in a few words, for a transport-level failure (no HTTP status); undefined if unknown. */
export function transportReason(err: unknown): string | undefined {
  const code = errorCode(err);
  if (!code) {
    const name = (err as Loose)?.name;
    if (name === "AbortError" || name === "TimeoutError" || (err as Loose)?.type === "aborted") return "timeout: no answer in time";
    if (/handshake has timed out/i.test(firstLine(err))) return "timeout: no answer in time";
    return undefined;
  }
  // exec-socket.ts's own failures (bad upgrade answer, protocol errors) say what went wrong.
  if (code.startsWith("WS_ERR_")) return `WebSocket: ${firstLine(err)}`;
  if (code === "ECONNREFUSED") return "connection refused";
  if (code === "ENOTFOUND") return "DNS: host not found";
  if (code === "EAI_AGAIN") return "DNS: lookup failed (temporary)";
  if (code === "ETIMEDOUT" || code === "ESOCKETTIMEDOUT" || code === "UND_ERR_CONNECT_TIMEOUT") return "timeout: connection timed out";
  if (code === "ECONNRESET" || code === "EPIPE") return "connection reset";
  if (code === "EHOSTUNREACH" || code === "ENETUNREACH") return "host unreachable";
  if (code === "CERT_HAS_EXPIRED") return "TLS: server certificate expired";
  if (code === "ERR_TLS_CERT_ALTNAME_INVALID" || code === "HOSTNAME_MISMATCH") return "TLS: server certificate does not match the host";
  if (TLS_CODE.test(code)) return `TLS: server certificate not trusted by the kubeconfig's CA (${code})`;
  return `network error (${code})`;
}

export function statusReason(status: number, message?: string): string {
  const detail = message ? `: ${message.slice(0, 300)}` : "";
  if (status === 401) return "auth: 401 Unauthorized (the token or client certificate was rejected)";
  if (status === 403) return `auth: 403 Forbidden${detail}`;
  if (status === 404) return `404 Not Found${detail}`;
  if (status >= 500) return `server error ${status}${detail}`;
  return `HTTP ${status}${detail}`;
}

/** One VaultError for a failed call to the API server at `host`. */
export function upstreamFailure(host: string, err: unknown, secrets: readonly string[], code: ErrorCode = "upstream_failed"): VaultError {
  if (err instanceof VaultError) return err;
  const status = httpStatus(err);
  const why = status !== undefined ? statusReason(status, statusMessage((err as Loose).body)) : (transportReason(err) ?? firstLine(err));
  return new VaultError(code, scrub(`Kubernetes API ${host}: ${why}`, secrets));
}
