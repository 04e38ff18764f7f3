/**
 * MIP-03 group events (kind 445): the outer envelope and the inner application rumor.
 *
 * R1 (pinned): content = base64(nonce12 || ChaCha20-Poly1305(key, nonce, MLSMessage, aad="")) with
 * key = MLS-Exporter("marmot","group-event",32) of the epoch; tags `h` (+ `encoding` base64, MDK 0.8)
 * and an optional NIP-40 `expiration`. R0 (legacy): NIP-44 v2 payload under the conversation key of
 * the secret MLS-Exporter("nostr","nostr",32) with itself, the MLS bytes as plaintext.
 * Every event is signed by a fresh ephemeral key. This module knows no engine state: callers pass keys.
 */
import { chacha20poly1305, chacha20 } from "@noble/ciphers/chacha.js";
import { sha256 } from "@noble/hashes/sha2.js";
import { hmac } from "@noble/hashes/hmac.js";
import { expand as hkdfExpand } from "@noble/hashes/hkdf.js";
import { bytesToHex, concatBytes } from "@noble/hashes/utils.js";
import { eventId } from "../nostr/event-id.ts";
import { conversationKey } from "./nip44-conversation.ts";
import { publicKeyHex, signNostrEvent, verifyNostrSignature } from "./nostr-signing.ts";
import { mlsExporter, type CiphersuiteImpl } from "ts-mls";
import { HarnessError } from "../errors.ts";
import type { ProtocolProfile } from "../profile.ts";
import type { Hex, InnerMessage, NostrEvent, Rumor } from "./api.ts";

export const GROUP_EVENT_KIND = 445;
export const MIN_R1_CONTENT_BYTES = 28;
const NONCE_BYTES = 12;

export class GroupEventError extends HarnessError {}

const utf8 = new TextEncoder();
const utf8d = new TextDecoder("utf-8", { fatal: true });

// ---------------------------------------------------------------------------------------------
// Keys
// ---------------------------------------------------------------------------------------------

/** MLS-Exporter("marmot","group-event",32) for the epoch whose exporter secret is given. */
export function deriveGroupEventKey(exporterSecret: Uint8Array, cs: CiphersuiteImpl): Promise<Uint8Array> {
  return mlsExporter(exporterSecret, "marmot", utf8.encode("group-event"), 32, cs);
}

/** R0 legacy: MLS-Exporter("nostr","nostr",32), used as a secp256k1 secret key. */
export function deriveLegacyGroupEventSecret(exporterSecret: Uint8Array, cs: CiphersuiteImpl): Promise<Uint8Array> {
  return mlsExporter(exporterSecret, "nostr", utf8.encode("nostr"), 32, cs);
}

/** MLS-Exporter("marmot","encrypted-media",32) (MIP-04 R1), exposed for the white-box view. */
export function deriveMediaExporter(exporterSecret: Uint8Array, cs: CiphersuiteImpl): Promise<Uint8Array> {
  return mlsExporter(exporterSecret, "marmot", utf8.encode("encrypted-media"), 32, cs);
}

// ---------------------------------------------------------------------------------------------
// Base64 (standard, padded, strict)
// ---------------------------------------------------------------------------------------------

const B64_RE = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

export function toBase64(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString("base64");
}

/** Strict standard padded base64, or undefined. */
export function fromBase64Strict(s: string): Uint8Array | undefined {
  if (typeof s !== "string" || !B64_RE.test(s)) return undefined;
  const buf = Buffer.from(s, "base64");
  return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
}

// ---------------------------------------------------------------------------------------------
// R1 content: ChaCha20-Poly1305
// ---------------------------------------------------------------------------------------------

export function encryptContentR1(key: Uint8Array, plaintext: Uint8Array, nonce: Uint8Array): string {
  if (key.length !== 32) throw new GroupEventError("GROUP_EVENT_BAD_KEY", `group-event key must be 32 bytes, got ${key.length}`);
  if (nonce.length !== NONCE_BYTES) throw new GroupEventError("GROUP_EVENT_BAD_NONCE", `nonce must be 12 bytes, got ${nonce.length}`);
  const ct = chacha20poly1305(key, nonce).encrypt(plaintext);
  return toBase64(concatBytes(nonce, ct));
}

/** Decode and length-check an R1 content field (no key needed). */
export function decodeContentR1(content: string): Uint8Array {
  const raw = fromBase64Strict(content);
  if (raw === undefined) throw new GroupEventError("GROUP_EVENT_BAD_BASE64", "445 content is not standard padded base64");
  if (raw.length < MIN_R1_CONTENT_BYTES) {
    throw new GroupEventError("GROUP_EVENT_CONTENT_TOO_SHORT", `445 content decodes to ${raw.length} bytes (< ${MIN_R1_CONTENT_BYTES})`, { bytes: raw.length });
  }
  return raw;
}

/** Returns the plaintext, or undefined when the tag does not verify under this key. */
export function tryDecryptContentR1(key: Uint8Array, raw: Uint8Array): Uint8Array | undefined {
  try {
    return chacha20poly1305(key, raw.subarray(0, NONCE_BYTES)).decrypt(raw.subarray(NONCE_BYTES));
  } catch {
    return undefined;
  }
}

// ---------------------------------------------------------------------------------------------
// R0 content: NIP-44 v2 with the exporter secret as a key conversing with itself.
// nostr-tools' nip44 takes string plaintexts, but the MLS bytes are binary (MDK passed raw bytes),
// so the v2 payload is assembled here from the NIP-44 steps with @noble primitives only. The
// conversation key comes from nostr-tools. Tested against nostr-tools for UTF-8 plaintexts.
// ---------------------------------------------------------------------------------------------

function nip44MessageKeys(conversationKey: Uint8Array, nonce: Uint8Array) {
  const keys = hkdfExpand(sha256, conversationKey, nonce, 76);
  return { chachaKey: keys.subarray(0, 32), chachaNonce: keys.subarray(32, 44), hmacKey: keys.subarray(44, 76) };
}

function nip44PaddedLen(len: number): number {
  if (len <= 32) return 32;
  const nextPower = 2 ** (Math.floor(Math.log2(len - 1)) + 1);
  const chunk = nextPower <= 256 ? 32 : nextPower / 8;
  return chunk * (Math.floor((len - 1) / chunk) + 1);
}

const legacyKeyCache = new Map<string, Uint8Array>();

/**
 * R0: the exporter secret used as a NIP-44 key, i.e. conv(secret, pub(secret)). A pure function of
 * the secret, cached (bounded) because every R0 445 of an epoch needs the same value.
 */
export function legacyConversationKey(secret: Uint8Array): Uint8Array {
  const k = bytesToHex(secret);
  let ck = legacyKeyCache.get(k);
  if (ck === undefined) {
    ck = conversationKey(secret, publicKeyHex(secret));
    if (legacyKeyCache.size >= 256) legacyKeyCache.delete(legacyKeyCache.keys().next().value as string);
    legacyKeyCache.set(k, ck);
  }
  return ck.slice();
}

export function encryptContentR0(conversationKey: Uint8Array, plaintext: Uint8Array, nonce32: Uint8Array): string {
  const len = plaintext.length;
  if (len < 1 || len > 65535) throw new GroupEventError("GROUP_EVENT_TOO_LARGE", `NIP-44 plaintext must be 1..65535 bytes, got ${len}`, { bytes: len });
  if (nonce32.length !== 32) throw new GroupEventError("GROUP_EVENT_BAD_NONCE", "NIP-44 nonce must be 32 bytes");
  const padded = new Uint8Array(2 + nip44PaddedLen(len));
  new DataView(padded.buffer).setUint16(0, len, false);
  padded.set(plaintext, 2);
  const { chachaKey, chachaNonce, hmacKey } = nip44MessageKeys(conversationKey, nonce32);
  const ct = chacha20(chachaKey, chachaNonce, padded);
  const mac = hmac(sha256, hmacKey, concatBytes(nonce32, ct));
  return toBase64(concatBytes(new Uint8Array([2]), nonce32, ct, mac));
}

/** Undefined when the payload does not authenticate under this key; throws on malformed payloads. */
export function tryDecryptContentR0(conversationKey: Uint8Array, content: string): Uint8Array | undefined {
  const raw = fromBase64Strict(content);
  if (raw === undefined) throw new GroupEventError("GROUP_EVENT_BAD_BASE64", "445 content is not base64 (NIP-44 payload)");
  if (raw.length < 99 || raw[0] !== 2) throw new GroupEventError("GROUP_EVENT_BAD_NIP44", `not a NIP-44 v2 payload (${raw.length} bytes, version ${raw[0]})`);
  const nonce = raw.subarray(1, 33);
  const ct = raw.subarray(33, raw.length - 32);
  const mac = raw.subarray(raw.length - 32);
  const { chachaKey, chachaNonce, hmacKey } = nip44MessageKeys(conversationKey, nonce);
  const expected = hmac(sha256, hmacKey, concatBytes(nonce, ct));
  let diff = 0;
  for (let i = 0; i < 32; i++) diff |= (expected[i] as number) ^ (mac[i] as number);
  if (diff !== 0) return undefined;
  const padded = chacha20(chachaKey, chachaNonce, ct);
  const len = new DataView(padded.buffer, padded.byteOffset).getUint16(0, false);
  if (len < 1 || 2 + len > padded.length || padded.length !== 2 + nip44PaddedLen(len)) {
    throw new GroupEventError("GROUP_EVENT_BAD_NIP44", "NIP-44 padding is invalid");
  }
  return padded.slice(2, 2 + len);
}

// ---------------------------------------------------------------------------------------------
// Envelope

/**
 * BIP-340 check of a NIP-01 event's `sig` over its `id` (the caller has checked the id). Not
 * nostr-tools' verifyEvent, which caches its verdict on the event object, so a modified copy of a
 * verified event would pass.
 */
export function verifySignature(event: NostrEvent): boolean {
  try {
    if (typeof event.sig !== "string" || !/^[0-9a-f]{128}$/.test(event.sig) || !/^[0-9a-f]{64}$/.test(event.pubkey)) return false;
    return verifyNostrSignature(event);
  } catch {
    return false;
  }
}
// ---------------------------------------------------------------------------------------------

export interface BuildGroupEventParams {
  content: string;
  nostrGroupId: Uint8Array;
  /** Fresh 32-byte secp256k1 secret for this event only. */
  ephemeralSecretKey: Uint8Array;
  now: number;
  profile: ProtocolProfile;
  /** NIP-40 expiration (Unix seconds), e.g. now + disappearing secs. */
  expiration?: number;
  /** BIP-340 aux bytes (32) for a reproducible signature; default CSPRNG. */
  signAux?: Uint8Array;
}

export function buildGroupEvent(p: BuildGroupEventParams): NostrEvent {
  if (p.nostrGroupId.length !== 32) throw new GroupEventError("GROUP_EVENT_BAD_GROUP_ID", "nostr_group_id must be 32 bytes");
  const tags: string[][] = [["h", bytesToHex(p.nostrGroupId)]];
  if (p.profile === "R1") tags.push(["encoding", "base64"]);
  if (p.expiration !== undefined) tags.push(["expiration", String(p.expiration)]);
  return signNostrEvent({ kind: GROUP_EVENT_KIND, created_at: p.now, tags, content: p.content }, p.ephemeralSecretKey, p.signAux) as NostrEvent;
}

export interface GroupEventEnvelope {
  nostrGroupId: Hex;
  content: string;
  expiration?: number;
}

/** Checks kind, id, signature and the `h` tag. Throws GroupEventError with a precise code. */
export function parseGroupEventEnvelope(event: NostrEvent): GroupEventEnvelope {
  if (event.kind !== GROUP_EVENT_KIND) throw new GroupEventError("GROUP_EVENT_WRONG_KIND", `expected kind 445, got ${event.kind}`);
  if (typeof event.content !== "string" || !Array.isArray(event.tags)) throw new GroupEventError("GROUP_EVENT_MALFORMED", "event has no content or tags");
  let hash: string;
  try {
    hash = eventId(event);
  } catch (e) {
    throw new GroupEventError("GROUP_EVENT_MALFORMED", "event cannot be serialized", {}, { cause: e });
  }
  if (hash !== event.id) throw new GroupEventError("GROUP_EVENT_BAD_ID", "445 id does not match its content");
  if (!verifySignature(event)) throw new GroupEventError("GROUP_EVENT_BAD_SIGNATURE", "445 signature does not verify");
  const h = event.tags.filter((t) => t[0] === "h");
  if (h.length !== 1) throw new GroupEventError("GROUP_EVENT_BAD_H_TAG", `445 must have exactly one h tag, has ${h.length}`);
  const gid = h[0]?.[1];
  if (typeof gid !== "string" || !/^[0-9a-f]{64}$/.test(gid)) throw new GroupEventError("GROUP_EVENT_BAD_H_TAG", "h tag is not 64 lowercase hex");
  const exp = event.tags.find((t) => t[0] === "expiration")?.[1];
  const env: GroupEventEnvelope = { nostrGroupId: gid, content: event.content };
  if (exp !== undefined && /^[0-9]+$/.test(exp)) env.expiration = Number(exp);
  return env;
}

// ---------------------------------------------------------------------------------------------
// Inner application rumor
// ---------------------------------------------------------------------------------------------

export function buildRumor(pubkey: Hex, message: InnerMessage, now: number): Rumor {
  const tags = message.tags ?? [];
  if (tags.some((t) => t[0] === "h")) throw new GroupEventError("RUMOR_HAS_GROUP_TAG", "inner messages must not carry an h tag (MIP-03)");
  const unsigned = { pubkey, created_at: now, kind: message.kind, tags, content: message.content };
  return { ...unsigned, id: eventId(unsigned) };
}

export function encodeRumor(r: Rumor): Uint8Array {
  return utf8.encode(JSON.stringify({ id: r.id, pubkey: r.pubkey, created_at: r.created_at, kind: r.kind, tags: r.tags, content: r.content }));
}

/**
 * Parses application data as an unsigned Nostr event, verifies its id and (unless skipped) that its
 * pubkey is the MLS sender's identity.
 */
export function parseRumor(data: Uint8Array, senderIdentity: Hex, opts: { skipAuthorCheck?: boolean } = {}): Rumor {
  let obj: unknown;
  try {
    obj = JSON.parse(utf8d.decode(data));
  } catch (e) {
    throw new GroupEventError("RUMOR_INVALID_JSON", "application data is not a UTF-8 JSON object", {}, { cause: e });
  }
  if (typeof obj !== "object" || obj === null || Array.isArray(obj)) throw new GroupEventError("RUMOR_INVALID_JSON", "application data is not a JSON object");
  const r = obj as Record<string, unknown>;
  if ("sig" in r) throw new GroupEventError("RUMOR_HAS_SIG", "inner rumor must be unsigned");
  if (typeof r.id !== "string" || typeof r.pubkey !== "string" || typeof r.created_at !== "number" || typeof r.kind !== "number" || typeof r.content !== "string" || !Array.isArray(r.tags)) {
    throw new GroupEventError("RUMOR_MALFORMED", "inner rumor lacks id, pubkey, created_at, kind, tags or content");
  }
  if (!(r.tags as unknown[]).every((t) => Array.isArray(t) && t.every((x) => typeof x === "string"))) throw new GroupEventError("RUMOR_MALFORMED", "rumor tags must be arrays of strings");
  if (!/^[0-9a-f]{64}$/.test(r.pubkey)) throw new GroupEventError("RUMOR_MALFORMED", "rumor pubkey is not 64 lowercase hex");
  const rumor: Rumor = { id: r.id, pubkey: r.pubkey, created_at: r.created_at, kind: r.kind, tags: r.tags as string[][], content: r.content };
  const computed = eventId(rumor);
  if (computed !== rumor.id) throw new GroupEventError("RUMOR_BAD_ID", "rumor id does not match its NIP-01 hash", { claimed: rumor.id, computed });
  if (!opts.skipAuthorCheck && rumor.pubkey !== senderIdentity) {
    throw new GroupEventError("RUMOR_AUTHOR_MISMATCH", `rumor pubkey ${rumor.pubkey.slice(0, 12)}… is not the MLS sender ${senderIdentity.slice(0, 12)}…`, {
      rumorPubkey: rumor.pubkey,
      mlsSender: senderIdentity,
    });
  }
  return rumor;
}
