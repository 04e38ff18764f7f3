import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { parseCapture, type CaptureRecord } from "../../src/capture.ts";
import { judge, parseKeyring } from "../../src/checkers/compliance/index.ts";
import { loadFixture } from "./helpers.ts";

const fx = loadFixture("engine-r1");
const lines = fx.records.map((r) => JSON.stringify(r));
const KINDS = [443, 30443, 10051, 445, 1059, 5, 13, 444, 1];

const hexOf = (n: number): fc.Arbitrary<string> => fc.uint8Array({ minLength: n, maxLength: n }).map((b) => Buffer.from(b).toString("hex"));
const anyTag = fc.array(fc.oneof(fc.string(), fc.constantFrom("h", "p", "d", "e", "i", "encoding", "relays", "mls_extensions", "expiration")), { maxLength: 4 });
const eventish = fc.record(
  {
    id: fc.oneof(hexOf(32), fc.string()),
    pubkey: fc.oneof(hexOf(32), fc.string()),
    kind: fc.oneof(fc.constantFrom(...KINDS), fc.integer()),
    created_at: fc.oneof(fc.nat(), fc.double()),
    tags: fc.oneof(fc.array(anyTag, { maxLength: 6 }), fc.anything()),
    content: fc.oneof(fc.string(), fc.base64String(), fc.anything()),
    sig: fc.oneof(hexOf(64), fc.string()),
  },
  { requiredKeys: ["id", "kind"] },
);

/** No check threw: judge() catches crashes and reports them as "aborted"; none may appear. */
function noCrash(r: Awaited<ReturnType<typeof judge>>): void {
  expect(r.malformed.filter((m) => m.reason.includes("aborted"))).toEqual([]);
  expect(r.notes.filter((n) => n.includes("aborted"))).toEqual([]);
}

describe("fuzz: the checker never crashes", () => {
  it("random events are judged or reported as malformed, never thrown", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(eventish, { maxLength: 8 }), async (evs) => {
        const records = evs.map((e) => ({ event: e }) as unknown as CaptureRecord);
        const r = await judge(records, { profile: "R1", keyring: fx.keyring, verifySignatures: false });
        // Every random event is either well formed (then judged) or listed as malformed.
        expect(r.findings.length).toBeGreaterThan(0);
        noCrash(r);
        expect(r.malformed.length).toBeGreaterThanOrEqual(evs.filter((e) => typeof e.id !== "string" || !/^[0-9a-f]{64}$/.test(e.id)).length);
      }),
      { numRuns: 80 },
    );
  });

  it("truncated capture lines are reported as malformed input, the rest is still judged", async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 0, max: lines.length - 1 }), fc.integer({ min: 1, max: 400 }), async (i, cut) => {
        const line = lines[i] as string;
        const truncated = line.slice(0, Math.max(0, line.length - cut));
        const text = [...lines.slice(0, i), truncated, ...lines.slice(i + 1)].join("\n");
        const parsed = parseCapture(text);
        const r = await judge(parsed.records, { profile: "R1", keyring: fx.keyring, captureErrors: parsed.errors, verifySignatures: false });
        expect(parsed.errors.length + r.malformed.length).toBeGreaterThan(0);
        expect(r.uniqueEvents).toBeGreaterThanOrEqual(lines.length - 1);
        noCrash(r);
      }),
      { numRuns: 20 },
    );
  });

  it("mutated fields of real events (content, tags) never crash the white-box checks", async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 0, max: fx.records.length - 1 }), fc.string(), fc.array(anyTag, { maxLength: 5 }), async (i, content, tags) => {
        const records = fx.records.map((r, j) => (j === i ? { ...r, event: { ...r.event, content, tags } } : r));
        const r = await judge(records, { profile: "R1", keyring: fx.keyring, verifySignatures: false });
        // The edited event no longer matches its id: it is reported as malformed.
        expect(r.malformed.some((m) => m.eventId === (fx.records[i] as CaptureRecord).event.id)).toBe(true);
        noCrash(r);
      }),
      { numRuns: 30 },
    );
  });
  it("random media, group-image and leaves observations never crash the checker", async () => {
    const gid = fx.keyring.groupEventKeys[0]?.nostrGroupId as string;
    const app = fx.keyring.observations.find((o) => o.kind === "application");
    const eventId = app && app.kind === "application" ? app.eventId : "0".repeat(64);
    const hexish = fc.oneof(fc.string(), fc.uint8Array({ maxLength: 80 }).map((b) => Buffer.from(b).toString("hex")));
    const b64ish = fc.oneof(fc.string(), fc.uint8Array({ maxLength: 80 }).map((b) => Buffer.from(b).toString("base64")));
    const obs = fc.oneof(
      fc.record({ kind: fc.constant("media"), eventId: fc.constant(eventId), url: fc.string(), blob: b64ish, blobSha256: hexish, plainSha256: hexish, epoch: fc.integer() }),
      fc.record({ kind: fc.constant("group-image"), nostrGroupId: fc.constant(gid), groupData: fc.uint8Array({ minLength: 1, maxLength: 200 }).map((b) => Buffer.from(b).toString("hex")), blob: b64ish, uploadPubkey: hexish, uploadAuthEventId: fc.string() }),
      fc.record({ kind: fc.constant("group-state"), nostrGroupId: fc.constant(gid), epoch: fc.integer({ min: 0, max: 5 }), leaves: fc.dictionary(fc.string({ maxLength: 2 }), hexish) }),
    );
    await fc.assert(
      fc.asyncProperty(fc.array(obs, { maxLength: 4 }), async (extra) => {
        const keyring = parseKeyring({ ...fx.keyring, observations: [...fx.keyring.observations, ...extra] });
        const r = await judge(fx.records, { profile: "R1", keyring, verifySignatures: false });
        noCrash(r);
        expect(r.notes.filter((n) => n.includes("aborted"))).toEqual([]);
      }),
      { numRuns: 40 },
    );
  });
});
