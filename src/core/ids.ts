// Identifiers: ULIDs (time-sortable) for runs, backups, links and audit events.
import { monotonicFactory } from "ulid";

const next = monotonicFactory();

export function newId(now: number = Date.now()): string {
  return next(now);
}

/** DNS-1123 label: what cluster, target and policy names must be. */
export const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
