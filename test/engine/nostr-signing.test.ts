import { describe, it, expect } from "vitest";
import { schnorr } from "@noble/curves/secp256k1.js";
import { bytesToHex, hexToBytes } from "@noble/hashes/utils.js";
import { getEventHash, getPublicKey } from "nostr-tools/pure";
import { initNostrSigning, nostrSigningBackend, nostrSigningFallbackReason, signNostrEvent, verifyNostrSignature, publicKeyHex } from "../../src/engine/nostr-signing.ts";
import { nativeAvailable, nativeUnavailableReason } from "../../src/nostr/secp256k1-native.ts";
import { generateMarmotKeyPackage } from "../../src/engine/identity.ts";
import { buildKeyPackageEvent, buildKeyPackageRelayListEvent } from "../../src/engine/mip00-keypackages.ts";
import { createRng } from "../../src/sim/random.ts";
import { RELAYS, T0 } from "./helpers.ts";

/** The native addon is optional (built only where libsecp256k1-dev is installed; off with MARMOT_NO_NATIVE=1). */
const NATIVE = nativeAvailable();
const SKIP_WHY = NATIVE ? "" : ` (skipped: native addon not in use, ${nativeUnavailableReason() ?? "unknown reason"})`;

const sk = hexToBytes("3f".repeat(32));
const template = { kind: 445, created_at: 1_700_000_000, tags: [["h", "ab".repeat(32)]], content: "hello" };

describe("nostr-signing (native libsecp256k1, then WASM, then JS)", () => {
  it("uses the native backend when the addon is built, else WASM (this environment has nostr-wasm)", async () => {
    const expected = NATIVE ? "native-libsecp256k1" : "wasm-libsecp256k1";
    expect(await initNostrSigning()).toBe(expected);
    expect(nostrSigningBackend()).toBe(expected);
    if (NATIVE) expect(nostrSigningFallbackReason()).toBeUndefined();
    else expect(nostrSigningFallbackReason()).toMatch(/native libsecp256k1 unavailable/);
  });

  it.skipIf(!NATIVE)(`native: the same aux bytes give the same signature as pure-JS BIP-340; no aux gives fresh valid signatures${SKIP_WHY}`, async () => {
    expect(await initNostrSigning()).toBe("native-libsecp256k1");
    for (let i = 0; i < 20; i++) {
      const key = hexToBytes(bytesToHex(new Uint8Array(32).fill(i + 1)));
      const aux = new Uint8Array(32).fill(i * 7);
      const t = { ...template, content: `m${i}` };
      const ev = signNostrEvent(t, key, aux);
      expect(ev.pubkey).toBe(getPublicKey(key));
      expect(publicKeyHex(key)).toBe(ev.pubkey);
      expect(ev.id).toBe(getEventHash(ev));
      expect(ev.sig).toBe(bytesToHex(schnorr.sign(hexToBytes(ev.id), key, aux)));
      expect(verifyNostrSignature(ev)).toBe(true);
    }
    const a = signNostrEvent(template, sk);
    const b = signNostrEvent(template, sk);
    expect(a.sig).not.toBe(b.sig);
    for (const e of [a, b]) expect(schnorr.verify(hexToBytes(e.sig), hexToBytes(e.id), hexToBytes(e.pubkey))).toBe(true);
  });

  it.skipIf(!NATIVE)(`native: the engine's seeded signers are reproducible (same seed, same signature) and match the pure-JS signature${SKIP_WHY}`, async () => {
    expect(await initNostrSigning()).toBe("native-libsecp256k1");
    const seeded = (seed: string): ((n: number) => Uint8Array) => {
      const rng = createRng(seed);
      return (n) => rng.bytes(n);
    };
    const list = (seed: string) => buildKeyPackageRelayListEvent(sk, RELAYS, T0, seeded(seed));
    const a = list("native-seeded");
    const b = list("native-seeded");
    expect(a.sig).toBe(b.sig);
    expect(list("native-seeded-other").sig).not.toBe(a.sig);
    expect(a.sig).toBe(bytesToHex(schnorr.sign(hexToBytes(a.id), sk, seeded("native-seeded")(32))));
    const kp = await generateMarmotKeyPackage({ pubkey: getPublicKey(sk), now: T0, randomBytes: seeded("kp") });
    const kpEvent = (seed: string) => buildKeyPackageEvent({ keyPackage: kp.publicPackage, secretKey: sk, relays: RELAYS, d: "ab".repeat(32), now: T0, randomBytes: seeded(seed) });
    const [k1, k2] = [await kpEvent("kp-sig"), await kpEvent("kp-sig")];
    expect(k1.id).toBe(k2.id);
    expect(k1.sig).toBe(k2.sig);
    expect(verifyNostrSignature(k1)).toBe(true);
    expect(schnorr.verify(hexToBytes(k1.sig), hexToBytes(k1.id), hexToBytes(k1.pubkey))).toBe(true);
  });

  it("refuses an invalid secret key on every backend (the JS path throws for it)", () => {
    expect(() => signNostrEvent(template, new Uint8Array(32))).toThrow();
    expect(() => signNostrEvent(template, hexToBytes("ff".repeat(32)), new Uint8Array(32))).toThrow();
    expect(() => publicKeyHex(new Uint8Array(32))).toThrow();
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
    // A changed content under a recomputed id: the signature is over another message (callers check the id itself).
    expect(verifyNostrSignature({ ...ev, content: "changed", id: getEventHash({ ...ev, content: "changed" }) })).toBe(false);
    expect(verifyNostrSignature({ ...ev, pubkey: getPublicKey(hexToBytes("11".repeat(32))) })).toBe(false);
    expect(verifyNostrSignature({ ...ev, sig: "zz" })).toBe(false);
  });
});

describe("the signer's x-only key cache", () => {
  it("gives each key object its own pubkey, also when the same array is refilled with another key", async () => {
    await initNostrSigning();
    const sk = new Uint8Array(32).fill(3);
    const a = signNostrEvent({ kind: 1, created_at: 1, tags: [], content: "a" }, sk);
    expect(a.pubkey).toBe(getPublicKey(sk));
    const again = signNostrEvent({ kind: 1, created_at: 2, tags: [], content: "b" }, sk);
    expect(again.pubkey).toBe(a.pubkey);
    sk.fill(4); // same object, another key
    const b = signNostrEvent({ kind: 1, created_at: 3, tags: [], content: "c" }, sk);
    expect(b.pubkey).toBe(getPublicKey(sk));
    expect(b.pubkey).not.toBe(a.pubkey);
    expect(verifyNostrSignature(b)).toBe(true);
    expect(publicKeyHex(sk)).toBe(getPublicKey(sk));
  });
});
