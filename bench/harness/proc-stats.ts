// Memory and CPU of other processes, read from /proc (Linux). VmHWM is the kernel's own peak
// resident set of a process since it started; sampling VmRSS shows the peak inside a window.

import { readFileSync } from "node:fs";

const MiB = 1024 * 1024;

export interface ProcMemory {
  /** Current resident set (MiB). */
  rssMiB: number;
  /** Peak resident set since the process started (MiB). */
  hwmMiB: number;
}

export function procMemory(pid: number): ProcMemory | null {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/status`, "utf8");
  } catch {
    return null;
  }
  const kib = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(text)?.[1] ?? NaN);
  return { rssMiB: (kib("VmRSS") * 1024) / MiB, hwmMiB: (kib("VmHWM") * 1024) / MiB };
}

/**
 * User + system CPU seconds a process has used so far (fields 14-15 of /proc/pid/stat); with
 * `children`, plus those of its children that have exited and were waited for (fields 16-17).
 */
export function procCpuSeconds(pid: number, children = false): number | null {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, "utf8");
  } catch {
    return null;
  }
  // The command name may contain spaces; fields are counted after its closing parenthesis.
  const fields = text.slice(text.lastIndexOf(")") + 2).split(" ");
  let ticks = Number(fields[11]) + Number(fields[12]);
  if (children) ticks += Number(fields[13]) + Number(fields[14]);
  return ticks / 100; // USER_HZ is 100 on Linux
}

/** Samples a process's VmRSS every `everyMs` until stopped; reports the peak seen. */
export class RssSampler {
  private timer: NodeJS.Timeout | null = null;
  peakMiB = 0;
  samples = 0;

  constructor(
    private readonly pid: number,
    private readonly everyMs = 50,
  ) {}

  start(): this {
    const tick = () => {
      const m = procMemory(this.pid);
      if (m) {
        this.samples++;
        if (m.rssMiB > this.peakMiB) this.peakMiB = m.rssMiB;
      }
    };
    tick();
    this.timer = setInterval(tick, this.everyMs);
    return this;
  }

  stop(): number {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    const last = procMemory(this.pid);
    if (last && last.rssMiB > this.peakMiB) this.peakMiB = last.rssMiB;
    return this.peakMiB;
  }
}

/** CPU seconds used by several processes between two moments. */
export class CpuMeter {
  private readonly start = new Map<string, number>();

  /** `pids`: name → pid; names listed in `withChildren` also count their exited children. */
  constructor(
    private readonly pids: Record<string, number>,
    private readonly withChildren: string[] = [],
  ) {
    for (const name of Object.keys(pids)) this.start.set(name, this.now(name));
  }

  private now(name: string): number {
    return procCpuSeconds(this.pids[name]!, this.withChildren.includes(name)) ?? 0;
  }

  read(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const name of Object.keys(this.pids)) out[name] = this.now(name) - (this.start.get(name) ?? 0);
    return out;
  }
}
