/**
 * Synchronous primitives for the engine's own derivations beside ts-mls: the MIP exporter keys of every
 * epoch (MLS-Exporter under labels "marmot"/"nostr"), KeyPackageRefs and the KeyPackage signature check
 * of MIP-00 validation.
 *
 * ts-mls's default ciphersuite runs SHA-256, HMAC and HKDF through WebCrypto: each call imports a key
 * object and crosses to the thread pool, which costs ~50–100 µs for inputs of a few dozen bytes, and an
 * Ed25519 verification re-imports the public key every time. Here the same functions come from
 * @noble/hashes (SHA-256, HMAC, HKDF extract/expand, synchronous) and Node's OpenSSL (Ed25519
 * verification, one KeyObject per public key in a small LRU), wrapped in ts-mls's `Hash` and `Kdf`
 * interfaces so that ts-mls's own `mlsExporter` and `makeKeyPackageRef` compose them: nothing of MLS or
 * of the primitives is written here. test/engine/sync-primitives.test.ts proves every output byte-equal
 * to ts-mls's default ciphersuite.
 *
 * ts-mls's own group operations (commits, joins, messages) keep the default ciphersuite, as raw ts-mls
 * does in the benchmark.
 */
import { createPublicKey, timingSafeEqual, verify as nodeVerify, type KeyObject } from "node:crypto";
import { extract as hkdfExtract, expand as hkdfExpand } from "@noble/hashes/hkdf.js";
import { hmac } from "@noble/hashes/hmac.js";
import { sha256 } from "@noble/hashes/sha2.js";
import type { CiphersuiteImpl } from "ts-mls";

type HashImpl = CiphersuiteImpl["hash"];
type KdfImpl = CiphersuiteImpl["kdf"];

/** Node's constant-time comparison, which needs equal lengths (a MAC of another length is simply wrong). */
function sameMac(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

/** SHA-256 and HMAC-SHA-256 (ciphersuite 0x0001's hash) in ts-mls's Hash interface. */
export const syncSha256: HashImpl = {
  digest: (data: Uint8Array) => Promise.resolve(sha256(data)),
  mac: (key: Uint8Array, data: Uint8Array) => Promise.resolve(hmac(sha256, key, data)),
  verifyMac: (key: Uint8Array, mac: Uint8Array, data: Uint8Array) => Promise.resolve(sameMac(hmac(sha256, key, data), mac)),
};

/** HKDF-SHA-256 (ciphersuite 0x0001's KDF) in ts-mls's Kdf interface. */
export const syncHkdfSha256: KdfImpl = {
  extract: (salt: Uint8Array, ikm: Uint8Array) => Promise.resolve(hkdfExtract(sha256, ikm, salt)),
  expand: (prk: Uint8Array, info: Uint8Array, len: number) => Promise.resolve(hkdfExpand(sha256, prk, info, len)),
  size: 32,
};

/**
 * `cs` with its hash and KDF replaced by the synchronous ones: for `mlsExporter` and `makeKeyPackageRef`
 * only (ciphersuite 0x0001). Everything else in the object is `cs`'s own.
 */
export function withSyncHashAndKdf(cs: CiphersuiteImpl): CiphersuiteImpl {
  return { ...cs, hash: syncSha256, kdf: syncHkdfSha256 };
}

// DER SubjectPublicKeyInfo header of an Ed25519 public key (RFC 8410): SEQUENCE { SEQUENCE { OID 1.3.101.112 }, BIT STRING }.
const ED25519_SPKI_PREFIX = Uint8Array.from([0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00]);
const KEY_CACHE_LIMIT = 256;
const keyCache = new Map<string, KeyObject>();

function ed25519PublicKey(raw: Uint8Array): KeyObject {
  const id = Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength).toString("hex");
  let key = keyCache.get(id);
  if (key !== undefined) {
    keyCache.delete(id);
    keyCache.set(id, key);
    return key;
  }
  const der = new Uint8Array(ED25519_SPKI_PREFIX.length + 32);
  der.set(ED25519_SPKI_PREFIX);
  der.set(raw, ED25519_SPKI_PREFIX.length);
  key = createPublicKey({ key: Buffer.from(der), format: "der", type: "spki" });
  keyCache.set(id, key);
  if (keyCache.size > KEY_CACHE_LIMIT) keyCache.delete(keyCache.keys().next().value as string);
  return key;
}

/**
 * Ed25519 verification (RFC 8032, through OpenSSL). False for a malformed key or signature, as
 * ts-mls's verifier answers.
 */
export function verifyEd25519(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean {
  if (publicKey.length !== 32 || signature.length !== 64) return false;
  try {
    return nodeVerify(null, message, ed25519PublicKey(publicKey), signature);
  } catch {
    return false;
  }
}
