/**
 * The relay core: NIP-01 as a message-level API. A transport (in-memory simulation, WebSocket
 * server) opens a session per connection, hands it client frames (text or parsed) and receives
 * relay frames through the session's sink. Everything here is synchronous and deterministic;
 * time comes from the injected clock. It knows nothing of MLS.
 */
import { sha256 } from "@noble/hashes/sha2.js";
import { bytesToHex, utf8ToBytes } from "@noble/hashes/utils.js";
import { verifiedSymbol } from "nostr-tools/pure";
import { eventId } from "../nostr/event-id.ts";
import { currentSignatureVerifier, loadSignatureVerifier, type SignatureVerifier } from "../nostr/verify.ts";
import type { Clock } from "../sim/clock.ts";
import { compileFilter, matchCompiled, validateFilter, type CompiledFilter } from "./filter.ts";
import type { Filter, NostrEvent, RelayMessage } from "./messages.ts";
import { EventStore, expirationOf, isProtected, kindClass } from "./store.ts";

export interface RelayLimits {
  /** Largest client frame accepted, in bytes (UTF-8). */
  maxMessageBytes: number;
  /** Largest event accepted (its JSON), in bytes. */
  maxEventBytes: number;
  maxEventTags: number;
  /** Open subscriptions per connection. */
  maxSubscriptions: number;
  /** Filters per REQ. */
  maxFilters: number;
  /** Largest `limit` honoured (larger ones are clamped); also caps a REQ without limit. */
  maxLimit: number;
  /** Values in one ids/authors/kinds/#x list. */
  maxFilterValues: number;
  maxSubscriptionIdLength: number;
  /** EVENT frames per connection per second (token bucket on the relay's clock); undefined = no limit. */
  maxEventsPerSecond?: number;
  /** REQ frames per connection per second (token bucket); undefined = no limit. */
  maxReqsPerSecond?: number;
  /** Refuse events whose created_at is more than this many seconds ahead; undefined = no limit. */
  maxFutureSeconds?: number;
}

export const DEFAULT_LIMITS: RelayLimits = {
  maxMessageBytes: 512 * 1024,
  maxEventBytes: 256 * 1024,
  maxEventTags: 2500,
  maxSubscriptions: 64,
  maxFilters: 16,
  maxLimit: 5000,
  maxFilterValues: 1000,
  maxSubscriptionIdLength: 64,
};

/** What a fault layer may decide about an otherwise valid EVENT before it is stored. */
export interface PublishDecision {
  /** Answer `OK false` with this message (a NIP-01 prefixed reason) and do not store. */
  refuse?: string;
  /** Send no OK at all. */
  silent?: boolean;
  /** With `silent`: whether the event is still stored and delivered (default true). */
  store?: boolean;
}

/** Where the fault layer (the nemesis) plugs into the core. All optional. */
export interface RelayHooks {
  beforeAccept?(session: CoreSession, event: NostrEvent): PublishDecision | undefined;
  /** Send EOSE after `after` of `total` stored events; `withholdRest` drops the remainder instead of sending it after EOSE. */
  planEose?(session: CoreSession, subId: string, total: number): { after: number; withholdRest: boolean } | undefined;
  onEvicted?(events: NostrEvent[]): void;
}

export interface RelayCoreOptions {
  name: string;
  clock: Clock;
  limits?: Partial<RelayLimits>;
  /** Refuse NIP-70 protected events (`["-"]` tag) with `blocked:`, as many public relays do. */
  refuseProtected?: boolean;
  /** Check Schnorr signatures (default true). Ids are always checked. */
  verifySignatures?: boolean;
  /** Retention limit: keep at most this many events (oldest created_at evicted). */
  maxStoredEvents?: number;
  hooks?: RelayHooks;
  /**
   * NIP-42: events of these kinds are served (stored and live) only to an authenticated client
   * named in their `p` tags, and a REQ asking for them without AUTH is CLOSED "auth-required:"
   * (strfry's default for kind 1059). The relay sends an AUTH challenge on connect.
   */
  authRequiredForKinds?: number[];
  /** NIP-42: refuse EVENTs with `auth-required:` until the connection authenticated (any key). */
  authRequiredToPublish?: boolean;
  /** Share verified signatures between relays (default: a cache of this relay's own). */
  signatureCache?: SignatureCache;
  /**
   * The Schnorr verifier (default: the process's current one from `src/nostr/verify.ts`, WASM
   * libsecp256k1 once `loadSignatureVerifier()` has run, else pure JS).
   */
  signatureVerifier?: SignatureVerifier;
}

/**
 * Remembers (id, sig) pairs whose Schnorr signature verified. The id commits to the pubkey and
 * content, so a pair verified once is valid everywhere: relays of one SimNetwork share a cache
 * and an event published to several relays is verified once. Bounded (oldest forgotten).
 */
export class SignatureCache {
  private readonly seen = new Set<string>();
  hits = 0;
  constructor(readonly max = 200_000) {}

  has(e: NostrEvent): boolean {
    const ok = this.seen.has(e.id + e.sig);
    if (ok) this.hits++;
    return ok;
  }

  /** Record a pair verified elsewhere (e.g. by a worker thread). */
  addPair(id: string, sig: string): void {
    this.add({ id, sig } as NostrEvent);
  }

  add(e: NostrEvent): void {
    if (this.seen.size >= this.max) {
      const first = this.seen.values().next();
      if (!first.done) this.seen.delete(first.value);
    }
    this.seen.add(e.id + e.sig);
  }
}

export type FrameSink = (msg: RelayMessage) => void;

export interface RelayStats {
  framesIn: number;
  eventsAccepted: number;
  eventsRejected: number;
  reqs: number;
  /** EVENT frames sent for live subscriptions (fan-out). */
  liveDeliveries: number;
  /** EVENT frames sent in answer to REQ (stored events). */
  storedDeliveries: number;
  notices: number;
  /** The Schnorr verifier in use ("wasm-libsecp256k1", "js-noble", or "off"); read-only. */
  readonly signatureVerifier: string;
}

interface Subscription {
  id: string;
  filters: CompiledFilter[];
}

const HEX64 = /^[0-9a-f]{64}$/;
const HEX128 = /^[0-9a-f]{128}$/;
const ID_IN_TEXT = /"id"\s*:\s*"([0-9a-f]{64})"/;

export class CoreSession {
  readonly subs = new Map<string, Subscription>();
  /** NIP-42 challenge sent to this connection, and the pubkeys it authenticated as. */
  readonly challenge: string;
  readonly authed = new Set<string>();
  private readonly eventBucket: TokenBucket;
  private readonly reqBucket: TokenBucket;
  closed = false;

  constructor(
    readonly core: RelayCore,
    /** Connection id, unique within the relay. */
    readonly id: string,
    /** Label of the client at the other end (agent name, remote address). */
    readonly client: string,
    readonly sink: FrameSink,
  ) {
    this.challenge = bytesToHex(sha256(utf8ToBytes(`${core.name}/${id}/challenge`))).slice(0, 32);
    this.eventBucket = new TokenBucket(core.limits.maxEventsPerSecond, core.clock.now());
    this.reqBucket = new TokenBucket(core.limits.maxReqsPerSecond, core.clock.now());
  }

  /** A raw text frame from the client. */
  handleText(text: string): void {
    if (this.closed) return;
    const max = this.core.limits.maxMessageBytes;
    if (text.length > max || (text.length * 3 > max && Buffer.byteLength(text, "utf8") > max)) {
      const bytes = Buffer.byteLength(text, "utf8");
      const why = `invalid: message too large (${bytes} bytes, limit ${max})`;
      // Only an object key can match (escaped quotes inside strings cannot), so the event's id is found.
      const m = /^\[\s*"EVENT"/.test(text) ? ID_IN_TEXT.exec(text) : null;
      this.core.stats.framesIn++;
      if (m) this.reject(m[1] as string, why);
      else this.notice(why);
      return;
    }
    let msg: unknown;
    try {
      msg = JSON.parse(text);
    } catch {
      this.core.stats.framesIn++;
      this.notice("invalid: message is not valid JSON");
      return;
    }
    this.handle(msg);
  }

  /** A parsed frame from the client. */
  handle(msg: unknown): void {
    if (this.closed) return;
    this.core.stats.framesIn++;
    if (!Array.isArray(msg) || msg.length === 0 || typeof msg[0] !== "string") {
      this.notice("invalid: a message must be a JSON array starting with its type");
      return;
    }
    switch (msg[0]) {
      case "EVENT":
        this.onEvent(msg);
        return;
      case "REQ":
        this.onReq(msg);
        return;
      case "AUTH":
        this.onAuth(msg);
        return;
      case "CLOSE":
        if (msg.length !== 2 || typeof msg[1] !== "string") {
          this.notice("invalid: CLOSE takes one subscription id");
          return;
        }
        this.subs.delete(msg[1]);
        return;
      default:
        this.notice(`invalid: unsupported message type ${JSON.stringify(msg[0]).slice(0, 40)}`);
    }
  }

  close(): void {
    this.closed = true;
    this.subs.clear();
    this.core.sessions.delete(this.id);
  }

  private notice(text: string): void {
    this.core.stats.notices++;
    this.sink(["NOTICE", text]);
  }

  private reject(id: string, why: string): void {
    this.core.stats.eventsRejected++;
    this.sink(["OK", id, false, why]);
  }

  private onEvent(msg: unknown[]): void {
    const e = msg[1] as Record<string, unknown> | undefined;
    const idOf = typeof e === "object" && e !== null && typeof e.id === "string" && HEX64.test(e.id) ? e.id : undefined;
    const fail = (why: string): void => {
      if (idOf) this.reject(idOf, why);
      else {
        this.core.stats.eventsRejected++;
        this.notice(why);
      }
    };
    if (msg.length !== 2) return fail("invalid: EVENT takes exactly one event");
    const shape = checkShape(e, this.core.limits);
    if (shape) return fail(`invalid: ${shape}`);
    const event = e as unknown as NostrEvent;
    if (this.core.authToPublish && this.authed.size === 0) return fail("auth-required: authenticate (NIP-42) before publishing");
    if (!this.eventBucket.take(this.core.clock.now())) return fail(`rate-limited: more than ${this.core.limits.maxEventsPerSecond} events per second`);
    const json = JSON.stringify(event);
    const size = json.length * 3 > this.core.limits.maxEventBytes ? Buffer.byteLength(json, "utf8") : json.length;
    if (size > this.core.limits.maxEventBytes) {
      return fail(`invalid: event too large (${size} bytes, limit ${this.core.limits.maxEventBytes})`);
    }
    this.core.accept(this, event, fail);
  }

  private onAuth(msg: unknown[]): void {
    const e = msg[1] as Record<string, unknown> | undefined;
    const shape = msg.length === 2 ? checkShape(e, this.core.limits) : "AUTH takes exactly one event";
    if (shape) {
      const id = typeof e === "object" && e !== null && typeof e.id === "string" && HEX64.test(e.id) ? e.id : undefined;
      if (id) this.sink(["OK", id, false, `invalid: ${shape}`]);
      else this.notice(`invalid: ${shape}`);
      return;
    }
    const ev = e as unknown as NostrEvent;
    const no = (why: string): void => this.sink(["OK", ev.id, false, `invalid: ${why}`]);
    if (ev.kind !== 22242) return no("AUTH event must be kind 22242");
    if (!ev.tags.some((t) => t[0] === "challenge" && t[1] === this.challenge)) return no("AUTH challenge does not match");
    if (!ev.tags.some((t) => t[0] === "relay" && typeof t[1] === "string" && t[1].length > 0)) return no("AUTH event needs a relay tag");
    const nowSec = Math.floor(this.core.clock.now() / 1000);
    if (Math.abs(ev.created_at - nowSec) > 600) return no("AUTH created_at is more than 10 minutes off");
    const own: NostrEvent = { id: ev.id, pubkey: ev.pubkey, created_at: ev.created_at, kind: ev.kind, tags: ev.tags, content: ev.content, sig: ev.sig };
    if (eventId(own) !== own.id) return no("event id does not match the serialized event");
    if (!this.core.verifier.verify(own)) return no("signature verification failed");
    this.authed.add(own.pubkey);
    this.sink(["OK", own.id, true, ""]);
  }

  /** May this connection see this event (NIP-42 restricted kinds)? */
  canSee(e: NostrEvent): boolean {
    if (!this.core.restrictedKinds.has(e.kind)) return true;
    if (this.authed.size === 0) return false;
    return e.tags.some((t) => t[0] === "p" && t[1] !== undefined && this.authed.has(t[1]));
  }

  private onReq(msg: unknown[]): void {
    const L = this.core.limits;
    const subId = msg[1];
    if (typeof subId !== "string" || subId.length === 0 || subId.length > L.maxSubscriptionIdLength) {
      this.notice(`invalid: REQ needs a subscription id of 1 to ${L.maxSubscriptionIdLength} characters`);
      return;
    }
    const closed = (why: string): void => {
      this.subs.delete(subId);
      this.sink(["CLOSED", subId, why]);
    };
    const filters = msg.slice(2);
    if (filters.length === 0) return closed("invalid: REQ needs at least one filter");
    if (filters.length > L.maxFilters) return closed(`invalid: too many filters (${filters.length}, limit ${L.maxFilters})`);
    for (const f of filters) {
      const bad = validateFilter(f, { maxLimit: L.maxLimit, maxValues: L.maxFilterValues });
      if (bad) return closed(`invalid: ${bad}`);
    }
    if (!this.reqBucket.take(this.core.clock.now())) {
      this.subs.delete(subId);
      this.sink(["CLOSED", subId, `rate-limited: more than ${L.maxReqsPerSecond} REQs per second`]);
      return;
    }
    if (!this.subs.has(subId) && this.subs.size >= L.maxSubscriptions) {
      this.sink(["CLOSED", subId, `rate-limited: too many subscriptions (limit ${L.maxSubscriptions})`]);
      return;
    }
    const typed = filters as Filter[];
    const restricted = this.core.restrictedKinds;
    if (restricted.size > 0 && this.authed.size === 0 && typed.some((f) => f.kinds?.some((k) => restricted.has(k)))) {
      this.subs.delete(subId);
      this.sink(["CLOSED", subId, `auth-required: kinds ${[...restricted].join(", ")} are served only to their authenticated recipient (NIP-42)`]);
      return;
    }
    this.core.stats.reqs++;
    this.subs.set(subId, { id: subId, filters: typed.map(compileFilter) });
    let stored = this.core.store.query(typed, Math.floor(this.core.clock.now() / 1000), L.maxLimit);
    if (restricted.size > 0) stored = stored.filter((e) => this.canSee(e));
    const plan = this.core.hooks.planEose?.(this, subId, stored.length);
    const eoseAt = plan ? Math.max(0, Math.min(plan.after, stored.length)) : stored.length;
    for (let i = 0; i < stored.length; i++) {
      if (i === eoseAt) {
        this.sink(["EOSE", subId]);
        if (plan?.withholdRest) return;
      }
      this.core.stats.storedDeliveries++;
      this.sink(["EVENT", subId, stored[i] as NostrEvent]);
    }
    if (eoseAt >= stored.length) this.sink(["EOSE", subId]);
  }
}

/** A rate as a token bucket on the relay's clock; no rate means no limit. */
class TokenBucket {
  private tokens: number;
  constructor(
    private readonly rate: number | undefined,
    private at: number,
  ) {
    this.tokens = rate ?? 0;
  }

  take(now: number): boolean {
    if (this.rate === undefined) return true;
    this.tokens = Math.min(this.rate, this.tokens + ((now - this.at) / 1000) * this.rate);
    this.at = now;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}

/** Returns an error text when `e` is not a well-formed Nostr event. */
export function checkShape(e: unknown, limits: Pick<RelayLimits, "maxEventTags">): string | undefined {
  if (typeof e !== "object" || e === null || Array.isArray(e)) return "event must be a JSON object";
  const o = e as Record<string, unknown>;
  if (typeof o.id !== "string" || !HEX64.test(o.id)) return "id must be 64 lowercase hex characters";
  if (typeof o.pubkey !== "string" || !HEX64.test(o.pubkey)) return "pubkey must be 64 lowercase hex characters";
  if (typeof o.sig !== "string" || !HEX128.test(o.sig)) return "sig must be 128 lowercase hex characters";
  if (!Number.isInteger(o.kind) || (o.kind as number) < 0 || (o.kind as number) > 65535) return "kind must be an integer between 0 and 65535";
  if (!Number.isInteger(o.created_at) || (o.created_at as number) < 0) return "created_at must be a non-negative integer";
  if (typeof o.content !== "string") return "content must be a string";
  if (!Array.isArray(o.tags) || !o.tags.every((t) => Array.isArray(t) && t.every((x) => typeof x === "string"))) {
    return "tags must be an array of arrays of strings";
  }
  if (o.tags.length > limits.maxEventTags) return `too many tags (${o.tags.length}, limit ${limits.maxEventTags})`;
  return undefined;
}

export class RelayCore {
  readonly name: string;
  readonly clock: Clock;
  readonly limits: RelayLimits;
  refuseProtected: boolean;
  verifySignatures: boolean;
  readonly signatureCache: SignatureCache;
  readonly restrictedKinds: Set<number>;
  readonly authToPublish: boolean;
  private readonly fixedVerifier: SignatureVerifier | undefined;
  hooks: RelayHooks;
  store: EventStore;
  readonly sessions = new Map<string, CoreSession>();
  readonly stats: RelayStats;
  private nextSession = 1;

  constructor(opts: RelayCoreOptions) {
    this.name = opts.name;
    this.clock = opts.clock;
    this.limits = { ...DEFAULT_LIMITS, ...opts.limits };
    this.refuseProtected = opts.refuseProtected ?? false;
    this.verifySignatures = opts.verifySignatures ?? true;
    this.hooks = opts.hooks ?? {};
    this.signatureCache = opts.signatureCache ?? new SignatureCache();
    this.restrictedKinds = new Set(opts.authRequiredForKinds ?? []);
    this.authToPublish = opts.authRequiredToPublish ?? false;
    this.fixedVerifier = opts.signatureVerifier;
    // Start loading WASM libsecp256k1 (once per process); until it is ready the pure-JS verifier
    // runs. Verdicts are the same either way, so everything here stays deterministic.
    if (this.verifySignatures && !this.fixedVerifier) void loadSignatureVerifier();
    const stats = { framesIn: 0, eventsAccepted: 0, eventsRejected: 0, reqs: 0, liveDeliveries: 0, storedDeliveries: 0, notices: 0 };
    this.stats = Object.defineProperty(stats, "signatureVerifier", { get: () => this.verifierName, enumerable: true }) as RelayStats;
    this.store = new EventStore({ maxEvents: opts.maxStoredEvents });
  }

  /** The Schnorr verifier this relay uses now. */
  get verifier(): SignatureVerifier {
    return this.fixedVerifier ?? currentSignatureVerifier();
  }

  /** Which verifier runs ("off" when signatures are not checked), for NIP-11 and stats. */
  get verifierName(): string {
    return this.verifySignatures ? this.verifier.name : "off";
  }

  openSession(client: string, sink: FrameSink, id?: string): CoreSession {
    const sid = id ?? `${this.name}#${this.nextSession++}`;
    const s = new CoreSession(this, sid, client, sink);
    this.sessions.set(sid, s);
    if (this.restrictedKinds.size > 0 || this.authToPublish) sink(["AUTH", s.challenge]);
    return s;
  }

  /**
   * Publish events as a client would (same checks and answers), for preloading a relay, e.g.
   * from a capture. Returns what was refused and why; duplicates count as accepted.
   */
  load(events: readonly unknown[]): { accepted: number; refused: { id: string; reason: string }[] } {
    const refused: { id: string; reason: string }[] = [];
    let accepted = 0;
    const s = this.openSession("loader", (m) => {
      if (m[0] === "OK") {
        if (m[2]) accepted++;
        else refused.push({ id: m[1], reason: m[3] });
      } else if (m[0] === "NOTICE") refused.push({ id: "", reason: m[1] });
    });
    try {
      for (const e of events) s.handle(["EVENT", e]);
    } finally {
      s.close();
    }
    return { accepted, refused };
  }

  /** Drop every session and its subscriptions (a crash). */
  dropAllSessions(): CoreSession[] {
    const all = [...this.sessions.values()];
    for (const s of all) s.close();
    return all;
  }

  /** Replace the store with an empty one (restart without persistence). */
  resetStore(): void {
    this.store = new EventStore({ maxEvents: this.store.maxEvents });
  }

  /** Validate the event's id, signature and policies, store it and fan it out. */
  accept(session: CoreSession, event: NostrEvent, fail: (why: string) => void): void {
    // A copy the relay owns (clients may mutate what they published, and an object may carry
    // nostr-tools' "already verified" mark, which must not be trusted).
    const own: NostrEvent = { id: event.id, pubkey: event.pubkey, created_at: event.created_at, kind: event.kind, tags: event.tags.map((t) => t.slice()), content: event.content, sig: event.sig };
    if (eventId(own) !== own.id) return fail("invalid: event id does not match the serialized event");
    if (this.verifySignatures) {
      if (!this.signatureCache.has(own)) {
        if (!this.verifier.verify(own)) return fail("invalid: signature verification failed");
        this.signatureCache.add(own);
      }
      // Verified here (or by another relay of the network, or a worker, for this id and sig):
      // receivers' nostr-tools verifyEvent may rely on it.
      own[verifiedSymbol] = true;
    }
    const nowSec = Math.floor(this.clock.now() / 1000);
    const exp = expirationOf(event);
    if (exp !== undefined && exp <= nowSec) return fail("invalid: event has expired (NIP-40)");
    if (this.limits.maxFutureSeconds !== undefined && event.created_at > nowSec + this.limits.maxFutureSeconds) {
      return fail(`invalid: created_at is more than ${this.limits.maxFutureSeconds} seconds in the future`);
    }
    if (this.refuseProtected && isProtected(event)) return fail("blocked: protected events (NIP-70) are not accepted here");
    const decision = this.hooks.beforeAccept?.(session, event);
    if (decision?.refuse) return fail(decision.refuse);
    const answer = (ok: boolean, text: string): void => {
      if (!decision?.silent) session.sink(["OK", event.id, ok, text]);
    };
    if (decision?.silent && decision.store === false) {
      this.stats.eventsRejected++;
      return;
    }
    if (kindClass(own.kind) !== "ephemeral") {
      const r = this.store.put(own);
      if (!r.stored) {
        const dup = r.reason.startsWith("duplicate: already");
        if (!dup) this.stats.eventsRejected++;
        answer(dup, r.reason);
        return;
      }
      if (r.evicted.length > 0) this.hooks.onEvicted?.(r.evicted);
    }
    this.stats.eventsAccepted++;
    answer(true, "");
    this.broadcast(own);
  }

  /** Deliver an accepted event to every live subscription that matches it. */
  broadcast(event: NostrEvent): void {
    const restricted = this.restrictedKinds.has(event.kind);
    for (const s of this.sessions.values()) {
      if (restricted && !s.canSee(event)) continue;
      for (const sub of s.subs.values()) {
        for (const f of sub.filters) {
          if (matchCompiled(f, event)) {
            this.stats.liveDeliveries++;
            s.sink(["EVENT", sub.id, event]);
            break;
          }
        }
      }
    }
  }
}
