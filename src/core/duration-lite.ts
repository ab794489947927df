// Kept for callers written against the early configuration parser; core/duration.ts is the one
// implementation.
import { parseDuration } from "./duration.js";

export const parseDurationMs = (text: string): number => parseDuration(text.trim(), "duration");
