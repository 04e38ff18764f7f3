/**
 * A typed builder for scenarios. Every method appends data; `build()` validates the result with
 * the same rules as scenario files, so a built scenario and a loaded one are interchangeable.
 *
 *   const s = scenario("invite-basic", "Alice invites Bob; they chat")
 *     .relay("r1")
 *     .agents(["alice", "bob"], { relays: ["r1"] })
 *     .createGroup("alice", "g")
 *     .invite("alice", "g", ["bob"])
 *     .send("bob", "g", "hi")
 *     .waitForConvergence("g")
 *     .build();
 */
import type { ProtocolProfile } from "../profile.ts";
import type {
  AgentSpec,
  AssertStep,
  BlossomFaultKind,
  CatchUpMode,
  CheckSettings,
  FaultKind,
  RelaySpec,
  Requirements,
  Scenario,
  SendStep,
  Step,
  StepBase,
} from "./types.ts";
import { validateScenario } from "./validate.ts";

type Extra = StepBase;

export class ScenarioBuilder {
  private readonly s: Scenario;

  constructor(name: string, description: string) {
    this.s = { name, description, seed: "1", relays: [], agents: [], steps: [] };
  }

  seed(seed: string | number): this {
    this.s.seed = String(seed);
    return this;
  }
  profile(p: ProtocolProfile): this {
    this.s.profile = p;
    return this;
  }
  expect(e: "pass" | "fail", failingChecks?: string[], reason?: string): this {
    this.s.expect = e;
    if (failingChecks) this.s.expectFailureOf = failingChecks;
    if (reason) this.s.expectReason = reason;
    return this;
  }
  /** The story applies only under these profiles; elsewhere the run is not applicable, for `reason`. */
  onlyProfiles(profiles: ProtocolProfile[], reason: string): this {
    this.s.profiles = [...profiles];
    this.s.profileReason = reason;
    return this;
  }
  params(p: Record<string, unknown>): this {
    this.s.params = { ...(this.s.params ?? {}), ...p };
    return this;
  }
  requires(r: Requirements): this {
    this.s.requires = {
      agents: [...new Set([...(this.s.requires?.agents ?? []), ...(r.agents ?? [])])],
      relays: [...new Set([...(this.s.requires?.relays ?? []), ...(r.relays ?? [])])],
    };
    return this;
  }
  checks(c: CheckSettings): this {
    this.s.checks = { ...(this.s.checks ?? {}), ...c };
    return this;
  }

  relay(name: string, opts: Omit<RelaySpec, "name"> = {}): this {
    this.s.relays.push({ name, ...opts });
    return this;
  }
  agent(name: string, spec: Omit<AgentSpec, "name">): this {
    this.s.agents.push({ name, ...spec });
    return this;
  }
  agents(names: string[], spec: Omit<AgentSpec, "name">): this {
    for (const n of names) this.agent(n, { ...spec, relays: [...spec.relays], ...(spec.quirks ? { quirks: [...spec.quirks] } : {}) });
    return this;
  }

  step(step: Step): this {
    this.s.steps.push(step);
    return this;
  }

  createGroup(agent: string, group: string, opts: { name?: string; admins?: string[]; relays?: string[] } & Extra = {}): this {
    return this.step({ type: "create-group", agent, group, ...opts });
  }
  invite(agent: string, group: string, members: string[], extra: Extra = {}): this {
    return this.step({ type: "invite", agent, group, members, ...extra });
  }
  remove(agent: string, group: string, members: string[], extra: Extra = {}): this {
    return this.step({ type: "remove", agent, group, members, ...extra });
  }
  selfUpdate(agent: string, group: string, extra: Extra = {}): this {
    return this.step({ type: "self-update", agent, group, ...extra });
  }
  updateGroupData(agent: string, group: string, patch: { name?: string; groupDescription?: string; admins?: string[] } & Extra): this {
    return this.step({ type: "update-group-data", agent, group, ...patch });
  }
  leave(agent: string, group: string, opts: { committer?: string } & Extra = {}): this {
    return this.step({ type: "leave", agent, group, ...opts });
  }
  send(agent: string, group: string, text: string, opts: Omit<SendStep, "type" | "agent" | "group" | "text"> = {}): this {
    return this.step({ type: "send", agent, group, text, ...opts });
  }
  sendMedia(agent: string, group: string, media: { filename: string; mimeType: string; bytes: number; wrongBlob?: boolean }, extra: Extra = {}): this {
    return this.step({ type: "send", agent, group, media, ...extra });
  }
  setGroupImage(agent: string, group: string, opts: { bytes?: number; version?: 1 | 2; clear?: boolean } & Extra = {}): this {
    return this.step({ type: "set-group-image", agent, group, ...opts });
  }
  blossomFault(fault: BlossomFaultKind, opts: { target?: "latest" | "all"; ms?: number } & Extra = {}): this {
    return this.step({ type: "blossom-fault", fault, ...opts });
  }
  offline(agent: string, extra: Extra = {}): this {
    return this.step({ type: "offline", agent, ...extra });
  }
  online(agent: string, catchUp?: CatchUpMode, extra: Extra = {}): this {
    return this.step({ type: "online", agent, ...(catchUp ? { catchUp } : {}), ...extra });
  }
  restart(agent: string, extra: Extra = {}): this {
    return this.step({ type: "restart", agent, ...extra });
  }
  advanceTime(ms: number, extra: Extra = {}): this {
    return this.step({ type: "advance-time", ms, ...extra });
  }
  fault(fault: FaultKind, opts: { relay?: string; params?: Record<string, unknown> } & Extra = {}): this {
    return this.step({ type: "fault", fault, ...opts });
  }
  waitForConvergence(group?: string, timeoutMs?: number, extra: Extra = {}): this {
    return this.step({ type: "wait-for-convergence", ...(group ? { group } : {}), ...(timeoutMs !== undefined ? { timeoutMs } : {}), ...extra });
  }
  assert(group: string, what: Omit<AssertStep, "type" | "group">): this {
    return this.step({ type: "assert", group, ...what });
  }
  publishKeyPackage(agent: string, opts: { count?: number; lastResort?: boolean } & Extra = {}): this {
    return this.step({ type: "publish-key-package", agent, ...opts });
  }
  rotateKeyPackage(agent: string, extra: Extra = {}): this {
    return this.step({ type: "rotate-key-package", agent, ...extra });
  }
  deleteKeyPackage(agent: string, extra: Extra = {}): this {
    return this.step({ type: "delete-key-package", agent, ...extra });
  }

  /** Validated scenario (throws ScenarioValidationError naming the step and field). */
  build(): Scenario {
    return validateScenario(structuredClone(this.s), `builder "${this.s.name}"`);
  }
}

export function scenario(name: string, description: string): ScenarioBuilder {
  return new ScenarioBuilder(name, description);
}
