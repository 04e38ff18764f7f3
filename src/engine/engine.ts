/**
 * The Marmot engine: a sans-IO Marmot client on ts-mls (MIP-00..03, profiles R1 and R0).
 *
 * Inputs are events, `now` and relay acknowledgements (confirmCommit); outputs are events to
 * publish, decrypted messages, state changes and typed rejections. Every state change is written
 * to the EngineStorage before the call returns.
 *
 * Group state model: `state` is the current ts-mls ClientState. For each of the last
 * `maxPastEpochs` epochs the engine keeps the state at that epoch (for rollback when a competing
 * commit wins), the commit that left it (created_at, event id) and the 445 keys of the epoch
 * (to open late application messages). Events that no retained key opens are held and retried
 * after each state change.
 */
// First: Uint8Array base64 built-ins before nostr-tools loads @scure/base (src/platform/uint8array-base64.ts).
import "../platform/install-base64.ts";
import { initNostrSigning } from "./nostr-signing.ts";
import { syncSha256 } from "./sync-primitives.ts";
import { seededCiphersuite } from "./seeded-suite.ts";
import { createHash } from "node:crypto";
import { sha256 } from "@noble/hashes/sha2.js";
import { bytesToHex, concatBytes } from "@noble/hashes/utils.js";
import { getPublicKey } from "nostr-tools/pure";
import {
  clientStateDecoder,
  clientStateEncoder,
  contentTypes,
  createApplicationMessage,
  createCommit,
  createGroup as mlsCreateGroup,
  createProposal,
  decode,
  defaultExtensionTypes,
  defaultKeyPackageEqualityConfig,
  defaultKeyRetentionConfig,
  defaultLifetimeConfig,
  defaultPaddingConfig,
  defaultProposalTypes,
  encode,
  joinGroup,
  keyPackageDecoder,
  keyPackageEncoder,
  makeKeyPackageRef,
  mlsExporter,
  mlsMessageDecoder,
  mlsMessageEncoder,
  nodeTypes,
  privateKeyPackageDecoder,
  privateKeyPackageEncoder,
  processMessage,
  senderTypes,
  wireformats,
  type CiphersuiteImpl,
  type ClientConfig,
  type ClientState,
  type CreateCommitResult,
  type GroupContextExtension,
  type IncomingMessageCallback,
  type KeyPackage,
  type MlsFramedMessage,
  type MlsContext,
  type PrivateKeyPackage,
  type Proposal,
  type ProposalWithSender,
  type EpochReceiverData,
  type RatchetTree,
  type RequiredCapabilities,
  type SecretTree,
} from "ts-mls";
import { HarnessError, describeError, isHarnessError } from "../errors.ts";
import { DEFAULT_PROFILE, type ProtocolProfile } from "../profile.ts";
import type {
  CommitConfirmation,
  CreateGroupOptions,
  EngineOptions,
  EngineQuirks,
  GroupInspection,
  GroupSummary,
  Hex,
  InnerMessage,
  MarmotEngine,
  MarmotGroupData,
  NostrEvent,
  PendingCommit,
  ProcessOutcome,
} from "./api.ts";
import { generateMarmotKeyPackage, getEngineCiphersuite, getMarmotCiphersuite, identityOfCredential, marmotAuthService, PROPOSAL_SELF_REMOVE, EXT_MARMOT_GROUP_DATA } from "./identity.ts";
import { buildKeyPackageDeletionEvent, buildKeyPackageEvent, buildKeyPackageRelayListEvent, parseKeyPackageEvent } from "./mip00-keypackages.ts";
import { groupDataVersionFor, makeGroupDataExtension, makeRequiredCapabilities, readGroupDataExtension } from "./mip01-group-data.ts";
import {
  GIFT_WRAP_KIND,
  NIP44_MAX_PLAINTEXT,
  buildWelcomeRumor,
  parseWelcomeRumor,
  sealRumor,
  unwrapWelcome,
  welcomePlaintextSizes,
  wrapSeal,
} from "./mip02-welcome.ts";
import {
  GROUP_EVENT_KIND,
  buildGroupEvent,
  buildRumor,
  decodeContentR1,
  deriveGroupEventKey,
  deriveLegacyGroupEventSecret,
  deriveMediaExporter,
  encodeRumor,
  encryptContentR0,
  encryptContentR1,
  fromBase64Strict,
  legacyConversationKey,
  parseGroupEventEnvelope,
  parseRumor,
  toBase64,
  tryDecryptContentR0,
  tryDecryptContentR1,
} from "./mip03-group-events.ts";
import { isValidSecretKey, Nip44KeyRing } from "./nip44-conversation.ts";
import { RecentSet, SeenEvents } from "./seen-events.ts";
import { MemoryStorage } from "./storage-memory.ts";
import type { EngineStorage } from "./storage.ts";
import { tsMlsInternals } from "./tsmls-internal.ts";

export class EngineError extends HarnessError {}

const utf8 = new TextEncoder();
const CONFORMANCE_DOMAIN = utf8.encode("marmot-convergence-conformance-v1");
/** Cap on events held for a later epoch, per group. */
const MAX_HELD = 1000;
/** Cap on remembered event ids and content hashes for dedup (persisted, oldest dropped first). */
const MAX_SEEN = 100_000;
/** How many recent 445 signing keys are remembered to refuse a repeat (a broken or replayed RNG). */
const MAX_USED_EPHEMERAL = 65_536;
/** How many lost pending commits confirmCommit can still explain (COMMIT_SUPERSEDED). */
const MAX_SUPERSEDED_NOTES = 1024;

const DEFAULT_QUIRKS: EngineQuirks = {
  skipInnerAuthorCheck: false,
  omitMlsProposalsTag: false,
  protectedKeyPackages: false,
  noPersistAfterSend: false,
};

interface EpochKeys {
  epoch: bigint;
  /** R1: MLS-Exporter("marmot","group-event",32). */
  groupEventKey: Uint8Array;
  /** R0: NIP-44 conversation key of MLS-Exporter("nostr","nostr",32) with itself. */
  legacyConversationKey: Uint8Array;
  /** R0: MLS-Exporter("nostr","nostr",32), the key the R0 profile speaks of (empty in R1 engines). */
  legacyExporter: Uint8Array;
  /** MIP-04 media exporter: R1 MLS-Exporter("marmot","encrypted-media",32); R0 MLS-Exporter("nostr","nostr",32). */
  mediaExporter: Uint8Array;
}

interface AppliedCommit {
  eventId: Hex;
  createdAt: number;
}

interface GroupRec {
  groupId: Hex;
  state: ClientState;
  data: MarmotGroupData;
  active: boolean;
  leaving: boolean;
  keys: Map<bigint, EpochKeys>;
  /** State at epoch e, kept for rollback (e in [current - maxPastEpochs, current - 1]). */
  snapshots: Map<bigint, ClientState>;
  /** The commit that moved epoch e to e + 1. */
  applied: Map<bigint, AppliedCommit>;
  held: NostrEvent[];
  retryHeld: boolean;
  /** Epochs whose snapshot is in storage. */
  storedSnapshots: Set<bigint>;
  /** Encoding of `state` as last written, while `state` has not changed since. */
  lastStateBytes?: Uint8Array;
  lastStateEpoch?: bigint;
  /** Held events changed since the record was last written. */
  metaDirty?: boolean;
  /** Past-epoch receiver data in storage, by epoch, with the secret tree that was written. */
  storedHist: Map<bigint, SecretTree>;
}

interface StoredKeyPackage {
  ref: Hex;
  eventId: Hex;
  kind: number;
  d?: Hex;
  relays: string[];
  lastResort: boolean;
  publicPackage: KeyPackage;
  privatePackage: PrivateKeyPackage;
}

interface PendingWelcome {
  recipient: Hex;
  seal: NostrEvent;
  rumorBytes: number;
}

interface PendingRec {
  id: string;
  groupId: Hex;
  fromEpoch: bigint;
  event: NostrEvent;
  newState: ClientState;
  welcomes: PendingWelcome[];
  oobTree?: Uint8Array;
  now: number;
  /** ts-mls 2.0.0-rc.10 sends a single-Remove commit without an UpdatePath: follow it with a self-update. */
  pathFollowUp?: boolean;
  /** Created by the engine itself (the follow-up self-update): never holds back others' commits. */
  auto?: boolean;
  /** Encoding of withoutHistory(newState), kept from persistPending (memory only). */
  newStateBytes?: Uint8Array;
}

type Outcome = ProcessOutcome;

function b64(b: Uint8Array): string {
  return toBase64(b);
}
function unb64(s: string): Uint8Array {
  const v = fromBase64Strict(s);
  if (v === undefined) throw new EngineError("STORAGE_CORRUPT", "stored value is not base64");
  return v;
}

function leafIdentityAt(tree: RatchetTree, leafIndex: number | undefined): Hex | undefined {
  if (leafIndex === undefined) return undefined;
  const node = tree[leafIndex * 2];
  if (node === undefined || node.nodeType !== nodeTypes.leaf) return undefined;
  try {
    return identityOfCredential(node.leaf.credential);
  } catch {
    return undefined;
  }
}

function leaves(tree: RatchetTree): { index: number; identity: Hex }[] {
  const out: { index: number; identity: Hex }[] = [];
  for (let i = 0; i < tree.length; i += 2) {
    const node = tree[i];
    if (node !== undefined && node.nodeType === nodeTypes.leaf) {
      try {
        out.push({ index: i / 2, identity: identityOfCredential(node.leaf.credential) });
      } catch {
        // not a Marmot credential: not listed
      }
    }
  }
  return out;
}

function requiredCapsOf(state: ClientState): RequiredCapabilities | undefined {
  const ext = state.groupContext.extensions.find((e) => e.extensionType === defaultExtensionTypes.required_capabilities);
  return ext === undefined ? undefined : (ext.extensionData as RequiredCapabilities);
}

/**
 * ts-mls checks an added KeyPackage's Lifetime against the wall clock (Date.now) when the inviter
 * creates the commit. The engine is sans-IO and validates lifetimes against the caller's `now`
 * itself, so for the duration of that one ts-mls call the clock it reads is the caller's `now`.
 * Concurrent calls share one override (the latest `now`); the real clock is restored afterwards.
 */
let clockOverrides = 0;
let overrideMs = 0;
const realDateNow = Date.now.bind(Date);
async function withMlsClock<T>(nowSecs: number, fn: () => Promise<T>): Promise<T> {
  overrideMs = nowSecs * 1000;
  if (clockOverrides++ === 0) Date.now = () => overrideMs;
  try {
    return await fn();
  } finally {
    if (--clockOverrides === 0) Date.now = realDateNow;
  }
}

/** `now` is Unix seconds; milliseconds or fractions are a caller bug worth a clear error. */
function checkNow(now: unknown): void {
  if (typeof now !== "number" || !Number.isSafeInteger(now) || now < 0 || now > 0xffffffff) {
    throw new EngineError("ENGINE_BAD_NOW", `now must be Unix seconds (an integer below 2^32), got ${String(now)}`);
  }
}

function removedLeaf(p: Proposal): number | undefined {
  return p.proposalType === defaultProposalTypes.remove && "remove" in p ? p.remove.removed : undefined;
}

function addedKeyPackage(p: Proposal): KeyPackage | undefined {
  return p.proposalType === defaultProposalTypes.add && "add" in p ? p.add.keyPackage : undefined;
}

function proposalName(p: Proposal): "self_remove" | "remove" | "update" | "add" | "group_context_extensions" | "other" {
  switch (p.proposalType) {
    case PROPOSAL_SELF_REMOVE:
      return "self_remove";
    case defaultProposalTypes.remove:
      return "remove";
    case defaultProposalTypes.update:
      return "update";
    case defaultProposalTypes.add:
      return "add";
    case defaultProposalTypes.group_context_extensions:
      return "group_context_extensions";
    default:
      return "other";
  }
}

/** R0/R1 race order: earliest created_at, then lowest event id. True when a beats b. */
function commitWins(a: { createdAt: number; eventId: Hex }, b: { createdAt: number; eventId: Hex }): boolean {
  if (a.createdAt !== b.createdAt) return a.createdAt < b.createdAt;
  return a.eventId < b.eventId;
}

/** The last content hash computed per event object (a received event is hashed for dedup, then again when marked seen). */
const contentHashes = new WeakMap<object, { content: string; hash: Hex }>();

/** SHA-256 (OpenSSL) of the event's content, for content dedup. */
function contentHash(event: NostrEvent): Hex {
  const known = contentHashes.get(event);
  if (known !== undefined && known.content === event.content) return known.hash;
  const hash = createHash("sha256").update(event.content, "utf8").digest("hex");
  contentHashes.set(event, { content: event.content, hash });
  return hash;
}

function rejection(e: unknown, eventId: Hex, groupId?: Hex): Outcome {
  const code = isHarnessError(e) ? e.code : "INTERNAL_ERROR";
  const out: Outcome = { kind: "rejected", error: { code, message: describeError(e) }, eventId };
  if (groupId !== undefined) out.groupId = groupId;
  return out;
}

class Engine implements MarmotEngine {
  readonly pubkey: Hex;
  readonly profile: ProtocolProfile;
  private readonly sk: Uint8Array;
  private readonly storage: EngineStorage;
  private readonly rb: (n: number) => Uint8Array;
  private readonly seededRandom: boolean;
  private readonly signRandom: ((n: number) => Uint8Array) | undefined;
  private readonly clientName: string | undefined;
  private readonly maxPast: number;
  private readonly oob: boolean;
  private readonly quirks: EngineQuirks;
  /** ts-mls's suite 0x0001 on the engine's providers (getEngineCiphersuite, sync-primitives.ts): every MLS operation and exporter. */
  private readonly cs: CiphersuiteImpl;
  private readonly ctx: MlsContext;
  /** NIP-44 conversation keys of this account (seal and unwrap), imported once, LRU-cached. */
  private readonly nip44: Nip44KeyRing;

  private readonly groupsById = new Map<Hex, GroupRec>();
  private readonly byNostrGroupId = new Map<Hex, Hex>();
  private readonly keyPackages = new Map<Hex, StoredKeyPackage>();
  private readonly pending = new Map<string, PendingRec>();
  /** Processed event ids and content hashes, persisted (bounded) so that dedup survives a restart. */
  private readonly seen: SeenEvents;
  /** Hashes of the 445 signing keys drawn lately (the last MAX_USED_EPHEMERAL), to refuse a repeat. */
  private readonly usedEphemeral = new RecentSet<Hex>(MAX_USED_EPHEMERAL);
  /** Pending commits dropped because another commit won their epoch: why, for confirmCommit's error. */
  private readonly superseded = new Map<string, { groupId: Hex; epoch: string; winner?: string; rolledBack: boolean }>();
  private readonly oobTrees = new Map<Hex, Uint8Array>();
  private heldWelcomes: NostrEvent[] = [];
  private pendingCounter = 0;
  /** Serialises all state-changing calls (callers may not await one before the next). */
  private queue: Promise<unknown> = Promise.resolve();

  constructor(opts: EngineOptions, cs: CiphersuiteImpl) {
    if (!(opts.secretKey instanceof Uint8Array) || opts.secretKey.length !== 32) {
      throw new EngineError("ENGINE_BAD_SECRET_KEY", "secretKey must be 32 bytes");
    }
    this.sk = opts.secretKey.slice();
    try {
      this.pubkey = getPublicKey(this.sk);
    } catch (e) {
      throw new EngineError("ENGINE_BAD_SECRET_KEY", "secretKey is not a valid secp256k1 secret key", {}, { cause: e });
    }
    this.nip44 = new Nip44KeyRing(this.sk);
    this.profile = opts.profile ?? DEFAULT_PROFILE;
    if (this.profile === "R2") throw new EngineError("ENGINE_PROFILE_UNSUPPORTED", "the engine produces R1 (default) or R0; R2 is checker-only");
    this.storage = opts.storage ?? new MemoryStorage();
    this.seen = new SeenEvents(this.storage, { maxEntries: MAX_SEEN });
    this.seededRandom = opts.randomBytes !== undefined;
    this.rb = opts.randomBytes ?? ((n) => crypto.getRandomValues(new Uint8Array(n)));
    // Seeded engines also draw their BIP-340 aux bytes from the seed, so that their events are byte-identical run to run.
    this.signRandom = this.seededRandom ? this.rb : undefined;
    this.clientName = opts.clientName;
    this.maxPast = opts.maxPastEpochs ?? 5;
    if (!Number.isInteger(this.maxPast) || this.maxPast < 1) throw new EngineError("ENGINE_BAD_OPTION", "maxPastEpochs must be a positive integer");
    this.oob = opts.outOfBandRatchetTree ?? false;
    this.quirks = { ...DEFAULT_QUIRKS, ...(opts.quirks ?? {}) };
    // A seeded engine draws ts-mls's randomness from the same source (seeded-suite.ts): one seed, one byte stream.
    this.cs = this.seededRandom ? seededCiphersuite(cs, this.rb) : cs;
    const clientConfig: ClientConfig = {
      keyRetentionConfig: { ...defaultKeyRetentionConfig, retainKeysForEpochs: this.maxPast },
      lifetimeConfig: defaultLifetimeConfig,
      keyPackageEqualityConfig: defaultKeyPackageEqualityConfig,
      paddingConfig: defaultPaddingConfig,
    };
    this.ctx = { cipherSuite: this.cs, authService: marmotAuthService, clientConfig };
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    // Every call ends by writing the events it marked as processed (nothing when there are none).
    const call = async (): Promise<T> => {
      try {
        return await fn();
      } finally {
        await this.seen.flush();
      }
    };
    const run = this.queue.then(call, call);
    this.queue = run.catch(() => undefined);
    return run;
  }

  // -------------------------------------------------------------------------------------------
  // Persistence

  private groupPrefix(gid: Hex): string {
    return `group/${gid}/`;
  }

  /** `stateBytes`: the encoding of `withoutHistory(rec.state)` when the caller already has it. */
  private async persistGroup(rec: GroupRec, newSnapshotEpoch?: bigint, stateBytesKnown?: Uint8Array): Promise<void> {
    const p = this.groupPrefix(rec.groupId);
    if (newSnapshotEpoch !== undefined) {
      const snap = rec.snapshots.get(newSnapshotEpoch);
      // The bytes last written for the current state are the snapshot's bytes when nothing changed since.
      const bytes = rec.lastStateBytes !== undefined && rec.lastStateEpoch === newSnapshotEpoch ? rec.lastStateBytes : snap ? encode(clientStateEncoder, withoutHistory(snap)) : undefined;
      if (bytes) await this.storage.put(`${p}snap/${newSnapshotEpoch.toString().padStart(20, "0")}`, bytes);
    }
    if (newSnapshotEpoch !== undefined) rec.storedSnapshots.add(newSnapshotEpoch);
    // Drop stored snapshots that fell out of the window.
    for (const e of [...rec.storedSnapshots]) {
      if (!rec.snapshots.has(e)) {
        await this.storage.delete(`${p}snap/${e.toString().padStart(20, "0")}`);
        rec.storedSnapshots.delete(e);
      }
    }
    // Past epochs are stored once each (key hist/<epoch>), not inside every copy of the state:
    // the ts-mls encoding of a state with five past epochs is six ratchet trees.
    const { epochReceiverDataEncoder } = await tsMlsInternals();
    for (const [e, d] of rec.state.historicalReceiverData) {
      if (rec.storedHist.get(e) === d.secretTree) continue;
      await this.storage.put(`${p}hist/${e.toString().padStart(20, "0")}`, encode(epochReceiverDataEncoder, d));
      rec.storedHist.set(e, d.secretTree);
    }
    for (const e of [...rec.storedHist.keys()]) {
      if (!rec.state.historicalReceiverData.has(e)) {
        await this.storage.delete(`${p}hist/${e.toString().padStart(20, "0")}`);
        rec.storedHist.delete(e);
      }
    }
    const stateBytes = stateBytesKnown ?? encode(clientStateEncoder, withoutHistory(rec.state));
    await this.storage.put(`${p}state`, stateBytes);
    await this.storage.delete(`${p}secrets`);
    rec.lastStateBytes = stateBytes;
    rec.lastStateEpoch = rec.state.groupContext.epoch;
    await this.persistMeta(rec);
  }

  /** The small JSON record: flags, epoch keys, applied commits, held events. */
  private async persistMeta(rec: GroupRec): Promise<void> {
    rec.metaDirty = false;
    const p = this.groupPrefix(rec.groupId);
    const meta = {
      v: 1,
      active: rec.active,
      leaving: rec.leaving,
      keys: [...rec.keys.values()].map((k) => ({ epoch: k.epoch.toString(), g: b64(k.groupEventKey), l: b64(k.legacyConversationKey), x: b64(k.legacyExporter), m: b64(k.mediaExporter) })),
      applied: [...rec.applied.entries()].map(([e, a]) => ({ epoch: e.toString(), id: a.eventId, at: a.createdAt })),
      held: rec.held,
    };
    await this.storage.put(`${p}meta`, utf8.encode(JSON.stringify(meta)));
  }

  /**
   * After an application message only the secret trees (per-sender key ratchets) change: they are
   * written as a small overlay instead of the whole ClientState. A full write drops the overlay.
   */
  private async persistSecrets(rec: GroupRec): Promise<void> {
    const { secretTreeEncoder } = await tsMlsInternals();
    // ts-mls states are immutable: a past epoch's secret tree that did not change since the last
    // write is the same object, and its encoding is reused.
    const enc = (t: SecretTree): string => {
      let v = encodedSecretTrees.get(t);
      if (v === undefined) {
        v = b64(encode(secretTreeEncoder, t));
        encodedSecretTrees.set(t, v);
      }
      return v;
    };
    const hist: Record<string, string> = {};
    for (const [e, d] of rec.state.historicalReceiverData) hist[e.toString()] = enc(d.secretTree);
    const overlay = { epoch: rec.state.groupContext.epoch.toString(), cur: b64(encode(secretTreeEncoder, rec.state.secretTree)), hist };
    await this.storage.put(`${this.groupPrefix(rec.groupId)}secrets`, utf8.encode(JSON.stringify(overlay)));
    rec.lastStateBytes = undefined;
  }

  /**
   * An unconfirmed commit is stored too: after a restart between publishing it and the relay OK,
   * `confirmCommit(id)` still applies it (ts-mls cannot process its own commit from the wire).
   */
  private async persistPending(p: PendingRec): Promise<void> {
    const rec = {
      id: p.id,
      groupId: p.groupId,
      fromEpoch: p.fromEpoch.toString(),
      event: p.event,
      newState: b64((p.newStateBytes ??= encode(clientStateEncoder, withoutHistory(p.newState)))),
      welcomes: p.welcomes,
      oobTree: p.oobTree ? b64(p.oobTree) : undefined,
      now: p.now,
      pathFollowUp: p.pathFollowUp ?? false,
      auto: p.auto ?? false,
    };
    await this.storage.put(`pending/${p.id}`, utf8.encode(JSON.stringify(rec)));
  }

  private async dropPending(id: string, supersededBy?: { winner?: string; rolledBack: boolean }): Promise<void> {
    const p = this.pending.get(id);
    this.pending.delete(id);
    await this.storage.delete(`pending/${id}`);
    if (p && supersededBy) {
      const note: { groupId: Hex; epoch: string; winner?: string; rolledBack: boolean } = { groupId: p.groupId, epoch: p.fromEpoch.toString(), rolledBack: supersededBy.rolledBack };
      if (supersededBy.winner !== undefined) note.winner = supersededBy.winner;
      this.superseded.set(id, note);
      if (this.superseded.size > MAX_SUPERSEDED_NOTES) this.superseded.delete(this.superseded.keys().next().value as string);
    }
  }

  private async persistKeyPackage(kp: StoredKeyPackage): Promise<void> {
    const rec = {
      ref: kp.ref,
      eventId: kp.eventId,
      kind: kp.kind,
      d: kp.d,
      relays: kp.relays,
      lastResort: kp.lastResort,
      pub: b64(encode(keyPackageEncoder, kp.publicPackage)),
      priv: b64(encode(privateKeyPackageEncoder, kp.privatePackage)),
    };
    await this.storage.put(`kp/${kp.ref}`, utf8.encode(JSON.stringify(rec)));
  }

  async load(): Promise<void> {
    const dec = new TextDecoder();
    await this.seen.load();
    for (const key of await this.storage.list("kp/")) {
      const raw = await this.storage.get(key);
      if (!raw) continue;
      const r = JSON.parse(dec.decode(raw)) as { ref: Hex; eventId: Hex; kind: number; d?: Hex; relays: string[]; lastResort: boolean; pub: string; priv: string };
      const pub = decode(keyPackageDecoder, unb64(r.pub));
      const priv = decode(privateKeyPackageDecoder, unb64(r.priv));
      if (!pub || !priv) throw new EngineError("STORAGE_CORRUPT", `KeyPackage ${key} cannot be decoded`);
      const kp: StoredKeyPackage = { ref: r.ref, eventId: r.eventId, kind: r.kind, relays: r.relays, lastResort: r.lastResort, publicPackage: pub, privatePackage: priv };
      if (r.d !== undefined) kp.d = r.d;
      this.keyPackages.set(r.ref, kp);
    }
    for (const key of await this.storage.list("group/")) {
      if (!key.endsWith("/meta")) continue;
      const gid = key.slice("group/".length, -"/meta".length);
      const p = this.groupPrefix(gid);
      const metaRaw = await this.storage.get(key);
      const stateRaw = await this.storage.get(`${p}state`);
      if (!metaRaw || !stateRaw) continue;
      let state = decode(clientStateDecoder, stateRaw);
      if (!state) throw new EngineError("STORAGE_CORRUPT", `group ${gid} state cannot be decoded`);
      const { epochReceiverDataDecoder } = await tsMlsInternals();
      const allHist = new Map<bigint, EpochReceiverData>();
      for (const hk of await this.storage.list(`${p}hist/`)) {
        const raw = await this.storage.get(hk);
        const d = raw ? decode(epochReceiverDataDecoder, raw) : undefined;
        if (!d) throw new EngineError("STORAGE_CORRUPT", `${hk} cannot be decoded`);
        allHist.set(BigInt(hk.slice(`${p}hist/`.length)), d);
      }
      const historyBefore = (epoch: bigint) => newestEpochs(new Map([...allHist].filter(([e]) => e < epoch)), this.maxPast);
      state = { ...state, historicalReceiverData: historyBefore(state.groupContext.epoch) };
      const storedHist = new Map([...allHist].map(([e, d]) => [e, d.secretTree] as [bigint, SecretTree]));
      const overlayRaw = await this.storage.get(`${p}secrets`);
      if (overlayRaw) state = await applySecretsOverlay(state, JSON.parse(dec.decode(overlayRaw)) as SecretsOverlay);
      const meta = JSON.parse(dec.decode(metaRaw)) as {
        active: boolean;
        leaving: boolean;
        keys: { epoch: string; g: string; l: string; x?: string; m: string }[];
        applied: { epoch: string; id: Hex; at: number }[];
        held: NostrEvent[];
      };
      const snapshots = new Map<bigint, ClientState>();
      for (const sk of await this.storage.list(`${p}snap/`)) {
        const raw = await this.storage.get(sk);
        const s = raw ? decode(clientStateDecoder, raw) : undefined;
        if (s) snapshots.set(BigInt(sk.slice(`${p}snap/`.length)), { ...s, historicalReceiverData: historyBefore(s.groupContext.epoch) });
      }
      const rec: GroupRec = {
        groupId: gid,
        state,
        data: readGroupDataExtension(state.groupContext.extensions),
        active: meta.active,
        leaving: meta.leaving,
        keys: new Map(meta.keys.map((k) => [BigInt(k.epoch), { epoch: BigInt(k.epoch), groupEventKey: unb64(k.g), legacyConversationKey: unb64(k.l), legacyExporter: unb64(k.x ?? ""), mediaExporter: unb64(k.m) }])),
        snapshots,
        applied: new Map(meta.applied.map((a) => [BigInt(a.epoch), { eventId: a.id, createdAt: a.at }])),
        held: meta.held,
        retryHeld: true,
        storedSnapshots: new Set(snapshots.keys()),
        storedHist,
      };
      this.groupsById.set(gid, rec);
      this.byNostrGroupId.set(bytesToHex(rec.data.nostrGroupId), gid);
    }
    for (const key of await this.storage.list("pending/")) {
      const raw = await this.storage.get(key);
      if (!raw) continue;
      const r = JSON.parse(dec.decode(raw)) as {
        id: string;
        groupId: Hex;
        fromEpoch: string;
        event: NostrEvent;
        newState: string;
        welcomes: PendingWelcome[];
        oobTree?: string;
        now: number;
        pathFollowUp: boolean;
        auto: boolean;
      };
      const decoded = decode(clientStateDecoder, unb64(r.newState));
      if (!decoded) throw new EngineError("STORAGE_CORRUPT", `pending commit ${r.id} cannot be decoded`);
      const base = this.groupsById.get(r.groupId);
      if (!base || base.state.groupContext.epoch !== BigInt(r.fromEpoch)) {
        await this.storage.delete(key); // the group moved on: this commit can no longer be applied
        continue;
      }
      // The state after the commit keeps the epoch it leaves as a past epoch (as ts-mls does).
      const hist = new Map(base.state.historicalReceiverData);
      hist.set(base.state.groupContext.epoch, receiverDataOf(base.state));
      const newState: ClientState = { ...decoded, historicalReceiverData: newestEpochs(hist, this.maxPast) };
      const p: PendingRec = { id: r.id, groupId: r.groupId, fromEpoch: BigInt(r.fromEpoch), event: r.event, newState, welcomes: r.welcomes, now: r.now };
      if (r.oobTree !== undefined) p.oobTree = unb64(r.oobTree);
      if (r.pathFollowUp) p.pathFollowUp = true;
      if (r.auto) p.auto = true;
      this.pending.set(r.id, p);
      this.seen.addId(r.event.id);
      const n = Number(r.id.split("-").at(-1));
      if (Number.isInteger(n) && n > this.pendingCounter) this.pendingCounter = n;
    }
  }

  // -------------------------------------------------------------------------------------------
  // Helpers

  private freshEphemeralKey(): Uint8Array {
    for (let i = 0; i < 16; i++) {
      const sk = this.rb(32);
      // A valid secp256k1 scalar is in [1, n-1]; the chance of drawing anything else is ~2^-128.
      if (!isValidSecretKey(sk)) continue;
      const tag = bytesToHex(sha256(sk));
      if (this.usedEphemeral.has(tag)) {
        throw new EngineError("EPHEMERAL_KEY_REUSE", "randomBytes produced a 445 signing key that was already used; refusing to reuse it");
      }
      this.usedEphemeral.add(tag);
      return sk;
    }
    throw new EngineError("ENGINE_RANDOMNESS", "could not draw a valid secp256k1 key");
  }

  private async epochKeys(state: ClientState): Promise<EpochKeys> {
    const secret = state.keySchedule.exporterSecret;
    const g = await deriveGroupEventKey(secret, this.cs);
    if (this.profile !== "R0") {
      return { epoch: state.groupContext.epoch, groupEventKey: g, legacyConversationKey: new Uint8Array(0), legacyExporter: new Uint8Array(0), mediaExporter: await deriveMediaExporter(secret, this.cs) };
    }
    // R0: one exporter, MLS-Exporter("nostr","nostr",32), keys both the 445 content (as a NIP-44
    // self-conversation key, an ECDH: derived only for R0 engines) and MIP-04 media.
    const lx = await deriveLegacyGroupEventSecret(secret, this.cs);
    return { epoch: state.groupContext.epoch, groupEventKey: g, legacyConversationKey: legacyConversationKey(lx), legacyExporter: lx, mediaExporter: lx.slice() };
  }

  private groupRec(gid: Hex): GroupRec {
    const rec = this.groupsById.get(gid);
    if (!rec) throw new EngineError("GROUP_UNKNOWN", `no group ${gid.slice(0, 16)}…`, { groupId: gid });
    return rec;
  }

  private activeGroup(gid: Hex): GroupRec {
    const rec = this.groupRec(gid);
    if (!rec.active) throw new EngineError("GROUP_INACTIVE", `this account is no longer a member of group ${gid.slice(0, 16)}…`, { groupId: gid });
    return rec;
  }

  private assertAdmin(rec: GroupRec, action: string): void {
    if (!rec.data.adminPubkeys.includes(this.pubkey)) {
      throw new EngineError("NOT_ADMIN", `${action} needs an admin; ${this.pubkey.slice(0, 12)}… is not in admin_pubkeys`, { groupId: rec.groupId });
    }
  }

  private wrapGroupMessage(rec: GroupRec, msg: MlsFramedMessage, keys: EpochKeys, now: number): NostrEvent {
    const bytes = encode(mlsMessageEncoder, msg);
    const content = this.profile === "R0" ? encryptContentR0(keys.legacyConversationKey, bytes, this.rb(32)) : encryptContentR1(keys.groupEventKey, bytes, this.rb(12));
    const secs = rec.data.disappearingMessageSecs;
    const params: Parameters<typeof buildGroupEvent>[0] = { content, nostrGroupId: rec.data.nostrGroupId, ephemeralSecretKey: this.freshEphemeralKey(), now, profile: this.profile };
    if (secs !== null && secs > 0n) params.expiration = now + Number(secs);
    if (this.signRandom) params.signAux = this.signRandom(32);
    return buildGroupEvent(params);
  }

  private markSeen(event: NostrEvent): void {
    this.seen.addId(event.id);
    this.seen.addContent(contentHash(event));
  }

  private summary(rec: GroupRec): GroupSummary {
    return {
      groupId: rec.groupId,
      nostrGroupId: bytesToHex(rec.data.nostrGroupId),
      epoch: rec.state.groupContext.epoch,
      members: leaves(rec.state.ratchetTree).map((l) => l.identity),
      admins: [...rec.data.adminPubkeys],
      groupData: rec.data,
      active: rec.active,
    };
  }

  /** Install `next` as the current state of `rec`, keeping `prev` for rollback. */
  private async advance(rec: GroupRec, prev: ClientState, next: ClientState, commit: AppliedCommit, nextBytes?: Uint8Array): Promise<void> {
    const fromEpoch = prev.groupContext.epoch;
    rec.snapshots.set(fromEpoch, prev);
    rec.applied.set(fromEpoch, commit);
    rec.state = next;
    const oldNgid = bytesToHex(rec.data.nostrGroupId);
    rec.data = readGroupDataExtension(next.groupContext.extensions);
    const ngid = bytesToHex(rec.data.nostrGroupId);
    if (ngid !== oldNgid) this.byNostrGroupId.set(ngid, rec.groupId);
    rec.keys.set(next.groupContext.epoch, await this.epochKeys(next));
    const cur = next.groupContext.epoch;
    for (const m of [rec.keys, rec.snapshots, rec.applied] as Map<bigint, unknown>[]) {
      for (const e of [...m.keys()]) if (e < cur - BigInt(this.maxPast) || e > cur) m.delete(e);
    }
    // snapshots/applied hold epochs < cur only
    rec.snapshots.delete(cur);
    rec.applied.delete(cur);
    if (next.groupActiveState.kind === "removedFromGroup") rec.active = false;
    rec.leaving = rec.leaving && rec.active;
    rec.retryHeld = true;
    await this.persistGroup(rec, fromEpoch, nextBytes);
  }

  // -------------------------------------------------------------------------------------------
  // MIP-00

  createKeyPackage(opts: { relays: string[]; now: number; lastResort?: boolean; d?: Hex }): Promise<NostrEvent> {
    return this.serial(async () => {
      checkNow(opts.now);
      return this.createKeyPackageInner(opts);
    });
  }

  private async createKeyPackageInner(opts: { relays: string[]; now: number; lastResort?: boolean; d?: Hex }): Promise<NostrEvent> {
    const lastResort = opts.lastResort ?? true;
    const gen: Parameters<typeof generateMarmotKeyPackage>[0] = { pubkey: this.pubkey, lastResort, now: opts.now, cipherSuite: this.cs };
    if (this.seededRandom) gen.randomBytes = this.rb;
    const { publicPackage, privatePackage } = await generateMarmotKeyPackage(gen);
    const d = opts.d ?? bytesToHex(this.rb(32));
    const kind = this.profile === "R0" ? 443 : 30443;
    const params: Parameters<typeof buildKeyPackageEvent>[0] = {
      keyPackage: publicPackage,
      secretKey: this.sk,
      relays: opts.relays,
      d,
      now: opts.now,
      profile: this.profile,
      omitMlsProposals: this.quirks.omitMlsProposalsTag,
      protectedTag: this.quirks.protectedKeyPackages,
    };
    if (this.clientName !== undefined) params.client = this.clientName;
    if (this.signRandom) params.randomBytes = this.signRandom;
    const event = await buildKeyPackageEvent(params);
    const ref = bytesToHex(await makeKeyPackageRef(publicPackage, syncSha256));
    const kp: StoredKeyPackage = { ref, eventId: event.id, kind, relays: [...opts.relays], lastResort, publicPackage, privatePackage };
    if (kind === 30443) kp.d = d;
    this.keyPackages.set(ref, kp);
    await this.persistKeyPackage(kp);
    return event;
  }

  keyPackageRelayList(relays: string[], now: number): NostrEvent {
    return buildKeyPackageRelayListEvent(this.sk, relays, now, this.signRandom);
  }

  deleteKeyPackage(event: NostrEvent, now: number): NostrEvent {
    return buildKeyPackageDeletionEvent(this.sk, event, now, this.signRandom);
  }

  // -------------------------------------------------------------------------------------------
  // Groups (outbound)

  createGroup(opts: CreateGroupOptions): Promise<GroupSummary> {
    return this.serial(async () => {
      checkNow(opts.now);
      if (!Array.isArray(opts.relays) || opts.relays.length === 0) throw new EngineError("GROUP_NO_RELAYS", "createGroup needs at least one relay");
      const admins = [...new Set([this.pubkey, ...(opts.admins ?? []).map((a) => a.toLowerCase())])];
      const data: MarmotGroupData = {
        version: 0,
        nostrGroupId: this.rb(32),
        name: opts.name,
        description: opts.description ?? "",
        adminPubkeys: admins,
        relays: [...opts.relays],
        imageHash: null,
        imageKey: null,
        imageNonce: null,
        imageUploadKey: null,
        disappearingMessageSecs: opts.disappearingMessageSecs ?? null,
      };
      if (this.profile === "R0" && data.disappearingMessageSecs !== null) throw new EngineError("GROUP_DATA_PROFILE", "disappearing messages need group data v3 (R1)");
      data.version = groupDataVersionFor(data, this.profile);
      const gen: Parameters<typeof generateMarmotKeyPackage>[0] = { pubkey: this.pubkey, lastResort: false, now: opts.now, cipherSuite: this.cs };
      if (this.seededRandom) gen.randomBytes = this.rb;
      const { publicPackage, privatePackage } = await generateMarmotKeyPackage(gen);
      const groupId = this.rb(32);
      const extensions: GroupContextExtension[] = [makeRequiredCapabilities({ profile: this.profile }), makeGroupDataExtension(data)];
      const state = await mlsCreateGroup({ context: this.ctx, groupId, keyPackage: publicPackage, privateKeyPackage: privatePackage, extensions });
      const rec = await this.adoptGroup(state, readGroupDataExtension(state.groupContext.extensions));
      return this.summary(rec);
    });
  }

  /** Register a group this engine just created or joined, and persist it. */
  private async adoptGroup(state: ClientState, data: MarmotGroupData): Promise<GroupRec> {
    const gid = bytesToHex(state.groupContext.groupId);
    const rec: GroupRec = {
      groupId: gid,
      state,
      data,
      active: true,
      leaving: false,
      keys: new Map([[state.groupContext.epoch, await this.epochKeys(state)]]),
      snapshots: new Map(),
      applied: new Map(),
      held: [],
      retryHeld: false,
      storedSnapshots: new Set(),
      storedHist: new Map(),
    };
    this.groupsById.set(gid, rec);
    this.byNostrGroupId.set(bytesToHex(data.nostrGroupId), gid);
    await this.persistGroup(rec);
    return rec;
  }

  /** The current state without pending proposals (so a commit only carries what we put in it). */
  private stateWithProposals(state: ClientState, keep: (p: ProposalWithSender) => boolean): ClientState {
    const unapplied: ClientState["unappliedProposals"] = {};
    for (const [ref, p] of Object.entries(state.unappliedProposals)) if (keep(p)) unapplied[ref] = p;
    return { ...state, unappliedProposals: unapplied };
  }

  private async makePending(
    rec: GroupRec,
    result: CreateCommitResult,
    now: number,
    welcomes: PendingWelcome[] = [],
    oobTree?: Uint8Array,
    flags: { pathFollowUp?: boolean; auto?: boolean } = {},
  ): Promise<PendingCommit> {
    const keys = rec.keys.get(rec.state.groupContext.epoch) ?? (await this.epochKeys(rec.state));
    const event = this.wrapGroupMessage(rec, result.commit, keys, now);
    const id = `${rec.groupId.slice(0, 16)}-${rec.state.groupContext.epoch}-${++this.pendingCounter}`;
    const p: PendingRec = { id, groupId: rec.groupId, fromEpoch: rec.state.groupContext.epoch, event, newState: result.newState, welcomes, now };
    if (oobTree !== undefined) p.oobTree = oobTree;
    if (flags.pathFollowUp) p.pathFollowUp = true;
    if (flags.auto) p.auto = true;
    this.pending.set(id, p);
    await this.persistPending(p);
    this.markSeen(event);
    return {
      id,
      groupId: rec.groupId,
      event,
      fromEpoch: p.fromEpoch,
      welcomeRumorBytes: welcomes.map((w) => w.rumorBytes),
    };
  }

  inviteMembers(groupId: Hex, keyPackageEvents: NostrEvent[], now: number): Promise<PendingCommit> {
    return this.serial(async () => {
      checkNow(now);
      const rec = this.activeGroup(groupId);
      this.assertAdmin(rec, "inviting members");
      if (keyPackageEvents.length === 0) throw new EngineError("INVITE_EMPTY", "inviteMembers needs at least one KeyPackage event");
      const members = new Set(leaves(rec.state.ratchetTree).map((l) => l.identity));
      const invitees: { event: NostrEvent; pubkey: Hex; keyPackage: KeyPackage }[] = [];
      for (const ev of keyPackageEvents) {
        // The KeyPackage signature is verified once, by ts-mls's createCommit below.
        const parsed = await parseKeyPackageEvent(ev, { profile: this.profile, now, signatureVerifiedByMls: true });
        const pk = ev.pubkey;
        if (members.has(pk)) throw new EngineError("INVITEE_ALREADY_MEMBER", `${pk.slice(0, 12)}… is already a member`, { pubkey: pk });
        if (invitees.some((i) => i.pubkey === pk)) throw new EngineError("INVITEE_DUPLICATE", `two KeyPackages for ${pk.slice(0, 12)}… in one invite`, { pubkey: pk });
        const required = requiredCapsOf(rec.state);
        const caps = parsed.keyPackage.leafNode.capabilities;
        const missing = [
          ...(required?.extensionTypes ?? []).filter((x) => !caps.extensions.includes(x)).map((x) => `extension 0x${x.toString(16).padStart(4, "0")}`),
          ...(required?.proposalTypes ?? []).filter((x) => !caps.proposals.includes(x)).map((x) => `proposal 0x${x.toString(16).padStart(4, "0")}`),
        ];
        if (missing.length > 0) {
          throw new EngineError("INVITEE_LACKS_CAPABILITIES", `${pk.slice(0, 12)}…'s KeyPackage does not support the group's required ${missing.join(", ")}`, { pubkey: pk, missing });
        }
        invitees.push({ event: ev, pubkey: pk, keyPackage: parsed.keyPackage });
      }
      const extraProposals: Proposal[] = invitees.map((i) => ({ proposalType: defaultProposalTypes.add, add: { keyPackage: i.keyPackage } }));
      let result: CreateCommitResult;
      try {
        result = await withMlsClock(now, () =>
          createCommit({
            context: this.ctx,
            state: this.stateWithProposals(rec.state, () => false),
            extraProposals,
            ratchetTreeExtension: !this.oob,
          }),
        );
      } catch (e) {
        // ts-mls refused a KeyPackage (e.g. its signature): the full MIP-00 validation names which one
        // with its typed KP_* error; anything else is passed on.
        for (const inv of invitees) await parseKeyPackageEvent(inv.event, { profile: this.profile, now });
        throw e;
      }
      if (!result.welcome) throw new EngineError("INTERNAL_ERROR", "Add commit produced no Welcome");
      let oobTree: Uint8Array | undefined;
      const tags: { treeHash?: Hex } = {};
      if (this.oob) {
        oobTree = encode((await tsMlsInternals()).ratchetTreeEncoder, result.newState.ratchetTree);
        tags.treeHash = bytesToHex(sha256(oobTree));
      }
      const welcomes: PendingWelcome[] = [];
      const memberCount = members.size + invitees.length;
      for (const inv of invitees) {
        const rp: Parameters<typeof buildWelcomeRumor>[0] = {
          inviterPubkey: this.pubkey,
          welcome: result.welcome,
          keyPackageEventId: inv.event.id,
          relays: rec.data.relays,
          now,
          profile: this.profile,
          outOfBandTree: this.oob,
        };
        if (this.clientName !== undefined) rp.client = this.clientName;
        if (tags.treeHash !== undefined) rp.treeHash = tags.treeHash;
        const rumor = buildWelcomeRumor(rp);
        const seal = sealRumor(rumor, this.sk, inv.pubkey, now, this.rb, this.nip44, this.signRandom);
        const sizes = welcomePlaintextSizes(rumor, seal);
        const biggest = Math.max(sizes.rumorBytes, sizes.sealBytes);
        if (biggest > NIP44_MAX_PLAINTEXT) {
          throw new EngineError(
            "WELCOME_TOO_LARGE",
            `a Welcome for a group of ${memberCount} members needs a ${biggest}-byte NIP-44 plaintext (limit ${NIP44_MAX_PLAINTEXT}); the Add commit was not created`,
            { members: memberCount, bytes: biggest, rumorBytes: sizes.rumorBytes, sealBytes: sizes.sealBytes, limit: NIP44_MAX_PLAINTEXT },
          );
        }
        welcomes.push({ recipient: inv.pubkey, seal, rumorBytes: sizes.rumorBytes });
      }
      return this.makePending(rec, result, now, welcomes, oobTree);
    });
  }

  removeMembers(groupId: Hex, pubkeys: Hex[], now: number): Promise<PendingCommit> {
    return this.serial(async () => {
      checkNow(now);
      const rec = this.activeGroup(groupId);
      this.assertAdmin(rec, "removing members");
      const targets = new Set(pubkeys.map((p) => p.toLowerCase()));
      if (targets.size === 0) throw new EngineError("REMOVE_EMPTY", "removeMembers needs at least one pubkey");
      if (targets.has(this.pubkey)) throw new EngineError("REMOVE_SELF", "an engine does not remove itself; use leaveGroup (after self-demotion)");
      const all = leaves(rec.state.ratchetTree);
      for (const t of targets) if (!all.some((l) => l.identity === t)) throw new EngineError("NOT_A_MEMBER", `${t.slice(0, 12)}… is not a member`, { pubkey: t });
      const proposals: Proposal[] = all.filter((l) => targets.has(l.identity)).map((l) => ({ proposalType: defaultProposalTypes.remove, remove: { removed: l.index } }));
      const admins = rec.data.adminPubkeys.filter((a) => !targets.has(a));
      if (admins.length === 0) throw new EngineError("ZERO_ADMINS", "this removal would leave the group with no admin");
      if (admins.length !== rec.data.adminPubkeys.length) {
        proposals.push(this.gceProposal(rec, { ...rec.data, adminPubkeys: admins }));
      }
      const result = await createCommit({ context: this.ctx, state: this.stateWithProposals(rec.state, () => false), extraProposals: proposals });
      const removes = proposals.filter((x) => x.proposalType === defaultProposalTypes.remove).length;
      return this.makePending(rec, result, now, [], undefined, { pathFollowUp: removes === 1 });
    });
  }

  selfUpdate(groupId: Hex, now: number): Promise<PendingCommit> {
    return this.serial(async () => {
      checkNow(now);
      const rec = this.activeGroup(groupId);
      const result = await createCommit({ context: this.ctx, state: this.stateWithProposals(rec.state, () => false), extraProposals: [] });
      return this.makePending(rec, result, now);
    });
  }

  private gceProposal(rec: GroupRec, data: MarmotGroupData): Proposal {
    const ext = makeGroupDataExtension(data);
    const extensions = rec.state.groupContext.extensions.map((e) => (e.extensionType === EXT_MARMOT_GROUP_DATA ? ext : e));
    return { proposalType: defaultProposalTypes.group_context_extensions, groupContextExtensions: { extensions } };
  }

  updateGroupData(groupId: Hex, patch: Partial<Omit<MarmotGroupData, "version">>, now: number): Promise<PendingCommit> {
    return this.serial(async () => {
      checkNow(now);
      const rec = this.activeGroup(groupId);
      this.assertAdmin(rec, "changing group data");
      const next: MarmotGroupData = { ...rec.data, ...patch, version: 0 };
      next.adminPubkeys = [...new Set(next.adminPubkeys.map((a) => a.toLowerCase()))];
      if (next.adminPubkeys.length === 0) throw new EngineError("ZERO_ADMINS", "group data must keep at least one admin");
      const members = new Set(leaves(rec.state.ratchetTree).map((l) => l.identity));
      const stray = next.adminPubkeys.filter((a) => !members.has(a));
      if (stray.length > 0) throw new EngineError("ADMIN_NOT_MEMBER", `admins must be members: ${stray.map((s) => s.slice(0, 12)).join(", ")}`, { stray });
      if (this.profile === "R0" && next.disappearingMessageSecs !== null) throw new EngineError("GROUP_DATA_PROFILE", "disappearing messages need group data v3 (R1)");
      next.version = groupDataVersionFor(next, this.profile);
      const result = await createCommit({ context: this.ctx, state: this.stateWithProposals(rec.state, () => false), extraProposals: [this.gceProposal(rec, next)] });
      return this.makePending(rec, result, now, [], undefined, { pathFollowUp: true });
    });
  }

  commitPendingProposals(groupId: Hex, now: number): Promise<PendingCommit | undefined> {
    return this.serial(async () => {
      checkNow(now);
      const rec = this.activeGroup(groupId);
      const myLeaf = rec.state.privatePath.leafIndex;
      const selfRemoves = Object.values(rec.state.unappliedProposals).filter(
        (p) => p.proposal.proposalType === PROPOSAL_SELF_REMOVE && p.senderLeafIndex !== undefined && p.senderLeafIndex !== myLeaf,
      );
      if (selfRemoves.length === 0) return undefined;
      const senders = [...new Set(selfRemoves.map((p) => p.senderLeafIndex as number))];
      const state = this.stateWithProposals(rec.state, (p) => p.proposal.proposalType === PROPOSAL_SELF_REMOVE && p.senderLeafIndex !== myLeaf);
      const extraProposals: Proposal[] = senders.map((s) => ({ proposalType: defaultProposalTypes.remove, remove: { removed: s } }));
      const result = await createCommit({ context: this.ctx, state, extraProposals });
      return this.makePending(rec, result, now, [], undefined, { pathFollowUp: senders.length === 1 });
    });
  }

  leaveGroup(groupId: Hex, now: number): Promise<NostrEvent> {
    return this.serial(async () => {
      checkNow(now);
      const rec = this.activeGroup(groupId);
      if (this.profile === "R0") throw new EngineError("NOT_SUPPORTED_IN_PROFILE", "R0 has no SelfRemove; an admin must remove the member");
      if (rec.data.adminPubkeys.includes(this.pubkey)) {
        throw new EngineError("ADMIN_MUST_SELF_DEMOTE", "an admin must remove itself from admin_pubkeys (updateGroupData) before leaving");
      }
      // Our own SelfRemove stays in the pending proposals (the commit that realises it references it),
      // but this engine never commits it: every commit it makes filters its own SelfRemove out.
      return this.proposeSelfRemove(rec, now);
    });
  }

  confirmCommit(pendingId: string): Promise<CommitConfirmation> {
    return this.serial(async () => {
      const p = this.pending.get(pendingId);
      if (!p) {
        const lost = this.superseded.get(pendingId);
        if (lost) {
          const how = lost.rolledBack ? "it was built on a branch that was rolled back" : `another commit for epoch ${lost.epoch} was applied first`;
          throw new EngineError("COMMIT_SUPERSEDED", `pending commit ${pendingId} lost its race: ${how}${lost.winner ? ` (winner ${lost.winner.slice(0, 12)}…)` : ""}`, { ...lost, pendingId });
        }
        throw new EngineError("COMMIT_UNKNOWN", `no pending commit ${pendingId} (never made, already confirmed or abandoned, or made before a restart and since superseded)`);
      }
      await this.dropPending(pendingId);
      const rec = this.activeGroup(p.groupId);
      if (rec.state.groupContext.epoch !== p.fromEpoch) {
        throw new EngineError("COMMIT_SUPERSEDED", `another commit for epoch ${p.fromEpoch} was applied first; this one lost the race`, { groupId: p.groupId, epoch: p.fromEpoch.toString() });
      }
      // The pending record already encoded the new state: written again as the group state, not re-encoded.
      await this.advance(rec, rec.state, p.newState, { eventId: p.event.id, createdAt: p.event.created_at }, p.newStateBytes);
      const welcomes = p.welcomes.map((w) => wrapSeal(w.seal, w.recipient, p.now, this.rb, this.signRandom));
      const conf: CommitConfirmation = { groupId: p.groupId, epoch: rec.state.groupContext.epoch, welcomes };
      if (p.oobTree !== undefined) {
        conf.outOfBandTrees = Object.fromEntries(p.welcomes.map((w) => [w.recipient, p.oobTree as Uint8Array]));
      }
      // Other pending commits for the same epoch can no longer be applied.
      for (const [id, o] of this.pending) if (o.groupId === p.groupId && o.fromEpoch === p.fromEpoch) await this.dropPending(id, { winner: p.event.id, rolledBack: false });
      const outcomes = await this.retryHeld(rec, p.now);
      if (outcomes.length > 0) conf.outcomes = outcomes;
      if (p.pathFollowUp && rec.active) {
        const su = await createCommit({ context: this.ctx, state: this.stateWithProposals(rec.state, () => false), extraProposals: [] });
        conf.followUpCommit = await this.makePending(rec, su, p.now, [], undefined, { auto: true });
      }
      return conf;
    });
  }

  abandonCommit(pendingId: string): void {
    const p = this.pending.get(pendingId);
    this.pending.delete(pendingId);
    void this.serial(() => this.storage.delete(`pending/${pendingId}`));
    if (p) {
      const rec = this.groupsById.get(p.groupId);
      if (rec) rec.retryHeld = true;
    }
  }

  sendMessage(groupId: Hex, message: InnerMessage, now: number): Promise<NostrEvent> {
    return this.serial(async () => {
      checkNow(now);
      const rec = this.activeGroup(groupId);
      const rumor = buildRumor(this.pubkey, message, now);
      const res = await createApplicationMessage({ context: this.ctx, state: rec.state, message: encodeRumor(rumor) });
      rec.state = res.newState;
      const keys = rec.keys.get(rec.state.groupContext.epoch) ?? (await this.epochKeys(rec.state));
      const event = this.wrapGroupMessage(rec, res.message, keys, now);
      this.markSeen(event);
      if (!this.quirks.noPersistAfterSend) await this.persistSecrets(rec);
      return event;
    });
  }

  /** Experimental (outOfBandRatchetTree): hand over a ratchet tree received out of band; retries held Welcomes. */
  provideRatchetTree(tree: Uint8Array, now: number): Promise<ProcessOutcome[]> {
    return this.serial(async () => {
      checkNow(now);
      this.oobTrees.set(bytesToHex(sha256(tree)), tree.slice());
      const held = this.heldWelcomes;
      this.heldWelcomes = [];
      const out: Outcome[] = [];
      for (const ev of held) out.push(...(await this.processWelcome(ev, now)));
      return out;
    });
  }

  // -------------------------------------------------------------------------------------------
  // Inbound

  processEvent(event: NostrEvent, now: number): Promise<ProcessOutcome[]> {
    return this.serial(async () => {
      checkNow(now);
      return this.processEventInner(event, now);
    });
  }

  private async processEventInner(event: NostrEvent, now: number): Promise<Outcome[]> {
    const eventId = typeof event?.id === "string" ? event.id : "";
    if (this.seen.hasId(eventId)) return [{ kind: "duplicate", eventId }];
    if (typeof event?.content === "string" && this.seen.hasContent(contentHash(event))) return [{ kind: "duplicate", eventId }];
    if (event?.kind === GIFT_WRAP_KIND) return this.processWelcome(event, now);
    if (event?.kind !== GROUP_EVENT_KIND) {
      return [rejection(new EngineError("EVENT_WRONG_KIND", `the engine processes kinds 445 and 1059, not ${String(event?.kind)}`), eventId)];
    }
    let env;
    try {
      env = parseGroupEventEnvelope(event);
    } catch (e) {
      return [rejection(e, eventId)];
    }
    const gid = this.byNostrGroupId.get(env.nostrGroupId);
    if (gid === undefined) return [{ kind: "ignored", reason: "unknown nostr_group_id", eventId }];
    const rec = this.groupRec(gid);
    const out: Outcome[] = [];
    if (rec.retryHeld) out.push(...(await this.retryHeld(rec, now)));
    const first = await this.process445(rec, event, now);
    out.push(first);
    // Held events are retried only when the group state moved (new epoch, new proposal, abandoned commit).
    if (rec.retryHeld) out.push(...(await this.retryHeld(rec, now)));
    if (rec.metaDirty) await this.persistMeta(rec);
    return out;
  }

  private hold(rec: GroupRec, event: NostrEvent, reason: string): Outcome {
    if (!rec.held.some((e) => e.id === event.id)) {
      rec.held.push(event);
      if (rec.held.length > MAX_HELD) rec.held.shift();
      rec.metaDirty = true;
    }
    return { kind: "deferred", groupId: rec.groupId, reason, eventId: event.id };
  }

  private async retryHeld(rec: GroupRec, now: number): Promise<Outcome[]> {
    rec.retryHeld = false;
    const out: Outcome[] = [];
    let progress = true;
    while (progress && rec.held.length > 0) {
      progress = false;
      const held = rec.held;
      rec.held = [];
      for (const ev of held) {
        const o = await this.process445(rec, ev, now);
        if (o.kind === "deferred") continue; // process445 re-held it
        out.push(o);
        progress = true;
      }
    }
    if (out.length > 0) await this.persistGroup(rec);
    return out;
  }

  /** One 445 for a known group. Marks it seen unless it is deferred. */
  private async process445(rec: GroupRec, event: NostrEvent, now: number): Promise<Outcome> {
    const eventId = event.id;
    const final = (o: Outcome): Outcome => {
      if (o.kind !== "deferred") this.markSeen(event);
      return o;
    };
    if (!rec.active) return final({ kind: "ignored", reason: "this account is no longer in the group", eventId });
    // Trial decryption with the current and retained epoch keys, newest first.
    let plaintext: Uint8Array | undefined;
    const epochs = [...rec.keys.keys()].sort((a, b) => (a > b ? -1 : a < b ? 1 : 0));
    try {
      if (this.profile === "R0") {
        for (const e of epochs) {
          plaintext = tryDecryptContentR0((rec.keys.get(e) as EpochKeys).legacyConversationKey, event.content);
          if (plaintext) break;
        }
      } else {
        const raw = decodeContentR1(event.content);
        for (const e of epochs) {
          plaintext = tryDecryptContentR1((rec.keys.get(e) as EpochKeys).groupEventKey, raw);
          if (plaintext) break;
        }
      }
    } catch (e) {
      return final(rejection(e, eventId, rec.groupId));
    }
    if (!plaintext) return this.hold(rec, event, "no retained epoch key opens this event (future epoch or not ours)");
    const msg = decode(mlsMessageDecoder, plaintext);
    if (!msg || (msg.wireformat !== wireformats.mls_private_message && msg.wireformat !== wireformats.mls_public_message)) {
      return final(rejection(new EngineError("MLS_DECODE_FAILED", "decrypted 445 content is not an MLS PrivateMessage or PublicMessage"), eventId, rec.groupId));
    }
    const framed = msg as MlsFramedMessage;
    const isPrivate = framed.wireformat === wireformats.mls_private_message;
    const msgGroupId = isPrivate ? framed.privateMessage.groupId : framed.publicMessage.content.groupId;
    if (bytesToHex(msgGroupId) !== rec.groupId) {
      return final(rejection(new EngineError("MLS_WRONG_GROUP", "MLS group id inside the 445 is not the group its h tag names"), eventId, rec.groupId));
    }
    const epoch = isPrivate ? framed.privateMessage.epoch : framed.publicMessage.content.epoch;
    const contentType = isPrivate ? framed.privateMessage.contentType : framed.publicMessage.content.contentType;
    const cur = rec.state.groupContext.epoch;
    if (epoch > cur) return this.hold(rec, event, `message for epoch ${epoch}, current epoch is ${cur}`);
    try {
      if (contentType === contentTypes.application) {
        if (!isPrivate) throw new EngineError("MLS_APPLICATION_NOT_PRIVATE", "application messages must be PrivateMessages");
        return final(await this.processApplication(rec, framed, event));
      }
      if (contentType === contentTypes.proposal) {
        if (epoch < cur) return final({ kind: "ignored", reason: `proposal for past epoch ${epoch}`, eventId });
        return final(await this.processProposal(rec, framed, isPrivate, event));
      }
      if (contentType === contentTypes.commit) {
        if (epoch === cur) {
          const mine = [...this.pending.values()].find((p) => p.groupId === rec.groupId && p.fromEpoch === cur && !p.auto);
          if (mine && commitWins({ createdAt: mine.event.created_at, eventId: mine.event.id }, { createdAt: event.created_at, eventId })) {
            return this.hold(rec, event, "our own pending commit for this epoch wins the race");
          }
          return final(await this.applyCommit(rec, framed, event, rec.state, false, now));
        }
        const applied = rec.applied.get(epoch);
        const snapshot = rec.snapshots.get(epoch);
        if (!applied || !snapshot) return final({ kind: "ignored", reason: `commit for epoch ${epoch} is outside the rollback window`, eventId });
        if (applied.eventId === eventId || !commitWins({ createdAt: event.created_at, eventId }, applied)) {
          return final({ kind: "ignored", reason: `commit for epoch ${epoch} lost the race to ${applied.eventId.slice(0, 12)}…`, eventId });
        }
        return final(await this.applyCommit(rec, framed, event, snapshot, true, now));
      }
      return final(rejection(new EngineError("MLS_UNKNOWN_CONTENT", `unknown content type ${contentType}`), eventId, rec.groupId));
    } catch (e) {
      if (isHarnessError(e) && e.code === "COMMIT_MISSING_PROPOSAL") return this.hold(rec, event, e.message);
      return final(rejection(e, eventId, rec.groupId));
    }
  }

  private async processApplication(rec: GroupRec, msg: MlsFramedMessage, event: NostrEvent): Promise<Outcome> {
    if (msg.wireformat !== wireformats.mls_private_message) throw new EngineError("MLS_APPLICATION_NOT_PRIVATE", "application messages must be PrivateMessages");
    const pm = msg.privateMessage;
    const cur = rec.state.groupContext.epoch;
    const hist = pm.epoch === cur ? undefined : rec.state.historicalReceiverData.get(pm.epoch);
    if (pm.epoch !== cur && !hist) throw new EngineError("STALE_EPOCH", `application message from epoch ${pm.epoch} is older than the retained window`);
    // What ts-mls's processMessage does for an application PrivateMessage (decrypt sender data,
    // ratchet, AEAD, verify the signature), called directly so that the verified sender comes back
    // with it instead of decrypting the sender data a second time.
    const state = rec.state;
    const tree = hist ? hist.ratchetTree : state.ratchetTree;
    let out;
    try {
      const { unprotectPrivateMessage } = await tsMlsInternals();
      const retention = this.ctx.clientConfig?.keyRetentionConfig ?? defaultKeyRetentionConfig;
      out = hist
        ? await unprotectPrivateMessage(hist.senderDataSecret, pm, hist.secretTree, hist.ratchetTree, hist.groupContext, retention, this.cs)
        : await unprotectPrivateMessage(state.keySchedule.senderDataSecret, pm, state.secretTree, state.ratchetTree, state.groupContext, retention, this.cs);
    } catch (e) {
      throw new EngineError("MLS_DECRYPT_FAILED", `MLS rejected the application message: ${describeError(e)}`, {}, { cause: e });
    }
    const content = out.content.content;
    if (content.contentType !== contentTypes.application || content.applicationData === undefined) throw new EngineError("MLS_UNEXPECTED", "expected an application message");
    const sender = content.sender.senderType === senderTypes.member ? leafIdentityAt(tree, content.sender.leafIndex) : undefined;
    if (!sender) throw new EngineError("MLS_BAD_SENDER", "cannot identify the MLS sender of the application message");
    if (hist) {
      const historicalReceiverData = new Map(state.historicalReceiverData);
      historicalReceiverData.set(pm.epoch, { ...hist, secretTree: out.tree });
      rec.state = { ...state, historicalReceiverData };
    } else {
      rec.state = { ...state, secretTree: out.tree };
    }
    await this.persistSecrets(rec);
    const rumor = parseRumor(content.applicationData, sender, { skipAuthorCheck: this.quirks.skipInnerAuthorCheck });
    return { kind: "application", groupId: rec.groupId, epoch: pm.epoch, sender, rumor, eventId: event.id };
  }

  private async processProposal(rec: GroupRec, msg: MlsFramedMessage, isPrivate: boolean, event: NostrEvent): Promise<Outcome> {
    let verdict: string | undefined;
    let sender: Hex | undefined;
    let kind: ReturnType<typeof proposalName> = "other";
    const state = rec.state;
    const callback: IncomingMessageCallback = (inc) => {
      if (inc.kind !== "proposal") return "reject";
      kind = proposalName(inc.proposal.proposal);
      sender = leafIdentityAt(state.ratchetTree, inc.proposal.senderLeafIndex);
      if (sender === undefined) verdict = "proposal from a non-member";
      else if (kind !== "self_remove") verdict = `standalone ${kind} proposals are not accepted (only SelfRemove)`;
      else if (isPrivate) verdict = "a SelfRemove proposal must be an MLS PublicMessage";
      else if (this.profile === "R0") verdict = "SelfRemove is not part of the R0 profile";
      else if (rec.data.adminPubkeys.includes(sender)) verdict = "a SelfRemove from an admin is invalid (admins self-demote first)";
      return verdict === undefined ? "accept" : "reject";
    };
    const res = await processMessage({ context: this.ctx, state, message: msg, callback });
    if (res.kind !== "newState") throw new EngineError("MLS_UNEXPECTED", "expected a proposal");
    if (res.actionTaken === "reject") throw new EngineError("PROPOSAL_REJECTED", verdict ?? "proposal rejected", { sender });
    rec.state = res.newState;
    rec.retryHeld = true; // a held commit may reference this proposal
    await this.persistGroup(rec);
    return { kind: "proposal", groupId: rec.groupId, epoch: state.groupContext.epoch, sender: sender as Hex, proposal: kind, eventId: event.id };
  }

  /** R1 (digest §5.4) authorization of a commit's proposal list. Undefined when allowed. */
  private commitViolation(state: ClientState, data: MarmotGroupData, committerLeaf: number | undefined, proposals: ProposalWithSender[]): string | undefined {
    const committer = leafIdentityAt(state.ratchetTree, committerLeaf);
    if (committer === undefined) return "commit from a sender that is not a member";
    const admins = data.adminPubkeys;
    const selfRemoves = proposals.filter((p) => p.proposal.proposalType === PROPOSAL_SELF_REMOVE);
    for (const sr of selfRemoves) {
      const who = leafIdentityAt(state.ratchetTree, sr.senderLeafIndex);
      if (sr.senderLeafIndex === committerLeaf) return "a leaving member committed its own SelfRemove";
      if (who !== undefined && admins.includes(who)) return "the commit includes a SelfRemove from an admin";
    }
    if (admins.includes(committer)) return undefined;
    if (proposals.length === 0) return undefined; // pure self-update (UpdatePath only)
    if (proposals.every((p) => p.proposal.proposalType === defaultProposalTypes.update && p.senderLeafIndex === committerLeaf)) return undefined;
    if (this.profile !== "R0" && selfRemoves.length > 0) {
      const senders = new Set(selfRemoves.map((p) => p.senderLeafIndex));
      const removes = proposals.filter((p) => p.proposal.proposalType === defaultProposalTypes.remove);
      const others = proposals.filter((p) => p.proposal.proposalType !== defaultProposalTypes.remove && p.proposal.proposalType !== PROPOSAL_SELF_REMOVE);
      const removed = removes.map((p) => removedLeaf(p.proposal) ?? -1);
      if (others.length === 0 && removed.length === senders.size && removed.every((r) => senders.has(r))) return undefined;
    }
    return `non-admin ${committer.slice(0, 12)}… committed something other than a pure self-update or a SelfRemove-only commit`;
  }

  private async applyCommit(rec: GroupRec, msg: MlsFramedMessage, event: NostrEvent, base: ClientState, rollback: boolean, now: number): Promise<Outcome> {
    const baseData = base === rec.state ? rec.data : readGroupDataExtension(base.groupContext.extensions);
    let info: { committerLeaf: number | undefined; proposals: ProposalWithSender[] } | undefined;
    let violation: string | undefined;
    const callback: IncomingMessageCallback = (inc) => {
      if (inc.kind !== "commit") return "reject";
      info = { committerLeaf: inc.senderLeafIndex, proposals: inc.proposals };
      violation = this.commitViolation(base, baseData, inc.senderLeafIndex, inc.proposals);
      return violation === undefined ? "accept" : "reject";
    };
    const myLeaf = base.privatePath.leafIndex;
    let res;
    try {
      res = await processMessage({ context: this.ctx, state: base, message: msg, callback });
    } catch (e) {
      const removesMe = info?.proposals.some((p) => removedLeaf(p.proposal) === myLeaf);
      if (info && removesMe && violation === undefined) {
        // Removed members cannot derive the new epoch; the commit is authentic enough to end our membership.
        rec.active = false;
        rec.leaving = false;
        rec.applied.set(base.groupContext.epoch, { eventId: event.id, createdAt: event.created_at });
        await this.persistGroup(rec);
        return this.commitOutcome(rec, base, info, event, rollback, true, false);
      }
      if (/Could not find proposal/i.test(describeError(e))) {
        throw new EngineError("COMMIT_MISSING_PROPOSAL", "the commit references a proposal this engine has not received yet", {}, { cause: e });
      }
      throw new EngineError("MLS_COMMIT_INVALID", `MLS rejected the commit: ${describeError(e)}`, {}, { cause: e });
    }
    if (res.kind !== "newState" || !info) throw new EngineError("MLS_UNEXPECTED", "expected a commit");
    if (res.actionTaken === "reject") throw new EngineError("COMMIT_UNAUTHORIZED", violation ?? "commit rejected");
    const next = res.newState;
    // Post-conditions on the resulting epoch.
    let nextData: MarmotGroupData;
    try {
      nextData = readGroupDataExtension(next.groupContext.extensions);
    } catch (e) {
      throw new EngineError("COMMIT_BAD_GROUP_DATA", `the commit leaves invalid group data: ${describeError(e)}`, {}, { cause: e });
    }
    const nextMembers = new Set(leaves(next.ratchetTree).map((l) => l.identity));
    if (next.groupActiveState.kind !== "removedFromGroup" && !nextData.adminPubkeys.some((a) => nextMembers.has(a))) {
      throw new EngineError("COMMIT_ZERO_ADMINS", "the commit would leave the group without an admin who is a member");
    }
    const committerBefore = leafIdentityAt(base.ratchetTree, info.committerLeaf);
    const committerAfter = leafIdentityAt(next.ratchetTree, info.committerLeaf);
    if (committerAfter !== undefined && committerAfter !== committerBefore) throw new EngineError("COMMIT_IDENTITY_CHANGE", "the commit changes the committer's credential identity");
    const groupDataChanged = !bytesEqual(
      base.groupContext.extensions.find((e) => e.extensionType === EXT_MARMOT_GROUP_DATA)?.extensionData as Uint8Array,
      next.groupContext.extensions.find((e) => e.extensionType === EXT_MARMOT_GROUP_DATA)?.extensionData as Uint8Array,
    );
    if (rollback) {
      // Discard the losing branch: everything after the base epoch.
      const be = base.groupContext.epoch;
      for (const m of [rec.keys, rec.snapshots, rec.applied] as Map<bigint, unknown>[]) for (const e of [...m.keys()]) if (e > be) m.delete(e);
    }
    await this.advance(rec, base, next, { eventId: event.id, createdAt: event.created_at });
    // Our unconfirmed commits for this epoch lost; after a rollback, every unconfirmed commit of ours
    // was built on the discarded branch.
    for (const [id, p] of this.pending) {
      if (p.groupId === rec.groupId && (rollback || p.fromEpoch <= base.groupContext.epoch)) {
        await this.dropPending(id, { winner: event.id, rolledBack: rollback && p.fromEpoch > base.groupContext.epoch });
      }
    }
    const outcome = this.commitOutcome(rec, base, info, event, rollback, !rec.active, groupDataChanged);
    // A leaving member whose SelfRemove was not realised by this commit proposes it again in the new
    // epoch (a proposal is only valid in its own epoch); the event is for the caller to publish.
    if (rec.active && rec.leaving && outcome.kind === "commit") {
      outcome.followUps = [await this.proposeSelfRemove(rec, Math.max(now, event.created_at))];
    }
    return outcome;
  }

  /** Our SelfRemove for the current epoch, as a 445 (kept in our own pending proposals, never committed by us). */
  private async proposeSelfRemove(rec: GroupRec, now: number): Promise<NostrEvent> {
    const res = await createProposal({
      context: this.ctx,
      state: rec.state,
      wireAsPublicMessage: true,
      proposal: { proposalType: PROPOSAL_SELF_REMOVE, proposalData: new Uint8Array(0) },
    });
    const keys = rec.keys.get(rec.state.groupContext.epoch) ?? (await this.epochKeys(rec.state));
    rec.state = res.newState;
    rec.leaving = true;
    const event = this.wrapGroupMessage(rec, res.message, keys, now);
    this.markSeen(event);
    await this.persistGroup(rec);
    return event;
  }

  private commitOutcome(
    rec: GroupRec,
    base: ClientState,
    info: { committerLeaf: number | undefined; proposals: ProposalWithSender[] },
    event: NostrEvent,
    rolledBack: boolean,
    selfRemoved: boolean,
    groupDataChanged: boolean,
  ): Outcome {
    const added: Hex[] = [];
    const removed: Hex[] = [];
    for (const p of info.proposals) {
      const kp = addedKeyPackage(p.proposal);
      const rm = removedLeaf(p.proposal);
      if (kp) {
        try {
          added.push(identityOfCredential(kp.leafNode.credential));
        } catch {
          // not a Marmot credential
        }
      } else if (rm !== undefined) {
        const who = leafIdentityAt(base.ratchetTree, rm);
        if (who !== undefined) removed.push(who);
      }
    }
    return {
      kind: "commit",
      groupId: rec.groupId,
      epoch: selfRemoved ? base.groupContext.epoch + 1n : rec.state.groupContext.epoch,
      committer: leafIdentityAt(base.ratchetTree, info.committerLeaf) ?? "",
      added,
      removed,
      groupDataChanged,
      rolledBack,
      selfRemoved,
      eventId: event.id,
    };
  }

  private async processWelcome(event: NostrEvent, now: number): Promise<Outcome[]> {
    const eventId = event.id;
    let unwrapped, parsed;
    try {
      unwrapped = unwrapWelcome(event, this.sk, this.nip44);
      parsed = parseWelcomeRumor(unwrapped.rumor, this.profile);
    } catch (e) {
      // Remembered only when the wrap itself is authentic: a copy of a genuine wrap with a broken
      // signature (same id) must not make the genuine one a "duplicate".
      if (!(isHarnessError(e) && (e.code === "WELCOME_BAD_WRAP_SIGNATURE" || e.code === "WELCOME_WRONG_KIND"))) this.seen.addId(eventId);
      return [rejection(e, eventId)];
    }
    const inviter = unwrapped.rumor.pubkey;
    let kp: StoredKeyPackage | undefined;
    for (const s of parsed.welcome.welcome.secrets) {
      kp = this.keyPackages.get(bytesToHex(s.newMember));
      if (kp) break;
    }
    if (!kp) return [rejection(new EngineError("WELCOME_NO_KEY_PACKAGE", "the Welcome is not for any KeyPackage this engine holds"), eventId)];
    if (kp.eventId !== parsed.keyPackageEventId) {
      return [rejection(new EngineError("WELCOME_KP_MISMATCH", `the e tag names ${parsed.keyPackageEventId.slice(0, 12)}…, but the Welcome is for KeyPackage event ${kp.eventId.slice(0, 12)}…`), eventId)];
    }
    let ratchetTree: RatchetTree | undefined;
    if (parsed.outOfBandTree) {
      const bytes = parsed.treeHash ? this.oobTrees.get(parsed.treeHash) : undefined;
      if (!bytes) {
        if (!this.heldWelcomes.some((e) => e.id === eventId)) this.heldWelcomes.push(event);
        return [{ kind: "deferred", reason: "out-of-band ratchet tree not provided yet (provideRatchetTree)", eventId }];
      }
      const { ratchetTreeDecoder } = await tsMlsInternals();
      try {
        ratchetTree = decode(ratchetTreeDecoder, bytes);
      } catch {
        ratchetTree = undefined; // ts-mls throws on some malformed trees rather than returning undefined
      }
      if (!ratchetTree) return [rejection(new EngineError("WELCOME_BAD_TREE", "the out-of-band ratchet tree does not decode"), eventId)];
    }
    let state: ClientState;
    let data: MarmotGroupData;
    try {
      const jp: Parameters<typeof joinGroup>[0] = { context: this.ctx, welcome: parsed.welcome.welcome, keyPackage: kp.publicPackage, privateKeys: kp.privatePackage };
      if (ratchetTree) jp.ratchetTree = ratchetTree;
      try {
        state = await joinGroup(jp);
      } catch (e) {
        throw new EngineError("WELCOME_JOIN_FAILED", `MLS could not join from this Welcome: ${describeError(e)}`, {}, { cause: e });
      }
      try {
        data = readGroupDataExtension(state.groupContext.extensions);
      } catch (e) {
        throw new EngineError("WELCOME_BAD_GROUP_DATA", `the group's 0xF2EE extension is invalid: ${describeError(e)}`, {}, { cause: e });
      }
      const req = requiredCapsOf(state);
      if (!req || !req.extensionTypes.includes(EXT_MARMOT_GROUP_DATA)) throw new EngineError("WELCOME_REQUIRED_CAPABILITIES", "required_capabilities must list 0xF2EE");
      const members = new Set(leaves(state.ratchetTree).map((l) => l.identity));
      if (!members.has(inviter) || !data.adminPubkeys.includes(inviter)) throw new EngineError("WELCOME_INVITER_NOT_ADMIN", "the Welcome's author is not an admin member of the group");
      const existing = this.groupsById.get(bytesToHex(state.groupContext.groupId));
      if (existing && existing.active) throw new EngineError("WELCOME_DUPLICATE_GROUP", "this engine is already in that group");
    } catch (e) {
      // KeyPackage untouched on every failure.
      return [rejection(e, eventId)];
    }
    const rec = await this.adoptGroup(state, data);
    const gid = rec.groupId;
    this.seen.addId(eventId);
    // Consume and rotate the KeyPackage: a new one under the same `d` (30443), old private keys deleted.
    const followUps: NostrEvent[] = [];
    if (kp.kind === 30443 && kp.d !== undefined) {
      const kpOpts: { relays: string[]; now: number; lastResort?: boolean; d?: Hex } = { relays: kp.relays, now: Math.max(now, unwrapped.rumor.created_at) + 1, lastResort: kp.lastResort, d: kp.d };
      followUps.push(await this.createKeyPackageInner(kpOpts));
    } else if (kp.kind === 443 && !kp.lastResort) {
      // R0: a consumed single-use KeyPackage is deleted (NIP-09) rather than rotated.
      const stub = { id: kp.eventId, kind: 443, pubkey: this.pubkey, tags: [], content: "", created_at: 0, sig: "" } as NostrEvent;
      followUps.push(buildKeyPackageDeletionEvent(this.sk, stub, Math.max(now, unwrapped.rumor.created_at) + 1, this.signRandom));
    }
    // A legacy (443) last-resort KeyPackage has no replacement under the same slot: it stays usable
    // (R0: "delete the KeyPackage unless it is last resort"). Everything else is consumed here.
    if (!(kp.kind === 443 && kp.lastResort)) {
      this.keyPackages.delete(kp.ref);
      await this.storage.delete(`kp/${kp.ref}`);
    }
    return [{ kind: "welcome", groupId: gid, epoch: state.groupContext.epoch, inviter, eventId, followUps }];
  }

  // -------------------------------------------------------------------------------------------
  // Queries

  groups(): GroupSummary[] {
    return [...this.groupsById.values()].map((r) => this.summary(r));
  }

  group(groupId: Hex): GroupSummary | undefined {
    const rec = this.groupsById.get(groupId);
    return rec ? this.summary(rec) : undefined;
  }

  mlsStateCopy(groupId: Hex): ClientState {
    return decode(clientStateDecoder, encode(clientStateEncoder, withoutHistory(this.groupRec(groupId).state))) as ClientState;
  }

  async inspect(groupId: Hex): Promise<GroupInspection> {
    const rec = this.groupsById.get(groupId);
    if (!rec) throw new EngineError("GROUP_UNKNOWN", `no group ${groupId.slice(0, 16)}…`);
    const state = rec.state;
    const exporterSecret = state.keySchedule.exporterSecret;
    const conf = await mlsExporter(exporterSecret, "marmot", utf8.encode("convergence-conformance-v1"), 32, this.cs);
    const epochCommitment = bytesToHex(sha256(concatBytes(CONFORMANCE_DOMAIN, new Uint8Array([0]), conf)));
    const req = requiredCapsOf(state);
    const cs = this.cs;
    return {
      ...this.summary(rec),
      epochCommitment,
      epochKeys: [...rec.keys.values()]
        .sort((a, b) => (a.epoch < b.epoch ? -1 : 1))
        .map((k) => {
          const out: GroupInspection["epochKeys"][number] = { epoch: k.epoch, groupEventKey: k.groupEventKey.slice(), mediaExporter: k.mediaExporter.slice() };
          if (k.legacyExporter.length === 32) out.legacyGroupEventKey = k.legacyExporter.slice();
          return out;
        }),
      exporter: (label: string, context: Uint8Array, length: number) => mlsExporter(exporterSecret, label, context, length, cs),
      requiredCapabilities: { extensions: [...(req?.extensionTypes ?? [])], proposals: [...(req?.proposalTypes ?? [])], credentials: [...(req?.credentialTypes ?? [])] },
      leaves: leaves(state.ratchetTree),
    };
  }
}

/** Base64 encodings of past epochs' secret trees, by tree object (see persistSecrets). */
const encodedSecretTrees = new WeakMap<SecretTree, string>();

function withoutHistory(state: ClientState): ClientState {
  return { ...state, historicalReceiverData: new Map() };
}

/** What ts-mls keeps of an epoch once it is in the past (addHistoricalReceiverData). */
function receiverDataOf(state: ClientState): EpochReceiverData {
  return {
    secretTree: state.secretTree,
    ratchetTree: state.ratchetTree,
    senderDataSecret: state.keySchedule.senderDataSecret,
    groupContext: state.groupContext,
    resumptionPsk: state.keySchedule.resumptionPsk,
  };
}

function newestEpochs(m: Map<bigint, EpochReceiverData>, max: number): Map<bigint, EpochReceiverData> {
  const keys = [...m.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)).slice(-max);
  return new Map(keys.map((k) => [k, m.get(k) as EpochReceiverData]));
}

interface SecretsOverlay {
  epoch: string;
  cur: string;
  hist: Record<string, string>;
}

async function applySecretsOverlay(state: ClientState, o: SecretsOverlay): Promise<ClientState> {
  if (BigInt(o.epoch) !== state.groupContext.epoch) return state;
  const { secretTreeDecoder } = await tsMlsInternals();
  const tree = (s: string) => {
    const t = decode(secretTreeDecoder, unb64(s));
    if (!t) throw new EngineError("STORAGE_CORRUPT", "stored secret tree cannot be decoded");
    return t;
  };
  const historicalReceiverData = new Map(state.historicalReceiverData);
  for (const [e, d] of state.historicalReceiverData) {
    const s = o.hist[e.toString()];
    if (s !== undefined) historicalReceiverData.set(e, { ...d, secretTree: tree(s) });
  }
  return { ...state, secretTree: tree(o.cur), historicalReceiverData };
}

function bytesEqual(a: Uint8Array | undefined, b: Uint8Array | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Creates an engine and loads any state already in `opts.storage`. */
/**
 * An independent copy (encoded, then decoded) of a group's current ts-mls state, past epochs left out:
 * for harness comparisons that must run raw ts-mls on exactly the engine's tree (bench/engine.bench.ts).
 * A copy, because ts-mls zeroes some secrets of the state it is given. Engines in this process only.
 */
export function mlsStateCopy(engine: MarmotEngine, groupId: Hex): ClientState {
  if (!(engine instanceof Engine)) throw new EngineError("ENGINE_BAD_OPTION", "mlsStateCopy needs an engine created in this process by createEngine");
  return engine.mlsStateCopy(groupId);
}

export async function createEngine(opts: EngineOptions): Promise<MarmotEngine & { provideRatchetTree(tree: Uint8Array, now: number): Promise<ProcessOutcome[]> }> {
  const fromEnv = process.env.MARMOT_MLS_PROVIDERS;
  const providers = opts.mlsProviders ?? (fromEnv === undefined || fromEnv === "" ? "engine" : fromEnv);
  if (providers !== "engine" && providers !== "ts-mls") {
    const where = opts.mlsProviders !== undefined ? "mlsProviders" : "MARMOT_MLS_PROVIDERS";
    throw new EngineError("ENGINE_BAD_OPTION", `${where} must be "engine" or "ts-mls", got ${JSON.stringify(providers)}`);
  }
  const cs = providers === "engine" ? await getEngineCiphersuite() : await getMarmotCiphersuite();
  await initNostrSigning();
  const engine = new Engine(opts, cs);
  await engine.load();
  return engine;
}

