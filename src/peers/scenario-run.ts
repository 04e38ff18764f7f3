/**
 * Running a scenario whose agents are partly out of process (`implementation:` on an agent, or
 * matrix assignments): check before step 0 that every named implementation is available here and
 * can do what its agent is asked, give the runner the peers' agent factory, and, unless the caller
 * names relays, serve the scenario's relays as the harness relay over WebSocket on 127.0.0.1
 * (faults included) for the duration of the run.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { HarnessError } from "../errors.ts";
import { startLocalRelays } from "../scenarios/relay-backends.ts";
import type { RunOptions, RunOutcome } from "../scenarios/runner.ts";
import type { Scenario } from "../scenarios/types.ts";
import { ADAPTERS, IN_PROCESS, implementationStatus, peerAgentFactory, refusals } from "./implementations.ts";

export class PeerRunError extends HarnessError {}

/** How a user provides each implementation (said when one is missing). */
const HOW_TO_PROVIDE: Record<string, string> = {
  wn: "set MARMOT_HARNESS_WN to White Noise's wn binary (and MARMOT_HARNESS_WND to wnd if it is not next to it)",
  "mdk-node": "set MARMOT_HARNESS_MDK_NODE to MDK's cgka-conformance-node binary",
  "marmot-ts": "install @internet-privacy/marmot-ts, or set MARMOT_HARNESS_MARMOT_TS to a built marmot-ts dist/index.js",
};

/** Agents that are not in-process engine agents, with their implementation. */
export function outOfProcessAgents(s: Scenario, assignments: Record<string, string> = {}): { agent: string; implementation: string }[] {
  return s.agents.map((a) => ({ agent: a.name, implementation: assignments[a.name] ?? a.implementation ?? IN_PROCESS })).filter((x) => x.implementation !== IN_PROCESS);
}

/**
 * Why this scenario cannot run with its out-of-process agents here (undefined when it can): an
 * unknown or unavailable implementation (and how to provide it), or a step its agent cannot do.
 */
export function peerRunRefusal(s: Scenario, env: NodeJS.ProcessEnv = process.env, assignments: Record<string, string> = {}): string | undefined {
  const status = implementationStatus(env);
  const problems: string[] = [];
  for (const { agent, implementation } of outOfProcessAgents(s, assignments)) {
    const st = status.find((x) => x.id === implementation);
    if (!st) {
      problems.push(`agent ${agent}: unknown implementation "${implementation}" (known: ${[IN_PROCESS, ...ADAPTERS.map((a) => a.id)].join(", ")})`);
      continue;
    }
    if (!st.available) {
      const how = HOW_TO_PROVIDE[implementation];
      problems.push(`agent ${agent}: implementation ${implementation} is not available here (${st.skipReason ?? "not available"})${how ? `; to provide it, ${how}` : ""}`);
      continue;
    }
    for (const r of refusals(s, agent, implementation)) problems.push(`agent ${agent}: ${r}`);
  }
  return problems.length ? problems.join("; ") : undefined;
}

export type RunScenarioFn = (s: Scenario, o: RunOptions) => Promise<RunOutcome>;

export interface PeerRunOptions {
  env?: NodeJS.ProcessEnv;
  /** Agent name → implementation, overriding the scenario's `implementation`. */
  assignments?: Record<string, string>;
  /** Per-request timeout of the peers, ms. */
  timeoutMs?: number;
  /** How long every agent of the run waits for a relay's OK, ms (default 5 000). */
  publishTimeoutMs?: number;
}

/**
 * Run `s` with its out-of-process agents. Throws PeerRunError (code PEER_RUN_REFUSED) before
 * anything starts when `peerRunRefusal` finds a problem. With `o.relayUrls` the run uses those
 * relays (faults then refused by the runner); otherwise the scenario's relays are served locally.
 */
export async function runWithPeers(s: Scenario, o: RunOptions, run: RunScenarioFn, po: PeerRunOptions = {}): Promise<RunOutcome> {
  const env = po.env ?? process.env;
  const why = peerRunRefusal(s, env, po.assignments);
  if (why) throw new PeerRunError("PEER_RUN_REFUSED", `refused before step 0: ${why}`);
  const workDir = await mkdtemp(join(tmpdir(), "marmot-harness-peers-"));
  const local = o.relayUrls?.length ? undefined : await startLocalRelays(s, o.seed ?? s.seed);
  try {
    const agentFactory = peerAgentFactory({ workDir, env, ...(po.assignments ? { assignments: po.assignments } : {}), ...(po.timeoutMs ? { timeoutMs: po.timeoutMs } : {}), ...(po.publishTimeoutMs ? { publishTimeoutMs: po.publishTimeoutMs } : {}) });
    return await run(s, { ...o, agentFactory, ...(o.workDir ? {} : { workDir }), ...(local ? { relayUrls: local.urls, relayFactory: local.relayFactory } : {}) });
  } finally {
    await local?.close();
    await rm(workDir, { recursive: true, force: true });
  }
}
