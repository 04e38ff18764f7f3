/**
 * `junit.xml` for CI: one <testsuite> per scenario, one <testcase> per step and per check, and one
 * "expected outcome" testcase that fails exactly when the scenario did not end as the catalogue
 * expects. In a scenario expected to fail (a quirk run), failing steps and checks are the point of the
 * run: they are written as passing testcases whose <system-out> says "expected failure", so the XML's
 * failure count agrees with the CLI's exit code. A suite's `time` is the run's real wall time; a
 * step's `time` is the virtual time the step took (the runner records no real time per step).
 */
import { escapeXml } from "./escape.ts";
import type { RunReport, ScenarioResult, Verdict } from "./types.ts";

interface Case {
  classname: string;
  name: string;
  timeSec: number;
  verdict: Verdict;
  message: string;
  expectedFailure: boolean;
}

function attr(name: string, value: unknown): string {
  return ` ${name}="${escapeXml(value)}"`;
}

function caseXml(c: Case): string {
  const head = `    <testcase${attr("classname", c.classname)}${attr("name", c.name)}${attr("time", c.timeSec.toFixed(3))}`;
  const bad = c.verdict === "fail" || c.verdict === "error" || c.verdict === "refused";
  if (c.verdict === "pass") return `${head}/>`;
  if (c.verdict === "not-applicable") return `${head}>\n      <skipped${attr("message", `not applicable: ${c.message}`)}/>\n    </testcase>`;
  if (bad && c.expectedFailure) {
    return `${head}>\n      <system-out>${escapeXml(`expected failure (${c.verdict}): ${c.message}`)}</system-out>\n    </testcase>`;
  }
  const tag = c.verdict === "fail" ? "failure" : "error";
  return `${head}>\n      <${tag}${attr("message", c.message)}${attr("type", c.verdict)}>${escapeXml(c.message)}</${tag}>\n    </testcase>`;
}

function scenarioCases(r: ScenarioResult): Case[] {
  const expectedFailure = r.expected === "fail";
  const cases: Case[] = [];
  for (const s of r.steps) {
    cases.push({
      classname: `${r.scenario}.steps`,
      name: `step ${s.index} ${s.type}: ${s.description}`,
      timeSec: Math.max(0, s.endedAt - s.startedAt) / 1000,
      verdict: s.verdict,
      message: s.message ?? s.description,
      expectedFailure,
    });
  }
  for (const c of r.checks) {
    cases.push({ classname: `${r.scenario}.checks`, name: c.name, timeSec: 0, verdict: c.verdict, message: c.message, expectedFailure });
  }
  cases.push({
    classname: `${r.scenario}.outcome`,
    name: "expected outcome",
    timeSec: 0,
    // a story that does not apply (e.g. R1-only under R0) is skipped, with the reason
    verdict: r.verdict === "not-applicable" ? "not-applicable" : r.ok ? "pass" : "fail",
    message:
      r.verdict === "not-applicable"
        ? r.notes.join("; ") || "the scenario does not apply"
        : `verdict ${r.verdict}, expected ${r.expected}${r.failures.length ? `: ${r.failures.join("; ")}` : ""}. Replay: ${r.replayCommand}`,
    expectedFailure: false,
  });
  return cases;
}

function tally(cases: Case[]): { tests: number; failures: number; errors: number; skipped: number } {
  let failures = 0, errors = 0, skipped = 0;
  for (const c of cases) {
    if (c.verdict === "not-applicable") skipped++;
    else if (c.expectedFailure || c.verdict === "pass") continue;
    else if (c.verdict === "fail") failures++;
    else errors++;
  }
  return { tests: cases.length, failures, errors, skipped };
}

export function renderJunitXml(report: RunReport): string {
  const suites: string[] = [];
  const totals = { tests: 0, failures: 0, errors: 0, skipped: 0, time: 0 };
  for (const r of report.results) {
    const cases = scenarioCases(r);
    const t = tally(cases);
    const time = r.metrics.wallMs / 1000;
    totals.tests += t.tests; totals.failures += t.failures; totals.errors += t.errors; totals.skipped += t.skipped; totals.time += time;
    const props = [
      ["seed", r.seed], ["profile", r.profile], ["relayBackend", r.relayBackend], ["verdict", r.verdict],
      ["expected", r.expected], ["replay", r.replayCommand], ...(r.capsuleDir ? [["capsule", r.capsuleDir]] : []),
    ].map(([k, v]) => `      <property${attr("name", k)}${attr("value", v)}/>`);
    suites.push(
      `  <testsuite${attr("name", r.scenario)}${attr("tests", t.tests)}${attr("failures", t.failures)}${attr("errors", t.errors)}${attr("skipped", t.skipped)}${attr("time", time.toFixed(3))}${attr("timestamp", report.startedAt)}>\n` +
        `    <properties>\n${props.join("\n")}\n    </properties>\n` +
        cases.map(caseXml).join("\n") +
        (r.notes.length ? `\n    <system-out>${escapeXml(r.notes.join("\n"))}</system-out>` : "") +
        `\n  </testsuite>`,
    );
  }
  return (
    `<?xml version="1.0" encoding="UTF-8"?>\n` +
    `<testsuites${attr("name", "marmot-harness")}${attr("tests", totals.tests)}${attr("failures", totals.failures)}${attr("errors", totals.errors)}${attr("skipped", totals.skipped)}${attr("time", totals.time.toFixed(3))}>\n` +
    suites.join("\n") +
    (suites.length ? "\n" : "") +
    `</testsuites>\n`
  );
}
