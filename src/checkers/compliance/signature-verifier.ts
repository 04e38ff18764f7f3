/**
 * BIP-340 Schnorr verification of Nostr event signatures for the checker: a thin view of the
 * project's shared verifier (`src/nostr/verify.ts`: WASM libsecp256k1 loaded once per process, with
 * the pure-JavaScript @noble/curves verifier as fallback). Either way the report names the verifier
 * that ran.
 *
 * The verifier is only handed an event whose NIP-01 id the checker has already recomputed itself; no
 * verdict is cached on event objects (unlike nostr-tools' `verifyEvent`). `MARMOT_CHECKER_NO_WASM=1`
 * forces the JS verifier for the checker alone; `MARMOT_NO_WASM=1` does so for the whole process.
 */
import {
  jsSignatureVerifier,
  loadSignatureVerifier,
  type SignatureVerifier as SharedVerifier,
  type SignatureVerifierChoice,
  type SignatureVerifierName,
  type SignedEventFields,
} from "../../nostr/verify.ts";

export type VerifierName = SignatureVerifierName;
/** What the caller asks for: the fastest available (auto), or one of them explicitly. */
export type VerifierChoice = SignatureVerifierChoice;

export interface SignatureVerifier {
  name: VerifierName;
  /** Why the WASM verifier is not used (set only on the fallback). */
  fallbackReason?: string;
  /**
   * True when `sig` (128 hex) is a valid BIP-340 signature of the 32-byte message `idHex` (64 hex)
   * under the x-only key `pubkeyHex` (64 hex). `event` carries the same fields; the WASM verifier
   * re-derives the message from it and checks it equals `idHex`.
   */
  verify(event: EventFields, idHex: string): boolean;
}

export type EventFields = Omit<SignedEventFields, "id">;

/** The checker's calling convention (id passed apart) over a shared verifier. */
function checkerView(v: SharedVerifier, fallbackReason = v.fallbackReason): SignatureVerifier {
  return {
    name: v.name,
    ...(fallbackReason !== undefined && { fallbackReason }),
    verify: (event, idHex) => v.verify({ id: idHex, pubkey: event.pubkey, created_at: event.created_at, kind: event.kind, tags: event.tags, content: event.content, sig: event.sig }),
  };
}

export const jsVerifier: SignatureVerifier = checkerView(jsSignatureVerifier);

let wasmLoad: Promise<SignatureVerifier> | undefined;

/** Loads the WASM verifier once; resolves to the JS verifier (with the reason) when it cannot load. */
function loadWasm(): Promise<SignatureVerifier> {
  wasmLoad ??=
    process.env.MARMOT_CHECKER_NO_WASM === "1"
      ? Promise.resolve(checkerView(jsSignatureVerifier, "WASM secp256k1 unavailable (disabled by MARMOT_CHECKER_NO_WASM=1); using pure-JS @noble/curves"))
      : loadSignatureVerifier("auto").then((v) => checkerView(v));
  return wasmLoad;
}

/**
 * The verifier to use. "auto" and "wasm" try the WASM build (once per process) and fall back to JS
 * when it cannot load (the returned `fallbackReason` says why); "js" always uses @noble/curves.
 */
export async function getSignatureVerifier(choice: VerifierChoice = "auto"): Promise<SignatureVerifier> {
  if (choice === "js") return jsVerifier;
  return loadWasm();
}
