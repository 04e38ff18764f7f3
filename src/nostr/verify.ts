/**
 * BIP-340 Schnorr verification of Nostr event signatures, shared by whatever needs it (the relay
 * first). The WASM build of libsecp256k1 (`nostr-wasm`, the backend of `nostr-tools/wasm`) is
 * loaded once per process by `loadSignatureVerifier()`; until it has loaded, or when it cannot load
 * (or `MARMOT_NO_WASM=1`), the pure-JavaScript verifier of @noble/curves is used. Both say who they
 * are (`name`), so reports and NIP-11 documents can name the verifier that ran.
 *
 * A verifier never reads or writes nostr-tools' cached "verified" mark on an event: callers
 * recompute the NIP-01 id themselves and hand the verifier a plain object. It knows nothing of MLS.
 */
import { schnorr } from "@noble/curves/secp256k1.js";
import { sha256 } from "@noble/hashes/sha2.js";
import { bytesToHex, hexToBytes, utf8ToBytes } from "@noble/hashes/utils.js";

export type SignatureVerifierName = "wasm-libsecp256k1" | "js-noble";
/** What a caller asks for: the fastest available (auto / wasm, falling back to js), or js. */
export type SignatureVerifierChoice = "auto" | "wasm" | "js";

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
   * it again and answers false when it differs. Never throws; marks nothing on `e`.
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
  return bytesToHex(sha256(utf8ToBytes(JSON.stringify([0, e.pubkey, e.created_at, e.kind, e.tags, e.content]))));
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
  return v.verify(good) && !v.verify(badSig) && (v.name === "js-noble" || !v.verify(badContent));
}

let current: SignatureVerifier = jsSignatureVerifier;
let loading: Promise<SignatureVerifier> | undefined;

/** The module specifier's URL of nostr-wasm (for worker threads), or undefined when it does not resolve. */
export function nostrWasmUrl(): string | undefined {
  try {
    return import.meta.resolve("nostr-wasm");
  } catch {
    return undefined;
  }
}

/**
 * Loads the WASM verifier once per process and makes it the current one; resolves to the JS
 * verifier (with `fallbackReason`) when it cannot load or fails its self-test. "js" loads nothing.
 */
export function loadSignatureVerifier(choice: SignatureVerifierChoice = "auto"): Promise<SignatureVerifier> {
  if (choice === "js") return Promise.resolve(jsSignatureVerifier);
  loading ??= (async (): Promise<SignatureVerifier> => {
    try {
      if (process.env.MARMOT_NO_WASM === "1") throw new Error("disabled by MARMOT_NO_WASM=1");
      const mod = (await import("nostr-wasm")) as { initNostrWasm: () => Promise<NostrWasm> };
      const v = wasmSignatureVerifier(await mod.initNostrWasm());
      if (!selfTest(v)) throw new Error("WASM verifier failed its self-test");
      current = v;
    } catch (e) {
      current = { ...jsSignatureVerifier, fallbackReason: `WASM libsecp256k1 unavailable (${e instanceof Error ? e.message : String(e)}); using pure-JS @noble/curves` };
    }
    return current;
  })();
  return loading;
}

/** The verifier in use now: WASM once `loadSignatureVerifier()` has loaded it, else pure JS. */
export function currentSignatureVerifier(): SignatureVerifier {
  return current;
}
