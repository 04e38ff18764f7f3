/**
 * Random scenarios for property testing (fast-check). A generated case is a list of abstract
 * operations (invite, remove, self-update, rename, send, leave, offline, online, restart, relay
 * faults) over a few agents. `materialize` walks the list with a simple model of the group (members, epoch, who is
 * online), drops operations the model says are impossible (so every shrunk list is still a valid
 * scenario), and ends the scenario with the model's expectation: everyone back online, converged,
 * on the model's epoch with the model's members. The property is that the runner passes it.
 *
 * When a case fails, fast-check shrinks it to a minimal failing list and the campaign writes that
 * run as a capsule (`marmot-harness replay <dir>` reproduces it).
 */
import { sha256 } from "@noble/hashes/sha2.js";
import { bytesToHex, utf8ToBytes } from "@noble/hashes/utils.js";
import fc from "fast-check";
import type { HistoryEntry } from "../history.ts";
import { writeCapsule } from "../report/capsule.ts";
import type { ScenarioResult } from "../report/types.ts";
import type { FaultKind, Scenario, Step } from "./types.ts";

/**
 * Commits a pathless commit brings with it: ts-mls 2.0.0-rc.10 commits one Remove (or one SelfRemove, or a group-data change)
 * without an UpdatePath, so the engine asks for a re-keying self-update, which the agent publishes.
 */
const REKEY_AFTER_PATHLESS_COMMIT = 1;

export type RandomOp =
  | { op: "invite"; who: number }
  | { op: "remove"; who: number }
  | { op: "self-update"; who: number }
  | { op: "rename"; who: number }
  | { op: "send"; who: number }
  | { op: "leave"; who: number }
  | { op: "offline"; who: number }
  | { op: "online"; who: number }
  | { op: "restart"; who: number }
  | { op: "fault"; fault: RandomFault; relay: number };

/** Faults that delay or repeat traffic but lose nothing, so the model's outcome still holds. */
export const RANDOM_FAULTS = ["duplicate", "reorder", "delay"] as const satisfies readonly FaultKind[];
export type RandomFault = (typeof RANDOM_FAULTS)[number];

export interface RandomCase {
  agents: number;
  ops: RandomOp[];
}

export interface RandomLimits {
  /** At most this many agents (at least 2). Default 4. */
  maxAgents?: number;
  /** At most this many operations. Default 6. */
  maxSteps?: number;
  /** Number of relays the agents use (faults hit one of them). Default 2. */
  relays?: number;
  /** Generate relay faults. Default true. */
  faults?: boolean;
}

/** The model's view of the group after each operation. */
export interface ModelState {
  members: Set<number>;
  online: Set<number>;
  epoch: number;
  faulted: Set<number>;
}

const NAMES = ["alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi"];
export function agentName(i: number): string {
  return NAMES[i] ?? `agent${i}`;
}

export function randomCaseArbitrary(limits: RandomLimits = {}): fc.Arbitrary<RandomCase> {
  const maxAgents = Math.max(2, Math.min(limits.maxAgents ?? 4, NAMES.length));
  const maxSteps = Math.max(1, limits.maxSteps ?? 6);
  const relays = Math.max(1, limits.relays ?? 2);
  // No `chain` (it shrinks poorly): agent indexes are drawn up to maxAgents and taken modulo the
  // case's agent count in `materialize`.
  {
    const who = fc.integer({ min: 0, max: maxAgents - 1 });
    // Weighted so that groups grow before they shrink (most operations need members).
    const choices: fc.WeightedArbitrary<RandomOp>[] = [
      { weight: 4, arbitrary: who.map((w) => ({ op: "invite" as const, who: w })) },
      { weight: 1, arbitrary: who.map((w) => ({ op: "remove" as const, who: w })) },
      { weight: 2, arbitrary: who.map((w) => ({ op: "self-update" as const, who: w })) },
      { weight: 1, arbitrary: who.map((w) => ({ op: "rename" as const, who: w })) },
      { weight: 3, arbitrary: who.map((w) => ({ op: "send" as const, who: w })) },
      { weight: 1, arbitrary: who.map((w) => ({ op: "leave" as const, who: w })) },
      { weight: 1, arbitrary: who.map((w) => ({ op: "offline" as const, who: w })) },
      { weight: 1, arbitrary: who.map((w) => ({ op: "online" as const, who: w })) },
      { weight: 1, arbitrary: who.map((w) => ({ op: "restart" as const, who: w })) },
    ];
    if (limits.faults ?? true) {
      choices.push({ weight: 1, arbitrary: fc.record({ op: fc.constant("fault" as const), fault: fc.constantFrom(...RANDOM_FAULTS), relay: fc.integer({ min: 0, max: relays - 1 }) }) });
    }
    return fc.record({ agents: fc.integer({ min: 2, max: maxAgents }), ops: fc.array(fc.oneof(...choices), { minLength: 1, maxLength: maxSteps }) });
  }
}

/**
 * Turn a case into a scenario. Agent 0 creates the group and is its only admin; it stays online and
 * makes every commit except self-updates. Operations the model finds impossible are skipped.
 */
export function materialize(c: RandomCase, seed: string, limits: RandomLimits = {}): { scenario: Scenario; model: ModelState; applied: RandomOp[] } {
  const relayNames = Array.from({ length: Math.max(1, limits.relays ?? 2) }, (_, i) => `r${i + 1}`);
  const names = Array.from({ length: c.agents }, (_, i) => agentName(i));
  const m: ModelState = { members: new Set([0]), online: new Set(names.map((_, i) => i)), epoch: 0, faulted: new Set() };
  const g = "g";
  const steps: Step[] = [{ type: "create-group", agent: names[0] as string, group: g, name: "random" }];
  const applied: RandomOp[] = [];
  let sends = 0;
  let renames = 0;
  for (const raw of c.ops) {
    if (raw.op !== "fault" && (!Number.isInteger(raw.who) || raw.who < 0)) continue;
    const op: RandomOp = raw.op === "fault" ? raw : { ...raw, who: raw.who % c.agents };
    const n = op.op === "fault" ? "" : (names[op.who] as string);
    const member = op.op !== "fault" && m.members.has(op.who);
    const online = op.op !== "fault" && m.online.has(op.who);
    switch (op.op) {
      case "invite":
        if (member || !online) continue;
        steps.push({ type: "invite", agent: names[0] as string, group: g, members: [n] });
        m.members.add(op.who);
        m.epoch++;
        break;
      case "remove":
        if (!member || op.who === 0) continue;
        steps.push({ type: "remove", agent: names[0] as string, group: g, members: [n] });
        m.members.delete(op.who);
        m.epoch += 1 + REKEY_AFTER_PATHLESS_COMMIT;
        break;
      case "self-update":
        if (!member || !online) continue;
        steps.push({ type: "self-update", agent: n, group: g });
        m.epoch++;
        break;
      case "rename":
        // Group data changes are admin commits: agent 0 renames, whoever drew the operation.
        steps.push({ type: "update-group-data", agent: names[0] as string, group: g, name: `random ${++renames}` });
        // A group-data-only commit carries no UpdatePath in ts-mls rc.10, so the engine re-keys after it.
        m.epoch += 1 + REKEY_AFTER_PATHLESS_COMMIT;
        break;
      case "send":
        if (!member || !online) continue;
        steps.push({ type: "send", agent: n, group: g, text: `random message ${++sends} from ${n}` });
        break;
      case "leave":
        if (!member || !online || op.who === 0) continue;
        steps.push({ type: "leave", agent: n, group: g, committer: names[0] as string });
        m.members.delete(op.who);
        m.epoch += 1 + REKEY_AFTER_PATHLESS_COMMIT;
        break;
      case "offline":
        if (!online || op.who === 0) continue;
        steps.push({ type: "offline", agent: n });
        m.online.delete(op.who);
        break;
      case "online":
        if (online) continue;
        steps.push({ type: "online", agent: n });
        m.online.add(op.who);
        break;
      case "restart":
        // From the durable store: nothing the model tracks may change.
        if (!online) continue;
        steps.push({ type: "restart", agent: n });
        break;
      case "fault": {
        const relay = relayNames[op.relay % relayNames.length] as string;
        steps.push({ type: "fault", relay, fault: op.fault, params: faultParams(op.fault) });
        m.faulted.add(op.relay % relayNames.length);
        break;
      }
    }
    applied.push(op);
  }
  // The model's expectation, after healing and bringing everyone back.
  for (const r of [...m.faulted].sort()) steps.push({ type: "fault", relay: relayNames[r] as string, fault: "heal", description: "heal before judging" });
  for (let i = 0; i < c.agents; i++) {
    if (!m.online.has(i)) {
      steps.push({ type: "online", agent: names[i] as string, description: "back online before judging" });
      m.online.add(i);
    }
  }
  const memberNames = [...m.members].sort((a, b) => a - b).map((i) => names[i] as string);
  const nonMembers = names.filter((_, i) => !m.members.has(i));
  steps.push({ type: "wait-for-convergence", group: g });
  steps.push({
    type: "assert",
    group: g,
    agents: memberNames,
    epoch: m.epoch,
    members: memberNames,
    ...(nonMembers.length ? { notMembers: nonMembers } : {}),
    description: `model: epoch ${m.epoch}, members ${memberNames.join(", ")}`,
  });
  const scenario: Scenario = {
    name: "random",
    description: `random case: ${c.agents} agents, ${applied.length} operations (${applied.map(describeOp).join("; ") || "none"})`,
    seed,
    relays: relayNames.map((name) => ({ name })),
    // the model counts only the commits it generates: joiners do not add their own self-update
    agents: names.map((name) => ({ name, relays: relayNames, keyPackages: 1, lastResort: true, storage: "file" as const, selfUpdateAfterJoin: false })),
    steps,
    params: { randomCase: c },
  };
  return { scenario, model: m, applied };
}

function faultParams(f: RandomFault): Record<string, unknown> {
  if (f === "delay") return { ms: 500 };
  if (f === "duplicate") return { probability: 0.5 };
  return { probability: 0.5 };
}

export function describeOp(op: RandomOp): string {
  if (op.op === "fault") return `fault ${op.fault} on r${op.relay + 1}`;
  if (op.op === "rename") return "rename the group";
  return `${op.op} ${agentName(op.who)}`;
}

export type ScenarioRunFn = (scenario: Scenario) => Promise<{ result: ScenarioResult; history: readonly HistoryEntry[] }>;

export interface CampaignOptions extends RandomLimits {
  runs: number;
  /** fast-check seed (integer); the scenario seed of each case derives from it. */
  seed: number;
  run: ScenarioRunFn;
  /** Where to write the capsule of the minimal failing case (a report folder). */
  reportDir?: string;
  /** Called after each case. */
  onCase?: (info: { index: number; scenario: Scenario; result: ScenarioResult }) => void;
}

export interface CampaignOutcome {
  ok: boolean;
  runs: number;
  /** The minimal failing case after shrinking. */
  counterexample?: RandomCase;
  scenario?: Scenario;
  result?: ScenarioResult;
  capsuleDir?: string;
  replayCommand?: string;
  /** fast-check's own account (seed, path, number of shrinks). */
  detail?: string;
}

/**
 * Make a failing case 1-minimal: keep only the operations the model applied, then drop operations
 * (and agents) one at a time while the case still fails.
 */
export async function minimizeCase(c: RandomCase, fails: (c: RandomCase) => Promise<boolean>, limits: RandomLimits = {}): Promise<RandomCase> {
  const normalise = (x: RandomCase): RandomCase => ({ agents: x.agents, ops: materialize(x, "minimize", limits).applied });
  let cur = normalise(c);
  for (let changed = true; changed; ) {
    changed = false;
    const candidates: RandomCase[] = cur.ops.map((_, i) => ({ agents: cur.agents, ops: cur.ops.filter((__, j) => j !== i) }));
    if (cur.agents > 2) {
      const fewer = cur.agents - 1;
      candidates.push({ agents: fewer, ops: cur.ops.filter((o) => o.op === "fault" || o.who < fewer) });
    }
    for (const cand of candidates) {
      if (await fails(cand)) {
        cur = normalise(cand);
        changed = true;
        break;
      }
    }
  }
  return cur;
}

/** Run `runs` random cases; on a failure, shrink, re-run the minimal case and write its capsule. */
export async function runRandomCampaign(opts: CampaignOptions): Promise<CampaignOutcome> {
  let index = 0;
  const seedOf = (c: RandomCase): string => `random-${opts.seed}-${bytesToHex(sha256(utf8ToBytes(JSON.stringify(c)))).slice(0, 12)}`;
  const prop = fc.asyncProperty(randomCaseArbitrary(opts), async (c) => {
    const { scenario } = materialize(c, seedOf(c), opts);
    const { result } = await opts.run(scenario);
    opts.onCase?.({ index: index++, scenario, result });
    return result.verdict === "pass";
  });
  const details = await fc.check(prop, { numRuns: opts.runs, seed: opts.seed, endOnFailure: false });
  if (!details.failed || !details.counterexample) return { ok: true, runs: details.numRuns };
  // fast-check's shrinking stops early on some lists; finish with a one-at-a-time removal pass so
  // the saved case is 1-minimal: removing any single operation (or agent) makes it pass.
  const fails = async (c: RandomCase): Promise<boolean> => {
    const { scenario } = materialize(c, seedOf(c), opts);
    return (await opts.run(scenario)).result.verdict !== "pass";
  };
  const c = await minimizeCase(details.counterexample[0], fails, opts);
  const { scenario } = materialize(c, seedOf(c), opts);
  const { result, history } = await opts.run(scenario);
  const out: CampaignOutcome = {
    ok: false,
    runs: details.numRuns,
    counterexample: c,
    scenario,
    result,
    detail: `fast-check seed ${details.seed}, path ${details.counterexamplePath ?? "?"}, ${details.numShrinks} shrinks${details.errorInstance ? `, error: ${String(details.errorInstance)}` : ""}`,
  };
  if (opts.reportDir) {
    const cap = await writeCapsule({ reportDir: opts.reportDir, scenario, seed: scenario.seed, history, result });
    out.capsuleDir = cap.dir;
    out.replayCommand = cap.replayCommand;
  }
  return out;
}
