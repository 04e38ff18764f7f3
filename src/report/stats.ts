/** Small numeric and counting helpers shared by the report writers. */
import type { CheckResult, ScenarioResult, Verdict } from "./types.ts";

export const VERDICTS: readonly Verdict[] = ["pass", "fail", "error", "refused", "not-applicable"];

/** Nearest-rank percentile of `values` (p in [0, 100]); undefined for an empty list. */
export function percentile(values: readonly number[], p: number): number | undefined {
  if (values.length === 0) return undefined;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil((p / 100) * sorted.length)));
  return sorted[rank - 1];
}

export function countVerdicts(items: readonly { verdict: Verdict }[]): Record<Verdict, number> {
  const out: Record<Verdict, number> = { pass: 0, fail: 0, error: 0, refused: 0, "not-applicable": 0 };
  for (const i of items) out[i.verdict]++;
  return out;
}

/** "3 pass, 1 fail, 2 n/a" with zero counts left out; "none" for an empty list. */
export function verdictCountsText(checks: readonly CheckResult[]): string {
  const c = countVerdicts(checks);
  const parts: string[] = [];
  for (const v of VERDICTS) if (c[v] > 0) parts.push(`${c[v]} ${v === "not-applicable" ? "n/a" : v}`);
  return parts.length ? parts.join(", ") : "none";
}

/** Check counts, plus the steps that did not pass (a failed step fails a run even when every check passes). */
export function checksAndStepsText(r: ScenarioResult): string {
  const badSteps = r.steps.filter((s) => s.verdict !== "pass" && s.verdict !== "not-applicable").length;
  return `${verdictCountsText(r.checks)}${badSteps ? `; ${badSteps} step${badSteps === 1 ? "" : "s"} failed` : ""}`;
}

export function complianceText(r: ScenarioResult): string {
  if (!r.compliance) return "not run";
  const entries = Object.entries(r.compliance.counts).filter(([, n]) => n > 0);
  const counts = entries.length ? entries.map(([k, n]) => `${n} ${k}`).join(", ") : "no rules evaluated";
  return `${r.compliance.profile}: ${counts}`;
}

/** Highest epoch reached by any group in the run, or undefined. */
export function finalEpoch(r: ScenarioResult): number | undefined {
  const e = r.metrics.epochsOverTime;
  return e.length ? extent(e.map((x) => x.epoch))[1] : undefined;
}

export function formatMs(ms: number | undefined): string {
  if (ms === undefined || !Number.isFinite(ms)) return "–";
  if (ms >= 10_000) return `${(ms / 1000).toFixed(1)} s`;
  if (ms >= 100) return `${Math.round(ms)} ms`;
  return `${Number(ms.toFixed(1))} ms`;
}

export function formatBytes(n: number | undefined): string {
  if (n === undefined || !Number.isFinite(n)) return "–";
  if (n >= 1024 * 1024) return `${(n / (1024 * 1024)).toFixed(1)} MiB`;
  if (n >= 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${n} B`;
}

/** Minimum and maximum without spreading (safe for very long arrays); [Infinity, -Infinity] when empty. */
export function extent(values: Iterable<number>): [number, number] {
  let lo = Infinity, hi = -Infinity;
  for (const v of values) {
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  return [lo, hi];
}
