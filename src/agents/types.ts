/**
 * The Agent: one Marmot client as scenarios see it. Every method takes and returns plain data
 * (hex strings, numbers, Nostr events as JSON), never engine objects, so that an out-of-process
 * peer speaking a line-delimited JSON protocol can implement the same interface later.
 *
 * Group handles are the hex MLS group id (as in the engine contract).
 */
import type { Event as NostrEvent } from "nostr-tools";
import type { CatchUpMode, QuirkName } from "../scenarios/types.ts";

export interface AgentGroupView {
  groupId: string;
  nostrGroupId: string;
  epoch: number;
  /** Member pubkeys (hex), sorted. */
  members: string[];
  admins: string[];
  name: string;
  active: boolean;
  /** Exporter-derived convergence commitment (when the agent can tell it). */
  epochCommitment?: string;
}

export interface CommitReport {
  /** The published 445 (absent when nothing was committed). */
  eventId?: string;
  groupId: string;
  epoch: number;
  added: string[];
  removed: string[];
  /** Welcome rumor sizes (bytes) and their gift wrap sizes (serialized event bytes). */
  welcomeRumorBytes: number[];
  welcomeWrapBytes: number[];
  /** Real milliseconds spent creating the commit (metrics only; never in the history). */
  createMs: number;
  /** Non-MIP option only: ratchet trees (hex) to hand to invitees out of band, by invitee pubkey. */
  outOfBandTrees?: Record<string, string>;
}

export interface CatchUpReport {
  mode: CatchUpMode;
  /** Events fetched (after de-duplication). */
  events: number;
  /** Relays that answered EOSE before catch-up ended. */
  eoseFrom: string[];
  /** False when the agent stopped waiting before every relay had answered (trustFirstEose). */
  complete: boolean;
}

export interface ProbeOutcome {
  eventId: string;
  /** Engine outcome kind: "application", "rejected", "ignored", "deferred", ... */
  outcome: string;
  code?: string;
}

export interface SendRequest {
  kind?: number;
  content: string;
  tags?: string[][];
  /** Attach an encrypted file (MIP-04, capability "media"): `bytes` of seeded content uploaded to Blossom. */
  media?: { filename: string; mimeType: string; bytes: number; wrongBlob?: boolean };
  /** Adversarial (capability "spoof-author"): claim this pubkey as the inner rumor's author. */
  spoofAuthor?: string;
}

/**
 * Capability an agent declares when it cannot give an exporter-derived epoch commitment (foreign
 * peers that expose only epoch and members). Checkers that compare commitments should then compare
 * epoch and members for that agent and say so, rather than report the stronger check as passed.
 */
export const NO_EPOCH_COMMITMENT = "no-epoch-commitment";

export interface Agent {
  readonly name: string;
  readonly pubkey: string;
  /** "engine" for the in-process engine agent; peers name themselves. */
  readonly implementation: string;
  readonly quirks: readonly QuirkName[];

  /** What this agent can do (see `Requirements` in scenarios/types.ts). */
  capabilities(): string[];
  isOnline(): boolean;

  /** Connect, subscribe, publish the initial KeyPackages. */
  start(): Promise<void>;
  stop(): Promise<void>;
  goOffline(): Promise<void>;
  goOnline(mode?: CatchUpMode): Promise<CatchUpReport>;
  /** Drop all in-memory state and come back from the durable store. */
  restart(): Promise<CatchUpReport>;

  publishKeyPackages(count: number, lastResort: boolean): Promise<string[]>;
  rotateKeyPackage(): Promise<string>;
  deleteKeyPackages(): Promise<string[]>;

  createGroup(opts: { name: string; adminPubkeys: string[]; relays: string[] }): Promise<AgentGroupView>;
  invite(groupId: string, pubkeys: string[]): Promise<CommitReport>;
  remove(groupId: string, pubkeys: string[]): Promise<CommitReport>;
  selfUpdate(groupId: string): Promise<CommitReport>;
  updateGroupData(groupId: string, patch: { name?: string; description?: string; adminPubkeys?: string[] }): Promise<CommitReport>;
  /** Publish a SelfRemove proposal. */
  leave(groupId: string): Promise<{ eventId: string }>;
  /** Commit proposals received from others (e.g. a SelfRemove). Undefined when none were pending. */
  commitPendingProposals(groupId: string): Promise<CommitReport | undefined>;
  send(groupId: string, message: SendRequest): Promise<{ eventId: string }>;

  /** True when received events wait to be processed. */
  hasWork(): boolean;
  /** Process waiting events (in arrival order); returns how many. */
  processInbox(): Promise<number>;
  /**
   * Optional: start the engine work for the first waiting event now, without recording anything
   * (the compute phase). `processInbox()` later uses the result and records in order (the apply
   * phase). The runner starts every busy agent's compute phase at once, so that engines on worker
   * threads work in parallel, then applies agent by agent in the scenario's order.
   */
  prefetch?(): void;

  groupView(groupId: string): Promise<AgentGroupView | undefined>;
  groups(): Promise<AgentGroupView[]>;

  /** Non-MIP option only: a ratchet tree (hex) handed over out of band for a held Welcome. */
  provideOutOfBandTree(treeHex: string): Promise<void>;

  /** Secrecy probe: feed events and report what the agent made of them. */
  probe(events: NostrEvent[]): Promise<ProbeOutcome[]>;

  /** MIP-01 group image (capability "group-image"): set, change or clear it; the old blob is deleted. */
  setGroupImage?(groupId: string, opts: { bytes: number; version: 1 | 2; clear?: boolean }): Promise<CommitReport & { imageHash?: string; deletedBy?: string | null }>;
  /** Media secrecy probe (capability "media-probe"): try every media key ever held on these attachments. */
  probeMedia?(groupId: string, attachments: { eventId: string; imeta: string[] }[]): Promise<{ eventId: string; outcome: "decrypted" | "failed"; code?: string }[]>;
}
