import { describe, it, expect } from "vitest";
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import fc from "fast-check";
import { bytesToHex, hexToBytes } from "@noble/hashes/utils.js";
import { encrypt as nip44Encrypt, getConversationKey } from "nostr-tools/nip44";
import { unwrapEvent, wrapEvent } from "nostr-tools/nip59";
import { getEventHash, getPublicKey, verifyEvent } from "nostr-tools/pure";
import { conversationKey, ecdhBackend, ecdhFallbackReason, isValidSecretKey, Nip44KeyRing } from "../../src/engine/nip44-conversation.ts";
import { nativeAvailable, nativeUnavailableReason } from "../../src/nostr/secp256k1-native.ts";
import { sealRumor, unwrapWelcome, wrapSeal } from "../../src/engine/mip02-welcome.ts";
import { initNostrSigning } from "../../src/engine/nostr-signing.ts";
import type { Rumor } from "../../src/engine/api.ts";
import { createRng } from "../../src/sim/random.ts";
import { secretFor } from "./helpers.ts";

/** Published NIP-44 v2 test vectors (nip44.vectors.json, v2.valid.get_conversation_key). */
const CONVERSATION_KEY_VECTORS = [
  ["315e59ff51cb9209768cf7da80791ddcaae56ac9775eb25b6dee1234bc5d2268", "c2f9d9948dc8c7c38321e4b85c8558872eafa0641cd269db76848a6073e69133", "3dfef0ce2a4d80a25e7a328accf73448ef67096f65f79588e358d9a0eb9013f1"],
  ["a1e37752c9fdc1273be53f68c5f74be7c8905728e8de75800b94262f9497c86e", "03bb7947065dde12ba991ea045132581d0954f042c84e06d8c00066e23c1a800", "4d14f36e81b8452128da64fe6f1eae873baae2f444b02c950b90e43553f2178b"],
  ["98a5902fd67518a0c900f0fb62158f278f94a21d6f9d33d30cd3091195500311", "aae65c15f98e5e677b5050de82e3aba47a6fe49b3dab7863cf35d9478ba9f7d1", "9c00b769d5f54d02bf175b7284a1cbd28b6911b06cda6666b2243561ac96bad7"],
  ["fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364139", "0000000000000000000000000000000000000000000000000000000000000002", "8b6392dbf2ec6a2b2d5b1477fc2be84d63ef254b667cadd31bd3f444c44ae6ba"],
  ["0000000000000000000000000000000000000000000000000000000000000002", "1234567890abcdef1234567890abcdef1234567890abcdef1234567890abcdeb", "be234f46f60a250bef52a5ee34c758800c4ca8e5030bf4cc1a31d37ba2104d43"],
  ["0000000000000000000000000000000000000000000000000000000000000001", "79be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798", "3b4610cb7189beb9cc29eb3716ecc6102f1247e8f3101a03a1787d8908aeb54e"],
] as const;

/** Published NIP-44 v2 vectors whose conversation key must be refused. */
const INVALID_CONVERSATION_KEY_VECTORS = [
  ["ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff", "1234567890abcdef1234567890abcdef1234567890abcdef1234567890abcdef", "NIP44_BAD_SECRET_KEY"], // sec1 > n
  ["0000000000000000000000000000000000000000000000000000000000000000", "1234567890abcdef1234567890abcdef1234567890abcdef1234567890abcdef", "NIP44_BAD_SECRET_KEY"], // sec1 = 0
  ["fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141", "1234567890abcdef1234567890abcdef1234567890abcdef1234567890abcdef", "NIP44_BAD_SECRET_KEY"], // sec1 = n
  ["fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364139", "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff", "NIP44_BAD_PUBKEY"], // no sqrt
  ["0000000000000000000000000000000000000000000000000000000000000002", "1234567890abcdef1234567890abcdef1234567890abcdef1234567890abcdef", "NIP44_BAD_PUBKEY"], // no sqrt
  ["0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20", "0000000000000000000000000000000000000000000000000000000000000000", "NIP44_BAD_PUBKEY"], // point on the twist
  ["0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20", "eb1f7200aecaa86682376fb1c13cd12b732221e774f553b0a0857f88fa20f86d", "NIP44_BAD_PUBKEY"], // point on the twist
] as const;

const secretKeyArb = fc.uint8Array({ minLength: 32, maxLength: 32 }).filter(isValidSecretKey);

describe("NIP-44 conversation keys (native libsecp256k1, OpenSSL or nostr-tools ECDH)", () => {
  it("uses native libsecp256k1 when the addon is built, else OpenSSL's secp256k1 (this Node has it)", () => {
    expect(ecdhBackend()).toBe(nativeAvailable() ? "native-libsecp256k1" : "openssl");
    if (nativeAvailable()) expect(ecdhFallbackReason()).toBeUndefined();
  });

  it("matches the published NIP-44 v2 conversation-key vectors", () => {
    for (const [sec1, pub2, expected] of CONVERSATION_KEY_VECTORS) {
      expect(bytesToHex(conversationKey(hexToBytes(sec1), pub2))).toBe(expected);
      expect(bytesToHex(new Nip44KeyRing(hexToBytes(sec1)).conversationKey(pub2))).toBe(expected);
    }
  });

  it("with nostr-tools' v2 encrypt reproduces the published encrypt_decrypt vector", () => {
    const sec1 = hexToBytes("0000000000000000000000000000000000000000000000000000000000000001");
    const pub2 = getPublicKey(hexToBytes("0000000000000000000000000000000000000000000000000000000000000002"));
    const ck = conversationKey(sec1, pub2);
    expect(bytesToHex(ck)).toBe("c41c775356fd92eadc63ff5a0dc1da211b268cbea22316767095b2871ea1412d");
    const nonce = hexToBytes("0000000000000000000000000000000000000000000000000000000000000001");
    expect(nip44Encrypt("a", ck, nonce)).toBe("AgAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAABee0G5VSK0/9YypIObAtDKfYEAjD35uVkHyB0F4DwrcNaCXlCWZKaArsGrY6M9wnuTMxWfp1RTN9Xga8no+kF5Vsb");
  });

  it("refuses the published invalid keys with a typed error", () => {
    for (const [sec1, pub2, code] of INVALID_CONVERSATION_KEY_VECTORS) {
      expect(() => conversationKey(hexToBytes(sec1), pub2), `${sec1.slice(0, 8)} ${pub2.slice(0, 8)}`).toThrow(expect.objectContaining({ code }));
    }
    const ring = new Nip44KeyRing(secretFor("ring-bad"));
    expect(() => ring.conversationKey("zz".repeat(32))).toThrow(expect.objectContaining({ code: "NIP44_BAD_PUBKEY" }));
    expect(() => ring.conversationKey("ab".repeat(31))).toThrow(expect.objectContaining({ code: "NIP44_BAD_PUBKEY" }));
    expect(() => new Nip44KeyRing(new Uint8Array(32))).toThrow(expect.objectContaining({ code: "NIP44_BAD_SECRET_KEY" }));
  });

  it("is byte-equal to nostr-tools' getConversationKey on random keys (one-shot and key ring)", () => {
    fc.assert(
      fc.property(secretKeyArb, secretKeyArb, (a, b) => {
        const pub = getPublicKey(b);
        const expected = bytesToHex(getConversationKey(a, pub));
        expect(bytesToHex(conversationKey(a, pub))).toBe(expected);
        expect(bytesToHex(new Nip44KeyRing(a).conversationKey(pub))).toBe(expected);
        // symmetric, as ECDH must be
        expect(bytesToHex(conversationKey(b, getPublicKey(a)))).toBe(expected);
      }),
      { numRuns: 40, seed: 44 },
    );
  });

  it("the key ring's LRU is bounded, keeps recently used keys, hands out copies and skips one-time peers", () => {
    const ring = new Nip44KeyRing(secretFor("ring"), 3);
    const pubs = ["p1", "p2", "p3", "p4"].map((n) => getPublicKey(secretFor(n)));
    const first = ring.conversationKey(pubs[0]!);
    first.fill(0); // mutating a returned key must not poison the cache
    expect(bytesToHex(ring.conversationKey(pubs[0]!))).toBe(bytesToHex(getConversationKey(secretFor("ring"), pubs[0]!)));
    ring.conversationKey(pubs[1]!);
    ring.conversationKey(pubs[2]!);
    expect(ring.size).toBe(3);
    ring.conversationKey(pubs[0]!); // p1 most recent: p2 is the one evicted next
    ring.conversationKey(pubs[3]!);
    expect(ring.size).toBe(3);
    ring.conversationKey(getPublicKey(secretFor("one-time")), { cache: false });
    expect(ring.size).toBe(3);
    // still correct after evictions
    for (const p of pubs) expect(bytesToHex(ring.conversationKey(p))).toBe(bytesToHex(getConversationKey(secretFor("ring"), p)));
  });

  it("falls back to nostr-tools (noble) when OpenSSL ECDH is disabled, with the same keys", async () => {
    const script = [
      'import { conversationKey, ecdhBackend, ecdhFallbackReason } from "./src/engine/nip44-conversation.ts";',
      'import { getConversationKey } from "nostr-tools/nip44";',
      'import { getPublicKey } from "nostr-tools/pure";',
      "const a = new Uint8Array(32).fill(5), b = getPublicKey(new Uint8Array(32).fill(9));",
      "const same = Buffer.from(conversationKey(a, b)).equals(Buffer.from(getConversationKey(a, b)));",
      "console.log(JSON.stringify({ backend: ecdhBackend(), reason: ecdhFallbackReason(), same }));",
    ].join("\n");
    const { stdout } = await promisify(execFile)(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], {
      env: { ...process.env, MARMOT_NO_NATIVE: "1", MARMOT_NO_OPENSSL_ECDH: "1" },
      cwd: new URL("../..", import.meta.url).pathname,
    });
    const r = JSON.parse(stdout.trim().split("\n").at(-1)!) as { backend: string; reason: string; same: boolean };
    expect(r).toEqual({ backend: "js-noble", reason: expect.stringContaining("MARMOT_NO_OPENSSL_ECDH=1"), same: true });
  }, 30_000);

  // Each backend in its own process (the choice is made once per process): the published valid and
  // invalid vectors, and random key pairs byte-equal to nostr-tools, one-shot and through a key ring.
  const backends: [string, Record<string, string>][] = [
    ["native-libsecp256k1", {}],
    ["openssl", { MARMOT_NO_NATIVE: "1" }],
    ["js-noble", { MARMOT_NO_NATIVE: "1", MARMOT_NO_OPENSSL_ECDH: "1" }],
  ];
  for (const [name, env] of backends) {
    const skip = name === "native-libsecp256k1" && !nativeAvailable();
    it.skipIf(skip)(`the ${name} backend gives the published vectors and nostr-tools' keys on random pairs${skip ? ` (skipped: native addon not in use, ${nativeUnavailableReason() ?? "unknown reason"})` : ""}`, async () => {
      const script = [
        'import { conversationKey, ecdhBackend, Nip44KeyRing } from "./src/engine/nip44-conversation.ts";',
        'import { getConversationKey } from "nostr-tools/nip44";',
        'import { getPublicKey } from "nostr-tools/pure";',
        'import { createRng } from "./src/sim/random.ts";',
        `const valid = ${JSON.stringify(CONVERSATION_KEY_VECTORS)};`,
        `const invalid = ${JSON.stringify(INVALID_CONVERSATION_KEY_VECTORS)};`,
        'const hex = (b) => Buffer.from(b).toString("hex"), bytes = (h) => new Uint8Array(Buffer.from(h, "hex"));',
        "const bad = [];",
        "for (const [s, p, e] of valid) { if (hex(conversationKey(bytes(s), p)) !== e || hex(new Nip44KeyRing(bytes(s)).conversationKey(p)) !== e) bad.push(`valid ${s.slice(0, 8)}`); }",
        "for (const [s, p, code] of invalid) { let got = 'none'; try { conversationKey(bytes(s), p); } catch (e) { got = e.code; } if (got !== code) bad.push(`invalid ${s.slice(0, 8)} ${p.slice(0, 8)}: ${got}`); }",
        'const rng = createRng("nip44-backends");',
        "let n = 0;",
        "while (n < 60) { const a = rng.bytes(32), b = rng.bytes(32); let pb; try { pb = getPublicKey(b); getPublicKey(a); } catch { continue; } n++;",
        "  const e = hex(getConversationKey(a, pb)); if (hex(conversationKey(a, pb)) !== e || hex(new Nip44KeyRing(a).conversationKey(pb)) !== e || hex(conversationKey(b, getPublicKey(a))) !== e) bad.push(`random ${n}`); }",
        "console.log(JSON.stringify({ backend: ecdhBackend(), checked: n, bad }));",
      ].join("\n");
      const { stdout } = await promisify(execFile)(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], {
        env: { ...process.env, MARMOT_NO_NATIVE: "", MARMOT_NO_OPENSSL_ECDH: "", ...env },
        cwd: new URL("../..", import.meta.url).pathname,
      });
      const r = JSON.parse(stdout.trim().split("\n").at(-1)!) as { backend: string; checked: number; bad: string[] };
      expect(r).toEqual({ backend: name, checked: 60, bad: [] });
    }, 30_000);
  }
});

describe("NIP-59 seal and gift wrap composed by the engine, against nostr-tools nip59", () => {
  const inviterSk = secretFor("nip59-inviter");
  const inviter = getPublicKey(inviterSk);
  const recipientSk = secretFor("nip59-recipient");
  const recipient = getPublicKey(recipientSk);
  const now = 1_767_225_600;
  const rumorOf = (content: string): Rumor => {
    const unsigned = { kind: 444, pubkey: inviter, created_at: now, tags: [["e", "ab".repeat(32)], ["relays", "wss://relay.example.test"], ["encoding", "base64"]], content };
    return { ...unsigned, id: getEventHash(unsigned) };
  };

  it("nostr-tools' unwrapEvent opens what the engine wraps; seal and wrap have nip59's shape", async () => {
    await initNostrSigning();
    const rng = createRng("nip59-shape");
    const rb = (n: number): Uint8Array => rng.bytes(n);
    const rumor = rumorOf("AAEC");
    const ring = new Nip44KeyRing(inviterSk);
    const seal = sealRumor(rumor, inviterSk, recipient, now, rb, ring);
    const wrap = wrapSeal(seal, recipient, now, rb);
    expect(unwrapEvent(wrap as Parameters<typeof unwrapEvent>[0], recipientSk)).toEqual(rumor);
    // shape: the fields nostr-tools' finalizeEvent produces, seal by the sender with no tags, wrap by a one-time key with one p tag
    expect(Object.keys(seal).sort()).toEqual(["content", "created_at", "id", "kind", "pubkey", "sig", "tags"]);
    expect(Object.keys(wrap).sort()).toEqual(["content", "created_at", "id", "kind", "pubkey", "sig", "tags"]);
    expect({ kind: seal.kind, tags: seal.tags, pubkey: seal.pubkey }).toEqual({ kind: 13, tags: [], pubkey: inviter });
    expect({ kind: wrap.kind, tags: wrap.tags }).toEqual({ kind: 1059, tags: [["p", recipient]] });
    expect(wrap.pubkey).not.toBe(inviter);
    expect(verifyEvent({ ...seal })).toBe(true);
    expect(verifyEvent({ ...wrap })).toBe(true);
    for (const t of [seal.created_at, wrap.created_at]) {
      expect(t).toBeLessThanOrEqual(now);
      expect(t).toBeGreaterThan(now - 2 * 86_400);
    }
    // the same seed draws the same wrap key, nonces and timestamps
    const rng2 = createRng("nip59-shape");
    const rb2 = (n: number): Uint8Array => rng2.bytes(n);
    const seal2 = sealRumor(rumor, inviterSk, recipient, now, rb2);
    const wrap2 = wrapSeal(seal2, recipient, now, rb2);
    expect({ c: seal2.content, t: seal2.created_at }).toEqual({ c: seal.content, t: seal.created_at });
    expect({ p: wrap2.pubkey, t: wrap2.created_at }).toEqual({ p: wrap.pubkey, t: wrap.created_at });
  });

  it("the engine's unwrapWelcome opens what nostr-tools' wrapEvent wraps", () => {
    const wrap = wrapEvent({ kind: 444, created_at: now, tags: [["e", "cd".repeat(32)], ["relays", "wss://relay.example.test"], ["encoding", "base64"]], content: "AAEC" }, inviterSk, recipient);
    const ring = new Nip44KeyRing(recipientSk);
    const opened = unwrapWelcome(wrap as never, recipientSk, ring);
    expect(opened.rumor.pubkey).toBe(inviter);
    expect(opened.rumor.content).toBe("AAEC");
    expect(opened.seal.pubkey).toBe(inviter);
    expect(ring.size).toBe(1); // the inviter's key is cached, the wrap's one-time key is not
    // and without a key ring
    expect(unwrapWelcome(wrap as never, recipientSk).rumor.id).toBe(opened.rumor.id);
    // someone else cannot open it
    expect(() => unwrapWelcome(wrap as never, secretFor("nip59-other"))).toThrow(expect.objectContaining({ code: "WELCOME_NOT_FOR_US" }));
  });
});

describe("isValidSecretKey (byte comparison with the group order)", () => {
  const N = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n;
  const bytesOf = (v: bigint): Uint8Array => Uint8Array.from(Buffer.from(v.toString(16).padStart(64, "0"), "hex"));
  const inRange = (b: Uint8Array): boolean => {
    const v = BigInt(`0x${Buffer.from(b).toString("hex")}`);
    return v > 0n && v < N;
  };
  it("accepts exactly [1, n-1]", () => {
    for (const [v, ok] of [[0n, false], [1n, true], [N - 1n, true], [N, false], [N + 1n, false], [2n ** 256n - 1n, false]] as const) {
      expect(isValidSecretKey(bytesOf(v)), v.toString(16)).toBe(ok);
    }
    expect(isValidSecretKey(new Uint8Array(31).fill(1))).toBe(false);
  });
  it("agrees with the integer definition on random keys and on keys next to n", () => {
    const nearN = fc.tuple(fc.integer({ min: 0, max: 31 }), fc.integer({ min: 0, max: 255 })).map(([i, x]) => {
      const b = bytesOf(N);
      b[i] = x;
      return b;
    });
    fc.assert(
      fc.property(fc.oneof(fc.uint8Array({ minLength: 32, maxLength: 32 }), nearN), (b) => {
        expect(isValidSecretKey(b)).toBe(inRange(b));
      }),
      { numRuns: 2000 },
    );
  });
});
