// Audit trail: every write and every link use is recorded with who, what, on which subject, the
// outcome and the remote address. Details must never hold secrets.

import { and, desc, eq, lt } from "drizzle-orm";
import { auditEvents } from "../catalog/schema.js";
import { newId } from "../core/ids.js";
import type { RequestContext, ServiceContext } from "./context.js";
import { decodeCursor, encodeCursor, type Page } from "./paging.js";

export interface AuditEntry {
  action: string;
  subject: string;
  outcome?: "ok" | "denied" | "failed";
  detail?: Record<string, unknown>;
}

export function auditStatement(ctx: ServiceContext & Partial<RequestContext>, e: AuditEntry) {
  const now = ctx.clock.now().getTime();
  return ctx.catalog.db.insert(auditEvents).values({
    id: newId(now),
    at: now,
    actor: ctx.actor ? `${ctx.actor.role}:${ctx.actor.name}(${ctx.actor.id})` : "system",
    action: e.action,
    subject: e.subject,
    outcome: e.outcome ?? "ok",
    remoteAddr: ctx.remoteAddr ?? null,
    detail: e.detail ?? null,
  });
}

export async function audit(ctx: ServiceContext & Partial<RequestContext>, e: AuditEntry): Promise<void> {
  await auditStatement(ctx, e);
}

export interface AuditView {
  id: string;
  at: string;
  actor: string;
  action: string;
  subject: string;
  outcome: string;
  remoteAddr: string | null;
  detail: Record<string, unknown> | null;
}

export async function listAudit(
  ctx: ServiceContext,
  q: { subject?: string; action?: string; limit: number; cursor?: string },
): Promise<Page<AuditView>> {
  const conds = [];
  if (q.subject) conds.push(eq(auditEvents.subject, q.subject));
  if (q.action) conds.push(eq(auditEvents.action, q.action));
  const after = decodeCursor(q.cursor);
  if (after) conds.push(lt(auditEvents.id, after));
  const rows = await ctx.catalog.db
    .select()
    .from(auditEvents)
    .where(conds.length ? and(...conds) : undefined)
    .orderBy(desc(auditEvents.id))
    .limit(q.limit + 1);
  const items = rows.slice(0, q.limit).map((r) => ({
    id: r.id,
    at: new Date(r.at).toISOString(),
    actor: r.actor,
    action: r.action,
    subject: r.subject,
    outcome: r.outcome,
    remoteAddr: r.remoteAddr,
    detail: r.detail ?? null,
  }));
  return { items, nextCursor: rows.length > q.limit ? encodeCursor(items[items.length - 1]!.id) : null };
}
