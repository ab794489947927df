import Database from "better-sqlite3";
import { copyFileSync } from "node:fs";
const now = 1795869900000;
const rows = [];
for (const p of ["hourly","six-hourly","nightly"]) for (let i = 0; i < 10000; i++) rows.push({ id: "01KZZ" + p.slice(0,3).toUpperCase() + String(i).padStart(18,"0"), cluster: "cluster-" + String(i).padStart(5,"0"), policy: p, slot: now - 2700000, nb: now - 2700000 + (i*7919)%600000 });
const byCluster = [...rows].sort((a,b) => a.cluster < b.cluster ? -1 : a.cluster > b.cluster ? 1 : a.policy < b.policy ? -1 : 1);
const variants: Array<[string, string[], any[], number]> = [
  ["policy-major (as tick)", [], rows, -2000],
  ["cluster-major", [], byCluster, -2000],
  ["cluster-major cache 64MB", [], byCluster, -65536],
  ["uq reordered (policy,slot,cluster), policy-major", ["drop index runs_slot_uq", "create unique index runs_slot_uq2 on runs(policy, slot, cluster)"], rows, -2000],
  ["uq reordered, cluster-major", ["drop index runs_slot_uq", "create unique index runs_slot_uq2 on runs(policy, slot, cluster)"], byCluster, -2000],
];
for (const [name, ddl, list, cache] of variants) {
copyFileSync("/tmp/fc1m/pristine.db", "/tmp/scratch/c.db");
const db = new Database("/tmp/scratch/c.db");
db.pragma("journal_mode = WAL"); db.pragma("synchronous = NORMAL"); db.pragma(`cache_size = ${cache}`);
for (const d of ddl) db.exec(d);
db.pragma("wal_checkpoint(TRUNCATE)");
const ts=[];
for (let rep = 0; rep < 3; rep++) {
  db.prepare("delete from runs where created_at = ?").run(now);
  let t0 = performance.now();
  const ins = db.prepare("insert into runs (id, kind, cluster, policy, slot, not_before, state, attempt, created_at, bytes) values (?, 'capture', ?, ?, ?, ?, 'queued', 1, ?, 0) on conflict do nothing");
  db.transaction(() => { for (const r of list) ins.run(r.id, r.cluster, r.policy, r.slot, r.nb, now); })();
  ts.push((performance.now() - t0).toFixed(0));
}
console.log(name, ts.join(" "));
db.close();
}
