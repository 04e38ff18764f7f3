/**
 * Our engine as a peer: one EngineAgent behind the peer protocol. This is the reference
 * implementation of `marmot-harness-peer-v1` and also answers MDK's `marmot-convergence-node-v1`
 * (so MDK's process orchestrator can drive it).
 *
 * The agent records into a local history as it would in process; every response carries the
 * entries recorded while serving the request (`records`), so the harness can append them to the
 * run's history and its checkers read an out-of-process agent exactly as an in-process one.
 * The peer runs on the wall clock against real relays.
 */
import { bytesToHex, hexToBytes } from "@noble/hashes/utils.js";
import { generateSecretKey } from "nostr-tools/pure";
import type { Event as NostrEvent } from "nostr-tools";
import { EngineAgent, type EngineFactory } from "../agents/engine-agent.ts";
import { IoGate, type AgentContext } from "../agents/context.ts";
import type { AgentGroupView, CommitReport } from "../agents/types.ts";
import { MemoryStorage } from "../engine/storage-memory.ts";
import { FileStorage } from "../engine/storage-file.ts";
import type { EngineStorage } from "../engine/storage.ts";
import { HarnessError } from "../errors.ts";
import { History, type HistoryEntry } from "../history.ts";
import { DEFAULT_PROFILE, type ProtocolProfile } from "../profile.ts";
import type { RelayConnection } from "../relays/types.ts";
import { QUIRKS, type QuirkName } from "../scenarios/types.ts";
import { wallClock, type Clock } from "../sim/clock.ts";
import { createRng } from "../sim/random.ts";
import {
  MDK_NODE_PROTOCOL_VERSION,
  errorBody,
  OBSERVATION_SCHEMA_VERSION,
  opaqueIdentity,
  stateCommitment,
  type PeerCommand,
  type PeerGroupView,
  type PeerMessageView,
  type PeerObservation,
  type PeerProtocolName,
  type PeerRecord,
  type PeerResponseBody,
  type ProtocolProjection,
} from "./protocol.ts";
import type { PeerHandler } from "./server.ts";

export const ENGINE_PEER_IMPLEMENTATION = "marmot-harness-engine";

export class EnginePeerError extends HarnessError {}

export interface EnginePeerDeps {
  engineFactory: EngineFactory;
  /** Open a relay connection (WebSocket in the CLI). */
  connect(url: string, agentName: string): RelayConnection;
  clock?: Clock;
  /** Publish timeout and catch-up EOSE wait, ms. */
  publishTimeoutMs?: number;
  eoseTimeoutMs?: number;
}

type Ack = Extract<PeerResponseBody, { type: "ack" }>;

export class EnginePeerHandler implements PeerHandler {
  participant: string | null = null;
  private agent: EngineAgent | undefined;
  private history: History;
  private forwarded = 0;
  private readonly accounts = new Map<string, string>(); // label → account
  private readonly labels = new Map<string, string>(); // account → label
  private readonly groupLabels = new Map<string, string>(); // label → group id
  private activeGroup: string | undefined;
  private profile: ProtocolProfile = DEFAULT_PROFILE;
  private checkpoint: string | undefined;
  private stableObservations = 0;
  private publishAttempts = 0;
  private publishFailures = 0;
  private readonly clock: Clock;

  constructor(private readonly deps: EnginePeerDeps) {
    this.clock = deps.clock ?? wallClock;
    this.history = new History(this.clock);
  }

  async handle(command: PeerCommand, protocol: PeerProtocolName): Promise<PeerResponseBody> {
    this.protocol = protocol;
    const body = await this.dispatch(command);
    if (body.type === "error" || body.type === "shutdown" || body.type === "barrier_ready") return body;
    if (protocol === MDK_NODE_PROTOCOL_VERSION) {
      // MDK's node protocol knows none of our extras.
      const plain = { ...body } as Record<string, unknown>;
      delete plain.records;
      delete plain.pending_events;
      delete plain.result;
      delete plain.event_ids;
      if (body.type === "initialized") {
        delete plain.profile;
        delete plain.implementation;
        delete plain.capabilities;
      }
      if (body.type === "observation") {
        // MDK's node always projects one group and refuses to observe without one.
        if (body.observation.protocol === null) return errorBody("group_not_selected", "no scenario group is selected");
        const o = { ...body.observation } as Record<string, unknown>;
        for (const k of ["account_id", "online", "groups", "messages"]) delete o[k];
        plain.observation = o;
      }
      this.forwarded = this.history.length;
      return plain as unknown as PeerResponseBody;
    }
    return { ...body, records: this.takeRecords(), pending_events: this.agent?.hasWork() ? 1 : 0 } as PeerResponseBody;
  }

  private takeRecords(): PeerRecord[] {
    const entries = this.history.entries.slice(this.forwarded);
    this.forwarded = this.history.length;
    return entries.map((e: HistoryEntry) => {
      const r: PeerRecord = { type: e.type, op: e.op, data: e.data };
      if (e.actor !== this.participant) r.actor = e.actor;
      return r;
    });
  }

  private requireAgent(): EngineAgent {
    if (!this.agent) throw new EnginePeerError("not_initialized", "the peer is not initialized (send initialize first)");
    return this.agent;
  }

  private groupId(label: string | undefined): string {
    this.requireAgent();
    const key = label ?? this.activeGroup;
    if (key === undefined) throw new EnginePeerError("group_not_selected", "no group given and none selected");
    const id = this.groupLabels.get(key) ?? key;
    if (!/^[0-9a-f]+$/.test(id)) throw new EnginePeerError("unknown_group", `unknown group ${JSON.stringify(key)}`);
    return id;
  }

  private ack(action_id: string, extra: Partial<Ack> = {}): Ack {
    const { event_ids = [], ...rest } = extra;
    return { type: "ack", action_id, published: event_ids.length, ...rest, ...(event_ids.length ? { event_ids } : {}) };
  }

  private commitAck(action_id: string, report: CommitReport | undefined): Ack {
    if (!report) return this.ack(action_id, { result: { committed: false } });
    return this.ack(action_id, { event_ids: report.eventId ? [report.eventId] : [], result: { commit: { ...report } } });
  }

  private async dispatch(c: PeerCommand): Promise<PeerResponseBody> {
    switch (c.type) {
      case "initialize":
        return this.initialize(c);
      case "shutdown":
        return { type: "shutdown" };
      case "ping":
      case "clear_events":
      case "pause_maintenance":
      case "resume_maintenance":
        if (c.type === "clear_events") this.stableObservations = 0;
        return this.ack(c.action_id);
      case "barrier":
        return { type: "barrier_ready", action_id: c.action_id, barrier: c.barrier };
      default:
        break;
    }
    const agent = this.requireAgent();
    switch (c.type) {
      case "configure_peers":
        this.accounts.clear();
        this.labels.clear();
        for (const [label, account] of Object.entries(c.accounts_by_participant)) {
          this.accounts.set(label, account);
          this.labels.set(account, label);
        }
        return this.ack("configure_peers");
      case "select_group":
        this.groupLabels.set(c.group, c.group_id_hex);
        this.activeGroup = c.group;
        return this.ack("select_group");
      case "publish_key_package":
        return this.ack(c.action_id, { event_ids: await agent.publishKeyPackages(c.count ?? 1, c.last_resort ?? true) });
      case "rotate_key_package":
        return this.ack(c.action_id, { event_ids: [await agent.rotateKeyPackage()] });
      case "delete_key_packages":
        return this.ack(c.action_id, { event_ids: await agent.deleteKeyPackages() });
      case "create_group": {
        const admins = [...new Set([agent.pubkey, ...c.initial_admin_accounts])];
        const view = await agent.createGroup({ name: c.name, adminPubkeys: admins, relays: c.relay_urls ?? this.relays });
        this.groupLabels.set(c.group, view.groupId);
        this.activeGroup = c.group;
        const event_ids: string[] = [];
        let commit: CommitReport | undefined;
        if (c.member_accounts.length > 0) {
          commit = await agent.invite(view.groupId, c.member_accounts);
          if (commit.eventId) event_ids.push(commit.eventId);
        }
        return this.ack(c.action_id, { group_id_hex: view.groupId, event_ids, result: { group: { ...((await agent.groupView(view.groupId)) ?? view) }, ...(commit ? { commit: { ...commit } } : {}) } });
      }
      case "invite_members":
        return this.commitAck(c.action_id, await agent.invite(this.groupId(c.group), c.member_accounts));
      case "remove_members":
        return this.commitAck(c.action_id, await agent.remove(this.groupId(c.group), c.member_accounts));
      case "update_group_data":
        return this.commitAck(c.action_id, await agent.updateGroupData(this.groupId(c.group), { name: c.name }));
      case "update_group_profile": {
        const patch: { name?: string; description?: string } = {};
        if (typeof c.name === "string") patch.name = c.name;
        if (typeof c.description === "string") patch.description = c.description;
        return this.commitAck(c.action_id, await agent.updateGroupData(this.groupId(c.group), patch));
      }
      case "update_admin_policy":
        return this.commitAck(c.action_id, await agent.updateGroupData(this.groupId(c.group), { adminPubkeys: c.admin_accounts }));
      case "self_update":
        return this.commitAck(c.action_id, await agent.selfUpdate(this.groupId(c.group)));
      case "commit_pending":
        return this.commitAck(c.action_id, await agent.commitPendingProposals(this.groupId(c.group)));
      case "leave": {
        const r = await agent.leave(this.groupId(c.group));
        return this.ack(c.action_id, { event_ids: [r.eventId], result: { eventId: r.eventId } });
      }
      case "send_application": {
        const media = c.media ? { filename: c.media.filename, mimeType: c.media.mime_type, bytes: c.media.bytes, ...(c.media.wrong_blob ? { wrongBlob: true } : {}) } : undefined;
        if (media && !agent.capabilities().includes("media")) throw new EnginePeerError("media_unavailable", "send_application.media needs a Blossom server: initialize with blossom_url");
        const r = await agent.send(this.groupId(c.group), { content: c.payload, ...(c.kind !== undefined ? { kind: c.kind } : {}), ...(c.tags ? { tags: c.tags } : {}), ...(media ? { media } : {}) });
        return this.ack(c.action_id, { event_ids: [r.eventId], result: { eventId: r.eventId } });
      }
      case "set_group_image": {
        if (!agent.capabilities().includes("group-image")) throw new EnginePeerError("media_unavailable", "set_group_image needs a Blossom server: initialize with blossom_url");
        const rep = await agent.setGroupImage(this.groupId(c.group), { bytes: c.bytes, version: c.version, ...(c.clear ? { clear: true } : {}) });
        return this.ack(c.action_id, { event_ids: rep.eventId ? [rep.eventId] : [], result: { commit: { ...rep }, ...(rep.imageHash ? { image_hash: rep.imageHash } : {}), deleted_by: rep.deletedBy ?? null } });
      }
      case "probe_media": {
        if (!agent.capabilities().includes("media-probe")) throw new EnginePeerError("media_unavailable", "probe_media needs a Blossom server: initialize with blossom_url");
        const outcomes = await agent.probeMedia(this.groupId(c.group), c.attachments.map((a) => ({ eventId: a.event_id, imeta: a.imeta })));
        return this.ack(c.action_id, { result: { outcomes } });
      }
      case "catch_up": {
        if (c.full_history || !agent.isOnline()) {
          const report = await agent.goOnline(c.full_history ? "full-history" : undefined);
          return this.ack(c.action_id, { result: { catchUp: { ...report }, processed: report.events } });
        }
        let processed = 0;
        for (let i = 0; i < 100 && agent.hasWork(); i++) processed += await agent.processInbox();
        return this.ack(c.action_id, { result: { processed } });
      }
      case "set_online": {
        if (!c.online) {
          await agent.goOffline();
          return this.ack(c.action_id, { result: { online: false } });
        }
        const report = await agent.goOnline();
        return this.ack(c.action_id, { result: { online: true, catchUp: { ...report } } });
      }
      case "restart": {
        const report = await agent.restart();
        return this.ack(c.action_id, { result: { catchUp: { ...report } } });
      }
      case "probe": {
        const outcomes = await agent.probe(c.events as NostrEvent[]);
        return this.ack(c.action_id, { result: { outcomes: outcomes.map((o) => ({ ...o })) } });
      }
      case "observe":
        return { type: "observation", action_id: c.action_id, observation: await this.observe(c.group) };
      default:
        throw new EnginePeerError("unsupported_command", `command ${(c as { type: string }).type} is not supported`);
    }
  }

  private relays: string[] = [];
  private protocol: PeerProtocolName | undefined;

  private async initialize(c: Extract<PeerCommand, { type: "initialize" }>): Promise<PeerResponseBody> {
    if (this.agent) throw new EnginePeerError("already_initialized", "the peer is already initialized");
    const quirks = (c.quirks ?? []).map((q) => {
      if (!(QUIRKS as readonly string[]).includes(q)) throw new EnginePeerError("unknown_quirk", `unknown quirk ${JSON.stringify(q)} (known: ${QUIRKS.join(", ")})`);
      return q as QuirkName;
    });
    this.participant = c.participant;
    this.profile = c.profile ?? DEFAULT_PROFILE;
    this.relays = [...c.relay_urls];
    const secretKey = c.secret_key_hex ? hexToBytes(c.secret_key_hex) : generateSecretKey();
    let storage: EngineStorage;
    let durable = false;
    if (c.root) {
      storage = new FileStorage(c.root);
      durable = true;
    } else {
      storage = new MemoryStorage();
    }
    const ctx: AgentContext = {
      history: this.history,
      clock: this.clock,
      gate: new IoGate(),
      sleep: (ms) => new Promise((r) => setTimeout(r, ms)),
      connect: (url, name) => this.deps.connect(url, name),
      recordedKeys: new Set(),
      publishTimeoutMs: this.deps.publishTimeoutMs ?? 5000,
      eoseTimeoutMs: this.deps.eoseTimeoutMs ?? 5000,
      ...(c.blossom_url ? { blossomUrl: c.blossom_url } : {}),
    };
    this.history.onEntry((e) => {
      if (e.op === "publish" && e.type === "invoke") this.publishAttempts++;
      if (e.op === "publish" && e.type === "fail") this.publishFailures++;
    });
    const agent = new EngineAgent(ctx, {
      name: c.participant,
      secretKey,
      relays: c.relay_urls,
      engineFactory: this.deps.engineFactory,
      storage,
      durable,
      profile: this.profile,
      quirks,
      ...(c.seed ? { randomBytes: createRng(c.seed).bytes } : {}),
      // MDK's orchestrator counts epochs without a post-join self-update; ours follows MIP-02.
      selfUpdateAfterJoin: c.self_update_after_join ?? this.protocol !== MDK_NODE_PROTOCOL_VERSION,
    });
    await agent.start();
    this.agent = agent;
    const kp = c.key_packages ?? 1;
    if (kp > 0) await agent.publishKeyPackages(kp, c.last_resort ?? true);
    return {
      type: "initialized",
      account_id: agent.pubkey,
      profile: this.profile,
      implementation: ENGINE_PEER_IMPLEMENTATION,
      capabilities: agent.capabilities(),
    };
  }

  private label(account: string): string {
    return this.labels.get(account) ?? opaqueIdentity(account);
  }

  private async observe(group: string | undefined): Promise<PeerObservation> {
    const agent = this.requireAgent();
    const views = await agent.groups();
    const groups: PeerGroupView[] = [];
    for (const v of views) {
      const full: AgentGroupView = (await agent.groupView(v.groupId)) ?? v;
      const label = [...this.groupLabels.entries()].find(([, id]) => id === v.groupId)?.[0] ?? null;
      groups.push({
        group: label,
        group_id_hex: full.groupId,
        nostr_group_id_hex: full.nostrGroupId,
        epoch: full.epoch,
        members: full.members,
        admins: full.admins,
        name: full.name,
        description: "",
        active: full.active,
        epoch_commitment: full.epochCommitment ?? null,
      });
    }
    const messages: PeerMessageView[] = this.history
      .filter((e) => e.op === "decrypt" && e.type === "ok" && e.actor === this.participant)
      .map((e) => {
        const d = e.data;
        return {
          group_id_hex: String(d.groupId),
          event_id: String(d.eventId),
          rumor_id: String(d.rumorId),
          sender: String(d.sender),
          kind: Number(d.rumorKind ?? 9),
          content: String(d.content ?? ""),
          epoch: Number(d.epoch ?? 0),
        };
      });
    let protocol: ProtocolProjection | null = null;
    let application: PeerObservation["application"] = null;
    const key = group ?? this.activeGroup;
    if (key !== undefined) {
      const id = this.groupLabels.get(key) ?? key;
      const g = groups.find((x) => x.group_id_hex === id);
      if (!g) throw new EnginePeerError("unknown_group", `group ${JSON.stringify(key)} is unknown to ${this.participant}`);
      const base = {
        epoch: g.epoch,
        member_identities: g.members.map((m) => this.label(m)).sort(),
        admin_identities: g.admins.map((m) => this.label(m)).sort(),
        group_name: g.name,
        group_description: g.description,
        member_count: g.members.length,
      };
      protocol = { ...base, state_commitment_sha256: stateCommitment(base) };
      const mine = messages.filter((m) => m.group_id_hex === id).sort((a, b) => (a.rumor_id < b.rumor_id ? -1 : a.rumor_id > b.rumor_id ? 1 : 0));
      application = {
        visible_message_ids: mine.map((m) => m.rumor_id),
        visible_plaintexts: mine.filter((m) => m.kind === 9).map((m) => m.content),
        invalidated_message_ids: [],
        pending_confirmation: false,
        stored_member_count: g.members.length,
        runtime_events_observed: this.history.byOp("receive").filter((e) => e.actor === this.participant).length,
      };
    }
    const checkpoint = stateCommitment({
      epoch: protocol?.epoch ?? 0,
      member_identities: protocol?.member_identities ?? [],
      admin_identities: [protocol?.state_commitment_sha256 ?? "", ...(application?.visible_message_ids ?? [])],
      group_name: protocol?.group_name ?? "",
      group_description: String(application?.visible_plaintexts.length ?? 0),
      member_count: protocol?.member_count ?? 0,
    });
    if (checkpoint === this.checkpoint) this.stableObservations++;
    else {
      this.checkpoint = checkpoint;
      this.stableObservations = 1;
    }
    const receives = this.history.byOp("receive").filter((e) => e.actor === this.participant).length;
    return {
      schema_version: OBSERVATION_SCHEMA_VERSION,
      participant: this.participant ?? "",
      protocol,
      application,
      progress: {
        relay_inbound_events_seen: receives,
        relay_inbound_events_delivered: receives,
        relay_publish_attempts: this.publishAttempts,
        relay_publish_failures: this.publishFailures,
        relay_directory_inflight_fetches: 0,
        relay_directory_completed_fetches: 0,
        retry_timer_armed: false,
        projection_checkpoint_sha256: checkpoint,
        stable_checkpoint_observations: this.stableObservations,
      },
      account_id: agent.pubkey,
      online: agent.isOnline(),
      groups,
      messages,
    };
  }

  async close(): Promise<void> {
    const agent = this.agent;
    this.agent = undefined;
    if (agent) await agent.stop();
  }
}

/** Hex of a fresh secret key, for callers that want to pin a peer's identity. */
export function freshSecretKeyHex(): string {
  return bytesToHex(generateSecretKey());
}
