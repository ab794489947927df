// Schedule math (DESIGN "Pinned semantics → Slots"). A slot is the nominal schedule instant (UTC);
// a (cluster, policy) pair's run for it becomes due at `slot + offset`, the offset being a stable
// hash of the pair modulo the policy's spread.
//
// Cron rule, in one sentence: a slot fires the first time the zone's wall clock reaches or passes
// a local time the pattern matches. So a local time skipped by spring-forward fires once at the
// transition instant (the next valid instant: 02:30 on a 02:00→03:00 day fires at 03:00), and a
// local time repeated by fall-back fires once, at its first occurrence.
//
// croner (9.1) disagrees at both edges, so it only evaluates the pattern on a zone-less wall clock
// (`utcOffset: 0`) and this file maps wall times to instants itself:
//  - spring forward: croner shifts by the gap (02:30 → 03:30), not to the next valid instant;
//  - fall back: which occurrence croner picks depends on the zone's sign (Europe/Berlin: the
//    second, America/New_York: the first), and for Berlin it skips the first pass entirely
//    (`*/15` from 02:20 CEST jumps to 02:30 CET). test/schedule.test.ts pins both.
//
// This file also holds the zone-offset cache (shared with the retention planner) and the synchronous
// SHA-256 the spread offset needs (core may not use node:crypto, and WebCrypto's digest is async).

import { Cron, CronPattern } from "croner";
import { invalidInput } from "./errors.js";
import { SHA256_INIT, sha256Compress } from "./sha256.js";
import { formatDuration, parseDuration } from "./duration.js";

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
const YEAR = 365 * DAY;

// ---------------------------------------------------------------------------------------------
// SHA-256 (FIPS 180-4), synchronous: the tick hashes up to 30,000 "cluster/policy" strings.

const W = new Int32Array(64);
const STATE = new Int32Array(8);

const rotr = (x: number, n: number): number => (x >>> n) | (x << (32 - n));

/** Writes the 0x80 terminator, zeros and the 64-bit big-endian bit length after `length` bytes. */
function pad(buffer: Uint8Array, length: number): number {
  const padded = ((length + 9 + 63) >>> 6) << 6;
  buffer[length] = 0x80;
  buffer.fill(0, length + 1, padded - 8);
  const high = Math.floor(length / 0x20000000);
  const low = (length << 3) >>> 0;
  for (let i = 0; i < 4; i++) {
    buffer[padded - 8 + i] = (high >>> (24 - 8 * i)) & 0xff;
    buffer[padded - 4 + i] = (low >>> (24 - 8 * i)) & 0xff;
  }
  return padded;
}

/** Compresses the padded message `buffer[0, padded)` into STATE. */
function compress(buffer: Uint8Array, padded: number): void {
  STATE.set(SHA256_INIT);
  sha256Compress(STATE, W, buffer, 0, padded);
}

/** SHA-256 digest of `data` (32 bytes). */
export function sha256(data: Uint8Array): Uint8Array {
  const buffer = new Uint8Array(((data.length + 9 + 63) >>> 6) << 6);
  buffer.set(data);
  compress(buffer, pad(buffer, data.length));
  const out = new Uint8Array(32);
  for (let i = 0; i < 32; i++) out[i] = (STATE[i >>> 2]! >>> (24 - 8 * (i & 3))) & 0xff;
  return out;
}

// Reused across calls: the tick hashes 30,000 short strings, and allocating an encoder result and
// a block buffer per string tripled the cost.
let scratch = new Uint8Array(256);

/** UTF-8 of `text` into `scratch` (lone surrogates become U+FFFD, as TextEncoder does); returns the length. */
function encodeUtf8(text: string): number {
  const needed = text.length * 3 + 72;
  if (scratch.length < needed) scratch = new Uint8Array(needed * 2);
  let n = 0;
  for (let i = 0; i < text.length; i++) {
    let code = text.charCodeAt(i);
    if (code < 0x80) {
      scratch[n++] = code;
      continue;
    }
    if (code >= 0xd800 && code <= 0xdfff) {
      const low = i + 1 < text.length ? text.charCodeAt(i + 1) : 0;
      if (code <= 0xdbff && low >= 0xdc00 && low <= 0xdfff) {
        code = 0x10000 + ((code - 0xd800) << 10) + (low - 0xdc00);
        i++;
      } else {
        code = 0xfffd;
      }
    }
    if (code < 0x800) {
      scratch[n++] = 0xc0 | (code >> 6);
    } else if (code < 0x10000) {
      scratch[n++] = 0xe0 | (code >> 12);
      scratch[n++] = 0x80 | ((code >> 6) & 0x3f);
    } else {
      scratch[n++] = 0xf0 | (code >> 18);
      scratch[n++] = 0x80 | ((code >> 12) & 0x3f);
      scratch[n++] = 0x80 | ((code >> 6) & 0x3f);
    }
    scratch[n++] = 0x80 | (code & 0x3f);
  }
  return n;
}

/** first 4 bytes (big-endian uint32) of SHA-256("cluster/policy") mod spread; 0 without spread. */
export function spreadOffsetMs(cluster: string, policy: string, spreadMs: number): number {
  if (!(spreadMs > 0)) return 0;
  const length = encodeUtf8(`${cluster}/${policy}`);
  compress(scratch, pad(scratch, length));
  return (STATE[0]! >>> 0) % Math.floor(spreadMs);
}

// ---------------------------------------------------------------------------------------------
// Zone offsets. One Intl call costs ~3.7 µs here, too slow for a million timestamps, so offsets are
// probed every 6 h in 50-day chunks (zones never change offset twice within 6 h), each change is
// bisected to the second, and a lookup is then arithmetic on the cached transitions.

const PROBE_MS = 6 * HOUR;
const CHUNK_MS = 200 * PROBE_MS;
const MAX_CHUNKS = 20_000; // ~2,700 years of one zone; beyond that the cache starts over
const OFFSET = /GMT(?:([+-])(\d{1,2}):(\d{2})(?::(\d{2}))?)?$/;

interface Chunk {
  start: number;
  end: number;
  /** Instants where an offset starts; `at[0] === start`. */
  at: number[];
  offsets: number[];
}

export interface ZoneTransition {
  at: number;
  before: number;
  after: number;
}

export class ZoneOffsets {
  private readonly format: Intl.DateTimeFormat;
  private readonly chunks = new Map<number, Chunk>();
  private last: Chunk | undefined;

  /** Throws RangeError for a zone Intl does not know. */
  constructor(readonly timeZone: string) {
    // "longOffset" renders just the UTC offset ("GMT+01:00", "GMT+00:53:28" for old LMT offsets):
    // 3× cheaper than formatToParts and exact to the second.
    this.format = new Intl.DateTimeFormat("en-US", { timeZone, timeZoneName: "longOffset" });
  }

  /** Local wall time minus UTC, in ms, at instant `t`. */
  offsetAt(t: number): number {
    let chunk = this.last;
    if (chunk === undefined || t < chunk.start || t >= chunk.end) {
      chunk = this.chunk(Math.floor(t / CHUNK_MS));
      this.last = chunk;
    }
    const { at, offsets } = chunk;
    let i = at.length - 1;
    while (i > 0 && t < at[i]!) i--;
    return offsets[i]!;
  }

  /** The wall clock at `t`, as milliseconds of a zone-less (UTC-labelled) clock. */
  toLocal(t: number): number {
    return t + this.offsetAt(t);
  }

  /**
   * The instant the wall clock first reaches `wall`: the earlier one when `wall` repeats, the
   * transition instant when `wall` is skipped.
   */
  fromLocal(wall: number): number {
    // Offsets lie within ±15 h, so every instant showing `wall` lies in this window.
    const spans = this.spans(wall - 15 * HOUR, wall + 15 * HOUR);
    let best = Number.POSITIVE_INFINITY;
    for (const [start, end, offset] of spans) {
      const t = wall - offset;
      if (t >= start && t < end && t < best) best = t;
    }
    if (best !== Number.POSITIVE_INFINITY) return best;
    for (const [start, , offset] of spans) if (start + offset > wall) return start;
    throw new Error(`no instant for local time ${new Date(wall).toISOString()} in ${this.timeZone}`);
  }

  /** Offset changes in [from, to). */
  transitions(from: number, to: number): ZoneTransition[] {
    const found: ZoneTransition[] = [];
    let previous: number | null = null;
    for (const [start, , offset] of this.spans(from, to)) {
      if (previous !== null && offset !== previous && start >= from) found.push({ at: start, before: previous, after: offset });
      previous = offset;
    }
    return found;
  }

  /** [start, end, offset] spans covering [from, to], in order (split at chunk borders). */
  private spans(from: number, to: number): Array<[number, number, number]> {
    const out: Array<[number, number, number]> = [];
    for (let index = Math.floor(from / CHUNK_MS); index <= Math.floor(to / CHUNK_MS); index++) {
      const { at, offsets, end } = this.chunk(index);
      for (let i = 0; i < at.length; i++) out.push([at[i]!, at[i + 1] ?? end, offsets[i]!]);
    }
    return out;
  }

  private chunk(index: number): Chunk {
    const cached = this.chunks.get(index);
    if (cached !== undefined) return cached;
    if (this.chunks.size >= MAX_CHUNKS) this.chunks.clear();
    const start = index * CHUNK_MS;
    const end = start + CHUNK_MS;
    const chunk: Chunk = { start, end, at: [start], offsets: [this.intlOffset(start)] };
    let probe = start;
    let offset = chunk.offsets[0]!;
    while (probe < end) {
      const next = probe + PROBE_MS;
      const nextOffset = this.intlOffset(next);
      if (nextOffset !== offset) {
        const at = this.bisect(probe, next, offset);
        if (at < end) {
          chunk.at.push(at);
          chunk.offsets.push(nextOffset);
        }
      }
      probe = next;
      offset = nextOffset;
    }
    this.chunks.set(index, chunk);
    return chunk;
  }

  /** First whole second in (lo, hi] whose offset is not `offsetAtLo`. */
  private bisect(lo: number, hi: number, offsetAtLo: number): number {
    while (hi - lo > 1000) {
      const mid = lo + Math.floor((hi - lo) / 2000) * 1000;
      if (this.intlOffset(mid) === offsetAtLo) lo = mid;
      else hi = mid;
    }
    return hi;
  }

  private intlOffset(t: number): number {
    const match = OFFSET.exec(this.format.format(t));
    if (match === null) throw new Error(`cannot read the UTC offset of ${this.timeZone}`);
    const [, sign, hours, minutes, seconds] = match;
    if (sign === undefined) return 0;
    const size = Number(hours) * HOUR + Number(minutes) * MINUTE + Number(seconds ?? 0) * 1000;
    return sign === "-" ? -size : size;
  }
}

// Zone rules are pure data, so one cache per zone serves every caller (the tick builds schedules
// anew each time; the planner sees 10,000 series in a handful of zones).
const zoneCache = new Map<string, ZoneOffsets>();

/** The shared offset cache of a zone; throws RangeError for an unknown zone. */
export function zoneOffsets(timeZone: string): ZoneOffsets {
  let zone = zoneCache.get(timeZone);
  if (zone === undefined) {
    zone = new ZoneOffsets(timeZone);
    zoneCache.set(timeZone, zone);
  }
  return zone;
}

/** Validates an IANA zone name; throws `invalid_input` naming `field`. */
export function checkTimeZone(timeZone: unknown, field = "timezone"): string {
  if (typeof timeZone !== "string" || !/^[A-Za-z][A-Za-z0-9_+\-/]*$/.test(timeZone)) {
    throw invalidInput(field, `must be an IANA time zone name like Europe/Berlin or UTC`);
  }
  try {
    zoneOffsets(timeZone);
  } catch {
    throw invalidInput(field, `unknown time zone '${timeZone}'`);
  }
  return timeZone;
}

// ---------------------------------------------------------------------------------------------
// Schedules.

export interface ScheduleSpec {
  /** 5-field cron (or @daily, @hourly, …) or `@every <duration>`. */
  schedule: string;
  /** IANA zone the cron pattern is read in; irrelevant to `@every`. */
  timezone: string;
  /** Duration string, ms, or nothing for `0s`. */
  spread?: string | number | null;
}

export interface SlotRun {
  slot: Date;
  notBefore: Date;
}

/** A schedule bound to one (cluster, policy): its offset is hashed once. */
export interface PairSchedule {
  readonly offsetMs: number;
  dueSlot(now: Date | number, since: Date | number): SlotRun | null;
  nextRun(now: Date | number, since?: Date | number | null): SlotRun | null;
}

const NICKNAMES: Record<string, string> = {
  "@yearly": "0 0 1 1 *",
  "@annually": "0 0 1 1 *",
  "@monthly": "0 0 1 * *",
  "@weekly": "0 0 * * 0",
  "@daily": "0 0 * * *",
  "@midnight": "0 0 * * *",
  "@hourly": "0 * * * *",
};

interface Intervals {
  smallest: number;
  largest: number;
}
const intervalCache = new Map<string, Intervals>();

const ms = (t: Date | number): number => (typeof t === "number" ? t : t.getTime());

export class Schedule {
  readonly expression: string;
  readonly timezone: string;
  readonly spreadMs: number;
  readonly kind: "every" | "cron";
  /** `@every` period; 0 for cron. */
  readonly everyMs: number;

  private readonly cron: Cron | null = null;
  private readonly fields: string[] = [];
  private readonly zone: ZoneOffsets;
  private readonly analysisFrom: number;
  private intervals: Intervals | null = null;
  private around: { now: number; latest: number | null; previous?: number | null; next?: number | null } | null = null;

  /**
   * Validates and compiles a policy's schedule. Throws `invalid_input` naming `schedule`,
   * `timezone` or `spread`. `now` only anchors the DST-transition scan behind
   * `smallestIntervalMs` (see there); slot math does not depend on it. `stored: true` is for a
   * policy that was checked when it was written (the tick): the spread is not measured against
   * the smallest interval again, which would cost the zone's two-year DST scan on a cold start,
   * and a stored policy must keep being scheduled even if that rule ever tightens.
   */
  constructor(spec: ScheduleSpec, options: { now?: Date; stored?: boolean } = {}) {
    this.timezone = checkTimeZone(spec.timezone, "timezone");
    this.zone = zoneOffsets(this.timezone);
    this.analysisFrom = (options.now ?? new Date()).getTime();
    const text = typeof spec.schedule === "string" ? spec.schedule.trim() : "";
    if (text === "") throw invalidInput("schedule", "must be a 5-field cron expression or '@every <duration>'");
    this.expression = text;

    const every = /^@every\s+(\S+)$/.exec(text);
    if (every !== null) {
      this.kind = "every";
      this.everyMs = parseDuration(every[1]!, "schedule");
    } else {
      this.kind = "cron";
      this.everyMs = 0;
      this.fields = this.cronFields(text);
      try {
        this.cron = new Cron(this.fields.join(" "), { utcOffset: 0, paused: true });
      } catch (error) {
        throw invalidInput("schedule", `'${text}' is not a valid cron expression: ${(error as Error).message}`);
      }
      if (this.cron.nextRun(new Date(this.analysisFrom)) === null) {
        throw invalidInput("schedule", `'${text}' never fires`);
      }
    }

    this.spreadMs = this.parseSpread(spec.spread);
    if (!options.stored && this.spreadMs > 0 && this.spreadMs >= this.smallestIntervalMs) {
      throw invalidInput(
        "spread",
        `${formatDuration(this.spreadMs)} must be shorter than the schedule's smallest interval (${formatDuration(this.smallestIntervalMs)})`,
      );
    }
  }

  /**
   * Shortest time between two consecutive slots. `@every D`: D. Cron: exact on the wall clock
   * (times of day × matching days over a 28-year weekday/leap cycle), then every pair of slots
   * around each offset change of the zone within two years of construction is measured in real
   * time — DST only changes gaps that straddle a transition, and rules repeat yearly.
   */
  get smallestIntervalMs(): number {
    return this.analyze().smallest;
  }

  /** Longest time between two consecutive slots (same analysis; fall-back hours included). */
  get largestIntervalMs(): number {
    return this.analyze().largest;
  }

  /** 1.5 × the longest interval, so a healthy schedule (weekends, DST nights) never breaches it. */
  get defaultRpoMs(): number {
    return Math.ceil((1.5 * this.largestIntervalMs) / 1000) * 1000;
  }

  offsetFor(cluster: string, policy: string): number {
    return spreadOffsetMs(cluster, policy, this.spreadMs);
  }

  forPair(cluster: string, policy: string): PairSchedule {
    const offsetMs = this.offsetFor(cluster, policy);
    return {
      offsetMs,
      dueSlot: (now, since) => this.dueSlot(now, since, offsetMs),
      nextRun: (now, since) => this.nextRun(now, offsetMs, since),
    };
  }

  /** Latest slot ≤ t, or null. */
  latestSlotAtOrBefore(t: Date | number): Date | null {
    const slot = this.latestAtOrBefore(ms(t));
    return slot === null ? null : new Date(slot);
  }

  /** First slot > t, or null. */
  firstSlotAfter(t: Date | number): Date | null {
    const slot = this.firstAfter(ms(t));
    return slot === null ? null : new Date(slot);
  }

  /** Slots in [from, to), at most `limit` of them. */
  slotsBetween(from: Date | number, to: Date | number, limit = 10_000): Date[] {
    const end = ms(to);
    const out: Date[] = [];
    let slot = this.firstAfter(ms(from) - 1);
    while (slot !== null && slot < end && out.length < limit) {
      out.push(new Date(slot));
      slot = this.firstAfter(slot);
    }
    return out;
  }

  /**
   * The run to create at `now` for a pair first seen at `since`: the latest slot s with
   * s > since and s + offset ≤ now (older missed slots are skipped), or null.
   */
  dueSlot(now: Date | number, since: Date | number, offsetMs = 0): SlotRun | null {
    const slot = this.dueSlotMs(ms(now), ms(since), offsetMs);
    return slot === null ? null : { slot: new Date(slot), notBefore: new Date(slot + offsetMs) };
  }

  /** `dueSlot` in epoch ms (the run's notBefore is `slot + offsetMs`): the tick asks for 30,000 at a time. */
  dueSlotMs(nowMs: number, sinceMs: number, offsetMs = 0): number | null {
    let slot: number | null;
    if (this.fastOffset(offsetMs)) {
      // offset < smallest interval, so the answer is the latest slot ≤ now or the one before;
      // both are computed once per `now` and shared by every pair of this schedule.
      const around = this.aroundNow(nowMs);
      slot = around.latest !== null && around.latest + offsetMs <= nowMs ? around.latest : this.previousOf(around);
    } else {
      slot = this.latestAtOrBefore(nowMs - offsetMs);
    }
    return slot === null || slot <= sinceMs ? null : slot;
  }

  /**
   * The two slots `dueSlotMs` chooses between at `nowMs` for every offset below `spreadMs` (all
   * offsets a spread hash gives): a pair's due slot is `latest` once `latest + offset ≤ now`, else
   * `previous`; either way only if it is after the pair's `since`. The tick puts this rule into
   * SQL (scheduler/tick.ts) so that 30,000 pairs never pass through JavaScript one by one.
   */
  dueCandidatesMs(nowMs: number): { latest: number | null; previous: number | null } {
    const around = this.aroundNow(nowMs);
    return { latest: around.latest, previous: this.previousOf(around) };
  }

  /** The pair's next run not yet due at `now` (and after `since`, when given). */
  nextRun(now: Date | number, offsetMs = 0, since?: Date | number | null): SlotRun | null {
    const nowMs = ms(now);
    const threshold = Math.max(nowMs - offsetMs, since === undefined || since === null ? -Infinity : ms(since));
    let slot: number | null;
    if (this.fastOffset(offsetMs) && threshold <= nowMs) {
      const around = this.aroundNow(nowMs);
      if (around.latest !== null && threshold < around.latest) slot = around.latest;
      else {
        if (around.next === undefined) around.next = this.firstAfter(nowMs);
        slot = around.next;
      }
    } else {
      slot = this.firstAfter(threshold);
    }
    return slot === null ? null : { slot: new Date(slot), notBefore: new Date(slot + offsetMs) };
  }

  // --- internals -------------------------------------------------------------------------------

  private fastOffset(offsetMs: number): boolean {
    return offsetMs === 0 || (offsetMs > 0 && offsetMs < this.spreadMs);
  }

  private aroundNow(nowMs: number): { now: number; latest: number | null; previous?: number | null; next?: number | null } {
    if (this.around === null || this.around.now !== nowMs) {
      this.around = { now: nowMs, latest: this.latestAtOrBefore(nowMs) };
    }
    return this.around;
  }

  private previousOf(around: { latest: number | null; previous?: number | null }): number | null {
    if (around.previous === undefined) {
      around.previous = around.latest === null ? null : this.latestAtOrBefore(around.latest - 1);
    }
    return around.previous;
  }

  private latestAtOrBefore(t: number): number | null {
    if (this.kind === "every") return Math.floor(t / this.everyMs) * this.everyMs;
    // Wall slots ≤ local(t) map to instants ≤ t (the mapping is monotonic); later wall slots
    // can too, but only inside a repeated hour, hence the forward walk.
    let wall = this.previousWall(this.zone.toLocal(t));
    if (wall === null) return null;
    let instant = this.zone.fromLocal(wall);
    for (;;) {
      const next = this.nextWall(wall);
      if (next === null) break;
      const nextInstant = this.zone.fromLocal(next);
      if (nextInstant > t) break;
      wall = next;
      instant = nextInstant;
    }
    return instant;
  }

  private firstAfter(t: number): number | null {
    if (this.kind === "every") return (Math.floor(t / this.everyMs) + 1) * this.everyMs;
    let wall = this.nextWall(this.zone.toLocal(t));
    while (wall !== null) {
      const instant = this.zone.fromLocal(wall);
      if (instant > t) return instant;
      wall = this.nextWall(wall);
    }
    return null;
  }

  /** First wall-clock slot > wall. */
  private nextWall(wall: number): number | null {
    const next = this.cron!.nextRun(new Date(wall));
    return next === null ? null : next.getTime();
  }

  /** Latest wall-clock slot ≤ wall: widen the look-back until a slot shows, then bisect. */
  private previousWall(wall: number): number | null {
    let lookBack = MINUTE;
    let found: number | null = null;
    while (found === null) {
      const candidate = this.nextWall(wall - lookBack);
      if (candidate !== null && candidate <= wall) found = candidate;
      else if (lookBack > 400 * YEAR) return null;
      else lookBack *= 4;
    }
    let hi = wall;
    for (;;) {
      const next = this.nextWall(found);
      if (next === null || next > hi) return found;
      const mid = Math.floor((next + hi) / 2);
      const probe = this.nextWall(mid);
      if (probe !== null && probe <= hi) found = probe;
      else {
        hi = mid;
        found = next;
      }
    }
  }

  private cronFields(text: string): string[] {
    if (text.startsWith("@")) {
      const expanded = NICKNAMES[text.toLowerCase()];
      if (expanded === undefined) {
        throw invalidInput("schedule", `'${text}' is not supported (use a 5-field cron expression, @hourly, @daily, @weekly, @monthly, @yearly or '@every <duration>')`);
      }
      return expanded.split(" ");
    }
    const fields = text.split(/\s+/);
    if (fields.length !== 5) {
      throw invalidInput("schedule", `'${text}' must have 5 fields (minute hour day-of-month month day-of-week), found ${fields.length}`);
    }
    if (text.includes("?")) throw invalidInput("schedule", `'${text}': '?' is not supported`);
    return fields;
  }

  private parseSpread(spread: ScheduleSpec["spread"]): number {
    if (spread === undefined || spread === null) return 0;
    if (typeof spread === "number") {
      if (!Number.isSafeInteger(spread) || spread < 0) throw invalidInput("spread", "must be a duration like 30m");
      return spread;
    }
    return parseDuration(spread, "spread", { allowZero: true });
  }

  private analyze(): Intervals {
    if (this.intervals !== null) return this.intervals;
    if (this.kind === "every") return (this.intervals = { smallest: this.everyMs, largest: this.everyMs });
    const key = `${this.fields.join(" ")}\u0000${this.timezone}`;
    const cached = intervalCache.get(key);
    if (cached !== undefined) return (this.intervals = cached);

    const wall = wallIntervals(this.fields);
    let { smallest, largest } = wall;
    for (const { at } of this.zone.transitions(this.analysisFrom, this.analysisFrom + 2 * YEAR)) {
      const before = this.latestAtOrBefore(at - 1);
      const first = this.firstAfter(at - 1);
      const second = first === null ? null : this.firstAfter(first);
      for (const [a, b] of [[before, first], [first, second]] as const) {
        if (a === null || b === null) continue;
        smallest = Math.min(smallest, b - a);
        largest = Math.max(largest, b - a);
      }
    }
    const result = { smallest, largest };
    intervalCache.set(key, result);
    return (this.intervals = result);
  }
}

/**
 * Gaps between consecutive slots on a wall clock without DST. A 5-field pattern fires at the same
 * times of day on every matching day, so gaps are either between two times of one day or from the
 * last time of a matching day to the first time of the next matching day.
 */
function wallIntervals(fields: string[]): Intervals {
  const [minuteField, hourField, dom, month, dow] = fields as [string, string, string, string, string];
  const pattern = new CronPattern(`${minuteField} ${hourField} * * *`);
  const times: number[] = [];
  for (let h = 0; h < 24; h++) {
    if (!pattern.hour[h]) continue;
    for (let m = 0; m < 60; m++) if (pattern.minute[m]) times.push(h * 60 + m);
  }
  let smallestInDay = Infinity;
  let largestInDay = 0;
  for (let i = 1; i < times.length; i++) {
    smallestInDay = Math.min(smallestInDay, times[i]! - times[i - 1]!);
    largestInDay = Math.max(largestInDay, times[i]! - times[i - 1]!);
  }
  const daySpan = times[times.length - 1]! - times[0]!;

  let smallestDays = 1;
  let largestDays = 1;
  if (!(dom === "*" && month === "*" && dow === "*")) {
    // Plain weekdays repeat weekly: three weeks show every gap. Anything else (days of month,
    // months, nth/last weekday) gets 28 years = one full cycle of weekdays and leap years
    // (exact within 1901–2099).
    const weekly = dom === "*" && month === "*" && !/[#L]/i.test(dow);
    const from = Date.UTC(2001, 0, 1); // a Monday
    const stop = weekly ? from + 21 * DAY : Date.UTC(2029, 0, 1);
    const days = new Cron(`0 0 ${dom} ${month} ${dow}`, { utcOffset: 0, paused: true });
    let previous: number | null = null;
    smallestDays = Infinity;
    largestDays = 0;
    for (let day = days.nextRun(new Date(from - 1)); day !== null; day = days.nextRun(day)) {
      const index = Math.round(day.getTime() / DAY);
      if (previous !== null) {
        smallestDays = Math.min(smallestDays, index - previous);
        largestDays = Math.max(largestDays, index - previous);
      }
      previous = index;
      if (day.getTime() >= stop && largestDays > 0) break;
    }
  }
  return {
    smallest: Math.min(smallestInDay, smallestDays * 1440 - daySpan) * MINUTE,
    largest: Math.max(largestInDay, largestDays * 1440 - daySpan) * MINUTE,
  };
}
