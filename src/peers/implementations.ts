/**
 * The implementations a scenario agent can be: "engine" (in process, built by the runner) or one
 * of the peer adapters (out of process or foreign). This module says which are available here,
 * what each can do, and builds PeerAgents for scenario agents whose `implementation` names an
 * adapter.
 *
 * The runner calls `peerAgentFactory()`'s hook for every agent spec; the hook returns undefined
 * for in-process engine agents (the runner builds those itself).
 */
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import type { AgentContext } from "../agents/context.ts";
import type { Agent } from "../agents/types.ts";
import { HarnessError } from "../errors.ts";
import type { ProtocolProfile } from "../profile.ts";
import type { AgentSpec, QuirkName, Scenario, StepType } from "../scenarios/types.ts";
import { enginePeerAdapter } from "./adapters/engine-peer.ts";
import { marmotTsAdapter } from "./adapters/marmot-ts.ts";
import { mdkNodeAdapter } from "./adapters/mdk-node.ts";
import { LABELLED_CONNECTIONS, type PeerAdapter } from "./adapters/types.ts";
import { wnAdapter } from "./adapters/wn.ts";
import { PeerAgent } from "./peer-agent.ts";

export const IN_PROCESS = "engine";

export const ADAPTERS: readonly PeerAdapter[] = [enginePeerAdapter, wnAdapter, mdkNodeAdapter, marmotTsAdapter];

export class ImplementationError extends HarnessError {}

export { LABELLED_CONNECTIONS };

export function findAdapter(id: string): PeerAdapter {
  const a = ADAPTERS.find((x) => x.id === id);
  if (!a) throw new ImplementationError("UNKNOWN_IMPLEMENTATION", `unknown implementation "${id}" (known: ${[IN_PROCESS, ...ADAPTERS.map((x) => x.id)].join(", ")})`, { id });
  return a;
}

export interface ImplementationStatus {
  id: string;
  title: string;
  available: boolean;
  skipReason?: string;
  expectedProfile: ProtocolProfile | "unknown";
}

/** Every implementation with whether it can run here (and why not). */
export function implementationStatus(env: NodeJS.ProcessEnv = process.env): ImplementationStatus[] {
  const out: ImplementationStatus[] = [{ id: IN_PROCESS, title: "marmot-harness engine, in process", available: true, expectedProfile: "R1" }];
  for (const a of ADAPTERS) {
    const why = a.skipReason(env);
    out.push({ id: a.id, title: a.title, available: why === undefined, ...(why ? { skipReason: why } : {}), expectedProfile: a.expectedProfile });
  }
  return out;
}

/** What the scenario asks of one agent that the implementation cannot do (empty when it can do all). */
export function refusals(scenario: Scenario, agent: string, implementation: string): string[] {
  if (implementation === IN_PROCESS) return [];
  const a = findAdapter(implementation);
  const out: string[] = [];
  const steps = new Set<StepType>(a.steps);
  for (const st of scenario.steps) {
    const acting = "agent" in st ? st.agent : undefined;
    if (acting === agent && !steps.has(st.type)) out.push(`${implementation} cannot perform "${st.type}"`);
    if (st.type === "leave" && st.committer === agent && !steps.has("leave")) out.push(`${implementation} cannot commit a SelfRemove`);
    if ((st.type === "offline" || st.type === "online") && st.agent === agent && !steps.has(st.type)) out.push(`${implementation} cannot go ${st.type}`);
    if (st.type === "fault" && Array.isArray(st.params?.agents) && st.params.agents.map(String).includes(agent) && !a.capabilities.includes(LABELLED_CONNECTIONS)) {
      out.push(`${implementation}'s relay connections cannot be told apart from other clients' (no client label), so the "${st.fault}" fault scoped to ${agent} cannot reach it`);
    }
  }
  const spec = scenario.agents.find((x) => x.name === agent);
  for (const q of spec?.quirks ?? []) if (!a.capabilities.includes(`quirk:${q}`)) out.push(`${implementation} cannot reproduce quirk ${q}`);
  const profile = spec?.profile ?? scenario.profile;
  if (profile && profile !== "R1" && !a.capabilities.includes(`profile:${profile}`)) out.push(`${implementation} does not speak profile ${profile}`);
  if (spec?.outOfBandRatchetTree) out.push(`${implementation} has no out-of-band ratchet tree option`);
  return [...new Set(out)];
}

export interface PeerAgentDefaults {
  secretKey?: Uint8Array;
  relays: string[];
  profile?: ProtocolProfile;
  quirks?: readonly QuirkName[];
  seed?: string;
  catchUp?: AgentSpec["catchUp"];
  selfUpdateAfterJoin?: boolean;
}

export interface PeerFactoryOptions {
  /** Where peers get their home directories. */
  workDir: string;
  env?: NodeJS.ProcessEnv;
  /** Agent name → implementation, overriding the scenario's `implementation` (the matrix uses this). */
  assignments?: Record<string, string>;
  timeoutMs?: number;
  /** PeerAgent background poll interval, ms (0 = off). */
  pollMs?: number;
  /**
   * How long agents wait for a relay's OK on the wall clock, ms (peers get it at start; the run's
   * in-process agents get it too when the run sets none). Default 5 000: under drop faults a lost
   * OK costs that long.
   */
  publishTimeoutMs?: number;
}

export function createPeerAgent(implementation: string, ctx: AgentContext, name: string, defaults: PeerAgentDefaults, opts: PeerFactoryOptions): PeerAgent {
  const adapter = findAdapter(implementation);
  const why = adapter.skipReason(opts.env);
  if (why) throw new ImplementationError("IMPLEMENTATION_UNAVAILABLE", `${implementation} is not available here: ${why}`, { implementation });
  const home = join(opts.workDir, `${name}-${implementation}`);
  mkdirSync(home, { recursive: true });
  return new PeerAgent(ctx, {
    name,
    implementation,
    relays: defaults.relays,
    open: () =>
      adapter.open({
        name,
        relays: defaults.relays,
        home,
        ...(opts.env ? { env: opts.env } : {}),
        ...(opts.timeoutMs ? { timeoutMs: opts.timeoutMs } : {}),
        ...(opts.publishTimeoutMs ? { publishTimeoutMs: opts.publishTimeoutMs } : {}),
      }),
    capabilities: [...adapter.capabilities],
    ...(adapter.pinnedIdentity && defaults.secretKey ? { secretKey: defaults.secretKey } : {}),
    ...(defaults.profile ? { profile: defaults.profile } : {}),
    ...(defaults.quirks ? { quirks: defaults.quirks } : {}),
    ...(defaults.seed ? { seed: defaults.seed } : {}),
    ...(defaults.catchUp ? { catchUp: defaults.catchUp } : {}),
    ...(defaults.selfUpdateAfterJoin === false ? { selfUpdateAfterJoin: false } : {}),
    ...(opts.pollMs !== undefined ? { pollMs: opts.pollMs } : {}),
  });
}

/** A hook for the runner: given an agent spec, a PeerAgent when it is not an in-process engine agent. */
export type AgentFactoryHook = (spec: AgentSpec, ctx: AgentContext, defaults: PeerAgentDefaults) => Agent | undefined;

export function peerAgentFactory(opts: PeerFactoryOptions): AgentFactoryHook {
  return (spec, ctx, defaults) => {
    // One publish timeout for everyone in the run, in process or not (the context is the run's).
    if (opts.publishTimeoutMs !== undefined && ctx.publishTimeoutMs === undefined) ctx.publishTimeoutMs = opts.publishTimeoutMs;
    const impl = opts.assignments?.[spec.name] ?? spec.implementation ?? IN_PROCESS;
    if (impl === IN_PROCESS) return undefined;
    return createPeerAgent(impl, ctx, spec.name, defaults, opts);
  };
}
