/**
 * Shared state of one judgement run: the records, the judged profile, the prepared keyring and
 * what earlier passes learned (account keys, decoded KeyPackages, decrypted 445s, unwrapped Welcomes).
 */
import type { CaptureRecord } from "../../capture.ts";
import type { Event as NostrEvent } from "nostr-tools";
import { eventIdUnchecked } from "../../nostr/event-id.ts";
import type { ProtocolProfile } from "../../profile.ts";
import type { Judgement } from "./judgement.ts";
import type { Keyring, Observation } from "./keyring.ts";
import type { SignatureVerifier } from "./signature-verifier.ts";
import type { Base64Memo } from "./util.ts";

export interface KeyPackageInfo {
  event: NostrEvent;
  /** Lowercase hex KeyPackageRef, when the content decoded. */
  ref?: string;
  d?: string;
  lastResort?: boolean;
}

export interface Decoded445 {
  /** Epoch of the key that opened it. */
  keyEpoch: number;
  wireformat?: number;
  contentType?: number;
  mlsEpoch?: bigint;
  mlsGroupId?: string;
  /** For PublicMessage proposals: the proposal type number. */
  proposalType?: number;
  /** For PublicMessage commits: proposal types carried by value. */
  commitProposalTypes?: number[];
  /** SHA-256 (hex) of the recovered MLS bytes, for duplicate detection. */
  mlsDigest?: string;
}

export interface UnwrappedWelcomeInfo {
  wrap: NostrEvent;
  recipient: string;
  /** Author of the kind-13 seal. */
  sealPubkey?: string;
  rumor: Record<string, unknown>;
  /** KeyPackage event id from the `e` tag, if well-formed. */
  kpEventId?: string;
  newMemberRefs?: string[];
}

export interface CheckContext {
  j: Judgement;
  profile: ProtocolProfile;
  records: CaptureRecord[];
  /** Records whose event has a well-formed NIP-01 shape, in capture order. */
  events: CaptureRecord[];
  /** `events` by event id. */
  byId: Map<string, CaptureRecord>;
  keyring?: Keyring;
  /** Skip Schnorr verification (id hashes are still checked). */
  verifySignatures: boolean;
  /** Strict base64 decodes of event contents, shared by profile detection and the checks. */
  b64: Base64Memo;
  /** The Schnorr verifier (WASM libsecp256k1 or pure JS), when signatures are verified. */
  verifier?: SignatureVerifier;
  accountKeys: Set<string>;
  keyPackages: Map<string, KeyPackageInfo>;
  decoded445: Map<string, Decoded445>;
  welcomes: Map<string, UnwrappedWelcomeInfo>;
  observations: Observation[];
  /** Event ids whose NIP-01 id or signature failed. */
  badSignature: Set<string>;
  /** Relays each event id was seen on (capture `relay` fields, all duplicates included). */
  seenRelays: Map<string, Set<string>>;
  /** Per nostr group id: 445s that no keyring key opened, and how many were opened. */
  decryptTally: Map<string, { opened: number; failed: { id: string; rule: string; message: string }[] }>;
}

const HEX64L = /^[0-9a-f]{64}$/;
const HEX128L = /^[0-9a-f]{128}$/;

/** Why an event is not a well-formed Nostr event, or undefined when it is. */
export function eventShapeProblem(e: unknown): string | undefined {
  if (typeof e !== "object" || e === null || Array.isArray(e)) return "not an object";
  const o = e as Record<string, unknown>;
  if (typeof o.id !== "string" || !HEX64L.test(o.id)) return "id is not 64 lowercase hex";
  if (typeof o.pubkey !== "string" || !HEX64L.test(o.pubkey)) return "pubkey is not 64 lowercase hex";
  if (typeof o.kind !== "number" || !Number.isInteger(o.kind) || o.kind < 0 || o.kind > 65535) return "kind is not an integer 0..65535";
  if (typeof o.created_at !== "number" || !Number.isInteger(o.created_at) || o.created_at < 0) return "created_at is not a non-negative integer";
  if (typeof o.content !== "string") return "content is not a string";
  if (!Array.isArray(o.tags)) return "tags is not an array";
  for (const t of o.tags) {
    if (!Array.isArray(t) || !t.every((x) => typeof x === "string")) return "a tag is not an array of strings";
  }
  if (typeof o.sig !== "string") return "sig is missing";
  return undefined;
}

/** NIP-01 id and Schnorr signature; computed directly (no verdict cache on the event object). */
export function idAndSignatureProblem(e: NostrEvent, verifier: SignatureVerifier | undefined): string | undefined {
  let id: string;
  try {
    id = eventIdUnchecked(e);
  } catch {
    return "cannot be serialized for its NIP-01 id";
  }
  if (id !== e.id) return `id is not the NIP-01 hash (expected ${id})`;
  if (verifier === undefined) return undefined;
  if (!HEX128L.test(e.sig)) return "sig is not 128 lowercase hex";
  if (!verifier.verify(e, id)) return "signature does not verify";
  return undefined;
}
