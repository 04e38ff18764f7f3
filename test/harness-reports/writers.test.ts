import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { epochsChart, latencyHistogram, niceTicks } from "../../src/report/charts.ts";
import { escapeMarkdownCell, escapeXml } from "../../src/report/escape.ts";
import { renderHtml } from "../../src/report/html.ts";
import { renderJunitXml } from "../../src/report/junit.ts";
import { renderSummaryMarkdown } from "../../src/report/markdown.ts";
import { percentile } from "../../src/report/stats.ts";
import { writeRunReport } from "../../src/report/write.ts";
import { HOSTILE, parseXml, sampleReport } from "./report-fixtures.ts";

const HOSTILE_AFTER_XML = HOSTILE.replace("\u0001", "\uFFFD");

describe("escaping", () => {
  it("escapes XML metacharacters and replaces characters XML cannot carry", () => {
    expect(escapeXml(`<a href="x">&'`)).toBe("&lt;a href=&quot;x&quot;&gt;&amp;&#39;");
    expect(escapeXml("a\u0000b")).toBe("a\uFFFDb");
    expect(escapeXml("tab\tnl\n")).toBe("tab\tnl\n");
  });
  it("keeps a Markdown table cell on one line with pipes escaped", () => {
    const cell = escapeMarkdownCell("a|b\nc");
    expect(cell).toBe("a\\|b c");
  });
});

describe("junit.xml", () => {
  const report = sampleReport();
  const xml = renderJunitXml(report);
  const els = parseXml(xml);

  it("is well-formed with one testsuite per scenario", () => {
    expect(els[0]?.name).toBe("testsuites");
    const suites = els.filter((e) => e.name === "testsuite");
    expect(suites.map((s) => s.attrs.name)).toEqual(report.results.map((r) => r.scenario.replace("\u0001", "\uFFFD")));
  });

  it("has one testcase per step and per check plus the expected-outcome case, with consistent counts", () => {
    const suites = els.filter((e) => e.name === "testsuite");
    suites.forEach((s, i) => {
      const r = report.results[i]!;
      const cases = s.children.filter((c) => c.name === "testcase");
      expect(cases.length).toBe(r.steps.length + r.checks.length + 1);
      expect(Number(s.attrs.tests)).toBe(cases.length);
      const failures = cases.filter((c) => c.children.some((x) => x.name === "failure")).length;
      const errors = cases.filter((c) => c.children.some((x) => x.name === "error")).length;
      const skipped = cases.filter((c) => c.children.some((x) => x.name === "skipped")).length;
      expect(Number(s.attrs.failures)).toBe(failures);
      expect(Number(s.attrs.errors)).toBe(errors);
      expect(Number(s.attrs.skipped)).toBe(skipped);
    });
    const root = els[0]!;
    const sum = (k: string): number => els.filter((e) => e.name === "testsuite").reduce((a, s) => a + Number(s.attrs[k]), 0);
    expect(Number(root.attrs.tests)).toBe(sum("tests"));
    expect(Number(root.attrs.failures)).toBe(sum("failures"));
  });

  it("fails the failing scenario, reports n/a as skipped, and does not fail a quirk run that failed as expected", () => {
    const suites = els.filter((e) => e.name === "testsuite");
    const bad = suites[1]!;
    expect(Number(bad.attrs.failures)).toBe(3); // failed step, failed check, expected outcome
    const failure = bad.children.flatMap((c) => c.children).find((x) => x.name === "failure");
    expect(failure?.attrs.message).toBe(HOSTILE_AFTER_XML);
    const skipped = bad.children.flatMap((c) => c.children).find((x) => x.name === "skipped");
    expect(skipped?.attrs.message).toMatch(/^not applicable: MDK-internal/);
    const quirk = suites[2]!;
    expect(Number(quirk.attrs.failures)).toBe(0);
    expect(quirk.children.flatMap((c) => c.children).some((x) => x.name === "system-out" && x.text.startsWith("expected failure (fail)"))).toBe(true);
  });

  it("carries seed and replay command as properties", () => {
    const props = els.filter((e) => e.name === "property" && e.parent?.parent?.attrs.name === "invite-basic");
    const byName = Object.fromEntries(props.map((p) => [p.attrs.name, p.attrs.value]));
    expect(byName.seed).toBe("s1");
    expect(byName.replay).toBe("marmot-harness run invite-basic --seed s1");
  });

  it("stays well-formed for an empty run", () => {
    const empty = parseXml(renderJunitXml({ ...report, results: [] }));
    expect(empty.map((e) => e.name)).toEqual(["testsuites"]);
  });
});

describe("summary.md", () => {
  const report = sampleReport();
  const md = renderSummaryMarkdown(report);
  it("has a table row per scenario with the right number of columns despite pipes in data", () => {
    const rows = md.split("\n").filter((l) => l.startsWith("| ") && !l.startsWith("| Scenario"));
    expect(rows.length).toBe(3);
    for (const row of rows) {
      const cells = row.replace(/\\\|/g, "").split("|").length - 2;
      expect(cells).toBe(8);
    }
    expect(rows[1]).toContain("**NO**");
    expect(rows[1]).toContain("1 fail, 1 n/a; 1 step failed");
    expect(rows[2]).toMatch(/\| fail \| fail \| yes \|/);
  });
  it("lists failures with their replay command and the n/a checks apart", () => {
    expect(md).toContain("## Failures");
    expect(md).toContain("marmot-harness replay reports/x/capsules/bad-s_2");
    expect(md).toMatch(/## Not applicable[\s\S]*mdk:no\\_pending\\_work/);
    expect(md).not.toContain("<script>");
  });
});

describe("index.html", () => {
  const report = sampleReport();
  const html = renderHtml(report);
  it("is self-contained: no script, no external reference", () => {
    expect(html).not.toMatch(/<script/i);
    expect(html).not.toMatch(/\b(src|href)\s*=\s*"(https?:)?\/\//i);
    expect(html).not.toMatch(/<link\b/i);
    expect(html).toContain("Content-Security-Policy");
  });
  it("draws the three charts for every scenario plus the two overview charts", () => {
    const charts = [...html.matchAll(/<svg [^>]*data-chart="([^"]+)"/g)].map((m) => m[1]);
    expect(charts.filter((c) => c === "epochs").length).toBe(3);
    expect(charts.filter((c) => c === "latency").length).toBe(4);
    expect(charts.filter((c) => c === "commit-cost").length).toBe(4);
    expect(html).toMatch(/<path d="M[^"]+H[^"]+V/); // step line of the epochs chart
    expect(html).toMatch(/<rect x="[\d.]+" y="[\d.]+" width="[\d.]+" height="[\d.]+" fill=/); // histogram bars
    expect(html).toMatch(/<circle cx=/); // commit cost points
  });
  it("escapes untrusted strings everywhere", () => {
    expect(html).not.toContain(`<script>alert`);
    expect(html).toContain("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;");
    expect(html).not.toContain("\u0001");
  });
});

describe("charts", () => {
  it("draw a 'no data' chart for empty metrics", () => {
    expect(epochsChart({ epochsOverTime: [] })).toContain("no data in this run");
    expect(latencyHistogram({ deliveryLatencyMs: [] })).toContain("no data in this run");
  });
  it("histogram bars count every value", () => {
    const values = [1, 2, 2, 3, 10, 10, 10, 50];
    const svg = latencyHistogram({ deliveryLatencyMs: values }, "t", 5);
    const counts = [...svg.matchAll(/ ms: (\d+)<\/title>/g)].map((m) => Number(m[1]));
    expect(counts.length).toBe(5);
    expect(counts.reduce((a, b) => a + b, 0)).toBe(values.length);
  });
  it("picks nice ticks that cover the range", () => {
    expect(niceTicks(0, 100, 5)).toEqual([0, 20, 40, 60, 80, 100]);
    expect(niceTicks(3, 147, 5)).toEqual([0, 50, 100, 150]);
    expect(niceTicks(0, 262, 5)).toEqual([0, 100, 200, 300]);
    expect(niceTicks(20.5, 75, 5)).toEqual([20, 40, 60, 80]);
  });
  it("percentile is nearest-rank", () => {
    expect(percentile([5, 1, 3, 2, 4], 50)).toBe(3);
    expect(percentile([5, 1, 3, 2, 4], 100)).toBe(5);
    expect(percentile([], 50)).toBeUndefined();
  });
});

describe("writeRunReport", () => {
  it("writes the four files and report.json round-trips", async () => {
    const dir = await mkdtemp(join(tmpdir(), "mh-report-"));
    try {
      const report = sampleReport();
      const out = await writeRunReport(join(dir, "run"), report);
      expect(JSON.parse(await readFile(out.json, "utf8"))).toEqual(report);
      expect(await readFile(out.markdown, "utf8")).toBe(renderSummaryMarkdown(report));
      parseXml(await readFile(out.junit, "utf8"));
      expect(await readFile(out.html, "utf8")).toContain("<svg");
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
