import { describe, it, expect } from "vitest";
import fc from "fast-check";
import { finalizeEvent } from "nostr-tools/pure";
import { isHarnessError } from "../../src/errors.ts";
import { decodeContentR1, fromBase64Strict, parseGroupEventEnvelope, parseRumor, toBase64, tryDecryptContentR0, tryDecryptContentR1 } from "../../src/engine/mip03-group-events.ts";
import { parseWelcomeRumor } from "../../src/engine/mip02-welcome.ts";
import type { Rumor } from "../../src/engine/api.ts";

/** Runs f; passes when it returns or throws a typed HarnessError, fails on any other exception. */
function typedOrOk(f: () => unknown): boolean {
  try {
    f();
    return true;
  } catch (e) {
    return isHarnessError(e);
  }
}

describe("MIP-02/03 decoders never crash on arbitrary input", () => {
  it("base64 round trip", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (b) => {
        expect([...fromBase64Strict(toBase64(b))!]).toEqual([...b]);
      }),
    );
  });

  it("R1 content: random strings and bytes are rejected with typed errors or fail to authenticate", () => {
    const key = new Uint8Array(32).fill(1);
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.uint8Array({ maxLength: 200 }).map(toBase64)), (content) =>
        typedOrOk(() => {
          const raw = decodeContentR1(content);
          expect(tryDecryptContentR1(key, raw)).toBeUndefined();
        }),
      ),
    );
  });

  it("R0 content: random payloads are rejected with typed errors or fail to authenticate", () => {
    const ck = new Uint8Array(32).fill(2);
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.uint8Array({ minLength: 90, maxLength: 300 }).map((b) => toBase64(Uint8Array.from([2, ...b])))), (content) =>
        typedOrOk(() => expect(tryDecryptContentR0(ck, content)).toBeUndefined()),
      ),
    );
  });

  it("inner rumors: random bytes and JSON are rejected with typed errors", () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 200 }), (b) => typedOrOk(() => parseRumor(b, "a".repeat(64)))));
    fc.assert(
      fc.property(fc.jsonValue(), (v) => typedOrOk(() => parseRumor(new TextEncoder().encode(JSON.stringify(v)), "a".repeat(64)))),
    );
  });

  it("445 envelopes with random tags and content are rejected with typed errors", () => {
    const sk = new Uint8Array(32).fill(3);
    fc.assert(
      fc.property(fc.array(fc.array(fc.string(), { maxLength: 3 }), { maxLength: 4 }), fc.string(), fc.integer({ min: 0, max: 2000 }), (tags, content, kind) => {
        const ev = finalizeEvent({ kind, created_at: 1, tags, content }, sk);
        return typedOrOk(() => parseGroupEventEnvelope(ev));
      }),
      { numRuns: 60 },
    );
  });

  it("Welcome rumors with random tags and content are rejected with typed errors", () => {
    fc.assert(
      fc.property(fc.array(fc.array(fc.string(), { maxLength: 3 }), { maxLength: 4 }), fc.string(), (tags, content) => {
        const rumor: Rumor = { id: "0".repeat(64), pubkey: "1".repeat(64), created_at: 1, kind: 444, tags: [["e", "f".repeat(64)], ["relays", "wss://r.example"], ["encoding", "base64"], ...tags], content };
        return typedOrOk(() => parseWelcomeRumor(rumor, "R1"));
      }),
    );
  });
});
