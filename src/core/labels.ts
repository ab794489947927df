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
    const key = m[1]!.trim();
    // Requirements all apply: two values for one key match nothing, which is surely a mistake.
    if (key in out) throw invalidInput(field, `'${key}' is given twice`);
    out[key] = m[2]!.trim();
  }
  return checkLabels(out, field);
}

export function matchesLabels(labels: Record<string, string>, matchLabels: Record<string, string>): boolean {
  for (const [k, v] of Object.entries(matchLabels)) if (labels[k] !== v) return false;
  return true;
}

const SET_OP = /^(\S+)\s+(in|notin)\s*\((.*)\)$/;
const EQ_OP = /^([^=!<>\s]+)\s*(==|!=|=)\s*(\S*)$/;
const CMP_OP = /^([^=!<>\s]+)\s*([<>])\s*(-?\d+)$/;

/**
 * A Kubernetes label selector as the API server takes it in `labelSelector` (the etcd pods'
 * selector): comma-separated requirements `k=v`, `k==v`, `k!=v`, `k in (a,b)`, `k notin (a,b)`,
 * `k`, `!k`, `k>1`, `k<1` (integers). Throws invalid_input naming the requirement that is not one of these.
 */
export function checkLabelSelector(text: string, field = "selector"): void {
  // Commas also separate the values inside ( … ): split at commas outside parentheses only.
  const parts: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (ch === "(") depth++;
    else if (ch === ")") depth--;
    else if (ch === "," && depth === 0) {
      parts.push(text.slice(start, i));
      start = i + 1;
    }
    if (depth < 0 || depth > 1) throw invalidInput(field, "unbalanced parentheses");
  }
  if (depth !== 0) throw invalidInput(field, "unbalanced parentheses");
  parts.push(text.slice(start));
  for (const raw of parts) {
    const part = raw.trim();
    if (!part) throw invalidInput(field, "has an empty requirement");
    const bad = () => invalidInput(field, `'${part.slice(0, 80)}' is not a label selector requirement (k=v, k!=v, k in (a,b), k notin (a,b), k, !k, k>n, k<n)`);
    const set = SET_OP.exec(part);
    if (set) {
      checkLabelKey(set[1]!, field);
      const values = set[3]!.split(",").map((v) => v.trim());
      // `k in ()` has no values: the API server refuses it (an empty value must be spelled once).
      if (set[3]!.trim() === "" || values.some((v) => !VALUE.test(v))) throw bad();
      continue;
    }
    const cmp = CMP_OP.exec(part);
    if (cmp) {
      checkLabelKey(cmp[1]!, field);
      continue;
    }
    const eq = EQ_OP.exec(part);
    if (eq) {
      checkLabelKey(eq[1]!, field);
      if (!VALUE.test(eq[3]!)) throw bad();
      continue;
    }
    const key = part.startsWith("!") ? part.slice(1).trim() : part;
    if (/[\s=!(),<>]/.test(key)) throw bad();
    checkLabelKey(key, field);
  }
}
