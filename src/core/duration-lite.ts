// Minimal duration parsing used by configuration before the policy layer exists; the full parser
// (with formatting) is core/duration.ts, which this delegates to once present.
const UNIT_MS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };

export function parseDurationMs(text: string): number {
  const t = text.trim();
  if (!/^(\d+[smhdw])+$/.test(t)) throw new Error("not a duration like 90s, 30m, 6h, 7d, 2w or 1h30m");
  let ms = 0;
  for (const m of t.matchAll(/(\d+)([smhdw])/g)) ms += Number(m[1]) * UNIT_MS[m[2]!]!;
  if (ms <= 0) throw new Error("duration must be greater than zero");
  return ms;
}
