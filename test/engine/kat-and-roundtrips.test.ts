import { describe, it, expect } from "vitest";
import fc from "fast-check";
import { expand } from "@noble/hashes/hkdf.js";
import { sha256 } from "@noble/hashes/sha2.js";
import { bytesToHex, concatBytes } from "@noble/hashes/utils.js";
import { getMarmotCiphersuite } from "../../src/engine/identity.ts";
import {
  buildRumor,
  decodeContentR1,
  deriveGroupEventKey,
  deriveLegacyGroupEventSecret,
  deriveMediaExporter,
  encodeRumor,
  encryptContentR0,
  encryptContentR1,
  parseRumor,
  tryDecryptContentR0,
  tryDecryptContentR1,
} from "../../src/engine/mip03-group-events.ts";
import { buildWelcomeRumor, parseWelcomeRumor, unwrapWelcome } from "../../src/engine/mip02-welcome.ts";
import { conversationKey } from "../../src/engine/nip44-conversation.ts";
import { SeenEvents } from "../../src/engine/seen-events.ts";
import { MemoryStorage } from "../../src/engine/storage-memory.ts";
import { makeEngine, secretFor, RELAYS, T0 } from "./helpers.ts";

const utf8 = new TextEncoder();

/** RFC 9420 §5.1/§8.5 by hand: ExpandWithLabel, DeriveSecret and MLS-Exporter over HKDF-SHA256 (cipher suite 0x0001). */
function vlBytes(b: Uint8Array): Uint8Array {
  if (b.length >= 64) throw new Error("this helper writes only one-byte varint lengths");
  return concatBytes(new Uint8Array([b.length]), b);
}
function expandWithLabel(secret: Uint8Array, label: string, context: Uint8Array, length: number): Uint8Array {
  const info = concatBytes(new Uint8Array([length >> 8, length & 0xff]), vlBytes(utf8.encode(`MLS 1.0 ${label}`)), vlBytes(context));
  return expand(sha256, secret, info, length);
}
function exporterByHand(exporterSecret: Uint8Array, label: string, context: string, length: number): Uint8Array {
  const derived = expandWithLabel(exporterSecret, label, new Uint8Array(0), 32);
  return expandWithLabel(derived, "exported", sha256(utf8.encode(context)), length);
}

describe("known answers: MLS exporter keys of the Marmot profile", () => {
  const secret = new Uint8Array(32).map((_, i) => i);

  it("MLS-Exporter(\"marmot\",\"group-event\",32) equals RFC 9420 §8.5 computed by hand, and its pinned value", async () => {
    const cs = await getMarmotCiphersuite();
    const key = await deriveGroupEventKey(secret, cs);
    expect(bytesToHex(key)).toBe(bytesToHex(exporterByHand(secret, "marmot", "group-event", 32)));
    expect(bytesToHex(key)).toBe(GROUP_EVENT_KEY_KAT);
  });

  it("the media exporter (\"marmot\",\"encrypted-media\") and the R0 exporter (\"nostr\",\"nostr\") too", async () => {
    const cs = await getMarmotCiphersuite();
    expect(bytesToHex(await deriveMediaExporter(secret, cs))).toBe(bytesToHex(exporterByHand(secret, "marmot", "encrypted-media", 32)));
    expect(bytesToHex(await deriveLegacyGroupEventSecret(secret, cs))).toBe(bytesToHex(exporterByHand(secret, "nostr", "nostr", 32)));
  });
});

/** Pinned: MLS-Exporter("marmot","group-event",32) with exporter_secret = 00 01 02 … 1f. */
const GROUP_EVENT_KEY_KAT = "9cd1c46ce77ddc934668779dfd6ca83c978fc10b1e0a721e07258d35a5732d19";

describe("round trips: decode(encode(x)) = x", () => {
  it("R1 445 content (ChaCha20-Poly1305, nonce in front)", () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 32, maxLength: 32 }), fc.uint8Array({ minLength: 12, maxLength: 12 }), fc.uint8Array({ maxLength: 2000 }), (key, nonce, plain) => {
        const out = tryDecryptContentR1(key, decodeContentR1(encryptContentR1(key, plain, nonce)));
        expect(out && bytesToHex(out)).toBe(bytesToHex(plain));
      }),
      { numRuns: 100, seed: 3 },
    );
  });

  it("R0 445 content (NIP-44 v2 under the exporter's self-conversation key)", () => {
    const ck = conversationKey(secretFor("r0-rt"), "79be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798");
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 32, maxLength: 32 }), fc.uint8Array({ minLength: 1, maxLength: 2000 }), (nonce, plain) => {
        const out = tryDecryptContentR0(ck, encryptContentR0(ck, plain, nonce));
        expect(out && bytesToHex(out)).toBe(bytesToHex(plain));
      }),
      { numRuns: 60, seed: 4 },
    );
  });

  it("inner rumors (unsigned Nostr events with a verified id and author)", () => {
    const pubkey = "ab".repeat(32);
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 65535 }), fc.string(), fc.array(fc.array(fc.string(), { minLength: 1, maxLength: 4 }), { maxLength: 5 }), fc.integer({ min: 0, max: 2 ** 32 - 1 }), (kind, content, tags, now) => {
        const r = buildRumor(pubkey, { kind, content, tags }, now);
        expect(parseRumor(encodeRumor(r), pubkey)).toEqual(r);
      }),
      { numRuns: 100, seed: 5 },
    );
  });

  it("Welcome rumors (kind 444: e, relays, encoding, client and the MLS Welcome)", async () => {
    const alice = await makeEngine("rt-w-a");
    const bob = await makeEngine("rt-w-b");
    const g = await alice.createGroup({ name: "rt", relays: RELAYS, now: T0 });
    const kp = await bob.createKeyPackage({ relays: RELAYS, now: T0 });
    const conf = await alice.confirmCommit((await alice.inviteMembers(g.groupId, [kp], T0 + 1)).id);
    const parsed = parseWelcomeRumor(unwrapWelcome(conf.welcomes[0]!, secretFor("rt-w-b")).rumor, "R1");
    const relayArb = fc.constantFrom("wss://a.example", "ws://127.0.0.1:7777", "wss://relay.example.test/path");
    await fc.assert(
      fc.asyncProperty(fc.array(relayArb, { minLength: 1, maxLength: 3 }), fc.option(fc.string({ minLength: 1, maxLength: 20 }), { nil: undefined }), fc.integer({ min: 0, max: 2 ** 32 - 1 }), async (relays, client, now) => {
        const p: Parameters<typeof buildWelcomeRumor>[0] = { inviterPubkey: alice.pubkey, welcome: parsed.welcome, keyPackageEventId: kp.id, relays, now, profile: "R1" };
        if (client !== undefined) p.client = client;
        const back = parseWelcomeRumor(buildWelcomeRumor(p), "R1");
        expect(back.keyPackageEventId).toBe(kp.id);
        expect(back.relays).toEqual(relays);
        expect(back.client).toBe(client);
        expect(back.outOfBandTree).toBe(false);
        expect(bytesToHex(Buffer.from(buildWelcomeRumor({ ...p, welcome: back.welcome }).content, "base64"))).toBe(bytesToHex(Buffer.from(buildWelcomeRumor(p).content, "base64")));
      }),
      { numRuns: 25, seed: 6 },
    );
  });

  it("the processed-event memory (stored segments) remembers what it was given, within its bound", async () => {
    const hex32 = fc.uint8Array({ minLength: 32, maxLength: 32 }).map(bytesToHex);
    await fc.assert(
      fc.asyncProperty(fc.array(fc.tuple(fc.boolean(), hex32), { maxLength: 120 }), fc.integer({ min: 1, max: 16 }), async (entries, seg) => {
        const storage = new MemoryStorage();
        const a = new SeenEvents(storage, { segmentSize: seg, maxEntries: 1000 });
        for (const [isId, h] of entries) {
          if (isId) a.addId(h);
          else a.addContent(h);
          if (h.endsWith("0")) await a.flush(); // flush at irregular points
        }
        await a.flush();
        const b = new SeenEvents(storage, { segmentSize: seg, maxEntries: 1000 });
        await b.load();
        for (const [isId, h] of entries) expect(isId ? b.hasId(h) : b.hasContent(h)).toBe(true);
        expect(b.size).toBe(a.size);
      }),
      { numRuns: 40, seed: 7 },
    );
  });
});
