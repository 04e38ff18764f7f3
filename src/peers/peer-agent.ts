/**
 * PeerAgent: the harness's Agent interface implemented by driving a peer through the peer
 * protocol, so scenarios can run with some agents out of process. The peer is reached through a
 * PeerTransport: a supervised process speaking our protocol (our engine, MDK's node through its
 * adapter) or an in-process adapter (White Noise's CLI, marmot-ts).
 *
 * What the peer recorded while serving a request (`records`) is appended to the run's history
 * under the agent's name, so the checkers read it like any other agent. Peers that send no
 * records (foreign implementations) get entries synthesised from their observations.
 */
import { bytesToHex } from "@noble/hashes/utils.js";
import type { Event as NostrEvent } from "nostr-tools";
import { getPublicKey } from "nostr-tools/pure";
import type { AgentContext } from "../agents/context.ts";
import type { Agent, AgentGroupView, CatchUpReport, CommitReport, ProbeOutcome, SendRequest } from "../agents/types.ts";
import { HarnessError } from "../errors.ts";
import type { ProtocolProfile } from "../profile.ts";
import type { CatchUpMode, QuirkName } from "../scenarios/types.ts";
import { PeerCommandError } from "./process.ts";
import { assertProfilesCompatible, detectProfile } from "./profile-detect.ts";
import type { PeerCommand, PeerGroupView, PeerObservation, PeerRecord, PeerResponseBody } from "./protocol.ts";

/** Anything that answers peer protocol commands: a supervised process or an in-process adapter. */
export interface PeerTransport {
  request(command: PeerCommand, opts?: { timeoutMs?: number }): Promise<PeerResponseBody>;
  close(): Promise<unknown>;
}

export class PeerAgentError extends HarnessError {}

export interface PeerAgentOptions {
  name: string;
  /** Implementation id (e.g. "engine-peer", "wn", "mdk-node", "marmot-ts"). */
  implementation: string;
  relays: string[];
  /** Starts the transport (spawns the process) when the agent starts. */
  open(): Promise<PeerTransport>;
  /** Declared before start, so the runner can refuse what the peer cannot do before step 0. */
  capabilities: string[];
  profile?: ProtocolProfile;
  quirks?: readonly QuirkName[];
  /** Pin the peer's identity (our engine peer honours it; foreign peers make their own). */
  secretKey?: Uint8Array;
  seed?: string;
  root?: string;
  catchUp?: CatchUpMode;
  /** False: the peer does not self-update right after joining (our engine peer's default is on). */
  selfUpdateAfterJoin?: boolean;
  requestTimeoutMs?: number;
  /**
   * How often (ms) to ask an idle peer whether events wait for it (default 100; 0 = never). On
   * real relays events arrive at any time and `hasWork()` must answer without a round trip.
   */
  pollMs?: number;
  /**
   * After start, read the KeyPackage events the peer has already published (foreign clients
   * publish one when they create their identity) and stop with PROFILE_MISMATCH when they show a
   * profile other than `profile` (default R1). Default true.
   */
  profileCheck?: boolean;
}

type Body<T extends PeerResponseBody["type"]> = Extract<PeerResponseBody, { type: T }>;

export class PeerAgent implements Agent {
  readonly name: string;
  readonly implementation: string;
  readonly quirks: readonly QuirkName[];
  private account: string;
  private transport: PeerTransport | undefined;
  private online = false;
  private pending = 0;
  private lastProcessed = 0;
  private seq = 0;
  private readonly seenDecrypts = new Set<string>();
  private readonly seenEpochs = new Set<string>();
  private caps: string[];
  private poller: NodeJS.Timeout | undefined;
  private polling = false;

  constructor(
    private readonly ctx: AgentContext,
    private readonly opts: PeerAgentOptions,
  ) {
    this.name = opts.name;
    this.implementation = opts.implementation;
    this.quirks = [...(opts.quirks ?? [])];
    this.account = opts.secretKey ? getPublicKey(opts.secretKey) : "";
    this.caps = [...opts.capabilities];
  }

  get pubkey(): string {
    return this.account;
  }

  capabilities(): string[] {
    return [...this.caps];
  }

  isOnline(): boolean {
    return this.online;
  }

  hasWork(): boolean {
    return this.online && (this.pending > 0 || this.lastProcessed > 0);
  }

  /** Ask the peer, in the background, whether events wait for it (a ping carries `pending_events`). */
  private startPolling(): void {
    const every = this.opts.pollMs ?? 100;
    if (every <= 0 || this.poller) return;
    this.poller = setInterval(() => {
      const t = this.transport;
      if (!t || !this.online || this.polling) return;
      this.polling = true;
      t.request({ type: "ping", action_id: `${this.name}-poll` })
        .then((b) => {
          if ("pending_events" in b && typeof b.pending_events === "number") this.pending = b.pending_events;
          if ("records" in b && b.records) this.replay(b.records);
        })
        .catch(() => undefined)
        .finally(() => {
          this.polling = false;
        });
    }, every);
    this.poller.unref?.();
  }

  private stopPolling(): void {
    if (this.poller) clearInterval(this.poller);
    this.poller = undefined;
  }

  // ------------------------------------------------------------------ plumbing

  private actionId(): string {
    return `${this.name}-${++this.seq}`;
  }

  private async call<T extends PeerResponseBody["type"]>(command: PeerCommand, expect: T): Promise<Body<T>> {
    const t = this.transport;
    if (!t) throw new PeerAgentError("PEER_NOT_STARTED", `${this.name}: the peer is not started`);
    let body: PeerResponseBody;
    try {
      body = await this.ctx.gate.wait(t.request(command, this.opts.requestTimeoutMs ? { timeoutMs: this.opts.requestTimeoutMs } : {}));
    } catch (e) {
      if (e instanceof PeerCommandError) {
        // Same code as the in-process agent would throw, so expectError steps judge alike.
        throw new PeerAgentError(e.peerCode, `${this.name} (${this.implementation}): ${e.message}`, { ...e.details }, { cause: e });
      }
      throw e;
    }
    if (body.type !== expect) throw new PeerAgentError("PEER_UNEXPECTED_RESPONSE", `${this.name}: expected ${expect}, got ${body.type}`);
    if ("records" in body && body.records) this.replay(body.records);
    if ("pending_events" in body && typeof body.pending_events === "number") this.pending = body.pending_events;
    return body as Body<T>;
  }

  /** Append the peer's own history entries to the run's history. */
  private replay(records: PeerRecord[]): void {
    const h = this.ctx.history;
    for (const r of records) {
      if (r.op === "event" && r.data.event && typeof r.data.event === "object") {
        const extra: { relay?: string; source?: string } = {};
        if (typeof r.data.relay === "string") extra.relay = r.data.relay;
        if (typeof r.data.source === "string") extra.source = r.data.source;
        h.noteEvent(r.data.event as NostrEvent, r.actor ?? this.name, extra);
        continue;
      }
      if (r.op === "decrypt") this.seenDecrypts.add(String(r.data.eventId));
      if (r.op === "epoch") this.seenEpochs.add(`${String(r.data.groupId)}:${String(r.data.epoch)}`);
      h.record(r.actor ?? this.name, r.type, r.op, r.data);
    }
  }

  /** For peers without records: what their observation says, as history entries. */
  private synthesise(o: PeerObservation): void {
    for (const m of o.messages ?? []) {
      if (this.seenDecrypts.has(m.event_id)) continue;
      this.seenDecrypts.add(m.event_id);
      this.ctx.history.record(this.name, "ok", "decrypt", { eventId: m.event_id, groupId: m.group_id_hex, epoch: m.epoch, sender: m.sender, rumorId: m.rumor_id, rumorKind: m.kind, content: m.content, synthesised: true });
    }
    for (const g of o.groups ?? []) {
      const k = `${g.group_id_hex}:${g.epoch}`;
      if (this.seenEpochs.has(k)) continue;
      this.seenEpochs.add(k);
      this.ctx.history.record(this.name, "info", "epoch", { groupId: g.group_id_hex, nostrGroupId: g.nostr_group_id_hex, epoch: g.epoch, members: g.members, epochCommitment: g.epoch_commitment ?? undefined, synthesised: true });
    }
  }

  private commitReport(body: Body<"ack">, groupId: string, fallbackEpoch = 0): CommitReport {
    const c = body.result?.commit as Partial<CommitReport> | undefined;
    const r: CommitReport = {
      groupId: c?.groupId ?? groupId,
      epoch: c?.epoch ?? fallbackEpoch,
      added: c?.added ?? [],
      removed: c?.removed ?? [],
      welcomeRumorBytes: c?.welcomeRumorBytes ?? [],
      welcomeWrapBytes: c?.welcomeWrapBytes ?? [],
      createMs: c?.createMs ?? 0,
    };
    const id = c?.eventId ?? body.event_ids?.[0];
    if (id) r.eventId = id;
    return r;
  }

  // ------------------------------------------------------------------ lifecycle

  async start(): Promise<void> {
    if (this.transport) return;
    this.transport = await this.opts.open();
    try {
      await this.initialize();
    } catch (e) {
      // Never leave a peer process behind a failed start.
      await this.stop().catch(() => undefined);
      throw e;
    }
  }

  private async initialize(): Promise<void> {
    const init: PeerCommand = {
      type: "initialize",
      participant: this.name,
      relay_urls: this.opts.relays,
      key_packages: 0,
      ...(this.opts.profile ? { profile: this.opts.profile } : {}),
      ...(this.opts.secretKey ? { secret_key_hex: bytesToHex(this.opts.secretKey) } : {}),
      ...(this.opts.seed ? { seed: this.opts.seed } : {}),
      ...(this.opts.root ? { root: this.opts.root } : {}),
      ...(this.quirks.length ? { quirks: [...this.quirks] } : {}),
      ...(this.opts.selfUpdateAfterJoin === false ? { self_update_after_join: false } : {}),
      ...(this.ctx.blossomUrl && this.opts.capabilities.includes("media") ? { blossom_url: this.ctx.blossomUrl } : {}),
    };
    const body = await this.call(init, "initialized");
    if (this.account && body.account_id !== this.account) {
      throw new PeerAgentError("PEER_IDENTITY_MISMATCH", `${this.name}: the peer took account ${body.account_id}, not the pinned ${this.account}`);
    }
    this.account = body.account_id;
    if (body.capabilities) this.caps = [...new Set(body.capabilities.filter((c) => this.opts.capabilities.includes(c) || c.startsWith("quirk:")))];
    this.online = true;
    this.ctx.history.record(this.name, "info", "peer", { implementation: this.implementation, account: this.account, capabilities: this.caps });
    if (this.opts.profileCheck !== false) await this.checkProfile();
    this.startPolling();
  }

  /** Stop early when what the peer already published shows another profile than the run's. */
  private async checkProfile(): Promise<void> {
    const found = new Map<string, NostrEvent>();
    for (const url of this.opts.relays) {
      const c = this.ctx.connect(url, `${this.name}-profile-check`);
      try {
        await this.ctx.gate.wait(c.connect());
        await this.ctx.gate.wait(
          new Promise<void>((resolve) => {
            const st: { done: boolean; sub?: { close(): void } } = { done: false };
            const finish = (): void => {
              if (st.done) return;
              st.done = true;
              clearTimeout(timer);
              st.sub?.close();
              resolve();
            };
            const timer = setTimeout(finish, 3000);
            st.sub = c.subscribe([{ kinds: [443, 30443, 10051], authors: [this.account] }], {
              onEvent: (e) => found.set(e.id, e),
              onEose: finish,
              onClosed: finish,
            });
            if (st.done) st.sub.close();
          }),
        );
      } catch {
        // an unreachable relay gives no evidence; the run's own checks will say more
      } finally {
        await c.close().catch(() => undefined);
      }
    }
    const detection = detectProfile(`${this.name} (${this.implementation})`, [...found.values()].sort((a, b) => a.created_at - b.created_at));
    this.ctx.history.record(this.name, "info", "profile", { profile: detection.profile, candidates: detection.candidates, summary: detection.summary });
    assertProfilesCompatible([detection], this.opts.profile ?? "R1");
  }

  async stop(): Promise<void> {
    this.stopPolling();
    const t = this.transport;
    this.transport = undefined;
    this.online = false;
    if (t) await t.close();
  }

  async goOffline(): Promise<void> {
    await this.call({ type: "set_online", action_id: this.actionId(), online: false }, "ack");
    this.online = false;
    this.pending = 0;
    this.lastProcessed = 0;
  }

  async goOnline(mode?: CatchUpMode): Promise<CatchUpReport> {
    const m = mode ?? this.opts.catchUp ?? "since-cursor";
    const body =
      m === "full-history"
        ? await this.call({ type: "catch_up", action_id: this.actionId(), full_history: true }, "ack")
        : await this.call({ type: "set_online", action_id: this.actionId(), online: true }, "ack");
    this.online = true;
    return this.catchUpReport(body, m);
  }

  private catchUpReport(body: Body<"ack">, mode: CatchUpMode): CatchUpReport {
    const c = body.result?.catchUp as Partial<CatchUpReport> | undefined;
    return { mode: c?.mode ?? mode, events: c?.events ?? 0, eoseFrom: c?.eoseFrom ?? [], complete: c?.complete ?? true };
  }

  async restart(): Promise<CatchUpReport> {
    if (!this.caps.includes("restart")) throw new PeerAgentError("PEER_UNSUPPORTED", `${this.name} (${this.implementation}) cannot restart`);
    const body = await this.call({ type: "restart", action_id: this.actionId() }, "ack");
    this.online = true;
    return this.catchUpReport(body, "full-history");
  }

  // ------------------------------------------------------------------ KeyPackages

  async publishKeyPackages(count: number, lastResort: boolean): Promise<string[]> {
    const body = await this.call({ type: "publish_key_package", action_id: this.actionId(), count, last_resort: lastResort }, "ack");
    return body.event_ids ?? [];
  }

  async rotateKeyPackage(): Promise<string> {
    const body = await this.call({ type: "rotate_key_package", action_id: this.actionId() }, "ack");
    return body.event_ids?.[0] ?? "";
  }

  async deleteKeyPackages(): Promise<string[]> {
    const body = await this.call({ type: "delete_key_packages", action_id: this.actionId() }, "ack");
    return body.event_ids ?? [];
  }

  // ------------------------------------------------------------------ groups

  async createGroup(opts: { name: string; adminPubkeys: string[]; relays: string[] }): Promise<AgentGroupView> {
    const label = `g${this.seq + 1}`;
    const body = await this.call(
      { type: "create_group", action_id: this.actionId(), group: label, name: opts.name, member_accounts: [], initial_admin_accounts: opts.adminPubkeys.filter((a) => a !== this.account), relay_urls: opts.relays },
      "ack",
    );
    const gid = body.group_id_hex;
    if (!gid) throw new PeerAgentError("PEER_BAD_ANSWER", `${this.name}: create_group answered without a group id`);
    const g = body.result?.group as AgentGroupView | undefined;
    return g ?? (await this.groupView(gid)) ?? { groupId: gid, nostrGroupId: "", epoch: 0, members: [this.account], admins: [this.account], name: opts.name, active: true };
  }

  async invite(groupId: string, pubkeys: string[]): Promise<CommitReport> {
    return this.commitReport(await this.call({ type: "invite_members", action_id: this.actionId(), group: groupId, member_accounts: pubkeys }, "ack"), groupId);
  }

  async remove(groupId: string, pubkeys: string[]): Promise<CommitReport> {
    return this.commitReport(await this.call({ type: "remove_members", action_id: this.actionId(), group: groupId, member_accounts: pubkeys }, "ack"), groupId);
  }

  async selfUpdate(groupId: string): Promise<CommitReport> {
    return this.commitReport(await this.call({ type: "self_update", action_id: this.actionId(), group: groupId }, "ack"), groupId);
  }

  async updateGroupData(groupId: string, patch: { name?: string; description?: string; adminPubkeys?: string[] }): Promise<CommitReport> {
    if (patch.adminPubkeys && patch.name === undefined && patch.description === undefined) {
      return this.commitReport(await this.call({ type: "update_admin_policy", action_id: this.actionId(), group: groupId, admin_accounts: patch.adminPubkeys }, "ack"), groupId);
    }
    if (patch.adminPubkeys) throw new PeerAgentError("PEER_UNSUPPORTED", `${this.name}: changing admins and profile in one commit is not expressible in the peer protocol`);
    return this.commitReport(
      await this.call({ type: "update_group_profile", action_id: this.actionId(), group: groupId, ...(patch.name !== undefined ? { name: patch.name } : {}), ...(patch.description !== undefined ? { description: patch.description } : {}) }, "ack"),
      groupId,
    );
  }

  async leave(groupId: string): Promise<{ eventId: string }> {
    const body = await this.call({ type: "leave", action_id: this.actionId(), group: groupId }, "ack");
    return { eventId: body.event_ids?.[0] ?? "" };
  }

  async commitPendingProposals(groupId: string): Promise<CommitReport | undefined> {
    const body = await this.call({ type: "commit_pending", action_id: this.actionId(), group: groupId }, "ack");
    if (body.result?.committed === false) return undefined;
    return this.commitReport(body, groupId);
  }

  async setGroupImage(groupId: string, opts: { bytes: number; version: 1 | 2; clear?: boolean }): Promise<CommitReport & { imageHash?: string; deletedBy?: string | null }> {
    const body = await this.call({ type: "set_group_image", action_id: this.actionId(), group: groupId, bytes: opts.bytes, version: opts.version, ...(opts.clear ? { clear: true } : {}) }, "ack");
    const r = body.result as { image_hash?: unknown; deleted_by?: unknown } | undefined;
    return {
      ...this.commitReport(body, groupId),
      ...(typeof r?.image_hash === "string" ? { imageHash: r.image_hash } : {}),
      deletedBy: typeof r?.deleted_by === "string" ? r.deleted_by : null,
    };
  }

  async probeMedia(groupId: string, attachments: { eventId: string; imeta: string[] }[]): Promise<{ eventId: string; outcome: "decrypted" | "failed"; code?: string }[]> {
    const body = await this.call({ type: "probe_media", action_id: this.actionId(), group: groupId, attachments: attachments.map((a) => ({ event_id: a.eventId, imeta: a.imeta })) }, "ack");
    const outcomes = body.result?.outcomes;
    if (!Array.isArray(outcomes)) throw new PeerAgentError("PEER_BAD_RESULT", `${this.name}: probe_media answered without a list of outcomes`);
    return outcomes.map((o: unknown, i) => {
      const x = o as { eventId?: unknown; outcome?: unknown; code?: unknown };
      if (typeof x?.eventId !== "string" || (x.outcome !== "decrypted" && x.outcome !== "failed")) {
        throw new PeerAgentError("PEER_BAD_RESULT", `${this.name}: probe_media outcome ${i} is not { eventId, outcome: "decrypted" | "failed" }`);
      }
      return { eventId: x.eventId, outcome: x.outcome, ...(typeof x.code === "string" ? { code: x.code } : {}) };
    });
  }

  async send(groupId: string, message: SendRequest): Promise<{ eventId: string }> {
    const body = await this.call(
      {
        type: "send_application",
        action_id: this.actionId(),
        group: groupId,
        payload: message.content,
        ...(message.kind !== undefined ? { kind: message.kind } : {}),
        ...(message.tags ? { tags: message.tags } : {}),
        ...(message.media
          ? { media: { filename: message.media.filename, mime_type: message.media.mimeType, bytes: message.media.bytes, ...(message.media.wrongBlob ? { wrong_blob: true } : {}) } }
          : {}),
      },
      "ack",
    );
    return { eventId: body.event_ids?.[0] ?? "" };
  }

  // ------------------------------------------------------------------ inbound and views

  async processInbox(): Promise<number> {
    if (!this.online || !this.transport) return 0;
    const body = await this.call({ type: "catch_up", action_id: this.actionId(), full_history: false }, "ack");
    const n = typeof body.result?.processed === "number" ? body.result.processed : 0;
    this.lastProcessed = n;
    return n;
  }

  private configured = "";

  /**
   * Tell the peer who is who (participant label → account), from the identities the run has
   * recorded, so peers that report labels (MDK's node) can be mapped back to accounts.
   */
  private async configurePeers(): Promise<void> {
    const accounts: Record<string, string> = {};
    const seen = new Set<string>();
    for (const e of this.ctx.history.entries) {
      const account = e.op === "identity" ? e.data.pubkey : e.op === "peer" ? e.data.account : undefined;
      if (typeof account !== "string" || !/^[0-9a-f]{64}$/.test(account) || seen.has(account) || e.actor in accounts) continue;
      accounts[e.actor] = account;
      seen.add(account);
    }
    const key = JSON.stringify(accounts);
    if (key === this.configured || Object.keys(accounts).length === 0) return;
    await this.call({ type: "configure_peers", accounts_by_participant: accounts }, "ack");
    this.configured = key;
  }

  private async observe(): Promise<PeerObservation> {
    await this.configurePeers();
    const body = await this.call({ type: "observe", action_id: this.actionId() }, "observation");
    if (!("records" in body) || !body.records) this.synthesise(body.observation);
    return body.observation;
  }

  private view(g: PeerGroupView): AgentGroupView {
    const v: AgentGroupView = {
      groupId: g.group_id_hex,
      nostrGroupId: g.nostr_group_id_hex,
      epoch: g.epoch,
      members: [...g.members].sort(),
      admins: [...g.admins].sort(),
      name: g.name,
      active: g.active,
    };
    if (g.epoch_commitment) v.epochCommitment = g.epoch_commitment;
    return v;
  }

  async groupView(groupId: string): Promise<AgentGroupView | undefined> {
    const o = await this.observe();
    const g = (o.groups ?? []).find((x) => x.group_id_hex === groupId);
    return g ? this.view(g) : undefined;
  }

  async groups(): Promise<AgentGroupView[]> {
    const o = await this.observe();
    return (o.groups ?? []).map((g) => this.view(g)).sort((a, b) => (a.groupId < b.groupId ? -1 : 1));
  }

  async provideOutOfBandTree(_treeHex: string): Promise<void> {
    throw new PeerAgentError("PEER_UNSUPPORTED", `${this.name} (${this.implementation}): out-of-band ratchet trees are not part of the peer protocol`);
  }

  async probe(events: NostrEvent[]): Promise<ProbeOutcome[]> {
    const body = await this.call({ type: "probe", action_id: this.actionId(), events }, "ack");
    return ((body.result?.outcomes as ProbeOutcome[] | undefined) ?? []).map((o) => ({ ...o }));
  }
}
