/**
 * Runs a set of scenarios one after the other and turns them into a report folder: each run's
 * ScenarioResult goes into the RunReport; every run that did not pass leaves a capsule; the
 * folder gets report.json, summary.md, junit.xml and index.html. Used by `marmot-harness run`.
 */
import { describeError } from "../errors.ts";
import { DEFAULT_PROFILE, type ProtocolProfile } from "../profile.ts";
import type { RunOptions, RunOutcome } from "../scenarios/runner.ts";
import type { Scenario } from "../scenarios/types.ts";
import { writeCapsule } from "./capsule.ts";
import type { CheckResult, RunMetrics, RunReport, ScenarioResult } from "./types.ts";
import { writeRunReport, type WrittenReport } from "./write.ts";

export const TOOL_VERSION = "0.1.0";

export type RunFn = (scenario: Scenario, opts: RunOptions) => Promise<RunOutcome>;

export interface RunItem {
  /** Name shown in progress and used in reports. */
  name: string;
  description: string;
  /** The scenario to run (absent when the item is refused before running). */
  scenario?: Scenario;
  /** Why this item cannot run at all (e.g. a vector with steps we cannot act out). */
  refused?: string;
  /** Extra runner options for this item (catalogue name, replay flags). */
  runOptions?: Partial<RunOptions>;
  /** Notes added to the result (e.g. how an imported vector was mapped). */
  notes?: string[];
  /** The one-line command that reruns this item with a seed, when the runner's default does not fit. */
  replayCommand?: (seed: string) => string;
  /** Extra checks judged from the finished run (e.g. an MDK vector's expectations). */
  judge?: (outcome: RunOutcome) => CheckResult[] | Promise<CheckResult[]>;
}

export interface RunSetProgress {
  /** A scenario starts (index among `total`). */
  scenarioStart?(index: number, total: number, name: string): void;
  step?(index: number, total: number, name: string, step: number, steps: number, description: string): void;
  scenarioEnd?(index: number, total: number, result: ScenarioResult): void;
}

export interface RunSetOptions {
  reportDir: string;
  run: RunFn;
  seed?: string;
  profile?: ProtocolProfile;
  relayUrls?: string[];
  /** Engine worker threads for every run (RunOptions.workers). */
  workers?: number | "auto";
  /** With workers: the hang watchdog (RunOptions.workerHangMs). */
  workerHangMs?: number;
  /** An external Blossom server for media scenarios (RunOptions.blossomUrl). */
  blossomUrl?: string;
  progress?: RunSetProgress;
  /** Write capsules for failing runs (default true). */
  capsules?: boolean;
}

export interface RunSetOutcome {
  report: RunReport;
  written: WrittenReport;
  capsules: { scenario: string; dir: string; replayCommand: string }[];
}

export function emptyMetrics(): RunMetrics {
  return { epochsOverTime: [], deliveryLatencyMs: [], commitCost: [], wallMs: 0, cpuMs: 0, peakRssBytes: 0 };
}

/** The result of an item that never ran to the end: refused before running, or an error of the run. */
function resultWithoutRun(item: RunItem, seed: string, profile: ProtocolProfile, verdict: "refused" | "error", message: string): ScenarioResult {
  return {
    scenario: item.name,
    description: item.description,
    seed,
    profile,
    relayBackend: "none",
    verdict,
    expected: item.scenario?.expect ?? "pass",
    ok: false,
    steps: [],
    checks: [],
    metrics: emptyMetrics(),
    failures: [message],
    replayCommand: "",
    notes: [],
  };
}

/** Fold extra checks into a result: a failing or erroring check fails a passing run. */
export function addChecks(result: ScenarioResult, extra: CheckResult[]): ScenarioResult {
  if (extra.length === 0) return result;
  const out: ScenarioResult = { ...result, checks: [...result.checks, ...extra], failures: [...result.failures] };
  for (const c of extra) {
    if (c.verdict === "fail" || c.verdict === "error") {
      out.failures.push(`${c.name}: ${c.message}`);
      if (out.verdict === "pass") out.verdict = "fail";
    }
  }
  // The runner's own `ok` may rest on finer expectations (expectFailureOf); recompute only on a change.
  if (out.verdict !== result.verdict) out.ok = out.verdict === out.expected;
  return out;
}

/** Exit code for CI: 2 when anything was refused, 1 when some scenario was not as expected, else 0. */
export function exitCodeFor(report: RunReport): 0 | 1 | 2 {
  if (report.results.some((r) => r.verdict === "refused")) return 2;
  if (report.results.some((r) => !r.ok)) return 1;
  return 0;
}

export async function runScenarioSet(items: RunItem[], opts: RunSetOptions): Promise<RunSetOutcome> {
  const startedAt = new Date().toISOString();
  const profile = opts.profile ?? DEFAULT_PROFILE;
  const results: ScenarioResult[] = [];
  const capsules: RunSetOutcome["capsules"] = [];
  for (const [i, item] of items.entries()) {
    opts.progress?.scenarioStart?.(i, items.length, item.name);
    const seed = opts.seed ?? item.scenario?.seed ?? "0";
    let result: ScenarioResult;
    let outcome: RunOutcome | undefined;
    if (item.refused || !item.scenario) {
      result = resultWithoutRun(item, seed, profile, "refused", item.refused ?? "no scenario to run");
    } else {
      const scenario: Scenario = opts.profile ? { ...item.scenario, profile: opts.profile } : item.scenario;
      try {
        outcome = await opts.run(scenario, {
          ...(opts.seed ? { seed: opts.seed } : {}),
          ...(opts.relayUrls?.length ? { relayUrls: opts.relayUrls } : {}),
          ...(opts.workers !== undefined ? { workers: opts.workers } : {}),
          ...(opts.workerHangMs !== undefined ? { workerHangMs: opts.workerHangMs } : {}),
          ...(opts.blossomUrl ? { blossomUrl: opts.blossomUrl } : {}),
          ...item.runOptions,
          onStep: (step, steps, description) => opts.progress?.step?.(i, items.length, item.name, step, steps, description),
        });
        result = outcome.result;
        if (item.replayCommand) result = { ...result, replayCommand: item.replayCommand(result.seed) };
        if (item.notes?.length) result = { ...result, notes: [...result.notes, ...item.notes] };
        if (item.judge) {
          try {
            result = addChecks(result, await item.judge(outcome));
          } catch (e) {
            result = addChecks(result, [{ name: "judge", verdict: "error", message: `judging failed: ${describeError(e)}` }]);
          }
        }
      } catch (e) {
        // The runner throws only for an invalid scenario (refused); anything else is an error of the run.
        const verdict = (e as { code?: unknown }).code === "SCENARIO_INVALID" ? "refused" : "error";
        result = resultWithoutRun(item, seed, scenario.profile ?? profile, verdict, describeError(e));
      }
    }
    if (outcome && (opts.capsules ?? true) && result.verdict !== "pass" && result.verdict !== "not-applicable") {
      try {
        const cap = await writeCapsule({ reportDir: opts.reportDir, scenario: outcome.scenario, seed: result.seed, history: outcome.history.entries, result });
        result = { ...result, capsuleDir: cap.dir, replayCommand: cap.replayCommand };
        capsules.push({ scenario: result.scenario, dir: cap.dir, replayCommand: cap.replayCommand });
      } catch (e) {
        // Keep the result (and the rest of the run) even when the capsule cannot be written.
        result = { ...result, notes: [...result.notes, `no capsule: ${describeError(e)}`] };
      }
    }
    results.push(result);
    opts.progress?.scenarioEnd?.(i, items.length, result);
  }
  const report: RunReport = { tool: "marmot-harness", version: TOOL_VERSION, startedAt, finishedAt: new Date().toISOString(), profile, results };
  const written = await writeRunReport(opts.reportDir, report);
  return { report, written, capsules };
}
