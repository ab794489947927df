import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { formatDuration, parseDuration } from "../src/core/duration.js";
import { rejection } from "./helpers/expect-error.js";

const S = 1000;
const M = 60 * S;
const H = 60 * M;
const D = 24 * H;

describe("parseDuration", () => {
  it.each([
    ["90s", 90 * S],
    ["30m", 30 * M],
    ["6h", 6 * H],
    ["7d", 7 * D],
    ["2w", 14 * D],
    ["1h30m", 90 * M],
    ["1w2d3h4m5s", 7 * D + 2 * D + 3 * H + 4 * M + 5 * S],
    ["36h", 36 * H],
  ])("%s", (text, ms) => {
    expect(parseDuration(text, "rpo")).toBe(ms);
  });

  it.each([
    ["", "must not be empty"],
    ["0s", "greater than zero"],
    ["0h0m", "greater than zero"],
    ["-5m", "positive"],
    ["5x", "unknown unit 'x'"],
    ["5ms", "unknown unit 'ms'"],
    ["5H", "unknown unit 'H'"],
    ["30", "needs a unit"],
    ["1.5h", "is not a duration"],
    ["1h 30m", "is not a duration"],
    [" 6h", "is not a duration"],
    ["30m1h", "largest first"],
    ["1h1h", "largest first"],
    ["h", "is not a duration"],
    ["99999999999999999999d", "too long"],
  ])("rejects %j as invalid_input naming the field", (text, message) => {
    const error = rejection(() => parseDuration(text, "policy.rpo"));
    expect(error.code).toBe("invalid_input");
    expect(error.field).toBe("policy.rpo");
    expect(error.message).toContain("policy.rpo");
    expect(error.message).toContain(message);
  });

  it("rejects non-strings", () => {
    expect(rejection(() => parseDuration(42 as unknown as string, "spread")).field).toBe("spread");
  });

  it("accepts zero only when asked (spread: 0s means off)", () => {
    expect(parseDuration("0s", "spread", { allowZero: true })).toBe(0);
    expect(parseDuration("0", "spread", { allowZero: true })).toBe(0);
    expect(parseDuration("5m", "spread", { allowZero: true })).toBe(5 * M);
    expect(rejection(() => parseDuration("0", "spread")).code).toBe("invalid_input");
  });
});

describe("formatDuration", () => {
  it.each([
    [90 * M, "1h30m"],
    [90 * S, "1m30s"],
    [7 * D, "7d"], // the reason grammar writes `within 7d`; weeks are never written
    [14 * D, "14d"],
    [30 * D, "30d"],
    [36 * H, "1d12h"],
    [0, "0s"],
    [1500, "2s"], // sub-second remainders round up
  ])("%d → %s", (ms, text) => {
    expect(formatDuration(ms)).toBe(text);
  });

  it("rejects negative and non-finite input", () => {
    expect(() => formatDuration(-1)).toThrow(RangeError);
    expect(() => formatDuration(Number.NaN)).toThrow(RangeError);
  });

  it("round-trips: parse(format(ms)) === ms, and format writes each unit below its next one", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 10_000_000 }), (seconds) => {
        const text = formatDuration(seconds * S);
        expect(parseDuration(text, "d")).toBe(seconds * S);
        expect(text).toMatch(/^(\d+d)?(\d+h)?(\d+m)?(\d+s)?$/);
        // canonical: no unit overflows into the next larger one
        const parts = Object.fromEntries([...text.matchAll(/(\d+)([wdhms])/g)].map((m) => [m[2], Number(m[1])]));
        expect(parts.h ?? 0).toBeLessThan(24);
        expect(parts.m ?? 0).toBeLessThan(60);
        expect(parts.s ?? 0).toBeLessThan(60);
      }),
    );
  });

  it("format(parse(text)) normalizes equivalent spellings", () => {
    expect(formatDuration(parseDuration("90m", "d"))).toBe("1h30m");
    expect(formatDuration(parseDuration("48h", "d"))).toBe("2d");
    expect(formatDuration(parseDuration("2w", "d"))).toBe("14d");
  });
});
