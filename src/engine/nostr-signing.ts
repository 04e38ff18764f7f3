/**
 * BIP-340 Schnorr signing and verification of Nostr events for the engine's hot paths (kind 445
 * signing and checking, seal and gift-wrap signing, KeyPackage events). The WASM build of
 * libsecp256k1 (`nostr-wasm`, the backend of `nostr-tools/wasm`) is loaded once per process by
 * `initNostrSigning()` (called by `createEngine`); until then, or when it cannot load or fails its
 * self-test (or `MARMOT_NO_WASM=1`), the pure-JS path (nostr-tools / @noble/curves) is used.
 *
 * Determinism: nostr-wasm 0.1.0's `finalizeEvent(event, seckey, ent)` ignores `ent` (it never copies
 * the bytes into WASM memory and signs with whatever aux bytes are left there), so it cannot sign
 * reproducibly. When the caller gives BIP-340 auxiliary bytes (a seeded run), the pure-JS signer is
 * used and the signature is the same as before; without them (the 445 and gift-wrap paths, which
 * never took seeded aux bytes), WASM signs with CSPRNG aux bytes. Verification always uses WASM.
 * Verification never reads or writes nostr-tools' cached "verified" mark on an event.
 */
import { schnorr } from "@noble/curves/secp256k1.js";
import { bytesToHex, hexToBytes } from "@noble/hashes/utils.js";
import { getEventHash, getPublicKey } from "nostr-tools/pure";
import { isValidSecretKey } from "./nip44-conversation.ts";

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

export type NostrSigningBackend = "wasm-libsecp256k1" | "js-noble";

let wasm: NostrWasm | undefined;
let loading: Promise<NostrSigningBackend> | undefined;
let fallbackReason: string | undefined;

const HEX64 = /^[0-9a-f]{64}$/;
const HEX128 = /^[0-9a-f]{128}$/;

function jsSign(template: UnsignedTemplate, secretKey: Uint8Array, aux: Uint8Array | undefined): SignedNostrEvent {
  const pubkey = getPublicKey(secretKey);
  const unsigned = { kind: template.kind, created_at: template.created_at, tags: template.tags, content: template.content, pubkey };
  const id = getEventHash(unsigned);
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
    try {
      if (process.env.MARMOT_NO_WASM === "1") throw new Error("disabled by MARMOT_NO_WASM=1");
      const mod = (await import("nostr-wasm")) as unknown as { initNostrWasm: () => Promise<NostrWasm> };
      const nw = await mod.initNostrWasm();
      if (!selfTest(nw)) throw new Error("WASM signer failed its self-test");
      wasm = nw;
    } catch (e) {
      fallbackReason = `WASM libsecp256k1 unavailable (${e instanceof Error ? e.message : String(e)}); using pure-JS @noble/curves`;
    }
    return nostrSigningBackend();
  })();
  return loading;
}

export function nostrSigningBackend(): NostrSigningBackend {
  return wasm ? "wasm-libsecp256k1" : "js-noble";
}

export function nostrSigningFallbackReason(): string | undefined {
  return fallbackReason;
}

/**
 * Signs a NIP-01 event: pubkey, id and sig filled in. `aux` (32 bytes) is the BIP-340 auxiliary
 * randomness and makes the signature reproducible (pure-JS path); when omitted, fresh CSPRNG bytes
 * are used (WASM when loaded) and the signature is not reproducible.
 */
export function signNostrEvent(template: UnsignedTemplate, secretKey: Uint8Array, aux?: Uint8Array): SignedNostrEvent {
  if (aux !== undefined || !wasm || !isValidSecretKey(secretKey)) return jsSign(template, secretKey, aux ?? crypto.getRandomValues(new Uint8Array(32)));
  return wasmSign(wasm, template, secretKey);
}

/**
 * True when `event.sig` is a valid BIP-340 signature of `event.id` under `event.pubkey`. The
 * caller checks that `id` is the event's NIP-01 hash (the WASM path checks it again). Never throws.
 */
export function verifyNostrSignature(event: { id: string; pubkey: string; sig: string; kind: number; created_at: number; tags: string[][]; content: string }): boolean {
  if (typeof event.id !== "string" || typeof event.pubkey !== "string" || typeof event.sig !== "string") return false;
  if (!HEX64.test(event.id) || !HEX64.test(event.pubkey) || !HEX128.test(event.sig)) return false;
  if (!wasm) return jsVerify(event.id, event.pubkey, event.sig);
  try {
    wasm.verifyEvent({ id: event.id, pubkey: event.pubkey, sig: event.sig, kind: event.kind, created_at: event.created_at, tags: event.tags, content: event.content });
    return true;
  } catch {
    return false;
  }
}

/**
 * x-only public key (hex) of a secret key, via WASM when loaded. A key that is not a valid scalar
 * goes to nostr-tools, which throws for it (the WASM build's behaviour on such keys is unspecified).
 */
export function publicKeyHex(secretKey: Uint8Array): string {
  return wasm && isValidSecretKey(secretKey) ? bytesToHex(wasm.getPublicKey(secretKey)) : getPublicKey(secretKey);
}
