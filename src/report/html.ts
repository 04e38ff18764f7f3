/**
 * `index.html`: one self-contained page (inline CSS and SVG, no script, no external asset; a
 * Content-Security-Policy forbids loading anything). Every string from the run is escaped.
 */
import { commitCostChart, epochsChart, latencyHistogram } from "./charts.ts";
import { escapeXml as esc } from "./escape.ts";
import { checksAndStepsText, complianceText, formatBytes, formatMs, percentile, verdictCountsText } from "./stats.ts";
import type { RunReport, ScenarioResult, Verdict } from "./types.ts";

const CSS = `
body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222;max-width:1200px}
h1{font-size:22px}h2{font-size:18px;margin-top:32px;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #ddd;padding:3px 8px;text-align:left;vertical-align:top}
th{background:#f4f4f4}.v-pass{color:#17692a}.v-fail,.v-error,.v-refused{color:#b00020;font-weight:600}.v-not-applicable{color:#777}
.bad{background:#fde8ea}code{background:#f4f4f4;padding:1px 4px;word-break:break-all}
.charts{display:flex;flex-wrap:wrap;gap:12px}.chart{border:1px solid #eee;background:#fff}
.chart text{font:11px system-ui,sans-serif;fill:#333}.chart .t{font-weight:600;font-size:12px}.chart .ax{stroke:#555}
.chart .grid{stroke:#eee}.chart .muted{fill:#999}details{margin:6px 0}`;

function verdict(v: Verdict | "pass" | "fail"): string {
  return `<span class="v-${esc(v)}">${esc(v)}</span>`;
}

function anchor(r: ScenarioResult, i: number): string {
  return `s${i}-${r.scenario.replace(/[^A-Za-z0-9_-]/g, "_")}`;
}

function scenarioSection(r: ScenarioResult, i: number): string {
  const m = r.metrics;
  const out: string[] = [];
  out.push(`<h2 id="${esc(anchor(r, i))}">${esc(r.scenario)} ${verdict(r.verdict)}${r.ok ? "" : ` <span class="v-fail">(expected ${esc(r.expected)})</span>`}</h2>`);
  out.push(`<p>${esc(r.description)}</p>`);
  out.push(
    `<table><tr><th>seed</th><td><code>${esc(r.seed)}</code></td><th>profile</th><td>${esc(r.profile)}</td><th>relays</th><td>${esc(r.relayBackend)}</td></tr>` +
      `<tr><th>wall</th><td>${esc(formatMs(m.wallMs))}</td><th>cpu</th><td>${esc(formatMs(m.cpuMs))}</td><th>peak rss</th><td>${esc(formatBytes(m.peakRssBytes))}</td></tr>` +
      `<tr><th>delivered</th><td>${m.deliveryLatencyMs.length}</td><th>latency p50</th><td>${esc(formatMs(percentile(m.deliveryLatencyMs, 50)))}</td><th>p99</th><td>${esc(formatMs(percentile(m.deliveryLatencyMs, 99)))}</td></tr>` +
      `<tr><th>compliance</th><td colspan="5">${esc(complianceText(r))}</td></tr></table>`,
  );
  out.push(`<p>Replay: <code>${esc(r.replayCommand)}</code>${r.capsuleDir ? ` &middot; capsule <code>${esc(r.capsuleDir)}</code>` : ""}</p>`);
  if (r.failures.length) out.push(`<ul>${r.failures.map((f) => `<li class="v-fail">${esc(f)}</li>`).join("")}</ul>`);
  if (r.notes.length) out.push(`<ul>${r.notes.map((n) => `<li>${esc(n)}</li>`).join("")}</ul>`);
  out.push(`<div class="charts">${epochsChart(m)}${latencyHistogram(m)}${commitCostChart(m)}</div>`);
  if (m.welcomeSizes?.length) {
    out.push(`<table><tr><th>members</th><th>Welcome rumor</th><th>gift wrap</th></tr>${m.welcomeSizes.map((w) => `<tr><td>${w.members}</td><td>${esc(formatBytes(w.rumorBytes))}</td><td>${esc(formatBytes(w.wrapBytes))}</td></tr>`).join("")}</table>`);
  }
  out.push(`<details${r.checks.some((c) => c.verdict !== "pass") ? " open" : ""}><summary>Checks (${esc(verdictCountsText(r.checks))})</summary><table><tr><th>check</th><th>verdict</th><th>message</th><th>subjects</th></tr>`);
  for (const c of r.checks) {
    out.push(`<tr${c.verdict === "fail" || c.verdict === "error" ? ' class="bad"' : ""}><td>${esc(c.name)}</td><td>${verdict(c.verdict)}</td><td>${esc(c.message)}</td><td>${(c.subjects ?? []).slice(0, 20).map((s) => `<code>${esc(s)}</code>`).join(" ")}${(c.subjects?.length ?? 0) > 20 ? " …" : ""}</td></tr>`);
  }
  out.push(`</table></details>`);
  if (r.compliance?.failures.length) {
    out.push(`<details open><summary>Compliance failures (${r.compliance.failures.length})</summary><table><tr><th>rule</th><th>level</th><th>message</th><th>events</th></tr>`);
    for (const f of r.compliance.failures) out.push(`<tr><td>${esc(f.ruleId)}</td><td>${esc(f.level)}</td><td>${esc(f.message)}</td><td>${f.eventIds.slice(0, 10).map((e) => `<code>${esc(e)}</code>`).join(" ")}</td></tr>`);
    out.push(`</table></details>`);
  }
  out.push(`<details${r.steps.some((s) => s.verdict !== "pass") ? " open" : ""}><summary>Steps (${r.steps.length})</summary><table><tr><th>#</th><th>type</th><th>description</th><th>verdict</th><th>virtual t (ms)</th><th>message</th></tr>`);
  const t0 = r.steps[0]?.startedAt ?? 0;
  for (const s of r.steps) {
    out.push(`<tr${s.verdict === "fail" || s.verdict === "error" ? ' class="bad"' : ""}><td>${s.index}</td><td>${esc(s.type)}</td><td>${esc(s.description)}</td><td>${verdict(s.verdict)}</td><td>${s.startedAt - t0}–${s.endedAt - t0}</td><td>${esc(s.message ?? "")}</td></tr>`);
  }
  out.push(`</table></details>`);
  return out.join("\n");
}

export function renderHtml(report: RunReport): string {
  const ok = report.results.filter((r) => r.ok).length;
  const rows = report.results.map(
    (r, i) =>
      `<tr${r.ok ? "" : ' class="bad"'}><td><a href="#${esc(anchor(r, i))}">${esc(r.scenario)}</a></td><td><code>${esc(r.seed)}</code></td><td>${verdict(r.verdict)}</td><td>${esc(r.expected)}</td><td>${r.ok ? "yes" : "<b>NO</b>"}</td><td>${esc(checksAndStepsText(r))}</td><td>${esc(formatMs(r.metrics.wallMs))}</td></tr>`,
  );
  const allCommitCost = report.results.flatMap((r) => r.metrics.commitCost);
  const allLatency = report.results.flatMap((r) => r.metrics.deliveryLatencyMs);
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>marmot-harness report ${esc(report.startedAt)}</title>
<style>${CSS}</style></head>
<body>
<h1>marmot-harness run report</h1>
<p>Started ${esc(report.startedAt)}, finished ${esc(report.finishedAt)} &middot; version ${esc(report.version)} &middot; profile ${esc(report.profile)} &middot;
<b>${ok}/${report.results.length}</b> scenarios as expected.</p>
<table><tr><th>scenario</th><th>seed</th><th>verdict</th><th>expected</th><th>as expected</th><th>checks</th><th>wall</th></tr>
${rows.join("\n")}
</table>
<div class="charts">${commitCostChart({ commitCost: allCommitCost }, "Commit cost against group size (all scenarios)")}${latencyHistogram({ deliveryLatencyMs: allLatency }, "Delivery latency (all scenarios)")}</div>
${report.results.map(scenarioSection).join("\n")}
</body></html>
`;
}
