import { describe, it, expect } from "vitest";
import fc from "fast-check";
import { EventStore, addressOf } from "../../src/simulated-relay/store.ts";
import { compareNewestFirst, matchFilter } from "../../src/simulated-relay/filter.ts";
import type { Filter, NostrEvent } from "../../src/simulated-relay/messages.ts";

const hex = (n: number, width = 64): string => n.toString(16).padStart(width, "0");

// Events for the store alone (the store trusts what the core validated): ids unique, small value spaces.
const eventArb = (i: number) =>
  fc.record({
    kind: fc.constantFrom(1, 445, 1059, 7),
    created_at: fc.integer({ min: 100, max: 130 }),
    author: fc.integer({ min: 0, max: 3 }),
    h: fc.option(fc.constantFrom("g1", "g2", "g3"), { nil: undefined }),
    p: fc.option(fc.constantFrom("p1", "p2"), { nil: undefined }),
  }).map((r): NostrEvent => ({
    id: hex(i * 7919 + 13),
    pubkey: hex(r.author),
    kind: r.kind,
    created_at: r.created_at,
    content: "",
    sig: "0".repeat(128),
    tags: [...(r.h ? [["h", r.h]] : []), ...(r.p ? [["p", r.p]] : [])],
  }));

const eventsArb = fc.integer({ min: 0, max: 60 }).chain((n) => fc.tuple(...Array.from({ length: n }, (_, i) => eventArb(i))));

const filterArb: fc.Arbitrary<Filter> = fc
  .record(
    {
      kinds: fc.subarray([1, 445, 1059, 7], { minLength: 1 }),
      authors: fc.subarray([0, 1, 2, 3].map((a) => hex(a)), { minLength: 1 }),
      "#h": fc.subarray(["g1", "g2", "g3"], { minLength: 1 }),
      "#p": fc.subarray(["p1", "p2"], { minLength: 1 }),
      since: fc.integer({ min: 95, max: 135 }),
      until: fc.integer({ min: 95, max: 135 }),
      limit: fc.integer({ min: 0, max: 20 }),
    },
    { requiredKeys: [] },
  )
  .map((f) => f as Filter);

function naive(events: NostrEvent[], filters: Filter[]): string[] {
  const out = new Map<string, NostrEvent>();
  for (const f of filters) {
    const m = events.filter((e) => matchFilter(f, e)).sort(compareNewestFirst).slice(0, f.limit ?? Infinity);
    for (const e of m) out.set(e.id, e);
  }
  return [...out.values()].sort(compareNewestFirst).map((e) => e.id);
}

describe("event store (property-based)", () => {
  it("indexed queries equal a brute-force scan, for any events and any ORed filters", () => {
    fc.assert(
      fc.property(eventsArb, fc.array(filterArb, { minLength: 1, maxLength: 3 }), (events, filters) => {
        const store = new EventStore();
        for (const e of events) store.put(e);
        expect(store.query(filters, 0).map((e) => e.id)).toEqual(naive(events, filters));
      }),
      { numRuns: 300, seed: 42 },
    );
  });

  it("replaceable and addressable kinds keep exactly the newest version (lowest id on ties), whatever the arrival order", () => {
    const versionArb = fc.record({ kind: fc.constantFrom(10051, 30443, 0), created_at: fc.integer({ min: 1, max: 5 }), author: fc.integer({ min: 0, max: 1 }), d: fc.constantFrom("a", "b") });
    fc.assert(
      fc.property(fc.array(versionArb, { maxLength: 30 }), (vs) => {
        const events = vs.map((v, i): NostrEvent => ({ id: hex(i * 104729 + 7), pubkey: hex(v.author), kind: v.kind, created_at: v.created_at, content: "", sig: "0".repeat(128), tags: v.kind === 30443 ? [["d", v.d]] : [] }));
        const store = new EventStore();
        for (const e of events) store.put(e);
        const best = new Map<string, NostrEvent>();
        for (const e of events) {
          const a = addressOf(e) as string;
          const cur = best.get(a);
          if (!cur || compareNewestFirst(e, cur) < 0) best.set(a, e);
        }
        expect(store.events().map((e) => e.id).sort()).toEqual([...best.values()].map((e) => e.id).sort());
      }),
      { numRuns: 300, seed: 7 },
    );
  });
});
