/**
 * The ts-mls suite of a seeded engine: every random draw ts-mls makes comes from the engine's
 * `randomBytes`, so that one seed gives byte-identical MLS messages, Welcomes and therefore event ids.
 *
 * ts-mls 2.0.0-rc.10 draws randomness in two places:
 * - `cs.rng.randomBytes`: a commit's leaf path secret, the reuse guard of every PrivateMessage, a new
 *   group's first epoch secret, PSK nonces. Here it is the engine's `randomBytes`.
 * - HPKE encapsulation (`hpke.seal`, `hpke.exportSecret`): the ephemeral key of every UpdatePath node
 *   encryption and of every Welcome's group secrets, generated inside @hpke/core from WebCrypto. Here
 *   encapsulation goes through an @hpke/core `CipherSuite` of the same algorithms (DHKEM(X25519,
 *   HKDF-SHA256), HKDF-SHA256, AES-128-GCM: ciphersuite 0x0001's HPKE) given the ephemeral key
 *   material `ekm` (32 bytes of `randomBytes`, turned into a key pair by RFC 9180 DeriveKeyPair):
 *   @hpke/core's own parameter for reproducible encapsulation. Decapsulation, key import and export,
 *   and the AEAD stay ts-mls's.
 * - `hpke.generateKeyPair` (KeyPackage init and leaf keys): DeriveKeyPair of 32 bytes of `randomBytes`.
 *
 * Nothing of HPKE is written here; the output is standard HPKE that ts-mls's default suite opens
 * (test/engine/seeded-suite.test.ts). Unseeded engines never use this module.
 */
import { Aes128Gcm, CipherSuite, DhkemX25519HkdfSha256, HkdfSha256 } from "@hpke/core";
import type { CiphersuiteImpl } from "ts-mls";

type Hpke = CiphersuiteImpl["hpke"];
type PublicKey = Parameters<Hpke["seal"]>[0];

/** A standalone copy of the bytes as an ArrayBuffer (what @hpke/core takes). */
function buf(b: Uint8Array): ArrayBuffer {
  return b.slice().buffer as ArrayBuffer;
}

/** `cs` (ciphersuite 0x0001) with ts-mls's randomness drawn from `randomBytes`. */
export function seededCiphersuite(cs: CiphersuiteImpl, randomBytes: (n: number) => Uint8Array): CiphersuiteImpl {
  if (cs.id !== 1) throw new TypeError(`seeded HPKE is set up for ciphersuite 0x0001 only, not ${cs.id}`);
  const suite = new CipherSuite({ kem: new DhkemX25519HkdfSha256(), kdf: new HkdfSha256(), aead: new Aes128Gcm() });
  const ekm = (): ArrayBuffer => buf(randomBytes(32));
  const hpke: Hpke = {
    ...cs.hpke,
    async seal(publicKey: PublicKey, plaintext: Uint8Array, info: Uint8Array, aad?: Uint8Array) {
      const r = await suite.seal({ recipientPublicKey: publicKey, info: buf(info), ekm: ekm() }, buf(plaintext), aad ? buf(aad) : new ArrayBuffer(0));
      return { ct: new Uint8Array(r.ct), enc: new Uint8Array(r.enc) };
    },
    async exportSecret(publicKey: PublicKey, exporterContext: Uint8Array, length: number, info: Uint8Array) {
      const ctx = await suite.createSenderContext({ recipientPublicKey: publicKey, info: buf(info), ekm: ekm() });
      return { enc: new Uint8Array(ctx.enc), secret: new Uint8Array(await ctx.export(buf(exporterContext), length)) };
    },
    generateKeyPair: () => cs.hpke.deriveKeyPair(randomBytes(32)),
  };
  return { ...cs, hpke, rng: { randomBytes } };
}
