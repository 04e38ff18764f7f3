/**
 * Verbs `run`, `list` and `replay`.
 *
 *   marmot-harness list [--json]
 *   marmot-harness run <name...> | --all | --file scenario.yaml... | --mdk-vectors [DIR] | --random N
 *                      [--seed S] [--profile R1] [--relay URL...] [--report DIR] [--members N] [--json]
 *   marmot-harness replay <capsule-dir> [--json]
 *
 * Exit codes: 0 every scenario ended as expected (replay: the failure reproduced); 1 some scenario
 * did not (replay: it did not reproduce); 2 bad input or a scenario refused to run.
 */
import { join } from "node:path";
import type { Command } from "commander";
import { describeError, HarnessError } from "../errors.ts";
import { DEFAULT_PROFILE, parseProfile, type ProtocolProfile } from "../profile.ts";
import { shellQuote } from "../report/capsule.ts";
import { createProgress } from "../report/progress.ts";
import { replayCapsule } from "../report/replay.ts";
import { parseWorkerCount } from "../agents/worker-engine.ts";
import { exitCodeFor, runScenarioSet, TOOL_VERSION, type RunFn, type RunItem } from "../report/run-set.ts";
import type { RunReport, ScenarioResult } from "../report/types.ts";
import { toJson, writeRunReport } from "../report/write.ts";
import { describeImport, judgeMdkVector, listMdkVectorFiles, loadMdkVector, resolveMdkVectorDir } from "../scenarios/import-mdk.ts";
import { loadScenarioFile } from "../scenarios/loader.ts";
import { intOption } from "./options.ts";
import { withDeterminismCheck } from "../report/determinism.ts";
import type { CatalogueEntry, CatalogueParams } from "../scenarios/catalogue/index.ts";
import type { Scenario } from "../scenarios/types.ts";

export class CliInputError extends HarnessError {}

/** The catalogue (names, descriptions, builders), loaded when a verb needs it. */
export async function loadCatalogue(): Promise<readonly CatalogueEntry[]> {
  return (await import("../scenarios/catalogue/index.ts")).CATALOGUE;
}

interface RunCliOptions {
  all?: boolean;
  file?: string[];
  mdkVectors?: string | boolean;
  random?: string;
  seed?: string;
  profile?: string;
  relay?: string[];
  report?: string;
  members?: string;
  size?: string;
  json?: boolean;
  progress?: boolean;
  workers?: string;
  workerHangMs?: number;
  blossom?: string;
  checkDeterminism?: boolean;
}

function parseWorkers(value: string | undefined): number | "auto" {
  try {
    return parseWorkerCount(value);
  } catch (e) {
    throw new CliInputError("BAD_OPTION", describeError(e));
  }
}

function parsePositiveInt(value: string, flag: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) throw new CliInputError("BAD_OPTION", `${flag} needs a positive integer, got "${value}"`);
  return n;
}

/** `url` when it parses and has one of `protocols`; otherwise a BAD_OPTION error naming `flag`. */
function checkUrlOption(flag: string, url: string, protocols: readonly string[], expected: string, kind: string): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new CliInputError("BAD_OPTION", `${flag} "${url}" is not a URL (expected ${expected})`);
  }
  if (!protocols.includes(u.protocol)) throw new CliInputError("BAD_OPTION", `${flag} "${url}" must be ${kind}`);
  return url;
}

const checkRelayUrl = (url: string): string => checkUrlOption("--relay", url, ["ws:", "wss:"], "ws://host:port or wss://...", "a ws:// or wss:// URL");
const checkBlossomUrl = (url: string): string => checkUrlOption("--blossom", url, ["http:", "https:"], "http://host:port", "an http:// or https:// URL").replace(/\/+$/, "");

function defaultReportDir(now = new Date()): string {
  return join("reports", `run-${now.toISOString().replace(/[:.]/g, "-")}`);
}

function hasOutOfProcessAgents(s: Scenario): boolean {
  return s.agents.some((a) => a.implementation !== undefined && a.implementation !== "engine");
}

/**
 * The project's runner. A scenario with out-of-process agents (`implementation:` other than
 * "engine") goes through the peers' runner: the agent factory, and the scenario's relays served
 * over WebSocket on 127.0.0.1 (faults included) unless --relay names relays.
 */
async function defaultRun(): Promise<RunFn> {
  const { runScenario } = await import("../scenarios/runner.ts");
  return async (s, o) => {
    if (!hasOutOfProcessAgents(s)) return runScenario(s, o);
    const { runWithPeers } = await import("../peers/scenario-run.ts");
    return runWithPeers(s, o, runScenario);
  };
}

/** Refuse, before anything runs, items whose out-of-process agents cannot run here (and say how to provide them). */
async function refuseUnavailablePeers(items: RunItem[]): Promise<void> {
  if (!items.some((i) => i.scenario && hasOutOfProcessAgents(i.scenario))) return;
  const { peerRunRefusal } = await import("../peers/scenario-run.ts");
  for (const item of items) {
    if (item.refused || !item.scenario || !hasOutOfProcessAgents(item.scenario)) continue;
    const why = peerRunRefusal(item.scenario);
    if (why) item.refused = why;
  }
}

/** Everything `run` was asked to run, resolved into run items (bad names and files are input errors). */
export async function resolveRunItems(names: string[], o: RunCliOptions, members: number | undefined): Promise<RunItem[]> {
  const items: RunItem[] = [];
  const size = o.size ?? "full";
  if (size !== "full" && size !== "small") throw new CliInputError("BAD_OPTION", `--size must be "full" or "small", got "${size}"`);
  const flags = [
    ...(members ? [`--members ${members}`] : []),
    ...(size === "small" ? ["--size small"] : []),
    ...(o.profile ? [`--profile ${shellQuote(o.profile)}`] : []),
    ...(o.relay ?? []).map((u) => `--relay ${shellQuote(u)}`),
  ].join(" ");
  const withFlags = (cmd: string): string => (flags ? `${cmd} ${flags}` : cmd);
  const catalogueNames = names.filter((n) => !n.startsWith("mdk:"));
  const vectorNames = names.filter((n) => n.startsWith("mdk:"));
  if (catalogueNames.length || o.all) {
    const catalogue = await loadCatalogue();
    const byName = new Map(catalogue.map((c) => [c.name, c]));
    const unknown = catalogueNames.filter((n) => !byName.has(n));
    if (unknown.length) {
      throw new CliInputError("UNKNOWN_SCENARIO", `unknown scenario${unknown.length > 1 ? "s" : ""} ${unknown.map((n) => `"${n}"`).join(", ")}; known: ${catalogue.map((c) => c.name).join(", ")}`);
    }
    const chosen = o.all ? catalogue : [...new Set(catalogueNames)].map((n) => byName.get(n) as CatalogueEntry);
    for (const c of chosen) {
      const params: CatalogueParams = { ...(size === "small" ? c.small : c.defaults) };
      // --members applies to the scenarios that have a group-size parameter.
      if (members && "members" in c.defaults) params.members = members;
      let scenario: Scenario;
      try {
        scenario = c.build(params, o.seed ?? "1");
      } catch (e) {
        throw new CliInputError("SCENARIO_BUILD", `scenario "${c.name}" could not be built with ${JSON.stringify(params)}: ${describeError(e)}`);
      }
      items.push({ name: c.name, description: c.description, scenario, runOptions: { catalogueName: c.name, ...(flags ? { replayFlags: flags } : {}) } });
    }
  }
  for (const f of o.file ?? []) {
    const scenario = await loadScenarioFile(f);
    items.push({ name: scenario.name, description: scenario.description, scenario, replayCommand: (seed) => withFlags(`marmot-harness run --file ${shellQuote(f)} --seed ${shellQuote(seed)}`) });
  }
  if ((o.mdkVectors !== undefined && o.mdkVectors !== false) || vectorNames.length) {
    const dir = resolveMdkVectorDir(typeof o.mdkVectors === "string" ? o.mdkVectors : undefined);
    const vectors = await Promise.all((await listMdkVectorFiles(dir)).map((f) => loadMdkVector(f)));
    const unknown = vectorNames.filter((n) => !vectors.some((v) => v.name === n));
    if (unknown.length) throw new CliInputError("UNKNOWN_SCENARIO", `unknown MDK vector ${unknown.map((n) => `"${n}"`).join(", ")} in ${dir}; known: ${vectors.map((v) => v.name).join(", ")}`);
    for (const vector of vectors) {
      if (vectorNames.length && !vectorNames.includes(vector.name)) continue;
      const refused = vector.unsupported.length
        ? `vector uses IR steps this harness cannot act out: ${vector.unsupported.map((u) => `step ${u.mdkIndex} ${u.type} (${u.reason})`).join("; ")}`
        : undefined;
      items.push({
        name: vector.name,
        description: vector.scenario.description,
        scenario: vector.scenario,
        ...(refused ? { refused } : {}),
        runOptions: { catalogueName: vector.name },
        notes: [describeImport(vector), ...vector.steps.filter((m) => m.note && m.how !== "implicit" && m.how !== "marker").map((m) => `IR step ${m.mdkIndex} ${m.mdkType}: ${m.note}`)],
        replayCommand: (seed) => withFlags(`marmot-harness run ${shellQuote(vector.name)} --mdk-vectors ${shellQuote(dir)} --seed ${shellQuote(seed)}`),
        judge: (outcome) => judgeMdkVector({ vector, history: outcome.history.entries }),
      });
    }
  }
  return items;
}

async function runRandom(o: RunCliOptions, run: RunFn, reportDir: string, profile: ProtocolProfile | undefined): Promise<number> {
  const { runRandomCampaign } = await import("../scenarios/random.ts");
  const runs = parsePositiveInt(o.random as string, "--random");
  const seed = o.seed === undefined ? 1 : Number.parseInt(o.seed, 10);
  if (!Number.isInteger(seed)) throw new CliInputError("BAD_OPTION", `--seed for --random must be an integer, got "${o.seed}"`);
  const maxAgents = o.members ? parsePositiveInt(o.members, "--members") : 4;
  // --workers as for named scenarios (a case's history does not depend on it, so the replay line omits it)
  const workers = parseWorkers(o.workers);
  const campaign = `marmot-harness run --random ${runs} --seed ${seed}${o.members ? ` --members ${maxAgents}` : ""}`;
  const startedAt = new Date().toISOString();
  const results: ScenarioResult[] = [];
  const out = await runRandomCampaign({
    runs,
    seed,
    maxAgents,
    maxSteps: 8,
    reportDir,
    run: async (s) => {
      const r = await run(profile ? { ...s, profile } : s, { catalogueName: "random", compliance: false, workers, ...(o.workerHangMs !== undefined ? { workerHangMs: o.workerHangMs } : {}) });
      return { result: r.result, history: r.history.entries };
    },
    onCase: ({ index, result }) => {
      results.push({ ...result, scenario: `random #${index + 1}`, replayCommand: campaign });
      if (!o.json) process.stderr.write(`${result.verdict === "pass" ? "ok  " : "FAIL"} case ${index + 1}: ${result.description}\n`);
    },
  });
  if (!out.ok && out.result) {
    results.push({ ...out.result, scenario: "random (minimal failing case)", ...(out.capsuleDir ? { capsuleDir: out.capsuleDir } : {}), replayCommand: out.replayCommand ?? campaign });
  }
  const report: RunReport = { tool: "marmot-harness", version: TOOL_VERSION, startedAt, finishedAt: new Date().toISOString(), profile: profile ?? DEFAULT_PROFILE, results };
  const written = await writeRunReport(reportDir, report);
  if (o.json) console.log(toJson({ ...out, report: written.json }));
  else if (out.ok) console.log(`random campaign: ${out.runs} cases, all passed. Report: ${written.html}`);
  else {
    console.log(`random campaign: failure after ${out.runs} cases; minimal case: ${out.scenario?.description}. Report: ${written.html}`);
    console.log(`  ${out.detail}`);
    if (out.replayCommand) console.log(`  replay: ${out.replayCommand}`);
  }
  return out.ok ? 0 : 1;
}

export function register(program: Command): void {
  program
    .command("list")
    .description("list the scenario catalogue (names and descriptions)")
    .option("--json", "print JSON")
    .action(async (o: { json?: boolean }) => {
      const catalogue = await loadCatalogue();
      if (o.json) {
        console.log(JSON.stringify(catalogue.map((c) => ({ name: c.name, description: c.description, tags: c.tags, defaults: c.defaults, small: c.small })), null, 2));
        return;
      }
      const width = Math.max(0, ...catalogue.map((c) => c.name.length));
      for (const c of catalogue) console.log(`${c.name.padEnd(width)}  ${c.description}${c.tags.length ? ` [${c.tags.join(", ")}]` : ""}`);
    });

  program
    .command("run")
    .description("run scenarios and write a report (JSON, Markdown, JUnit XML, HTML) with a capsule per failure")
    .argument("[names...]", "catalogue scenario names (see `list`)")
    .option("--all", "run the whole catalogue")
    .option("--file <paths...>", "scenario files (JSON or YAML)")
    .option("--mdk-vectors [dir]", "run MDK conformance vectors (Scenario IR v2/v3); default ../shared/vectors/mdk-scenario-ir or $MARMOT_MDK_VECTORS")
    .option("--random <n>", "property campaign: n random scenarios, shrinking the first failure to a capsule")
    .option("--seed <seed>", "seed for every scenario (default: each scenario's own)")
    .option("--profile <profile>", "protocol profile R0 or R1 (default: each scenario's own, R1)")
    .option("--relay <urls...>", "run against real relays at these ws:// URLs instead of the embedded relay")
    .option("--report <dir>", "report folder (default reports/run-<time>)")
    .option("--members <n>", "group size for scenarios that take one (e.g. epoch-churn-150)")
    .option("--size <size>", "catalogue parameters: full (default) or small (quick runs)")
    .option("--json", "print the RunReport as JSON on stdout (progress goes to stderr)")
    .option("--no-progress", "no progress output")
    .option("--blossom <url>", "use this Blossom server (http:// or https://) for media instead of the harness's own; scenarios with Blossom faults are then refused")
    .option("--workers <n>", "engine worker threads: 0 = all engines in-process; auto (default) = cores - 1 from 20 agents on, on 3+ cores, else 0")
    .option("--worker-hang-ms <ms>", "with workers: a worker that leaves calls unanswered this long ends the run with ENGINE_WORKER_HUNG (default 120000)", intOption("worker-hang-ms", 1))
    .option("--check-determinism", "run every scenario twice with its seed and add a \"determinism\" check: fails when the second history departs from the first")
    .action(async (names: string[], o: RunCliOptions) => {
      let profile: ProtocolProfile | undefined;
      try {
        profile = o.profile ? parseProfile(o.profile) : undefined;
      } catch (e) {
        throw new CliInputError("BAD_OPTION", `--profile: ${describeError(e)}`);
      }
      if (profile === "R2") throw new CliInputError("BAD_OPTION", "--profile R2 is recognised by the checker only; agents speak R0 or R1");
      const members = o.members ? parsePositiveInt(o.members, "--members") : undefined;
      const relayUrls = (o.relay ?? []).map(checkRelayUrl);
      const reportDir = o.report ?? defaultReportDir();
      if (o.checkDeterminism && o.random !== undefined) throw new CliInputError("BAD_OPTION", "--check-determinism runs named scenarios twice; a random campaign (--random) already replays its failures");
      const plainRun = await defaultRun();
      const run = o.checkDeterminism ? withDeterminismCheck(plainRun) : plainRun;
      if (o.random !== undefined) {
        process.exitCode = await runRandom(o, run, reportDir, profile);
        return;
      }
      if (!names.length && !o.all && !o.file?.length && o.mdkVectors === undefined) {
        throw new CliInputError("NOTHING_TO_RUN", "name scenarios, or pass --all, --file, --mdk-vectors or --random (see `marmot-harness list`)");
      }
      const items = await resolveRunItems(names, o, members);
      await refuseUnavailablePeers(items);
      const progress = o.progress === false ? undefined : createProgress(process.stderr);
      const { report, written, capsules } = await runScenarioSet(items, {
        reportDir,
        run,
        ...(o.seed ? { seed: o.seed } : {}),
        ...(profile ? { profile } : {}),
        ...(relayUrls.length ? { relayUrls } : {}),
        workers: parseWorkers(o.workers),
        ...(o.workerHangMs !== undefined ? { workerHangMs: o.workerHangMs } : {}),
        ...(o.blossom ? { blossomUrl: checkBlossomUrl(o.blossom) } : {}),
        ...(progress ? { progress } : {}),
      });
      progress?.finish();
      const code = exitCodeFor(report);
      if (o.json) {
        console.log(toJson(report));
      } else {
        const ok = report.results.filter((r) => r.ok).length;
        console.log(`${ok}/${report.results.length} scenarios as expected. Report: ${written.html} (also summary.md, junit.xml, report.json)`);
        for (const c of capsules) console.log(`  ${c.scenario}: ${c.replayCommand}`);
        for (const r of report.results.filter((x) => x.verdict === "refused")) console.log(`  refused ${r.scenario}: ${r.failures.join("; ")}`);
      }
      process.exitCode = code;
    });

  program
    .command("replay")
    .description("re-run a failure capsule and say whether the failure reproduces")
    .argument("<capsule-dir>", "a reports/<run>/capsules/<scenario>-<seed>/ folder")
    .option("--json", "print the outcome as JSON")
    .option("--no-progress", "no progress output")
    .action(async (dir: string, o: { json?: boolean; progress?: boolean }) => {
      const run = await defaultRun();
      // A progress bar on a terminal only: replay prints its one verdict line either way.
      const progress = o.progress !== false && process.stderr.isTTY ? createProgress(process.stderr) : undefined;
      const out = await replayCapsule(dir, {
        run,
        ...(progress ? { onStep: (i: number, n: number, d: string) => progress.step?.(0, 1, `replay ${dir}`, i, n, d) } : {}),
        judge: async (capsule, outcome) => {
          const source = capsule.scenario.params?.mdkVector;
          if (typeof source !== "string") return [];
          try {
            const vector = await loadMdkVector(source, capsule.seed);
            return judgeMdkVector({ vector, history: outcome.history.entries });
          } catch (e) {
            return [{ name: "mdk:vector", verdict: "error", message: `could not re-read the MDK vector ${source}: ${describeError(e)}` }];
          }
        },
      });
      progress?.finish();
      if (o.json) console.log(toJson({ dir, reproduced: out.reproduced, identical: out.identical, byteIdentical: out.byteIdentical, divergence: out.divergence, explanation: out.explanation, result: out.result }));
      else console.log(`${out.capsule.scenario.name} (seed ${out.capsule.seed}): ${out.explanation}`);
      process.exitCode = out.reproduced ? 0 : 1;
    });
}
