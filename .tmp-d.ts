import { Schedule } from "./src/core/schedule.ts";
const s = new Schedule({ schedule: "0 */6 * * *", timezone: "Europe/Berlin", spread: "2h" }, { now: new Date("2026-01-01T00:00:00Z") });
const offs = Array.from({ length: 30000 }, (_, i) => (i * 7919) % 7_200_000);
const since = Date.parse("2026-11-01T00:00:00Z");
for (let r = 0; r < 10; r++) {
  const now = Date.parse("2026-11-20T10:17:00Z") + r * 3600_000;
  const t = performance.now(); let n = 0;
  for (const o of offs) if (s.dueSlot(now, since, o)) n++;
  console.log((performance.now() - t).toFixed(2), "ms", n);
}
