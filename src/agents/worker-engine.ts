/**
 * Engines on worker threads. `EngineWorkerPool` starts N workers (engine-host.ts); each hosts the
 * engines (and stores) of several agents, assigned round-robin in the order agents are created.
 * `WorkerEngine` is the main-thread proxy: it implements `MarmotEngine`, forwards every async call
 * to its worker and answers the synchronous queries from a mirror of the engine's group summaries
 * that every reply refreshes:
 *
 * - `group()` / `groups()`: the mirror (as of the last reply; in-process the engine's state can only
 *   change during an awaited call as well, so an agent sees the same thing);
 * - `abandonCommit()`: posted without waiting (the worker keeps each engine's calls in order);
 * - `keyPackageRelayList()` / `deleteKeyPackage()`: signed on the main thread with the same builders
 *   the engine uses (they need only the secret key);
 * - `inspect()`: the inspection crosses as data; its `exporter()` is a further call.
 *
 * A worker that dies (uncaught error, out of memory, exit) fails every waiting call with an
 * `EngineWorkerError` (code ENGINE_WORKER_CRASHED) naming the agent, and the pool keeps the first
 * such failure for the runner, which ends the run with it. A worker that hangs (calls waiting and no
 * reply for `hangTimeoutMs`, default 120 s: no engine call takes more than a few seconds, even at 150
 * members on a loaded machine) is terminated and reported the same way with code ENGINE_WORKER_HUNG.
 */
import { availableParallelism } from "node:os";
import { Worker } from "node:worker_threads";
import { bytesToHex } from "@noble/hashes/utils.js";
import { getPublicKey } from "nostr-tools/pure";
import type {
  CommitConfirmation,
  CreateGroupOptions,
  EngineOptions,
  GroupInspection,
  GroupSummary,
  Hex,
  InnerMessage,
  MarmotEngine,
  MarmotGroupData,
  NostrEvent,
  PendingCommit,
  ProcessOutcome,
} from "../engine/api.ts";
import { buildKeyPackageDeletionEvent, buildKeyPackageRelayListEvent } from "../engine/mip00-keypackages.ts";
import { HarnessError } from "../errors.ts";
import type { ProtocolProfile } from "../profile.ts";
import type { HostedEngineOptions, HostedStorage, HostReply, HostRequest, HostRequestBody, PlainInspection, RemoteError } from "./engine-host-protocol.ts";

export class EngineWorkerError extends HarnessError {}

/** An error thrown inside a worker's engine, rebuilt on the main thread with the same code and message. */
export class RemoteEngineError extends HarnessError {}

/**
 * Default ("auto") worker count for a scenario: in-process below `minAgents` agents and on machines
 * with fewer than 3 cores (measured on 2 shared cores: no wall-time gain, 15-25 % more CPU, see the
 * README); else one worker per core but one, which stays with the main thread (relays, recording).
 */
export function defaultWorkerCount(agents: number, minAgents = 20, cores = availableParallelism()): number {
  if (agents < minAgents || cores < 3) return 0;
  return Math.min(MAX_WORKERS, cores - 1);
}

/** Largest pool the harness starts (one engine per agent; more workers than cores only costs memory). */
export const MAX_WORKERS = 16;

export function parseWorkerCount(value: unknown, what = "--workers"): number | "auto" {
  if (value === undefined || value === "auto") return "auto";
  const n = typeof value === "number" ? value : Number(String(value));
  if (!Number.isInteger(n) || n < 0 || n > MAX_WORKERS) {
    throw new EngineWorkerError("BAD_WORKER_COUNT", `${what} must be "auto" or an integer from 0 (in-process) to ${MAX_WORKERS}, got ${JSON.stringify(value)}`, { value });
  }
  return n;
}

interface PendingCall {
  agent: string;
  what: string;
  resolve: (reply: HostReply) => void;
  reject: (e: unknown) => void;
}

interface Slot {
  index: number;
  worker: Worker;
  pending: Map<number, PendingCall>;
  agents: string[];
  dead: EngineWorkerError | undefined;
  /** When this worker last replied, or was handed work while idle (performance.now()). */
  lastSign: number;
  watchdog: ReturnType<typeof setTimeout> | undefined;
}

/** Default time a worker may leave calls unanswered before it is declared hung. */
export const DEFAULT_WORKER_HANG_MS = 120_000;

export interface EngineWorkerPoolOptions {
  /** A worker with calls waiting and no reply for this long is terminated (ENGINE_WORKER_HUNG). */
  hangTimeoutMs?: number;
}

/** Engines that report the worker-side compute time of a processEvent call (metrics only). */
export interface TimedEngine {
  processEventTimed(event: NostrEvent, now: number): Promise<{ outcomes: ProcessOutcome[]; ms: number }>;
}

export function isTimedEngine(e: unknown): e is TimedEngine {
  return typeof (e as { processEventTimed?: unknown }).processEventTimed === "function";
}

export class EngineWorkerPool {
  private readonly slots: Slot[] = [];
  private readonly byAgent = new Map<string, Slot>();
  private nextId = 1;
  private closing = false;
  /** Calls per kind and per worker ("worker N"): engine time in the worker, round-trip time seen here (ms). */
  readonly stats = new Map<string, { calls: number; engineMs: number; roundTripMs: number }>();
  /** The first worker failure, for the runner to end the run with. */
  failure: EngineWorkerError | undefined;

  private constructor(private readonly hangTimeoutMs: number) {}

  /** Start `n` workers and wait until each has loaded the engine host. */
  static async start(n: number, opts: EngineWorkerPoolOptions = {}): Promise<EngineWorkerPool> {
    if (!Number.isInteger(n) || n < 1 || n > MAX_WORKERS) throw new EngineWorkerError("BAD_WORKER_COUNT", `a worker pool needs 1 to ${MAX_WORKERS} workers, got ${n}`, { n });
    const hang = opts.hangTimeoutMs ?? DEFAULT_WORKER_HANG_MS;
    if (!Number.isInteger(hang) || hang < 1) throw new EngineWorkerError("BAD_WORKER_HANG_TIMEOUT", `hangTimeoutMs must be a positive integer (ms), got ${String(hang)}`, { hangTimeoutMs: hang });
    const pool = new EngineWorkerPool(hang);
    try {
      await Promise.all(Array.from({ length: n }, (_, i) => pool.startSlot(i)));
    } catch (e) {
      await pool.close();
      throw e;
    }
    return pool;
  }

  get size(): number {
    return this.slots.length;
  }

  private startSlot(index: number): Promise<void> {
    const worker = new Worker(new URL("./engine-host-boot.mjs", import.meta.url), { execArgv: [], stdout: false, stderr: false });
    const slot: Slot = { index, worker, pending: new Map(), agents: [], dead: undefined, lastSign: performance.now(), watchdog: undefined };
    this.slots.push(slot);
    return new Promise<void>((resolve, reject) => {
      let ready = false;
      worker.on("message", (msg: HostReply | { ready: true }) => {
        if ("ready" in msg) {
          ready = true;
          resolve();
          return;
        }
        slot.lastSign = performance.now();
        const call = slot.pending.get(msg.id);
        if (!call) return;
        slot.pending.delete(msg.id);
        call.resolve(msg);
      });
      worker.on("error", (e) => {
        this.kill(slot, `uncaught error: ${e.message}`);
        if (!ready) reject(new EngineWorkerError("ENGINE_WORKER_START", `engine worker ${index} failed to start: ${e.message}`, { worker: index }));
      });
      worker.on("exit", (code) => {
        if (!this.closing) this.kill(slot, `exited with code ${code}`);
        if (!ready) reject(new EngineWorkerError("ENGINE_WORKER_START", `engine worker ${index} exited with code ${code} before it was ready`, { worker: index, code }));
      });
    });
  }

  /** Arms the slot's hang watchdog while it has calls waiting. */
  private watch(slot: Slot): void {
    if (slot.watchdog || slot.dead || this.closing) return;
    const wait = Math.max(1, slot.lastSign + this.hangTimeoutMs - performance.now());
    slot.watchdog = setTimeout(() => {
      slot.watchdog = undefined;
      if (slot.dead || this.closing || slot.pending.size === 0) return;
      const silent = performance.now() - slot.lastSign;
      if (silent >= this.hangTimeoutMs) {
        const first = slot.pending.values().next().value as PendingCall;
        this.kill(slot, `no reply for ${Math.round(silent)} ms with ${slot.pending.size} call(s) waiting (the oldest: ${first.agent}'s ${first.what}); terminated`, "ENGINE_WORKER_HUNG");
      } else this.watch(slot);
    }, wait);
    slot.watchdog.unref?.();
  }

  private kill(slot: Slot, reason: string, code = "ENGINE_WORKER_CRASHED"): void {
    if (slot.dead) return;
    if (slot.watchdog) clearTimeout(slot.watchdog);
    slot.watchdog = undefined;
    const agents = slot.agents.length ? slot.agents.join(", ") : "none";
    slot.dead = new EngineWorkerError(code, `engine worker ${slot.index} (agents ${agents}) stopped: ${reason}`, { worker: slot.index, agents: slot.agents, reason });
    this.failure ??= slot.dead;
    for (const [, call] of slot.pending) {
      call.reject(
        new EngineWorkerError(code, `agent ${call.agent}: its engine worker ${slot.index} stopped during ${call.what} (${reason})`, {
          agent: call.agent,
          worker: slot.index,
          reason,
        }),
      );
    }
    slot.pending.clear();
    void slot.worker.terminate().catch(() => undefined);
  }

  /** Throws the first worker failure, if any. */
  check(): void {
    if (this.failure) throw this.failure;
  }

  private slotFor(agent: string): Slot {
    let s = this.byAgent.get(agent);
    if (!s) {
      s = this.slots[this.byAgent.size % this.slots.length] as Slot;
      this.byAgent.set(agent, s);
      s.agents.push(agent);
    }
    return s;
  }

  /** Which worker hosts an agent's engine (assigned on first use). */
  workerOf(agent: string): number {
    return this.slotFor(agent).index;
  }

  /** Send a request; resolves with the worker's reply (success or engine error), rejects on a dead worker. */
  request(agent: string, req: HostRequestBody, what: string): Promise<HostReply> {
    const slot = this.slotFor(agent);
    if (slot.dead) {
      return Promise.reject(new EngineWorkerError("ENGINE_WORKER_CRASHED", `agent ${agent}: its engine worker ${slot.index} has stopped (${String(slot.dead.details.reason)}); cannot ${what}`, { agent, worker: slot.index }));
    }
    const id = this.nextId++;
    const t0 = performance.now();
    return new Promise<HostReply>((resolve, reject) => {
      if (slot.pending.size === 0) slot.lastSign = t0; // an idle worker's clock starts with this call
      slot.pending.set(id, {
        agent,
        what,
        resolve: (r) => {
          const s = this.stats.get(what) ?? { calls: 0, engineMs: 0, roundTripMs: 0 };
          s.calls++;
          s.engineMs += r.ms;
          s.roundTripMs += performance.now() - t0;
          this.stats.set(what, s);
          const w = this.stats.get(`worker ${slot.index}`) ?? { calls: 0, engineMs: 0, roundTripMs: 0 };
          w.calls++;
          w.engineMs += r.ms;
          this.stats.set(`worker ${slot.index}`, w);
          resolve(r);
        },
        reject,
      });
      this.watch(slot);
      try {
        slot.worker.postMessage({ ...req, id } as HostRequest);
      } catch (e) {
        slot.pending.delete(id);
        reject(new EngineWorkerError("ENGINE_WORKER_POST", `agent ${agent}: could not send ${what} to its engine worker: ${(e as Error).message}`, { agent }));
      }
    });
  }

  /**
   * An EngineFactory for one agent. The engine's store lives in the worker (memory, kept across the
   * agent's restarts, or the agent's own directory) and its randomness comes from `rngSeed` (a
   * `createRng` seed). `EngineOptions.storage` and `randomBytes` cannot cross threads and are ignored.
   */
  factoryFor(agent: string, storage: HostedStorage, rngSeed?: string): (opts: EngineOptions) => Promise<MarmotEngine> {
    return async (opts) => {
      const options: HostedEngineOptions = {
        secretKeyHex: bytesToHex(opts.secretKey),
        ...(opts.profile ? { profile: opts.profile } : {}),
        ...(opts.quirks ? { quirks: opts.quirks } : {}),
        ...(opts.clientName !== undefined ? { clientName: opts.clientName } : {}),
        ...(opts.maxPastEpochs !== undefined ? { maxPastEpochs: opts.maxPastEpochs } : {}),
        ...(opts.outOfBandRatchetTree ? { outOfBandRatchetTree: true } : {}),
      };
      const reply = await this.request(agent, { op: "create", agent, options, storage, ...(rngSeed !== undefined ? { rngSeed } : {}) }, "create its engine");
      if (!reply.ok) throw remoteError(reply.error);
      const engine = new WorkerEngine(this, agent, opts.secretKey, opts.profile ?? "R1");
      engine.applyMirror(reply.groups);
      return engine;
    };
  }

  /** Test hook: make the worker hosting `agent` exit abruptly. */
  crashWorkerOf(agent: string): void {
    const slot = this.slotFor(agent);
    if (!slot.dead) slot.worker.postMessage({ id: 0, op: "crash", agent } satisfies HostRequest);
  }

  /** Fault injection (tests): make the worker hosting `agent` stop answering, as a stuck engine would. */
  hangWorkerOf(agent: string): void {
    const slot = this.slotFor(agent);
    if (!slot.dead) slot.worker.postMessage({ id: 0, op: "hang", agent } satisfies HostRequest);
  }

  async close(): Promise<void> {
    this.closing = true;
    for (const s of this.slots) if (s.watchdog) clearTimeout(s.watchdog);
    await Promise.all(this.slots.map((s) => s.worker.terminate().catch(() => undefined)));
    for (const s of this.slots) {
      for (const [, call] of s.pending) call.reject(new EngineWorkerError("ENGINE_WORKER_CLOSED", `agent ${call.agent}: the engine worker pool was closed during ${call.what}`, { agent: call.agent }));
      s.pending.clear();
    }
  }
}

function remoteError(e: RemoteError): Error {
  if (e.code) {
    const prefix = `${e.code}: `;
    const err = new RemoteEngineError(e.code, e.message.startsWith(prefix) ? e.message.slice(prefix.length) : e.message, e.details ?? {});
    err.name = e.name;
    return err;
  }
  const err = new Error(e.message);
  err.name = e.name;
  return err;
}

/** Main-thread proxy of an engine hosted in a worker. */
export class WorkerEngine implements MarmotEngine, TimedEngine {
  /** Writable on purpose: the agent's adversarial send claims another author for one call. */
  pubkey: Hex;
  readonly profile: ProtocolProfile;
  private readonly ownPubkey: Hex;
  private mirror: GroupSummary[] = [];
  private readonly byId = new Map<Hex, GroupSummary>();
  /** Inspections the last reply carried (valid until the next call). */
  private readonly inspections = new Map<Hex, PlainInspection>();

  constructor(
    private readonly pool: EngineWorkerPool,
    readonly agent: string,
    private readonly secretKey: Uint8Array,
    profile: ProtocolProfile,
  ) {
    this.ownPubkey = getPublicKey(secretKey);
    this.pubkey = this.ownPubkey;
    this.profile = profile;
  }

  /** @internal refreshed from every reply */
  applyMirror(groups: GroupSummary[]): void {
    this.mirror = groups;
    this.byId.clear();
    for (const g of groups) this.byId.set(g.groupId, g);
  }

  private async send(req: HostRequestBody, what: string): Promise<{ value: unknown; ms: number }> {
    this.inspections.clear();
    const reply = await this.pool.request(this.agent, req, what);
    this.applyMirror(reply.groups);
    this.inspections.clear();
    if (reply.ok) for (const i of reply.inspections ?? []) this.inspections.set(i.groupId, i);
    if (!reply.ok) throw remoteError(reply.error);
    return { value: reply.value, ms: reply.ms };
  }

  private async call<T>(method: string, ...args: unknown[]): Promise<T> {
    const override = this.pubkey !== this.ownPubkey ? { pubkeyOverride: this.pubkey } : {};
    return (await this.send({ op: "call", agent: this.agent, method, args, ...override }, method)).value as T;
  }

  createKeyPackage(opts: { relays: string[]; now: number; lastResort?: boolean; d?: Hex }): Promise<NostrEvent> {
    return this.call("createKeyPackage", opts);
  }

  keyPackageRelayList(relays: string[], now: number): NostrEvent {
    return buildKeyPackageRelayListEvent(this.secretKey, relays, now);
  }

  deleteKeyPackage(event: NostrEvent, now: number): NostrEvent {
    return buildKeyPackageDeletionEvent(this.secretKey, event, now);
  }

  createGroup(opts: CreateGroupOptions): Promise<GroupSummary> {
    return this.call("createGroup", opts);
  }

  inviteMembers(groupId: Hex, keyPackageEvents: NostrEvent[], now: number): Promise<PendingCommit> {
    return this.call("inviteMembers", groupId, keyPackageEvents, now);
  }

  removeMembers(groupId: Hex, pubkeys: Hex[], now: number): Promise<PendingCommit> {
    return this.call("removeMembers", groupId, pubkeys, now);
  }

  selfUpdate(groupId: Hex, now: number): Promise<PendingCommit> {
    return this.call("selfUpdate", groupId, now);
  }

  updateGroupData(groupId: Hex, patch: Partial<Omit<MarmotGroupData, "version">>, now: number): Promise<PendingCommit> {
    return this.call("updateGroupData", groupId, patch, now);
  }

  commitPendingProposals(groupId: Hex, now: number): Promise<PendingCommit | undefined> {
    return this.call("commitPendingProposals", groupId, now);
  }

  leaveGroup(groupId: Hex, now: number): Promise<NostrEvent> {
    return this.call("leaveGroup", groupId, now);
  }

  confirmCommit(pendingId: string): Promise<CommitConfirmation> {
    return this.call("confirmCommit", pendingId);
  }

  abandonCommit(pendingId: string): void {
    // The worker keeps this engine's calls in order, so later calls see the commit abandoned.
    this.call("abandonCommit", pendingId).catch(() => undefined);
  }

  sendMessage(groupId: Hex, message: InnerMessage, now: number): Promise<NostrEvent> {
    return this.call("sendMessage", groupId, message, now);
  }

  processEvent(event: NostrEvent, now: number): Promise<ProcessOutcome[]> {
    return this.call("processEvent", event, now);
  }

  async processEventTimed(event: NostrEvent, now: number): Promise<{ outcomes: ProcessOutcome[]; ms: number }> {
    const r = await this.send({ op: "call", agent: this.agent, method: "processEvent", args: [event, now] }, "processEvent");
    return { outcomes: r.value as ProcessOutcome[], ms: r.ms };
  }

  groups(): GroupSummary[] {
    return [...this.mirror];
  }

  group(groupId: Hex): GroupSummary | undefined {
    return this.byId.get(groupId);
  }

  async inspect(groupId: Hex): Promise<GroupInspection> {
    const plain = this.inspections.get(groupId) ?? ((await this.send({ op: "inspect", agent: this.agent, groupId }, "inspect")).value as PlainInspection);
    return {
      ...plain,
      exporter: async (label: string, context: Uint8Array, length: number) =>
        (await this.send({ op: "exporter", agent: this.agent, groupId, label, context, length }, "exporter")).value as Uint8Array,
    };
  }

  provideRatchetTree(tree: Uint8Array, now: number): Promise<ProcessOutcome[]> {
    return this.call("provideRatchetTree", tree, now);
  }
}
