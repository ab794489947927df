// Kubernetes-style labels and equality selectors (`env=prod,tier=core`).
import { invalidInput } from "./errors.js";

const KEY_NAME = /^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/;
const KEY_PREFIX = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;
const VALUE = /^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$/;

export function checkLabelKey(key: string, field: string): void {
  const slash = key.indexOf("/");
  const prefix = slash >= 0 ? key.slice(0, slash) : null;
  const name = slash >= 0 ? key.slice(slash + 1) : key;
  if ((prefix !== null && !KEY_PREFIX.test(prefix)) || !KEY_NAME.test(name)) {
    throw invalidInput(field, `'${key}' is not a valid label key`);
  }
}

export function checkLabels(labels: Record<string, string>, field = "labels"): Record<string, string> {
  for (const [k, v] of Object.entries(labels)) {
    checkLabelKey(k, `${field}.${k}`);
    if (typeof v !== "string" || !VALUE.test(v)) throw invalidInput(`${field}.${k}`, `'${String(v)}' is not a valid label value`);
  }
  return labels;
}

export function parseSelector(text: string, field = "selector"): Record<string, string> {
  // No prototype: a key "__proto__" stays a key (and is refused as one) instead of vanishing.
  const out = Object.create(null) as Record<string, string>;
  for (const part of text.split(",").map((s) => s.trim()).filter(Boolean)) {
    const m = /^([^=!]+)==?([^=]*)$/.exec(part);
    if (!m) throw invalidInput(field, `'${part}' is not key=value (only equality selectors are supported)`);
    out[m[1]!.trim()] = m[2]!.trim();
  }
  return checkLabels(out, field);
}

export function matchesLabels(labels: Record<string, string>, matchLabels: Record<string, string>): boolean {
  for (const [k, v] of Object.entries(matchLabels)) if (labels[k] !== v) return false;
  return true;
}
