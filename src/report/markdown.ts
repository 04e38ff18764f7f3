/** `summary.md`: one table row per scenario, then what failed and how to replay it. */
import { escapeMarkdownCell, markdownCode } from "./escape.ts";
import { checksAndStepsText, complianceText, finalEpoch, formatBytes, formatMs, percentile } from "./stats.ts";
import type { RunReport, ScenarioResult } from "./types.ts";

function cellCode(value: string): string {
  // A pipe inside a code span still splits a GFM table row unless escaped.
  return markdownCode(value).replace(/\|/g, "\\|");
}

function metricsCell(r: ScenarioResult): string {
  const m = r.metrics;
  const parts: string[] = [];
  const epoch = finalEpoch(r);
  if (epoch !== undefined) parts.push(`epoch ${epoch}`);
  parts.push(`${m.deliveryLatencyMs.length} delivered`);
  const p50 = percentile(m.deliveryLatencyMs, 50);
  const p99 = percentile(m.deliveryLatencyMs, 99);
  if (p50 !== undefined) parts.push(`latency p50 ${formatMs(p50)} / p99 ${formatMs(p99)}`);
  if (m.commitCost.length) {
    const biggest = m.commitCost.reduce((a, b) => (b.members > a.members ? b : a));
    parts.push(`commit @${biggest.members}: ${formatMs(biggest.createMs)}`);
  }
  parts.push(`wall ${formatMs(m.wallMs)}`, `cpu ${formatMs(m.cpuMs)}`, `rss ${formatBytes(m.peakRssBytes)}`);
  return escapeMarkdownCell(parts.join(", "));
}

export function renderSummaryMarkdown(report: RunReport): string {
  const total = report.results.length;
  const asExpected = report.results.filter((r) => r.ok).length;
  const lines: string[] = [];
  lines.push(`# marmot-harness run report`, "");
  lines.push(`- Started: ${escapeMarkdownCell(report.startedAt)}; finished: ${escapeMarkdownCell(report.finishedAt)}`);
  lines.push(`- Tool version: ${escapeMarkdownCell(report.version)}; profile: ${report.profile}`);
  lines.push(`- Scenarios: ${total}; as expected: ${asExpected}; not as expected: ${total - asExpected}`);
  lines.push("");
  lines.push("| Scenario | Seed | Verdict | Expected | As expected | Checks | Compliance | Metrics |");
  lines.push("|---|---|---|---|---|---|---|---|");
  for (const r of report.results) {
    lines.push(
      `| ${escapeMarkdownCell(r.scenario)} | ${cellCode(r.seed)} | ${r.verdict} | ${r.expected} | ${r.ok ? "yes" : "**NO**"} | ${escapeMarkdownCell(checksAndStepsText(r))} | ${escapeMarkdownCell(complianceText(r))} | ${metricsCell(r)} |`,
    );
  }
  lines.push("");

  const failing = report.results.filter((r) => r.verdict !== "pass" && r.verdict !== "not-applicable");
  if (failing.length) {
    lines.push("## Failures", "");
    for (const r of failing) {
      lines.push(`### ${escapeMarkdownCell(r.scenario)} (seed ${cellCode(r.seed)}): ${r.verdict}, expected ${r.expected}${r.ok ? " (as expected)" : ""}`, "");
      const failedChecks = r.checks.filter((c) => c.verdict === "fail" || c.verdict === "error" || c.verdict === "refused");
      const failedSteps = r.steps.filter((s) => s.verdict === "fail" || s.verdict === "error" || s.verdict === "refused");
      for (const s of failedSteps) lines.push(`- step ${s.index} ${escapeMarkdownCell(s.type)} (${s.verdict}): ${escapeMarkdownCell(s.message ?? s.description)}`);
      for (const c of failedChecks) lines.push(`- check ${escapeMarkdownCell(c.name)} (${c.verdict}): ${escapeMarkdownCell(c.message)}`);
      for (const f of r.failures) lines.push(`- ${escapeMarkdownCell(f)}`);
      if (r.compliance?.failures.length) {
        for (const f of r.compliance.failures) lines.push(`- compliance ${escapeMarkdownCell(f.ruleId)} [${escapeMarkdownCell(f.level)}]: ${escapeMarkdownCell(f.message)}`);
      }
      if (r.capsuleDir) lines.push(`- capsule: ${markdownCode(r.capsuleDir)}`);
      const cmd = r.replayCommand.replace(/\r?\n/g, " ");
      const fence = "`".repeat(Math.max(3, ...(cmd.match(/`+/g) ?? []).map((m) => m.length + 1)));
      lines.push("", "Replay:", "", `${fence}sh`, cmd, fence, "");
    }
  }

  const notApplicable = report.results.flatMap((r) => r.checks.filter((c) => c.verdict === "not-applicable").map((c) => ({ r, c })));
  if (notApplicable.length) {
    lines.push("## Not applicable (not judged, never counted as passed)", "");
    for (const { r, c } of notApplicable) lines.push(`- ${escapeMarkdownCell(r.scenario)}: ${escapeMarkdownCell(c.name)}: ${escapeMarkdownCell(c.message)}`);
    lines.push("");
  }

  const withNotes = report.results.filter((r) => r.notes.length);
  if (withNotes.length) {
    lines.push("## Notes", "");
    for (const r of withNotes) for (const n of r.notes) lines.push(`- ${escapeMarkdownCell(r.scenario)}: ${escapeMarkdownCell(n)}`);
    lines.push("");
  }
  return lines.join("\n");
}
