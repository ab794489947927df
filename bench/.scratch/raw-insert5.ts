import Database from "better-sqlite3";
import { copyFileSync, statSync } from "node:fs";
const now = 1795869900000;
const rows = [];
for (const p of ["hourly","six-hourly","nightly"]) for (let i = 0; i < 10000; i++) rows.push({ id: "01KZZ" + p.slice(0,3).toUpperCase() + String(i).padStart(18,"0"), cluster: "cluster-" + String(i).padStart(5,"0"), policy: p, slot: now - 2700000, nb: now - 2700000 + (i*7919)%600000 });
copyFileSync("/tmp/fc1m/pristine.db", "/tmp/scratch/c.db");
const db = new Database("/tmp/scratch/c.db");
db.pragma("journal_mode = WAL"); db.pragma("synchronous = NORMAL");
db.pragma("wal_checkpoint(TRUNCATE)");
for (let rep = 0; rep < 6; rep++) {
  db.prepare("delete from runs where created_at = ?").run(now);
  db.pragma("wal_checkpoint(TRUNCATE)");
  let t0 = performance.now();
  const ins = db.prepare("insert into runs (id, kind, cluster, policy, slot, not_before, state, attempt, created_at, bytes) values (?, 'capture', ?, ?, ?, ?, 'queued', 1, ?, 0) on conflict do nothing");
  db.transaction(() => { for (const r of rows) ins.run(r.id, r.cluster, r.policy, r.slot, r.nb, now); })();
  console.log((performance.now() - t0).toFixed(0), "ms; wal MB", (statSync("/tmp/scratch/c.db-wal").size/1048576).toFixed(1));
}
