/**
 * Renderers of a ComplianceReport: Markdown summary table, JSON, JUnit XML (one testcase per rule),
 * and the compact summary the scenario reports embed.
 */
import { escapeMarkdownCell, escapeXml } from "../../report/escape.ts";
import type { ComplianceSummary } from "../../report/types.ts";
import type { ComplianceReport } from "./judge.ts";
import { getRule } from "./rules.ts";

const MAX_IDS_SHOWN = 5;

function shortIds(ids: readonly string[]): string {
  const shown = ids.slice(0, MAX_IDS_SHOWN).map((i) => (i.length > 16 ? `${i.slice(0, 12)}…` : i));
  return shown.join(", ") + (ids.length > MAX_IDS_SHOWN ? ` (+${ids.length - MAX_IDS_SHOWN})` : "");
}

function profileLine(r: ComplianceReport): string {
  const det = r.detection.profile;
  return `Profile judged: **${r.profile}** (requested ${r.profileRequested}; detected ${det}${r.detection.reasons.length ? `: ${r.detection.reasons.join("; ")}` : ""})`;
}

export function renderComplianceMarkdown(r: ComplianceReport): string {
  const lines: string[] = [];
  lines.push("# Marmot compliance report", "");
  lines.push(profileLine(r), "");
  lines.push(`Events: ${r.eventCount} records, ${r.uniqueEvents} unique. Mode: ${r.whiteBox ? "white-box (keyring supplied)" : "black-box"}. Signature verifier: ${r.signatureVerifier === "none" ? "none (ids only)" : r.signatureVerifier}${r.verifyWorkers > 0 ? ` on ${r.verifyWorkers} worker threads` : ""}.`, "");
  const c = r.counts;
  lines.push(`Verdicts: ${c.pass} pass, ${c.fail} fail (${r.mandatoryFailures} MUST, ${r.advisoryFailures} SHOULD), ${c["not-applicable"]} not applicable, ${c["not-checkable-without-keys"]} need keys, ${c["not-implemented"]} not implemented.`, "");
  for (const n of r.notes) lines.push(`> ${n}`, "");
  lines.push("| Rule | Level | Verdict | Events | Message | Rule text (digest section) |", "|---|---|---|---|---|---|");
  const order: Record<string, number> = { fail: 0, "not-checkable-without-keys": 1, pass: 2, "not-applicable": 3, "not-implemented": 4 };
  const sorted = [...r.findings].sort((a, b) => (order[a.verdict] ?? 9) - (order[b.verdict] ?? 9) || a.ruleId.localeCompare(b.ruleId));
  for (const f of sorted) {
    const verdict = f.verdict === "fail" ? "**FAIL**" : f.verdict;
    const rule = getRule(f.ruleId);
    lines.push(`| ${f.ruleId} | ${f.level} | ${verdict} | ${escapeMarkdownCell(shortIds(f.eventIds))} | ${escapeMarkdownCell(f.message)} | ${escapeMarkdownCell(`${rule?.description ?? ""} (${rule?.section ?? ""})`)} |`);
  }
  if (r.malformed.length > 0) {
    lines.push("", `## Malformed input (${r.malformed.length})`, "");
    for (const m of r.malformed.slice(0, 50)) lines.push(`- ${m.eventId ? `\`${m.eventId.slice(0, 16)}…\` ` : m.line !== undefined ? `line ${m.line}: ` : ""}${m.reason}`);
    if (r.malformed.length > 50) lines.push(`- … ${r.malformed.length - 50} more`);
  }
  return lines.join("\n") + "\n";
}

export function renderComplianceJson(r: ComplianceReport): string {
  return JSON.stringify(
    {
      ...r,
      findings: r.findings.map((f) => ({ ...f, description: getRule(f.ruleId)?.description, section: getRule(f.ruleId)?.section })),
    },
    null,
    2,
  );
}

/** One testcase per rule: fail -> <failure>, not applicable / not implemented / needs keys -> <skipped>. */
export function renderComplianceJunit(r: ComplianceReport): string {
  const tests = r.findings.length;
  const failures = r.findings.filter((f) => f.verdict === "fail").length;
  const skipped = r.findings.filter((f) => f.verdict !== "pass" && f.verdict !== "fail").length;
  const out: string[] = ['<?xml version="1.0" encoding="UTF-8"?>'];
  out.push(`<testsuites name="marmot-compliance" tests="${tests}" failures="${failures}" skipped="${skipped}">`);
  out.push(`  <testsuite name="compliance-${escapeXml(r.profile)}" tests="${tests}" failures="${failures}" skipped="${skipped}">`);
  out.push(`    <properties><property name="profile" value="${escapeXml(r.profile)}"/><property name="detected" value="${escapeXml(r.detection.profile)}"/><property name="whiteBox" value="${r.whiteBox}"/></properties>`);
  for (const f of r.findings) {
    const rule = getRule(f.ruleId);
    const name = `${f.ruleId} ${rule?.level ?? ""}: ${rule?.description ?? ""}`;
    out.push(`    <testcase classname="marmot.compliance.${escapeXml(f.ruleId.split("-")[0] ?? "rule")}" name="${escapeXml(name)}">`);
    if (f.verdict === "fail") {
      const type = rule?.level === "SHOULD" ? "advisory" : "mandatory";
      out.push(`      <failure type="${type}" message="${escapeXml(f.message)}">${escapeXml(`events: ${f.eventIds.join(" ")}`)}</failure>`);
    } else if (f.verdict !== "pass") {
      out.push(`      <skipped message="${escapeXml(`${f.verdict}: ${f.message}`)}"/>`);
    }
    out.push("    </testcase>");
  }
  out.push("  </testsuite>", "</testsuites>");
  return out.join("\n") + "\n";
}

/** The compact form scenario reports carry (src/report/types.ts ComplianceSummary). */
export function toComplianceSummary(r: ComplianceReport): ComplianceSummary {
  const detected = r.detection.profile;
  const profile = r.profileRequested === "auto" && (detected === "mixed" || detected === "unknown") ? detected : r.profile;
  return {
    profile,
    counts: { ...r.counts },
    failures: r.findings
      .filter((f) => f.verdict === "fail")
      .map((f) => ({ ruleId: f.ruleId, level: f.level, eventIds: f.eventIds.slice(0, 50), message: f.message })),
    passed: r.findings.filter((f) => f.verdict === "pass").map((f) => f.ruleId),
  };
}
