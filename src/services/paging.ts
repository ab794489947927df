// Lists are `{items, nextCursor}`, newest first. The cursor is opaque to clients: base64url of
// the last id seen (ids are ULIDs or names, both sort).
import { invalidInput } from "../core/errors.js";
import { base64UrlDecode, base64UrlEncode } from "../crypto/secret-box.js";

export interface Page<T> {
  items: T[];
  nextCursor: string | null;
}

export function encodeCursor(lastId: string): string {
  return base64UrlEncode(new TextEncoder().encode(`c1:${lastId}`));
}

export function decodeCursor(cursor: string | undefined): string | null {
  if (!cursor) return null;
  try {
    const text = new TextDecoder("utf-8", { fatal: true }).decode(base64UrlDecode(cursor));
    if (text.startsWith("c1:") && text.length > 3) return text.slice(3);
  } catch {
    /* fall through */
  }
  throw invalidInput("cursor", "not a cursor returned by this API");
}
