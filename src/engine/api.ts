/**
 * The engine's public contract. The engine is sans-IO: it never opens a socket, never reads a
 * clock and never sleeps. Callers pass events and `now` (Unix seconds) in; the engine returns
 * events to publish, state changes, decrypted messages and typed rejections.
 *
 * Group handles are the hex MLS group id (never published; `nostrGroupId` is what goes in `h`).
 */
import type { Event as NostrEvent, UnsignedEvent } from "nostr-tools";
import type { ProtocolProfile } from "../profile.ts";
import type { EngineStorage } from "./storage.ts";

export type { NostrEvent, UnsignedEvent };
export type Hex = string;

export interface EngineOptions {
  /** 32-byte Nostr secret key: the account identity and the MLS BasicCredential identity. */
  secretKey: Uint8Array;
  /** Default "R1". "R0" makes the engine produce and read the legacy profile. */
  profile?: ProtocolProfile;
  /** Default: in-memory. A durable store lets the engine restart and keep every group. */
  storage?: EngineStorage;
  /** Randomness for keys the engine chooses itself (ephemeral 445 keys, nonces, `d`, group ids). Default: CSPRNG. */
  randomBytes?: (n: number) => Uint8Array;
  /** Value of the optional `client` tag. */
  clientName?: string;
  /** Past epochs kept for late application messages and rollback (default 5). */
  maxPastEpochs?: number;
  /** Experimental, off by default, non-MIP: Welcomes without the inline ratchet tree, tree delivered out of band. */
  outOfBandRatchetTree?: boolean;
  /** Quirks that reproduce known-bad client behaviour on purpose (all off by default). */
  quirks?: Partial<EngineQuirks>;
  /**
   * The primitives ts-mls runs on: "engine" (default: synchronous SHA-256/HKDF and OpenSSL Ed25519,
   * src/engine/sync-primitives.ts) or "ts-mls" (ts-mls's own default providers). Both give the same
   * bytes; "ts-mls" is the reference, to rule the adapters out when chasing a bug. Default: the
   * environment variable MARMOT_MLS_PROVIDERS if set (so a whole run, worker threads and engine peers
   * included, can be switched), else "engine".
   */
  mlsProviders?: "engine" | "ts-mls";
}

export interface EngineQuirks {
  /** Do not check that the inner rumor's pubkey equals the MLS sender (marmot-ts 0.5.1). */
  skipInnerAuthorCheck: boolean;
  /** Publish 30443 without the `mls_proposals` tag (marmot-ts 0.5.1). */
  omitMlsProposalsTag: boolean;
  /** Publish KeyPackages with the NIP-70 `-` tag. */
  protectedKeyPackages: boolean;
  /** Do not persist group state after sending (state lost on restart). */
  noPersistAfterSend: boolean;
}

/** The Marmot Group Data Extension (0xF2EE) in decoded form, any version. */
export interface MarmotGroupData {
  version: number;
  nostrGroupId: Uint8Array; // 32 bytes
  name: string;
  description: string;
  adminPubkeys: Hex[]; // lowercase x-only hex
  relays: string[];
  imageHash: Uint8Array | null; // 32 or null
  imageKey: Uint8Array | null; // 32 or null (v2+: image seed)
  imageNonce: Uint8Array | null; // 12 or null
  imageUploadKey: Uint8Array | null; // v2+: 32 or null
  disappearingMessageSecs: bigint | null; // v3 only
}

export interface CreateGroupOptions {
  name: string;
  description?: string;
  /** Admin pubkeys; the creator is always included. */
  admins?: Hex[];
  relays: string[];
  disappearingMessageSecs?: bigint | null;
  now: number;
}

/** A commit created locally and not yet applied: publish `event`, then confirm after >=1 relay OK. */
export interface PendingCommit {
  id: string;
  groupId: Hex;
  /** The 445 to publish. */
  event: NostrEvent;
  /** Epoch the commit starts from. */
  fromEpoch: bigint;
  /** Size in bytes of each Welcome rumor this commit will produce (before gift wrapping). */
  welcomeRumorBytes: number[];
}

export interface CommitConfirmation {
  groupId: Hex;
  epoch: bigint;
  /** Kind 1059 gift wraps to publish, one per invitee, only now that the commit is acknowledged. */
  welcomes: NostrEvent[];
  /** Out-of-band ratchet trees (only with `outOfBandRatchetTree`), keyed by invitee pubkey. */
  outOfBandTrees?: Record<Hex, Uint8Array>;
  /** Held events that became readable once this commit was applied (e.g. messages of the new epoch). */
  outcomes?: ProcessOutcome[];
  /**
   * A self-update commit to publish (and confirm) next. ts-mls 2.0.0-rc.10 commits a single Remove
   * without an UpdatePath, so the removed member could still derive the next epoch's secrets; this
   * commit re-keys the group. The engine never lets it hold back other members' commits.
   */
  followUpCommit?: PendingCommit;
}

export interface InnerMessage {
  kind: number;
  content: string;
  tags?: string[][];
}

/** An unsigned inner Nostr event with its verified id. */
export type Rumor = UnsignedEvent & { id: Hex };

export type ProcessOutcome =
  | { kind: "application"; groupId: Hex; epoch: bigint; sender: Hex; rumor: Rumor; eventId: Hex }
  | {
      kind: "commit";
      groupId: Hex;
      epoch: bigint;
      committer: Hex;
      added: Hex[];
      removed: Hex[];
      groupDataChanged: boolean;
      /** True when this commit replaced another one for the same epoch (race resolution). */
      rolledBack: boolean;
      /** This engine was removed by the commit. */
      selfRemoved: boolean;
      eventId: Hex;
      /** Events to publish after this commit: a leaving member's SelfRemove proposed again in the new epoch. */
      followUps?: NostrEvent[];
    }
  | { kind: "proposal"; groupId: Hex; epoch: bigint; sender: Hex; proposal: "self_remove" | "remove" | "update" | "add" | "group_context_extensions" | "other"; eventId: Hex }
  | { kind: "welcome"; groupId: Hex; epoch: bigint; inviter: Hex; eventId: Hex; /** e.g. the rotated KeyPackage to publish */ followUps: NostrEvent[] }
  | { kind: "deferred"; groupId?: Hex; reason: string; eventId: Hex }
  | { kind: "duplicate"; eventId: Hex }
  | { kind: "ignored"; reason: string; eventId: Hex }
  | { kind: "rejected"; error: { code: string; message: string }; groupId?: Hex; eventId: Hex };

export interface GroupSummary {
  groupId: Hex;
  nostrGroupId: Hex;
  epoch: bigint;
  members: Hex[];
  admins: Hex[];
  groupData: MarmotGroupData;
  /** False once this engine left or was removed. */
  active: boolean;
}

/** White-box view for the harness's checkers. Never log the byte values. */
export interface GroupInspection extends GroupSummary {
  /** SHA256("marmot-convergence-conformance-v1" || 0x00 || MLS-Exporter("marmot","convergence-conformance-v1",32)), hex. */
  epochCommitment: Hex;
  /**
   * Keys of the current and retained past epochs. `groupEventKey` is always
   * MLS-Exporter("marmot","group-event",32) (the R1 445 key). `mediaExporter` is the MIP-04 key of
   * the engine's profile: R1 ("marmot","encrypted-media",32), R0 ("nostr","nostr",32).
   * `legacyGroupEventKey` (R0 engines only) is MLS-Exporter("nostr","nostr",32), the secret R0
   * 445s are opened with (as a NIP-44 self-conversation key): what a compliance keyring's `key` holds for R0.
   */
  epochKeys: { epoch: bigint; groupEventKey: Uint8Array; mediaExporter: Uint8Array; legacyGroupEventKey?: Uint8Array }[];
  /** MLS-Exporter at the current epoch. */
  exporter(label: string, context: Uint8Array, length: number): Promise<Uint8Array>;
  requiredCapabilities: { extensions: number[]; proposals: number[]; credentials: number[] };
  /** Occupied leaves of the ratchet tree (leaf index, credential identity), for the compliance checker's MIP00-CR-01. */
  leaves?: { index: number; identity: Hex }[];
}

export interface MarmotEngine {
  readonly pubkey: Hex;
  readonly profile: ProtocolProfile;

  // MIP-00
  createKeyPackage(opts: { relays: string[]; now: number; lastResort?: boolean; d?: Hex }): Promise<NostrEvent>;
  keyPackageRelayList(relays: string[], now: number): NostrEvent;
  deleteKeyPackage(event: NostrEvent, now: number): NostrEvent;

  // MIP-01 / MIP-02 / MIP-03 (outbound)
  createGroup(opts: CreateGroupOptions): Promise<GroupSummary>;
  inviteMembers(groupId: Hex, keyPackageEvents: NostrEvent[], now: number): Promise<PendingCommit>;
  removeMembers(groupId: Hex, pubkeys: Hex[], now: number): Promise<PendingCommit>;
  selfUpdate(groupId: Hex, now: number): Promise<PendingCommit>;
  updateGroupData(groupId: Hex, patch: Partial<Omit<MarmotGroupData, "version">>, now: number): Promise<PendingCommit>;
  /** Commit pending proposals received from others (e.g. SelfRemove). Undefined when none. */
  commitPendingProposals(groupId: Hex, now: number): Promise<PendingCommit | undefined>;
  /** Leave: SelfRemove proposal (R1) as a 445 to publish. */
  leaveGroup(groupId: Hex, now: number): Promise<NostrEvent>;
  /** After >=1 relay acknowledged `pending.event`: apply it and release the Welcomes. */
  confirmCommit(pendingId: string): Promise<CommitConfirmation>;
  /** The commit was not acknowledged (or lost a race): forget it. */
  abandonCommit(pendingId: string): void;
  sendMessage(groupId: Hex, message: InnerMessage, now: number): Promise<NostrEvent>;

  // Inbound
  processEvent(event: NostrEvent, now: number): Promise<ProcessOutcome[]>;

  // Queries
  groups(): GroupSummary[];
  group(groupId: Hex): GroupSummary | undefined;
  inspect(groupId: Hex): Promise<GroupInspection>;

  /**
   * Experimental (`outOfBandRatchetTree`, non-MIP): hand over a ratchet tree received out of band
   * (`CommitConfirmation.outOfBandTrees`); Welcomes waiting for it are processed and their outcomes returned.
   */
  provideRatchetTree?(tree: Uint8Array, now: number): Promise<ProcessOutcome[]>;
}
