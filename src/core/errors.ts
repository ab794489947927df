// One error model for the whole service. Domain code throws these; the API layer maps `code` to an
// HTTP status and the `{"error":{"code","message","requestId"}}` envelope. Messages are shown to
// users, so they must never carry secrets (kubeconfigs, tokens, keys).

export type ErrorCode =
  | "unauthorized"
  | "forbidden"
  | "not_found"
  | "conflict"
  | "gone"
  | "invalid_input"
  | "payload_too_large"
  | "unsupported_media_type"
  | "link_expired"
  | "link_invalid"
  | "link_revoked"
  | "upstream_failed"
  | "internal"
  // run errors (stored on runs, also thrown by the capture pipeline)
  | "exec_failed"
  | "snapshot_corrupt"
  | "timeout"
  | "storage_failed"
  | "cancelled";

export const HTTP_STATUS: Record<ErrorCode, number> = {
  unauthorized: 401,
  forbidden: 403,
  not_found: 404,
  conflict: 409,
  gone: 410,
  invalid_input: 400,
  payload_too_large: 413,
  unsupported_media_type: 415,
  link_expired: 403,
  link_invalid: 403,
  link_revoked: 403,
  upstream_failed: 502,
  internal: 500,
  exec_failed: 502,
  snapshot_corrupt: 502,
  timeout: 504,
  storage_failed: 502,
  cancelled: 409,
};

export class VaultError extends Error {
  readonly code: ErrorCode;
  /** The input field the error is about, when there is one (`recipients[1]`, `spec.schedule`). */
  readonly field: string | undefined;

  constructor(code: ErrorCode, message: string, options?: { field?: string; cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = "VaultError";
    this.code = code;
    this.field = options?.field;
  }

  get status(): number {
    return HTTP_STATUS[this.code];
  }
}

export const invalidInput = (field: string, message: string): VaultError =>
  new VaultError("invalid_input", `${field}: ${message}`, { field });

export const notFound = (what: string, id: string): VaultError =>
  new VaultError("not_found", `${what} '${id}' not found`);

export const conflict = (message: string): VaultError => new VaultError("conflict", message);

export const isVaultError = (e: unknown): e is VaultError => e instanceof VaultError;
