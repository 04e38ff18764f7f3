/**
 * Escaping for the text formats the reports write. Every string that came from a run (scenario names,
 * error messages, event contents, agent names) is untrusted and goes through one of these.
 */

/** Escape for XML/HTML text and attribute values; drops characters XML 1.0 cannot carry. */
export function escapeXml(value: unknown): string {
  return String(value)
    .replace(/[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]/g, "\uFFFD")
    .replace(/&/g, "&amp;")
    .replace(/</g, "&lt;")
    .replace(/>/g, "&gt;")
    .replace(/"/g, "&quot;")
    .replace(/'/g, "&#39;");
}

/** Escape for a Markdown table cell: one line, pipes and markup neutralised. */
export function escapeMarkdownCell(value: unknown): string {
  return String(value)
    .replace(/\r?\n/g, " ")
    .replace(/\\/g, "\\\\")
    .replace(/\|/g, "\\|")
    .replace(/([`*_<>[\]])/g, "\\$1");
}

/** Inline code span that cannot be broken out of by backticks in the value. */
export function markdownCode(value: string): string {
  const one = value.replace(/\r?\n/g, " ");
  const longest = Math.max(0, ...(one.match(/`+/g) ?? []).map((m) => m.length));
  const fence = "`".repeat(longest + 1);
  const pad = one.startsWith("`") || one.endsWith("`") ? " " : "";
  return `${fence}${pad}${one}${pad}${fence}`;
}
