/**
 * EngineAgent: an in-process Marmot client built on the project's engine. It owns an identity,
 * an engine (memory or durable storage), connections to its relays and an online/offline state.
 * It subscribes to what a real client needs (445 by `#h` for its groups, 1059 by `#p` to itself,
 * KeyPackages of the people it invites), publishes with acks (a commit is confirmed only after
 * at least one relay OK), catches up after being offline (since-cursor or full history, waiting
 * for EOSE from every relay unless the `trustFirstEose` quirk is on), restarts from its store,
 * and records everything into the history.
 *
 * Received events are queued, never processed on arrival: the driver calls `processInbox()` in a
 * fixed agent order, which keeps simulation deterministic.
 */
import { bytesToHex, hexToBytes } from "@noble/hashes/utils.js";
import type { Event as NostrEvent, Filter } from "nostr-tools";
import { unwrapEvent } from "nostr-tools/nip59";
import { AgentMedia } from "../blossom/agent-media.ts";
import { getPublicKey } from "nostr-tools/pure";
import type { EngineOptions, EngineQuirks, GroupSummary, MarmotEngine, PendingCommit, ProcessOutcome } from "../engine/api.ts";
import type { EngineStorage } from "../engine/storage.ts";
import { HarnessError } from "../errors.ts";
import type { ProtocolProfile } from "../profile.ts";
import type { PublishAck, RelayConnection, RelaySubscription } from "../relays/types.ts";
import type { CatchUpMode, QuirkName } from "../scenarios/types.ts";
import type { AgentContext } from "./context.ts";
import { isTimedEngine } from "./worker-engine.ts";
import type { Agent, AgentGroupView, CatchUpReport, CommitReport, ProbeOutcome, SendRequest } from "./types.ts";

export class AgentError extends HarnessError {}

export type EngineFactory = (opts: EngineOptions) => MarmotEngine | Promise<MarmotEngine>;

export interface EngineAgentOptions {
  name: string;
  secretKey: Uint8Array;
  relays: string[];
  engineFactory: EngineFactory;
  /** Called once per (re)start; the same store is handed back after a restart. */
  storage: EngineStorage;
  /** Whether the store survives a restart (memory stores are kept by the agent, so yes, unless lost on purpose). */
  durable: boolean;
  profile?: ProtocolProfile;
  quirks?: readonly QuirkName[];
  catchUp?: CatchUpMode;
  randomBytes?: (n: number) => Uint8Array;
  outOfBandRatchetTree?: boolean;
  /** Group names we know, for views. */
  clientName?: string;
  /**
   * Default true (MIP02-WL-13/14): after joining, catch up on the group's history, then commit a
   * self-update before sending anything, so the KeyPackage's init and leaf keys are rotated away.
   */
  selfUpdateAfterJoin?: boolean;
}

const ENGINE_QUIRKS: Partial<Record<QuirkName, keyof EngineQuirks>> = {
  skipInnerAuthorCheck: "skipInnerAuthorCheck",
  omitMlsProposals: "omitMlsProposalsTag",
  protectedKeyPackages: "protectedKeyPackages",
  noPersistAfterSend: "noPersistAfterSend",
};

/** NIP-59 gift wraps are back-dated up to two days: since-cursor catch-up must look that far back for 1059. */
const GIFT_WRAP_SLACK_S = 2 * 24 * 3600;
const GROUP_EVENT_SLACK_S = 60;
/** Bound on chained re-keying follow-up commits after one commit. */
const MAX_FOLLOW_UPS = 3;
/** How many times an owed re-key is retried before the agent gives up on it (and says so). */
const MAX_OWED_REKEY_ATTEMPTS = 5;

interface Inbound {
  event: NostrEvent;
  relay: string;
}

/** The engine's answer to one event, computed ahead of its turn or in place. */
interface Computed {
  outcomes?: ProcessOutcome[];
  error?: unknown;
  /** Engine time, ms (metrics only). */
  ms: number;
}

interface Ahead {
  eventId: string;
  before: GroupSummary | undefined;
  result: Promise<Computed>;
}

export class EngineAgent implements Agent {
  readonly name: string;
  readonly pubkey: string;
  readonly implementation = "engine";
  readonly quirks: readonly QuirkName[];
  private engine!: MarmotEngine;
  private readonly conns = new Map<string, RelayConnection>();
  private subs: RelaySubscription[] = [];
  private online = false;
  private started = false;
  private inbox: Inbound[] = [];
  private readonly seenIds = new Set<string>();
  /** Newest created_at seen per filter family, for since-cursor catch-up. */
  private cursor = 0;
  private readonly keyPackages: NostrEvent[] = [];
  private keyPackageD: string | undefined;
  private readonly sentAt = new Map<string, number>();
  /** MIP-04 attachments and MIP-01 group images (src/blossom/agent-media.ts). */
  private readonly media: AgentMedia;
  /** Our last confirmed re-keying commit per group and whom it kept out (see rekeyAgainIfLost). */
  private readonly rekeys = new Map<string, { epoch: number; removed: string[] }>();
  /** Re-keys owed per group: a re-keying follow-up no relay acknowledged while someone removed is still out. */
  private readonly owedRekeys = new Map<string, { removed: string[]; attempts: number; notBefore: number }>();
  private settlingRekeys = false;
  /** Engine work started ahead for the first waiting event (`prefetch`). */
  private ahead: Ahead | undefined;

  constructor(
    private readonly ctx: AgentContext,
    private readonly opts: EngineAgentOptions,
  ) {
    this.name = opts.name;
    this.pubkey = getPublicKey(opts.secretKey);
    this.quirks = [...(opts.quirks ?? [])];
    const rb = opts.randomBytes ?? ((n: number) => crypto.getRandomValues(new Uint8Array(n)));
    this.media = new AgentMedia({ name: opts.name, engine: () => this.engine, secretKey: opts.secretKey, randomBytes: rb, blossomUrl: ctx.blossomUrl, rec: (t, op, d) => this.rec(t, op, d), recordedKeys: ctx.recordedKeys });
  }

  private hasQuirk(q: QuirkName): boolean {
    return this.quirks.includes(q);
  }

  private nowS(): number {
    return Math.floor(this.ctx.clock.now() / 1000);
  }

  private rec(type: "invoke" | "ok" | "fail" | "info", op: string, data: Record<string, unknown> = {}): void {
    this.ctx.history.record(this.name, type, op, data);
  }

  capabilities(): string[] {
    const caps = ["restart", "profile:R1", "profile:R0", "spoof-author"];
    if (this.opts.outOfBandRatchetTree) caps.push("out-of-band-tree");
    if (this.ctx.blossomUrl) caps.push("media", "group-image", "media-probe", "media-tamper", ...((this.opts.profile ?? "R1") === "R0" ? [] : ["group-image-v2"]));
    for (const q of this.quirks) caps.push(`quirk:${q}`);
    return caps;
  }

  isOnline(): boolean {
    return this.online;
  }

  private async makeEngine(): Promise<void> {
    const quirks: Partial<EngineQuirks> = {};
    for (const q of this.quirks) {
      const k = ENGINE_QUIRKS[q];
      if (k) quirks[k] = true;
    }
    const options: EngineOptions = {
      secretKey: this.opts.secretKey,
      profile: this.opts.profile ?? "R1",
      storage: this.opts.storage,
      quirks,
      clientName: this.opts.clientName ?? "marmot-harness",
    };
    if (this.opts.randomBytes) options.randomBytes = this.opts.randomBytes;
    if (this.opts.outOfBandRatchetTree) options.outOfBandRatchetTree = true;
    this.engine = await this.opts.engineFactory(options);
  }

  async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    await this.makeEngine();
    this.rec("info", "identity", { pubkey: this.pubkey, secretKey: bytesToHex(this.opts.secretKey), quirks: [...this.quirks], relays: this.opts.relays });
    for (const url of this.opts.relays) {
      const c = this.ctx.connect(url, this.name);
      this.conns.set(url, c);
      await this.ctx.gate.wait(c.connect());
    }
    this.online = true;
    this.rec("info", "online", { mode: "start" });
    this.resubscribe(this.nowS());
  }

  async stop(): Promise<void> {
    if (this.ahead) {
      // stopping: nothing drives the relays any more, so the answer is not applied
      const pending = this.ahead.result;
      this.ahead = undefined;
      await pending;
    }
    this.closeSubs();
    for (const c of this.conns.values()) await c.close();
    this.conns.clear();
    this.online = false;
    this.started = false;
  }

  // ---------------------------------------------------------------- subscriptions

  private closeSubs(): void {
    for (const s of this.subs) s.close();
    this.subs = [];
  }

  private filters(since: number | undefined): Filter[] {
    const fs: Filter[] = [];
    const hs = this.activeGroups().map((g) => g.nostrGroupId);
    if (hs.length > 0) fs.push({ kinds: [445], "#h": hs, ...(since !== undefined ? { since: Math.max(0, since - GROUP_EVENT_SLACK_S) } : {}) });
    fs.push({ kinds: [1059], "#p": [this.pubkey], ...(since !== undefined ? { since: Math.max(0, since - GIFT_WRAP_SLACK_S) } : {}) });
    return fs;
  }

  private activeGroups(): GroupSummary[] {
    return this.engine
      .groups()
      .filter((g) => g.active)
      .sort((a, b) => (a.groupId < b.groupId ? -1 : 1));
  }

  /** Live subscriptions from `since` on every relay; events go to the inbox. */
  private resubscribe(since: number | undefined): void {
    this.closeSubs();
    if (!this.online) return;
    const filters = this.filters(since);
    for (const [url, c] of this.conns) {
      this.subs.push(
        c.subscribe(filters, {
          onEvent: (ev) => this.enqueue(ev, url),
        }),
      );
    }
  }

  private enqueue(event: NostrEvent, relay: string): void {
    if (!this.online) return;
    this.inbox.push({ event, relay });
  }

  hasWork(): boolean {
    return this.inbox.length > 0 || this.owedRekeyDue();
  }

  /** Whether a re-key is owed and due now (see oweRekey). */
  private owedRekeyDue(): boolean {
    if (!this.online || this.owedRekeys.size === 0) return false;
    const now = this.ctx.clock.now();
    for (const o of this.owedRekeys.values()) if (o.notBefore <= now) return true;
    return false;
  }

  // ---------------------------------------------------------------- publishing

  private async publish(event: NostrEvent, purpose: string, extra: Record<string, unknown> = {}): Promise<PublishAck[]> {
    if (!this.online) throw new AgentError("AGENT_OFFLINE", `${this.name} is offline and cannot publish (${purpose})`, { agent: this.name });
    this.ctx.history.noteEvent(event, this.name, { source: this.name });
    this.seenIds.add(event.id);
    this.sentAt.set(event.id, this.ctx.clock.now());
    const relays = [...this.conns.keys()];
    this.rec("invoke", "publish", { eventId: event.id, kind: event.kind, purpose, relays, ...extra });
    const timeoutMs = this.ctx.publishTimeoutMs ?? 5000;
    const acks = await this.ctx.gate.wait(
      Promise.all(
        [...this.conns.values()].map((c) =>
          c.publish(event, { timeoutMs }).catch(
            (e: unknown): PublishAck => ({ relay: c.url, eventId: event.id, ok: false, message: `error: ${(e as Error).message}`, at: this.ctx.clock.now() }),
          ),
        ),
      ),
    );
    const ok = acks.some((a) => a.ok);
    this.rec(ok ? "ok" : "fail", "publish", { eventId: event.id, kind: event.kind, purpose, acks: acks.map((a) => ({ relay: a.relay, ok: a.ok, message: a.message, at: a.at })) });
    return acks;
  }

  /** Publish a commit, confirm it after ≥1 OK (abandon otherwise), then send the Welcomes. */
  private async runCommit(action: string, pending: PendingCommit, createMs: number, added: string[], removed: string[]): Promise<CommitReport> {
    const acks = await this.publish(pending.event, "commit", { groupId: pending.groupId, epoch: pending.fromEpoch, action });
    if (!acks.some((a) => a.ok)) {
      this.engine.abandonCommit(pending.id);
      this.rec("fail", "commit", { action, groupId: pending.groupId, eventId: pending.event.id, code: "COMMIT_NOT_ACKED", message: "no relay acknowledged the commit" });
      throw new AgentError("COMMIT_NOT_ACKED", `${this.name}: no relay acknowledged the ${action} commit ${pending.event.id.slice(0, 12)} (${acks.map((a) => `${a.relay}: ${a.message}`).join("; ")})`, { eventId: pending.event.id });
    }
    const membersBefore = this.engine.group(pending.groupId)?.members ?? [];
    const conf = await this.engine.confirmCommit(pending.id);
    const epoch = Number(conf.epoch);
    if (action === "commit-proposals") {
      // The proposals committed are others' (e.g. SelfRemove): what changed is what the roster says.
      const after = this.engine.group(pending.groupId)?.members ?? [];
      added = after.filter((m) => !membersBefore.includes(m)).sort();
      removed = membersBefore.filter((m) => !after.includes(m)).sort();
    }
    this.rec("ok", "commit", {
      action,
      groupId: pending.groupId,
      eventId: pending.event.id,
      epoch,
      added,
      removed,
      welcomes: conf.welcomes.length,
      // The engine asked for a re-keying follow-up: this commit carries no UpdatePath, so whoever it
      // removed can derive the new epoch's secrets until a commit with a path lands.
      ...(conf.followUpCommit ? { rekeyNeeded: true } : {}),
      ...(pending.welcomeRumorBytes.length ? { welcomeSealBytes: Math.max(...pending.welcomeRumorBytes) } : {}),
      ...(conf.outOfBandTrees ? { outOfBandTree: "non-MIP extension" } : {}),
    });
    await this.snapshot(pending.groupId, "commit");
    for (const o of conf.outcomes ?? []) await this.recordOutcome(o, 0, undefined);
    await this.publishFollowUp(conf.followUpCommit, action, 0, removed);
    const wrapBytes: number[] = [];
    for (const w of conf.welcomes) {
      wrapBytes.push(JSON.stringify(w).length);
      const recipient = w.tags.find((t) => t[0] === "p")?.[1];
      await this.publish(w, "welcome", { groupId: pending.groupId, recipient, ...(conf.outOfBandTrees ? { outOfBandTree: true } : {}) });
    }
    this.resubscribe(this.nowS());
    const report: CommitReport = { eventId: pending.event.id, groupId: pending.groupId, epoch, added, removed, welcomeRumorBytes: pending.welcomeRumorBytes, welcomeWrapBytes: wrapBytes, createMs };
    if (conf.outOfBandTrees) report.outOfBandTrees = Object.fromEntries(Object.entries(conf.outOfBandTrees).map(([k, v]) => [k, bytesToHex(v)]));
    return report;
  }

  /**
   * The engine's re-keying follow-up (a commit whose path-less Remove left the removed member able to
   * derive the next epoch's keys): publish it at once, confirm it after ≥1 OK, and follow its own
   * follow-up, boundedly. The `skipRekeyAfterRemove` quirk drops it (reproduces the gap on purpose).
   * Never throws: the commit that asked for it is already applied.
   */
  private async publishFollowUp(next: PendingCommit | undefined, cause: string, depth: number, removed: string[] = []): Promise<void> {
    if (!next) return;
    if (this.hasQuirk("skipRekeyAfterRemove")) {
      this.engine.abandonCommit(next.id);
      this.rec("info", "note", { text: `quirk skipRekeyAfterRemove: re-keying follow-up after ${cause} not published`, groupId: next.groupId });
      return;
    }
    if (depth >= MAX_FOLLOW_UPS) {
      this.engine.abandonCommit(next.id);
      this.rec("info", "note", { text: `re-keying follow-up chain stopped after ${MAX_FOLLOW_UPS} commits`, groupId: next.groupId });
      return;
    }
    const action = "rekey-after-remove";
    this.rec("invoke", "commit", { action, groupId: next.groupId, epoch: next.fromEpoch, cause, added: [], removed: [] });
    let acks: PublishAck[];
    try {
      acks = await this.publish(next.event, "commit", { groupId: next.groupId, epoch: next.fromEpoch, action });
    } catch (e) {
      this.engine.abandonCommit(next.id);
      this.rec("fail", "commit", { action, groupId: next.groupId, eventId: next.event.id, code: e instanceof HarnessError ? e.code : "PUBLISH_FAILED", message: (e as Error).message });
      this.oweRekey(next.groupId, removed);
      return;
    }
    if (!acks.some((a) => a.ok)) {
      this.engine.abandonCommit(next.id);
      this.rec("fail", "commit", { action, groupId: next.groupId, eventId: next.event.id, code: "COMMIT_NOT_ACKED", message: "no relay acknowledged the re-keying commit" });
      this.oweRekey(next.groupId, removed);
      return;
    }
    let conf: Awaited<ReturnType<MarmotEngine["confirmCommit"]>>;
    try {
      conf = await this.engine.confirmCommit(next.id);
    } catch (e) {
      this.rec("fail", "commit", { action, groupId: next.groupId, eventId: next.event.id, code: e instanceof HarnessError ? e.code : "ENGINE_ERROR", message: (e as Error).message });
      return;
    }
    this.rec("ok", "commit", { action, groupId: next.groupId, eventId: next.event.id, epoch: Number(conf.epoch), added: [], removed: [], welcomes: conf.welcomes.length });
    if (removed.length) this.rekeys.set(next.groupId, { epoch: Number(conf.epoch), removed });
    await this.snapshot(next.groupId, "commit");
    for (const o of conf.outcomes ?? []) await this.recordOutcome(o, 0, undefined);
    await this.publishFollowUp(conf.followUpCommit, action, depth + 1, removed);
  }

  /** Remember a re-key that did not go out, to be made (a self-update) before the next send or commit, or after catching up. */
  private oweRekey(groupId: string, removed: string[]): void {
    if (removed.length === 0) return; // nobody to keep out (e.g. the follow-up of a group-data change)
    const prev = this.owedRekeys.get(groupId);
    this.owedRekeys.set(groupId, { removed: [...new Set([...(prev?.removed ?? []), ...removed])], attempts: prev?.attempts ?? 0, notBefore: this.ctx.clock.now() });
    this.rec("info", "note", { text: "re-keying commit not acknowledged by any relay; owed before this member sends or commits again", groupId });
  }

  /**
   * Make the re-keys owed (see oweRekey): a self-update per group whose removed members are still out.
   * Called before a send or a commit of ours, after a catch-up, and whenever the inbox is processed
   * (`hasWork()` is true while one is due, so the runner comes back for it). A failed try is retried
   * after 1, 2, 4, 8 s; after MAX_OWED_REKEY_ATTEMPTS the agent gives up on it, saying so. Never throws.
   */
  private async settleOwedRekeys(): Promise<void> {
    if (this.owedRekeys.size === 0 || !this.online || this.settlingRekeys) return;
    this.settlingRekeys = true;
    try {
      for (const [groupId, owed] of [...this.owedRekeys]) {
        if (owed.notBefore > this.ctx.clock.now()) continue;
        const g = this.engine.group(groupId);
        if (!g?.active || owed.removed.every((m) => g.members.includes(m))) {
          this.owedRekeys.delete(groupId); // left the group, or everyone removed is back
          continue;
        }
        this.owedRekeys.delete(groupId);
        try {
          await this.commitWith("rekey-after-remove", groupId, () => this.engine.selfUpdate(groupId, this.nowS()), [], []);
          this.rec("info", "note", { text: "owed re-key made (the earlier one was not acknowledged)", groupId });
        } catch (e) {
          const attempts = owed.attempts + 1;
          if (attempts < MAX_OWED_REKEY_ATTEMPTS) this.owedRekeys.set(groupId, { removed: owed.removed, attempts, notBefore: this.ctx.clock.now() + 1000 * 2 ** (attempts - 1) });
          this.rec("info", "note", { text: `owed re-key failed (${attempts}/${MAX_OWED_REKEY_ATTEMPTS}): ${(e as Error).message}`, groupId });
        }
      }
    } finally {
      this.settlingRekeys = false;
    }
  }

  /**
   * Our re-keying commit can still lose a commit race (a competing commit for the same epoch wins and
   * our branch is rolled back). If whoever we removed is still out of the group, the group again has
   * no commit with a path since their removal: re-key once more, with a self-update.
   */
  private async rekeyAgainIfLost(o: Extract<ProcessOutcome, { kind: "commit" }>): Promise<void> {
    const r = this.rekeys.get(o.groupId);
    if (!r) return;
    if (!o.rolledBack) {
      if (o.epoch > BigInt(r.epoch)) this.rekeys.delete(o.groupId); // buried under a later commit
      return;
    }
    if (o.epoch > BigInt(r.epoch)) return; // the race was over a later epoch: our re-key stands
    this.rekeys.delete(o.groupId);
    const g = this.engine.group(o.groupId);
    if (!g?.active || !this.online || this.hasQuirk("skipRekeyAfterRemove")) return;
    const stillOut = r.removed.filter((m) => !g.members.includes(m));
    if (stillOut.length === 0) return; // the removal itself lost: nobody to keep out
    this.rec("info", "note", { text: `re-keying commit lost a commit race to ${o.eventId.slice(0, 12)}; re-keying again`, groupId: o.groupId });
    try {
      await this.commitWith("rekey-after-remove", o.groupId, () => this.engine.selfUpdate(o.groupId, this.nowS()), [], []);
    } catch (e) {
      this.rec("info", "note", { text: `re-keying again failed: ${(e as Error).message}`, groupId: o.groupId });
    }
  }

  async provideOutOfBandTree(treeHex: string): Promise<void> {
    const eng = this.engine as MarmotEngine & { provideRatchetTree?: (tree: Uint8Array, now: number) => Promise<ProcessOutcome[]> };
    if (typeof eng.provideRatchetTree !== "function") throw new AgentError("NO_OOB_TREE", `${this.name}'s engine cannot take an out-of-band ratchet tree`);
    const outcomes = await eng.provideRatchetTree(hexToBytes(treeHex), this.nowS());
    for (const o of outcomes) await this.recordOutcome(o, 0, undefined);
    const joined = outcomes.flatMap((o) => (o.kind === "welcome" ? [o.groupId] : []));
    if (joined.length) await this.afterJoin(undefined, joined);
  }

  private async timed<T>(f: () => Promise<T>): Promise<{ value: T; ms: number }> {
    const t0 = performance.now();
    const value = await f();
    return { value, ms: performance.now() - t0 };
  }

  private requireGroup(groupId: string): GroupSummary {
    const g = this.engine.group(groupId);
    if (!g) throw new AgentError("AGENT_NO_GROUP", `${this.name} is not in group ${groupId.slice(0, 12)}`, { agent: this.name, groupId });
    return g;
  }

  private requireOnline(what: string): void {
    if (!this.online) throw new AgentError("AGENT_OFFLINE", `${this.name} is offline and cannot ${what}`, { agent: this.name });
  }

  // ---------------------------------------------------------------- KeyPackages

  async publishKeyPackages(count: number, lastResort: boolean): Promise<string[]> {
    this.requireOnline("publish KeyPackages");
    const ids: string[] = [];
    for (let i = 0; i < count; i++) {
      const ev = await this.engine.createKeyPackage({ relays: [...this.conns.keys()], now: this.nowS(), lastResort, ...(this.keyPackageD && i === 0 && count === 1 ? { d: this.keyPackageD } : {}) });
      const d = ev.tags.find((t) => t[0] === "d")?.[1];
      this.keyPackageD ??= d;
      const acks = await this.publish(ev, "keypackage", { d, lastResort });
      if (acks.some((a) => a.ok)) this.keyPackages.push(ev);
      this.rec(acks.some((a) => a.ok) ? "ok" : "fail", "keypackage", { action: "publish", eventId: ev.id, kind: ev.kind, d, acks: acks.map((a) => ({ relay: a.relay, ok: a.ok, message: a.message })) });
      ids.push(ev.id);
    }
    if (count > 0) {
      const list = this.engine.keyPackageRelayList([...this.conns.keys()], this.nowS());
      await this.publish(list, "keypackage-relay-list");
    }
    return ids;
  }

  async rotateKeyPackage(): Promise<string> {
    this.requireOnline("rotate its KeyPackage");
    const d = this.keyPackageD;
    const ev = await this.engine.createKeyPackage({ relays: [...this.conns.keys()], now: this.nowS(), lastResort: true, ...(d ? { d } : {}) });
    const acks = await this.publish(ev, "keypackage", { d: ev.tags.find((t) => t[0] === "d")?.[1], rotation: true });
    this.keyPackages.push(ev);
    this.rec(acks.some((a) => a.ok) ? "ok" : "fail", "keypackage", { action: "rotate", eventId: ev.id, d: ev.tags.find((t) => t[0] === "d")?.[1] });
    return ev.id;
  }

  async deleteKeyPackages(): Promise<string[]> {
    this.requireOnline("delete its KeyPackages");
    const ids: string[] = [];
    for (const kp of this.keyPackages.splice(0)) {
      const del = this.engine.deleteKeyPackage(kp, this.nowS());
      await this.publish(del, "keypackage-delete", { target: kp.id });
      this.rec("ok", "keypackage", { action: "delete", eventId: kp.id, deletion: del.id });
      ids.push(del.id);
    }
    return ids;
  }

  /** Fetch the newest KeyPackage of each invitee from this agent's relays. */
  private async fetchKeyPackages(pubkeys: string[]): Promise<NostrEvent[]> {
    const kinds = this.hasQuirk("only443KeyPackages") ? [443] : [30443, 443];
    const found = await this.query([{ kinds, authors: pubkeys }], "keypackages");
    const out: NostrEvent[] = [];
    const missing: string[] = [];
    for (const pk of pubkeys) {
      const mine = found.events.filter((e) => e.pubkey === pk).sort((a, b) => (b.kind === 30443 ? 1 : 0) - (a.kind === 30443 ? 1 : 0) || b.created_at - a.created_at || (a.id < b.id ? -1 : 1));
      const best = mine[0];
      if (best) out.push(best);
      else missing.push(pk);
    }
    if (missing.length > 0) {
      throw new AgentError("NO_KEYPACKAGE", `${this.name} found no KeyPackage (kinds ${kinds.join("/")}) for ${missing.map((m) => m.slice(0, 12)).join(", ")}`, { missing, kinds });
    }
    return out;
  }

  /**
   * Query every relay; waits for EOSE from all of them (or only the first, with trustFirstEose).
   * A correct client does not take EOSE as proof of completeness either: it pages backwards with
   * `until` from the oldest event it got until a page brings nothing new, which recovers events a
   * relay skipped (bounded delivery queues, early EOSE). The trustFirstEose quirk does one pass.
   */
  private async query(filters: Filter[], purpose: string): Promise<{ events: NostrEvent[]; eoseFrom: string[]; complete: boolean }> {
    const trustFirst = this.hasQuirk("trustFirstEose");
    const all = new Map<string, NostrEvent>();
    let first = await this.queryOnce(filters);
    for (const e of first.events) all.set(e.id, e);
    const eoseFrom = first.eoseFrom;
    let complete = first.complete;
    let pages = 0;
    if (!trustFirst) {
      let batch = first.events;
      while (batch.length > 0 && pages < 50) {
        pages++;
        const oldest = Math.min(...batch.map((e) => e.created_at));
        const paged = filters.map((f) => ({ ...f, until: oldest }));
        first = await this.queryOnce(paged);
        batch = first.events.filter((e) => !all.has(e.id));
        for (const e of batch) all.set(e.id, e);
        complete = complete && first.complete;
      }
    }
    this.rec("info", "query", { purpose, events: all.size, eoseFrom, complete, pages });
    // Oldest first; events of the same second in the order they were first published (the history
    // knows it), not by id: ids are random, and an id order would make runs differ between seeds' replays.
    const seen = (e: NostrEvent): number => this.ctx.history.firstSeen(e.id) ?? Number.MAX_SAFE_INTEGER;
    const sorted = [...all.values()].sort((a, b) => a.created_at - b.created_at || seen(a) - seen(b) || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    return { events: sorted, eoseFrom, complete };
  }

  private async queryOnce(filters: Filter[]): Promise<{ events: NostrEvent[]; eoseFrom: string[]; complete: boolean }> {
    const events = new Map<string, NostrEvent>();
    const eoseFrom: string[] = [];
    const subs: RelaySubscription[] = [];
    const trustFirst = this.hasQuirk("trustFirstEose");
    let finish!: () => void;
    const done = new Promise<void>((resolve) => (finish = resolve));
    let finished = false;
    const total = this.conns.size;
    for (const [url, c] of this.conns) {
      subs.push(
        c.subscribe(filters, {
          onEvent: (ev) => {
            if (!finished && !events.has(ev.id)) events.set(ev.id, ev);
          },
          onEose: () => {
            if (finished) return;
            eoseFrom.push(url);
            if (trustFirst || eoseFrom.length >= total) {
              finished = true;
              finish();
            }
          },
          onClosed: () => {
            if (finished) return;
            eoseFrom.push(`${url} (closed)`);
            if (eoseFrom.length >= total) {
              finished = true;
              finish();
            }
          },
        }),
      );
    }
    const timeout = this.ctx.sleep(this.ctx.eoseTimeoutMs ?? 10_000).then(() => {
      finished = true;
    });
    await this.ctx.gate.wait(Promise.race([done, timeout]));
    finished = true;
    for (const s of subs) s.close();
    const complete = eoseFrom.filter((e) => !e.endsWith("(closed)")).length >= total;
    return { events: [...events.values()], eoseFrom, complete };
  }

  // ---------------------------------------------------------------- groups

  async createGroup(opts: { name: string; adminPubkeys: string[]; relays: string[] }): Promise<AgentGroupView> {
    this.requireOnline("create a group");
    this.rec("invoke", "create-group", { name: opts.name });
    const g = await this.engine.createGroup({ name: opts.name, admins: opts.adminPubkeys, relays: opts.relays, now: this.nowS() });
    this.rec("ok", "create-group", { groupId: g.groupId, nostrGroupId: g.nostrGroupId, epoch: g.epoch });
    await this.snapshot(g.groupId, "create");
    this.resubscribe(this.nowS());
    return this.view(g);
  }

  private async commitWith(action: string, groupId: string, make: () => Promise<PendingCommit>, added: string[], removed: string[]): Promise<CommitReport> {
    this.requireOnline(action);
    if (action !== "rekey-after-remove") await this.settleOwedRekeys();
    const g = this.requireGroup(groupId);
    this.rec("invoke", "commit", { action, groupId, epoch: g.epoch, added, removed });
    let made: { value: PendingCommit; ms: number };
    try {
      made = await this.timed(make);
    } catch (e) {
      const code = e instanceof HarnessError ? e.code : "ENGINE_ERROR";
      this.rec("fail", "commit", { action, groupId, code, message: (e as Error).message });
      throw e;
    }
    this.ctx.metrics?.commitCreated?.({ agent: this.name, groupId, members: g.members.length + added.length - removed.length, createMs: made.ms });
    return this.runCommit(action, made.value, made.ms, added, removed);
  }

  async invite(groupId: string, pubkeys: string[]): Promise<CommitReport> {
    this.requireOnline("invite");
    const kps = await this.fetchKeyPackages(pubkeys);
    return this.commitWith("invite", groupId, () => this.engine.inviteMembers(groupId, kps, this.nowS()), pubkeys, []);
  }

  async remove(groupId: string, pubkeys: string[]): Promise<CommitReport> {
    return this.commitWith("remove", groupId, () => this.engine.removeMembers(groupId, pubkeys, this.nowS()), [], pubkeys);
  }

  async selfUpdate(groupId: string): Promise<CommitReport> {
    return this.commitWith("self-update", groupId, () => this.engine.selfUpdate(groupId, this.nowS()), [], []);
  }

  async updateGroupData(groupId: string, patch: { name?: string; description?: string; adminPubkeys?: string[] }): Promise<CommitReport> {
    const p: { name?: string; description?: string; adminPubkeys?: string[] } = {};
    if (patch.name !== undefined) p.name = patch.name;
    if (patch.description !== undefined) p.description = patch.description;
    if (patch.adminPubkeys !== undefined) p.adminPubkeys = patch.adminPubkeys;
    return this.commitWith("update-group-data", groupId, () => this.engine.updateGroupData(groupId, p, this.nowS()), [], []);
  }

  async commitPendingProposals(groupId: string): Promise<CommitReport | undefined> {
    this.requireOnline("commit pending proposals");
    const g = this.requireGroup(groupId);
    const made = await this.timed(() => this.engine.commitPendingProposals(groupId, this.nowS()));
    if (!made.value) return undefined;
    this.rec("invoke", "commit", { action: "commit-proposals", groupId, epoch: g.epoch });
    return this.runCommit("commit-proposals", made.value, made.ms, [], []);
  }

  async leave(groupId: string): Promise<{ eventId: string }> {
    this.requireOnline("leave");
    this.requireGroup(groupId);
    const ev = await this.engine.leaveGroup(groupId, this.nowS());
    const acks = await this.publish(ev, "self-remove", { groupId });
    if (!acks.some((a) => a.ok)) throw new AgentError("PUBLISH_NOT_ACKED", `${this.name}: SelfRemove proposal not acknowledged`, { eventId: ev.id });
    return { eventId: ev.id };
  }

  async send(groupId: string, message: SendRequest): Promise<{ eventId: string }> {
    this.requireOnline("send");
    await this.settleOwedRekeys();
    const g = this.requireGroup(groupId);
    const expectedRecipients = g.members.filter((m) => m !== this.pubkey);
    this.rec("invoke", "send", { groupId, nostrGroupId: g.nostrGroupId, epoch: g.epoch, kind: message.kind ?? 9, content: message.content, expectedRecipients });
    let ev: NostrEvent;
    try {
      const tags = [...(message.tags ?? [])];
      if (message.media) tags.push(await this.media.upload(groupId, message.media));
      const inner = { kind: message.kind ?? 9, content: message.content, ...(tags.length ? { tags } : {}) };
      ev = message.spoofAuthor ? await this.sendSpoofed(groupId, inner, message.spoofAuthor) : await this.engine.sendMessage(groupId, inner, this.nowS());
    } catch (e) {
      this.rec("fail", "send", { groupId, code: e instanceof HarnessError ? e.code : "ENGINE_ERROR", message: (e as Error).message });
      throw e;
    }
    const acks = await this.publish(ev, "application", { groupId, epoch: g.epoch });
    const ok = acks.some((a) => a.ok);
    this.rec(ok ? "ok" : "fail", "send", { groupId, nostrGroupId: g.nostrGroupId, epoch: g.epoch, eventId: ev.id, expectedRecipients, ...(message.spoofAuthor ? { spoofedAuthor: message.spoofAuthor } : {}), ...(message.media ? { media: true } : {}) });
    if (!ok) throw new AgentError("PUBLISH_NOT_ACKED", `${this.name}: message ${ev.id.slice(0, 12)} not acknowledged by any relay`, { eventId: ev.id });
    return { eventId: ev.id };
  }

  /**
   * Adversarial send for interop-bug reproduction: the engine builds the inner rumor from its own
   * `pubkey`, so for this one call the agent makes it claim another account. The MLS sender stays
   * this agent; a receiver that checks the inner author (MIP-03) must drop the message.
   */
  private async sendSpoofed(groupId: string, inner: { kind: number; content: string; tags?: string[][] }, victim: string): Promise<NostrEvent> {
    const eng = this.engine as unknown as { pubkey: string };
    const own = eng.pubkey;
    this.rec("info", "note", { text: `adversarial: inner rumor author forged as ${victim}` });
    try {
      eng.pubkey = victim;
      return await this.engine.sendMessage(groupId, inner, this.nowS());
    } finally {
      eng.pubkey = own;
    }
  }

  /** MIP-01 group image: upload the new image with its upload identity, commit the fields, delete the old blob. */
  async setGroupImage(groupId: string, opts: { bytes: number; version: 1 | 2; clear?: boolean }): Promise<CommitReport & { imageHash?: string; deletedBy?: string | null }> {
    this.requireOnline("set the group image");
    this.requireGroup(groupId);
    const plan = await this.media.prepareImage(groupId, opts);
    const rep = await this.commitWith("set-group-image", groupId, () => this.engine.updateGroupData(groupId, AgentMedia.fields(plan), this.nowS()), [], []);
    const { deletedBy } = await this.media.afterImageCommit(plan);
    return { ...rep, ...(plan.change.prepared ? { imageHash: plan.change.prepared.sha256 } : {}), deletedBy };
  }

  /** Media secrecy probe: every media exporter this agent ever held for the group, on each attachment. */
  async probeMedia(groupId: string, attachments: { eventId: string; imeta: string[] }[]): Promise<{ eventId: string; outcome: "decrypted" | "failed"; code?: string }[]> {
    return this.media.probe(groupId, attachments);
  }

  // ---------------------------------------------------------------- inbound

  async processInbox(): Promise<number> {
    let n = 0;
    while (this.inbox.length > 0) {
      const entry = this.inbox.shift() as Inbound;
      if (await this.processEntry(entry)) n++;
    }
    await this.settleOwedRekeys();
    return n;
  }

  private async processEntry({ event, relay }: Inbound): Promise<boolean> {
    if (this.seenIds.has(event.id)) return false;
    this.seenIds.add(event.id);
    this.ctx.history.noteEvent(event, relay, { relay });
    this.rec("info", "receive", { eventId: event.id, relay, kind: event.kind });
    const ahead = this.ahead?.eventId === event.id ? this.ahead : undefined;
    if (ahead) this.ahead = undefined;
    await this.handle(event, ahead);
    return true;
  }

  /**
   * Compute phase: start the engine's work on the first unseen waiting event, at the current time,
   * recording nothing. `processInbox()` picks the result up when it reaches that event.
   */
  prefetch(): void {
    if (this.ahead || !this.online) return;
    const next = this.inbox.find((i) => !this.seenIds.has(i.event.id));
    if (!next) return;
    const event = next.event;
    const before = event.kind === 445 ? this.groupForH(event) : undefined;
    const now = this.nowS();
    const work = (): Promise<Computed> => this.compute(event, now);
    this.ahead = { eventId: event.id, before, result: this.ctx.serialCompute ? this.ctx.serialCompute(work) : work() };
  }

  /** Apply work started ahead (before going offline, restarting or stopping): nothing computed is left unrecorded. */
  private async drainAhead(): Promise<void> {
    while (this.ahead) {
      const entry = this.inbox.shift();
      if (!entry) {
        // the event left the inbox without being applied: should not happen; keep the engine quiet
        await this.ahead.result;
        this.ahead = undefined;
        return;
      }
      await this.processEntry(entry);
    }
  }

  private async compute(event: NostrEvent, now: number): Promise<Computed> {
    const t0 = performance.now();
    try {
      if (isTimedEngine(this.engine)) {
        const r = await this.engine.processEventTimed(event, now);
        return { outcomes: r.outcomes, ms: r.ms };
      }
      const outcomes = await this.engine.processEvent(event, now);
      return { outcomes, ms: performance.now() - t0 };
    } catch (error) {
      return { error, ms: performance.now() - t0 };
    }
  }

  private async handle(event: NostrEvent, ahead?: Ahead): Promise<ProcessOutcome[]> {
    if (event.created_at > this.cursor) this.cursor = event.created_at;
    const before = ahead ? ahead.before : event.kind === 445 ? this.groupForH(event) : undefined;
    const r = ahead ? await ahead.result : await this.compute(event, this.nowS());
    if (r.error !== undefined || !r.outcomes) {
      const e = r.error;
      const code = e instanceof HarnessError ? e.code : "ENGINE_THREW";
      this.rec("fail", "reject", { eventId: event.id, code, message: (e as Error).message, threw: true });
      return [];
    }
    const outcomes = r.outcomes;
    const ms = r.ms;
    const joined: string[] = [];
    for (const o of outcomes) {
      await this.recordOutcome(o, ms, before);
      if (o.kind === "welcome") joined.push(o.groupId);
    }
    if (joined.length) await this.afterJoin(event, joined);
    return outcomes;
  }

  /**
   * After joining: fetch the group's history since the Welcome's commit (a Welcome may arrive
   * after later commits), then go live. The noHistoryAfterJoin quirk only goes live from now.
   */
  private async afterJoin(wrap: NostrEvent | undefined, joined: string[]): Promise<void> {
    if (this.hasQuirk("noHistoryAfterJoin")) {
      this.resubscribe(this.nowS());
      return;
    }
    this.resubscribe(this.nowS());
    if (!this.online || this.catchingUp) return;
    // The Welcome rumor keeps the inviter's real time (only the seal and wrap are back-dated):
    // nothing published before it can matter to the joiner.
    let since: number | undefined;
    if (wrap?.kind === 1059) {
      try {
        since = unwrapEvent(wrap, this.opts.secretKey).created_at - GROUP_EVENT_SLACK_S;
      } catch {
        since = undefined;
      }
    }
    const hs = this.activeGroups().map((g) => g.nostrGroupId);
    const res = await this.query([{ kinds: [445], "#h": hs, ...(since !== undefined ? { since: Math.max(0, since) } : {}) }], "history-after-join");
    for (const ev of res.events) {
      if (this.seenIds.has(ev.id)) continue;
      this.seenIds.add(ev.id);
      this.ctx.history.noteEvent(ev, this.name);
      this.rec("info", "receive", { eventId: ev.id, relay: "history", kind: ev.kind });
      await this.handle(ev);
    }
    if (this.opts.selfUpdateAfterJoin ?? true) await this.selfUpdateAfterJoin(joined);
  }

  /** MIP02-WL-14: rotate the joiner's leaf (and the KeyPackage's keys) before its first message. */
  private async selfUpdateAfterJoin(joined: string[]): Promise<void> {
    for (const gid of joined) {
      const g = this.engine.group(gid);
      if (!g?.active || !this.online) continue;
      try {
        await this.commitWith("self-update-after-join", gid, () => this.engine.selfUpdate(gid, this.nowS()), [], []);
      } catch (e) {
        // recorded by commitWith / runCommit; the join itself stands
        this.rec("info", "note", { text: `self-update after joining ${gid.slice(0, 12)} failed: ${(e as Error).message}`, groupId: gid });
      }
    }
  }

  private catchingUp = false;

  private groupForH(event: NostrEvent): GroupSummary | undefined {
    const h = event.tags.find((t) => t[0] === "h")?.[1];
    return h ? this.engine.groups().find((g) => g.nostrGroupId === h) : undefined;
  }

  private async recordOutcome(o: ProcessOutcome, ms: number, before: GroupSummary | undefined): Promise<void> {
    switch (o.kind) {
      case "application": {
        const g = this.engine.group(o.groupId);
        this.rec("ok", "decrypt", {
          eventId: o.eventId,
          groupId: o.groupId,
          nostrGroupId: g?.nostrGroupId,
          epoch: o.epoch,
          sender: o.sender,
          rumorId: o.rumor.id,
          rumorKind: o.rumor.kind,
          rumorPubkey: o.rumor.pubkey,
          content: o.rumor.content,
          rumor: { id: o.rumor.id, pubkey: o.rumor.pubkey, created_at: o.rumor.created_at, kind: o.rumor.kind, tags: o.rumor.tags, content: o.rumor.content },
        });
        await this.media.onApplication(o, this.catchingUp);
        return;
      }
      case "commit": {
        this.rec("ok", "commit-applied", {
          eventId: o.eventId,
          groupId: o.groupId,
          nostrGroupId: before?.nostrGroupId ?? this.engine.group(o.groupId)?.nostrGroupId,
          epoch: o.epoch,
          committer: o.committer,
          added: o.added,
          removed: o.removed,
          rolledBack: o.rolledBack,
          selfRemoved: o.selfRemoved,
          groupDataChanged: o.groupDataChanged,
        });
        this.ctx.metrics?.commitProcessed?.({ agent: this.name, groupId: o.groupId, eventId: o.eventId, members: before?.members.length ?? 0, processMs: ms });
        if (o.selfRemoved) {
          this.rec("info", "removed", { groupId: o.groupId, epoch: o.epoch });
          this.resubscribe(this.cursor || this.nowS());
        } else await this.snapshot(o.groupId, "commit-applied");
        if (o.groupDataChanged && !o.selfRemoved) await this.media.onGroupData(o.groupId, this.catchingUp);
        // A leaving member republishes its SelfRemove in each new epoch until someone commits it.
        for (const f of o.followUps ?? []) {
          if (this.online) await this.publish(f, "leave-republish", { groupId: o.groupId, epoch: o.epoch });
        }
        if (!o.selfRemoved) await this.rekeyAgainIfLost(o);
        return;
      }
      case "welcome": {
        const g = this.engine.group(o.groupId);
        this.rec("ok", "welcome", { eventId: o.eventId, groupId: o.groupId, nostrGroupId: g?.nostrGroupId, epoch: o.epoch, inviter: o.inviter, recipient: this.pubkey });
        await this.snapshot(o.groupId, "welcome");
        await this.media.onGroupData(o.groupId, this.catchingUp);
        for (const f of o.followUps) {
          if (this.online) {
            const acks = await this.publish(f, "welcome-follow-up", { groupId: o.groupId });
            if (f.kind === 30443 || f.kind === 443) {
              this.keyPackages.push(f);
              this.rec(acks.some((a) => a.ok) ? "ok" : "fail", "keypackage", { action: "rotate-after-join", eventId: f.id, d: f.tags.find((t) => t[0] === "d")?.[1] });
            }
          }
        }
        return;
      }
      case "rejected":
        this.rec("fail", "reject", { eventId: o.eventId, code: o.error.code, message: o.error.message, groupId: o.groupId });
        return;
      case "proposal":
        this.rec("ok", "process", { eventId: o.eventId, outcome: "proposal", groupId: o.groupId, nostrGroupId: this.engine.group(o.groupId)?.nostrGroupId, epoch: o.epoch, sender: o.sender, proposal: o.proposal });
        return;
      default:
        this.rec("info", "process", { eventId: o.eventId, outcome: o.kind, ...("reason" in o ? { reason: o.reason } : {}) });
    }
  }

  /** Record the epoch, members and commitment, and every group-event key not yet recorded. */
  private async snapshot(groupId: string, why: string): Promise<void> {
    const g = this.engine.group(groupId);
    if (!g || !g.active) return;
    let commitment: string | undefined;
    let leafOf: Map<string, number> | undefined;
    try {
      const ins = await this.engine.inspect(groupId);
      commitment = ins.epochCommitment;
      if (ins.leaves) leafOf = new Map(ins.leaves.map((l) => [l.identity, l.index]));
      this.media.remember(groupId, ins.epochKeys);
      // R0 opens 445s with the legacy exporter MLS-Exporter("nostr","nostr",32). Use the engine's own
      // R0 key when its inspection carries one; otherwise derive it at the current epoch (snapshots
      // follow every epoch change, so every epoch gets its key).
      const r0 = (this.opts.profile ?? "R1") === "R0";
      const legacyNow = r0 ? await ins.exporter("nostr", new TextEncoder().encode("nostr"), 32) : undefined;
      const keysToRecord = r0
        ? ins.epochKeys.flatMap((k) => {
            const own = (k as { legacyGroupEventKey?: unknown }).legacyGroupEventKey;
            if (own instanceof Uint8Array) return [{ ...k, groupEventKey: own }];
            return k.epoch === ins.epoch && legacyNow ? [{ ...k, groupEventKey: legacyNow }] : [];
          })
        : ins.epochKeys;
      for (const k of keysToRecord) {
        const key = bytesToHex(k.groupEventKey);
        const id = `${ins.nostrGroupId}:${k.epoch}:${key}`;
        if (this.ctx.recordedKeys.has(id)) continue;
        this.ctx.recordedKeys.add(id);
        this.rec("info", "epoch-keys", { nostrGroupId: ins.nostrGroupId, epoch: k.epoch, key, mediaExporter: bytesToHex(k.mediaExporter) });
      }
    } catch (e) {
      this.rec("info", "note", { text: `inspect failed: ${(e as Error).message}` });
    }
    const members = [...g.members].sort();
    // leaves: leaf index of each member, aligned with `members` (compliance checker, MIP00-CR-01)
    this.rec("info", "epoch", { groupId, nostrGroupId: g.nostrGroupId, epoch: g.epoch, members, admins: [...g.admins].sort(), epochCommitment: commitment, why, ...(leafOf ? { leaves: members.map((m) => leafOf.get(m) ?? -1) } : {}) });
  }

  // ---------------------------------------------------------------- online / offline / restart

  async goOffline(): Promise<void> {
    await this.drainAhead();
    // an online client is in sync up to now
    if (this.online) this.cursor = Math.max(this.cursor, this.nowS());
    this.closeSubs();
    this.online = false;
    this.inbox = [];
    this.rec("info", "offline", {});
  }

  async goOnline(mode?: CatchUpMode): Promise<CatchUpReport> {
    const m = mode ?? this.opts.catchUp ?? "since-cursor";
    this.online = true;
    this.rec("info", "online", { mode: m });
    const report = await this.catchUp(m);
    await this.settleOwedRekeys();
    return report;
  }

  /** Fetch what was missed, process it in (created_at, id) order, then go live. */
  private async catchUp(mode: CatchUpMode): Promise<CatchUpReport> {
    this.catchingUp = true;
    try {
      return await this.catchUpInner(mode);
    } finally {
      this.catchingUp = false;
      // attachments are fetched once caught up, with the retained exporter of their epoch
      await this.media.flushDeferred();
    }
  }

  private async catchUpInner(mode: CatchUpMode): Promise<CatchUpReport> {
    const since = mode === "since-cursor" && this.cursor > 0 ? this.cursor : undefined;
    const result = await this.query(this.filters(since), `catch-up:${mode}`);
    // live from now on (anything published from here on arrives through the subscription)
    this.resubscribe(this.nowS());
    // Process the fetched history. Joining a group during catch-up widens the filters: fetch again.
    let events = result.events;
    let rounds = 0;
    let total = 0;
    const fetchedIds = new Set<string>();
    while (events.length > 0 && rounds < 8) {
      rounds++;
      const groupsBefore = this.activeGroups().length;
      for (const ev of events) {
        fetchedIds.add(ev.id);
        if (this.seenIds.has(ev.id)) continue;
        this.seenIds.add(ev.id);
        this.ctx.history.noteEvent(ev, this.name);
        this.rec("info", "receive", { eventId: ev.id, relay: "catch-up", kind: ev.kind });
        total++;
        await this.handle(ev);
      }
      if (this.activeGroups().length === groupsBefore) break;
      if (this.hasQuirk("noHistoryAfterJoin")) break;
      const more = await this.query(this.filters(since), `catch-up:${mode}:new-groups`);
      events = more.events.filter((e) => !fetchedIds.has(e.id));
    }
    const report: CatchUpReport = { mode, events: total, eoseFrom: result.eoseFrom, complete: result.complete };
    this.rec("ok", "catch-up", { ...report });
    return report;
  }

  async restart(): Promise<CatchUpReport> {
    await this.drainAhead();
    this.rec("info", "restart", { durable: this.opts.durable });
    if (this.online) this.cursor = Math.max(this.cursor, this.nowS());
    this.closeSubs();
    this.inbox = [];
    this.seenIds.clear();
    await this.makeEngine();
    this.online = true;
    // A restarted client does not know its cursor precisely: full history is the safe choice.
    return this.catchUp(this.opts.catchUp ?? "full-history");
  }

  // ---------------------------------------------------------------- views and probes

  private view(g: GroupSummary, commitment?: string): AgentGroupView {
    const v: AgentGroupView = {
      groupId: g.groupId,
      nostrGroupId: g.nostrGroupId,
      epoch: Number(g.epoch),
      members: [...g.members].sort(),
      admins: [...g.admins].sort(),
      name: g.groupData.name,
      active: g.active,
    };
    if (commitment) v.epochCommitment = commitment;
    return v;
  }

  async groupView(groupId: string): Promise<AgentGroupView | undefined> {
    const g = this.engine.group(groupId);
    if (!g) return undefined;
    let commitment: string | undefined;
    if (g.active) {
      try {
        commitment = (await this.engine.inspect(groupId)).epochCommitment;
      } catch {
        commitment = undefined;
      }
    }
    return this.view(g, commitment);
  }

  async groups(): Promise<AgentGroupView[]> {
    return this.engine
      .groups()
      .sort((a, b) => (a.groupId < b.groupId ? -1 : 1))
      .map((g) => this.view(g));
  }

  async probe(events: NostrEvent[]): Promise<ProbeOutcome[]> {
    const out: ProbeOutcome[] = [];
    for (const ev of events) {
      let outcomes: ProcessOutcome[];
      try {
        outcomes = await this.engine.processEvent(ev, this.nowS());
      } catch (e) {
        out.push({ eventId: ev.id, outcome: "rejected", code: e instanceof HarnessError ? e.code : "ENGINE_THREW" });
        continue;
      }
      if (outcomes.length === 0) out.push({ eventId: ev.id, outcome: "none" });
      for (const o of outcomes) {
        const p: ProbeOutcome = { eventId: ev.id, outcome: o.kind };
        if (o.kind === "rejected") p.code = o.error.code;
        out.push(p);
      }
    }
    return out;
  }

  /** Test hook: the raw engine (in-process only; never crosses the Agent interface). */
  get rawEngine(): MarmotEngine {
    return this.engine;
  }
}
