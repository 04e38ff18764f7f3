import { describe, it, expect } from "vitest";
import { schnorr } from "@noble/curves/secp256k1.js";
import { bytesToHex, hexToBytes } from "@noble/hashes/utils.js";
import { getEventHash, getPublicKey } from "nostr-tools/pure";
import { initNostrSigning, nostrSigningBackend, signNostrEvent, verifyNostrSignature, publicKeyHex } from "../../src/engine/nostr-signing.ts";

const sk = hexToBytes("3f".repeat(32));
const template = { kind: 445, created_at: 1_700_000_000, tags: [["h", "ab".repeat(32)]], content: "hello" };

describe("nostr-signing (WASM libsecp256k1 with JS fallback)", () => {
  it("loads the WASM backend in this environment", async () => {
    expect(await initNostrSigning()).toBe("wasm-libsecp256k1");
    expect(nostrSigningBackend()).toBe("wasm-libsecp256k1");
  });

  it("with aux bytes signs exactly like pure-JS BIP-340 (seeded runs stay reproducible); without them, WASM signs validly", async () => {
    await initNostrSigning();
    const aux = new Uint8Array(32).fill(0x42);
    const ev = signNostrEvent(template, sk, aux);
    expect(ev.pubkey).toBe(getPublicKey(sk));
    expect(ev.id).toBe(getEventHash(ev));
    expect(ev.sig).toBe(bytesToHex(schnorr.sign(hexToBytes(ev.id), sk, aux)));
    expect(signNostrEvent(template, sk, aux).sig).toBe(ev.sig);
    expect(publicKeyHex(sk)).toBe(getPublicKey(sk));
    const w = signNostrEvent(template, sk);
    expect(w.id).toBe(ev.id);
    expect(schnorr.verify(hexToBytes(w.sig), hexToBytes(w.id), hexToBytes(w.pubkey))).toBe(true);
  });

  it("verifies good signatures and rejects a flipped sig, a changed content, a wrong key and malformed hex", async () => {
    await initNostrSigning();
    const ev = signNostrEvent(template, sk);
    expect(verifyNostrSignature(ev)).toBe(true);
    expect(schnorr.verify(hexToBytes(ev.sig), hexToBytes(ev.id), hexToBytes(ev.pubkey))).toBe(true);
    expect(verifyNostrSignature({ ...ev, sig: (ev.sig[0] === "0" ? "1" : "0") + ev.sig.slice(1) })).toBe(false);
    expect(verifyNostrSignature({ ...ev, content: "changed" })).toBe(false);
    expect(verifyNostrSignature({ ...ev, pubkey: getPublicKey(hexToBytes("11".repeat(32))) })).toBe(false);
    expect(verifyNostrSignature({ ...ev, sig: "zz" })).toBe(false);
  });
});
