/**
 * MIP-02 Welcomes: the kind-444 rumor, its NIP-59 seal (13) and gift wrap (1059), and the
 * receiving side's unwrap and rumor validation. The MLS part (joinGroup) is done by the engine.
 *
 * Seal and wrap are composed as nostr-tools' nip59 composes them (kind 13 signed by the sender,
 * empty tags; kind 1059 signed by a fresh key with one `p` tag; both timestamps up to two days in
 * the past), from nostr-tools' NIP-44 v2 encrypt/decrypt, conversation keys from
 * `nip44-conversation.ts` (OpenSSL ECDH, byte-equal to nostr-tools) and the engine's signer. The
 * wrap key, the NIP-44 nonces and the timestamp jitter come from the caller's randomness
 * (nostr-tools' nip59 helpers draw their own), so a seeded run draws the same keys and nonces.
 */
import { eventId } from "../nostr/event-id.ts";
import { publicKeyHex, signNostrEvent } from "./nostr-signing.ts";
import { encrypt as nip44Encrypt, decrypt as nip44Decrypt } from "nostr-tools/nip44";
import { conversationKey, isValidSecretKey, type Nip44KeyRing } from "./nip44-conversation.ts";
import { decode, encode, mlsMessageDecoder, mlsMessageEncoder, wireformats, type MlsWelcomeMessage } from "ts-mls";
import { HarnessError } from "../errors.ts";
import type { ProtocolProfile } from "../profile.ts";
import type { Hex, NostrEvent, Rumor } from "./api.ts";
import { fromBase64Strict, toBase64, verifySignature } from "./mip03-group-events.ts";

export const WELCOME_RUMOR_KIND = 444;
export const SEAL_KIND = 13;
export const GIFT_WRAP_KIND = 1059;
/** NIP-44 v2 caps a plaintext at 65,535 bytes (the seal's JSON is the wrap's plaintext). */
export const NIP44_MAX_PLAINTEXT = 65_535;
/** Non-MIP label on Welcomes whose ratchet tree travels out of band. */
export const OOB_TREE_TAG: readonly [string, string] = ["x-marmot-harness", "oob-tree"];
/** NIP-59: timestamps of seal and wrap are tweaked up to two days into the past. */
const TWO_DAYS = 2 * 86_400;

export class WelcomeError extends HarnessError {}

export type RandomBytes = (n: number) => Uint8Array;

export interface WelcomeRumorParams {
  inviterPubkey: Hex;
  welcome: MlsWelcomeMessage;
  keyPackageEventId: Hex;
  relays: string[];
  now: number;
  profile: ProtocolProfile;
  client?: string;
  outOfBandTree?: boolean;
  /** SHA-256 (hex) of the out-of-band ratchet tree bytes, so the joiner can match the tree it is handed. */
  treeHash?: Hex;
}

export function buildWelcomeRumor(p: WelcomeRumorParams): Rumor {
  const tags: string[][] = [["e", p.keyPackageEventId], ["relays", ...p.relays], ["encoding", "base64"]];
  if (p.client !== undefined) tags.push(["client", p.client]);
  if (p.outOfBandTree) tags.push(p.treeHash !== undefined ? [...OOB_TREE_TAG, p.treeHash] : [...OOB_TREE_TAG]);
  const unsigned = { kind: WELCOME_RUMOR_KIND, pubkey: p.inviterPubkey, created_at: p.now, tags, content: toBase64(encode(mlsMessageEncoder, p.welcome)) };
  return { ...unsigned, id: eventId(unsigned) };
}

function randomSecretKey(randomBytes: RandomBytes): Uint8Array {
  for (let i = 0; i < 16; i++) {
    const sk = randomBytes(32);
    if (isValidSecretKey(sk)) return sk;
    // not a valid scalar (probability ~2^-128): draw again
  }
  throw new WelcomeError("WELCOME_RANDOMNESS", "could not draw a valid secp256k1 key from randomBytes");
}

function jitter(now: number, randomBytes: RandomBytes): number {
  const b = randomBytes(4);
  const n = ((b[0]! << 24) | (b[1]! << 16) | (b[2]! << 8) | b[3]!) >>> 0;
  return now - (n % TWO_DAYS);
}

/**
 * Kind-13 seal of the rumor, signed by the sender's account key (`keys`: the sender's key ring, to reuse
 * its keys; `signRandom`: where the BIP-340 aux bytes come from, for reproducible signatures; default CSPRNG).
 */
export function sealRumor(rumor: Rumor, senderSecretKey: Uint8Array, recipientPubkey: Hex, now: number, randomBytes: RandomBytes, keys?: Nip44KeyRing, signRandom?: RandomBytes): NostrEvent {
  const ck = keys ? keys.conversationKey(recipientPubkey) : conversationKey(senderSecretKey, recipientPubkey);
  const content = nip44Encrypt(JSON.stringify(rumor), ck, randomBytes(32));
  const createdAt = jitter(now, randomBytes);
  return signNostrEvent({ kind: SEAL_KIND, created_at: createdAt, tags: [], content }, senderSecretKey, signRandom?.(32)) as NostrEvent;
}

/** Kind-1059 gift wrap of a seal, signed by a fresh key, `p` = recipient (`signRandom`: as for sealRumor). */
export function wrapSeal(seal: NostrEvent, recipientPubkey: Hex, now: number, randomBytes: RandomBytes, signRandom?: RandomBytes): NostrEvent {
  const eph = randomSecretKey(randomBytes);
  const ck = conversationKey(eph, recipientPubkey);
  const content = nip44Encrypt(JSON.stringify(seal), ck, randomBytes(32));
  const createdAt = jitter(now, randomBytes);
  return signNostrEvent({ kind: GIFT_WRAP_KIND, created_at: createdAt, tags: [["p", recipientPubkey]], content }, eph, signRandom?.(32)) as NostrEvent;
}

/** Byte sizes that NIP-44 must carry for one Welcome: the rumor JSON (seal plaintext) and the seal JSON (wrap plaintext). */
export function welcomePlaintextSizes(rumor: Rumor, seal: NostrEvent): { rumorBytes: number; sealBytes: number } {
  return { rumorBytes: Buffer.byteLength(JSON.stringify(rumor), "utf8"), sealBytes: Buffer.byteLength(JSON.stringify(seal), "utf8") };
}

export interface UnwrappedWelcome {
  wrap: NostrEvent;
  seal: NostrEvent;
  rumor: Rumor;
}

/**
 * Opens a 1059 addressed to `recipientSecretKey`: verifies wrap and seal signatures and the rumor
 * id and author. `keys` (the recipient's key ring) reuses the imported key and caches the key with
 * the seal's author; the wrap's one-time key is never cached.
 */
export function unwrapWelcome(wrap: NostrEvent, recipientSecretKey: Uint8Array, keys?: Nip44KeyRing): UnwrappedWelcome {
  const ckWith = (pub: string, cache: boolean): Uint8Array => (keys ? keys.conversationKey(pub, { cache }) : conversationKey(recipientSecretKey, pub));
  const me = publicKeyHex(recipientSecretKey);
  if (wrap.kind !== GIFT_WRAP_KIND) throw new WelcomeError("WELCOME_WRONG_KIND", `expected kind 1059, got ${wrap.kind}`);
  if (eventId(wrap) !== wrap.id || !verifySignature(wrap)) throw new WelcomeError("WELCOME_BAD_WRAP_SIGNATURE", "gift wrap id or signature does not verify");
  const p = wrap.tags.filter((t) => t[0] === "p");
  if (p.length !== 1 || p[0]?.[1] !== me) throw new WelcomeError("WELCOME_NOT_FOR_US", "gift wrap must have exactly one p tag naming this account");
  let seal: NostrEvent;
  try {
    seal = JSON.parse(nip44Decrypt(wrap.content, ckWith(wrap.pubkey, false))) as NostrEvent;
  } catch (e) {
    throw new WelcomeError("WELCOME_UNWRAP_FAILED", "cannot decrypt the gift wrap", {}, { cause: e });
  }
  if (typeof seal !== "object" || seal === null || seal.kind !== SEAL_KIND) throw new WelcomeError("WELCOME_BAD_SEAL", "gift wrap does not contain a kind-13 seal");
  try {
    if (eventId(seal) !== seal.id || !verifySignature(seal)) throw new Error("bad");
  } catch {
    throw new WelcomeError("WELCOME_BAD_SEAL", "seal id or signature does not verify");
  }
  let rumor: Rumor;
  try {
    rumor = JSON.parse(nip44Decrypt(seal.content, ckWith(seal.pubkey, true))) as Rumor;
  } catch (e) {
    throw new WelcomeError("WELCOME_UNSEAL_FAILED", "cannot decrypt the seal", {}, { cause: e });
  }
  if (typeof rumor !== "object" || rumor === null) throw new WelcomeError("WELCOME_BAD_RUMOR", "seal does not contain an event");
  if ("sig" in rumor) throw new WelcomeError("WELCOME_RUMOR_SIGNED", "the kind-444 rumor must not carry a sig");
  if (rumor.kind !== WELCOME_RUMOR_KIND) throw new WelcomeError("WELCOME_BAD_RUMOR", `sealed rumor is kind ${rumor.kind}, not 444`);
  let id: string;
  try {
    id = eventId(rumor);
  } catch {
    throw new WelcomeError("WELCOME_BAD_RUMOR", "rumor is not a well-formed event");
  }
  if (id !== rumor.id) throw new WelcomeError("WELCOME_BAD_RUMOR", "rumor id does not match its hash");
  if (rumor.pubkey !== seal.pubkey) throw new WelcomeError("WELCOME_AUTHOR_MISMATCH", "rumor pubkey differs from the seal signer");
  return { wrap, seal, rumor };
}

export interface ParsedWelcomeRumor {
  welcome: MlsWelcomeMessage;
  keyPackageEventId: Hex;
  relays: string[];
  outOfBandTree: boolean;
  /** SHA-256 hex of the out-of-band tree named by the non-MIP tag. */
  treeHash?: Hex;
  client?: string;
}

const RELAY_RE = /^wss?:\/\/[^\s/?#@]+(?::[0-9]+)?(?:\/[^\s#]*)?$/;

/** MIP-02 rumor rules (digest §4): `e`, `relays`, `encoding` (R1), content an MLSMessage(welcome). */
export function parseWelcomeRumor(rumor: Rumor, profile: ProtocolProfile): ParsedWelcomeRumor {
  const e = rumor.tags.filter((t) => t[0] === "e");
  if (e.length !== 1 || typeof e[0]?.[1] !== "string" || !/^[0-9a-f]{64}$/.test(e[0][1])) {
    throw new WelcomeError("WELCOME_BAD_E_TAG", `welcome rumor must have exactly one e tag with a 64-hex event id (has ${e.length})`);
  }
  const relaysTag = rumor.tags.find((t) => t[0] === "relays");
  const relays = relaysTag ? relaysTag.slice(1) : [];
  if (relays.length === 0 || !relays.every((r) => RELAY_RE.test(r))) throw new WelcomeError("WELCOME_BAD_RELAYS", "welcome rumor needs a relays tag with at least one ws/wss URL");
  const enc = rumor.tags.find((t) => t[0] === "encoding")?.[1];
  let bytes: Uint8Array | undefined;
  if (profile === "R0" && (enc === undefined || enc === "hex") && /^(?:[0-9a-fA-F]{2})+$/.test(rumor.content)) {
    bytes = Uint8Array.from(Buffer.from(rumor.content, "hex"));
  } else {
    if (profile !== "R0" && enc !== "base64") throw new WelcomeError("WELCOME_BAD_ENCODING", `welcome rumor must carry ["encoding","base64"] (got ${enc ?? "none"})`);
    bytes = fromBase64Strict(rumor.content);
  }
  if (bytes === undefined) throw new WelcomeError("WELCOME_BAD_CONTENT", "welcome content is not valid base64");
  const msg = decode(mlsMessageDecoder, bytes);
  if (msg === undefined) throw new WelcomeError("WELCOME_BAD_CONTENT", "welcome content is not an MLSMessage");
  if (msg.wireformat !== wireformats.mls_welcome) throw new WelcomeError("WELCOME_BAD_CONTENT", `MLSMessage wire format is ${msg.wireformat}, not mls_welcome`);
  const out: ParsedWelcomeRumor = {
    welcome: msg,
    keyPackageEventId: e[0][1],
    relays,
    outOfBandTree: rumor.tags.some((t) => t[0] === OOB_TREE_TAG[0] && t[1] === OOB_TREE_TAG[1]),
  };
  const treeHash = rumor.tags.find((t) => t[0] === OOB_TREE_TAG[0] && t[1] === OOB_TREE_TAG[1])?.[2];
  if (treeHash !== undefined) out.treeHash = treeHash;
  const client = rumor.tags.find((t) => t[0] === "client")?.[1];
  if (client !== undefined) out.client = client;
  return out;
}
