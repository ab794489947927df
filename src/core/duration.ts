// Durations as the HTTP contract writes them: `90s`, `30m`, `6h`, `7d`, `2w` and combinations
// (`1h30m`). Units appear at most once, largest first. `formatDuration` writes the canonical form:
// days, hours, minutes, seconds, each below its next unit (`1h30m`, `36h` → `1d12h`). It never
// writes weeks: the reason grammar says `within 7d`, and `30d` reads better than `4w2d`.

import { invalidInput } from "./errors.js";

const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
const WEEK = 7 * DAY;

/** Units from largest to smallest; the order a duration must be written in. */
const UNITS: ReadonlyArray<readonly [string, number]> = [
  ["w", WEEK],
  ["d", DAY],
  ["h", HOUR],
  ["m", MINUTE],
  ["s", SECOND],
];

const PART = /(\d+)([A-Za-z]*)/y;

export interface ParseDurationOptions {
  /** Accept `0s` (and `0`) as zero; for settings where zero means "off", like a policy's spread. */
  allowZero?: boolean;
}

/**
 * Milliseconds for a duration string. Throws `invalid_input` naming `field` when the text is
 * empty, negative, zero (unless `allowZero`), uses an unknown unit, or repeats / misorders units.
 */
export function parseDuration(text: string, field: string, options: ParseDurationOptions = {}): number {
  if (typeof text !== "string") throw invalidInput(field, "must be a duration like 90s, 30m, 6h, 7d, 2w or 1h30m");
  if (text === "") throw invalidInput(field, "must not be empty");
  if (text.startsWith("-")) throw invalidInput(field, `'${text}' must be positive`);
  if (options.allowZero && text === "0") return 0;

  let total = 0;
  let pos = 0;
  let lastUnitIndex = -1;
  while (pos < text.length) {
    PART.lastIndex = pos;
    const match = PART.exec(text);
    if (match === null) throw invalidInput(field, `'${text}' is not a duration (expected e.g. 90s, 6h, 1h30m)`);
    const [whole, digits = "", unit = ""] = match;
    const unitIndex = UNITS.findIndex(([name]) => name === unit);
    if (unit === "") {
      const trailing = pos + whole.length === text.length;
      throw invalidInput(field, trailing ? `'${text}' needs a unit after ${digits} (w, d, h, m or s)` : `'${text}' is not a duration (expected e.g. 90s, 6h, 1h30m)`);
    }
    if (unitIndex < 0) throw invalidInput(field, `'${text}' has unknown unit '${unit}' (use w, d, h, m or s)`);
    if (unitIndex <= lastUnitIndex) {
      throw invalidInput(field, `'${text}' must list each unit once, largest first (w, d, h, m, s)`);
    }
    lastUnitIndex = unitIndex;
    total += Number(digits) * (UNITS[unitIndex]?.[1] ?? 0);
    pos += whole.length;
  }
  if (!Number.isSafeInteger(total)) throw invalidInput(field, `'${text}' is too long`);
  if (total === 0 && !options.allowZero) throw invalidInput(field, `'${text}' must be greater than zero`);
  return total;
}

/**
 * The canonical spelling of a duration: `5400000` → `1h30m`, 14 days → `14d`, `0` → `0s`. Sub-second
 * remainders (only derived values such as 1.5 × an interval can have them) round up to a second,
 * so the result always parses back to at least the given length.
 */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) throw new RangeError(`formatDuration: ${ms} is not a duration`);
  let rest = Math.ceil(ms / SECOND) * SECOND;
  if (rest === 0) return "0s";
  let out = "";
  for (const [name, size] of UNITS) {
    if (name === "w") continue;
    const count = Math.floor(rest / size);
    if (count > 0) {
      out += `${count}${name}`;
      rest -= count * size;
    }
  }
  return out;
}
