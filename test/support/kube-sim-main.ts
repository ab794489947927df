// The kube simulator as its own process, for benchmarks (so its CPU and memory are not counted
// with the client's): `tsx test/support/kube-sim-main.ts --config sim.json`. Prints one JSON line
// `{"url","port","kubeconfigPath","token","dir"}` once listening; SIGTERM/SIGINT close it (and kill
// any exec children). Exec records are served at `GET /_sim/execs` (same bearer token).

import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { startKubeSim, type KubeSimConfig } from "./kube-sim.js";

const { values } = parseArgs({ options: { config: { type: "string" } } });
const config: KubeSimConfig = values.config ? (JSON.parse(readFileSync(values.config, "utf8")) as KubeSimConfig) : {};
const sim = await startKubeSim(config);
process.stdout.write(`${JSON.stringify({ url: sim.url, port: sim.port, kubeconfigPath: sim.kubeconfigPath, token: sim.token, dir: sim.dir })}\n`);

let closing = false;
const shutdown = () => {
  if (closing) return;
  closing = true;
  void sim.close().then(() => process.exit(0));
};
process.on("SIGTERM", shutdown);
process.on("SIGINT", shutdown);
