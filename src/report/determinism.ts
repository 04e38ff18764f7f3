/**
 * `run --check-determinism`: every scenario runs twice with the same seed, and a "determinism" check
 * says whether the second history repeats the first: byte for byte (seeded engines, simulated
 * relays), in structure only (bytes differ: a loopback server's port inside the traffic, a foreign
 * peer's own randomness), or not at all (a fail naming the first entry where they part).
 *
 * On the wall clock (real or WebSocket relays, out-of-process peers) timings differ from run to run
 * by nature, so the check is not applicable there and says so.
 */
import { compareHistories, describeEntry, type HistoryEntry } from "../history.ts";
import type { RunOutcome } from "../scenarios/runner.ts";
import { addChecks, type RunFn } from "./run-set.ts";
import type { CheckResult, ScenarioResult } from "./types.ts";

export const DETERMINISM_CHECK = "determinism";

/** The "determinism" check over two histories of the same scenario and seed. */
export function determinismCheck(first: readonly HistoryEntry[], second: readonly HistoryEntry[]): CheckResult {
  const { sameStructure, divergence: d } = compareHistories(first, second);
  if (!sameStructure && d) {
    return {
      name: DETERMINISM_CHECK,
      verdict: "fail",
      message: `the same seed gave another history: the second run departs from entry ${d.index} (first run ${describeEntry(d.recorded)}, second run ${describeEntry(d.replayed)})`,
    };
  }
  if (d) {
    return {
      name: DETERMINISM_CHECK,
      verdict: "pass",
      message: `the same seed gave the same history in structure (${first.length} entries); the bytes differ from entry ${d.index} (${describeEntry(d.recorded)}): a loopback port or a foreign peer's own randomness in the traffic`,
    };
  }
  return { name: DETERMINISM_CHECK, verdict: "pass", message: `the same seed gave the same history, byte for byte (${first.length} entries)` };
}

/** Adds the check to the first run's result; a failed check makes the result not ok even for a scenario expected to fail. */
export function withDeterminism(result: ScenarioResult, check: CheckResult): ScenarioResult {
  const out = addChecks(result, [check]);
  if (check.verdict === "fail" && out.ok) return { ...out, ok: false };
  return out;
}

/** A run function that runs each scenario twice and judges whether the runs agree. */
export function withDeterminismCheck(run: RunFn): RunFn {
  return async (scenario, opts): Promise<RunOutcome> => {
    const first = await run(scenario, opts);
    if (first.result.verdict === "refused") return first;
    if (first.result.relayBackend !== "sim") {
      const na: CheckResult = { name: DETERMINISM_CHECK, verdict: "not-applicable", message: `relays ${first.result.relayBackend} run on the wall clock: timings differ from run to run` };
      return { ...first, result: addChecks(first.result, [na]) };
    }
    const second = await run(scenario, opts);
    return { ...first, result: withDeterminism(first.result, determinismCheck(first.history.entries, second.history.entries)) };
  };
}
