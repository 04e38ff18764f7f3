/**
 * Replaying a capsule: run its scenario again with its seed and say whether the failure came back.
 * "Reproduced" means the same verdict with the same failing checks and steps; "identical" means
 * the new history has the same structural digest as the recorded schedule (the same steps, outcomes
 * and sizes in the same order); "byteIdentical" that it is the same byte for byte (every event,
 * id and signature: what seeded engines give unless a loopback port or a foreign peer enters).
 */
import { compareHistories, describeEntry, type HistoryDivergence } from "../history.ts";
import type { RunOutcome } from "../scenarios/runner.ts";
import { readCapsule, type Capsule } from "./capsule.ts";
import { addChecks, type RunFn } from "./run-set.ts";
import type { CheckResult, ScenarioResult } from "./types.ts";

export interface ReplayOutcome {
  capsule: Capsule;
  result: ScenarioResult;
  reproduced: boolean;
  identical: boolean;
  byteIdentical: boolean;
  /** Where the new history first departs from the capsule's schedule: in structure if it does, else byte for byte. */
  divergence?: HistoryDivergence;
  /** One line for people. */
  explanation: string;
}

function failingNames(r: ScenarioResult): string[] {
  return [
    ...r.checks.filter((c) => c.verdict === "fail" || c.verdict === "error").map((c) => `check ${c.name}`),
    ...r.steps.filter((s) => s.verdict === "fail" || s.verdict === "error").map((s) => `step ${s.index} ${s.type}`),
  ];
}

/** Compare a new result with the recorded one. */
export function compareRuns(recorded: ScenarioResult | undefined, now: ScenarioResult): { reproduced: boolean; why: string } {
  if (!recorded) {
    const reproduced = now.verdict !== "pass";
    return { reproduced, why: reproduced ? `the run fails again (${now.verdict}); no recorded result to compare with` : "the run passes now" };
  }
  if (now.verdict !== recorded.verdict) return { reproduced: false, why: `verdict ${now.verdict}, recorded ${recorded.verdict}` };
  const before = failingNames(recorded);
  const after = new Set(failingNames(now));
  const gone = before.filter((n) => !after.has(n));
  if (gone.length) return { reproduced: false, why: `no longer failing: ${gone.join(", ")}` };
  const extra = [...after].filter((n) => !before.includes(n));
  return { reproduced: true, why: `same verdict (${now.verdict}) and failures${extra.length ? `, plus new: ${extra.join(", ")}` : ""}` };
}

export async function replayCapsule(
  dir: string,
  opts: { run: RunFn; judge?: (capsule: Capsule, outcome: RunOutcome) => CheckResult[] | Promise<CheckResult[]>; onStep?: (i: number, n: number, d: string) => void },
): Promise<ReplayOutcome> {
  const capsule = await readCapsule(dir);
  const outcome = await opts.run(capsule.scenario, {
    seed: capsule.seed,
    ...(capsule.result?.scenario ? { catalogueName: capsule.result.scenario } : {}),
    ...(opts.onStep ? { onStep: opts.onStep } : {}),
  });
  let result = outcome.result;
  if (opts.judge) result = addChecks(result, await opts.judge(capsule, outcome));
  // Entries compare as canonical JSON (keys sorted), so the in-memory history compares as its JSONL trace did.
  const cmp = capsule.schedule.length > 0 ? compareHistories(capsule.schedule, outcome.history.entries) : undefined;
  const identical = cmp?.sameStructure ?? false;
  const byteIdentical = cmp?.sameBytes ?? false;
  const divergence = cmp?.divergence;
  const { reproduced, why } = compareRuns(capsule.result, result);
  const at = divergence ? ` from entry ${divergence.index} (recorded ${describeEntry(divergence.recorded)}, replayed ${describeEntry(divergence.replayed)})` : "";
  const sameness = byteIdentical
    ? "; history identical to the capsule's schedule, byte for byte"
    : identical
      ? `; history identical to the capsule's schedule in structure, its bytes differ${at}`
      : `; history differs from the capsule's schedule${at}`;
  const explanation = reproduced ? `reproduced: ${why}${sameness}` : `did not reproduce: ${why}${capsule.schedule.length > 0 && !identical ? `; history departs${at}` : ""}`;
  const out: ReplayOutcome = { capsule, result, reproduced, identical, byteIdentical, explanation };
  if (divergence) out.divergence = divergence;
  return out;
}
