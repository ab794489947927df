import { copyFileSync, mkdirSync, rmSync } from "node:fs";
import { loadConfig } from "../../src/entry/config.js";
import { buildNodeService } from "../../src/entry/node.js";
import { tick } from "../../src/scheduler/tick.js";
import { FLEET_NOW } from "../harness/fleet-catalog.js";
rmSync("/tmp/scratch/data", { recursive: true, force: true });
mkdirSync("/tmp/scratch/data", { recursive: true });
copyFileSync("/tmp/fc1m/pristine.db", "/tmp/scratch/data/catalog.db");
const config = loadConfig({ ETCD_VAULT_DATA_DIR: "/tmp/scratch/data", ETCD_VAULT_ADMIN_TOKEN: "x".repeat(30), ETCD_VAULT_MASTER_KEY: "00".repeat(31) + "07", ETCD_VAULT_SCHEDULER: "off", ETCD_VAULT_LOG_LEVEL: "error" });
const s = await buildNodeService(config, { quiet: true, clock: { now: () => new Date(FLEET_NOW) } });
for (let i = 0; i < 3; i++) {
  if (i) s.catalog.sqlite.prepare("delete from runs where created_at = ? and state = 'queued'").run(FLEET_NOW);
  const t0 = performance.now();
  const r = await tick(s.svc);
  console.log("tick", (performance.now() - t0).toFixed(1), JSON.stringify(r));
}
await s.close();
