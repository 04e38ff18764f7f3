/**
 * A simulated relay: the relay core behind per-connection delivery queues driven by a
 * Scheduler (virtual in simulation, real timers for the WebSocket server), with a nemesis
 * that injects faults and records each one in the fault log.
 */
import { verifiedSymbol } from "nostr-tools/pure";
import type { Scheduler } from "../sim/clock.ts";
import { createRng, type Rng } from "../sim/random.ts";
import { CoreSession, RelayCore, type RelayCoreOptions, type RelayLimits } from "./core.ts";
import {
  checkLatency,
  checkProbability,
  FaultLog,
  sampleLatency,
  type Direction,
  type LatencyDist,
  type LinkScope,
  type PublishFaultParams,
  type Scope,
} from "./faults.ts";
import { describeFrame, RelayError, type ClientMessage, type NostrEvent, type RelayMessage } from "./messages.ts";

/** The client end of a simulated connection. */
export interface ClientSink {
  onMessage(msg: RelayMessage): void;
  /** The connection is gone (relay crashed, disconnect fault, relay-side close). */
  onClose(reason: string): void;
}

export interface DeliveryRecord {
  at: number;
  relay: string;
  connection: string;
  client: string;
  /** up = client to relay, down = relay to client. */
  dir: "up" | "down";
  frame: string;
}

export interface SimulatedRelayOptions extends Omit<RelayCoreOptions, "clock" | "hooks" | "name"> {
  name: string;
  /** The relay's URL as clients name it (default `wss://<name>.sim.invalid`). */
  url?: string;
  scheduler: Scheduler;
  /** Seeded randomness (default: a stream derived from the name). */
  rng?: Rng;
  /** Shared fault log (default: a log of its own). */
  faultLog?: FaultLog;
  /** Record every delivered frame (for determinism checks and debugging). */
  recordDeliveries?: boolean | DeliveryRecord[];
  /**
   * Deliver synchronously when no link fault applies (used by the WebSocket server, where the
   * socket is the queue). In simulation leave it off: every frame goes through the scheduler.
   */
  directWhenNoFault?: boolean;
  /** Give each in-memory client its own event object (default true; the WebSocket server serializes instead). */
  copyEvents?: boolean;
}

interface LinkRule {
  direction: Direction;
}
interface LatencyRule extends LinkRule {
  dist: LatencyDist;
}
interface ProbRule extends LinkRule {
  p: number;
}
interface ReorderRule extends ProbRule {
  maxExtraMs: number;
}
interface PublishRule {
  p: number;
  kinds?: Set<number>;
  message?: string;
  store?: boolean;
}
interface EarlyEoseRule {
  p: number;
  after?: number;
  fraction?: number;
  withholdRest: boolean;
}

const ALL = "*";

function applies(rule: LinkRule, dir: "up" | "down"): boolean {
  return rule.direction === "both" || rule.direction === dir;
}

/** Fault injection for one relay. Every call is recorded in the relay's fault log. */
export class Nemesis {
  readonly latency = new Map<string, LatencyRule[]>();
  readonly drop = new Map<string, ProbRule[]>();
  readonly duplicate = new Map<string, ProbRule[]>();
  readonly reorder = new Map<string, ReorderRule[]>();
  readonly partitioned = new Set<string>();
  readonly queueLimit = new Map<string, number>();
  readonly refuse = new Map<string, PublishRule>();
  readonly noAnswer = new Map<string, PublishRule>();
  readonly earlyEose = new Map<string, EarlyEoseRule>();
  readonly slowEose = new Map<string, number>();
  readonly rng: Rng;

  constructor(private readonly relay: SimulatedRelay) {
    this.rng = relay.rng.fork("nemesis");
  }

  private log(fault: string, params: Record<string, unknown>, connection?: string): void {
    this.relay.faultLog.record({ at: this.relay.scheduler.now(), relay: this.relay.name, connection, fault, params });
  }

  private setLink<R extends LinkRule>(map: Map<string, R[]>, scope: LinkScope, rule: R): void {
    const key = scope.client ?? ALL;
    const rules = (map.get(key) ?? []).filter((r) => r.direction !== rule.direction);
    rules.push(rule);
    map.set(key, rules);
  }

  /** Latency of every frame on the link(s): fixed, uniform, normal, exponential or lognormal. */
  setLatency(dist: LatencyDist, scope: LinkScope = {}): void {
    checkLatency(dist);
    this.setLink(this.latency, scope, { direction: scope.direction ?? "both", dist });
    this.log("latency", { ...scope, dist });
  }

  /** Lose each frame with probability p. */
  setDrop(p: number, scope: LinkScope = {}): void {
    checkProbability("drop", p);
    this.setLink(this.drop, scope, { direction: scope.direction ?? "both", p });
    this.log("drop", { ...scope, p });
  }

  /** Deliver each frame twice with probability p. */
  setDuplicate(p: number, scope: LinkScope = {}): void {
    checkProbability("duplicate", p);
    this.setLink(this.duplicate, scope, { direction: scope.direction ?? "both", p });
    this.log("duplicate", { ...scope, p });
  }

  /** With probability p a frame leaves the connection's FIFO order and gets up to maxExtraMs extra delay. */
  setReorder(p: number, maxExtraMs: number, scope: LinkScope = {}): void {
    checkProbability("reorder", p);
    if (!(maxExtraMs >= 0)) throw new RelayError("BAD_FAULT", `reorder: maxExtraMs must be >= 0, got ${maxExtraMs}`);
    this.setLink(this.reorder, scope, { direction: scope.direction ?? "both", p, maxExtraMs });
    this.log("reorder", { ...scope, p, maxExtraMs });
  }

  /** Cut the client off this relay: frames both ways are lost until heal(). Connections stay "open". */
  partition(client: string): void {
    this.partitioned.add(client);
    this.log("partition", { client });
  }

  heal(client: string): void {
    this.partitioned.delete(client);
    this.log("heal", { client });
  }

  /** Close the client's connections from the relay side (its subscriptions are lost). */
  disconnect(client: string, reason = "error: connection reset by the relay"): void {
    this.log("disconnect", { client, reason });
    for (const c of this.relay.connectionsOf(client)) c.terminate(reason);
  }

  /** The relay process dies: every connection closes and every subscription is lost. */
  crash(): void {
    this.log("crash", {});
    this.relay.crashNow();
  }

  /** The relay comes back, with its stored events (persistent store) or empty. */
  restart(opts: { keepStore: boolean }): void {
    this.log("restart", { keepStore: opts.keepStore });
    this.relay.restartNow(opts.keepStore);
  }

  /** Keep at most maxEvents stored events (oldest created_at evicted); undefined lifts the limit. */
  setRetention(maxEvents: number | undefined): void {
    if (maxEvents !== undefined && !(Number.isInteger(maxEvents) && maxEvents >= 0)) {
      throw new RelayError("BAD_FAULT", `retention: maxEvents must be a non-negative integer, got ${maxEvents}`);
    }
    this.log("retention", { maxEvents });
    this.relay.core.store.maxEvents = maxEvents;
    const evicted = this.relay.core.store.enforceRetention();
    if (evicted.length > 0) this.relay.onEvicted(evicted);
  }

  /**
   * At most `perSubscription` EVENT frames of one subscription in flight on a connection;
   * beyond that events are silently skipped (as relays with bounded queues do).
   */
  setQueueLimit(perSubscription: number | undefined, scope: Scope = {}): void {
    const key = scope.client ?? ALL;
    if (perSubscription === undefined) this.queueLimit.delete(key);
    else {
      if (!(Number.isInteger(perSubscription) && perSubscription >= 0)) {
        throw new RelayError("BAD_FAULT", `queue-limit: must be a non-negative integer, got ${perSubscription}`);
      }
      this.queueLimit.set(key, perSubscription);
    }
    this.log("queue-limit", { ...scope, perSubscription });
  }

  /** Answer EVENTs with `OK false` (message default "error: publish refused by fault injection"). */
  refusePublish(params: PublishFaultParams & { message?: string } = {}, scope: Scope = {}): void {
    const p = params.p ?? 1;
    checkProbability("refuse-publish", p);
    this.refuse.set(scope.client ?? ALL, { p, kinds: params.kinds ? new Set(params.kinds) : undefined, message: params.message ?? "error: publish refused (fault injection)" });
    this.log("refuse-publish", { ...scope, ...params, p });
  }

  /** Never answer EVENTs (no OK); `store` (default true) says whether the event is still stored and delivered. */
  neverAnswer(params: PublishFaultParams & { store?: boolean } = {}, scope: Scope = {}): void {
    const p = params.p ?? 1;
    checkProbability("no-answer", p);
    this.noAnswer.set(scope.client ?? ALL, { p, kinds: params.kinds ? new Set(params.kinds) : undefined, store: params.store ?? true });
    this.log("no-answer", { ...scope, ...params, p });
  }

  /**
   * Send EOSE before the stored history is complete: after `after` events (or `fraction` of them,
   * default 0.5). The rest follows after EOSE unless `withholdRest`.
   */
  setEarlyEose(params: { p?: number; after?: number; fraction?: number; withholdRest?: boolean } = {}, scope: Scope = {}): void {
    const p = params.p ?? 1;
    checkProbability("early-eose", p);
    if (params.fraction !== undefined) checkProbability("early-eose fraction", params.fraction);
    this.earlyEose.set(scope.client ?? ALL, { p, after: params.after, fraction: params.fraction, withholdRest: params.withholdRest ?? false });
    this.log("early-eose", { ...scope, ...params, p });
  }

  /** Delay every EOSE by delayMs beyond the link latency (live events may overtake it). */
  setSlowEose(delayMs: number, scope: Scope = {}): void {
    if (!(delayMs >= 0)) throw new RelayError("BAD_FAULT", `slow-eose: delayMs must be >= 0, got ${delayMs}`);
    this.slowEose.set(scope.client ?? ALL, delayMs);
    this.log("slow-eose", { ...scope, delayMs });
  }

  /** Remove every fault rule (partitions healed, limits lifted). The relay's up/down state is unchanged. */
  clearAll(): void {
    for (const m of [this.latency, this.drop, this.duplicate, this.reorder, this.queueLimit, this.refuse, this.noAnswer, this.earlyEose, this.slowEose]) m.clear();
    this.partitioned.clear();
    this.log("clear", {});
  }

  /** The rule for this client, else the rule for all. */
  ruleFor<T>(map: Map<string, T>, client: string): T | undefined {
    return map.get(client) ?? map.get(ALL);
  }

  linkRule<R extends LinkRule>(map: Map<string, R[]>, client: string, dir: "up" | "down"): R | undefined {
    return map.get(client)?.find((r) => applies(r, dir)) ?? map.get(ALL)?.find((r) => applies(r, dir));
  }

  /** True when some link fault could apply to this client (so frames must go through the scheduler). */
  hasLinkFault(client: string): boolean {
    return (
      this.partitioned.has(client) ||
      this.latency.size > 0 ||
      this.drop.size > 0 ||
      this.duplicate.size > 0 ||
      this.reorder.size > 0 ||
      this.slowEose.size > 0 ||
      this.queueLimit.size > 0
    );
  }
}

/**
 * Frames in non-decreasing delivery time, delivered in order by one scheduler task per distinct
 * time (not one task per frame): order holds on real timers too, and fan-out stays cheap.
 */
class OrderedQueue<T> {
  private readonly items: { at: number; item: T }[] = [];
  private head = 0;
  private scheduled = false;

  constructor(
    private readonly scheduler: Scheduler,
    private readonly label: string,
    private readonly deliver: (item: T) => void,
  ) {}

  push(at: number, item: T): void {
    this.items.push({ at, item });
    if (!this.scheduled) {
      this.scheduled = true;
      this.scheduler.at(at, this.flush, this.label);
    }
  }

  private readonly flush = (): void => {
    this.scheduled = false;
    const now = this.scheduler.now();
    const q = this.items;
    // A receiver that throws must not stall the queue: deliver the rest, then report the first error.
    let failed = false;
    let error: unknown;
    while (this.head < q.length && (q[this.head] as { at: number }).at <= now) {
      const f = q[this.head++] as { at: number; item: T };
      try {
        this.deliver(f.item);
      } catch (e) {
        if (!failed) error = e;
        failed = true;
      }
    }
    if (this.head >= q.length) {
      q.length = 0;
      this.head = 0;
    } else {
      if (this.head > 1024) {
        q.splice(0, this.head);
        this.head = 0;
      }
      this.scheduled = true;
      this.scheduler.at((q[this.head] as { at: number }).at, this.flush, this.label);
    }
    if (failed) throw error;
  };
}

/** One client connection to a simulated relay, with its own delivery queues (one per direction). */
export class SimConnection {
  private session: CoreSession | undefined;
  private lastUpAt = 0;
  /** In-order delivery queues, one per direction. */
  private readonly upQueue: OrderedQueue<ClientMessage | unknown[] | string>;
  private readonly downQueue: OrderedQueue<{ msg: RelayMessage; counted: boolean }>;
  private lastDownAt = 0;
  private readonly inflight = new Map<string, number>();
  private open = true;
  readonly rng: Rng;

  constructor(
    readonly relay: SimulatedRelay,
    readonly id: string,
    readonly client: string,
    private readonly sink: ClientSink,
  ) {
    this.rng = relay.rng.fork(`conn:${id}`);
    this.upQueue = new OrderedQueue(relay.scheduler, "up", (m) => this.deliverUp(m));
    this.downQueue = new OrderedQueue(relay.scheduler, "down", (f) => this.deliverDown(f.msg, f.counted));
    this.session = relay.core.openSession(client, (m) => this.down(m), id);
  }

  get isOpen(): boolean {
    return this.open;
  }

  /** Send a client frame (parsed, or raw text as a WebSocket would carry it). */
  send(msg: ClientMessage | unknown[] | string): void {
    if (!this.open) return;
    const n = this.relay.nemesis;
    const now = this.relay.scheduler.now();
    if (this.relay.direct && !n.hasLinkFault(this.client)) {
      this.deliverUp(msg);
      return;
    }
    if (n.partitioned.has(this.client)) {
      this.hit("partition.hit", "up", msg);
      return;
    }
    const drop = n.linkRule(n.drop, this.client, "up");
    if (drop && this.rng.next() < drop.p) {
      this.hit("drop.hit", "up", msg);
      return;
    }
    const lat = n.linkRule(n.latency, this.client, "up");
    let at = now + (lat ? sampleLatency(lat.dist, this.rng) : 0);
    const reorder = n.linkRule(n.reorder, this.client, "up");
    let fifo = false;
    if (reorder && this.rng.next() < reorder.p) {
      at += Math.round(this.rng.next() * reorder.maxExtraMs);
      this.hit("reorder.hit", "up", msg);
    } else {
      at = Math.max(at, this.lastUpAt);
      this.lastUpAt = at;
      fifo = true;
    }
    const dup = n.linkRule(n.duplicate, this.client, "up");
    const copies = dup && this.rng.next() < dup.p ? 2 : 1;
    if (copies === 2) this.hit("duplicate.hit", "up", msg);
    for (let i = 0; i < copies; i++) {
      if (fifo) this.upQueue.push(at, msg);
      else this.relay.scheduler.at(at, () => this.deliverUp(msg), "up");
    }
  }

  private deliverUp(msg: ClientMessage | unknown[] | string): void {
    if (!this.open || !this.session || !this.relay.isUp) return;
    if (this.relay.nemesis.partitioned.has(this.client)) {
      this.hit("partition.hit", "up", msg);
      return;
    }
    if (this.relay.deliveries) this.relay.recordDelivery(this, "up", typeof msg === "string" ? msg.slice(0, 120) : describeFrame(msg));
    if (typeof msg === "string") this.session.handleText(msg);
    else this.session.handle(msg);
  }

  /** A frame from the relay core towards the client. */
  private down(msg: RelayMessage): void {
    if (!this.open) return;
    const n = this.relay.nemesis;
    const now = this.relay.scheduler.now();
    if (this.relay.direct && !n.hasLinkFault(this.client)) {
      this.deliverDown(msg, false);
      return;
    }
    if (n.partitioned.has(this.client)) {
      this.hit("partition.hit", "down", msg);
      return;
    }
    const isEvent = msg[0] === "EVENT";
    if (isEvent) {
      const limit = n.ruleFor(n.queueLimit, this.client);
      if (limit !== undefined && (this.inflight.get(msg[1]) ?? 0) >= limit) {
        this.hit("queue-overflow.hit", "down", msg);
        return;
      }
    }
    const drop = n.linkRule(n.drop, this.client, "down");
    if (drop && this.rng.next() < drop.p) {
      this.hit("drop.hit", "down", msg);
      return;
    }
    const lat = n.linkRule(n.latency, this.client, "down");
    let at = now + (lat ? sampleLatency(lat.dist, this.rng) : 0);
    const slow = msg[0] === "EOSE" ? n.ruleFor(n.slowEose, this.client) : undefined;
    const reorder = n.linkRule(n.reorder, this.client, "down");
    let fifo = false;
    if (slow !== undefined) {
      at += slow;
      this.hit("slow-eose.hit", "down", msg, { delayMs: slow });
    } else if (reorder && this.rng.next() < reorder.p) {
      at += Math.round(this.rng.next() * reorder.maxExtraMs);
      this.hit("reorder.hit", "down", msg);
    } else {
      at = Math.max(at, this.lastDownAt);
      this.lastDownAt = at;
      fifo = true;
    }
    const dup = n.linkRule(n.duplicate, this.client, "down");
    const copies = dup && this.rng.next() < dup.p ? 2 : 1;
    if (copies === 2) this.hit("duplicate.hit", "down", msg);
    // In-flight EVENTs are counted per subscription only while a queue limit is set.
    const counted = isEvent && n.queueLimit.size > 0;
    for (let i = 0; i < copies; i++) {
      if (counted) this.inflight.set(msg[1] as string, (this.inflight.get(msg[1] as string) ?? 0) + 1);
      if (fifo) this.downQueue.push(at, { msg, counted });
      else this.relay.scheduler.at(at, () => this.deliverDown(msg, counted), "down");
    }
  }

  private deliverDown(msg: RelayMessage, counted: boolean): void {
    if (counted) {
      const sub = msg[1] as string;
      const left = (this.inflight.get(sub) ?? 1) - 1;
      if (left <= 0) this.inflight.delete(sub);
      else this.inflight.set(sub, left);
    }
    if (!this.open) return;
    if (this.relay.nemesis.partitioned.has(this.client)) {
      this.hit("partition.hit", "down", msg);
      return;
    }
    if (this.relay.deliveries) this.relay.recordDelivery(this, "down", describeFrame(msg));
    if (msg[0] === "EVENT" && this.relay.copyEvents) {
      // Each client gets its own top-level object (tags are shared and must not be mutated). The
      // nostr-tools "verified" mark is kept: the relay verified this very event with the same library.
      const e = msg[2];
      const copy: NostrEvent = { id: e.id, pubkey: e.pubkey, created_at: e.created_at, kind: e.kind, tags: e.tags, content: e.content, sig: e.sig };
      if (e[verifiedSymbol]) copy[verifiedSymbol] = true;
      this.sink.onMessage(["EVENT", msg[1], copy]);
    } else this.sink.onMessage(msg);
  }

  private hit(fault: string, dir: "up" | "down", msg: ClientMessage | RelayMessage | unknown[] | string, extra: Record<string, unknown> = {}): void {
    this.relay.faultLog.record({
      at: this.relay.scheduler.now(),
      relay: this.relay.name,
      connection: this.id,
      fault,
      params: { client: this.client, dir, frame: typeof msg === "string" ? msg.slice(0, 80) : describeFrame(msg), ...extra },
    });
  }

  /** Client-side close. */
  close(): void {
    if (!this.open) return;
    this.open = false;
    this.session?.close();
    this.session = undefined;
    this.relay.forget(this);
  }

  /** Relay-side close: the client is told (through the scheduler, after pending frames). */
  terminate(reason: string): void {
    if (!this.open) return;
    this.open = false;
    this.session?.close();
    this.session = undefined;
    this.relay.forget(this);
    const notify = (): void => this.sink.onClose(reason);
    if (this.relay.direct) notify();
    else this.relay.scheduler.at(Math.max(this.relay.scheduler.now(), this.lastDownAt), notify, `close ${this.id}`);
  }
}

export class SimulatedRelay {
  readonly name: string;
  readonly url: string;
  readonly scheduler: Scheduler;
  readonly rng: Rng;
  readonly core: RelayCore;
  readonly faultLog: FaultLog;
  readonly nemesis: Nemesis;
  readonly deliveries: DeliveryRecord[] | undefined;
  readonly direct: boolean;
  readonly copyEvents: boolean;
  private up = true;
  private nextConn = 1;
  private readonly connectionMap = new Map<string, SimConnection>();

  constructor(opts: SimulatedRelayOptions) {
    if (!/^[A-Za-z0-9._-]+$/.test(opts.name)) throw new RelayError("BAD_RELAY_NAME", `relay name must be letters, digits, '.', '_' or '-', got ${JSON.stringify(opts.name)}`);
    this.name = opts.name;
    this.url = opts.url ?? `wss://${opts.name}.sim.invalid`;
    this.scheduler = opts.scheduler;
    this.rng = opts.rng ?? createRng(`relay:${opts.name}`);
    this.faultLog = opts.faultLog ?? new FaultLog();
    this.deliveries = Array.isArray(opts.recordDeliveries) ? opts.recordDeliveries : opts.recordDeliveries ? [] : undefined;
    this.direct = opts.directWhenNoFault ?? false;
    this.copyEvents = opts.copyEvents ?? true;
    this.core = new RelayCore({
      ...opts,
      name: opts.name,
      clock: opts.scheduler,
      hooks: {
        beforeAccept: (s, e) => this.beforeAccept(s, e),
        planEose: (s, sub, total) => this.planEose(s, sub, total),
        onEvicted: (evs) => this.onEvicted(evs),
      },
    });
    this.nemesis = new Nemesis(this);
  }

  get isUp(): boolean {
    return this.up;
  }

  get limits(): RelayLimits {
    return this.core.limits;
  }

  /** Open a connection for `client` (an agent name). Throws RELAY_DOWN while crashed. */
  connect(client: string, sink: ClientSink): SimConnection {
    if (!this.up) throw new RelayError("RELAY_DOWN", `relay ${this.name} is down`, { relay: this.name });
    const id = `${this.name}#${this.nextConn++}`;
    const c = new SimConnection(this, id, client, sink);
    this.connectionMap.set(id, c);
    return c;
  }

  /** Open connections, oldest first. */
  connections(): SimConnection[] {
    return [...this.connectionMap.values()];
  }

  connectionsOf(client: string): SimConnection[] {
    return [...this.connectionMap.values()].filter((c) => c.client === client);
  }

  get openConnections(): number {
    return this.connectionMap.size;
  }

  /** @internal */
  forget(c: SimConnection): void {
    this.connectionMap.delete(c.id);
  }

  /** @internal used by the nemesis */
  crashNow(): void {
    this.up = false;
    for (const c of [...this.connectionMap.values()]) c.terminate("error: relay crashed");
    this.core.dropAllSessions();
  }

  /** @internal used by the nemesis */
  restartNow(keepStore: boolean): void {
    if (this.up) this.crashNow();
    if (!keepStore) this.core.resetStore();
    this.up = true;
  }

  /** @internal */
  recordDelivery(c: SimConnection, dir: "up" | "down", frame: string): void {
    this.deliveries?.push({ at: this.scheduler.now(), relay: this.name, connection: c.id, client: c.client, dir, frame });
  }

  /** @internal */
  onEvicted(events: NostrEvent[]): void {
    for (const e of events) {
      this.faultLog.record({ at: this.scheduler.now(), relay: this.name, fault: "retention.hit", params: { eventId: e.id, kind: e.kind, created_at: e.created_at } });
    }
  }

  private beforeAccept(s: CoreSession, e: NostrEvent): { refuse?: string; silent?: boolean; store?: boolean } | undefined {
    const n = this.nemesis;
    const refuse = n.ruleFor(n.refuse, s.client);
    if (refuse && (!refuse.kinds || refuse.kinds.has(e.kind)) && n.rng.next() < refuse.p) {
      this.faultLog.record({ at: this.scheduler.now(), relay: this.name, connection: s.id, fault: "refuse-publish.hit", params: { client: s.client, eventId: e.id, kind: e.kind } });
      return { refuse: refuse.message };
    }
    const silent = n.ruleFor(n.noAnswer, s.client);
    if (silent && (!silent.kinds || silent.kinds.has(e.kind)) && n.rng.next() < silent.p) {
      this.faultLog.record({ at: this.scheduler.now(), relay: this.name, connection: s.id, fault: "no-answer.hit", params: { client: s.client, eventId: e.id, kind: e.kind, stored: silent.store } });
      return { silent: true, store: silent.store };
    }
    return undefined;
  }

  private planEose(s: CoreSession, subId: string, total: number): { after: number; withholdRest: boolean } | undefined {
    const n = this.nemesis;
    const rule = n.ruleFor(n.earlyEose, s.client);
    if (!rule || total === 0 || !(n.rng.next() < rule.p)) return undefined;
    const after = rule.after ?? Math.floor(total * (rule.fraction ?? 0.5));
    if (after >= total) return undefined;
    this.faultLog.record({ at: this.scheduler.now(), relay: this.name, connection: s.id, fault: "early-eose.hit", params: { client: s.client, sub: subId, total, after, withholdRest: rule.withholdRest } });
    return { after, withholdRest: rule.withholdRest };
  }
}
