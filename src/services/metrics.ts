// Prometheus text exposition of the catalog's health: runs and backups by state, and per cluster
// the age of its newest available backup against the tightest RPO of the policies covering it.
import { sql } from "drizzle-orm";
import type { ServiceContext } from "./context.js";
import { parseDuration } from "../core/duration.js";

const esc = (v: string) => v.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");

export async function renderMetrics(ctx: ServiceContext): Promise<string> {
  const now = ctx.clock.now().getTime();
  const out: string[] = [];
  const runs = await ctx.catalog.db.all<{ state: string; n: number }>(sql`select state, count(*) as n from runs group by state`);
  out.push("# HELP etcd_vault_runs Runs by state.", "# TYPE etcd_vault_runs gauge");
  for (const r of runs) out.push(`etcd_vault_runs{state="${esc(r.state)}"} ${r.n}`);
  const backups = await ctx.catalog.db.all<{ state: string; n: number; bytes: number | null }>(
    sql`select state, count(*) as n, sum(cipher_size) as bytes from backups group by state`,
  );
  out.push("# HELP etcd_vault_backups Backups by state.", "# TYPE etcd_vault_backups gauge");
  for (const b of backups) out.push(`etcd_vault_backups{state="${esc(b.state)}"} ${b.n}`);
  out.push("# HELP etcd_vault_backup_bytes Ciphertext bytes of the backups in each state (deleted backups are gone: not counted).", "# TYPE etcd_vault_backup_bytes gauge");
  for (const b of backups) if (b.state !== "deleted") out.push(`etcd_vault_backup_bytes{state="${esc(b.state)}"} ${b.bytes ?? 0}`);

  const newest = await ctx.catalog.db.all<{ cluster: string; at: number }>(
    sql`select c.name as cluster, (select max(b.created_at) from backups b where b.cluster = c.name and b.state = 'available') as at from clusters c`,
  );
  const rpo = await ctx.catalog.db.all<{ cluster: string; rpo: string; since: number }>(
    sql`select m.cluster as cluster, p.rpo as rpo, m.since as since from policy_members m join policies p on p.name = m.policy where p.paused = 0`,
  );
  const tightest = new Map<string, number>();
  // Since when each cluster has been covered: a cluster without a backup is only late once its
  // RPO has passed since it started matching (a freshly onboarded cluster is not an alert).
  const coveredSince = new Map<string, number>();
  for (const r of rpo) {
    const ms = parseDuration(r.rpo, "rpo");
    tightest.set(r.cluster, Math.min(ms, tightest.get(r.cluster) ?? Infinity));
    coveredSince.set(r.cluster, Math.min(r.since, coveredSince.get(r.cluster) ?? Infinity));
  }
  out.push(
    "# HELP etcd_vault_last_backup_age_seconds Age of the newest available backup of a cluster (absent: none yet).",
    "# TYPE etcd_vault_last_backup_age_seconds gauge",
  );
  for (const n of newest) if (n.at !== null) out.push(`etcd_vault_last_backup_age_seconds{cluster="${esc(n.cluster)}"} ${Math.round((now - n.at) / 1000)}`);
  out.push(
    "# HELP etcd_vault_rpo_breached 1 when a cluster's newest available backup (or, with none yet, the time it started matching a policy) is older than the tightest RPO of its policies.",
    "# TYPE etcd_vault_rpo_breached gauge",
  );
  for (const n of newest) {
    const limit = tightest.get(n.cluster);
    if (limit === undefined) continue;
    const reference = n.at ?? coveredSince.get(n.cluster)!;
    out.push(`etcd_vault_rpo_breached{cluster="${esc(n.cluster)}"} ${now - reference > limit ? 1 : 0}`);
  }
  return out.join("\n") + "\n";
}
