/**
 * Failure capsules: everything needed to reproduce one failed scenario run, in one folder
 * `reports/<run>/capsules/<scenario>-<seed>/`:
 *
 *   scenario.json   the scenario as run (seed included)
 *   seed.txt        the seed, alone
 *   schedule.jsonl  the recorded history, one entry per line, in order (src/history.ts format)
 *   trace.jsonl     the Nostr traffic as capture records (src/capture.ts format)
 *   result.json     the ScenarioResult that failed (what a replay compares against)
 *   REPLAY.txt      the one-line command that replays it
 */
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { parseCapture, serializeCapture, type CaptureRecord } from "../capture.ts";
import { HarnessError } from "../errors.ts";
import { historyDigest, historyToCapture, parseHistory, serializeHistory, type HistoryEntry } from "../history.ts";
import type { Scenario } from "../scenarios/types.ts";
import type { ScenarioResult } from "./types.ts";
import { toJson } from "./write.ts";

export class CapsuleError extends HarnessError {}

export const CAPSULE_FILES = {
  scenario: "scenario.json",
  seed: "seed.txt",
  schedule: "schedule.jsonl",
  trace: "trace.jsonl",
  result: "result.json",
  replay: "REPLAY.txt",
} as const;

/** A file-system-safe folder name for a scenario and seed. */
export function capsuleName(scenario: string, seed: string): string {
  const clean = (s: string): string => s.replace(/[^A-Za-z0-9._-]+/g, "_").replace(/^[._]+/, "").slice(0, 80) || "x";
  return `${clean(scenario)}-${clean(seed)}`;
}

/** Quote one shell argument only when needed (POSIX single quotes). */
export function shellQuote(arg: string): string {
  return /^[A-Za-z0-9_./:=@%+,-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`;
}

export function replayCommandFor(capsuleDir: string): string {
  return `marmot-harness replay ${shellQuote(capsuleDir)}`;
}

export interface Capsule {
  dir: string;
  scenario: Scenario;
  seed: string;
  schedule: HistoryEntry[];
  trace: CaptureRecord[];
  result?: ScenarioResult;
  /** Structural SHA-256 of the schedule: a replay with the same digest repeated the run's structure. */
  digest: string;
}

export interface WriteCapsuleInput {
  /** The run's report folder; the capsule goes under `<reportDir>/capsules/`. */
  reportDir: string;
  scenario: Scenario;
  seed: string;
  history: readonly HistoryEntry[];
  result: ScenarioResult;
}

/** Write the capsule and return its folder and replay command (also written into the result). */
export async function writeCapsule(input: WriteCapsuleInput): Promise<{ dir: string; replayCommand: string }> {
  const dir = join(input.reportDir, "capsules", capsuleName(input.scenario.name, input.seed));
  const replayCommand = replayCommandFor(dir);
  const scenario: Scenario = { ...input.scenario, seed: input.seed };
  const result: ScenarioResult = { ...input.result, capsuleDir: dir };
  try {
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, CAPSULE_FILES.scenario), toJson(scenario) + "\n");
    await writeFile(join(dir, CAPSULE_FILES.seed), input.seed + "\n");
    await writeFile(join(dir, CAPSULE_FILES.schedule), serializeHistory(input.history));
    await writeFile(join(dir, CAPSULE_FILES.trace), serializeCapture(historyToCapture(input.history)));
    await writeFile(join(dir, CAPSULE_FILES.result), toJson(result) + "\n");
    await writeFile(join(dir, CAPSULE_FILES.replay), replayCommand + "\n");
  } catch (e) {
    throw new CapsuleError("CAPSULE_WRITE", `cannot write capsule ${dir}: ${(e as Error).message}`, { dir }, { cause: e });
  }
  return { dir, replayCommand };
}

async function readText(dir: string, file: string, required: boolean): Promise<string | undefined> {
  try {
    return await readFile(join(dir, file), "utf8");
  } catch (e) {
    if (!required && (e as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw new CapsuleError("CAPSULE_READ", `capsule ${dir}: cannot read ${file}: ${(e as Error).message}`, { dir, file });
  }
}

function parseJsonFile<T>(dir: string, file: string, text: string): T {
  try {
    return JSON.parse(text) as T;
  } catch (e) {
    throw new CapsuleError("CAPSULE_FORMAT", `capsule ${dir}: ${file} is not JSON (${(e as Error).message})`, { dir, file });
  }
}

/** Read a capsule back. A missing scenario or seed is an error; schedule and trace may be absent. */
export async function readCapsule(dir: string): Promise<Capsule> {
  const scenario = parseJsonFile<Scenario>(dir, CAPSULE_FILES.scenario, (await readText(dir, CAPSULE_FILES.scenario, true)) as string);
  if (typeof scenario !== "object" || scenario === null || typeof scenario.name !== "string" || !Array.isArray(scenario.steps)) {
    throw new CapsuleError("CAPSULE_FORMAT", `capsule ${dir}: ${CAPSULE_FILES.scenario} is not a scenario (needs name and steps)`, { dir });
  }
  const seedText = (await readText(dir, CAPSULE_FILES.seed, false))?.trim();
  const seed = seedText || scenario.seed;
  if (!seed) throw new CapsuleError("CAPSULE_FORMAT", `capsule ${dir}: no seed (${CAPSULE_FILES.seed} missing and scenario has none)`, { dir });
  let schedule: HistoryEntry[] = [];
  const scheduleText = await readText(dir, CAPSULE_FILES.schedule, false);
  if (scheduleText !== undefined) {
    try {
      schedule = parseHistory(scheduleText);
    } catch (e) {
      throw new CapsuleError("CAPSULE_FORMAT", `capsule ${dir}: ${CAPSULE_FILES.schedule}: ${(e as Error).message}`, { dir });
    }
  }
  const traceText = await readText(dir, CAPSULE_FILES.trace, false);
  const trace = traceText !== undefined ? parseCapture(traceText).records : [];
  const resultText = await readText(dir, CAPSULE_FILES.result, false);
  const result = resultText !== undefined ? parseJsonFile<ScenarioResult>(dir, CAPSULE_FILES.result, resultText) : undefined;
  return { dir, scenario: { ...scenario, seed }, seed, schedule, trace, result, digest: historyDigest(schedule) };
}
