import { describe, it, expect } from "vitest";
import fc from "fast-check";
import { RelayCore } from "../../src/simulated-relay/core.ts";
import type { RelayMessage } from "../../src/simulated-relay/messages.ts";
import { key, sign, plain } from "./helpers.ts";

const T0 = 1_767_225_600;
const A = key("frames");
const valid = [0, 1, 2].map((i) => plain(sign(A.sk, 1, T0, [["t", "x"]], `v${i}`)));

// Anything JSON can carry, biased towards almost-valid frames.
const junk = fc.oneof(fc.jsonValue(), fc.string(), fc.integer(), fc.constant(null));
const eventish = fc.oneof(
  fc.constantFrom(...valid),
  fc.record({ id: fc.oneof(fc.constantFrom(valid[0]!.id), fc.string()), pubkey: junk, created_at: junk, kind: junk, tags: junk, content: junk, sig: junk }, { requiredKeys: [] }),
  junk,
);
const filterish = fc.oneof(fc.record({ kinds: fc.array(fc.integer({ min: -2, max: 70000 })), limit: fc.integer({ min: -1, max: 10 }), "#t": fc.array(fc.string()) }, { requiredKeys: [] }), junk);
const frame = fc.oneof(
  fc.tuple(fc.constant("EVENT"), eventish),
  fc.tuple(fc.constant("REQ"), fc.oneof(fc.string({ maxLength: 80 }), junk), filterish),
  fc.tuple(fc.constant("CLOSE"), junk),
  fc.tuple(fc.constant("AUTH"), eventish),
  fc.array(junk, { maxLength: 4 }),
  junk,
);

describe("relay core under arbitrary frames (property-based)", () => {
  it("never throws, answers every frame, and never loses what it stored", () => {
    fc.assert(
      fc.property(fc.array(fc.oneof(frame, fc.string().map((s) => ({ raw: s }))), { maxLength: 30 }), (frames) => {
        const core = new RelayCore({ name: "fuzz", clock: { now: () => T0 * 1000 }, limits: { maxSubscriptions: 5 } });
        const out: RelayMessage[] = [];
        const s = core.openSession("fuzzer", (m) => out.push(m));
        s.handle(["EVENT", valid[0]]);
        const keep = valid[0]!.id;
        for (const f of frames) {
          const before = out.length;
          if (typeof f === "object" && f !== null && !Array.isArray(f) && "raw" in f) s.handleText(String((f as { raw: string }).raw));
          else s.handle(f);
          const answers = out.slice(before);
          // CLOSE is the one frame NIP-01 leaves unanswered.
          const isClose = Array.isArray(f) && f[0] === "CLOSE" && f.length === 2 && typeof f[1] === "string";
          if (!isClose) expect(answers.length).toBeGreaterThan(0);
          for (const m of answers) expect(["OK", "NOTICE", "EOSE", "CLOSED", "EVENT"]).toContain(m[0]);
          for (const m of answers) if (m[0] === "OK" && m[2] === false) expect(m[3]).toMatch(/^(invalid|blocked|duplicate|rate-limited|auth-required|error): /);
        }
        expect(core.store.has(keep)).toBe(true);
      }),
      { numRuns: 300, seed: 3 },
    );
  });
});
