/**
 * BIP-340 Schnorr signing and verification of Nostr events for the engine's hot paths (kind 445
 * signing and checking, seal and gift-wrap signing, KeyPackage events). Three backends, the first
 * that works is used:
 *
 * 1. `native-libsecp256k1`: the N-API binding of the system's libsecp256k1 (src/nostr/secp256k1-native.ts;
 *    built at install time when libsecp256k1-dev is present; `MARMOT_NO_NATIVE=1` turns it off).
 *    Checked on first use (synchronously) with a self-test against the pure-JS signer.
 * 2. `wasm-libsecp256k1`: nostr-wasm, loaded once per process by `initNostrSigning()` (called by
 *    `createEngine`) unless `MARMOT_NO_WASM=1`, after its own self-test.
 * 3. `js-noble`: nostr-tools / @noble/curves.
 *
 * Determinism: BIP-340 signing is a function of (message, key, auxiliary bytes). When the caller
 * gives the 32 auxiliary bytes (a seeded run), the native signer uses them and returns exactly the
 * signature the pure-JS signer returns for them (the self-test checks this), so seeded runs stay
 * byte-for-byte reproducible and now fast. nostr-wasm 0.1.0's `finalizeEvent(event, seckey, ent)`
 * ignores `ent`, so without the native backend seeded signing stays on the pure-JS path. Without
 * aux bytes (the 445 and gift-wrap paths), fresh CSPRNG aux bytes are used.
 * Verification never reads or writes nostr-tools' cached "verified" mark on an event.
 */
import { schnorr } from "@noble/curves/secp256k1.js";
import { bytesToHex, hexToBytes } from "@noble/hashes/utils.js";
import { getPublicKey } from "nostr-tools/pure";
import { eventId } from "../nostr/event-id.ts";
import { isValidSecretKey } from "./nip44-conversation.ts";
import { nativeAvailable, nativeUnavailableReason, signSchnorr, verifySchnorr, xonlyPublicKey } from "../nostr/secp256k1-native.ts";

export interface UnsignedTemplate {
  kind: number;
  created_at: number;
  tags: string[][];
  content: string;
}

export interface SignedNostrEvent extends UnsignedTemplate {
  id: string;
  pubkey: string;
  sig: string;
}

interface WasmEvent extends UnsignedTemplate {
  id: string;
  pubkey: string;
  sig: string;
}

interface NostrWasm {
  getPublicKey(seckey: Uint8Array): Uint8Array;
  finalizeEvent(event: WasmEvent, seckey: Uint8Array, ent?: Uint8Array): void;
  verifyEvent(event: WasmEvent): void;
}

export type NostrSigningBackend = "native-libsecp256k1" | "wasm-libsecp256k1" | "js-noble";

let wasm: NostrWasm | undefined;
/** undefined until first checked; then whether the native addon loaded and passed its self-test. */
let native: boolean | undefined;
let nativeReason: string | undefined;
let loading: Promise<NostrSigningBackend> | undefined;
let fallbackReason: string | undefined;

const HEX64 = /^[0-9a-f]{64}$/;
const HEX128 = /^[0-9a-f]{128}$/;

function jsSign(template: UnsignedTemplate, secretKey: Uint8Array, aux: Uint8Array | undefined): SignedNostrEvent {
  const pubkey = getPublicKey(secretKey);
  const unsigned = { kind: template.kind, created_at: template.created_at, tags: template.tags, content: template.content, pubkey };
  const id = eventId(unsigned);
  const sig = bytesToHex(schnorr.sign(hexToBytes(id), secretKey, aux));
  return { ...unsigned, id, sig };
}

function jsVerify(id: string, pubkey: string, sig: string): boolean {
  try {
    return schnorr.verify(hexToBytes(sig), hexToBytes(id), hexToBytes(pubkey));
  } catch {
    return false;
  }
}

function toHex(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.length).toString("hex");
}

function hexBytes(hex: string): Uint8Array {
  const b = Buffer.from(hex, "hex");
  return new Uint8Array(b.buffer, b.byteOffset, b.length);
}

/**
 * x-only public keys of the secret keys this process signs with, per key object (an account signs
 * many events with the same one); the key's bytes are compared on every hit, so a reused array
 * holding another key is never given the old answer.
 */
const xonlyCache = new WeakMap<Uint8Array, { key: Uint8Array; pubkey: string }>();

function nativeXonlyHex(secretKey: Uint8Array): string {
  const hit = xonlyCache.get(secretKey);
  if (hit && hit.key.length === secretKey.length && hit.key.every((b, i) => b === secretKey[i])) return hit.pubkey;
  const pubkey = toHex(xonlyPublicKey(secretKey));
  xonlyCache.set(secretKey, { key: secretKey.slice(), pubkey });
  return pubkey;
}

function nativeSign(template: UnsignedTemplate, secretKey: Uint8Array, aux: Uint8Array): SignedNostrEvent {
  const pubkey = nativeXonlyHex(secretKey);
  const unsigned = { kind: template.kind, created_at: template.created_at, tags: template.tags, content: template.content, pubkey };
  const id = eventId(unsigned);
  const sig = toHex(signSchnorr(hexBytes(id), secretKey, aux));
  return { ...unsigned, id, sig };
}

/** Same pubkey, id and signature (given the same aux bytes) as the JS path; rejects a flipped signature and another message. */
function nativeSelfTest(): boolean {
  const sk = new Uint8Array(32).fill(7);
  const aux = new Uint8Array(32).fill(0x5a);
  const t = { kind: 1, created_at: 1, tags: [["t", "self-test"]], content: "signer self-test" };
  const a = nativeSign(t, sk, aux);
  const b = jsSign(t, sk, aux);
  if (a.id !== b.id || a.pubkey !== b.pubkey || a.sig !== b.sig) return false;
  const flipped = (a.sig[0] === "0" ? "1" : "0") + a.sig.slice(1);
  return (
    verifySchnorr(hexBytes(a.id), hexBytes(a.pubkey), hexBytes(a.sig)) &&
    !verifySchnorr(hexBytes(a.id), hexBytes(a.pubkey), hexBytes(flipped)) &&
    !verifySchnorr(hexBytes(eventId({ ...a, content: "changed" })), hexBytes(a.pubkey), hexBytes(a.sig))
  );
}

/** Whether the native backend is in use; checked once per process, on first use. */
function nativeReady(): boolean {
  if (native !== undefined) return native;
  native = false;
  try {
    if (!nativeAvailable()) throw new Error(nativeUnavailableReason() ?? "not available");
    if (!nativeSelfTest()) throw new Error("native signer failed its self-test");
    native = true;
  } catch (e) {
    nativeReason = `native libsecp256k1 unavailable (${e instanceof Error ? e.message : String(e)})`;
  }
  return native;
}

function wasmSign(nw: NostrWasm, template: UnsignedTemplate, secretKey: Uint8Array): SignedNostrEvent {
  const ev: WasmEvent = { kind: template.kind, created_at: template.created_at, tags: template.tags, content: template.content, id: "", pubkey: "", sig: "" };
  // No `ent`: nostr-wasm then draws fresh CSPRNG aux bytes itself (a given `ent` would be ignored).
  nw.finalizeEvent(ev, secretKey);
  return { kind: ev.kind, created_at: ev.created_at, tags: ev.tags, content: ev.content, pubkey: ev.pubkey, id: ev.id, sig: ev.sig };
}

/** Same id and pubkey as the JS path, a signature JS accepts; WASM rejects a bad signature and a changed content. */
function selfTest(nw: NostrWasm): boolean {
  const sk = new Uint8Array(32).fill(7);
  const t = { kind: 1, created_at: 1, tags: [["t", "self-test"]], content: "signer self-test" };
  const a = wasmSign(nw, t, sk);
  const b = jsSign(t, sk, new Uint8Array(32));
  if (a.id !== b.id || a.pubkey !== b.pubkey || !jsVerify(a.id, a.pubkey, a.sig)) return false;
  const ok = (e: WasmEvent): boolean => {
    try {
      nw.verifyEvent({ ...e });
      return true;
    } catch {
      return false;
    }
  };
  return ok(a) && !ok({ ...a, sig: (a.sig[0] === "0" ? "1" : "0") + a.sig.slice(1) }) && !ok({ ...a, content: "changed" });
}

/**
 * Loads the WASM signer once per process (later calls share the first load). Resolves to the
 * backend now in use; on failure the JS path stays and `nostrSigningFallbackReason()` says why.
 */
export function initNostrSigning(): Promise<NostrSigningBackend> {
  loading ??= (async (): Promise<NostrSigningBackend> => {
    if (nativeReady()) return nostrSigningBackend();
    try {
      if (process.env.MARMOT_NO_WASM === "1") throw new Error("disabled by MARMOT_NO_WASM=1");
      const mod = (await import("nostr-wasm")) as unknown as { initNostrWasm: () => Promise<NostrWasm> };
      const nw = await mod.initNostrWasm();
      if (!selfTest(nw)) throw new Error("WASM signer failed its self-test");
      wasm = nw;
    } catch (e) {
      fallbackReason = `WASM libsecp256k1 unavailable (${e instanceof Error ? e.message : String(e)}); using pure-JS @noble/curves`;
      if (nativeReason !== undefined) fallbackReason = `${nativeReason}; ${fallbackReason}`;
    }
    if (wasm && nativeReason !== undefined) fallbackReason = `${nativeReason}; using nostr-wasm`;
    return nostrSigningBackend();
  })();
  return loading;
}

/** The backend signing and verifying now: native when it works, else WASM once loaded, else JS. */
export function nostrSigningBackend(): NostrSigningBackend {
  return nativeReady() ? "native-libsecp256k1" : wasm ? "wasm-libsecp256k1" : "js-noble";
}

/** Why a faster backend is not in use (undefined when native is, or before `initNostrSigning` settles). */
export function nostrSigningFallbackReason(): string | undefined {
  return nativeReady() ? undefined : (fallbackReason ?? nativeReason);
}

/**
 * Signs a NIP-01 event: pubkey, id and sig filled in. `aux` (32 bytes) is the BIP-340 auxiliary
 * randomness and makes the signature reproducible (the same bytes on every backend that takes aux:
 * native and pure JS); when omitted, fresh CSPRNG bytes are used and the signature is not
 * reproducible. A key that is not a valid scalar goes to the JS path, which throws for it.
 */
export function signNostrEvent(template: UnsignedTemplate, secretKey: Uint8Array, aux?: Uint8Array): SignedNostrEvent {
  const valid = isValidSecretKey(secretKey);
  const validAux = aux === undefined || (aux instanceof Uint8Array && aux.length === 32);
  if (valid && validAux && nativeReady()) return nativeSign(template, secretKey, aux ?? crypto.getRandomValues(new Uint8Array(32)));
  if (aux !== undefined || !wasm || !valid) return jsSign(template, secretKey, aux ?? crypto.getRandomValues(new Uint8Array(32)));
  return wasmSign(wasm, template, secretKey);
}

/**
 * True when `event.sig` is a valid BIP-340 signature of `event.id` under `event.pubkey`. The
 * caller checks that `id` is the event's NIP-01 hash (the WASM path checks it again, the native and
 * JS paths do not). Never throws.
 */
export function verifyNostrSignature(event: { id: string; pubkey: string; sig: string; kind: number; created_at: number; tags: string[][]; content: string }): boolean {
  if (typeof event.id !== "string" || typeof event.pubkey !== "string" || typeof event.sig !== "string") return false;
  if (!HEX64.test(event.id) || !HEX64.test(event.pubkey) || !HEX128.test(event.sig)) return false;
  if (nativeReady()) return verifySchnorr(hexBytes(event.id), hexBytes(event.pubkey), hexBytes(event.sig));
  if (!wasm) return jsVerify(event.id, event.pubkey, event.sig);
  try {
    wasm.verifyEvent({ id: event.id, pubkey: event.pubkey, sig: event.sig, kind: event.kind, created_at: event.created_at, tags: event.tags, content: event.content });
    return true;
  } catch {
    return false;
  }
}

/**
 * x-only public key (hex) of a secret key, via native or WASM when in use. A key that is not a
 * valid scalar goes to nostr-tools, which throws for it (the WASM build's behaviour on such keys is
 * unspecified).
 */
export function publicKeyHex(secretKey: Uint8Array): string {
  if (!isValidSecretKey(secretKey)) return getPublicKey(secretKey);
  if (nativeReady()) return nativeXonlyHex(secretKey);
  return wasm ? bytesToHex(wasm.getPublicKey(secretKey)) : getPublicKey(secretKey);
}
