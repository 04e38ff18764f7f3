/**
 * The optional native BIP-340 backend: an N-API binding (native/secp256k1) of the system's
 * libsecp256k1, built at install time by scripts/build-native.mjs when libsecp256k1's headers are
 * present. All cryptography is libsecp256k1's; this module only loads the addon and types it.
 *
 * The addon is loaded lazily, once per thread; when it is not built, does not load, or
 * `MARMOT_NO_NATIVE=1` is set, `nativeAvailable()` is false, `nativeUnavailableReason()` says why,
 * and the functions below throw a `NativeSecp256k1Error` with code `NATIVE_SECP256K1_UNAVAILABLE`.
 * Arguments of the wrong type or length throw a `NativeSecp256k1Error` with code
 * `NATIVE_SECP256K1_BAD_ARGUMENT` naming the argument (the addon itself would throw a TypeError).
 * A well-formed but invalid key or signature is not an error: verification answers false.
 */
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import { HarnessError } from "../errors.ts";

export class NativeSecp256k1Error extends HarnessError {}

interface Addon {
  verifySchnorr(msg32: Uint8Array, xonlyPub32: Uint8Array, sig64: Uint8Array): boolean;
  verifyMany(items: Uint8Array): Uint8Array;
  signSchnorr(msg32: Uint8Array, seckey32: Uint8Array, aux32: Uint8Array): Uint8Array;
  xonlyPublicKey(seckey32: Uint8Array): Uint8Array;
  /** Absent from an addon built before it was added. */
  ecdhXonly?(seckey32: Uint8Array, xonlyPub32: Uint8Array): Uint8Array | null;
  library: string;
}

/** Bytes per item of `verifyMany`: message (32) | x-only public key (32) | signature (64). */
export const VERIFY_ITEM_BYTES = 128;

/** Absolute path of the built addon (whether or not it exists), for worker threads to load. */
export function nativeAddonPath(): string {
  return fileURLToPath(new URL("../../native/secp256k1/build/Release/marmot_secp256k1.node", import.meta.url));
}

let addon: Addon | undefined;
let reason: string | undefined;
let tried = false;

function load(): Addon | undefined {
  if (tried) return addon;
  tried = true;
  if (process.env.MARMOT_NO_NATIVE === "1") {
    reason = "disabled by MARMOT_NO_NATIVE=1";
    return undefined;
  }
  const file = nativeAddonPath();
  if (!existsSync(file)) {
    reason = "addon not built (install libsecp256k1-dev, then run `node scripts/build-native.mjs`)";
    return undefined;
  }
  try {
    addon = createRequire(import.meta.url)(file) as Addon;
  } catch (e) {
    reason = `addon did not load: ${e instanceof Error ? e.message : String(e)}`;
  }
  return addon;
}

/** True when the native addon is built, loads, and is not disabled by `MARMOT_NO_NATIVE=1`. */
export function nativeAvailable(): boolean {
  return load() !== undefined;
}

/** Why the native backend is not available (undefined when it is). */
export function nativeUnavailableReason(): string | undefined {
  load();
  return addon === undefined ? reason : undefined;
}

function need(): Addon {
  const a = load();
  if (a === undefined) throw new NativeSecp256k1Error("NATIVE_SECP256K1_UNAVAILABLE", `native secp256k1 unavailable: ${reason ?? "unknown reason"}`);
  return a;
}

function bytes(name: string, v: unknown, len: number): Uint8Array {
  if (!(v instanceof Uint8Array)) throw new NativeSecp256k1Error("NATIVE_SECP256K1_BAD_ARGUMENT", `${name} must be a Uint8Array`, { argument: name });
  if (v.length !== len) throw new NativeSecp256k1Error("NATIVE_SECP256K1_BAD_ARGUMENT", `${name} must be ${len} bytes, got ${v.length}`, { argument: name, expected: len, got: v.length });
  return v;
}

/** BIP-340: is `sig64` a valid signature of `msg32` under the x-only key `xonlyPub32`? (An unparsable key: false.) */
export function verifySchnorr(msg32: Uint8Array, xonlyPub32: Uint8Array, sig64: Uint8Array): boolean {
  const a = need();
  return a.verifySchnorr(bytes("msg32", msg32, 32), bytes("xonlyPub32", xonlyPub32, 32), bytes("sig64", sig64, 64));
}

/** Verifies N items packed as N×128 bytes [msg32|pub32|sig64]; answers N bytes, 1 = valid, 0 = not. */
export function verifyMany(items: Uint8Array): Uint8Array {
  const a = need();
  if (!(items instanceof Uint8Array)) throw new NativeSecp256k1Error("NATIVE_SECP256K1_BAD_ARGUMENT", "items must be a Uint8Array", { argument: "items" });
  if (items.length % VERIFY_ITEM_BYTES !== 0) throw new NativeSecp256k1Error("NATIVE_SECP256K1_BAD_ARGUMENT", `items must be a multiple of ${VERIFY_ITEM_BYTES} bytes, got ${items.length}`, { argument: "items", got: items.length });
  return a.verifyMany(items);
}

/**
 * BIP-340 signature of `msg32` with `seckey32` and the auxiliary randomness `aux32`
 * (secp256k1_schnorrsig_sign32): the same three inputs always give the same 64 bytes.
 * An invalid secret key (zero, or ≥ the group order) throws NATIVE_SECP256K1_BAD_ARGUMENT.
 */
export function signSchnorr(msg32: Uint8Array, seckey32: Uint8Array, aux32: Uint8Array): Uint8Array {
  const a = need();
  try {
    return a.signSchnorr(bytes("msg32", msg32, 32), bytes("seckey32", seckey32, 32), bytes("aux32", aux32, 32));
  } catch (e) {
    if (e instanceof RangeError) throw new NativeSecp256k1Error("NATIVE_SECP256K1_BAD_ARGUMENT", "seckey32 is not a valid secp256k1 secret key", { argument: "seckey32" });
    throw e;
  }
}

/** The BIP-340 x-only public key (32 bytes) of `seckey32`. */
export function xonlyPublicKey(seckey32: Uint8Array): Uint8Array {
  const a = need();
  try {
    return a.xonlyPublicKey(bytes("seckey32", seckey32, 32));
  } catch (e) {
    if (e instanceof RangeError) throw new NativeSecp256k1Error("NATIVE_SECP256K1_BAD_ARGUMENT", "seckey32 is not a valid secp256k1 secret key", { argument: "seckey32" });
    throw e;
  }
}

/**
 * The x coordinate of `seckey32`·P, where P is the curve point with x = `xonlyPub32` and even y
 * (secp256k1_ecdh with a hash function that copies x): the shared x NIP-44 v2 feeds to HKDF.
 * undefined when `xonlyPub32` is not the x of a curve point; an invalid secret key throws
 * NATIVE_SECP256K1_BAD_ARGUMENT; an addon built before this function throws NATIVE_SECP256K1_UNAVAILABLE.
 */
export function ecdhXonly(seckey32: Uint8Array, xonlyPub32: Uint8Array): Uint8Array | undefined {
  const a = need();
  if (typeof a.ecdhXonly !== "function") throw new NativeSecp256k1Error("NATIVE_SECP256K1_UNAVAILABLE", "the built addon has no ecdhXonly: rebuild it with `node scripts/build-native.mjs`");
  try {
    return a.ecdhXonly(bytes("seckey32", seckey32, 32), bytes("xonlyPub32", xonlyPub32, 32)) ?? undefined;
  } catch (e) {
    if (e instanceof RangeError) throw new NativeSecp256k1Error("NATIVE_SECP256K1_BAD_ARGUMENT", "seckey32 is not a valid secp256k1 secret key", { argument: "seckey32" });
    throw e;
  }
}

const HEX64 = /^[0-9a-f]{64}$/;
const HEX128 = /^[0-9a-f]{128}$/;

/**
 * Packs events' (id, pubkey, sig) hex into the `verifyMany` layout. `wellFormed[i]` is false when
 * item i is not lowercase hex of the right lengths (its slot stays zero, which never verifies, and
 * callers must treat it as invalid anyway).
 */
export function packVerifyItems(items: readonly { id: string; pubkey: string; sig: string }[]): { packed: Uint8Array; wellFormed: boolean[] } {
  const buf = Buffer.alloc(items.length * VERIFY_ITEM_BYTES);
  const wellFormed = items.map((e, i) => {
    if (typeof e.id !== "string" || typeof e.pubkey !== "string" || typeof e.sig !== "string") return false;
    if (!HEX64.test(e.id) || !HEX64.test(e.pubkey) || !HEX128.test(e.sig)) return false;
    const o = i * VERIFY_ITEM_BYTES;
    buf.write(e.id, o, "hex");
    buf.write(e.pubkey, o + 32, "hex");
    buf.write(e.sig, o + 64, "hex");
    return true;
  });
  return { packed: new Uint8Array(buf.buffer, buf.byteOffset, buf.length), wellFormed };
}
