// Child processes started in their own process group (detached), killed as a group: etcd,
// wrangler/workerd and their children. A last-resort exit hook kills whatever a test forgot, so
// no server outlives the test process.
import type { ChildProcess } from "node:child_process";

const live = new Set<ChildProcess>();
let exitHookInstalled = false;

export function trackGroup(p: ChildProcess): void {
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.on("exit", () => {
      for (const q of live) killGroup(q, "SIGKILL");
    });
  }
  live.add(p);
}

export function untrackGroup(p: ChildProcess): void {
  live.delete(p);
}

export function killGroup(p: ChildProcess, signal: NodeJS.Signals): void {
  if (p.pid === undefined) return;
  try {
    process.kill(-p.pid, signal);
  } catch {
    /* already gone */
  }
}
