import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { Cron } from "croner";
import { Schedule, sha256, spreadOffsetMs, zoneOffsets, checkTimeZone } from "../src/core/schedule.js";
import { rejection } from "./helpers/expect-error.js";

const M = 60_000;
const H = 60 * M;
const D = 24 * H;
const at = (iso: string): number => Date.parse(iso);
const iso = (d: Date | null): string | null => (d === null ? null : d.toISOString().replace(".000Z", "Z"));
const NOW = new Date("2026-01-01T00:00:00Z"); // anchors the DST scan behind smallestIntervalMs

const schedule = (expr: string, timezone = "UTC", spread?: string) =>
  new Schedule({ schedule: expr, timezone, spread: spread ?? null }, { now: NOW });

describe("sha256 (pure TS, FIPS 180-4)", () => {
  it("matches node:crypto on the standard vectors and around the padding boundaries", () => {
    for (const length of [0, 1, 3, 55, 56, 57, 63, 64, 65, 119, 120, 127, 128, 129, 1000, 70_000]) {
      const data = new Uint8Array(length).map((_, i) => (i * 131 + length) & 0xff);
      expect(Buffer.from(sha256(data)).toString("hex")).toBe(createHash("sha256").update(data).digest("hex"));
    }
    expect(Buffer.from(sha256(new TextEncoder().encode("abc"))).toString("hex")).toBe(
      "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
    );
  });

  it("matches node:crypto on generated inputs", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (data) => {
        expect(Buffer.from(sha256(data)).toString("hex")).toBe(createHash("sha256").update(data).digest("hex"));
      }),
      { numRuns: 2000 },
    );
  });
});

describe("spreadOffsetMs", () => {
  const reference = (cluster: string, policy: string, spread: number) =>
    createHash("sha256").update(`${cluster}/${policy}`).digest().readUInt32BE(0) % spread;

  it("is the first 4 bytes of SHA-256(cluster/policy), big-endian, mod spread (pinned values)", () => {
    expect(spreadOffsetMs("prod-eu-1", "daily", 3_600_000)).toBe(3_030_747);
    expect(spreadOffsetMs("prod-eu-2", "daily", 3_600_000)).toBe(976_011);
    expect(spreadOffsetMs("prod-eu-1", "hourly", 600_000)).toBe(544_641);
  });

  it("agrees with node:crypto, stays within [0, spread) and is 0 without spread", () => {
    fc.assert(
      fc.property(fc.string({ unit: "binary" }), fc.string(), fc.integer({ min: 1, max: 7 * D }), (cluster, policy, spread) => {
        const offset = spreadOffsetMs(cluster, policy, spread);
        expect(offset).toBe(reference(cluster, policy, spread));
        expect(offset).toBeGreaterThanOrEqual(0);
        expect(offset).toBeLessThan(spread);
        expect(spreadOffsetMs(cluster, policy, 0)).toBe(0);
      }),
      { numRuns: 1000 },
    );
  });

  it("encodes non-ASCII names as UTF-8 (lone surrogates as U+FFFD, like node:crypto)", () => {
    for (const name of ["prod-ü", "生产", "🦀-cluster", "bad\ud800half", "x".repeat(500)]) {
      expect(spreadOffsetMs(name, "p", 1_000_003)).toBe(reference(name, "p", 1_000_003));
    }
  });

  it("spreads a fleet over the whole window", () => {
    const spread = 30 * M;
    const offsets = Array.from({ length: 1000 }, (_, i) => spreadOffsetMs(`cluster-${i}`, "prod", spread));
    const buckets = new Array(10).fill(0);
    for (const offset of offsets) buckets[Math.floor((offset / spread) * 10)]++;
    for (const count of buckets) expect(count).toBeGreaterThan(60); // ~100 each
  });

  it("is the schedule's offset for a pair", () => {
    const s = schedule("0 */6 * * *", "UTC", "1h");
    expect(s.offsetFor("prod-eu-1", "daily")).toBe(3_030_747);
    expect(s.forPair("prod-eu-1", "daily").offsetMs).toBe(3_030_747);
  });
});

describe("zone offsets (cached) agree with Intl", () => {
  const intlOffset = (zone: string, t: number): number => {
    const parts = Object.fromEntries(
      new Intl.DateTimeFormat("en-US", {
        timeZone: zone, hourCycle: "h23", year: "numeric", month: "numeric", day: "numeric",
        hour: "numeric", minute: "numeric", second: "numeric",
      }).formatToParts(t).map((p) => [p.type, Number(p.value)]),
    );
    const second = Math.floor(t / 1000) * 1000;
    return Date.UTC(parts.year!, parts.month! - 1, parts.day!, parts.hour!, parts.minute!, parts.second!) - second;
  };
  const zones = ["UTC", "Europe/Berlin", "America/New_York", "America/Santiago", "Australia/Lord_Howe", "Asia/Kathmandu", "Pacific/Chatham"];

  it("at random instants 1990–2060", () => {
    fc.assert(
      fc.property(fc.constantFrom(...zones), fc.integer({ min: at("1990-01-01T00:00:00Z"), max: at("2060-01-01T00:00:00Z") }), (zone, t) => {
        expect(zoneOffsets(zone).offsetAt(t)).toBe(intlOffset(zone, t));
      }),
      { numRuns: 3000 },
    );
  });

  it("to the second around transitions", () => {
    for (const zone of zones) {
      const z = zoneOffsets(zone);
      for (const { at: t, before, after } of z.transitions(at("2026-01-01T00:00:00Z"), at("2028-01-01T00:00:00Z"))) {
        expect(intlOffset(zone, t - 1000)).toBe(before);
        expect(intlOffset(zone, t)).toBe(after);
        expect(z.offsetAt(t - 1)).toBe(before);
        expect(z.offsetAt(t)).toBe(after);
      }
    }
    expect(zoneOffsets("Europe/Berlin").transitions(at("2026-01-01T00:00:00Z"), at("2027-01-01T00:00:00Z"))).toEqual([
      { at: at("2026-03-29T01:00:00Z"), before: H, after: 2 * H },
      { at: at("2026-10-25T01:00:00Z"), before: 2 * H, after: H },
    ]);
  });

  it("validates zone names", () => {
    expect(checkTimeZone("Europe/Berlin")).toBe("Europe/Berlin");
    for (const bad of ["Mars/Olympus", "", "+01:00", "Europe/Berlin; rm", 42]) {
      const error = rejection(() => checkTimeZone(bad));
      expect(error.code).toBe("invalid_input");
      expect(error.field).toBe("timezone");
    }
  });
});

describe("@every: multiples of the duration since the Unix epoch", () => {
  it("aligns to the epoch in UTC whatever the time zone", () => {
    for (const zone of ["UTC", "Asia/Kathmandu", "America/St_Johns"]) {
      const s = schedule("@every 6h", zone);
      expect(s.slotsBetween(at("2026-03-29T00:00:00Z"), at("2026-03-30T00:00:00Z")).map(iso)).toEqual([
        "2026-03-29T00:00:00Z", "2026-03-29T06:00:00Z", "2026-03-29T12:00:00Z", "2026-03-29T18:00:00Z",
      ]);
    }
  });

  it("odd periods are still multiples since 1970-01-01T00:00:00Z", () => {
    const s = schedule("@every 7m");
    const t = at("2026-11-20T14:03:17Z");
    const latest = s.latestSlotAtOrBefore(t)!.getTime();
    expect(latest % (7 * M)).toBe(0);
    expect(latest).toBeLessThanOrEqual(t);
    expect(t - latest).toBeLessThan(7 * M);
    expect(s.firstSlotAfter(latest)!.getTime()).toBe(latest + 7 * M);
    expect(s.smallestIntervalMs).toBe(7 * M);
    expect(s.largestIntervalMs).toBe(7 * M);
  });

  it("a slot exactly at t is at-or-before t and not after it", () => {
    const s = schedule("@every 1h30m");
    const slot = at("2026-01-01T01:30:00Z");
    expect(s.latestSlotAtOrBefore(slot)!.getTime()).toBe(slot);
    expect(s.firstSlotAfter(slot)!.getTime()).toBe(slot + 90 * M);
    expect(s.slotsBetween(slot, slot + 90 * M).map(iso)).toEqual(["2026-01-01T01:30:00Z"]);
  });
});

describe("cron slots across DST", () => {
  // The pinned rule: a slot fires the first time the wall clock reaches or passes a matching
  // local time. Spring forward: skipped local times fire once, at the transition instant (the
  // next valid instant). Fall back: repeated local times fire once, at their first occurrence.
  const slots = (expr: string, zone: string, from: string, to: string) =>
    schedule(expr, zone).slotsBetween(at(from), at(to)).map(iso);

  it("Europe/Berlin spring forward: 02:30 on 2026-03-29 does not exist → fires at 03:00 CEST", () => {
    expect(slots("30 2 * * *", "Europe/Berlin", "2026-03-28T00:00:00Z", "2026-03-31T00:00:00Z")).toEqual([
      "2026-03-28T01:30:00Z", // 02:30 CET
      "2026-03-29T01:00:00Z", // 03:00 CEST, the first valid instant after the gap
      "2026-03-30T00:30:00Z", // 02:30 CEST
    ]);
  });

  it("Europe/Berlin fall back: 02:30 on 2026-10-25 happens twice → fires once, at the first (CEST)", () => {
    expect(slots("30 2 * * *", "Europe/Berlin", "2026-10-24T00:00:00Z", "2026-10-27T00:00:00Z")).toEqual([
      "2026-10-24T00:30:00Z",
      "2026-10-25T00:30:00Z", // 02:30 CEST; 02:30 CET (01:30Z) does not fire
      "2026-10-26T01:30:00Z",
    ]);
  });

  it("America/New_York both ways (2026-03-08 02:30, 2026-11-01 01:30)", () => {
    expect(slots("30 2 * * *", "America/New_York", "2026-03-07T00:00:00Z", "2026-03-10T00:00:00Z")).toEqual([
      "2026-03-07T07:30:00Z",
      "2026-03-08T07:00:00Z", // 03:00 EDT
      "2026-03-09T06:30:00Z",
    ]);
    expect(slots("30 1 * * *", "America/New_York", "2026-10-31T00:00:00Z", "2026-11-03T00:00:00Z")).toEqual([
      "2026-10-31T05:30:00Z",
      "2026-11-01T05:30:00Z", // 01:30 EDT; 01:30 EST (06:30Z) does not fire
      "2026-11-02T06:30:00Z",
    ]);
  });

  it("every 15 minutes: the skipped hour collapses into one slot, the repeated hour adds none", () => {
    expect(slots("*/15 * * * *", "Europe/Berlin", "2026-03-29T00:30:00Z", "2026-03-29T01:31:00Z")).toEqual([
      "2026-03-29T00:30:00Z", "2026-03-29T00:45:00Z", "2026-03-29T01:00:00Z", "2026-03-29T01:15:00Z", "2026-03-29T01:30:00Z",
    ]);
    expect(slots("*/15 * * * *", "Europe/Berlin", "2026-10-24T23:45:00Z", "2026-10-25T02:16:00Z")).toEqual([
      "2026-10-24T23:45:00Z", // 01:45 CEST
      "2026-10-25T00:00:00Z", "2026-10-25T00:15:00Z", "2026-10-25T00:30:00Z", "2026-10-25T00:45:00Z", // 02:xx CEST
      "2026-10-25T02:00:00Z", "2026-10-25T02:15:00Z", // 03:00 CET — 02:xx CET fired already
    ]);
  });

  it("croner alone differs at both edges (why we map wall times ourselves)", () => {
    const next = (expr: string, zone: string, from: string) =>
      iso(new Cron(expr, { timezone: zone, paused: true }).nextRun(new Date(from)));
    // spring forward: croner shifts by the gap (03:30) instead of firing at the next valid instant (03:00)
    expect(next("30 2 * * *", "Europe/Berlin", "2026-03-28T12:00:00Z")).toBe("2026-03-29T01:30:00Z");
    expect(next("30 2 * * *", "America/New_York", "2026-03-07T12:00:00Z")).toBe("2026-03-08T07:30:00Z");
    // fall back: Berlin picks the second occurrence (New York the first) and skips the first pass
    expect(next("30 2 * * *", "Europe/Berlin", "2026-10-24T12:00:00Z")).toBe("2026-10-25T01:30:00Z");
    expect(next("30 1 * * *", "America/New_York", "2026-10-31T12:00:00Z")).toBe("2026-11-01T05:30:00Z");
    expect(next("*/15 * * * *", "Europe/Berlin", "2026-10-25T00:20:00Z")).toBe("2026-10-25T01:30:00Z");
    // ours, for the same questions
    expect(iso(schedule("30 2 * * *", "Europe/Berlin").firstSlotAfter(at("2026-03-28T12:00:00Z")))).toBe("2026-03-29T01:00:00Z");
    expect(iso(schedule("30 2 * * *", "America/New_York").firstSlotAfter(at("2026-03-07T12:00:00Z")))).toBe("2026-03-08T07:00:00Z");
    expect(iso(schedule("30 2 * * *", "Europe/Berlin").firstSlotAfter(at("2026-10-24T12:00:00Z")))).toBe("2026-10-25T00:30:00Z");
    expect(iso(schedule("*/15 * * * *", "Europe/Berlin").firstSlotAfter(at("2026-10-25T00:20:00Z")))).toBe("2026-10-25T00:30:00Z");
  });

  it("latest-at-or-before inside the repeated hour sees the first-pass slot", () => {
    const s = schedule("30 2 * * *", "Europe/Berlin");
    expect(iso(s.latestSlotAtOrBefore(at("2026-10-25T01:45:00Z")))).toBe("2026-10-25T00:30:00Z"); // 02:45 CET
    expect(iso(s.firstSlotAfter(at("2026-10-25T01:15:00Z")))).toBe("2026-10-26T01:30:00Z"); // 02:15 CET
    expect(iso(s.latestSlotAtOrBefore(at("2026-03-29T01:00:00Z")))).toBe("2026-03-29T01:00:00Z");
    expect(iso(s.latestSlotAtOrBefore(at("2026-03-29T00:59:59Z")))).toBe("2026-03-28T01:30:00Z");
  });

  // Reference implementation of the rule, straight from Intl, minute by minute.
  function referenceSlots(expr: string, zone: string, from: number, to: number): string[] {
    const format = new Intl.DateTimeFormat("en-US", {
      timeZone: zone, hourCycle: "h23", year: "numeric", month: "numeric", day: "numeric", hour: "numeric", minute: "numeric",
    });
    const wall = (t: number) => {
      const p = Object.fromEntries(format.formatToParts(t).map((x) => [x.type, Number(x.value)]));
      return Date.UTC(p.year!, p.month! - 1, p.day!, p.hour!, p.minute!);
    };
    const wallCron = new Cron(expr, { utcOffset: 0, paused: true });
    const out: string[] = [];
    let reached = wall(from - M);
    for (let t = from; t < to; t += M) {
      const w = wall(t);
      if (w > reached) {
        const match = wallCron.nextRun(new Date(reached));
        if (match !== null && match.getTime() <= w) out.push(iso(new Date(t))!);
        reached = w;
      }
    }
    return out;
  }

  it.each([
    ["*/15 * * * *", "Europe/Berlin", "2026-03-28T22:00:00Z"],
    ["*/15 * * * *", "Europe/Berlin", "2026-10-24T22:00:00Z"],
    ["7 * * * *", "Europe/Berlin", "2026-03-28T12:00:00Z"],
    ["30 2,3 * * *", "Europe/Berlin", "2026-03-28T00:00:00Z"],
    ["30 2,3 * * *", "Europe/Berlin", "2026-10-24T00:00:00Z"],
    ["0,30 1,2 * * *", "America/New_York", "2026-03-07T12:00:00Z"],
    ["0,30 1,2 * * *", "America/New_York", "2026-10-31T12:00:00Z"],
    ["0 0 * * *", "America/Santiago", "2026-04-03T12:00:00Z"], // midnight repeats (24:00 → 23:00)
    ["0 0 * * *", "America/Santiago", "2026-09-04T12:00:00Z"], // midnight skipped
    ["*/10 1,2 * * *", "Australia/Lord_Howe", "2026-04-03T12:00:00Z"], // 30-minute DST
    ["*/10 1,2 * * *", "Australia/Lord_Howe", "2026-10-02T12:00:00Z"],
    ["45 2 * * *", "Pacific/Chatham", "2026-04-03T00:00:00Z"], // 03:45 → 02:45
    ["45 2 * * *", "Pacific/Chatham", "2026-09-25T00:00:00Z"], // 02:45 → 03:45
  ])("%s in %s matches the minute-by-minute reference (3 days from %s)", (expr, zone, fromIso) => {
    const from = at(fromIso);
    const to = from + 3 * D;
    expect(schedule(expr, zone).slotsBetween(from, to)).toHaveLength(referenceSlots(expr, zone, from, to).length);
    expect(schedule(expr, zone).slotsBetween(from, to).map(iso)).toEqual(referenceSlots(expr, zone, from, to));
  });

  it("latest/first are consistent with each other and with slotsBetween (property)", () => {
    const cases = [
      ["30 2 * * *", "Europe/Berlin"], ["*/15 * * * *", "Europe/Berlin"], ["0 */6 * * *", "America/New_York"],
      ["0 3 * * 0", "America/Santiago"], ["0 0 1 * *", "Australia/Lord_Howe"], ["@every 90m", "Europe/Berlin"],
      ["0 2 * * 1-5", "UTC"],
    ] as const;
    const schedules = cases.map(([expr, zone]) => schedule(expr, zone));
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: schedules.length - 1 }),
        fc.integer({ min: at("2026-01-01T00:00:00Z"), max: at("2028-01-01T00:00:00Z") }),
        (which, t) => {
          const s = schedules[which]!;
          const latest = s.latestSlotAtOrBefore(t)!.getTime();
          const first = s.firstSlotAfter(t)!.getTime();
          expect(latest).toBeLessThanOrEqual(t);
          expect(first).toBeGreaterThan(t);
          expect(s.firstSlotAfter(latest)!.getTime()).toBe(first);
          expect(s.latestSlotAtOrBefore(first - 1)!.getTime()).toBe(latest);
          expect(s.slotsBetween(latest, first + 1).map((d) => d.getTime())).toEqual([latest, first]);
        },
      ),
      { numRuns: 500 },
    );
  });
});

describe("intervals, spread validation and the default RPO", () => {
  it.each([
    ["@every 6h", "UTC", 6 * H, 6 * H],
    ["0 */6 * * *", "UTC", 6 * H, 6 * H],
    ["0 */6 * * *", "Europe/Berlin", 5 * H, 7 * H], // DST nights
    ["30 2 * * *", "Europe/Berlin", 23.5 * H, 25 * H],
    ["30 2,3 * * *", "Europe/Berlin", 30 * M, 23 * H], // 02:30 → 03:00 and 03:30 on spring-forward day
    ["7 * * * *", "Europe/Berlin", 7 * M, 2 * H], // 02:07 → 03:00, then 03:07
    ["*/7 * * * *", "UTC", 4 * M, 7 * M], // :56 → :00
    ["0 2 * * 1-5", "UTC", D, 3 * D], // weekends
    ["0 3 * * 0", "UTC", 7 * D, 7 * D],
    ["0 0 1 * *", "UTC", 28 * D, 31 * D],
    ["0 0 29 2 *", "UTC", 4 * 365 * D + D, 4 * 365 * D + D],
    ["0 0 * * *", "America/Santiago", 23 * H, 25 * H],
  ])("%s in %s: smallest %d, largest %d", (expr, zone, smallest, largest) => {
    const s = schedule(expr, zone);
    expect(s.smallestIntervalMs).toBe(smallest);
    expect(s.largestIntervalMs).toBe(largest);
  });

  it.each([
    ["30 2,3 * * *", "Europe/Berlin"],
    ["7 * * * *", "Europe/Berlin"],
    ["0 2 * * 1-5", "America/New_York"],
    ["0,30 1,2 * * *", "America/New_York"],
  ])("the analysis of %s in %s equals the gaps of two years of enumerated slots", (expr, zone) => {
    const s = schedule(expr, zone);
    const all = s.slotsBetween(at("2026-01-01T00:00:00Z"), at("2028-01-01T00:00:00Z"), 100_000).map((d) => d.getTime());
    const gaps = all.slice(1).map((t, i) => t - all[i]!);
    expect(Math.min(...gaps)).toBe(s.smallestIntervalMs);
    expect(Math.max(...gaps)).toBe(s.largestIntervalMs);
  });

  it("spread must be shorter than the smallest interval", () => {
    expect(schedule("@every 1h", "UTC", "59m").spreadMs).toBe(59 * M);
    expect(rejection(() => schedule("@every 1h", "UTC", "1h")).field).toBe("spread");
    expect(schedule("30 2,3 * * *", "Europe/Berlin", "29m").spreadMs).toBe(29 * M);
    const error = rejection(() => schedule("30 2,3 * * *", "Europe/Berlin", "30m"));
    expect(error.field).toBe("spread");
    expect(error.message).toContain("smallest interval (30m)");
    expect(schedule("0 */6 * * *", "UTC", "0s").spreadMs).toBe(0);
    expect(new Schedule({ schedule: "0 */6 * * *", timezone: "UTC" }).spreadMs).toBe(0);
    expect(new Schedule({ schedule: "0 */6 * * *", timezone: "UTC", spread: 5 * M }).spreadMs).toBe(5 * M);
    for (const bad of ["-5m", "5 minutes", "5x"]) expect(rejection(() => schedule("0 */6 * * *", "UTC", bad)).field).toBe("spread");
  });

  it("defaultRpoMs = 1.5 × the longest interval", () => {
    expect(schedule("0 */6 * * *").defaultRpoMs).toBe(9 * H);
    expect(schedule("@every 90m").defaultRpoMs).toBe(135 * M);
    expect(schedule("0 2 * * 1-5").defaultRpoMs).toBe(4.5 * D); // a weekend is not an RPO breach
    expect(schedule("@every 1s").defaultRpoMs).toBe(2000); // rounded up to whole seconds
  });
});

describe("bad schedules", () => {
  it.each([
    ["", "schedule"],
    ["61 * * * *", "schedule"],
    ["* * * *", "schedule"],
    ["0 0 * * * *", "schedule"], // seconds field
    ["@reboot", "schedule"],
    ["0 0 30 2 *", "schedule"], // never fires
    ["? * * * *", "schedule"],
    ["@every 0s", "schedule"],
    ["@every 5x", "schedule"],
    ["@every", "schedule"],
  ])("%j → invalid_input naming %s", (expr, field) => {
    const error = rejection(() => schedule(expr));
    expect(error.code).toBe("invalid_input");
    expect(error.field).toBe(field);
  });

  it("an unknown time zone names `timezone`", () => {
    expect(rejection(() => schedule("0 2 * * *", "Europe/Atlantis")).field).toBe("timezone");
    expect(rejection(() => schedule("@every 1h", "Nowhere")).field).toBe("timezone");
  });

  it("accepts nicknames as their 5-field forms", () => {
    expect(iso(schedule("@daily").firstSlotAfter(at("2026-05-05T10:00:00Z")))).toBe("2026-05-06T00:00:00Z");
    expect(iso(schedule("@hourly").firstSlotAfter(at("2026-05-05T10:00:00Z")))).toBe("2026-05-05T11:00:00Z");
  });
});

describe("due slots", () => {
  const s = schedule("0 */6 * * *", "UTC", "1h");

  it("a new policy (or a newly matching cluster) gets no past slot, only the first slot after it appeared", () => {
    const since = at("2026-11-20T13:10:00Z"); // 12:00 already passed
    expect(s.dueSlot(since, since, 0)).toBeNull();
    expect(s.dueSlot(at("2026-11-20T17:59:59Z"), since, 0)).toBeNull();
    expect(s.dueSlot(at("2026-11-20T18:00:00Z"), since, 0)).toEqual({
      slot: new Date("2026-11-20T18:00:00Z"),
      notBefore: new Date("2026-11-20T18:00:00Z"),
    });
  });

  it("a slot at exactly `since` is not new; the offset delays the run", () => {
    const since = at("2026-11-20T12:00:00Z");
    expect(s.dueSlot(at("2026-11-20T12:30:00Z"), since, 0)).toBeNull();
    const offset = 20 * M;
    expect(s.dueSlot(at("2026-11-20T18:19:59Z"), since, offset)).toBeNull();
    expect(s.dueSlot(at("2026-11-20T18:20:00Z"), since, offset)).toEqual({
      slot: new Date("2026-11-20T18:00:00Z"),
      notBefore: new Date("2026-11-20T18:20:00Z"),
    });
  });

  it("after downtime only the latest missed slot runs", () => {
    const since = at("2026-11-01T00:00:00Z");
    const offset = 45 * M;
    // Down from the 18th to 2026-11-20T12:30: slots up to 12:00 were missed; 12:00+45m is not yet due.
    expect(iso(s.dueSlot(at("2026-11-20T12:30:00Z"), since, offset)!.slot)).toBe("2026-11-20T06:00:00Z");
    expect(iso(s.dueSlot(at("2026-11-20T12:45:00Z"), since, offset)!.slot)).toBe("2026-11-20T12:00:00Z");
    expect(iso(s.dueSlot(at("2026-11-20T17:59:00Z"), since, offset)!.slot)).toBe("2026-11-20T12:00:00Z");
  });

  it("the shared fast path equals the direct computation (property)", () => {
    const schedules = [
      schedule("0 */6 * * *", "UTC", "1h"),
      schedule("30 2 * * *", "Europe/Berlin", "3h"),
      schedule("*/15 * * * *", "America/New_York", "14m"),
      schedule("@every 90m", "UTC", "89m"),
    ];
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: schedules.length - 1 }),
        fc.integer({ min: at("2026-01-01T00:00:00Z"), max: at("2027-12-31T00:00:00Z") }),
        fc.integer({ min: 0, max: 3 * D }),
        fc.double({ min: 0, max: 1, noNaN: true, maxExcluded: true }),
        (which, now, age, fraction) => {
          const s = schedules[which]!;
          const offset = Math.floor(fraction * s.spreadMs);
          const since = now - age;
          const due = s.dueSlot(now, since, offset);
          const direct = s.latestSlotAtOrBefore(now - offset);
          const expected = direct !== null && direct.getTime() > since ? direct.getTime() : null;
          expect(due === null ? null : due.slot.getTime()).toBe(expected);
          if (due !== null) expect(due.notBefore.getTime()).toBe(due.slot.getTime() + offset);
          const next = s.nextRun(now, offset, since)!;
          expect(next.slot.getTime()).toBe(s.firstSlotAfter(Math.max(now - offset, since))!.getTime());
          expect(next.notBefore.getTime()).toBeGreaterThan(now);
        },
      ),
      { numRuns: 1000 },
    );
  });

  it("nextRun: the pair's next run, respecting its offset and `since`", () => {
    const pair = { offset: 40 * M };
    const now = at("2026-11-20T12:30:00Z");
    expect(s.nextRun(now, pair.offset)).toEqual({ slot: new Date("2026-11-20T12:00:00Z"), notBefore: new Date("2026-11-20T12:40:00Z") });
    expect(s.nextRun(now, pair.offset, now)).toEqual({ slot: new Date("2026-11-20T18:00:00Z"), notBefore: new Date("2026-11-20T18:40:00Z") });
    expect(s.nextRun(at("2026-11-20T12:40:00Z"), pair.offset)!.slot).toEqual(new Date("2026-11-20T18:00:00Z"));
    const bound = s.forPair("prod-eu-1", "daily");
    expect(bound.nextRun(now)).toEqual(s.nextRun(now, bound.offsetMs));
    expect(bound.dueSlot(now, 0)).toEqual(s.dueSlot(now, 0, bound.offsetMs));
  });

  it("30,000 dueSlot calls (10,000 clusters × 3 schedules) find every pair due once", () => {
    const schedules = [
      new Schedule({ schedule: "0 */6 * * *", timezone: "Europe/Berlin", spread: "2h" }, { now: NOW }),
      new Schedule({ schedule: "30 2 * * *", timezone: "America/New_York", spread: "4h" }, { now: NOW }),
      new Schedule({ schedule: "@every 1h", timezone: "UTC", spread: "30m" }, { now: NOW }),
    ];
    const clusters = Array.from({ length: 10_000 }, (_, i) => `cluster-${String(i).padStart(5, "0")}`);
    const since = at("2026-11-01T00:00:00Z");
    const run = (now: number) => {
      let due = 0;
      for (const [p, sched] of schedules.entries()) {
        for (const cluster of clusters) {
          if (sched.dueSlot(now, since, sched.offsetFor(cluster, `policy-${p}`)) !== null) due++;
        }
      }
      return due;
    };
    // Best of five ticks (each with a new `now`, so nothing is reused between them): the
    // machine is shared with other test files running in parallel.
    run(at("2026-11-19T10:00:00Z")); // warm-up (JIT)
    let best = Infinity;
    for (let round = 0; round < 5; round++) {
      const started = performance.now();
      const due = run(at("2026-11-20T10:17:00Z") + round * H);
      best = Math.min(best, performance.now() - started);
      expect(due).toBe(30_000);
    }
    // Timing is reported, not asserted (performance lives in bench/: npm run bench:tick).
    console.log(`[bench] 30,000 dueSlot calls incl. SHA-256 offsets: ${best.toFixed(1)} ms (best of 5)`);

    const offsets = schedules.map((sched, p) => clusters.map((c) => sched.offsetFor(c, `policy-${p}`)));
    const now = at("2026-11-21T10:17:00Z");
    const startedNoHash = performance.now();
    for (const [p, sched] of schedules.entries()) for (const offset of offsets[p]!) sched.dueSlot(now, since, offset);
    console.log(`[bench] 30,000 dueSlot calls, offsets precomputed: ${(performance.now() - startedNoHash).toFixed(1)} ms`);
  });
});
