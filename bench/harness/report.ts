// Output helpers shared by the benchmarks: aligned tables, sizes, the machine's facts.

import { execFileSync } from "node:child_process";
import { availableParallelism, cpus, loadavg, totalmem } from "node:os";

export const MiB = 1024 * 1024;
export const GiB = 1024 * MiB;

/** Prints an aligned plain-text table (numbers right-aligned). */
export function printTable(title: string, header: string[], rows: Array<Array<string | number>>): void {
  const cells = [header, ...rows.map((r) => r.map((c) => String(c)))];
  const widths = header.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? "").length)));
  const numeric = header.map((_, i) => rows.length > 0 && rows.every((r) => typeof r[i] === "number" || /^[\d.,:×x%<>≤ -]+\S*$/.test(String(r[i]))));
  const line = (r: string[]) =>
    r.map((c, i) => (i > 0 && numeric[i] ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join("  ").trimEnd();
  process.stdout.write(`\n${title}\n`);
  process.stdout.write(`${line(cells[0]!)}\n${widths.map((w) => "-".repeat(w)).join("  ")}\n`);
  for (const r of cells.slice(1)) process.stdout.write(`${line(r)}\n`);
}

export const fixed = (n: number, digits = 1): string => (Number.isFinite(n) ? n.toFixed(digits) : "n/a");

/** `256m`, `1g`, `512MiB`, `1GiB`, plain bytes. */
export function parseSize(text: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*(b|k|kib|m|mib|g|gib)?$/i.exec(text.trim());
  if (!m) throw new Error(`not a size: '${text}' (like 256m or 1g)`);
  const unit = (m[2] ?? "b").toLowerCase()[0]!;
  const factor = { b: 1, k: 1024, m: MiB, g: GiB }[unit]!;
  return Math.round(Number(m[1]) * factor);
}

export function formatSize(bytes: number): string {
  return bytes >= GiB ? `${fixed(bytes / GiB, 2)} GiB` : `${fixed(bytes / MiB, 1)} MiB`;
}

/** nproc, CPU model, memory, node, load: printed with every result (add tool versions in `extra`). */
export function machineFacts(extra: Record<string, string> = {}): Record<string, string> {
  return {
    date: new Date().toISOString(),
    nproc: String(availableParallelism()),
    cpu: cpus()[0]?.model ?? "unknown",
    memory: `${Math.round(totalmem() / GiB)} GiB`,
    node: process.version,
    loadavg: loadavg().map((l) => l.toFixed(2)).join(" "),
    ...extra,
  };
}

export function toolVersion(cmd: string, args: string[]): string {
  try {
    return execFileSync(cmd, args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] }).split("\n")[0]!.trim();
  } catch {
    return "n/a";
  }
}

export function printFacts(facts: Record<string, string>): void {
  process.stdout.write(`machine: ${Object.entries(facts).map(([k, v]) => `${k}=${v}`).join("; ")}\n`);
}

/** Percentile of already sorted numbers (nearest rank). */
export function percentile(sorted: number[], p: number): number {
  if (!sorted.length) return NaN;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank]!;
}

export function pass(ok: boolean): string {
  return ok ? "PASS" : "MISS";
}
