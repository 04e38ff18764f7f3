import { describe, it, expect, beforeAll } from "vitest";
import fc from "fast-check";
import { sha256 } from "@noble/hashes/sha2.js";
import { bytesToHex } from "@noble/hashes/utils.js";
import { defaultCredentialTypes, encode, generateKeyPackage, mlsMessageEncoder, protocolVersions, wireformats, type KeyPackage } from "ts-mls";
import type { NostrEvent } from "../../src/engine/api.ts";
import { getMarmotCiphersuite, lastResortExtension, marmotCapabilities, makeCredential } from "../../src/engine/identity.ts";
import {
  KIND_KEY_PACKAGE,
  KIND_KEY_PACKAGE_LEGACY,
  KIND_KEY_PACKAGE_RELAYS,
  KeyPackageError,
  buildKeyPackageDeletionEvent,
  buildKeyPackageEvent,
  buildKeyPackageRelayListEvent,
  bytesToBase64,
  computeKeyPackageRef,
  decodeKeyPackageContent,
  encodeKeyPackage,
  extensionTagValues,
  isValidRelayUrl,
  parseKeyPackageEvent,
  parseKeyPackageRelayListEvent,
  selectKeyPackage,
  strictBase64Decode,
} from "../../src/engine/mip00-keypackages.ts";
import { D_A, NOW, PK_A, PK_B, RELAYS, SK_A, SK_B, builtEvent, fixedKeyPackage, resign, setTag } from "./helpers.ts";

async function codeOf(p: Promise<unknown> | (() => unknown)): Promise<string> {
  try {
    await (typeof p === "function" ? p() : p);
  } catch (e) {
    if (e instanceof KeyPackageError) return e.code;
    throw e;
  }
  throw new Error("expected a KeyPackageError, nothing was thrown");
}

let good: NostrEvent;
let kpA: KeyPackage;

beforeAll(async () => {
  const b = await builtEvent();
  good = b.event;
  kpA = b.keyPackage;
});

describe("KeyPackageRef", () => {
  it("equals RefHash(\"MLS 1.0 KeyPackage Reference\", TLS KeyPackage) recomputed with @noble/hashes", async () => {
    const bytes = encodeKeyPackage(kpA);
    const label = new TextEncoder().encode("MLS 1.0 KeyPackage Reference");
    // RefHashInput = opaque label<V> || opaque value<V>; the label is 28 bytes (1-byte varint),
    // the KeyPackage is over 63 bytes (2-byte varint 0b01).
    expect(label.length).toBe(28);
    expect(bytes.length).toBeGreaterThan(63);
    expect(bytes.length).toBeLessThan(16384);
    const input = Uint8Array.from([label.length, ...label, 0x40 | (bytes.length >> 8), bytes.length & 0xff, ...bytes]);
    const expected = bytesToHex(sha256(input));
    expect(await computeKeyPackageRef(kpA)).toBe(expected);
    expect(good.tags.find((t) => t[0] === "i")?.[1]).toBe(expected);
  });

  it("is stable for a fixed seed (deterministic generation)", async () => {
    const again = await fixedKeyPackage(PK_A, "kp-a");
    expect(bytesToHex(encodeKeyPackage(again.publicPackage))).toBe(bytesToHex(encodeKeyPackage(kpA)));
  });
});

describe("buildKeyPackageEvent (R1)", () => {
  it("emits kind 30443 with MDK 0.8's tag order and base64 of the bare KeyPackage", async () => {
    expect(good.kind).toBe(KIND_KEY_PACKAGE);
    expect(good.pubkey).toBe(PK_A);
    expect(good.created_at).toBe(NOW);
    expect(good.tags.map((t) => t[0])).toEqual(["d", "mls_protocol_version", "mls_ciphersuite", "mls_extensions", "mls_proposals", "relays", "i", "client", "encoding"]);
    expect(good.tags[0]).toEqual(["d", D_A]);
    expect(good.tags[1]).toEqual(["mls_protocol_version", "1.0"]);
    expect(good.tags[2]).toEqual(["mls_ciphersuite", "0x0001"]);
    expect(good.tags[3]).toEqual(["mls_extensions", "0x000a", "0xf2ee"]);
    expect(good.tags[4]).toEqual(["mls_proposals", "0x000a"]);
    expect(good.tags[5]).toEqual(["relays", ...RELAYS]);
    expect(good.tags[8]).toEqual(["encoding", "base64"]);
    expect(good.content).toBe(Buffer.from(encodeKeyPackage(kpA)).toString("base64"));
  });

  it("never lists GREASE or default extensions in mls_extensions", async () => {
    const kp = { ...kpA, leafNode: { ...kpA.leafNode, capabilities: { ...kpA.leafNode.capabilities, extensions: [0x0a0a, 0x0003, 0x000a, 0xf2ee, 0xeaea] } } };
    expect(extensionTagValues(kp)).toEqual(["0x000a", "0xf2ee"]);
  });

  it("quirks: omitted mls_proposals, NIP-70 `-`, hex content", async () => {
    const { event: noProps } = await builtEvent({ omitMlsProposals: true });
    expect(noProps.tags.some((t) => t[0] === "mls_proposals")).toBe(false);
    const { event: prot } = await builtEvent({ protectedTag: true });
    expect(prot.tags.map((t) => t[0])).toContain("-");
    const { event: hex } = await builtEvent({ hexContent: true });
    expect(hex.tags.find((t) => t[0] === "encoding")).toEqual(["encoding", "hex"]);
  });

  it("refuses a foreign credential, a bad d, no relays, and R2", async () => {
    const kpB = (await fixedKeyPackage(PK_B, "kp-b")).publicPackage;
    expect(await codeOf(builtEvent({ keyPackage: kpB }))).toBe("KP_IDENTITY_MISMATCH");
    expect(await codeOf(builtEvent({ d: "client-1" }))).toBe("KP_BAD_D");
    expect(await codeOf(builtEvent({ relays: [] }))).toBe("KP_BAD_RELAYS");
    expect(await codeOf(builtEvent({ relays: ["https://x"] }))).toBe("KP_BAD_RELAYS");
    expect(await codeOf(builtEvent({ profile: "R2" }))).toBe("KP_PROFILE_UNSUPPORTED");
  });
});

describe("parseKeyPackageEvent: accepted shapes", () => {
  it("reads a built 30443", async () => {
    const p = await parseKeyPackageEvent(good, { now: NOW + 10 });
    expect(p.kind).toBe(30443);
    expect(p.d).toBe(D_A);
    expect(p.ref).toBe(good.tags.find((t) => t[0] === "i")?.[1]);
    expect(p.relays).toEqual(RELAYS);
    expect(p.lastResort).toBe(true);
    expect(p.client).toBe("marmot-harness/test");
    expect(p.protected).toBe(false);
    expect(p.encoding).toBe("base64");
    expect(bytesToHex(encodeKeyPackage(p.keyPackage))).toBe(bytesToHex(encodeKeyPackage(kpA)));
  });

  it("reads a non-last_resort KeyPackage and the NIP-70 flag", async () => {
    const kp = (await fixedKeyPackage(PK_A, "single-use", { lastResort: false })).publicPackage;
    const { event } = await builtEvent({ keyPackage: kp, protectedTag: true });
    const p = await parseKeyPackageEvent(event);
    expect(p.lastResort).toBe(false);
    expect(p.protected).toBe(true);
  });

  it("accepts uppercase d and i (MDK accepts either case) and GREASE in mls_extensions", async () => {
    const i = good.tags.find((t) => t[0] === "i")![1]!;
    let tags = setTag(good.tags, "d", [D_A.toUpperCase()]);
    tags = setTag(tags, "i", [i.toUpperCase()]);
    tags = setTag(tags, "mls_extensions", ["0x000a", "0xF2EE", "0x0a0a"]);
    const p = await parseKeyPackageEvent(resign(good, SK_A, { tags }));
    expect(p.d).toBe(D_A.toUpperCase());
    expect(p.ref).toBe(i);
  });

  it("reads legacy 443: R0-built with base64, hex without encoding tag, and hex with encoding=hex", async () => {
    const r0 = (await builtEvent({ profile: "R0" })).event;
    expect(r0.kind).toBe(KIND_KEY_PACKAGE_LEGACY);
    expect(r0.tags.map((t) => t[0])).toEqual(["mls_protocol_version", "mls_ciphersuite", "mls_extensions", "encoding", "relays", "client"]);
    expect((await parseKeyPackageEvent(r0)).encoding).toBe("base64");
    const hexNoTag = (await builtEvent({ profile: "R0", hexContent: true })).event;
    expect(hexNoTag.tags.some((t) => t[0] === "encoding")).toBe(false);
    const p = await parseKeyPackageEvent(hexNoTag);
    expect(p.encoding).toBe("hex");
    expect(p.d).toBeUndefined();
    expect(p.ref).toBe(await computeKeyPackageRef(kpA));
    const hexTagged = resign(hexNoTag, SK_A, { tags: [...hexNoTag.tags, ["encoding", "hex"]] });
    expect((await parseKeyPackageEvent(hexTagged)).encoding).toBe("hex");
    // R0 profile also reads it.
    expect((await parseKeyPackageEvent(hexNoTag, { profile: "R0" })).kind).toBe(443);
  });

  it("R0 profile reads a 30443 without mls_proposals (R1-only rule)", async () => {
    const { event } = await builtEvent({ omitMlsProposals: true });
    expect((await parseKeyPackageEvent(event, { profile: "R0" })).kind).toBe(30443);
  });
});

describe("parseKeyPackageEvent: one rejection per rule", () => {
  const withTags = (tags: string[][]) => resign(good, SK_A, { tags });

  it("MIP00-KP-02/03/04/05/07/08/10/11: each required tag missing → KP_MISSING_TAG", async () => {
    for (const name of ["d", "mls_protocol_version", "mls_ciphersuite", "mls_extensions", "mls_proposals", "relays", "i", "encoding"]) {
      const ev = withTags(setTag(good.tags, name, undefined));
      try {
        await parseKeyPackageEvent(ev);
        expect.unreachable(`missing ${name} accepted`);
      } catch (e) {
        expect(e).toBeInstanceOf(KeyPackageError);
        expect((e as KeyPackageError).code).toBe("KP_MISSING_TAG");
        expect((e as KeyPackageError).details.tag).toBe(name);
      }
    }
  });

  it("repeated singleton tag → KP_DUPLICATE_TAG", async () => {
    expect(await codeOf(parseKeyPackageEvent(withTags([...good.tags, ["d", "aa".repeat(32)]])))).toBe("KP_DUPLICATE_TAG");
    expect(await codeOf(parseKeyPackageEvent(withTags([...good.tags, ["relays", "wss://x"]])))).toBe("KP_DUPLICATE_TAG");
  });

  it("KP-02 wrong d → KP_BAD_D", async () => {
    for (const d of ["", "abc", "d0".repeat(31), "zz".repeat(32), "d0".repeat(33)]) {
      expect(await codeOf(parseKeyPackageEvent(withTags(setTag(good.tags, "d", [d]))))).toBe("KP_BAD_D");
    }
    expect(await codeOf(parseKeyPackageEvent(withTags(setTag(good.tags, "d", [D_A, "extra"]))))).toBe("KP_BAD_TAG_ARITY");
  });

  it("KP-03 mls_protocol_version other than 1.0 → KP_BAD_VERSION", async () => {
    expect(await codeOf(parseKeyPackageEvent(withTags(setTag(good.tags, "mls_protocol_version", ["1"]))))).toBe("KP_BAD_VERSION");
  });

  it("KP-04 ciphersuite other than 0x0001 → KP_BAD_CIPHERSUITE", async () => {
    for (const v of [["0x0002"], ["1"], ["0x0001", "0x0003"]]) {
      expect(await codeOf(parseKeyPackageEvent(withTags(setTag(good.tags, "mls_ciphersuite", v))))).toBe("KP_BAD_CIPHERSUITE");
    }
  });

  it("KP-05/06 mls_extensions without 0xf2ee or 0x000a, with a default extension, or malformed → KP_EXTENSIONS", async () => {
    for (const v of [["0x000a"], ["0xf2ee"], ["0x000a", "0xf2ee", "0x0003"], ["0x000a", "f2ee"], ["0x000a", "0xf2ee0"]]) {
      expect(await codeOf(parseKeyPackageEvent(withTags(setTag(good.tags, "mls_extensions", v))))).toBe("KP_EXTENSIONS");
    }
  });

  it("KP-07 mls_proposals without 0x000a → KP_PROPOSALS", async () => {
    expect(await codeOf(parseKeyPackageEvent(withTags(setTag(good.tags, "mls_proposals", ["0x0002"]))))).toBe("KP_PROPOSALS");
    expect(await codeOf(parseKeyPackageEvent(withTags(setTag(good.tags, "mls_proposals", []))))).toBe("KP_PROPOSALS");
    expect(await codeOf(parseKeyPackageEvent(withTags(setTag(good.tags, "mls_proposals", ["self_remove"]))))).toBe("KP_PROPOSALS");
  });

  it("KP-08 encoding hex (with hex content) or unknown on 30443 → KP_BAD_ENCODING; content not base64 → KP_BAD_ENCODING", async () => {
    const { event: hex } = await builtEvent({ hexContent: true });
    expect(await codeOf(parseKeyPackageEvent(hex))).toBe("KP_BAD_ENCODING");
    expect(await codeOf(parseKeyPackageEvent(withTags(setTag(good.tags, "encoding", ["base58"]))))).toBe("KP_BAD_ENCODING");
    const hexContent = resign(good, SK_A, { content: bytesToHex(encodeKeyPackage(kpA)) });
    expect(await codeOf(parseKeyPackageEvent(hexContent))).toBe("KP_BAD_ENCODING");
    const unpadded = resign(good, SK_A, { content: good.content.replace(/=+$/, "") });
    if (unpadded.content !== good.content) expect(await codeOf(parseKeyPackageEvent(unpadded))).toBe("KP_BAD_ENCODING");
    const urlsafe = resign(good, SK_A, { content: `${good.content.slice(0, -4)}-_-_` });
    expect(await codeOf(parseKeyPackageEvent(urlsafe))).toBe("KP_BAD_ENCODING");
  });

  it("KP-10 relays empty or not ws/wss → KP_BAD_RELAYS", async () => {
    expect(await codeOf(parseKeyPackageEvent(withTags(setTag(good.tags, "relays", []))))).toBe("KP_BAD_RELAYS");
    expect(await codeOf(parseKeyPackageEvent(withTags(setTag(good.tags, "relays", ["wss://ok", "http://no"]))))).toBe("KP_BAD_RELAYS");
  });

  it("KP-11 i not hex → KP_BAD_I; i of another KeyPackage → KP_REF_MISMATCH", async () => {
    expect(await codeOf(parseKeyPackageEvent(withTags(setTag(good.tags, "i", ["xyz"]))))).toBe("KP_BAD_I");
    const other = await computeKeyPackageRef((await fixedKeyPackage(PK_A, "other")).publicPackage);
    const e = await parseKeyPackageEvent(withTags(setTag(good.tags, "i", [other]))).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(KeyPackageError);
    expect((e as KeyPackageError).code).toBe("KP_REF_MISMATCH");
    expect((e as KeyPackageError).details.tag).toEqual(["i", other]);
  });

  it("KP-12 content not a KeyPackage, trailing bytes, MLSMessage framing → KP_DECODE", async () => {
    const bytes = encodeKeyPackage(kpA);
    expect(await codeOf(parseKeyPackageEvent(resign(good, SK_A, { content: bytesToBase64(Uint8Array.of(1, 2, 3, 4)) })))).toBe("KP_DECODE");
    expect(await codeOf(parseKeyPackageEvent(resign(good, SK_A, { content: bytesToBase64(Uint8Array.from([...bytes, 0])) })))).toBe("KP_DECODE");
    const framed = encode(mlsMessageEncoder, { version: protocolVersions.mls10, wireformat: wireformats.mls_key_package, keyPackage: kpA });
    const e = await parseKeyPackageEvent(resign(good, SK_A, { content: bytesToBase64(framed) })).catch((x: unknown) => x);
    expect((e as KeyPackageError).code).toBe("KP_DECODE");
    expect((e as KeyPackageError).details.mlsMessageFraming).toBe(true);
  });

  it("KP-12 KeyPackage signature broken → KP_BAD_KP_SIGNATURE", async () => {
    const bytes = encodeKeyPackage(kpA).slice();
    bytes[bytes.length - 1]! ^= 0x01; // last byte of the Ed25519 signature
    expect(await codeOf(parseKeyPackageEvent(resign(good, SK_A, { content: bytesToBase64(bytes) })))).toBe("KP_BAD_KP_SIGNATURE");
  });

  it("KP-14 foreign credential (B's KeyPackage in A's event, i correct) → KP_IDENTITY_MISMATCH", async () => {
    const kpB = (await fixedKeyPackage(PK_B, "kp-b")).publicPackage;
    const tags = setTag(good.tags, "i", [await computeKeyPackageRef(kpB)]);
    const ev = resign(good, SK_A, { tags, content: bytesToBase64(encodeKeyPackage(kpB)) });
    const e = await parseKeyPackageEvent(ev).catch((x: unknown) => x);
    expect((e as KeyPackageError).code).toBe("KP_IDENTITY_MISMATCH");
    expect((e as KeyPackageError).details).toMatchObject({ identity: PK_B, pubkey: PK_A });
  });

  it("KP-14 non-basic credential → KP_CREDENTIAL", async () => {
    const cs = await getMarmotCiphersuite();
    const { publicPackage } = await generateKeyPackage({
      credential: { credentialType: defaultCredentialTypes.x509, certificates: [new Uint8Array([1, 2, 3])] },
      capabilities: marmotCapabilities({ grease: false }),
      extensions: [lastResortExtension()],
      cipherSuite: cs,
    });
    const tags = setTag(good.tags, "i", [await computeKeyPackageRef(publicPackage)]);
    expect(await codeOf(parseKeyPackageEvent(resign(good, SK_A, { tags, content: bytesToBase64(encodeKeyPackage(publicPackage)) })))).toBe("KP_CREDENTIAL");
  });

  it("leaf capabilities lacking 0xf2ee, self_remove or last_resort → KP_CAPABILITIES", async () => {
    const cs = await getMarmotCiphersuite();
    for (const caps of [
      { ...marmotCapabilities({ grease: false }), extensions: [0x000a] },
      { ...marmotCapabilities({ grease: false }), proposals: [] },
      { ...marmotCapabilities({ grease: false }), extensions: [0xf2ee] }, // last_resort KP without 0x000a listed
    ]) {
      const { publicPackage } = await generateKeyPackage({ credential: makeCredential(PK_A), capabilities: caps, extensions: [lastResortExtension()], cipherSuite: cs });
      const tags = setTag(good.tags, "i", [await computeKeyPackageRef(publicPackage)]);
      expect(await codeOf(parseKeyPackageEvent(resign(good, SK_A, { tags, content: bytesToBase64(encodeKeyPackage(publicPackage)) })))).toBe("KP_CAPABILITIES");
    }
  });

  it("lifetime not containing `now` → KP_LIFETIME", async () => {
    expect(await codeOf(parseKeyPackageEvent(good, { now: NOW + 91 * 86_400 }))).toBe("KP_LIFETIME");
    expect(await codeOf(parseKeyPackageEvent(good, { now: NOW - 2 * 86_400 }))).toBe("KP_LIFETIME");
  });

  it("NIP-01: wrong id → KP_BAD_ID; wrong signature → KP_BAD_SIGNATURE (even on a copy of a verified event)", async () => {
    expect(await codeOf(parseKeyPackageEvent({ ...good, content: good.content.slice(4) }))).toBe("KP_BAD_ID");
    const sig = `${good.sig.slice(0, -2)}${good.sig.endsWith("00") ? "01" : "00"}`;
    expect(await codeOf(parseKeyPackageEvent({ ...good, sig }))).toBe("KP_BAD_SIGNATURE");
    expect(await codeOf(parseKeyPackageEvent({ ...good, pubkey: PK_B }))).toBe("KP_BAD_ID");
  });

  it("wrong kind → KP_WRONG_KIND; malformed event → KP_MALFORMED_EVENT", async () => {
    expect(await codeOf(parseKeyPackageEvent(resign(good, SK_A, { kind: 1 })))).toBe("KP_WRONG_KIND");
    expect(await codeOf(parseKeyPackageEvent(resign(good, SK_A, { kind: KIND_KEY_PACKAGE_RELAYS })))).toBe("KP_WRONG_KIND");
    expect(await codeOf(parseKeyPackageEvent({ ...good, tags: [["d"], [1 as unknown as string]] }))).toBe("KP_MALFORMED_EVENT");
    expect(await codeOf(parseKeyPackageEvent(null as unknown as NostrEvent))).toBe("KP_MALFORMED_EVENT");
  });

  it("legacy 443 without relays → KP_MISSING_TAG; with a bad encoding → KP_BAD_ENCODING", async () => {
    const r0 = (await builtEvent({ profile: "R0" })).event;
    expect(await codeOf(parseKeyPackageEvent(resign(r0, SK_A, { tags: setTag(r0.tags, "relays", undefined) })))).toBe("KP_MISSING_TAG");
    expect(await codeOf(parseKeyPackageEvent(resign(r0, SK_A, { tags: setTag(r0.tags, "encoding", ["b64"]) })))).toBe("KP_BAD_ENCODING");
    // hex declared but base64 content
    expect(await codeOf(parseKeyPackageEvent(resign(r0, SK_A, { tags: setTag(r0.tags, "encoding", ["hex"]) })))).toBe("KP_BAD_ENCODING");
  });

  it("the quirk variants are rejected by R1 parsing", async () => {
    const { event } = await builtEvent({ omitMlsProposals: true });
    expect(await codeOf(parseKeyPackageEvent(event))).toBe("KP_MISSING_TAG");
  });
});

describe("KeyPackage content properties", () => {
  it("decodeKeyPackageContent(base64(encode(kp))) = kp for generated KeyPackages", async () => {
    await fc.assert(
      fc.asyncProperty(fc.string({ minLength: 1, maxLength: 12 }), fc.boolean(), fc.boolean(), async (seed, lastResort, grease) => {
        const kp = (await fixedKeyPackage(PK_A, seed, { lastResort, grease })).publicPackage;
        const bytes = encodeKeyPackage(kp);
        const back = decodeKeyPackageContent(bytesToBase64(bytes), "base64").keyPackage;
        expect(bytesToHex(encodeKeyPackage(back))).toBe(bytesToHex(bytes));
        expect(back.leafNode.credential).toEqual(kp.leafNode.credential);
        expect(decodeKeyPackageContent(bytesToHex(bytes), "hex").keyPackage.signature).toEqual(kp.signature);
      }),
      { numRuns: 25 },
    );
  });

  it("every truncation and random bytes are rejected with KeyPackageError only", () => {
    const bytes = encodeKeyPackage(kpA);
    for (let n = 0; n < bytes.length; n++) {
      expect(() => decodeKeyPackageContent(bytesToBase64(bytes.slice(0, n)), "base64")).toThrow(KeyPackageError);
    }
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 400 }), fc.constantFrom("base64" as const, "hex" as const), (b, enc) => {
        try {
          decodeKeyPackageContent(enc === "base64" ? bytesToBase64(b) : bytesToHex(b), enc);
        } catch (e) {
          expect(e).toBeInstanceOf(KeyPackageError);
        }
      }),
      { numRuns: 2000 },
    );
    fc.assert(
      fc.property(fc.string({ maxLength: 200 }), (s) => {
        try {
          decodeKeyPackageContent(s, "base64");
        } catch (e) {
          expect(e).toBeInstanceOf(KeyPackageError);
        }
      }),
      { numRuns: 1000 },
    );
  });

  it("single-byte mutations of a real KeyPackage never throw anything but KeyPackageError", () => {
    const bytes = encodeKeyPackage(kpA);
    fc.assert(
      fc.property(fc.nat(bytes.length - 1), fc.nat(255), (pos, val) => {
        const m = bytes.slice();
        m[pos] = val;
        try {
          decodeKeyPackageContent(bytesToBase64(m), "base64");
        } catch (e) {
          expect(e).toBeInstanceOf(KeyPackageError);
        }
      }),
      { numRuns: 1500 },
    );
  });

  it("random content in a signed 30443 yields only KeyPackageError", async () => {
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 200 }), async (b) => {
        const ev = resign(good, SK_A, { content: bytesToBase64(b) });
        const e = await parseKeyPackageEvent(ev).catch((x: unknown) => x);
        expect(e).toBeInstanceOf(KeyPackageError);
      }),
      { numRuns: 60 },
    );
  });

  it("random tag sets (drawn from the real tags plus noise) on a signed 30443 yield a parse or a KeyPackageError", async () => {
    const tagArb = fc.oneof(
      fc.constantFrom(...good.tags),
      fc.tuple(fc.constantFrom("d", "i", "encoding", "relays", "mls_extensions", "mls_proposals", "mls_ciphersuite", "client", "-"), fc.array(fc.string({ maxLength: 70 }), { maxLength: 3 })).map(([n, v]) => [n, ...v]),
    );
    await fc.assert(
      fc.asyncProperty(fc.array(tagArb, { maxLength: 12 }), async (tags) => {
        const ev = resign(good, SK_A, { tags });
        try {
          const p = await parseKeyPackageEvent(ev);
          expect(p.ref).toBe(good.tags.find((t) => t[0] === "i")?.[1]);
        } catch (e) {
          expect(e).toBeInstanceOf(KeyPackageError);
        }
      }),
      { numRuns: 80 },
    );
  });

  it("strict base64: padding, alphabet and pad bits", () => {
    expect(strictBase64Decode("AAE=")).toEqual(Uint8Array.of(0, 1));
    expect(strictBase64Decode("AAF=")).toBeUndefined(); // non-zero pad bits
    expect(strictBase64Decode("AAE")).toBeUndefined();
    expect(strictBase64Decode("AA-_")).toBeUndefined();
    expect(strictBase64Decode("AA E=")).toBeUndefined();
  });
});

describe("seeded signing", () => {
  it("the same randomBytes stream gives byte-identical, valid events", async () => {
    const { createRng } = await import("../../src/sim/random.ts");
    const make = async () => {
      const rng = createRng("sign");
      const rb = (n: number) => rng.bytes(n);
      return [
        await buildKeyPackageEvent({ keyPackage: kpA, secretKey: SK_A, relays: RELAYS, d: D_A, now: NOW, client: "marmot-harness/test", randomBytes: rb }),
        buildKeyPackageRelayListEvent(SK_A, RELAYS, NOW, rb),
        buildKeyPackageDeletionEvent(SK_A, good, NOW, rb),
      ];
    };
    const a = await make();
    const b = await make();
    expect(JSON.stringify(a)).toBe(JSON.stringify(b));
    expect(a[0]!.id).toBe(good.id);
    expect((await parseKeyPackageEvent(a[0]!)).ref).toBe(good.tags.find((t) => t[0] === "i")?.[1]);
    expect(parseKeyPackageRelayListEvent(a[1]!).relays).toEqual(RELAYS);
  });
});

describe("relay URLs", () => {
  it("accepts ws/wss with a host, rejects the rest", () => {
    for (const ok of ["wss://relay.example", "ws://127.0.0.1:7777", "wss://r.example/path?x=1", "wss://[::1]:80"]) expect(isValidRelayUrl(ok)).toBe(true);
    for (const bad of ["", "https://x", "wss://", "wss://u:p@x", "wss://x#frag", "wss://x y", " wss://x", "wss://x\n", "relay.example", `wss://${"a".repeat(510)}`, 42]) {
      expect(isValidRelayUrl(bad)).toBe(false);
    }
  });
});

describe("kind 10051 relay list", () => {
  it("builds and parses", () => {
    const ev = buildKeyPackageRelayListEvent(SK_A, RELAYS, NOW);
    expect(ev.kind).toBe(10051);
    expect(ev.content).toBe("");
    expect(ev.tags).toEqual(RELAYS.map((r) => ["relay", r]));
    expect(parseKeyPackageRelayListEvent(ev)).toEqual({ pubkey: PK_A, createdAt: NOW, relays: RELAYS });
  });

  it("rejects empty lists, bad URLs, content, wrong kind and bad signatures", async () => {
    expect(await codeOf(() => buildKeyPackageRelayListEvent(SK_A, [], NOW))).toBe("KP_RELAY_LIST");
    expect(await codeOf(() => buildKeyPackageRelayListEvent(SK_A, ["http://x"], NOW))).toBe("KP_RELAY_LIST");
    const ev = buildKeyPackageRelayListEvent(SK_A, RELAYS, NOW);
    expect(await codeOf(() => parseKeyPackageRelayListEvent(resign(ev, SK_A, { tags: [] })))).toBe("KP_RELAY_LIST");
    expect(await codeOf(() => parseKeyPackageRelayListEvent(resign(ev, SK_A, { tags: [["relay", "https://x"]] })))).toBe("KP_RELAY_LIST");
    expect(await codeOf(() => parseKeyPackageRelayListEvent(resign(ev, SK_A, { tags: [["relay"]] })))).toBe("KP_RELAY_LIST");
    expect(await codeOf(() => parseKeyPackageRelayListEvent(resign(ev, SK_A, { content: "x" })))).toBe("KP_RELAY_LIST");
    expect(await codeOf(() => parseKeyPackageRelayListEvent(resign(ev, SK_A, { kind: 10050 })))).toBe("KP_WRONG_KIND");
    expect(await codeOf(() => parseKeyPackageRelayListEvent({ ...ev, created_at: NOW + 1 }))).toBe("KP_BAD_ID");
  });
});

describe("kind 5 deletion", () => {
  it("30443: e, k and a = 30443:<pubkey>:<d>", () => {
    const del = buildKeyPackageDeletionEvent(SK_A, good, NOW + 5);
    expect(del.kind).toBe(5);
    expect(del.content).toBe("");
    expect(del.tags).toEqual([
      ["e", good.id],
      ["k", "30443"],
      ["a", `30443:${PK_A}:${D_A}`],
    ]);
  });

  it("443: e and k only; someone else's KeyPackage is refused", async () => {
    const r0 = (await builtEvent({ profile: "R0" })).event;
    expect(buildKeyPackageDeletionEvent(SK_A, r0, NOW).tags).toEqual([
      ["e", r0.id],
      ["k", "443"],
    ]);
    expect(await codeOf(() => buildKeyPackageDeletionEvent(SK_B, good, NOW))).toBe("KP_NOT_OWNER");
    expect(await codeOf(() => buildKeyPackageDeletionEvent(SK_A, resign(good, SK_A, { kind: 1 }), NOW))).toBe("KP_WRONG_KIND");
  });
});

describe("selectKeyPackage (MIP00-KP-20, KP-22)", () => {
  it("prefers 30443, then non-last_resort, then newest, then lowest id; skips invalid events", async () => {
    const single = (await fixedKeyPackage(PK_A, "single", { lastResort: false })).publicPackage;
    const lastResortOld = (await builtEvent({ d: "01".repeat(32), now: NOW - 100 })).event;
    const lastResortNew = (await builtEvent({ d: "02".repeat(32), now: NOW })).event;
    const singleOld = (await builtEvent({ keyPackage: single, d: "03".repeat(32), now: NOW - 200 })).event;
    const legacySingle = (await buildKeyPackageEvent({ keyPackage: single, secretKey: SK_A, relays: RELAYS, d: "", now: NOW + 500, profile: "R0" }));
    const broken = { ...singleOld, created_at: NOW + 1000 }; // id no longer matches
    const notKp = resign(good, SK_A, { kind: 1 });

    expect(selectKeyPackage([])).toBeUndefined();
    expect(selectKeyPackage([notKp, broken])).toBeUndefined();
    expect(selectKeyPackage([lastResortOld, lastResortNew])?.id).toBe(lastResortNew.id);
    expect(selectKeyPackage([lastResortOld, singleOld, lastResortNew, broken])?.id).toBe(singleOld.id);
    expect(selectKeyPackage([legacySingle, lastResortOld])?.id).toBe(lastResortOld.id);
    expect(selectKeyPackage([legacySingle, notKp])?.id).toBe(legacySingle.id);
  });

  it("keeps only the newest event of a slot, and breaks created_at ties by lowest id", async () => {
    const single = (await fixedKeyPackage(PK_A, "single", { lastResort: false })).publicPackage;
    // The old event of slot 01 is single-use, the newer one last_resort: the slot's newest wins.
    const slotOld = (await builtEvent({ keyPackage: single, d: "01".repeat(32), now: NOW - 10 })).event;
    const slotNew = (await builtEvent({ d: "01".repeat(32), now: NOW })).event;
    expect(selectKeyPackage([slotOld, slotNew])?.id).toBe(slotNew.id);
    // A newer event in the slot whose signature fails does not hide the older valid one.
    const forged = { ...slotNew, sig: `${slotNew.sig.slice(0, -2)}${slotNew.sig.endsWith("00") ? "01" : "00"}` };
    expect(selectKeyPackage([forged, slotOld])?.id).toBe(slotOld.id);
    const t1 = (await builtEvent({ d: "05".repeat(32), now: NOW })).event;
    const t2 = (await builtEvent({ d: "06".repeat(32), now: NOW })).event;
    const lowest = t1.id < t2.id ? t1 : t2;
    expect(selectKeyPackage([t1, t2])?.id).toBe(lowest.id);
    expect(selectKeyPackage([t2, t1])?.id).toBe(lowest.id);
  });
});

describe("event-level round trips (properties)", () => {
  const host = fc.stringMatching(/^[a-z][a-z0-9]{0,12}\.[a-z]{2,4}$/);
  const relayArb = fc.tuple(fc.constantFrom("ws://", "wss://"), host, fc.stringMatching(/^(\/[a-z0-9]{1,6})?$/)).map(([s, h, p]) => `${s}${h}${p}`);

  it("parseKeyPackageEvent(buildKeyPackageEvent(x)) gives back d, relays, client, flags and the KeyPackage", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.uint8Array({ minLength: 32, maxLength: 32 }).map((b) => bytesToHex(b)),
        fc.uniqueArray(relayArb, { minLength: 1, maxLength: 4 }),
        fc.option(fc.string({ maxLength: 20 }), { nil: undefined }),
        fc.boolean(),
        fc.constantFrom("R0" as const, "R1" as const),
        fc.boolean(),
        async (d, relays, client, protectedTag, profile, hexContent) => {
          const useHex = profile === "R0" && hexContent;
          const ev = await buildKeyPackageEvent({ keyPackage: kpA, secretKey: SK_A, relays, d, now: NOW, client, protectedTag, profile, hexContent: useHex });
          const p = await parseKeyPackageEvent(ev, { profile });
          expect(p.kind).toBe(profile === "R1" ? 30443 : 443);
          expect(p.d).toBe(profile === "R1" ? d : undefined);
          expect(p.relays).toEqual(relays);
          expect(p.client).toBe(client);
          expect(p.protected).toBe(protectedTag);
          expect(p.encoding).toBe(useHex ? "hex" : "base64");
          expect(bytesToHex(encodeKeyPackage(p.keyPackage))).toBe(bytesToHex(encodeKeyPackage(kpA)));
        },
      ),
      { numRuns: 30 },
    );
  });

  it("parseKeyPackageRelayListEvent(buildKeyPackageRelayListEvent(x)) = x", () => {
    fc.assert(
      fc.property(fc.uniqueArray(relayArb, { minLength: 1, maxLength: 6 }), fc.integer({ min: 0, max: 2 ** 31 }), (relays, now) => {
        expect(parseKeyPackageRelayListEvent(buildKeyPackageRelayListEvent(SK_B, relays, now))).toEqual({ pubkey: PK_B, createdAt: now, relays });
      }),
      { numRuns: 50 },
    );
  });

  it("random tags on a signed relay list yield only KeyPackageError", () => {
    const base = buildKeyPackageRelayListEvent(SK_A, RELAYS, NOW);
    fc.assert(
      fc.property(fc.array(fc.array(fc.string({ maxLength: 12 }), { minLength: 1, maxLength: 3 }), { maxLength: 4 }), (tags) => {
        try {
          parseKeyPackageRelayListEvent(resign(base, SK_A, { tags }));
        } catch (e) {
          expect(e).toBeInstanceOf(KeyPackageError);
        }
      }),
      { numRuns: 50 },
    );
  });
});
