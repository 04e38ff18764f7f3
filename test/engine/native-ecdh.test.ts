import { describe, it, expect } from "vitest";
import { secp256k1 } from "@noble/curves/secp256k1.js";
import { bytesToHex, hexToBytes } from "@noble/hashes/utils.js";
import { getPublicKey } from "nostr-tools/pure";
import { ecdhXonly, nativeAvailable, nativeUnavailableReason } from "../../src/nostr/secp256k1-native.ts";
import { createRng } from "../../src/sim/random.ts";

const NATIVE = nativeAvailable();
const SKIP_WHY = NATIVE ? "" : ` (skipped: native addon not in use, ${nativeUnavailableReason() ?? "unknown reason"})`;

describe("native x-only ECDH (ecdhXonly, libsecp256k1 secp256k1_ecdh)", () => {
  it.skipIf(!NATIVE)(`returns the x coordinate of sk·P for P the even-y point, as @noble/curves computes it${SKIP_WHY}`, () => {
    const rng = createRng("native-ecdh");
    for (let i = 0; i < 30; i++) {
      const a = rng.bytes(32);
      const b = rng.bytes(32);
      const pub = getPublicKey(b);
      const expected = bytesToHex(secp256k1.getSharedSecret(a, hexToBytes(`02${pub}`)).subarray(1, 33));
      expect(bytesToHex(ecdhXonly(a, hexToBytes(pub))!)).toBe(expected);
    }
  });

  it.skipIf(!NATIVE)(`refuses bad input: an off-curve x is undefined, a bad secret key or a wrong length a typed error${SKIP_WHY}`, () => {
    const sk = new Uint8Array(32).fill(2);
    expect(ecdhXonly(sk, hexToBytes("ff".repeat(32)))).toBeUndefined();
    expect(ecdhXonly(sk, new Uint8Array(32))).toBeUndefined();
    const pub = hexToBytes(getPublicKey(sk));
    expect(() => ecdhXonly(new Uint8Array(32), pub)).toThrow(expect.objectContaining({ code: "NATIVE_SECP256K1_BAD_ARGUMENT" }));
    expect(() => ecdhXonly(hexToBytes("fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141"), pub)).toThrow(expect.objectContaining({ code: "NATIVE_SECP256K1_BAD_ARGUMENT" }));
    expect(() => ecdhXonly(sk, pub.subarray(1))).toThrow(expect.objectContaining({ code: "NATIVE_SECP256K1_BAD_ARGUMENT", details: expect.objectContaining({ argument: "xonlyPub32" }) }));
  });

  it.skipIf(NATIVE)("without the addon, says why with NATIVE_SECP256K1_UNAVAILABLE", () => {
    expect(() => ecdhXonly(new Uint8Array(32).fill(2), new Uint8Array(32))).toThrow(expect.objectContaining({ code: "NATIVE_SECP256K1_UNAVAILABLE" }));
  });
});
