/**
 * The scenario runner. It builds the relays and agents a scenario names, checks before step 0
 * that each can do what the scenario asks (and refuses with a clear error if not), acts the
 * steps out on virtual time (VirtualScheduler, seeded) or on the wall clock for real relays,
 * records everything in the history, runs the invariant checkers (and the compliance checker
 * when it is available) and returns a ScenarioResult with a one-line reproduce command.
 *
 * Determinism: agents never process events on arrival. The runner delivers relay traffic one
 * scheduler task at a time and, after each, lets agents with work process it in a fixed order
 * (the scenario's agent order). Virtual time moves only while agents wait on relays, never while
 * they compute, so real CPU time does not leak into the run.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { AgentError, EngineAgent, type EngineFactory } from "../agents/engine-agent.ts";
import { defaultWorkerCount, EngineWorkerPool } from "../agents/worker-engine.ts";
import { IoGate, type AgentContext } from "../agents/context.ts";
import type { Agent, AgentGroupView, CommitReport } from "../agents/types.ts";
import { runInvariants } from "../checkers/invariants/index.ts";
import { checkConvergence } from "../checkers/invariants/convergence.ts";
import { FileStorage } from "../engine/storage-file.ts";
import { MemoryStorage } from "../engine/storage-memory.ts";
import { describeError, HarnessError, isHarnessError } from "../errors.ts";
import { History, historyToCapture, historyToKeyring } from "../history.ts";
import { DEFAULT_PROFILE, type ProtocolProfile } from "../profile.ts";
import type { CheckResult, ComplianceSummary, RunMetrics, ScenarioResult, StepResult, Verdict } from "../report/types.ts";
import { VirtualScheduler, type Clock } from "../sim/clock.ts";
import { createRng, type Rng } from "../sim/random.ts";
import type { RelayBackendFactory, RelayBackendHandle } from "./backends.ts";
import type { AgentSpec, CatchUpMode, QuirkName, Scenario, Step } from "./types.ts";
import { validateScenario } from "./validate.ts";
import type { BlossomServer } from "../blossom/server.ts";
import { applyBlossomFault, checkMediaAssertions, hasMediaAssertions, mediaCapabilities, needsBlossom } from "../blossom/scenario-media.ts";

/** Wall-clock runs: how long a settle waits without any agent work before it returns. */
const WALL_SETTLE_QUIET_MS = 500;
/** Wall-clock runs: how long wait-for-convergence waits for a further event before it judges. */
const WALL_CONVERGENCE_QUIET_MS = 5_000;

export class ScenarioRefusedError extends HarnessError {}

export interface RunOptions {
  /** Override the scenario's seed. */
  seed?: string;
  /** Engine constructor (default: the project's engine). */
  engineFactory?: EngineFactory;
  /** Relay backends (default: the embedded simulated relay; "ws" relays by URL). */
  relayFactory?: RelayBackendFactory;
  /** Run on real relays: relay name (or index) → URL, replacing the scenario's relays. */
  relayUrls?: string[];
  /** Folder for durable agent stores (default: a temporary folder, removed after the run). */
  workDir?: string;
  /** Run the compliance checker when it is available (default true). */
  compliance?: boolean;
  /** Progress callback (step index, total, description). */
  onStep?: (index: number, total: number, description: string) => void;
  /** Reproduce command prefix (default "marmot-harness"). */
  command?: string;
  /** Name under which `marmot-harness run <name>` finds this scenario (default scenario.name). */
  catalogueName?: string;
  /** Extra CLI flags that reproduce the parameters (e.g. "--members 40"). */
  replayFlags?: string;
  /**
   * Builds the agents that are not in-process engine agents (e.g. out-of-process peers, see
   * src/peers/): return an Agent for the spec, or undefined for an EngineAgent.
   */
  agentFactory?: AgentFactory;
  /**
   * An external Blossom server for media scenarios instead of the harness's own (e.g. a real one).
   * Scenarios with `blossom-fault` steps need the harness's server and are refused.
   */
  blossomUrl?: string;
  /**
   * Engine worker threads for in-process engine agents: 0 runs every engine on the main thread;
   * N > 0 hosts the engines on N workers (several agents per worker) and processes busy agents'
   * events in parallel, applying results in the scenario's agent order (same history as 0).
   * "auto" (the CLI's default): cores − 1 workers from 20 agents on, on machines of 3 cores or more,
   * else 0 (see `defaultWorkerCount`). Default 0. Ignored
   * (in-process) with a custom `engineFactory`.
   */
  workers?: number | "auto";
  /** Tooling and test hook: called with the engine worker pool once it is running. */
  onWorkerPool?: (pool: EngineWorkerPool) => void;
  /** With workers: how long a worker may leave calls unanswered before the run ends with ENGINE_WORKER_HUNG (default 120 s). */
  workerHangMs?: number;
}

/** Defaults the runner hands to an agent factory: the identity and settings it would give an EngineAgent. */
export interface AgentDefaults {
  secretKey?: Uint8Array;
  /** Relay URLs. */
  relays: string[];
  profile?: ProtocolProfile;
  quirks?: readonly QuirkName[];
  seed?: string;
  catchUp?: CatchUpMode;
  /** False when the scenario turns the joiner's post-join self-update off (default on). */
  selfUpdateAfterJoin?: boolean;
}

export type AgentFactory = (spec: AgentSpec, ctx: AgentContext, defaults: AgentDefaults) => Agent | undefined;

export interface RunOutcome {
  result: ScenarioResult;
  history: History;
  scenario: Scenario;
}

/** Default engine factory: loaded lazily so that the runner has no hard import cycle on the engine. */
async function defaultEngineFactory(): Promise<EngineFactory> {
  const mod = (await import("../engine/engine.ts")) as { createEngine: EngineFactory };
  return mod.createEngine;
}

async function defaultRelayFactory(): Promise<RelayBackendFactory> {
  const mod = (await import("./relay-backends.ts")) as { createRelayBackend: RelayBackendFactory };
  return mod.createRelayBackend;
}

/** Capabilities the scenario needs from each agent and relay, derived from its steps and declarations. */
export function requiredCapabilities(s: Scenario): { agents: Map<string, Set<string>>; relays: Map<string, Set<string>> } {
  const agents = new Map<string, Set<string>>(s.agents.map((a) => [a.name, new Set<string>(s.requires?.agents ?? [])]));
  const relays = new Map<string, Set<string>>(s.relays.map((r) => [r.name, new Set<string>(s.requires?.relays ?? [])]));
  for (const a of s.agents) {
    const set = agents.get(a.name) as Set<string>;
    for (const q of a.quirks ?? []) set.add(`quirk:${q}`);
    if (a.outOfBandRatchetTree) set.add("out-of-band-tree");
    if (a.profile) set.add(`profile:${a.profile}`);
    if (s.profile) set.add(`profile:${s.profile}`);
  }
  for (const st of s.steps) {
    if (st.type === "restart") agents.get(st.agent)?.add("restart");
    if (st.type === "send" && st.media) agents.get(st.agent)?.add("media");
    for (const [name, cap] of mediaCapabilities(s, st)) agents.get(name)?.add(cap);
    if (st.type === "send" && st.spoofAuthor) agents.get(st.agent)?.add("spoof-author");
    if (st.type === "fault") {
      for (const r of st.relay ? [st.relay] : s.relays.map((x) => x.name)) relays.get(r)?.add("faults");
    }
  }
  for (const r of s.relays) {
    const o = r.options ?? {};
    const set = relays.get(r.name) as Set<string>;
    if (o.refuseProtected) set.add("reject-protected");
    if (o.maxStoredEvents !== undefined) set.add("retention");
    if (o.queueLimit !== undefined) set.add("delivery-queue");
  }
  return { agents, relays };
}

function stepDescription(st: Step): string {
  if (st.description) return st.description;
  switch (st.type) {
    case "create-group":
      return `${st.agent} creates group ${st.group}`;
    case "invite":
      return `${st.agent} invites ${st.members.length > 4 ? `${st.members.length} members` : st.members.join(", ")} to ${st.group}`;
    case "remove":
      return `${st.agent} removes ${st.members.length > 4 ? `${st.members.length} members` : st.members.join(", ")} from ${st.group}`;
    case "self-update":
      return `${st.agent} self-updates in ${st.group}`;
    case "update-group-data":
      return `${st.agent} updates ${st.group}'s group data`;
    case "leave":
      return `${st.agent} leaves ${st.group}`;
    case "send":
      return `${st.agent} sends ${st.count && st.count > 1 ? `${st.count} messages` : st.media ? "a file" : "a message"} to ${st.group}`;
    case "offline":
      return `${st.agent} goes offline`;
    case "online":
      return `${st.agent} comes back online (${st.catchUp ?? "default"} catch-up)`;
    case "restart":
      return `${st.agent} restarts`;
    case "advance-time":
      return `time advances ${st.ms} ms`;
    case "fault":
      return `fault ${st.fault} on ${st.relay ?? "all relays"}`;
    case "wait-for-convergence":
      return `wait for ${st.group ?? "all groups"} to converge`;
    case "assert":
      return `assert on ${st.group}`;
    case "publish-key-package":
      return `${st.agent} publishes ${st.count ?? 1} KeyPackage(s)`;
    case "rotate-key-package":
      return `${st.agent} rotates its KeyPackage`;
    case "delete-key-package":
      return `${st.agent} deletes its KeyPackages`;
    case "set-group-image":
      return `${st.agent} ${st.clear ? "clears" : "sets"} ${st.group}'s image${st.clear ? "" : ` (v${st.version ?? 2})`}`;
    case "blossom-fault":
      return `Blossom fault ${st.fault}${st.fault === "heal" ? "" : ` on ${st.target ?? "latest"}`}`;
  }
}

interface Timer {
  sleep(ms: number): Promise<void>;
}

/** Runs scenarios. One instance per run. */
export class ScenarioRun {
  readonly history: History;
  private readonly scheduler: VirtualScheduler | undefined;
  private readonly clock: Clock;
  private readonly rng: Rng;
  private readonly gate = new IoGate();
  private readonly agents = new Map<string, Agent>();
  private readonly agentOrder: string[] = [];
  private readonly relays = new Map<string, RelayBackendHandle>();
  private readonly groups = new Map<string, string>(); // label → groupId
  private readonly pubkeys = new Map<string, string>();
  private readonly steps: StepResult[] = [];
  private readonly failures: string[] = [];
  private readonly notes: string[] = [];
  private readonly stepChecks: CheckResult[] = [];
  private readonly metrics: RunMetrics = { epochsOverTime: [], deliveryLatencyMs: [], commitCost: [], welcomeSizes: [], wallMs: 0, cpuMs: 0, peakRssBytes: 0 };
  private readonly processCost = new Map<string, { members: number; total: number; n: number }>();
  private readonly timer: Timer;
  private workDir: string | undefined;
  private blossom: BlossomServer | undefined;
  private readonly allowedErrors = new Map<string, { index: number; count: number; message: string }>();
  private ownWorkDir = false;
  /** Engine worker threads (RunOptions.workers), when the run uses them. */
  private pool: EngineWorkerPool | undefined;
  readonly seed: string;
  readonly simulated: boolean;

  constructor(
    readonly scenario: Scenario,
    private readonly opts: RunOptions = {},
  ) {
    this.seed = opts.seed ?? scenario.seed;
    this.simulated = !opts.relayUrls && scenario.relays.every((r) => (r.backend ?? "sim") === "sim");
    this.rng = createRng(this.seed);
    if (this.simulated) {
      const sched = new VirtualScheduler(Date.UTC(2026, 0, 1));
      this.scheduler = sched;
      this.clock = sched;
      this.timer = { sleep: (ms) => new Promise<void>((resolve) => sched.after(ms, () => resolve(), "sleep")) };
    } else {
      this.clock = { now: () => Date.now() };
      this.timer = { sleep: (ms) => new Promise<void>((resolve) => setTimeout(resolve, ms)) };
    }
    this.history = new History(this.clock);
  }

  // ------------------------------------------------------------------ driving

  private async yieldMacrotask(): Promise<void> {
    await new Promise<void>((resolve) => setImmediate(resolve));
  }

  /**
   * Await `p` while running the simulation: scheduler tasks run only while an agent is blocked
   * on a relay (the I/O gate is non-zero), one at a time, so the interleaving is deterministic.
   */
  private async drive<T>(p: Promise<T>): Promise<T> {
    let settled = false;
    let value: T | undefined;
    let error: unknown;
    let failed = false;
    p.then(
      (v) => {
        settled = true;
        value = v;
      },
      (e: unknown) => {
        settled = true;
        failed = true;
        error = e;
      },
    );
    let idle = 0;
    const done = p.then(
      () => undefined,
      () => undefined,
    );
    while (!settled) {
      if (this.scheduler && this.gate.waiting === 0) {
        // nobody waits on a relay: agents are computing (here, or on engine worker threads). Sleep until
        // the work ends or an agent starts waiting, rather than spinning a core the workers need.
        await Promise.race([done, this.gate.changed()]);
        continue;
      }
      if (this.scheduler && this.gate.waiting > 0 && this.scheduler.pending > 0) {
        await this.scheduler.runUntilIdle({ maxTasks: 1 });
        idle = 0;
      } else if (this.scheduler && this.gate.waiting > 0) {
        // blocked with nothing scheduled: let any transport promise settle, then give up eventually
        idle++;
        if (idle > 20000) throw new HarnessError("RUN_STALLED", "an agent waits on a relay but nothing is scheduled (simulation stalled)");
      } else if (!this.scheduler) {
        await new Promise<void>((resolve) => setTimeout(resolve, 2));
        continue;
      }
      await this.yieldMacrotask();
    }
    if (failed) throw error;
    return value as T;
  }

  /** Wall clock: poll until some agent has work (true) or `ms` pass without any (false). */
  private async waitForAgentWork(ms: number): Promise<boolean> {
    const until = Date.now() + ms;
    for (;;) {
      if (this.agentOrder.some((n) => (this.agents.get(n) as Agent).hasWork())) return true;
      if (Date.now() >= until) return false;
      await new Promise<void>((resolve) => setTimeout(resolve, 50));
    }
  }

  /** Deliver everything in flight and let agents process it, until nothing moves. */
  private async settle(untilMs?: number): Promise<void> {
    if (!this.scheduler) {
      // real relays: process work until no agent has had any for a quiet period
      for (;;) {
        const busy = this.agentOrder.map((n) => this.agents.get(n) as Agent).filter((a) => a.hasWork());
        if (busy.length > 0) await this.processBusy(busy);
        else if (!(await this.waitForAgentWork(WALL_SETTLE_QUIET_MS))) return;
      }
    }
    for (;;) {
      const busy = this.agentOrder.map((n) => this.agents.get(n) as Agent).filter((a) => a.hasWork());
      if (busy.length > 0) {
        await this.processBusy(busy);
        continue;
      }
      if (this.scheduler.pending === 0) {
        if (untilMs !== undefined) await this.scheduler.runUntilIdle({ untilMs });
        break;
      }
      const ran = await this.scheduler.runUntilIdle({ maxTasks: 1, ...(untilMs !== undefined ? { untilMs } : {}) });
      await this.yieldMacrotask();
      if (ran === 0) break;
    }
  }

  /**
   * Compute phase, then apply phase: every busy agent starts its engine work at once (in parallel
   * when engines live on worker threads), then each records and acts on its results in the
   * scenario's agent order, so the history does not depend on which engine finished first.
   */
  private async processBusy(busy: Agent[]): Promise<void> {
    for (const a of busy) a.prefetch?.();
    for (const a of busy) await this.drive(a.processInbox());
    this.pool?.check();
  }

  // ------------------------------------------------------------------ setup

  private agent(name: string): Agent {
    const a = this.agents.get(name);
    if (!a) throw new HarnessError("UNKNOWN_AGENT", `unknown agent "${name}"`);
    return a;
  }

  private group(label: string): string {
    const g = this.groups.get(label);
    if (!g) throw new HarnessError("UNKNOWN_GROUP", `group "${label}" was not created (did its create-group step fail?)`);
    return g;
  }

  private pk(name: string): string {
    const p = this.pubkeys.get(name);
    if (!p) throw new HarnessError("UNKNOWN_AGENT", `unknown agent "${name}"`);
    return p;
  }

  private async setup(): Promise<void> {
    const s = this.scenario;
    const relayFactory = this.opts.relayFactory ?? (await defaultRelayFactory());
    const env = { clock: this.clock, rng: this.rng.fork("relays"), history: this.history, ...(this.scheduler ? { scheduler: this.scheduler } : {}) };
    for (const [i, spec] of s.relays.entries()) {
      const url = this.opts.relayUrls?.[i];
      const eff = url ? { ...spec, backend: "ws" as const, url } : spec;
      this.relays.set(spec.name, await relayFactory(eff, env));
    }
    const engineFactory = this.opts.engineFactory ?? (await defaultEngineFactory());
    const engineAgents = s.agents.length;
    const workers = this.opts.engineFactory ? 0 : this.opts.workers === "auto" ? defaultWorkerCount(engineAgents) : (this.opts.workers ?? 0);
    if (workers > 0) {
      this.pool = await EngineWorkerPool.start(Math.min(workers, engineAgents), this.opts.workerHangMs !== undefined ? { hangTimeoutMs: this.opts.workerHangMs } : {});
      this.notes.push(`engines on ${this.pool.size} worker thread(s)`);
      this.opts.onWorkerPool?.(this.pool);
    }
    if (s.agents.some((a) => a.storage === "file")) {
      if (this.opts.workDir) this.workDir = this.opts.workDir;
      else {
        this.workDir = await mkdtemp(join(tmpdir(), "marmot-harness-run-"));
        this.ownWorkDir = true;
      }
    }
    if (needsBlossom(s) && !this.opts.blossomUrl) {
      // a Blossom server on 127.0.0.1 for MIP-04 attachments, stopped at teardown
      const { BlossomServer } = await import("../blossom/server.ts");
      const server = new BlossomServer({ host: "127.0.0.1", port: 0 });
      await server.start();
      this.blossom = server;
    }
    const ctx: AgentContext = {
      ...(this.blossom ? { blossomUrl: this.blossom.url } : this.opts.blossomUrl && needsBlossom(s) ? { blossomUrl: this.opts.blossomUrl } : {}),
      history: this.history,
      clock: this.clock,
      gate: this.gate,
      sleep: (ms) => this.timer.sleep(ms),
      connect: (url, agentName) => {
        const r = [...this.relays.values()].find((x) => x.url === url);
        if (!r) throw new HarnessError("UNKNOWN_RELAY", `no relay at ${url}`);
        return r.connect(agentName);
      },
      recordedKeys: new Set(),
      ...(this.pool ? {} : { serialCompute: serialQueue() }),
      metrics: {
        commitCreated: (m) => this.metrics.commitCost.push({ members: m.members, createMs: round(m.createMs) }),
        commitProcessed: (m) => {
          const c = this.processCost.get(m.eventId) ?? { members: m.members, total: 0, n: 0 };
          c.total += m.processMs;
          c.n++;
          this.processCost.set(m.eventId, c);
        },
      },
    };
    for (const spec of s.agents) {
      const arng = this.rng.fork(`agent:${spec.name}`);
      const secretKey = arng.bytes(32);
      const storage = spec.storage === "file" ? new FileStorage(join(this.workDir as string, spec.name)) : new MemoryStorage();
      const engineRng = arng.fork("engine");
      const relayUrls = spec.relays.map((r) => (this.relays.get(r) as RelayBackendHandle).url);
      const custom = this.opts.agentFactory?.(spec, ctx, {
        secretKey,
        relays: relayUrls,
        profile: spec.profile ?? s.profile ?? DEFAULT_PROFILE,
        quirks: spec.quirks ?? [],
        seed: `${this.seed}/${spec.name}`,
        ...(spec.catchUp ? { catchUp: spec.catchUp } : {}),
        ...(spec.selfUpdateAfterJoin === false ? { selfUpdateAfterJoin: false } : {}),
      });
      if (custom) {
        this.agents.set(spec.name, custom);
        this.agentOrder.push(spec.name);
        this.pubkeys.set(spec.name, custom.pubkey);
        continue;
      }
      const agent = new EngineAgent(ctx, {
        name: spec.name,
        secretKey,
        relays: spec.relays.map((r) => (this.relays.get(r) as RelayBackendHandle).url),
        engineFactory: this.pool
          ? this.pool.factoryFor(spec.name, spec.storage === "file" ? { kind: "file", dir: join(this.workDir as string, spec.name) } : { kind: "memory" }, engineRng.seed)
          : engineFactory,
        storage,
        durable: true,
        profile: spec.profile ?? s.profile ?? DEFAULT_PROFILE,
        quirks: spec.quirks ?? [],
        ...(spec.catchUp ? { catchUp: spec.catchUp } : {}),
        randomBytes: (n) => engineRng.bytes(n),
        ...(spec.outOfBandRatchetTree ? { outOfBandRatchetTree: true } : {}),
        ...(spec.selfUpdateAfterJoin === false ? { selfUpdateAfterJoin: false } : {}),
      });
      this.agents.set(spec.name, agent);
      this.agentOrder.push(spec.name);
      this.pubkeys.set(spec.name, agent.pubkey);
    }
  }

  /** Refuse before step 0 when an agent or relay cannot do what the scenario asks. */
  private checkCapabilities(): string[] {
    const need = requiredCapabilities(this.scenario);
    const problems: string[] = [];
    for (const [name, caps] of need.agents) {
      const have = new Set((this.agents.get(name) as Agent).capabilities());
      for (const c of caps) if (!have.has(c)) problems.push(`agent ${name} cannot do "${c}"`);
    }
    for (const [name, caps] of need.relays) {
      const r = this.relays.get(name) as RelayBackendHandle;
      const have = new Set(r.capabilities());
      for (const c of caps) if (!have.has(c)) problems.push(`relay ${name} (${r.backend} ${r.url}) cannot do "${c}"`);
    }
    if (!this.blossom && this.scenario.steps.some((st) => st.type === "blossom-fault")) problems.push(`the Blossom server ${this.opts.blossomUrl ?? ""} cannot take faults (blossom-fault steps need the harness's own)`);
    return problems;
  }

  // ------------------------------------------------------------------ steps

  private async execute(st: Step, index: number): Promise<string | undefined> {
    switch (st.type) {
      case "create-group": {
        const a = this.agent(st.agent);
        const relays = (st.relays ?? this.scenario.agents.find((x) => x.name === st.agent)?.relays ?? []).map((r) => (this.relays.get(r) as RelayBackendHandle).url);
        const admins = [...new Set([st.agent, ...(st.admins ?? [])])].map((n) => this.pk(n));
        const view = await this.drive(a.createGroup({ name: st.name ?? st.group, adminPubkeys: admins, relays }));
        this.groups.set(st.group, view.groupId);
        this.history.record("runner", "info", "group", { label: st.group, groupId: view.groupId, nostrGroupId: view.nostrGroupId, creator: st.agent });
        return undefined;
      }
      case "invite": {
        const rep = await this.drive(this.agent(st.agent).invite(this.group(st.group), st.members.map((m) => this.pk(m))));
        this.noteCommit(rep);
        await this.settle();
        await this.deliverTrees(rep);
        return `epoch ${rep.epoch}${rep.welcomeRumorBytes.length ? `, Welcome rumor ${Math.max(...rep.welcomeRumorBytes)} B` : ""}`;
      }
      case "remove": {
        const rep = await this.drive(this.agent(st.agent).remove(this.group(st.group), st.members.map((m) => this.pk(m))));
        this.noteCommit(rep);
        return `epoch ${rep.epoch}`;
      }
      case "self-update": {
        const rep = await this.drive(this.agent(st.agent).selfUpdate(this.group(st.group)));
        this.noteCommit(rep);
        return `epoch ${rep.epoch}`;
      }
      case "update-group-data": {
        const patch: { name?: string; description?: string; adminPubkeys?: string[] } = {};
        if (st.name !== undefined) patch.name = st.name;
        if (st.groupDescription !== undefined) patch.description = st.groupDescription;
        if (st.admins) patch.adminPubkeys = st.admins.map((n) => this.pk(n));
        const rep = await this.drive(this.agent(st.agent).updateGroupData(this.group(st.group), patch));
        this.noteCommit(rep);
        return `epoch ${rep.epoch}`;
      }
      case "leave": {
        const gid = this.group(st.group);
        await this.drive(this.agent(st.agent).leave(gid));
        await this.settle();
        const committer = st.committer ?? (await this.pickCommitter(gid, st.agent));
        if (!committer) throw new HarnessError("NO_COMMITTER", `nobody online can commit ${st.agent}'s SelfRemove in ${st.group}`);
        const rep = await this.drive(this.agent(committer).commitPendingProposals(gid));
        if (!rep) throw new HarnessError("NO_PENDING_PROPOSAL", `${committer} had no pending proposal to commit after ${st.agent} left ${st.group}`);
        this.noteCommit(rep);
        return `committed by ${committer}, epoch ${rep.epoch}`;
      }
      case "send": {
        const count = st.count ?? 1;
        const gid = this.group(st.group);
        for (let i = 0; i < count; i++) {
          const text = count > 1 ? `${st.text ?? ""} #${i + 1}` : (st.text ?? "");
          await this.drive(this.agent(st.agent).send(gid, { kind: st.kind ?? 9, content: text, ...(st.spoofAuthor ? { spoofAuthor: this.pk(st.spoofAuthor) } : {}), ...(st.media ? { media: st.media } : {}) }));
        }
        return undefined;
      }
      case "offline":
        await this.drive(this.agent(st.agent).goOffline());
        return undefined;
      case "online": {
        const from = this.history.length;
        const rep = await this.drive(this.agent(st.agent).goOnline(st.catchUp));
        return `caught up ${rep.events} event(s) from ${rep.eoseFrom.length} relay(s)${rep.complete ? "" : " (incomplete)"}${await this.lossReport(st.agent, from)}`;
      }
      case "restart": {
        const rep = await this.drive(this.agent(st.agent).restart());
        return `restarted; caught up ${rep.events} event(s)`;
      }
      case "advance-time":
        if (this.scheduler) await this.settle(this.clock.now() + st.ms);
        else await new Promise<void>((resolve) => setTimeout(resolve, st.ms));
        return undefined;
      case "fault": {
        const targets = st.relay ? [st.relay] : [...this.relays.keys()];
        for (const t of targets) {
          const r = this.relays.get(t) as RelayBackendHandle;
          if (!r.fault) throw new ScenarioRefusedError("RELAY_NO_FAULTS", `relay ${t} cannot take faults`);
          r.fault(st.fault, { ...(st.params ?? {}) });
        }
        return undefined;
      }
      case "wait-for-convergence": {
        const deadline = this.clock.now() + (st.timeoutMs ?? 60_000);
        for (;;) {
          await this.settle();
          const label = `wait@${index}`;
          await this.recordStates(label, st.group ? [this.group(st.group)] : undefined);
          const res = checkConvergence(this.history.entries, { label });
          if (res.verdict !== "fail") return res.message;
          if (this.clock.now() >= deadline) throw new HarnessError("NOT_CONVERGED", res.message);
          if (!this.scheduler) {
            // wall clock (real relays): events may still be on their way; wait while any arrives
            const quietMs = Math.min(WALL_CONVERGENCE_QUIET_MS, deadline - this.clock.now());
            if (!(await this.waitForAgentWork(quietMs))) throw new HarnessError("NOT_CONVERGED", `${res.message} (nothing arrived for ${quietMs} ms)`);
            continue;
          }
          // nothing in flight: waiting longer cannot change anything
          if (this.scheduler.pending === 0) throw new HarnessError("NOT_CONVERGED", res.message);
          await this.settle(Math.min(deadline, this.clock.now() + 1000));
        }
      }
      case "assert":
        return this.assert(st, index);
      case "publish-key-package": {
        const ids = await this.drive(this.agent(st.agent).publishKeyPackages(st.count ?? 1, st.lastResort ?? true));
        return `${ids.length} published`;
      }
      case "rotate-key-package":
        await this.drive(this.agent(st.agent).rotateKeyPackage());
        return undefined;
      case "delete-key-package": {
        const ids = await this.drive(this.agent(st.agent).deleteKeyPackages());
        return `${ids.length} deletion(s)`;
      }
      case "set-group-image": {
        const a = this.agent(st.agent);
        if (!a.setGroupImage) throw new ScenarioRefusedError("AGENT_NO_GROUP_IMAGE", `agent ${st.agent} cannot set a group image`);
        const rep = await this.drive(a.setGroupImage(this.group(st.group), { bytes: st.bytes ?? 2048, version: st.version ?? 2, ...(st.clear ? { clear: true } : {}) }));
        this.noteCommit(rep);
        return `epoch ${rep.epoch}, ${rep.imageHash ? `image ${rep.imageHash.slice(0, 12)}…` : "image cleared"}${rep.deletedBy ? `; old blob deleted by ${rep.deletedBy.slice(0, 12)}…` : ""}`;
      }
      case "blossom-fault":
        if (!this.blossom) throw new ScenarioRefusedError("NO_BLOSSOM", "this run has no Blossom server");
        return applyBlossomFault(this.blossom, this.history, st);
    }
  }

  /** Hand out-of-band ratchet trees (labelled non-MIP option) to their invitees. */
  private async deliverTrees(rep: CommitReport): Promise<void> {
    for (const [pubkey, tree] of Object.entries(rep.outOfBandTrees ?? {})) {
      const name = this.nameOf(pubkey);
      const a = this.agents.get(name);
      if (!a) continue;
      this.history.record("runner", "info", "oob-tree", { to: name, bytes: tree.length / 2, label: "non-MIP extension: ratchet tree delivered out of band" });
      await this.drive(a.provideOutOfBandTree(tree));
    }
  }

  /** After a catch-up: what the agent could not use, and what relays evicted (retention). */
  private async lossReport(agent: string, fromSeq: number): Promise<string> {
    const since = this.history.entries.slice(fromSeq);
    const deferred = since.filter((e) => e.actor === agent && e.op === "process" && e.data.outcome === "deferred").length;
    const rejected = since.filter((e) => e.actor === agent && e.op === "reject").length;
    const evicted = this.history.entries.filter((e) => e.op === "fault" && e.data.fault === "retention.hit").length;
    if (deferred === 0 && rejected === 0) return "";
    const behind: string[] = [];
    for (const [label, gid] of this.groups) {
      const mine = await this.drive(this.agent(agent).groupView(gid));
      const others = findLast(this.history.entries, (e) => e.op === "epoch" && e.data.groupId === gid && e.actor !== agent);
      if (mine && others && mine.active && mine.epoch < Number(others.data.epoch)) behind.push(`${label} at epoch ${mine.epoch} while others reached ${Number(others.data.epoch)}`);
    }
    const msg = `; LOST: ${deferred} event(s) unusable (missing earlier commits), ${rejected} rejected${evicted ? `, ${evicted} event(s) evicted by relay retention` : ""}${behind.length ? `; ${agent} is stuck: ${behind.join(", ")}` : ""}`;
    this.notes.push(`${agent} catch-up${msg}`);
    return msg;
  }

  private noteCommit(rep: CommitReport): void {
    void rep;
  }

  private async pickCommitter(groupId: string, leaver: string): Promise<string | undefined> {
    for (const name of this.agentOrder) {
      if (name === leaver) continue;
      const a = this.agent(name);
      if (!a.isOnline()) continue;
      const v = await this.drive(a.groupView(groupId));
      if (v?.active && v.admins.includes(a.pubkey)) return name;
    }
    return undefined;
  }

  private async recordStates(label: string, groupIds?: string[]): Promise<void> {
    for (const name of this.agentOrder) {
      const a = this.agent(name);
      const views = await this.drive(a.groups());
      for (const v of views) {
        if (groupIds && !groupIds.includes(v.groupId)) continue;
        const full = v.active ? ((await this.drive(a.groupView(v.groupId))) as AgentGroupView) : v;
        this.history.record(name, "info", "state", { label, groupId: v.groupId, nostrGroupId: v.nostrGroupId, epoch: v.epoch, members: v.members, epochCommitment: full.epochCommitment, active: v.active, online: a.isOnline() });
      }
    }
  }

  private async assert(st: Extract<Step, { type: "assert" }>, index: number): Promise<string> {
    const gid = this.group(st.group);
    const problems: string[] = [];
    const names = st.agents ?? (await this.onlineMembers(gid));
    for (const n of names) {
      const v = await this.drive(this.agent(n).groupView(gid));
      if (!v || !v.active) {
        problems.push(`${n} is not an active member`);
        continue;
      }
      if (st.epoch !== undefined && v.epoch !== st.epoch) problems.push(`${n} is at epoch ${v.epoch}, expected ${st.epoch}`);
      if (typeof st.members === "number" && v.members.length !== st.members) problems.push(`${n} sees ${v.members.length} members, expected ${st.members}`);
      if (Array.isArray(st.members)) {
        const want = st.members.map((m) => this.pk(m)).sort();
        if (want.join() !== v.members.join()) problems.push(`${n} sees members [${v.members.map((p) => this.nameOf(p)).join(", ")}], expected [${st.members.join(", ")}]`);
      }
    }
    for (const n of st.notMembers ?? []) {
      const pk = this.pk(n);
      for (const m of names) {
        const v = await this.drive(this.agent(m).groupView(gid));
        if (v?.members.includes(pk)) problems.push(`${m} still lists ${n} as a member`);
      }
    }
    for (const [n, want] of Object.entries(st.messagesReceived ?? {})) {
      const got = this.history.entries.filter((e) => e.actor === n && e.op === "decrypt" && e.type === "ok" && e.data.groupId === gid).length;
      if (got < want) problems.push(`${n} decrypted ${got} message(s) in ${st.group}, expected at least ${want}`);
    }
    if (st.cannotDecrypt && st.cannotDecrypt.length > 0) {
      const res = await this.probe(gid, st.cannotDecrypt, "assert");
      if (res.leaked.length > 0) problems.push(`${res.leaked.join(", ")} could decrypt`);
      if (res.fed === 0) problems.push("no application message to probe with");
    }
    if (hasMediaAssertions(st)) problems.push(...(await checkMediaAssertions(st, { history: this.history, blossomUrl: this.blossom?.url ?? this.opts.blossomUrl, groupId: gid, agent: (n) => this.agent(n), drive: (p) => this.drive(p) })));
    const ok = problems.length === 0;
    // an assert step that expects ASSERTION_FAILED (or any error) passes its check when it fails
    const expected = !ok && (st.expectError === "*" || st.expectError === "ASSERTION_FAILED");
    const result: CheckResult = {
      name: `assert:${index}`,
      verdict: ok || expected ? "pass" : "fail",
      message: ok ? `step ${index}: assertion holds for ${names.length} agent(s)` : `step ${index}: ${expected ? "failed as expected: " : ""}${problems.join("; ")}`,
    };
    this.stepChecks.push(result);
    if (!ok) throw new HarnessError("ASSERTION_FAILED", problems.join("; "));
    return result.message;
  }

  private nameOf(pubkey: string): string {
    for (const [n, p] of this.pubkeys) if (p === pubkey) return n;
    return pubkey.slice(0, 12);
  }

  private async onlineMembers(groupId: string): Promise<string[]> {
    const out: string[] = [];
    for (const n of this.agentOrder) {
      const a = this.agent(n);
      if (!a.isOnline()) continue;
      const v = await this.drive(a.groupView(groupId));
      if (v?.active) out.push(n);
    }
    return out;
  }

  /**
   * Active secrecy probe: feed `who` the group's application events they must not read (for a
   * removed member: those after its removal; for a joiner: those before its join; for an
   * assertion: the latest ones) and record what each made of them.
   */
  private async probe(groupId: string, who: string[], kind: "assert" | "removed" | "joiner", limit = 10): Promise<{ fed: number; leaked: string[] }> {
    const entries = this.history.entries;
    const sends = entries.filter((e) => e.op === "send" && e.type === "ok" && e.data.groupId === groupId);
    let fed = 0;
    const leaked: string[] = [];
    for (const n of who) {
      const pk = this.pk(n);
      let pick = sends;
      if (kind === "removed") {
        const removedIdx = findLastIndex(entries, (e) => e.actor === n && e.op === "removed" && e.data.groupId === groupId);
        pick = sends.filter((s) => s.seq > (entries[removedIdx]?.seq ?? Infinity));
      } else if (kind === "joiner") {
        const joinIdx = entries.findIndex((e) => e.actor === n && e.op === "welcome" && e.data.groupId === groupId);
        pick = sends.filter((s) => s.seq < (entries[joinIdx]?.seq ?? -1));
      } else {
        pick = sends.filter((s) => !((s.data.expectedRecipients as string[]) ?? []).includes(pk) && s.actor !== n);
      }
      const events = pick
        .slice(-limit)
        .map((s) => this.history.event(String(s.data.eventId)))
        .filter((e) => e !== undefined);
      if (events.length === 0) continue;
      const outcomes = await this.drive(this.agent(n).probe(events));
      for (const o of outcomes) {
        fed++;
        this.history.record(n, o.outcome === "application" ? "fail" : "ok", "probe", { probe: kind, groupId, eventId: o.eventId, expect: "not-decrypted", outcome: o.outcome, code: o.code });
        if (o.outcome === "application" && !leaked.includes(n)) leaked.push(n);
      }
    }
    return { fed, leaked };
  }

  /** After the steps: probe every removed member and every late joiner of every group. */
  private async probeSecrecy(): Promise<void> {
    const entries = this.history.entries;
    for (const [, gid] of this.groups) {
      const removed = [...new Set(entries.filter((e) => e.op === "removed" && e.data.groupId === gid).map((e) => e.actor))];
      const joiners = [...new Set(entries.filter((e) => e.op === "welcome" && e.type === "ok" && e.data.groupId === gid).map((e) => e.actor))];
      const stillRemoved = removed.filter((n) => {
        const lastRemoved = findLastIndex(entries, (e) => e.actor === n && e.op === "removed" && e.data.groupId === gid);
        const lastWelcome = findLastIndex(entries, (e) => e.actor === n && e.op === "welcome" && e.data.groupId === gid);
        return lastRemoved > lastWelcome;
      });
      if (stillRemoved.length) await this.probe(gid, stillRemoved, "removed", 5);
      if (joiners.length) await this.probe(gid, joiners.slice(0, 10), "joiner", 5);
    }
  }

  // ------------------------------------------------------------------ run

  private replayCommand(): string {
    const cmd = this.opts.command ?? "marmot-harness";
    return `${cmd} run ${this.opts.catalogueName ?? this.scenario.name} --seed ${this.seed}${this.opts.replayFlags ? ` ${this.opts.replayFlags}` : ""}`;
  }

  async run(): Promise<RunOutcome> {
    const wall0 = performance.now();
    const cpu0 = process.cpuUsage();
    let peakRss = process.memoryUsage().rss;
    const rssTimer = setInterval(() => {
      peakRss = Math.max(peakRss, process.memoryUsage().rss);
    }, 200);
    rssTimer.unref();
    const s = this.scenario;
    const checks: CheckResult[] = [];
    let verdict: Verdict = "pass";
    let compliance: ComplianceSummary | undefined;
    try {
      this.history.record("runner", "invoke", "run", { scenario: s.name, seed: this.seed, profile: s.profile ?? DEFAULT_PROFILE, params: s.params ?? {} });
      const profile = s.profile ?? DEFAULT_PROFILE;
      if (s.profiles && !s.profiles.includes(profile)) {
        const reason = `not applicable under ${profile}: the story applies to ${s.profiles.join(", ")} only${s.profileReason ? ` (${s.profileReason})` : ""}`;
        this.history.record("runner", "info", "not-applicable", { profile, profiles: s.profiles, reason });
        this.notes.push(reason);
        return this.finish("not-applicable", checks, undefined, wall0, cpu0, peakRss, rssTimer);
      }
      await this.setup();
      const problems = this.checkCapabilities();
      if (problems.length > 0) {
        const msg = `refused before step 0: ${problems.join("; ")}`;
        this.history.record("runner", "fail", "run", { refused: problems });
        this.failures.push(msg);
        return this.finish("refused", checks, undefined, wall0, cpu0, peakRss, rssTimer);
      }
      for (const name of this.agentOrder) {
        const spec = s.agents.find((a) => a.name === name);
        const a = this.agent(name);
        await this.drive(a.start());
        this.pubkeys.set(name, a.pubkey); // out-of-process peers may learn their identity on start
        const n = spec?.keyPackages ?? 1;
        if (n > 0) await this.drive(a.publishKeyPackages(n, spec?.lastResort ?? true)).catch((e: unknown) => this.notes.push(`${name}: initial KeyPackage publication failed: ${describeError(e)}`));
      }
      await this.settle();
      for (const [i, st] of s.steps.entries()) {
        const description = stepDescription(st);
        this.opts.onStep?.(i, s.steps.length, description);
        const startedAt = this.clock.now();
        this.history.record("runner", "invoke", "step", { index: i, type: st.type, description });
        let v: Verdict = "pass";
        let message: string | undefined;
        try {
          message = await this.execute(st, i);
          if (st.expectError) {
            v = "fail";
            message = `expected error ${st.expectError} but the step succeeded`;
          }
        } catch (e) {
          const code = isHarnessError(e) ? e.code : "ERROR";
          if (st.expectError && (st.expectError === "*" || st.expectError === code)) {
            message = `failed as expected: ${describeError(e)}`;
          } else if (st.allowError && (st.allowError === "*" || st.allowError === code)) {
            message = `failed (allowed): ${describeError(e)}`;
            const same = this.allowedErrors.get(code);
            if (same) same.count++;
            else {
              const note = { index: i, count: 1, message: describeError(e) };
              this.allowedErrors.set(code, note);
            }
            this.history.record("runner", "info", "allowed-error", { index: i, code, message: describeError(e), details: isHarnessError(e) ? e.details : {} });
          } else {
            v = "fail";
            message = describeError(e);
          }
        }
        if (st.settle !== false) await this.settle();
        this.history.record("runner", v === "pass" ? "ok" : "fail", "step", { index: i, type: st.type, description, message });
        this.steps.push({ index: i, type: st.type, description, verdict: v, startedAt, endedAt: this.clock.now(), ...(message ? { message } : {}) });
        if (v !== "pass") {
          verdict = "fail";
          this.failures.push(`step ${i} (${st.type}): ${message}`);
        }
        this.trackEpochs();
        this.pool?.check();
      }
      await this.settle();
      await this.probeSecrecy();
      await this.recordStates("final");
      const inv = runInvariants(this.history.entries, {
        ...(s.checks?.convergence === false ? { convergence: false } : {}),
        ...(s.checks?.delivery === false ? { delivery: false } : {}),
        ...(s.checks?.secrecy === false ? { secrecy: false } : {}),
        ...(s.checks?.metadata === false ? { metadata: false } : {}),
        excusedDelivery: s.checks?.excusedDelivery ?? [],
      });
      checks.push(...inv, ...this.stepChecks);
      if (this.opts.compliance !== false && s.checks?.compliance !== false) {
        const judged = await judgeCompliance(this.history, s.profile ?? DEFAULT_PROFILE);
        if (judged) {
          compliance = judged.summary;
          checks.push(judged.check);
        }
      }
      for (const c of checks) {
        if (c.verdict === "fail" || c.verdict === "error") {
          verdict = "fail";
          this.failures.push(`${c.name}: ${c.message}`);
        }
      }
      return this.finish(verdict, checks, compliance, wall0, cpu0, peakRss, rssTimer);
    } catch (e) {
      this.failures.push(`runner error: ${describeError(e)}`);
      this.history.record("runner", "fail", "run", { error: describeError(e), code: isHarnessError(e) ? e.code : "ERROR" });
      return this.finish("error", checks, compliance, wall0, cpu0, peakRss, rssTimer);
    } finally {
      clearInterval(rssTimer);
      await this.teardown();
    }
  }

  private trackEpochs(): void {
    for (const [label, gid] of this.groups) {
      const last = findLast(this.history.entries, (e) => e.op === "epoch" && e.data.groupId === gid);
      if (last) {
        const epoch = Number(last.data.epoch);
        const prev = findLast(this.metrics.epochsOverTime, (x) => x.group === label);
        if (!prev || prev.epoch !== epoch) this.metrics.epochsOverTime.push({ t: this.clock.now(), group: label, epoch });
      }
    }
  }

  private finish(verdict: Verdict, checks: CheckResult[], compliance: ComplianceSummary | undefined, wall0: number, cpu0: NodeJS.CpuUsage, peakRss: number, rssTimer: NodeJS.Timeout): RunOutcome {
    clearInterval(rssTimer);
    const cpu = process.cpuUsage(cpu0);
    this.metrics.wallMs = round(performance.now() - wall0);
    this.metrics.cpuMs = round((cpu.user + cpu.system) / 1000);
    this.metrics.peakRssBytes = Math.max(peakRss, process.memoryUsage().rss);
    this.fillLatencies();
    for (const c of this.metrics.commitCost) void c;
    // per-member processing cost: attach to commit-cost rows in order
    const proc = [...this.processCost.values()];
    proc.forEach((p, i) => {
      const row = this.metrics.commitCost[i];
      if (row && p.n > 0) row.processMsPerMember = round(p.total / p.n);
    });
    this.fillWelcomeSizes();
    for (const [code, a] of this.allowedErrors) this.notes.push(`${a.count} step(s) failed as allowed with ${code}, first at step ${a.index}: ${a.message}`);
    this.noteWelcomeWall();
    this.history.record("runner", verdict === "pass" ? "ok" : "fail", "run", { verdict, failures: this.failures.length });
    const expected = this.scenario.expect ?? "pass";
    let ok = verdict === expected;
    if (expected === "fail" && verdict === "fail" && this.scenario.expectFailureOf?.length) {
      const failed = new Set([...checks.filter((c) => c.verdict === "fail").map((c) => c.name), ...this.steps.filter((x) => x.verdict === "fail").map((x) => `step:${x.type}`)]);
      ok = this.scenario.expectFailureOf.some((n) => failed.has(n));
      if (!ok) this.notes.push(`expected a failure of ${this.scenario.expectFailureOf.join(" or ")}, got failures of ${[...failed].join(", ")}`);
    }
    if (expected === "fail" && verdict === "error") ok = false;
    // neither passed nor failed: the story does not apply (e.g. an R1-only story under R0)
    if (verdict === "not-applicable") ok = true;
    if (expected === "fail" && verdict !== "not-applicable" && this.scenario.expectReason) this.notes.push(`expected to fail: ${this.scenario.expectReason}`);
    const result: ScenarioResult = {
      scenario: this.opts.catalogueName ?? this.scenario.name,
      description: this.scenario.description,
      seed: this.seed,
      profile: this.scenario.profile ?? DEFAULT_PROFILE,
      relayBackend: [...new Set([...this.relays.values()].map((r) => r.backend))].join("+") || (this.simulated ? "sim" : "ws"),
      verdict,
      expected,
      ok,
      steps: this.steps,
      checks,
      ...(compliance ? { compliance } : {}),
      metrics: this.metrics,
      failures: this.failures,
      replayCommand: this.replayCommand(),
      notes: this.notes,
    };
    return { result, history: this.history, scenario: this.scenario };
  }

  private fillLatencies(): void {
    const sentAt = new Map<string, number>();
    for (const e of this.history.entries) {
      if (e.op === "publish" && e.type === "invoke" && e.data.purpose === "application") sentAt.set(String(e.data.eventId), e.t);
      if (e.op === "decrypt" && e.type === "ok") {
        const t0 = sentAt.get(String(e.data.eventId));
        if (t0 !== undefined) this.metrics.deliveryLatencyMs.push(e.t - t0);
      }
    }
  }

  private fillWelcomeSizes(): void {
    const entries = this.history.entries;
    for (const e of entries) {
      if (e.op !== "commit" || e.type !== "ok" || e.data.action !== "invite") continue;
      const wrapSizes: number[] = [];
      let members = 0;
      for (let i = e.seq + 1; i < entries.length; i++) {
        const x = entries[i] as (typeof entries)[number];
        if (x.actor !== e.actor) continue;
        if (x.op === "commit" && x.type === "invoke") break;
        if (x.op === "epoch" && x.data.groupId === e.data.groupId && !members) members = Array.isArray(x.data.members) ? x.data.members.length : 0;
        if (x.op === "publish" && x.type === "invoke" && x.data.purpose === "welcome") {
          const evt = this.history.event(String(x.data.eventId));
          if (evt) wrapSizes.push(JSON.stringify(evt).length);
        }
      }
      if (wrapSizes.length > 0) this.metrics.welcomeSizes?.push({ members, rumorBytes: Number(e.data.welcomeSealBytes ?? 0), wrapBytes: Math.max(...wrapSizes) });
    }
  }

  /** Where spec-compliant Welcomes stopped fitting a gift wrap, when an invite was refused for size. */
  private noteWelcomeWall(): void {
    const refused = this.history.entries.find((e) => e.op === "commit" && e.type === "fail" && e.data.code === "WELCOME_TOO_LARGE");
    const sizes = (this.metrics.welcomeSizes ?? []).filter((w) => w.members > 0);
    const largest = sizes.reduce<(typeof sizes)[number] | undefined>((m, w) => (!m || w.members > m.members ? w : m), undefined);
    if (!refused && !largest) return;
    const refusal = refused ? ` First refusal: ${String(refused.data.message).replace(/^WELCOME_TOO_LARGE: /, "")}.` : " No invite was refused for size.";
    const fit = largest ? `Largest group whose Welcome fit a gift wrap: ${largest.members} members (seal content ${largest.rumorBytes} B, gift wrap event ${largest.wrapBytes ?? "?"} B).` : "";
    if (refused || this.scenario.name === "welcome-size-limit") this.notes.push(`${fit}${refusal}`);
  }

  private async teardown(): Promise<void> {
    for (const a of this.agents.values()) {
      try {
        await a.stop();
      } catch {
        /* already stopped */
      }
    }
    for (const r of this.relays.values()) {
      try {
        await r.close();
      } catch {
        /* already closed */
      }
    }
    if (this.blossom) await this.blossom.stop();
    if (this.pool) {
      if (process.env.MARMOT_WORKER_STATS === "1") console.error(JSON.stringify(Object.fromEntries(this.pool.stats)));
      await this.pool.close();
    }
    if (this.ownWorkDir && this.workDir) await rm(this.workDir, { recursive: true, force: true });
  }
}

function findLastIndex<T>(list: readonly T[], pred: (x: T) => boolean): number {
  for (let i = list.length - 1; i >= 0; i--) if (pred(list[i] as T)) return i;
  return -1;
}

function findLast<T>(list: readonly T[], pred: (x: T) => boolean): T | undefined {
  const i = findLastIndex(list, pred);
  return i >= 0 ? list[i] : undefined;
}

/** Runs async work one piece at a time, in the order it was handed in. */
function serialQueue(): <T>(work: () => Promise<T>) => Promise<T> {
  let tail: Promise<unknown> = Promise.resolve();
  return <T>(work: () => Promise<T>): Promise<T> => {
    const next = tail.then(work, work);
    tail = next.catch(() => undefined);
    return next;
  };
}

function round(x: number): number {
  return Math.round(x * 100) / 100;
}

/** Run the compliance checker (another engineer's module) over the run's traffic, white-box. */
async function judgeCompliance(history: History, profile: ProtocolProfile): Promise<{ summary: ComplianceSummary; check: CheckResult } | undefined> {
  let mod: typeof import("../checkers/compliance/index.ts");
  try {
    mod = await import("../checkers/compliance/index.ts");
  } catch {
    return undefined;
  }
  try {
    const keyring = mod.parseKeyring(historyToKeyring(history.entries), "run keyring");
    const report = await mod.judge(historyToCapture(history.entries), { profile, keyring, verifySignatures: false });
    const summary = mod.toComplianceSummary(report);
    const must = report.findings.filter((f) => f.verdict === "fail" && f.level !== "SHOULD");
    return {
      summary,
      check: {
        name: "compliance",
        verdict: must.length > 0 ? "fail" : "pass",
        message:
          must.length > 0
            ? `${must.length} MUST rule failure(s): ${must
                .slice(0, 3)
                .map((f) => `${f.ruleId} ${f.message}`)
                .join("; ")}`
            : `no MUST failures under ${report.profile} (${report.advisoryFailures} SHOULD finding(s), ${report.counts.pass ?? 0} rule(s) passed)`,
        subjects: must.flatMap((f) => f.eventIds).slice(0, 20),
      },
    };
  } catch (e) {
    return { summary: { profile: "unknown", counts: {}, failures: [] }, check: { name: "compliance", verdict: "error", message: `compliance checker failed: ${describeError(e)}` } };
  }
}

/** Validate and run a scenario. */
export async function runScenario(scenario: Scenario | unknown, opts: RunOptions = {}): Promise<RunOutcome> {
  const s = validateScenario(scenario, typeof scenario === "object" && scenario && "name" in scenario ? `scenario "${String((scenario as { name: unknown }).name)}"` : "scenario");
  return new ScenarioRun(s, opts).run();
}

export { AgentError };
