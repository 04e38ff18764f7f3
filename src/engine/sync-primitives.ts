/**
 * The engine's cryptographic provider for ts-mls (ciphersuite 0x0001), and the synchronous primitives
 * it is made of: SHA-256, HMAC and HKDF from @noble/hashes, Ed25519 from Node's OpenSSL. Nothing of MLS
 * or of the primitives is written here; these are adapters to ts-mls's `Hash`, `Kdf` and `Signature`
 * interfaces, and ts-mls composes them (key schedule, secret tree, exporters, KeyPackageRefs, every
 * signature of a commit, GroupInfo, leaf node or KeyPackage).
 *
 * Why: ts-mls's default suite runs SHA-256, HMAC and HKDF through WebCrypto (each call imports a key
 * object and crosses to the thread pool: ~50–100 µs for inputs of a few dozen bytes), and every Ed25519
 * signature re-imports the private key from PKCS#8 through OpenSSL's decoder (~0.4 ms here), every
 * verification the public key. Here the private key objects are kept in a bounded cache keyed by a
 * SHA-256 of the key bytes (the secret itself is never a map key), public key objects in one keyed by
 * the key's hex.
 *
 * The MLS AEAD (AES-128-GCM of the secret tree's keys, `hpke.encryptAead` / `decryptAead`) is OpenSSL's
 * through `node:crypto` instead of a WebCrypto call per message. HPKE itself (seal, open, key pairs)
 * and the random source stay ts-mls's own. Every output is byte-equal to the default suite's (Ed25519
 * is deterministic, RFC 8032); test/engine/sync-primitives.test.ts proves it, and
 * test/engine/provider-interop.test.ts runs a group where members on either suite interoperate.
 */
import {
  createCipheriv,
  createDecipheriv,
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  sign as nodeSign,
  timingSafeEqual,
  verify as nodeVerify,
  type KeyObject,
} from "node:crypto";
import { extract as hkdfExtract, expand as hkdfExpand } from "@noble/hashes/hkdf.js";
import { hmac } from "@noble/hashes/hmac.js";
import { sha256 } from "@noble/hashes/sha2.js";
import { CryptoError, type CiphersuiteImpl } from "ts-mls";

type HashImpl = CiphersuiteImpl["hash"];
type KdfImpl = CiphersuiteImpl["kdf"];
type SignatureImpl = CiphersuiteImpl["signature"];

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
 * The engine's suite: `cs` (ts-mls's default for 0x0001) with its hash, KDF, signature and MLS AEAD
 * (`hpke.encryptAead` / `decryptAead`, AES-128-GCM) replaced by the ones of this module. HPKE itself
 * (seal, open, key pairs), RNG and `id` are `cs`'s own.
 */
export function engineCiphersuite(cs: CiphersuiteImpl): CiphersuiteImpl {
  const hpke: CiphersuiteImpl["hpke"] = {
    ...cs.hpke,
    encryptAead: (key, nonce, aad, plaintext) => {
      try {
        return Promise.resolve(aes128GcmEncrypt(key, nonce, aad ?? new Uint8Array(0), plaintext));
      } catch (e) {
        return Promise.reject(e);
      }
    },
    decryptAead: (key, nonce, aad, ciphertext) => {
      try {
        return Promise.resolve(aes128GcmDecrypt(key, nonce, aad ?? new Uint8Array(0), ciphertext));
      } catch (e) {
        // as ts-mls's own decryptAead reports a failed open
        return Promise.reject(new CryptoError(`${e instanceof Error ? e.message : String(e)}`));
      }
    },
  };
  return { ...cs, hash: syncSha256, kdf: syncHkdfSha256, signature: ed25519Signature, hpke };
}

const GCM_TAG_BYTES = 16;

function u8(b: Buffer): Uint8Array {
  return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
}

/** AES-128-GCM through OpenSSL: ciphertext ‖ 16-byte tag, the layout WebCrypto returns. */
export function aes128GcmEncrypt(key: Uint8Array, nonce: Uint8Array, aad: Uint8Array, plaintext: Uint8Array): Uint8Array {
  const c = createCipheriv("aes-128-gcm", key, nonce, { authTagLength: GCM_TAG_BYTES });
  if (aad.length > 0) c.setAAD(aad);
  return u8(Buffer.concat([c.update(plaintext), c.final(), c.getAuthTag()]));
}

/** Opens what aes128GcmEncrypt (or WebCrypto) sealed; throws when the tag does not verify. */
export function aes128GcmDecrypt(key: Uint8Array, nonce: Uint8Array, aad: Uint8Array, ciphertext: Uint8Array): Uint8Array {
  if (ciphertext.length < GCM_TAG_BYTES) throw new Error(`AES-GCM ciphertext of ${ciphertext.length} bytes is shorter than its tag`);
  const d = createDecipheriv("aes-128-gcm", key, nonce, { authTagLength: GCM_TAG_BYTES });
  if (aad.length > 0) d.setAAD(aad);
  d.setAuthTag(ciphertext.subarray(ciphertext.length - GCM_TAG_BYTES));
  return u8(Buffer.concat([d.update(ciphertext.subarray(0, ciphertext.length - GCM_TAG_BYTES)), d.final()]));
}

/** OpenSSL key objects by an id, least recently used dropped past `limit`. */
class KeyObjectCache {
  private readonly map = new Map<string, KeyObject>();
  constructor(private readonly limit: number) {}

  get(id: string): KeyObject | undefined {
    const key = this.map.get(id);
    if (key !== undefined) {
      this.map.delete(id);
      this.map.set(id, key);
    }
    return key;
  }

  set(id: string, key: KeyObject): void {
    this.map.set(id, key);
    if (this.map.size > this.limit) this.map.delete(this.map.keys().next().value as string);
  }
}

// DER SubjectPublicKeyInfo header of an Ed25519 public key (RFC 8410): SEQUENCE { SEQUENCE { OID 1.3.101.112 }, BIT STRING }.
const ED25519_SPKI_PREFIX = Uint8Array.from([0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00]);
/** Public key objects by the key's hex. */
const publicKeys = new KeyObjectCache(256);

function ed25519PublicKey(raw: Uint8Array): KeyObject {
  const id = Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength).toString("hex");
  let key = publicKeys.get(id);
  if (key !== undefined) return key;
  const der = new Uint8Array(ED25519_SPKI_PREFIX.length + 32);
  der.set(ED25519_SPKI_PREFIX);
  der.set(raw, ED25519_SPKI_PREFIX.length);
  key = createPublicKey({ key: Buffer.from(der), format: "der", type: "spki" });
  publicKeys.set(id, key);
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

// PKCS#8 DER header of an Ed25519 private key (RFC 8410): the 32-byte seed follows.
const ED25519_PKCS8_PREFIX = Uint8Array.from([0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20]);
/** Private key objects by a SHA-256 of the key bytes (the secret itself is never a map key). */
const signKeys = new KeyObjectCache(1024);

function signKeyId(signKey: Uint8Array): string {
  return createHash("sha256").update(signKey).digest("base64");
}

/**
 * The OpenSSL key object of a ts-mls Ed25519 signing key, which is either the raw 32-byte seed or its
 * PKCS#8 DER encoding (what WebCrypto exports), as ts-mls's own signer accepts. A key that does not
 * parse throws, as ts-mls's signer does.
 */
function ed25519PrivateKey(signKey: Uint8Array): KeyObject {
  const id = signKeyId(signKey);
  let key = signKeys.get(id);
  if (key !== undefined) return key;
  let der: Uint8Array = signKey;
  if (signKey.length === 32) {
    der = new Uint8Array(ED25519_PKCS8_PREFIX.length + 32);
    der.set(ED25519_PKCS8_PREFIX);
    der.set(signKey, ED25519_PKCS8_PREFIX.length);
  }
  key = createPrivateKey({ key: Buffer.from(der.buffer, der.byteOffset, der.byteLength), format: "der", type: "pkcs8" });
  if (key.asymmetricKeyType !== "ed25519") throw new TypeError(`not an Ed25519 private key (${key.asymmetricKeyType ?? "unknown type"})`);
  signKeys.set(id, key);
  return key;
}

/** Ed25519 signature (RFC 8032, through OpenSSL): the same 64 bytes as ts-mls's default signer. */
export function signEd25519(signKey: Uint8Array, message: Uint8Array): Uint8Array {
  const sig = nodeSign(null, message, ed25519PrivateKey(signKey));
  return new Uint8Array(sig.buffer, sig.byteOffset, sig.byteLength);
}

function base64UrlBytes(s: string | undefined): Uint8Array {
  const b = Buffer.from(s ?? "", "base64url");
  return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
}

/**
 * A fresh Ed25519 key pair from OpenSSL's generator: `signKey` is the 32-byte seed (the form ts-mls
 * takes from a raw key), `publicKey` the 32-byte public key. The key object is cached for its signatures.
 */
export function generateEd25519(): { signKey: Uint8Array; publicKey: Uint8Array } {
  const { privateKey } = generateKeyPairSync("ed25519");
  const jwk = privateKey.export({ format: "jwk" });
  const signKey = base64UrlBytes(jwk.d);
  const publicKey = base64UrlBytes(jwk.x);
  if (signKey.length !== 32 || publicKey.length !== 32) throw new Error("OpenSSL returned an Ed25519 key of an unexpected size");
  signKeys.set(signKeyId(signKey), privateKey);
  return { signKey, publicKey };
}

/** Ed25519 in ts-mls's Signature interface. */
export const ed25519Signature: SignatureImpl = {
  sign: (signKey: Uint8Array, message: Uint8Array) => {
    try {
      return Promise.resolve(signEd25519(signKey, message));
    } catch (e) {
      return Promise.reject(e);
    }
  },
  verify: (publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array) => Promise.resolve(verifyEd25519(publicKey, message, signature)),
  keygen: () => {
    try {
      return Promise.resolve(generateEd25519());
    } catch (e) {
      return Promise.reject(e);
    }
  },
};
