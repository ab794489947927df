// Runs a command under GNU time (/usr/bin/time) to get what only the kernel knows about a process
// that has exited: its peak resident set and its CPU time.

import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { REPO_ROOT } from "./processes.js";

export interface TimedRun {
  wallS: number;
  maxRssMiB: number;
  cpuS: number;
  stdout: string;
}

export function timedCommand(argv: string[], opts: { env?: Record<string, string> } = {}): Promise<TimedRun> {
  const dir = mkdtempSync(join(tmpdir(), "etcd-vault-time-"));
  const stats = join(dir, "time.txt");
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn("/usr/bin/time", ["-f", "%M %U %S", "-o", stats, ...argv], {
      cwd: REPO_ROOT,
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, ...opts.env },
    });
    let out = "";
    let err = "";
    child.stdout!.on("data", (d: Buffer) => (out += d.toString()));
    child.stderr!.on("data", (d: Buffer) => (err = (err + d.toString()).slice(-4000)));
    child.once("exit", (code) => {
      const wallS = (performance.now() - t0) / 1000;
      try {
        if (code !== 0) throw new Error(`${argv.join(" ")} failed (${code}): ${err.trim().slice(-1500)}`);
        const [kib, user, sys] = readFileSync(stats, "utf8").trim().split("\n").pop()!.split(" ").map(Number);
        resolve({ wallS, maxRssMiB: kib! / 1024, cpuS: user! + sys!, stdout: out });
      } catch (e) {
        reject(e);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  });
}
