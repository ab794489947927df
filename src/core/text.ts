// Text that came from elsewhere (a pod's stderr, a runner's report) made safe to show: what a
// terminal or an editor would act on instead of print is replaced, never refused, so a report is
// not lost over a colour code.

// ANSI CSI sequences (colours, cursor moves) and OSC sequences (window titles), removed whole.
// eslint-disable-next-line no-control-regex
const ANSI = /\u001b\[[0-9;?]*[ -/]*[@-~]|\u001b\][^\u0007\u001b]*(\u0007|\u001b\\)/g;
// C0 and C1 controls but tab and newline; bidi overrides and isolates; line/paragraph separators.
// eslint-disable-next-line no-control-regex
const UNPRINTABLE = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

/** Whether one-line text holds anything `printableLine` would replace (tabs and newlines too). */
export function hasUnprintable(text: string): boolean {
  UNPRINTABLE.lastIndex = 0;
  return /[\n\t]/.test(text) || UNPRINTABLE.test(text);
}

export function hasLoneSurrogate(text: string): boolean {
  LONE_SURROGATE.lastIndex = 0;
  return LONE_SURROGATE.test(text);
}

/** Multi-line text with controls, bidi marks and lone surrogates replaced by U+FFFD. */
export function printableText(text: string, max = 8192): string {
  return text
    .replace(ANSI, "")
    .replace(/\r\n?/g, "\n")
    .replace(UNPRINTABLE, "\uFFFD")
    .replace(LONE_SURROGATE, "\uFFFD")
    .slice(0, max);
}

/** One line: the same, with newlines and tabs replaced too. */
export function printableLine(text: string, max = 253): string {
  return printableText(text, max).replace(/[\n\t]/g, "\uFFFD");
}
