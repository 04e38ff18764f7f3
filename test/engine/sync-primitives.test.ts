/**
 * The engine's provider for ts-mls (src/engine/sync-primitives.ts) against ts-mls's default
 * ciphersuite 0x0001: byte-equal digests, MACs, HKDF outputs, MLS exporter keys, KeyPackageRefs and
 * Ed25519 signatures, and the same verification verdicts.
 */
import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { makeKeyPackageRef, mlsExporter } from "ts-mls";
import { getMarmotCiphersuite, generateMarmotKeyPackage } from "../../src/engine/identity.ts";
import { CryptoError } from "ts-mls";
import { aes128GcmDecrypt, aes128GcmEncrypt, ed25519Signature, engineCiphersuite, generateEd25519, signEd25519, syncHkdfSha256, syncSha256, verifyEd25519 } from "../../src/engine/sync-primitives.ts";

const bytes = (max: number) => fc.uint8Array({ maxLength: max });

describe("sync primitives are byte-equal to ts-mls's default ciphersuite", () => {
  it("SHA-256, HMAC, verifyMac", async () => {
    const cs = await getMarmotCiphersuite();
    await fc.assert(
      // WebCrypto refuses zero-length HMAC keys, so the comparison starts at one byte.
      fc.asyncProperty(bytes(300), fc.uint8Array({ minLength: 1, maxLength: 80 }), async (data, key) => {
        expect(await syncSha256.digest(data)).toEqual(await cs.hash.digest(data));
        const mac = await cs.hash.mac(key, data);
        expect(await syncSha256.mac(key, data)).toEqual(mac);
        expect(await syncSha256.verifyMac(key, mac, data)).toBe(true);
        const bad = mac.slice();
        bad[0]! ^= 1;
        expect(await syncSha256.verifyMac(key, bad, data)).toBe(false);
        expect(await syncSha256.verifyMac(key, mac.subarray(0, 31), data)).toBe(false);
      }),
      { numRuns: 100 },
    );
  });

  it("HKDF extract (salts of the hash length, as MLS uses) and expand", async () => {
    const cs = await getMarmotCiphersuite();
    expect(syncHkdfSha256.size).toBe(cs.kdf.size);
    await fc.assert(
      // @hpke/core (the default KDF) takes only salts of the hash length; MLS extracts always use one.
      fc.asyncProperty(fc.uint8Array({ minLength: 32, maxLength: 32 }), bytes(64), bytes(100), fc.integer({ min: 1, max: 255 }), async (salt, ikm, info, len) => {
        const prk = await cs.kdf.extract(salt, ikm);
        expect(await syncHkdfSha256.extract(salt, ikm)).toEqual(prk);
        expect(await syncHkdfSha256.expand(prk, info, len)).toEqual(await cs.kdf.expand(prk, info, len));
      }),
      { numRuns: 100 },
    );
  });

  it("MLS exporter keys and KeyPackageRefs", async () => {
    const cs = await getMarmotCiphersuite();
    const sync = engineCiphersuite(cs);
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ minLength: 32, maxLength: 32 }), fc.constantFrom("marmot", "nostr"), bytes(40), async (secret, label, context) => {
        expect(await mlsExporter(secret, label, context, 32, sync)).toEqual(await mlsExporter(secret, label, context, 32, cs));
      }),
      { numRuns: 50 },
    );
    const { publicPackage } = await generateMarmotKeyPackage({ pubkey: "ab".repeat(32), now: 1_700_000_000 });
    expect(await makeKeyPackageRef(publicPackage, syncSha256)).toEqual(await makeKeyPackageRef(publicPackage, cs.hash));
  });

  it("Ed25519 verification agrees with ts-mls's verifier, and refuses what it refuses", async () => {
    const cs = await getMarmotCiphersuite();
    for (let i = 0; i < 10; i++) {
      const { signKey, publicKey } = await cs.signature.keygen();
      const msg = crypto.getRandomValues(new Uint8Array(10 + i * 37));
      const sig = await cs.signature.sign(signKey, msg);
      expect(verifyEd25519(publicKey, msg, sig)).toBe(true);
      expect(await cs.signature.verify(publicKey, msg, sig)).toBe(true);
      const otherMsg = msg.slice();
      otherMsg[0]! ^= 0x80;
      expect(verifyEd25519(publicKey, otherMsg, sig)).toBe(false);
      const otherSig = sig.slice();
      otherSig[5]! ^= 1;
      expect(verifyEd25519(publicKey, msg, otherSig)).toBe(false);
      const other = await cs.signature.keygen();
      expect(verifyEd25519(other.publicKey, msg, sig)).toBe(false);
      expect(verifyEd25519(publicKey.subarray(0, 31), msg, sig)).toBe(false);
      expect(verifyEd25519(publicKey, msg, sig.subarray(0, 63))).toBe(false);
      // Not a point on the curve: refused, not thrown.
      expect(verifyEd25519(new Uint8Array(32).fill(0xff), msg, sig)).toBe(false);
    }
  });

  it("Ed25519 signatures are the default signer's bytes, for PKCS#8 and raw-seed keys, on a cold and a warm key cache", async () => {
    const cs = await getMarmotCiphersuite();
    await fc.assert(
      fc.asyncProperty(bytes(600), fc.boolean(), async (msg, pkcs8) => {
        const pair = pkcs8 ? await cs.signature.keygen() : generateEd25519();
        const expected = await cs.signature.sign(pair.signKey, msg);
        expect(signEd25519(pair.signKey, msg)).toEqual(expected); // cold (PKCS#8) or cached at keygen (seed)
        expect(signEd25519(pair.signKey, msg)).toEqual(expected); // warm
        expect(await ed25519Signature.sign(pair.signKey, msg)).toEqual(expected);
        expect(await ed25519Signature.verify(pair.publicKey, msg, expected)).toBe(true);
        expect(await cs.signature.verify(pair.publicKey, msg, expected)).toBe(true);
      }),
      { numRuns: 60 },
    );
  });

  it("the key cache follows the bytes, not the array: an array refilled with another key signs with that key", async () => {
    const cs = await getMarmotCiphersuite();
    const a = generateEd25519();
    const b = generateEd25519();
    const key = a.signKey.slice();
    const msg = new TextEncoder().encode("which key?");
    expect(verifyEd25519(a.publicKey, msg, signEd25519(key, msg))).toBe(true);
    key.set(b.signKey);
    const sig = signEd25519(key, msg);
    expect(verifyEd25519(b.publicKey, msg, sig)).toBe(true);
    expect(verifyEd25519(a.publicKey, msg, sig)).toBe(false);
    expect(sig).toEqual(await cs.signature.sign(b.signKey, msg));
  });

  it("keygen gives a 32-byte seed and its public key; malformed signing keys are refused as ts-mls refuses them", async () => {
    const cs = await getMarmotCiphersuite();
    const { signKey, publicKey } = await ed25519Signature.keygen();
    expect(signKey.length).toBe(32);
    expect(publicKey.length).toBe(32);
    const msg = new Uint8Array([1, 2, 3]);
    // ts-mls's default signer takes the same seed (wrapped in PKCS#8) and yields the same signature.
    expect(await cs.signature.sign(signKey, msg)).toEqual(await ed25519Signature.sign(signKey, msg));
    for (const bad of [new Uint8Array(0), new Uint8Array(31), new Uint8Array(48).fill(7)]) {
      await expect(ed25519Signature.sign(bad, msg)).rejects.toThrow();
      await expect(cs.signature.sign(bad, msg)).rejects.toThrow();
    }
  });

  it("AES-128-GCM (the MLS AEAD) is byte-equal to ts-mls's, both ways, and refuses what it refuses", async () => {
    const cs = await getMarmotCiphersuite();
    const e = engineCiphersuite(cs);
    await fc.assert(
      fc.asyncProperty(
        fc.uint8Array({ minLength: 16, maxLength: 16 }),
        fc.uint8Array({ minLength: 12, maxLength: 12 }),
        fc.option(bytes(40), { nil: undefined }),
        bytes(700),
        async (key, nonce, aad, plaintext) => {
          const ct = await cs.hpke.encryptAead(key, nonce, aad, plaintext);
          expect(await e.hpke.encryptAead(key, nonce, aad, plaintext)).toEqual(ct);
          expect(await e.hpke.decryptAead(key, nonce, aad, ct)).toEqual(plaintext);
          expect(await cs.hpke.decryptAead(key, nonce, aad, await e.hpke.encryptAead(key, nonce, aad, plaintext))).toEqual(plaintext);
          const bad = ct.slice();
          bad[bad.length - 1]! ^= 1;
          await expect(e.hpke.decryptAead(key, nonce, aad, bad)).rejects.toBeInstanceOf(CryptoError);
          await expect(cs.hpke.decryptAead(key, nonce, aad, bad)).rejects.toBeInstanceOf(CryptoError);
        },
      ),
      { numRuns: 80 },
    );
    const key = new Uint8Array(16).fill(1);
    const nonce = new Uint8Array(12).fill(2);
    const ct = aes128GcmEncrypt(key, nonce, new Uint8Array([9]), new Uint8Array([1, 2, 3]));
    expect(() => aes128GcmDecrypt(key, nonce, new Uint8Array([8]), ct)).toThrow(); // other AAD
    expect(() => aes128GcmDecrypt(key, nonce, new Uint8Array([9]), ct.subarray(0, 15))).toThrow(/shorter than its tag/);
    await expect(e.hpke.encryptAead(new Uint8Array(15), nonce, undefined, ct)).rejects.toThrow(); // bad key length
  });

  it("the engine suite keeps ts-mls's HPKE key handling, RNG and id", async () => {
    const cs = await getMarmotCiphersuite();
    const e = engineCiphersuite(cs);
    for (const k of ["seal", "open", "importPrivateKey", "importPublicKey", "exportPublicKey", "exportPrivateKey", "deriveKeyPair", "generateKeyPair", "exportSecret", "importSecret"] as const) {
      expect(e.hpke[k], k).toBe(cs.hpke[k]);
    }
    expect(e.hpke.encryptAead).not.toBe(cs.hpke.encryptAead);
    expect(e.rng).toBe(cs.rng);
    expect(e.id).toBe(cs.id);
    expect(e.hash).toBe(syncSha256);
    expect(e.kdf).toBe(syncHkdfSha256);
    expect(e.signature).toBe(ed25519Signature);
  });
});
