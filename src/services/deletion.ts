// Deleting backups: a row is marked `deleting`, then its object and sidecar are removed and it
// becomes `deleted`. A failed delete stays `deleting` and the next sweep (every tick) retries.

import { and, eq, inArray } from "drizzle-orm";
import { backups } from "../catalog/schema.js";
import type { ServiceContext } from "./context.js";
import { sidecarKey } from "./object-keys.js";

export async function sweepDeletions(ctx: ServiceContext, opts: { ids?: string[]; limit?: number } = {}): Promise<number> {
  const conds = [eq(backups.state, "deleting")];
  if (opts.ids) conds.push(inArray(backups.id, opts.ids));
  const rows = await ctx.catalog.db
    .select()
    .from(backups)
    .where(and(...conds))
    .limit(opts.limit ?? 500);
  let deleted = 0;
  for (const r of rows) {
    try {
      const store = await ctx.storeFor(r.target);
      await store.delete(r.objectKey);
      await store.delete(sidecarKey(r.objectKey));
      await ctx.catalog.db
        .update(backups)
        .set({ state: "deleted", updatedAt: ctx.clock.now().getTime() })
        .where(and(eq(backups.id, r.id), eq(backups.state, "deleting")));
      deleted++;
    } catch (e) {
      ctx.log.warn("backup deletion failed; will retry at the next sweep", { backup: r.id, error: (e as Error).message });
    }
  }
  return deleted;
}
