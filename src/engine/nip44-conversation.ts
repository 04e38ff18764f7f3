/**
 * NIP-44 v2 conversation keys: HKDF-Extract(salt "nip44-v2", IKM = x coordinate of the secp256k1
 * ECDH point), exactly what nostr-tools' `nip44.v2.utils.getConversationKey` returns.
 *
 * The ECDH itself, first backend that works (chosen once per process, each after a self-test
 * against nostr-tools):
 * 1. `native-libsecp256k1`: libsecp256k1's `secp256k1_ecdh` through the project's N-API addon
 *    (src/nostr/secp256k1-native.ts `ecdhXonly`; about 25x faster than OpenSSL here). Off when the
 *    addon is not built or `MARMOT_NO_NATIVE=1`.
 * 2. `openssl`: Node's built-in OpenSSL (`crypto.createECDH("secp256k1")`), two to three times
 *    faster than pure JS. Off when this Node's OpenSSL has no secp256k1 or `MARMOT_NO_OPENSSL_ECDH=1`.
 * 3. `js-noble`: nostr-tools (@noble/curves).
 * The x-only Nostr public key is taken as the point with even y (0x02 prefix; the shared x does not
 * depend on the choice). HKDF comes from @noble/hashes.
 *
 * `Nip44KeyRing` holds one account's secret key (in an OpenSSL ECDH object, set up once, on that path) and a
 * bounded LRU of conversation keys with peers that repeat (seal keys sender → recipient, unseal
 * keys recipient → inviter). Keys with one-time peers (a gift wrap's ephemeral key) bypass the LRU.
 */
import { createECDH, getCurves, type ECDH } from "node:crypto";
import { extract } from "@noble/hashes/hkdf.js";
import { sha256 } from "@noble/hashes/sha2.js";
import { getConversationKey as nobleConversationKey, v2 as nip44v2 } from "nostr-tools/nip44";
import { getPublicKey } from "nostr-tools/pure";
import { HarnessError } from "../errors.ts";
import { ecdhXonly, nativeAvailable, nativeUnavailableReason } from "../nostr/secp256k1-native.ts";

export class Nip44KeyError extends HarnessError {}

export type EcdhBackend = "native-libsecp256k1" | "openssl" | "js-noble";

const SALT = new TextEncoder().encode("nip44-v2");
const HEX64 = /^[0-9a-fA-F]{64}$/;
/** secp256k1 group order n. */
const CURVE_N = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n;

let backend: EcdhBackend | undefined;
let fallbackReason: string | undefined;

/** The group order n, big-endian: a 32-byte scalar is below n when it sorts before these bytes. */
const CURVE_N_BYTES = Uint8Array.from(Buffer.from(CURVE_N.toString(16).padStart(64, "0"), "hex"));

/** True when `sk` is 32 bytes and a valid secp256k1 secret scalar (in [1, n-1]); no curve arithmetic, no BigInt. */
export function isValidSecretKey(sk: Uint8Array): boolean {
  if (!(sk instanceof Uint8Array) || sk.length !== 32) return false;
  let nonZero = 0;
  for (let i = 0; i < 32; i++) nonZero |= sk[i]!;
  if (nonZero === 0) return false;
  for (let i = 0; i < 32; i++) {
    if (sk[i]! !== CURVE_N_BYTES[i]!) return sk[i]! < CURVE_N_BYTES[i]!;
  }
  return false; // equal to n
}

function checkSecretKey(sk: Uint8Array): void {
  if (!(sk instanceof Uint8Array) || sk.length !== 32) throw new Nip44KeyError("NIP44_BAD_SECRET_KEY", "a NIP-44 secret key must be 32 bytes");
  if (!isValidSecretKey(sk)) throw new Nip44KeyError("NIP44_BAD_SECRET_KEY", "secret key is not a valid secp256k1 scalar (0 or not below the group order)");
}

function checkPubkey(pubkeyHex: string): void {
  if (typeof pubkeyHex !== "string" || !HEX64.test(pubkeyHex)) throw new Nip44KeyError("NIP44_BAD_PUBKEY", "a NIP-44 public key must be 64 hex characters (x-only)");
}

function opensslPrivate(sk: Uint8Array): ECDH {
  const ecdh = createECDH("secp256k1");
  ecdh.setPrivateKey(sk);
  return ecdh;
}

/** ECDH with the even-y point of the x-only key (0x02 prefix); the shared secret is the x coordinate. */
function opensslConversationKey(priv: ECDH, pubkeyHex: string): Uint8Array {
  let x: Buffer;
  try {
    x = priv.computeSecret(Buffer.from(`02${pubkeyHex}`, "hex"));
  } catch (e) {
    throw new Nip44KeyError("NIP44_BAD_PUBKEY", `public key ${pubkeyHex.slice(0, 12)}… is not on secp256k1`, {}, { cause: e });
  }
  return extract(sha256, new Uint8Array(x.buffer, x.byteOffset, x.byteLength), SALT);
}

function pubBytes(pubkeyHex: string): Uint8Array {
  const b = Buffer.from(pubkeyHex, "hex");
  return new Uint8Array(b.buffer, b.byteOffset, b.length);
}

/** libsecp256k1 ECDH with the even-y point of the x-only key; the shared secret is the x coordinate. */
function nativeConversationKey(sk: Uint8Array, pubkeyHex: string): Uint8Array {
  const x = ecdhXonly(sk, pubBytes(pubkeyHex));
  if (x === undefined) throw new Nip44KeyError("NIP44_BAD_PUBKEY", `public key ${pubkeyHex.slice(0, 12)}… is not on secp256k1`);
  return extract(sha256, x, SALT);
}

function nobleKey(sk: Uint8Array, pubkeyHex: string): Uint8Array {
  try {
    return nobleConversationKey(sk, pubkeyHex.toLowerCase());
  } catch (e) {
    throw new Nip44KeyError("NIP44_BAD_PUBKEY", `public key ${pubkeyHex.slice(0, 12)}… is not on secp256k1`, {}, { cause: e });
  }
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

/** Fixed key pairs for the self-tests, with nostr-tools' conversation keys. */
function selfTestPairs(): { sk: Uint8Array; peerPub: string; expected: Uint8Array }[] {
  return [1, 2].map((seed) => {
    const sk = sha256(new Uint8Array([0x6e, 0x34, 0x34, seed]));
    const peerPub = getPublicKey(sha256(new Uint8Array([0x70, 0x65, 0x65, seed])));
    return { sk, peerPub, expected: nobleConversationKey(sk, peerPub) };
  });
}

/** Chooses the backend once per process: native, else OpenSSL, each when present and agreeing with nostr-tools. */
export function ecdhBackend(): EcdhBackend {
  if (backend !== undefined) return backend;
  let nativeReason: string | undefined;
  try {
    if (!nativeAvailable()) throw new Error(nativeUnavailableReason() ?? "not available");
    for (const t of selfTestPairs()) if (!equalBytes(nativeConversationKey(t.sk, t.peerPub), t.expected)) throw new Error("native ECDH disagrees with nostr-tools");
    // An x with no curve point must be refused, not answered.
    let refused = false;
    try {
      nativeConversationKey(selfTestPairs()[0]!.sk, "ff".repeat(32));
    } catch (e) {
      refused = e instanceof Nip44KeyError && e.code === "NIP44_BAD_PUBKEY";
    }
    if (!refused) throw new Error("native ECDH accepted a public key that is not on the curve");
    backend = "native-libsecp256k1";
    return backend;
  } catch (e) {
    nativeReason = `native libsecp256k1 ECDH unavailable (${e instanceof Error ? e.message : String(e)})`;
  }
  try {
    if (process.env.MARMOT_NO_OPENSSL_ECDH === "1") throw new Error("disabled by MARMOT_NO_OPENSSL_ECDH=1");
    if (!getCurves().includes("secp256k1")) throw new Error("this Node's OpenSSL has no secp256k1");
    // Self-test on fixed key pairs against nostr-tools.
    for (const t of selfTestPairs()) if (!equalBytes(opensslConversationKey(opensslPrivate(t.sk), t.peerPub), t.expected)) throw new Error("OpenSSL ECDH disagrees with nostr-tools");
    backend = "openssl";
    fallbackReason = `${nativeReason}; using OpenSSL`;
  } catch (e) {
    fallbackReason = `${nativeReason}; OpenSSL secp256k1 ECDH unavailable (${e instanceof Error ? e.message : String(e)}); using pure-JS @noble/curves`;
    backend = "js-noble";
  }
  return backend;
}

/** Why a faster backend than the one in use is not used (undefined when native is in use). */
export function ecdhFallbackReason(): string | undefined {
  ecdhBackend();
  return fallbackReason;
}

/**
 * The NIP-44 v2 conversation key of `secretKey` with the x-only `pubkeyHex`, byte-equal to
 * nostr-tools' `getConversationKey`. Throws `Nip44KeyError` (NIP44_BAD_SECRET_KEY, NIP44_BAD_PUBKEY).
 */
export function conversationKey(secretKey: Uint8Array, pubkeyHex: string): Uint8Array {
  checkSecretKey(secretKey);
  checkPubkey(pubkeyHex);
  const b = ecdhBackend();
  if (b === "native-libsecp256k1") return nativeConversationKey(secretKey, pubkeyHex);
  if (b === "js-noble") return nobleKey(secretKey, pubkeyHex);
  return opensslConversationKey(opensslPrivate(secretKey), pubkeyHex);
}

/**
 * One account's NIP-44 conversation keys: the secret key imported once, and a bounded LRU of the
 * keys with peers that repeat. Cached keys are handed out as copies.
 */
export class Nip44KeyRing {
  private readonly sk: Uint8Array;
  private priv: ECDH | undefined;
  private readonly lru = new Map<string, Uint8Array>();
  readonly maxCached: number;

  constructor(secretKey: Uint8Array, maxCached = 256) {
    checkSecretKey(secretKey);
    if (!Number.isInteger(maxCached) || maxCached < 0) throw new Nip44KeyError("NIP44_BAD_OPTION", "maxCached must be a non-negative integer");
    this.sk = secretKey.slice();
    this.maxCached = maxCached;
  }

  /** Conversation key with `pubkeyHex`; `cache: false` for one-time peers (ephemeral gift-wrap keys). */
  conversationKey(pubkeyHex: string, opts: { cache?: boolean } = {}): Uint8Array {
    checkPubkey(pubkeyHex);
    const id = pubkeyHex.toLowerCase();
    const hit = this.lru.get(id);
    if (hit !== undefined) {
      this.lru.delete(id);
      this.lru.set(id, hit);
      return hit.slice();
    }
    let ck: Uint8Array;
    const b = ecdhBackend();
    if (b === "native-libsecp256k1") ck = nativeConversationKey(this.sk, id);
    else if (b === "js-noble") ck = nobleKey(this.sk, id);
    else {
      this.priv ??= opensslPrivate(this.sk);
      ck = opensslConversationKey(this.priv, id);
    }
    if ((opts.cache ?? true) && this.maxCached > 0) {
      if (this.lru.size >= this.maxCached) this.lru.delete(this.lru.keys().next().value as string);
      this.lru.set(id, ck);
      return ck.slice();
    }
    return ck;
  }

  /** Number of cached conversation keys. */
  get size(): number {
    return this.lru.size;
  }
}

export type Nip44Base64Path = "built-in" | "generic-fallback";

/**
 * Which base64 nostr-tools' NIP-44 payloads go through in this realm: the Uint8Array built-ins
 * (native, or the Buffer-backed ones src/platform/install-base64.ts adds before @scure/base loads) or
 * @scure/base's generic radix fallback (about ten times slower on large payloads). Probed by counting
 * calls to `toBase64` around one NIP-44 encryption.
 */
export function nip44Base64Path(): Nip44Base64Path {
  const proto = Uint8Array.prototype as unknown as { toBase64?: (this: Uint8Array, ...a: unknown[]) => string };
  const original = proto.toBase64;
  if (typeof original !== "function") return "generic-fallback";
  let calls = 0;
  proto.toBase64 = function (this: Uint8Array, ...a: unknown[]) {
    calls++;
    return original.apply(this, a);
  };
  try {
    nip44v2.encrypt("probe", new Uint8Array(32).fill(1), new Uint8Array(32));
  } finally {
    proto.toBase64 = original;
  }
  return calls > 0 ? "built-in" : "generic-fallback";
}
