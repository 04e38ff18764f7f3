import { describe, it, expect } from "vitest";
import fc from "fast-check";
import { defaultExtensionTypes } from "ts-mls";
import type { MarmotGroupData } from "../../src/engine/api.ts";
import {
  GroupDataError,
  MARMOT_GROUP_DATA_EXTENSION,
  decodeGroupData,
  decodeVarint,
  encodeGroupData,
  encodeVarint,
  groupDataVersionFor,
  makeGroupDataExtension,
  makeRequiredCapabilities,
  readGroupDataExtension,
  validateGroupDataSoft,
} from "../../src/engine/mip01-group-data.ts";
import { HarnessError } from "../../src/errors.ts";

const fill = (n: number, v: number): number[] => new Array<number>(n).fill(v);
const ascii = (s: string): number[] => [...s].map((c) => c.charCodeAt(0));
const u8 = (xs: number[]): Uint8Array => Uint8Array.from(xs);

function base(version: number, extra: Partial<MarmotGroupData> = {}): MarmotGroupData {
  return {
    version,
    nostrGroupId: new Uint8Array(32).fill(1),
    name: "ab",
    description: "",
    adminPubkeys: ["02".repeat(32)],
    relays: ["wss://r"],
    imageHash: null,
    imageKey: null,
    imageNonce: null,
    imageUploadKey: null,
    disappearingMessageSecs: null,
    ...extra,
  };
}

function codeOf(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    if (e instanceof GroupDataError) return e.code;
    throw e;
  }
  throw new Error("expected a GroupDataError, nothing was thrown");
}

describe("MLS varint", () => {
  it("uses the minimal 1/2/4-byte forms", () => {
    expect([...encodeVarint(0)]).toEqual([0x00]);
    expect([...encodeVarint(63)]).toEqual([0x3f]);
    expect([...encodeVarint(64)]).toEqual([0x40, 0x40]);
    expect([...encodeVarint(16383)]).toEqual([0x7f, 0xff]);
    expect([...encodeVarint(16384)]).toEqual([0x80, 0x00, 0x40, 0x00]);
    expect([...encodeVarint(0x3fffffff)]).toEqual([0xbf, 0xff, 0xff, 0xff]);
    expect(codeOf(() => encodeVarint(0x40000000))).toBe("GD_FIELD_TOO_LONG");
  });

  it("rejects prefix 11, non-minimal forms and truncation", () => {
    expect(codeOf(() => decodeVarint(u8([0xc0, 0, 0, 0, 0, 0, 0, 1]), 0))).toBe("GD_BAD_VARINT");
    expect(codeOf(() => decodeVarint(u8([0x40, 0x05]), 0))).toBe("GD_BAD_VARINT");
    expect(codeOf(() => decodeVarint(u8([0x80, 0x00, 0x00, 0x05]), 0))).toBe("GD_BAD_VARINT");
    expect(codeOf(() => decodeVarint(u8([0x80, 0x00, 0x3f, 0xff]), 0))).toBe("GD_BAD_VARINT");
    expect(codeOf(() => decodeVarint(u8([0x40]), 0))).toBe("GD_TRUNCATED");
    expect(codeOf(() => decodeVarint(u8([]), 0))).toBe("GD_TRUNCATED");
    expect(decodeVarint(u8([0x7f, 0xff]), 0)).toEqual({ value: 16383, next: 2 });
  });

  it("round-trips every length class", () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 0x3fffffff }), (n) => {
        const b = encodeVarint(n);
        expect(decodeVarint(b, 0)).toEqual({ value: n, next: b.length });
      }),
    );
  });
});

describe("group data known-answer bytes (computed by hand)", () => {
  const wssR = ascii("wss://r"); // 7 bytes

  it("version 2", () => {
    const expected = u8([
      0x00, 0x02, // version
      ...fill(32, 0x01), // nostr_group_id
      0x02, 0x61, 0x62, // name<V> "ab"
      0x00, // description<V> ""
      0x20, ...fill(32, 0x02), // admin_pubkeys<V>: one raw key
      0x08, 0x07, ...wssR, // relays<V>: total 8 = (1 + 7)
      0x00, 0x00, 0x00, 0x00, // image_hash, image_key, image_nonce, image_upload_key: empty
    ]);
    expect(encodeGroupData(base(2))).toEqual(expected);
    expect(decodeGroupData(expected)).toEqual(base(2));
  });

  it("version 2 with a 2-byte varint and image fields", () => {
    const name = "x".repeat(64);
    const d = base(2, {
      name,
      adminPubkeys: [],
      relays: [],
      imageHash: new Uint8Array(32).fill(3),
      imageKey: new Uint8Array(32).fill(4),
      imageNonce: new Uint8Array(12).fill(5),
      imageUploadKey: new Uint8Array(32).fill(6),
    });
    const expected = u8([
      0x00, 0x02,
      ...fill(32, 0x01),
      0x40, 0x40, ...ascii(name), // 64 = 0x4040 in the 2-byte form
      0x00,
      0x00, // no admins
      0x00, // no relays
      0x20, ...fill(32, 3),
      0x20, ...fill(32, 4),
      0x0c, ...fill(12, 5),
      0x20, ...fill(32, 6),
    ]);
    expect(encodeGroupData(d)).toEqual(expected);
    expect(decodeGroupData(expected)).toEqual(d);
  });

  it("version 3 with disappearing_message_secs = 86400", () => {
    const d = base(3, { disappearingMessageSecs: 86_400n });
    const expected = u8([
      0x00, 0x03,
      ...fill(32, 0x01),
      0x02, 0x61, 0x62,
      0x00,
      0x20, ...fill(32, 0x02),
      0x08, 0x07, ...wssR,
      0x00, 0x00, 0x00, 0x00,
      0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x51, 0x80, // 86400 = 0x015180, u64 BE
    ]);
    expect(encodeGroupData(d)).toEqual(expected);
    expect(decodeGroupData(expected)).toEqual(d);
    // v3 without a duration: empty vector
    const none = encodeGroupData(base(3));
    expect([...none.slice(-5)]).toEqual([0, 0, 0, 0, 0]);
    expect(decodeGroupData(none).disappearingMessageSecs).toBeNull();
  });

  it("version 1 (R0 layout: uint16 lengths, CSV, fixed zeroed image fields)", () => {
    const adminHex = ascii("02".repeat(32)); // 64 bytes of text
    const expected = u8([
      0x00, 0x01,
      ...fill(32, 0x01),
      0x00, 0x02, 0x61, 0x62, // name
      0x00, 0x00, // description
      0x00, 0x40, ...adminHex, // admins CSV
      0x00, 0x07, ...wssR, // relays CSV
      ...fill(32, 0), ...fill(32, 0), ...fill(12, 0), // no image
    ]);
    expect(expected.length).toBe(118 + 2 + 64 + 7);
    expect(encodeGroupData(base(1))).toEqual(expected);
    expect(decodeGroupData(expected)).toEqual(base(1));
  });

  it("version 1 with two admins, two relays and an image", () => {
    const admins = ["aa".repeat(32), "bb".repeat(32)];
    const d = base(1, {
      adminPubkeys: admins,
      relays: ["wss://a", "ws://b:7777"],
      imageHash: new Uint8Array(32).fill(9),
      imageKey: new Uint8Array(32).fill(8),
      imageNonce: new Uint8Array(12).fill(7),
    });
    const csvAdmins = ascii(admins.join(","));
    const csvRelays = ascii("wss://a,ws://b:7777");
    const expected = u8([
      0x00, 0x01,
      ...fill(32, 1),
      0x00, 0x02, 0x61, 0x62,
      0x00, 0x00,
      0x00, 129, ...csvAdmins,
      0x00, csvRelays.length, ...csvRelays,
      ...fill(32, 9), ...fill(32, 8), ...fill(12, 7),
    ]);
    expect(encodeGroupData(d)).toEqual(expected);
    expect(decodeGroupData(expected)).toEqual(d);
  });

  it("decoding a Buffer yields plain, unaliased Uint8Arrays", () => {
    const d = base(2, { imageHash: new Uint8Array(32).fill(3) });
    const buf = Buffer.from(encodeGroupData(d));
    const back = decodeGroupData(buf);
    expect(back).toEqual(d);
    expect(Buffer.isBuffer(back.nostrGroupId)).toBe(false);
    buf.fill(0);
    expect(back.nostrGroupId[0]).toBe(1);
    expect(back.imageHash![0]).toBe(3);
  });

  it("the smallest possible v1 is 118 bytes", () => {
    const d = base(1, { name: "", adminPubkeys: [], relays: [] });
    expect(encodeGroupData(d).length).toBe(118);
  });
});

describe("group data decoder rejections", () => {
  const v2 = encodeGroupData(base(2));
  const v3 = encodeGroupData(base(3, { disappearingMessageSecs: 5n }));
  const v1 = encodeGroupData(base(1));

  it("version 0", () => {
    const b = v2.slice();
    b[1] = 0;
    expect(codeOf(() => decodeGroupData(b))).toBe("GD_BAD_VERSION");
  });

  it("too short for a version, and truncation anywhere", () => {
    expect(codeOf(() => decodeGroupData(u8([0])))).toBe("GD_TRUNCATED");
    for (const bytes of [v1, v2, v3]) {
      for (let n = 2; n < bytes.length; n++) {
        expect(() => decodeGroupData(bytes.slice(0, n))).toThrow(GroupDataError);
      }
    }
  });

  it("trailing bytes after v1 and v2, and after v3", () => {
    for (const bytes of [v1, v2, v3]) {
      expect(codeOf(() => decodeGroupData(u8([...bytes, 0])))).toBe("GD_TRAILING_BYTES");
    }
  });

  it("versions above 3 are read with the v3 layout and may carry trailing bytes", () => {
    const v4 = encodeGroupData(base(4, { disappearingMessageSecs: 7n }));
    const d = decodeGroupData(u8([...v4, 0xde, 0xad]));
    expect(d.version).toBe(4);
    expect(d.disappearingMessageSecs).toBe(7n);
    expect(d.name).toBe("ab");
  });

  it("image field sizes (v2: empty or exact; 31 bytes rejected)", () => {
    const d = base(2);
    const good = encodeGroupData(d);
    // Replace the empty image_hash (4th byte from the end) with a 31-byte vector.
    const bad = u8([...good.slice(0, good.length - 4), 31, ...fill(31, 1), 0, 0, 0]);
    expect(codeOf(() => decodeGroupData(bad))).toBe("GD_IMAGE_FIELD_SIZE");
    const badNonce = u8([...good.slice(0, good.length - 4), 0, 0, 13, ...fill(13, 1), 0]);
    expect(codeOf(() => decodeGroupData(badNonce))).toBe("GD_IMAGE_FIELD_SIZE");
    expect(codeOf(() => encodeGroupData(base(2, { imageKey: new Uint8Array(16) })))).toBe("GD_IMAGE_FIELD_SIZE");
  });

  it("admin list not a multiple of 32, and duplicates", () => {
    const d = base(2, { adminPubkeys: [] });
    const good = encodeGroupData(d);
    // admin_pubkeys<V> is at offset 2 + 32 + 3 + 1 = 38
    expect(good[38]).toBe(0);
    const bad = u8([...good.slice(0, 38), 31, ...fill(31, 7), ...good.slice(39)]);
    expect(codeOf(() => decodeGroupData(bad))).toBe("GD_ADMINS");
    const dup = u8([...good.slice(0, 38), 0x40, 0x40, ...fill(64, 7), ...good.slice(39)]);
    expect(codeOf(() => decodeGroupData(dup))).toBe("GD_ADMINS");
    expect(codeOf(() => encodeGroupData(base(2, { adminPubkeys: ["aa".repeat(32), "aa".repeat(32)] })))).toBe("GD_ADMINS");
    expect(codeOf(() => encodeGroupData(base(2, { adminPubkeys: ["AA".repeat(32)] })))).toBe("GD_ADMINS");
    expect(codeOf(() => encodeGroupData(base(2, { adminPubkeys: ["aa"] })))).toBe("GD_ADMINS");
  });

  it("v1 admins that are not hex, and v1 duplicates in either case", () => {
    const d = base(1, { adminPubkeys: ["aa".repeat(32)] });
    const b = encodeGroupData(d);
    const at = 2 + 32 + 4 + 2 + 2; // first admin character
    const notHex = b.slice();
    notHex[at] = "z".charCodeAt(0);
    expect(codeOf(() => decodeGroupData(notHex))).toBe("GD_ADMINS");
    const twoAdmins = encodeGroupData(base(1, { adminPubkeys: ["aa".repeat(32), "bb".repeat(32)] }));
    const dup = twoAdmins.slice();
    const second = at + 65;
    for (let i = 0; i < 64; i++) dup[second + i] = "A".charCodeAt(0);
    expect(codeOf(() => decodeGroupData(dup))).toBe("GD_ADMINS");
    // Uppercase admins in v1 are read and normalised to lowercase.
    const upper = b.slice();
    for (let i = 0; i < 64; i++) upper[at + i] = "A".charCodeAt(0);
    expect(decodeGroupData(upper).adminPubkeys).toEqual(["aa".repeat(32)]);
  });

  it("invalid UTF-8 in the name", () => {
    const good = encodeGroupData(base(2));
    const bad = good.slice();
    bad[35] = 0xff; // first byte of "ab"
    expect(codeOf(() => decodeGroupData(bad))).toBe("GD_UTF8");
    expect(codeOf(() => encodeGroupData(base(2, { name: "\ud800" })))).toBe("GD_UTF8");
  });

  it("relay URLs must be ws/wss", () => {
    expect(codeOf(() => encodeGroupData(base(2, { relays: ["https://r"] })))).toBe("GD_RELAY_URL");
    expect(codeOf(() => encodeGroupData(base(1, { relays: ["wss://a,b"] })))).toBe("GD_RELAY_URL");
    const good = encodeGroupData(base(2));
    const bad = good.slice();
    const at = good.indexOf(0x77); // 'w' of wss://r
    bad[at] = "h".charCodeAt(0);
    expect(codeOf(() => decodeGroupData(bad))).toBe("GD_RELAY_URL");
  });

  it("disappearing_message_secs: zero, wrong size, wrong version", () => {
    const v3ok = encodeGroupData(base(3, { disappearingMessageSecs: 1n }));
    const zero = v3ok.slice();
    zero[zero.length - 1] = 0;
    expect(codeOf(() => decodeGroupData(zero))).toBe("GD_ZERO_DISAPPEARING");
    const size4 = u8([...v3ok.slice(0, v3ok.length - 9), 4, 0, 0, 0, 1]);
    expect(codeOf(() => decodeGroupData(size4))).toBe("GD_DISAPPEARING_SIZE");
    expect(codeOf(() => encodeGroupData(base(3, { disappearingMessageSecs: 0n })))).toBe("GD_ZERO_DISAPPEARING");
    expect(codeOf(() => encodeGroupData(base(2, { disappearingMessageSecs: 5n })))).toBe("GD_FIELD_NOT_IN_VERSION");
    expect(codeOf(() => encodeGroupData(base(1, { imageUploadKey: new Uint8Array(32).fill(1) })))).toBe("GD_FIELD_NOT_IN_VERSION");
    expect(codeOf(() => encodeGroupData(base(3, { disappearingMessageSecs: 1n << 64n })))).toBe("GD_DISAPPEARING_SIZE");
  });

  it("encoder refuses a wrong-size group id and version 0", () => {
    expect(codeOf(() => encodeGroupData(base(2, { nostrGroupId: new Uint8Array(31) })))).toBe("GD_GROUP_ID_SIZE");
    expect(codeOf(() => encodeGroupData(base(0)))).toBe("GD_BAD_VERSION");
    expect(codeOf(() => encodeGroupData(base(1, { name: "x".repeat(70_000) })))).toBe("GD_FIELD_TOO_LONG");
  });

  it("errors are HarnessErrors with details naming the field", () => {
    try {
      decodeGroupData(u8([0, 2, 1]));
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(HarnessError);
      expect((e as GroupDataError).details.field).toBe("nostr_group_id");
    }
  });
});

describe("version choice, soft checks, GroupContext helpers", () => {
  it("R0 → 1, R1 → 2 without and 3 with a duration", () => {
    expect(groupDataVersionFor({ disappearingMessageSecs: null }, "R0")).toBe(1);
    expect(groupDataVersionFor({ disappearingMessageSecs: 10n }, "R0")).toBe(1);
    expect(groupDataVersionFor({ disappearingMessageSecs: null }, "R1")).toBe(2);
    expect(groupDataVersionFor({ disappearingMessageSecs: 10n }, "R1")).toBe(3);
  });

  it("SHOULD-level warnings", () => {
    expect(validateGroupDataSoft(base(2))).toEqual([]);
    const codes = validateGroupDataSoft(
      base(2, { name: "é".repeat(256), description: "d".repeat(1001), relays: Array.from({ length: 21 }, (_, i) => `wss://r${i}`) }),
    ).map((w) => w.code);
    expect(codes).toEqual(["GD_NAME_TOO_LONG", "GD_DESCRIPTION_TOO_LONG", "GD_TOO_MANY_RELAYS"]);
    expect(validateGroupDataSoft(base(2, { name: "é".repeat(255), relays: [] })).map((w) => w.code)).toEqual(["GD_NO_RELAYS"]);
  });

  it("extension object round trip and exactly-one rule", () => {
    const d = base(3, { disappearingMessageSecs: 60n });
    const ext = makeGroupDataExtension(d);
    expect(ext.extensionType).toBe(0xf2ee);
    expect(MARMOT_GROUP_DATA_EXTENSION).toBe(0xf2ee);
    expect(readGroupDataExtension([makeRequiredCapabilities(), ext])).toEqual(d);
    expect(codeOf(() => readGroupDataExtension([makeRequiredCapabilities()]))).toBe("GD_EXTENSION_MISSING");
    expect(codeOf(() => readGroupDataExtension([ext, ext]))).toBe("GD_EXTENSION_DUPLICATE");
  });

  it("required_capabilities per profile", () => {
    const r1 = makeRequiredCapabilities();
    expect(r1.extensionType).toBe(defaultExtensionTypes.required_capabilities);
    expect(r1.extensionData).toEqual({ extensionTypes: [0xf2ee], proposalTypes: [0x000a], credentialTypes: [] });
    expect(makeRequiredCapabilities({ profile: "R0" }).extensionData.proposalTypes).toEqual([]);
    expect(makeRequiredCapabilities({ profile: "R1", selfRemove: false }).extensionData.proposalTypes).toEqual([]);
  });
});

// ---------------------------------------------------------------------------------------------
// Properties

const hex32 = fc.uint8Array({ minLength: 32, maxLength: 32 }).map((b) => Buffer.from(b).toString("hex"));
const host = fc.stringMatching(/^[a-z][a-z0-9]{0,20}(\.[a-z]{2,6})?$/); // no "-": "xn--" is invalid IDNA
const relay = fc
  .tuple(fc.constantFrom("ws://", "wss://"), host, fc.option(fc.integer({ min: 1, max: 65535 }), { nil: undefined }), fc.stringMatching(/^(\/[a-z0-9]{0,8}){0,2}$/))
  .map(([s, h, p, path]) => `${s}${h}${p === undefined ? "" : `:${p}`}${path}`);
const nonZero = (n: number) => fc.uint8Array({ minLength: n, maxLength: n }).filter((b) => b.some((x) => x !== 0));
const text = fc.string({ unit: "grapheme", maxLength: 40 });

function arbGroupData(version: 1 | 2 | 3 | 4): fc.Arbitrary<MarmotGroupData> {
  return fc.record({
    version: fc.constant(version),
    nostrGroupId: fc.uint8Array({ minLength: 32, maxLength: 32 }),
    name: text,
    description: text,
    adminPubkeys: fc.uniqueArray(hex32, { maxLength: 5 }),
    relays: fc.array(relay, { maxLength: 4 }),
    imageHash: fc.option(nonZero(32), { nil: null }),
    imageKey: fc.option(nonZero(32), { nil: null }),
    imageNonce: fc.option(nonZero(12), { nil: null }),
    imageUploadKey: version === 1 ? fc.constant(null) : fc.option(fc.uint8Array({ minLength: 32, maxLength: 32 }), { nil: null }),
    disappearingMessageSecs: version >= 3 ? fc.option(fc.bigInt({ min: 1n, max: (1n << 64n) - 1n }), { nil: null }) : fc.constant(null),
  });
}

describe("group data properties", () => {
  for (const v of [1, 2, 3, 4] as const) {
    it(`decode(encode(x)) = x for version ${v}`, () => {
      fc.assert(
        fc.property(arbGroupData(v), (d) => {
          expect(decodeGroupData(encodeGroupData(d))).toEqual(d);
        }),
        { numRuns: 300 },
      );
    });
  }

  it("random bytes never crash the decoder", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (b) => {
        try {
          decodeGroupData(b);
        } catch (e) {
          expect(e).toBeInstanceOf(GroupDataError);
        }
      }),
      { numRuns: 2000 },
    );
  });

  it("random bytes after a valid version and group id never crash the decoder", () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 6 }), fc.uint8Array({ maxLength: 200 }), (v, tail) => {
        const b = u8([0, v, ...fill(32, 1), ...tail]);
        try {
          decodeGroupData(b);
        } catch (e) {
          expect(e).toBeInstanceOf(GroupDataError);
        }
      }),
      { numRuns: 2000 },
    );
  });

  it("truncations and single-byte mutations of valid encodings are rejected or decode cleanly", () => {
    fc.assert(
      fc.property(fc.constantFrom(1, 2, 3, 4 as const).chain((v) => arbGroupData(v as 1 | 2 | 3 | 4)), fc.nat(), fc.nat(255), (d, pos, val) => {
        const bytes = encodeGroupData(d);
        const cut = pos % bytes.length;
        expect(() => decodeGroupData(bytes.slice(0, cut))).toThrow(GroupDataError);
        const mutated = bytes.slice();
        mutated[cut] = val;
        try {
          const back = decodeGroupData(mutated);
          // Whatever decodes must re-encode (validation held) unless it is a v>3 with ignored tail.
          if (back.version <= 3) expect(encodeGroupData(back).length).toBe(mutated.length);
        } catch (e) {
          expect(e).toBeInstanceOf(GroupDataError);
        }
      }),
      { numRuns: 500 },
    );
  });
});
