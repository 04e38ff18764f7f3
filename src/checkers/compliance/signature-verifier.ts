/**
 * BIP-340 Schnorr verification of Nostr event signatures for the checker: a thin view of the
 * project's shared verifier (`src/nostr/verify.ts`: the native libsecp256k1 binding when it is built,
 * else WASM libsecp256k1, loaded once per process, with the pure-JavaScript @noble/curves verifier as
 * the last fallback). Whichever runs, the report names it.
 *
 * The verifier is only handed an event whose NIP-01 id the checker has already recomputed itself; no
 * verdict is cached on event objects (unlike nostr-tools' `verifyEvent`). `MARMOT_CHECKER_NO_WASM=1`
 * forces the JS verifier for the checker alone; `MARMOT_NO_NATIVE=1` / `MARMOT_NO_WASM=1` disable the
 * native / WASM backend for the whole process.
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
  /** Why the requested backend is not used (set only on a fallback). */
  fallbackReason?: string;
  /**
   * True when `sig` (128 hex) is a valid BIP-340 signature of the 32-byte message `idHex` (64 hex)
   * under the x-only key `pubkeyHex` (64 hex). `event` carries the same fields; the WASM verifier
   * re-derives the message from it and checks it equals `idHex` (native and JS verify `idHex`).
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

const loads = new Map<VerifierChoice, Promise<SignatureVerifier>>();

/**
 * The verifier to use. "auto" (and "native") take the native libsecp256k1 binding when it is built,
 * else WASM, else JS; "wasm" skips the native one; "js" always uses @noble/curves. Each backend loads
 * once per process; `fallbackReason` says why a requested backend is not the one returned.
 */
export async function getSignatureVerifier(choice: VerifierChoice = "auto"): Promise<SignatureVerifier> {
  if (choice === "js") return jsVerifier;
  let p = loads.get(choice);
  if (p === undefined) {
    p =
      process.env.MARMOT_CHECKER_NO_WASM === "1"
        ? Promise.resolve(checkerView(jsSignatureVerifier, "WASM secp256k1 unavailable (disabled by MARMOT_CHECKER_NO_WASM=1); using pure-JS @noble/curves"))
        : loadSignatureVerifier(choice).then((v) => checkerView(v));
    loads.set(choice, p);
  }
  return p;
}
