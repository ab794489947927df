import { Schedule, spreadOffsetMs, sha256 } from "./src/core/schedule.ts";
const NOW = new Date("2026-01-01T00:00:00Z");
const schedules = [
  new Schedule({ schedule: "0 */6 * * *", timezone: "Europe/Berlin", spread: "2h" }, { now: NOW }),
  new Schedule({ schedule: "30 2 * * *", timezone: "America/New_York", spread: "4h" }, { now: NOW }),
  new Schedule({ schedule: "@every 1h", timezone: "UTC", spread: "30m" }, { now: NOW }),
];
const clusters = Array.from({ length: 10_000 }, (_, i) => `cluster-${String(i).padStart(5, "0")}`);
const since = Date.parse("2026-11-01T00:00:00Z");
for (let round = 0; round < 5; round++) {
  const now = Date.parse("2026-11-20T10:17:00Z") + round * 3600_000;
  let t = performance.now();
  const offs = schedules.map((s, p) => clusters.map(c => s.offsetFor(c, `policy-${p}`)));
  const tHash = performance.now() - t;
  t = performance.now();
  let due = 0;
  for (const [p, s] of schedules.entries()) for (const o of offs[p]!) if (s.dueSlot(now, since, o)) due++;
  const tDue = performance.now() - t;
  t = performance.now();
  for (const s of schedules) s.latestSlotAtOrBefore(now + 1);
  const tLatest = performance.now() - t;
  console.log(`hash ${tHash.toFixed(1)} ms, due ${tDue.toFixed(1)} ms, latest x3 ${tLatest.toFixed(2)} ms`);
}
