/**
 * BIP-340 Schnorr verification of Nostr event signatures for the checker. The WASM build of
 * libsecp256k1 (`nostr-wasm`, the backend of `nostr-tools/wasm`) is loaded once per process; when it
 * cannot be loaded the pure-JavaScript verifier of @noble/curves is used instead. Either way the
 * report names the verifier that ran.
 *
 * The verifier is only handed an event whose NIP-01 id the checker has already recomputed itself; no
 * verdict is cached on event objects (unlike nostr-tools' `verifyEvent`).
 */
import { schnorr } from "@noble/curves/secp256k1.js";
import { hexToBytes } from "./util.ts";

export type VerifierName = "wasm-libsecp256k1" | "js-noble";
/** What the caller asks for: the fastest available (auto), or one of them explicitly. */
export type VerifierChoice = "auto" | "wasm" | "js";

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

export interface EventFields {
  pubkey: string;
  created_at: number;
  kind: number;
  tags: string[][];
  content: string;
  sig: string;
}

interface NostrWasmInstance {
  verifyEvent(event: EventFields & { id: string }): void;
}

export const jsVerifier: SignatureVerifier = {
  name: "js-noble",
  verify(event, idHex) {
    try {
      return schnorr.verify(hexToBytes(event.sig), hexToBytes(idHex), hexToBytes(event.pubkey));
    } catch {
      return false;
    }
  },
};

function wasmVerifier(nw: NostrWasmInstance): SignatureVerifier {
  return {
    name: "wasm-libsecp256k1",
    verify(event, idHex) {
      try {
        // A fresh plain object: nothing is cached on the caller's event.
        nw.verifyEvent({ id: idHex, pubkey: event.pubkey, created_at: event.created_at, kind: event.kind, tags: event.tags, content: event.content, sig: event.sig });
        return true;
      } catch {
        return false;
      }
    },
  };
}

let wasmLoad: Promise<SignatureVerifier> | undefined;

/** Loads the WASM verifier once; resolves to the JS verifier (with the reason) when it cannot load. */
function loadWasm(): Promise<SignatureVerifier> {
  wasmLoad ??= (async (): Promise<SignatureVerifier> => {
    try {
      if (process.env.MARMOT_CHECKER_NO_WASM === "1") throw new Error("disabled by MARMOT_CHECKER_NO_WASM=1");
      const mod = (await import("nostr-wasm")) as { initNostrWasm: () => Promise<NostrWasmInstance> };
      const nw = await mod.initNostrWasm();
      const v = wasmVerifier(nw);
      // Self-test against the JS verifier on a known-good and a known-bad signature.
      const sk = new Uint8Array(32).fill(7);
      const pubkey = Buffer.from(schnorr.getPublicKey(sk)).toString("hex");
      const probe = { pubkey, created_at: 1, kind: 1, tags: [], content: "verifier self-test", sig: "" };
      const { createHash } = await import("node:crypto");
      const id = createHash("sha256").update(JSON.stringify([0, pubkey, 1, 1, [], probe.content])).digest("hex");
      probe.sig = Buffer.from(schnorr.sign(hexToBytes(id), sk, new Uint8Array(32))).toString("hex");
      const bad = { ...probe, sig: (probe.sig[0] === "0" ? "1" : "0") + probe.sig.slice(1) };
      if (!v.verify(probe, id) || v.verify(bad, id)) throw new Error("WASM verifier failed its self-test");
      return v;
    } catch (e) {
      return { ...jsVerifier, fallbackReason: `WASM secp256k1 unavailable (${(e as Error).message}); using pure-JS @noble/curves` };
    }
  })();
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
