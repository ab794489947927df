import { describe, expect, it } from "vitest";
import fc from "fast-check";
import {
  formatRetention,
  parseRetention,
  planRetention,
  summarizePlan,
  PERIOD_RULES,
  type RetentionBackup,
  type RetentionPlan,
  type RetentionRules,
  type RetentionSeries,
} from "../src/core/retention-planner.js";
import type { BackupState } from "../src/core/backup-types.js";
import { rejection } from "./helpers/expect-error.js";

const H = 3_600_000;
const D = 24 * H;
const TTL = 30 * D;
const at = (iso: string): number => Date.parse(iso);

const rules = (partial: Partial<RetentionRules>): RetentionRules => ({
  last: 0, hourly: 0, daily: 0, weekly: 0, monthly: 0, yearly: 0, withinMs: 0, ...partial,
});
const backup = (id: string, createdAt: string, extra: Partial<RetentionBackup> = {}): RetentionBackup => ({
  id, createdAt, state: "available", hold: false, lockedUntil: null, ...extra,
});
const series = (backups: RetentionBackup[], r: RetentionRules | null, timezone = "UTC", policy: string | null = "prod"): RetentionSeries => ({
  cluster: "prod-eu-1", policy, rules: r, timezone, backups,
});
const plan = (s: RetentionSeries, now = at("2026-11-22T12:00:00Z")) => planRetention(s, { now, manualTtlMs: TTL });
const asMap = (p: RetentionPlan) => ({
  keep: Object.fromEntries(p.keep.map((e) => [e.backupId, e.reasons])),
  delete: Object.fromEntries(p.delete.map((e) => [e.backupId, e.reasons])),
});

describe("worked example (docs/retention.md)", () => {
  // Policy prod-daily: "0 2 * * *" in Europe/Berlin, retention {last: 3, daily: 7, weekly: 3}.
  // Three weeks of nightly backups, 2026-11-02 … 2026-11-22 (ISO weeks 45, 46, 47), each taken at
  // 02:00 CET = 01:00 UTC. The one of the 10th failed, the 5th is on hold, the 3rd is
  // object-locked until December. Plan at 2026-11-22T12:00:00Z.
  const history = Array.from({ length: 21 }, (_, i) => {
    const day = String(i + 2).padStart(2, "0");
    return backup(`b-11-${day}`, `2026-11-${day}T01:00:42Z`, {
      state: day === "10" ? "failed" : "available",
      hold: day === "05",
      lockedUntil: day === "03" ? "2026-12-01T00:00:00Z" : null,
    });
  });
  const example = series(history, rules({ last: 3, daily: 7, weekly: 3 }), "Europe/Berlin", "prod-daily");

  it("keeps and deletes exactly this, with these reasons", () => {
    const result = plan(example);
    expect(result.keep).toEqual([
      { backupId: "b-11-22", reasons: ["newest", "last 1/3", "daily 2026-11-22", "weekly 2026-W47"] },
      { backupId: "b-11-21", reasons: ["last 2/3", "daily 2026-11-21"] },
      { backupId: "b-11-20", reasons: ["last 3/3", "daily 2026-11-20"] },
      { backupId: "b-11-19", reasons: ["daily 2026-11-19"] },
      { backupId: "b-11-18", reasons: ["daily 2026-11-18"] },
      { backupId: "b-11-17", reasons: ["daily 2026-11-17"] },
      { backupId: "b-11-16", reasons: ["daily 2026-11-16"] },
      { backupId: "b-11-15", reasons: ["weekly 2026-W46"] },
      { backupId: "b-11-08", reasons: ["weekly 2026-W45"] },
      { backupId: "b-11-05", reasons: ["hold"] },
      { backupId: "b-11-03", reasons: ["lock until 2026-12-01T00:00:00Z"] },
    ]);
    expect(result.delete).toEqual(
      ["14", "13", "12", "11", "09", "07", "06", "04", "02"].map((day) => ({ backupId: `b-11-${day}`, reasons: ["no rule"] })),
    );
    // the failed backup of the 10th is neither kept nor deleted
    expect([...result.keep, ...result.delete].some((e) => e.backupId === "b-11-10")).toBe(false);
  });

  it("summarizes per reason kind", () => {
    const sizes = new Map(history.map((b) => [b.id, 100]));
    expect(summarizePlan(plan(example), (id) => sizes.get(id))).toEqual({
      keep: { count: 11, bytes: 1100, byReason: { newest: 1, last: 3, daily: 7, weekly: 3, hold: 1, lock: 1 } },
      delete: { count: 9, bytes: 900, byReason: { "no rule": 9 } },
    });
    expect(summarizePlan(plan(example)).keep.bytes).toBeNull();
  });

  it("applying the plan and planning again deletes nothing more", () => {
    const first = plan(example);
    const gone = new Set(first.delete.map((e) => e.backupId));
    const second = plan({ ...example, backups: history.filter((b) => !gone.has(b.id)) });
    expect(second.delete).toEqual([]);
    expect(second.keep).toEqual(first.keep);
  });
});

describe("rules and reason grammar", () => {
  it("hourly / monthly / yearly / within labels", () => {
    const backups = [
      backup("a", "2026-11-20T14:05:00Z"),
      backup("b", "2026-11-20T13:55:00Z"),
      backup("c", "2026-10-02T09:00:00Z"),
      backup("d", "2025-12-31T22:00:00Z"),
    ];
    const result = asMap(plan(series(backups, rules({ hourly: 2, monthly: 2, yearly: 2, withinMs: 7 * D }))));
    expect(result.keep).toEqual({
      a: ["newest", "hourly 2026-11-20T14", "monthly 2026-11", "yearly 2026", "within 7d"],
      b: ["hourly 2026-11-20T13", "within 7d"],
      c: ["monthly 2026-10"],
      d: ["yearly 2025"],
    });
  });

  it("within D counts back from the newest backup, not from now (boundary excluded)", () => {
    const backups = [backup("n", "2026-01-10T00:00:00Z"), backup("in", "2026-01-03T00:00:01Z"), backup("edge", "2026-01-03T00:00:00Z")];
    const result = asMap(plan(series(backups, rules({ withinMs: 7 * D }))));
    expect(Object.keys(result.keep)).toEqual(["n", "in"]);
    expect(result.delete).toEqual({ edge: ["no rule"] });
  });

  it("ISO weeks at year boundaries", () => {
    const cases: Array<[string, string]> = [
      ["2026-12-31T12:00:00Z", "2026-W53"], // Thursday
      ["2027-01-03T12:00:00Z", "2026-W53"], // Sunday
      ["2027-01-04T12:00:00Z", "2027-W01"], // Monday
      ["2024-12-30T12:00:00Z", "2025-W01"],
      ["2021-01-03T12:00:00Z", "2020-W53"],
    ];
    for (const [time, week] of cases) {
      expect(plan(series([backup("x", time)], rules({ weekly: 1 }))).keep[0]!.reasons).toContain(`weekly ${week}`);
    }
  });

  it("periods are local to the policy's time zone", () => {
    const late = [backup("x", "2026-11-20T23:30:00Z")];
    expect(plan(series(late, rules({ daily: 1 }), "UTC")).keep[0]!.reasons).toContain("daily 2026-11-20");
    expect(plan(series(late, rules({ daily: 1 }), "Europe/Berlin")).keep[0]!.reasons).toContain("daily 2026-11-21");
    expect(plan(series(late, rules({ hourly: 1 }), "Asia/Kathmandu")).keep[0]!.reasons).toContain("hourly 2026-11-21T05");
    const newYear = [backup("y", "2026-12-31T23:30:00Z")];
    expect(plan(series(newYear, rules({ yearly: 1, monthly: 1 }), "Europe/Berlin")).keep[0]!.reasons).toEqual([
      "newest", "monthly 2027-01", "yearly 2027",
    ]);
  });

  it("the repeated hour of a fall-back night is one hourly period", () => {
    // Europe/Berlin 2026-10-25: 00:30Z is 02:30 CEST, 01:30Z is 02:30 CET.
    const backups = [backup("cet", "2026-10-25T01:30:00Z"), backup("cest", "2026-10-25T00:30:00Z"), backup("one", "2026-10-24T23:30:00Z")];
    const result = asMap(plan(series(backups, rules({ hourly: 2 }), "Europe/Berlin")));
    expect(result.keep).toEqual({ cet: ["newest", "hourly 2026-10-25T02"], one: ["hourly 2026-10-25T01"] });
    expect(result.delete).toEqual({ cest: ["no rule"] });
  });

  it("when local time steps back across a period (Pacific/Chatham 03:45 → 02:45), the last N periods are the latest ones", () => {
    // 2026-04-05: hour 02 and 03 each happen twice; newest first the hours read 03, 02, 03, 02.
    const backups = [
      backup("p1-0250", "2026-04-04T13:05:00Z"),
      backup("p1-0310", "2026-04-04T13:25:00Z"),
      backup("p2-0250", "2026-04-04T14:05:00Z"),
      backup("p2-0310", "2026-04-04T14:25:00Z"),
    ];
    expect(asMap(plan(series(backups, rules({ hourly: 2 }), "Pacific/Chatham"))).keep).toEqual({
      "p2-0310": ["newest", "hourly 2026-04-05T03"],
      "p2-0250": ["hourly 2026-04-05T02"],
    });
    expect(asMap(plan(series(backups, rules({ hourly: 1 }), "Pacific/Chatham"))).keep).toEqual({
      "p2-0310": ["newest", "hourly 2026-04-05T03"],
    });
  });

  it("only available backups count, and only they are listed", () => {
    const states: BackupState[] = ["uploading", "failed", "deleting", "deleted", "missing", "corrupt"];
    const others = states.map((state, i) => backup(`o-${state}`, `2026-11-22T0${i}:00:00Z`, { state, hold: true }));
    const available = [backup("a1", "2026-11-20T00:00:00Z"), backup("a2", "2026-11-19T00:00:00Z"), backup("a3", "2026-11-18T00:00:00Z")];
    const result = asMap(plan(series([...others, ...available], rules({ last: 2 }))));
    expect(result.keep).toEqual({ a1: ["newest", "last 1/2"], a2: ["last 2/2"] });
    expect(result.delete).toEqual({ a3: ["no rule"] });
  });

  it("an expired lock protects nothing; a lock in the future does", () => {
    const backups = [
      backup("new", "2026-11-22T00:00:00Z"),
      backup("past", "2026-11-01T00:00:00Z", { lockedUntil: "2026-11-22T11:59:59Z" }),
      backup("future", "2026-11-01T00:00:00Z", { lockedUntil: "2026-11-22T12:00:01Z" }),
    ];
    const result = asMap(plan(series(backups, rules({ last: 1 }))));
    expect(result.keep.future).toEqual(["lock until 2026-11-22T12:00:01Z"]);
    expect(result.delete.past).toEqual(["no rule"]);
  });

  it("ties on createdAt are broken by id, whatever the input order", () => {
    const backups = [backup("01A", "2026-11-20T00:00:00Z"), backup("01C", "2026-11-20T00:00:00Z"), backup("01B", "2026-11-20T00:00:00Z")];
    const r = rules({ last: 1, daily: 1 });
    const expected = plan(series(backups, r));
    expect(expected.keep).toEqual([{ backupId: "01C", reasons: ["newest", "last 1/1", "daily 2026-11-20"] }]);
    expect(plan(series([...backups].reverse(), r))).toEqual(expected);
  });

  it("reads RFC 3339 with and without milliseconds, other offsets, and epoch ms", () => {
    const backups = [
      backup("ms", "2026-11-20T10:00:00.250Z"),
      backup("offset", "2026-11-20T10:00:00+02:00"),
      { ...backup("epoch", ""), createdAt: at("2026-11-20T09:00:00Z") },
      backup("plain", "2026-11-20T09:30:00Z"),
    ];
    const result = plan(series(backups, rules({ last: 4 })));
    expect(result.keep.map((e) => e.backupId)).toEqual(["ms", "plain", "epoch", "offset"]);
    expect(() => plan(series([backup("bad", "yesterday")], rules({ last: 1 })))).toThrow(/unreadable time/);
    expect(() => plan(series([backup("bad", "2026-02-30T00:00:00Z")], rules({ last: 1 })))).toThrow(/unreadable time/);
  });
});

describe("manual series (policy null)", () => {
  const now = at("2026-11-22T12:00:00Z");

  it("expire after the manual TTL unless held, locked or the newest", () => {
    const backups = [
      backup("fresh", "2026-11-10T00:00:00Z"),
      backup("old", "2026-10-01T00:00:00Z"),
      backup("old-held", "2026-10-01T00:00:00Z", { hold: true }),
      backup("old-locked", "2026-10-01T00:00:00Z", { lockedUntil: "2027-01-01T00:00:00Z" }),
      backup("edge", new Date(now - TTL).toISOString()),
    ];
    expect(asMap(plan(series(backups, null, "UTC", null), now))).toEqual({
      keep: {
        fresh: ["newest", "within 30d"],
        "old-locked": ["lock until 2027-01-01T00:00:00Z"],
        "old-held": ["hold"],
      },
      delete: { edge: ["expired"], old: ["expired"] },
    });
  });

  it("the newest available manual backup is kept even when expired; rules are ignored", () => {
    const backups = [backup("a", "2026-01-01T00:00:00Z"), backup("b", "2025-12-01T00:00:00Z"), backup("u", "2026-11-22T00:00:00Z", { state: "uploading" })];
    expect(asMap(plan(series(backups, rules({ last: 5 }), "UTC", null), now))).toEqual({
      keep: { a: ["newest"] },
      delete: { b: ["expired"] },
    });
  });
});

describe("parseRetention", () => {
  it("accepts rules, treats missing / null / 0 as off and formats back", () => {
    const parsed = parseRetention({ daily: 7, weekly: 4, within: "36h" });
    expect(parsed).toEqual(rules({ daily: 7, weekly: 4, withinMs: 36 * H }));
    expect(formatRetention(parsed)).toEqual({ last: 0, hourly: 0, daily: 7, weekly: 4, monthly: 0, yearly: 0, within: "1d12h" });
    expect(parseRetention({ last: 1, within: null })).toEqual(rules({ last: 1 }));
    expect(parseRetention({ last: 1, within: 0 })).toEqual(rules({ last: 1 }));
    expect(parseRetention({ within: "2w" })).toEqual(rules({ withinMs: 14 * D }));
  });

  it.each([
    [{ daily: -1 }, "retention.daily"],
    [{ weekly: 1.5 }, "retention.weekly"],
    [{ monthly: "3" }, "retention.monthly"],
    [{ last: 0, daily: 0 }, "retention"],
    [{}, "retention"],
    [{ daily: 7, within: "7x" }, "retention.within"],
    [{ daily: 7, within: "0s" }, "retention.within"],
    [{ daily: 7, within: 5 }, "retention.within"],
    [{ dayly: 7 }, "retention.dayly"],
    [null, "retention"],
    [[1], "retention"],
  ])("%j → invalid_input naming %s", (input, field) => {
    const error = rejection(() => parseRetention(input));
    expect(error.code).toBe("invalid_input");
    expect(error.field).toBe(field);
  });

  it("prefixes a custom field", () => {
    expect(rejection(() => parseRetention({ yearly: -2 }, "policy.retention")).field).toBe("policy.retention.yearly");
  });
});

// ---------------------------------------------------------------------------------------------
// Properties over generated histories.

const ZONES = ["UTC", "Europe/Berlin", "America/New_York", "America/Santiago", "Australia/Lord_Howe", "Pacific/Chatham"];
const STATES: BackupState[] = ["available", "available", "available", "available", "uploading", "failed", "deleting", "missing", "corrupt"];
const START = at("2025-09-01T00:00:00Z");
const NOW = at("2026-11-22T12:00:00Z");

const backupArb = fc.record({
  offset: fc.integer({ min: 0, max: 450 * 24 * 60 }), // minutes after START, ~15 months
  state: fc.constantFrom(...STATES),
  hold: fc.integer({ min: 0, max: 7 }).map((n) => n === 0),
  lock: fc.oneof({ arbitrary: fc.constant(null), weight: 6 }, { arbitrary: fc.integer({ min: -30, max: 30 }), weight: 1 }), // days around NOW
});
const historyArb = fc.array(backupArb, { maxLength: 80 }).map((items) =>
  items.map(({ offset, state, hold, lock }, i): RetentionBackup => ({
    id: `b${String(i).padStart(3, "0")}`,
    createdAt: new Date(START + offset * 60_000).toISOString(),
    state,
    hold,
    lockedUntil: lock === null ? null : new Date(NOW + lock * D + 1000).toISOString(),
  })),
);
const countArb = fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 12 }));
const rulesArb = fc
  .record({
    last: countArb, hourly: countArb, daily: countArb, weekly: countArb, monthly: countArb, yearly: countArb,
    withinMs: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 60 * 24 }).map((m) => m * 60_000)),
  })
  .map((r) => (Object.values(r).every((v) => v === 0) ? { ...r, last: 1 } : r));
const seriesArb = fc.record({
  backups: historyArb,
  rules: rulesArb,
  timezone: fc.constantFrom(...ZONES),
  manual: fc.integer({ min: 0, max: 3 }).map((n) => n === 0),
});
const toSeries = ({ backups, rules: r, timezone, manual }: { backups: RetentionBackup[]; rules: RetentionRules; timezone: string; manual: boolean }) =>
  series(backups, manual ? null : r, timezone, manual ? null : "prod");
const run = (s: RetentionSeries) => planRetention(s, { now: NOW, manualTtlMs: TTL });
const ids = (entries: { backupId: string }[]) => new Set(entries.map((e) => e.backupId));

// A slow, obviously-correct reference: Intl per backup, string period keys, sort by key.
function referencePlan(s: RetentionSeries): { keep: Map<string, string[]>; delete: Map<string, string[]> } {
  const format = new Intl.DateTimeFormat("en-US", {
    timeZone: s.timezone, hourCycle: "h23", year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit",
  });
  const pad = (n: number, w = 2) => String(n).padStart(w, "0");
  const keyOf = (rule: string, t: number): string => {
    const p = Object.fromEntries(format.formatToParts(t).map((x) => [x.type, Number(x.value)]));
    const [y, m, d, h] = [p.year!, p.month!, p.day!, p.hour!];
    if (rule === "hourly") return `${y}-${pad(m)}-${pad(d)}T${pad(h)}`;
    if (rule === "daily") return `${y}-${pad(m)}-${pad(d)}`;
    if (rule === "monthly") return `${y}-${pad(m)}`;
    if (rule === "yearly") return `${y}`;
    const date = new Date(Date.UTC(y, m - 1, d));
    date.setUTCDate(date.getUTCDate() + 4 - (date.getUTCDay() || 7));
    const week = Math.ceil(((date.getTime() - Date.UTC(date.getUTCFullYear(), 0, 1)) / D + 1) / 7);
    return `${date.getUTCFullYear()}-W${pad(week)}`;
  };
  const list = s.backups
    .filter((b) => b.state === "available")
    .map((b) => ({ id: b.id, t: Date.parse(b.createdAt as string), b }))
    .sort((a, b) => b.t - a.t || (a.id < b.id ? 1 : -1));
  const reasons = new Map(list.map((x, i) => {
    const own: string[] = i === 0 ? ["newest"] : [];
    if (x.b.hold) own.push("hold");
    if (x.b.lockedUntil !== null && Date.parse(x.b.lockedUntil) > NOW) own.push(`lock until ${x.b.lockedUntil}`);
    return [x.id, own];
  }));
  const r = s.rules!;
  if (s.policy === null) {
    for (const x of list) if (NOW - x.t < TTL) reasons.get(x.id)!.push("within 30d");
  } else {
    list.slice(0, r.last).forEach((x, i) => reasons.get(x.id)!.push(`last ${i + 1}/${r.last}`));
    for (const rule of PERIOD_RULES) {
      if (r[rule] === 0) continue;
      const newest = new Map<string, string>();
      for (const x of list) {
        const key = keyOf(rule, x.t);
        if (!newest.has(key)) newest.set(key, x.id);
      }
      const chosen = [...newest.keys()].sort().reverse().slice(0, r[rule]);
      for (const x of list) {
        const key = keyOf(rule, x.t);
        if (chosen.includes(key) && newest.get(key) === x.id) reasons.get(x.id)!.push(`${rule} ${key}`);
      }
    }
    if (r.withinMs > 0 && list.length > 0) {
      for (const x of list) if (x.t > list[0]!.t - r.withinMs) reasons.get(x.id)!.push(`within ${formatRetention(r).within}`);
    }
  }
  const out = { keep: new Map<string, string[]>(), delete: new Map<string, string[]>() };
  for (const x of list) {
    const own = reasons.get(x.id)!;
    if (own.length > 0) out.keep.set(x.id, own);
    else out.delete.set(x.id, [s.policy === null ? "expired" : "no rule"]);
  }
  return out;
}

describe("retention properties", () => {
  const REASON = /^(newest|hold|lock until \S+|last \d+\/\d+|hourly \d{4}-\d\d-\d\dT\d\d|daily \d{4}-\d\d-\d\d|weekly \d{4}-W\d\d|monthly \d{4}-\d\d|yearly \d{4}|within [0-9wdhms]+|expired|no rule)$/;

  it("equals the slow Intl-based reference planner", () => {
    fc.assert(
      fc.property(seriesArb, (input) => {
        const s = toSeries(input);
        const actual = run(s);
        const expected = referencePlan({ ...s, rules: input.rules });
        expect(new Map(actual.keep.map((e) => [e.backupId, e.reasons]))).toEqual(expected.keep);
        expect(new Map(actual.delete.map((e) => [e.backupId, e.reasons]))).toEqual(expected.delete);
      }),
      { numRuns: 300 },
    );
  });

  it("applying a plan and planning again deletes nothing more (and keeps the same)", () => {
    fc.assert(
      fc.property(seriesArb, (input) => {
        const s = toSeries(input);
        const first = run(s);
        const gone = ids(first.delete);
        const second = run({ ...s, backups: s.backups.filter((b) => !gone.has(b.id)) });
        expect(second.delete).toEqual([]);
        expect(second.keep).toEqual(first.keep);
      }),
      { numRuns: 300 },
    );
  });

  it("lists every available backup exactly once, never another state, with reasons in the grammar", () => {
    fc.assert(
      fc.property(seriesArb, (input) => {
        const s = toSeries(input);
        const result = run(s);
        const listed = [...result.keep, ...result.delete].map((e) => e.backupId);
        const available = s.backups.filter((b) => b.state === "available").map((b) => b.id);
        expect([...listed].sort()).toEqual([...available].sort());
        for (const entry of [...result.keep, ...result.delete]) {
          expect(entry.reasons.length).toBeGreaterThan(0);
          for (const reason of entry.reasons) expect(reason).toMatch(REASON);
        }
      }),
      { numRuns: 300 },
    );
  });

  it("never deletes the newest available backup, a held one, or a locked one", () => {
    fc.assert(
      fc.property(seriesArb, (input) => {
        const s = toSeries(input);
        const deleted = ids(run(s).delete);
        const available = s.backups.filter((b) => b.state === "available");
        const newest = [...available].sort((a, b) => Date.parse(b.createdAt as string) - Date.parse(a.createdAt as string) || (a.id < b.id ? 1 : -1))[0];
        if (newest !== undefined) expect(deleted.has(newest.id)).toBe(false);
        for (const b of available) {
          if (b.hold) expect(deleted.has(b.id)).toBe(false);
          if (b.lockedUntil !== null && Date.parse(b.lockedUntil) > NOW) expect(deleted.has(b.id)).toBe(false);
        }
      }),
      { numRuns: 300 },
    );
  });

  it("failed / uploading / other non-available backups never count toward any rule", () => {
    fc.assert(
      fc.property(seriesArb, (input) => {
        const s = toSeries(input);
        const onlyAvailable = { ...s, backups: s.backups.filter((b) => b.state === "available") };
        expect(run(s)).toEqual(run(onlyAvailable));
      }),
      { numRuns: 300 },
    );
  });

  it("a larger N never deletes what a smaller N keeps (each rule)", () => {
    const ruleArb = fc.constantFrom("last", ...PERIOD_RULES, "withinMs");
    fc.assert(
      fc.property(seriesArb, ruleArb, fc.integer({ min: 1, max: 10 }), (input, rule, more) => {
        const smaller = toSeries({ ...input, manual: false });
        const grow = rule === "withinMs" ? more * 6 * H : more;
        const larger = { ...smaller, rules: { ...input.rules, [rule]: input.rules[rule] + grow } };
        const kept = ids(run(smaller).keep);
        for (const id of ids(run(larger).delete)) expect(kept.has(id)).toBe(false);
      }),
      { numRuns: 500 },
    );
  });
});
