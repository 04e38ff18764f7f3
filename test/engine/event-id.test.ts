/** src/nostr/event-id.ts against nostr-tools' getEventHash: same ids, same refusals. */
import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { getEventHash } from "nostr-tools/pure";
import { eventId, eventIdUnchecked, hasIdFields } from "../../src/nostr/event-id.ts";

const hex64 = fc.uint8Array({ minLength: 32, maxLength: 32 }).map((b) => Buffer.from(b).toString("hex"));
const text = fc.oneof(fc.string({ unit: "grapheme", maxLength: 60 }), fc.string({ unit: "binary", maxLength: 60 }), fc.string({ maxLength: 60 }));
const event = fc.record({
  pubkey: hex64,
  created_at: fc.integer({ min: 0, max: 2 ** 40 }),
  kind: fc.integer({ min: 0, max: 65535 }),
  tags: fc.array(fc.array(text, { maxLength: 4 }), { maxLength: 5 }),
  content: text,
}).map((e) => ({ ...e })); // a plain object: fast-check's records have no prototype, which nostr-tools refuses

describe("NIP-01 event ids through OpenSSL", () => {
  it("equal nostr-tools' getEventHash on random events (any Unicode, lone surrogates included)", () => {
    fc.assert(
      fc.property(event, (e) => {
        expect(eventId(e)).toBe(getEventHash(e));
        expect(eventIdUnchecked(e)).toBe(getEventHash(e));
      }),
      { numRuns: 2000 },
    );
    const big = { pubkey: "ab".repeat(32), created_at: 1, kind: 1059, tags: [["p", "cd".repeat(32)]], content: "é😀".repeat(20_000) };
    expect(eventId(big)).toBe(getEventHash(big));
  });

  it("refuse what nostr-tools refuses", () => {
    const ok = { pubkey: "ab".repeat(32), created_at: 1, kind: 1, tags: [["t", "x"]], content: "" };
    const bad: unknown[] = [
      { ...ok, pubkey: "AB".repeat(32) },
      { ...ok, pubkey: "ab".repeat(31) },
      { ...ok, kind: "1" },
      { ...ok, created_at: "1" },
      { ...ok, content: 5 },
      { ...ok, tags: [["t", 5]] },
      { ...ok, tags: ["t"] },
      { ...ok, tags: undefined },
      null,
    ];
    expect(hasIdFields(ok)).toBe(true);
    for (const b of bad) {
      expect(hasIdFields(b), JSON.stringify(b)).toBe(false);
      expect(() => eventId(b as never)).toThrow(/wrong or missing properties/);
      if (b !== null) expect(() => getEventHash(b as never)).toThrow();
    }
  });
});
