// The retention planner (DESIGN "Pinned semantics → Retention"; docs/retention.md in plain words).
// Pure: one series (cluster, policy — or the manual backups of a cluster) in, a keep/delete list
// with reasons out. Only `available` backups take part; every other state is neither kept nor
// deleted, not counted and not listed. Callers that must never delete automatically (policy
// deleted, cluster no longer matching) simply do not plan those series.

import type { BackupState } from "./backup-types.js";
import { invalidInput } from "./errors.js";
import { formatDuration, parseDuration } from "./duration.js";
import { zoneOffsets } from "./schedule.js";
import type { RetentionSeriesColumns } from "./ports.js";

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

export const PERIOD_RULES = ["hourly", "daily", "weekly", "monthly", "yearly"] as const;
export type PeriodRule = (typeof PERIOD_RULES)[number];
const COUNT_RULES = ["last", ...PERIOD_RULES] as const;
type CountRule = (typeof COUNT_RULES)[number];

/** Validated rules; 0 turns a rule off. */
export type RetentionRules = Record<CountRule, number> & { withinMs: number };

/** The policy resource's `retention` object: counts, and `within` as a duration or null. */
export type RetentionSpec = Record<CountRule, number> & { within: string | null };

/**
 * Validates a policy's `retention` object. Counts are non-negative integers (missing = 0),
 * `within` a duration (missing, null, 0 or "0" = off); at least one rule must be on. Errors name
 * the field: `retention.daily`, `retention.within`, or `retention` itself.
 */
export function parseRetention(input: unknown, field = "retention"): RetentionRules {
  if (typeof input !== "object" || input === null || Array.isArray(input)) {
    throw invalidInput(field, "must be an object like {\"daily\": 7, \"weekly\": 4}");
  }
  const source = input as Record<string, unknown>;
  for (const key of Object.keys(source)) {
    if (key !== "within" && !(COUNT_RULES as readonly string[]).includes(key)) {
      throw invalidInput(`${field}.${key}`, `unknown rule (use ${[...COUNT_RULES, "within"].join(", ")})`);
    }
  }
  const rules = { withinMs: 0 } as RetentionRules;
  for (const rule of COUNT_RULES) {
    const value = source[rule] ?? 0;
    if (typeof value !== "number" || !Number.isSafeInteger(value) || value < 0) {
      throw invalidInput(`${field}.${rule}`, "must be a whole number ≥ 0 (0 turns the rule off)");
    }
    rules[rule] = value;
  }
  const within = source["within"];
  if (within !== undefined && within !== null && within !== 0 && within !== "0") {
    rules.withinMs = parseDuration(within as string, `${field}.within`);
  }
  if (COUNT_RULES.every((rule) => rules[rule] === 0) && rules.withinMs === 0) {
    throw invalidInput(field, "at least one rule must be greater than 0");
  }
  return rules;
}

/** Rules back in the resource's shape (canonical `within`). */
export function formatRetention(rules: RetentionRules): RetentionSpec {
  const spec = { within: rules.withinMs > 0 ? formatDuration(rules.withinMs) : null } as RetentionSpec;
  for (const rule of COUNT_RULES) spec[rule] = rules[rule];
  return spec;
}

export interface RetentionBackup {
  id: string;
  /** RFC 3339 (as stored), or epoch ms. */
  createdAt: string | number;
  state: BackupState;
  hold: boolean;
  lockedUntil: string | null;
}

export interface RetentionSeries {
  cluster: string;
  /** null: the manual backups of `cluster`. */
  policy: string | null;
  /** Required for a policy series; ignored for a manual one. */
  rules: RetentionRules | null;
  /** The policy's zone: hourly…yearly periods are local periods. */
  timezone: string;
  backups: readonly RetentionBackup[];
}

export interface PlanEntry {
  backupId: string;
  reasons: string[];
}

export interface RetentionPlan {
  keep: PlanEntry[];
  delete: PlanEntry[];
}

interface Candidate {
  id: string;
  t: number;
  backup: RetentionBackup;
}

/**
 * Plans one series. Entries come newest first; a kept backup lists every reason that keeps it
 * (`newest`, `hold`, `lock until …`, then the rules in the order last, hourly … yearly, within).
 */
export function planRetention(
  series: RetentionSeries,
  options: { now: Date | number; manualTtlMs: number },
): RetentionPlan {
  const now = typeof options.now === "number" ? options.now : options.now.getTime();
  const candidates: Candidate[] = [];
  for (const backup of series.backups) {
    if (backup.state === "available") candidates.push({ id: backup.id, t: toMs(backup.createdAt, backup.id), backup });
  }
  // Newest first; ULIDs break ties so the plan does not depend on input order.
  candidates.sort((a, b) => b.t - a.t || (a.id < b.id ? 1 : a.id > b.id ? -1 : 0));
  const count = candidates.length;
  const marks = new SeriesMarks();
  marks.reset(count);
  for (let i = 0; i < count; i++) {
    const { t, backup } = candidates[i]!;
    marks.t[i] = t;
    marks.hold[i] = backup.hold ? 1 : 0;
    const lock = backup.lockedUntil;
    marks.lockMs[i] = lock === null ? NaN : toMs(lock, backup.id);
    marks.lockText[i] = lock;
  }
  marks.mark(series, now, options.manualTtlMs);
  const plan: RetentionPlan = { keep: [], delete: [] };
  for (let i = 0; i < count; i++) {
    const backupId = candidates[i]!.id;
    if (marks.mask[i] !== 0) plan.keep.push({ backupId, reasons: marks.reasons(i) });
    else plan.delete.push({ backupId, reasons: [marks.deleteReason] });
  }
  return plan;
}

// Why a backup is kept, one bit per reason kind, in the order reasons are listed.
const NEWEST = 1 << 0;
const HOLD = 1 << 1;
const LOCK = 1 << 2;
const LAST = 1 << 3;
/** hourly … yearly: PERIOD_BIT[k] for PERIOD_RULES[k]. */
const PERIOD_BIT = [1 << 4, 1 << 5, 1 << 6, 1 << 7, 1 << 8] as const;
const WITHIN = 1 << 9;

/** The reason kind (see `reasonKind`) of each bit of `SeriesMarks.mask`, lowest bit first. */
export const KEEP_REASON_KINDS = ["newest", "hold", "lock", "last", ...PERIOD_RULES, "within"] as const;

/**
 * The planner's working columns for one series, reusable from one series to the next (a fleet
 * plan marks a million backups without allocating per backup). Fill `t`, `hold`, `lockMs` and
 * `lockText` newest first (createdAt descending, ties by id descending) after `reset(count)`,
 * then `mark()`: `mask[i]` holds one bit per reason that keeps backup i (0: deleted, with
 * `deleteReason`), and `reasons(i)` spells them out exactly as `planRetention` lists them.
 * Reason strings are shared between backups (and series) that have the same reason.
 */
export class SeriesMarks {
  count = 0;
  /** createdAt, epoch ms. */
  t = new Float64Array(0);
  /** 1 when the backup has a hold. */
  hold = new Uint8Array(0);
  /** lockedUntil in epoch ms; NaN when there is none. */
  lockMs = new Float64Array(0);
  /** lockedUntil as it is shown in `lock until …`; null when there is none. */
  lockText: Array<string | null> = [];
  mask = new Uint16Array(0);
  /** `no rule` for a policy series, `expired` for a manual one. */
  deleteReason = "no rule";
  private local = new Float64Array(0);
  private periodIds = new Float64Array(0);
  private rules: RetentionRules | null = null;
  private withinLabel = "";
  private lastLabels: string[] = [];
  private lastLabelsOf = -1;
  private periodLabels: Array<Map<number, string>> = PERIOD_RULES.map(() => new Map());
  private scratch: string[] = ["", "", "", "", "", "", "", "", "", ""];
  private shared: ReasonsNode = {};
  private sharedNodes = 0;

  reset(count: number): void {
    if (this.t.length < count) {
      const size = Math.max(count, 2 * this.t.length, 64);
      this.t = new Float64Array(size);
      this.hold = new Uint8Array(size);
      this.lockMs = new Float64Array(size);
      this.mask = new Uint16Array(size);
      this.local = new Float64Array(size);
      this.periodIds = new Float64Array(size);
    }
    this.count = count;
    if (this.lockText.length < count) this.lockText.length = count;
  }

  /** Sets `mask` for the series (only its policy, rules and timezone are read). */
  mark(series: Omit<RetentionSeries, "backups">, now: number, manualTtlMs: number): void {
    const { count, t, mask } = this;
    for (let i = 0; i < count; i++) {
      let m = i === 0 ? NEWEST : 0;
      if (this.hold[i] !== 0) m |= HOLD;
      if (this.lockMs[i]! > now) m |= LOCK;
      mask[i] = m;
    }
    this.rules = null;
    if (series.policy === null) {
      // Manual backups: no rules, just a time to live counted from now.
      this.deleteReason = "expired";
      this.withinLabel = `within ${formatDuration(manualTtlMs)}`;
      for (let i = 0; i < count; i++) if (now - t[i]! < manualTtlMs) mask[i]! |= WITHIN;
      return;
    }
    this.deleteReason = "no rule";
    const rules = series.rules;
    if (rules === null) throw new Error(`retention: series ${series.cluster}/${series.policy} has no rules`);
    this.rules = rules;
    if (count > 0) this.applyRules(rules, series.timezone);
  }

  private applyRules(rules: RetentionRules, timezone: string): void {
    const { count, t, mask } = this;
    for (let i = 0; i < Math.min(rules.last, count); i++) mask[i]! |= LAST;

    if (PERIOD_RULES.some((rule) => rules[rule] > 0)) {
      const zone = zoneOffsets(timezone);
      const local = this.local;
      for (let i = 0; i < count; i++) local[i] = zone.toLocal(t[i]!);
      const ids = this.periodIds;
      for (let k = 0; k < PERIOD_RULES.length; k++) {
        const rule = PERIOD_RULES[k]!;
        const limit = rules[rule];
        if (limit === 0) continue;
        const periodOf = PERIOD_ID[rule];
        for (let i = 0; i < count; i++) ids[i] = periodOf(local[i]!);
        markNewestPerPeriod(ids, count, limit, mask, PERIOD_BIT[k]!);
      }
    }

    if (rules.withinMs > 0) {
      const cutoff = t[0]! - rules.withinMs;
      this.withinLabel = `within ${formatDuration(rules.withinMs)}`;
      for (let i = 0; i < count && t[i]! > cutoff; i++) mask[i]! |= WITHIN;
    }
  }

  /**
   * Backup i's reasons into `scratch`; returns how many. They are copied out from there: an array
   * grown by push() from [] reserves room for 17 entries, and a fleet's plan holds half a million.
   */
  private gather(i: number): number {
    const m = this.mask[i]!;
    const out = this.scratch;
    let n = 0;
    if (m & NEWEST) out[n++] = "newest";
    if (m & HOLD) out[n++] = "hold";
    if (m & LOCK) out[n++] = `lock until ${this.lockText[i]}`;
    if (m & LAST) out[n++] = this.lastLabel(i);
    if (m & (PERIOD_BIT[0] | PERIOD_BIT[1] | PERIOD_BIT[2] | PERIOD_BIT[3] | PERIOD_BIT[4])) {
      for (let k = 0; k < PERIOD_RULES.length; k++) if (m & PERIOD_BIT[k]!) out[n++] = this.periodLabel(k, this.local[i]!);
    }
    if (m & WITHIN) out[n++] = this.withinLabel;
    return n;
  }

  /** The reasons that keep backup i, in listing order (empty when it is deleted): a new array. */
  reasons(i: number): string[] {
    return this.scratch.slice(0, this.gather(i));
  }

  /**
   * The same reasons as one frozen array shared by every backup (of any series planned with this
   * object) that has exactly these reasons: across a fleet a few thousand distinct lists (`daily
   * 2026-11-20` recurs in every cluster) stand for half a million, which is most of what a
   * fleet-wide plan would otherwise allocate and the garbage collector copy.
   */
  sharedReasons(i: number): readonly string[] {
    const n = this.gather(i);
    if (this.mask[i]! & LOCK) return Object.freeze(this.scratch.slice(0, n)); // lock times rarely repeat
    let node = this.shared;
    for (let k = 0; k < n; k++) {
      const reason = this.scratch[k]!;
      let next = node.next?.get(reason);
      if (next === undefined) {
        if (this.sharedNodes >= 100_000) {
          this.shared = {};
          this.sharedNodes = 0;
          return this.sharedReasons(i);
        }
        next = {};
        (node.next ??= new Map()).set(reason, next);
        this.sharedNodes++;
      }
      node = next;
    }
    return (node.list ??= Object.freeze(this.scratch.slice(0, n)));
  }

  private lastLabel(i: number): string {
    const n = this.rules!.last;
    if (this.lastLabelsOf !== n) {
      this.lastLabels = [];
      this.lastLabelsOf = n;
    }
    return (this.lastLabels[i] ??= `last ${i + 1}/${n}`);
  }

  private periodLabel(k: number, local: number): string {
    const rule = PERIOD_RULES[k]!;
    const id = PERIOD_ID[rule](local);
    const labels = this.periodLabels[k]!;
    let label = labels.get(id);
    if (label === undefined) {
      label = `${rule} ${PERIOD_LABEL[rule](id)}`;
      if (labels.size >= 4096) labels.clear();
      labels.set(id, label);
    }
    return label;
  }
}

interface ReasonsNode {
  list?: readonly string[];
  next?: Map<string, ReasonsNode>;
}

/**
 * Marks (with `bit`) the newest backup of each of the last `limit` periods that contain one, in
 * newest-first `ids`. Local time can step back across a period boundary (Pacific/Chatham goes from
 * 03:45 back to 02:45, so hour 02 recurs after hour 03), so "last" means the highest period ids,
 * and the newest backup of a period is its first index; when ids only fall — the usual case — one
 * pass finds both.
 */
function markNewestPerPeriod(ids: Float64Array, count: number, limit: number, mask: Uint16Array, bit: number): void {
  let monotonic = true;
  for (let i = 1; i < count && monotonic; i++) if (ids[i]! > ids[i - 1]!) monotonic = false;
  if (monotonic) {
    for (let i = 0, picked = 0; i < count && picked < limit; i++) {
      if (i === 0 || ids[i] !== ids[i - 1]) {
        mask[i]! |= bit;
        picked++;
      }
    }
    return;
  }
  const first = new Map<number, number>();
  for (let i = 0; i < count; i++) if (!first.has(ids[i]!)) first.set(ids[i]!, i);
  const periods = [...first.keys()].sort((a, b) => b - a).slice(0, limit);
  for (const period of periods) mask[first.get(period)!]! |= bit;
}

// Period ids are whole numbers computed from local wall-clock ms (no Intl per backup).
const dayOf = (local: number): number => Math.floor(local / DAY);
/** ISO weeks start on Monday; 1970-01-01 (day 0) was a Thursday. */
const weekOf = (local: number): number => Math.floor((dayOf(local) + 3) / 7);

const PERIOD_ID: Record<PeriodRule, (local: number) => number> = {
  hourly: (local) => Math.floor(local / HOUR),
  daily: dayOf,
  weekly: weekOf,
  monthly: (local) => {
    const { year, month } = civil(dayOf(local));
    return year * 12 + month - 1;
  },
  yearly: (local) => civil(dayOf(local)).year,
};

const pad = (value: number, width: number): string => String(value).padStart(width, "0");
const dateLabel = (day: number): string => {
  const { year, month, day: dayOfMonth } = civil(day);
  return `${pad(year, 4)}-${pad(month, 2)}-${pad(dayOfMonth, 2)}`;
};

const PERIOD_LABEL: Record<PeriodRule, (id: number) => string> = {
  hourly: (id) => `${dateLabel(Math.floor(id / 24))}T${pad(id - Math.floor(id / 24) * 24, 2)}`,
  daily: dateLabel,
  weekly: (id) => {
    // An ISO week belongs to the year of its Thursday.
    const thursday = id * 7;
    const year = civil(thursday).year;
    return `${pad(year, 4)}-W${pad(Math.floor((thursday - daysFromCivil(year, 1, 1)) / 7) + 1, 2)}`;
  },
  monthly: (id) => `${pad(Math.floor(id / 12), 4)}-${pad(id - Math.floor(id / 12) * 12 + 1, 2)}`,
  yearly: (id) => pad(id, 4),
};

/** Proleptic Gregorian date of a day count since 1970-01-01 (H. Hinnant's civil_from_days). */
function civil(days: number): { year: number; month: number; day: number } {
  const z = days + 719468;
  const era = Math.floor(z / 146097);
  const doe = z - era * 146097;
  const yoe = Math.floor((doe - Math.floor(doe / 1460) + Math.floor(doe / 36524) - Math.floor(doe / 146096)) / 365);
  const doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100));
  const mp = Math.floor((5 * doy + 2) / 153);
  const month = mp < 10 ? mp + 3 : mp - 9;
  return { year: yoe + era * 400 + (month <= 2 ? 1 : 0), month, day: doy - Math.floor((153 * mp + 2) / 5) + 1 };
}

/** Day count since 1970-01-01 of a proleptic Gregorian date (days_from_civil). */
function daysFromCivil(year: number, month: number, day: number): number {
  const y = month <= 2 ? year - 1 : year;
  const era = Math.floor(y / 400);
  const yoe = y - era * 400;
  const doy = Math.floor((153 * (month + (month > 2 ? -3 : 9)) + 2) / 5) + day - 1;
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy;
  return era * 146097 + doe - 719468;
}

/**
 * Epoch ms of a stored time. The catalog writes `YYYY-MM-DDTHH:MM:SS[.sss]Z`; reading that by hand
 * takes ~80 ns here against ~200 ns for Date.parse (a tenth of the planner's time at a million
 * backups), and rejects impossible dates that Date.parse rolls over (02-30 → 03-02). Anything
 * else goes to Date.parse.
 */
export function toMs(value: string | number, id: string): number {
  if (typeof value === "number") return value;
  const fast = parseUtc(value);
  const t = fast === null ? Date.parse(value) : fast;
  if (Number.isNaN(t)) throw new Error(`retention: backup ${id} has an unreadable time '${value}'`);
  return t;
}

const MONTH_DAYS = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

// A top-level function, not a closure: a closure made per call costs more than the parsing
// (tsx/esbuild also wraps each one to keep its name).
function digits(s: string, from: number, width: number): number {
  let value = 0;
  for (let i = from; i < from + width; i++) {
    const digit = s.charCodeAt(i) - 48;
    if (digit < 0 || digit > 9) return NaN;
    value = value * 10 + digit;
  }
  return value;
}

/** null when `s` is not in the catalog's shape; NaN when it is but names no real time (02-30). */
function parseUtc(s: string): number | null {
  const length = s.length;
  if (length !== 20 && length !== 24) return null;
  if (s.charCodeAt(4) !== 45 || s.charCodeAt(7) !== 45 || s.charCodeAt(10) !== 84 || s.charCodeAt(13) !== 58) return null;
  if (s.charCodeAt(16) !== 58 || s.charCodeAt(length - 1) !== 90) return null;
  if (length === 24 && s.charCodeAt(19) !== 46) return null;
  const year = digits(s, 0, 4), month = digits(s, 5, 2), day = digits(s, 8, 2);
  const hour = digits(s, 11, 2), minute = digits(s, 14, 2), second = digits(s, 17, 2);
  const milli = length === 24 ? digits(s, 20, 3) : 0;
  if (!(month >= 1 && month <= 12 && day >= 1 && hour <= 23 && minute <= 59 && second <= 59)) return NaN;
  const leap = year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
  if (day > (month === 2 ? (leap ? 29 : 28) : MONTH_DAYS[month - 1]!)) return NaN; // 2026-02-30 and friends
  return daysFromCivil(year, month, day) * DAY + hour * HOUR + minute * 60_000 + second * 1000 + milli;
}

// ---------------------------------------------------------------------------------------------

export interface PlanSideSummary {
  count: number;
  /** Sum of sizes when a size lookup was given, else null. */
  bytes: number | null;
  /** Backups per reason kind (`daily`, `lock`, `no rule`, …); one backup counts once per kind. */
  byReason: Record<string, number>;
}

export interface PlanSummary {
  keep: PlanSideSummary;
  delete: PlanSideSummary;
}

/** The kind of a reason: its first word, `lock` for `lock until …`, `no rule` as is. */
export function reasonKind(reason: string): string {
  if (reason === "no rule") return reason;
  const space = reason.indexOf(" ");
  return space < 0 ? reason : reason.slice(0, space);
}

/** Counts (and bytes, given a size lookup) per side and reason kind. */
export function summarizePlan(
  plan: RetentionPlan,
  sizeOf?: (backupId: string) => number | null | undefined,
): PlanSummary {
  const side = (entries: PlanEntry[]): PlanSideSummary => {
    const byReason: Record<string, number> = {};
    let bytes = 0;
    for (const entry of entries) {
      const kinds = new Set(entry.reasons.map(reasonKind));
      for (const kind of kinds) byReason[kind] = (byReason[kind] ?? 0) + 1;
      if (sizeOf !== undefined) bytes += sizeOf(entry.backupId) ?? 0;
    }
    return { count: entries.length, bytes: sizeOf === undefined ? null : bytes, byReason };
  };
  return { keep: side(plan.keep), delete: side(plan.delete) };
}

/**
 * One series' columns from catalog rows `[id, createdAt, hold, lockedUntil, cipherSize]` as the
 * query builder returns them (oldest first), read the way the planner reads a RetentionBackup:
 * createdAt as stored (epoch ms, or RFC 3339), any truthy hold, lockedUntil through `Date`
 * (an unreadable one throws, as toISOString does).
 */
export function retentionColumnsFromRows(
  cluster: string,
  policy: string | null,
  rows: ReadonlyArray<readonly [id: string, createdAt: string | number, hold: unknown, lockedUntil: string | number | null, size: number | null]>,
): RetentionSeriesColumns {
  const count = rows.length;
  const columns: RetentionSeriesColumns = {
    cluster,
    policy,
    count,
    ids: rows.map((r) => r[0]),
    createdAt: new Float64Array(count),
    hold: new Uint8Array(count),
    lockedUntil: new Float64Array(count),
    size: new Float64Array(count),
  };
  for (let i = 0; i < count; i++) {
    const [id, createdAt, hold, lockedUntil, size] = rows[i]!;
    columns.createdAt[i] = toMs(createdAt, id);
    columns.hold[i] = hold ? 1 : 0;
    if (lockedUntil === null) columns.lockedUntil[i] = NaN;
    else {
      const lock = new Date(lockedUntil);
      lock.toISOString(); // throws RangeError for an invalid time, as the plan's `lock until` text would
      columns.lockedUntil[i] = lock.getTime();
    }
    columns.size[i] = size ?? 0;
  }
  return columns;
}
