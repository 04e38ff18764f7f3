/**
 * BIP-340 Schnorr verification of Nostr event signatures, shared by whatever needs it (the relay
 * first). `loadSignatureVerifier()` picks, once per process, the fastest backend that loads and
 * passes a self-test: the native binding of the system's libsecp256k1 (`native/secp256k1`, built at
 * install time when libsecp256k1-dev is present; `MARMOT_NO_NATIVE=1` disables it), else the WASM
 * build of libsecp256k1 (`nostr-wasm`, the backend of `nostr-tools/wasm`; `MARMOT_NO_WASM=1`
 * disables it), else the pure-JavaScript verifier of @noble/curves, which is also used until
 * loading has finished. Each says who it is (`name`), so reports and NIP-11 documents can name the
 * verifier that ran.
 *
 * A verifier never reads or writes nostr-tools' cached "verified" mark on an event: callers
 * recompute the NIP-01 id themselves and hand the verifier a plain object. It knows nothing of MLS.
 */
import { schnorr } from "@noble/curves/secp256k1.js";
import { bytesToHex, hexToBytes } from "@noble/hashes/utils.js";
import { eventIdUnchecked } from "./event-id.ts";
import { nativeAvailable, nativeUnavailableReason, verifySchnorr } from "./secp256k1-native.ts";

export type SignatureVerifierName = "native-libsecp256k1" | "wasm-libsecp256k1" | "js-noble";
/**
 * What a caller asks for: the fastest available ("auto": native, else WASM, else JS), or one backend
 * ("native" falls back like auto, "wasm" falls back to JS, with `fallbackReason` saying why), or JS.
 */
export type SignatureVerifierChoice = "auto" | "native" | "wasm" | "js";

/** The fields of a signed Nostr event (NIP-01). */
export interface SignedEventFields {
  id: string;
  pubkey: string;
  created_at: number;
  kind: number;
  tags: string[][];
  content: string;
  sig: string;
}

export interface SignatureVerifier {
  readonly name: SignatureVerifierName;
  /** Why the WASM verifier is not in use (set on a fallback after a failed load). */
  readonly fallbackReason?: string;
  /**
   * True when `e.sig` is a valid BIP-340 signature of the 32-byte message `e.id` under the x-only
   * key `e.pubkey`. The caller checks that `e.id` is the event's hash; the WASM verifier derives
   * it again and answers false when it differs (the native and JS ones verify `e.id` as given).
   * Never throws; marks nothing on `e`.
   */
  verify(e: SignedEventFields): boolean;
}

interface NostrWasm {
  verifyEvent(event: SignedEventFields): void;
}

const HEX64 = /^[0-9a-f]{64}$/;
const HEX128 = /^[0-9a-f]{128}$/;

export const jsSignatureVerifier: SignatureVerifier = {
  name: "js-noble",
  verify(e) {
    if (typeof e.id !== "string" || typeof e.pubkey !== "string" || typeof e.sig !== "string") return false;
    if (!HEX64.test(e.id) || !HEX64.test(e.pubkey) || !HEX128.test(e.sig)) return false;
    try {
      return schnorr.verify(hexToBytes(e.sig), hexToBytes(e.id), hexToBytes(e.pubkey));
    } catch {
      return false;
    }
  },
};

/** The native libsecp256k1 binding; only built when `nativeAvailable()`. */
function nativeSignatureVerifier(): SignatureVerifier {
  return {
    name: "native-libsecp256k1",
    verify(e) {
      if (typeof e.id !== "string" || typeof e.pubkey !== "string" || typeof e.sig !== "string") return false;
      if (!HEX64.test(e.id) || !HEX64.test(e.pubkey) || !HEX128.test(e.sig)) return false;
      return verifySchnorr(Buffer.from(e.id, "hex"), Buffer.from(e.pubkey, "hex"), Buffer.from(e.sig, "hex"));
    },
  };
}

function wasmSignatureVerifier(nw: NostrWasm): SignatureVerifier {
  return {
    name: "wasm-libsecp256k1",
    verify(e) {
      if (typeof e.id !== "string" || typeof e.pubkey !== "string" || typeof e.sig !== "string") return false;
      if (!HEX64.test(e.id) || !HEX64.test(e.pubkey) || !HEX128.test(e.sig)) return false;
      try {
        // A fresh plain object: nothing is read from or cached on the caller's event.
        nw.verifyEvent({ id: e.id, pubkey: e.pubkey, created_at: e.created_at, kind: e.kind, tags: e.tags, content: e.content, sig: e.sig });
        return true;
      } catch {
        return false;
      }
    },
  };
}

/** The NIP-01 id (hex) of an event's fields, computed here (not by nostr-tools). */
export function eventIdOf(e: Omit<SignedEventFields, "id" | "sig">): string {
  return eventIdUnchecked(e);
}

/** Checks a verifier against the JS one on a known-good and a known-bad signature. */
function selfTest(v: SignatureVerifier): boolean {
  const sk = new Uint8Array(32).fill(7);
  const pubkey = bytesToHex(schnorr.getPublicKey(sk));
  const fields = { pubkey, created_at: 1, kind: 1, tags: [["t", "self-test"]], content: "verifier self-test" };
  const id = eventIdOf(fields);
  const sig = bytesToHex(schnorr.sign(hexToBytes(id), sk, new Uint8Array(32)));
  const good = { ...fields, id, sig };
  const badSig = { ...good, sig: (sig[0] === "0" ? "1" : "0") + sig.slice(1) };
  const badContent = { ...good, content: "changed" };
  return v.verify(good) && !v.verify(badSig) && (v.name !== "wasm-libsecp256k1" || !v.verify(badContent));
}

let current: SignatureVerifier = jsSignatureVerifier;
let loading: Promise<SignatureVerifier> | undefined;
let wasmLoading: Promise<SignatureVerifier> | undefined;

/** The module specifier's URL of nostr-wasm (for worker threads), or undefined when it does not resolve. */
export function nostrWasmUrl(): string | undefined {
  try {
    return import.meta.resolve("nostr-wasm");
  } catch {
    return undefined;
  }
}

/** The native verifier when the addon is available and passes its self-test, else why not. */
function tryNative(): SignatureVerifier | string {
  try {
    if (!nativeAvailable()) return nativeUnavailableReason() ?? "not available";
    const v = nativeSignatureVerifier();
    return selfTest(v) ? v : "native verifier failed its self-test";
  } catch (e) {
    return e instanceof Error ? e.message : String(e);
  }
}

/** Loads the WASM verifier once per process; the JS one (with `fallbackReason`) when it cannot. */
function loadWasm(): Promise<SignatureVerifier> {
  wasmLoading ??= (async (): Promise<SignatureVerifier> => {
    try {
      if (process.env.MARMOT_NO_WASM === "1") throw new Error("disabled by MARMOT_NO_WASM=1");
      const mod = (await import("nostr-wasm")) as { initNostrWasm: () => Promise<NostrWasm> };
      const v = wasmSignatureVerifier(await mod.initNostrWasm());
      if (!selfTest(v)) throw new Error("WASM verifier failed its self-test");
      return v;
    } catch (e) {
      return { ...jsSignatureVerifier, fallbackReason: `WASM libsecp256k1 unavailable (${e instanceof Error ? e.message : String(e)}); using pure-JS @noble/curves` };
    }
  })();
  return wasmLoading;
}

/**
 * Loads the best verifier once per process and makes it the current one: native libsecp256k1, else
 * WASM, else pure JS (with `fallbackReason` saying why WASM is not used; a missing native addon
 * is not a fallback for "auto", it is optional). "native" is "auto" with a `fallbackReason` when
 * the native one is not used; "wasm" skips the native one; "js" loads nothing.
 */
export function loadSignatureVerifier(choice: SignatureVerifierChoice = "auto"): Promise<SignatureVerifier> {
  if (choice === "js") return Promise.resolve(jsSignatureVerifier);
  if (choice === "wasm") return loadWasm();
  loading ??= (async (): Promise<SignatureVerifier> => {
    const native = tryNative();
    current = typeof native === "string" ? await loadWasm() : native;
    return current;
  })();
  if (choice === "native") {
    return loading.then((v) => {
      if (v.name === "native-libsecp256k1") return v;
      const why = `native libsecp256k1 unavailable (${nativeUnavailableReason() ?? "failed its self-test"})`;
      return { ...v, fallbackReason: v.fallbackReason !== undefined ? `${why}; ${v.fallbackReason}` : `${why}; using ${v.name}` };
    });
  }
  return loading;
}

/** The verifier in use now: native or WASM once `loadSignatureVerifier()` has loaded one, else pure JS. */
export function currentSignatureVerifier(): SignatureVerifier {
  return current;
}
