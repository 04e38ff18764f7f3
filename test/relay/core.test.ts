import { describe, it, expect } from "vitest";
import { RelayCore } from "../../src/simulated-relay/core.ts";
import type { RelayMessage } from "../../src/simulated-relay/messages.ts";
import { key, sign, plain, hex32 } from "./helpers.ts";

const T0 = 1_767_225_600; // 2026-01-01 in seconds

function setup(opts: Partial<ConstructorParameters<typeof RelayCore>[0]> = {}) {
  let now = T0 * 1000;
  const clock = { now: () => now };
  const core = new RelayCore({ name: "r", clock, ...opts });
  const out: RelayMessage[] = [];
  const s = core.openSession("alice", (m) => out.push(m));
  const req = (id: string, ...filters: object[]): RelayMessage[] => {
    out.length = 0;
    s.handle(["REQ", id, ...filters]);
    return out.slice();
  };
  const pub = (e: object): RelayMessage => {
    out.length = 0;
    s.handle(["EVENT", plain(e)]);
    return out.find((m) => m[0] === "OK" || m[0] === "NOTICE") as RelayMessage;
  };
  const ids = (frames: RelayMessage[]): string[] => frames.filter((m) => m[0] === "EVENT").map((m) => (m[2] as { id: string }).id);
  return { core, s, out, req, pub, ids, setNow: (sec: number) => (now = sec * 1000) };
}

const A = key("a");
const B = key("b");

describe("relay core: NIP-01", () => {
  it("stores, answers OK, and returns events newest first with lowest id first on ties", () => {
    const { req, pub, ids } = setup();
    const e1 = sign(A.sk, 1, T0 - 10, [], "one");
    const e2 = sign(A.sk, 1, T0 - 5, [], "two");
    const e3 = sign(A.sk, 1, T0 - 5, [], "three");
    for (const e of [e1, e2, e3]) expect(pub(e)).toEqual(["OK", e.id, true, ""]);
    const got = ids(req("s", { kinds: [1] }));
    const tie = [e2.id, e3.id].sort();
    expect(got).toEqual([...tie, e1.id]);
    expect(req("s2", { kinds: [1] }).at(-1)).toEqual(["EOSE", "s2"]);
  });

  it("filters by ids, authors, kinds, #tags, since, until, limit, and ORs several filters", () => {
    const { req, pub, ids } = setup();
    const g1 = hex32("g1"), g2 = hex32("g2");
    const a1 = sign(A.sk, 445, T0 - 30, [["h", g1]]);
    const a2 = sign(A.sk, 445, T0 - 20, [["h", g2]]);
    const b1 = sign(B.sk, 445, T0 - 10, [["h", g1]]);
    const b2 = sign(B.sk, 1, T0 - 5, [["p", A.pk]]);
    for (const e of [a1, a2, b1, b2]) pub(e);
    expect(ids(req("x", { ids: [a2.id] }))).toEqual([a2.id]);
    expect(ids(req("x", { authors: [A.pk] }))).toEqual([a2.id, a1.id]);
    expect(ids(req("x", { kinds: [445], "#h": [g1] }))).toEqual([b1.id, a1.id]);
    expect(ids(req("x", { "#h": [g1, g2] }))).toEqual([b1.id, a2.id, a1.id]);
    expect(ids(req("x", { "#p": [A.pk] }))).toEqual([b2.id]);
    expect(ids(req("x", { since: T0 - 20, until: T0 - 10 }))).toEqual([b1.id, a2.id]);
    expect(ids(req("x", { kinds: [445], limit: 2 }))).toEqual([b1.id, a2.id]);
    expect(ids(req("x", { kinds: [445], limit: 0 }))).toEqual([]);
    expect(ids(req("x", { ids: [a1.id] }, { kinds: [1] }))).toEqual([b2.id, a1.id]);
    expect(ids(req("x", { kinds: [445], authors: [B.pk], "#h": [g2] }))).toEqual([]);
  });

  it("delivers live events to matching subscriptions only, and stops after CLOSE", () => {
    const { core, s, pub } = setup();
    const other: RelayMessage[] = [];
    const bob = core.openSession("bob", (m) => other.push(m));
    bob.handle(["REQ", "live", { kinds: [445], "#h": ["aa"] }]);
    const hit = sign(A.sk, 445, T0, [["h", "aa"]]);
    const miss = sign(A.sk, 445, T0, [["h", "bb"]]);
    pub(hit);
    pub(miss);
    expect(other.filter((m) => m[0] === "EVENT").map((m) => (m[2] as { id: string }).id)).toEqual([hit.id]);
    bob.handle(["CLOSE", "live"]);
    pub(sign(A.sk, 445, T0 + 1, [["h", "aa"]]));
    expect(other.filter((m) => m[0] === "EVENT")).toHaveLength(1);
    expect(s.subs.size).toBe(0);
  });

  it("answers duplicates with OK true duplicate:", () => {
    const { pub } = setup();
    const e = sign(A.sk, 1, T0);
    pub(e);
    const r = pub(e);
    expect(r[0]).toBe("OK");
    expect(r[2]).toBe(true);
    expect(String(r[3])).toMatch(/^duplicate:/);
  });

  it("replaces replaceable events (10051) and addressable events (30443 by d), lowest id wins on equal timestamps", () => {
    const { req, pub, ids } = setup();
    const old = sign(A.sk, 10051, T0 - 10, [["relay", "wss://a"]]);
    const neu = sign(A.sk, 10051, T0, [["relay", "wss://b"]]);
    pub(old);
    pub(neu);
    expect(ids(req("x", { kinds: [10051], authors: [A.pk] }))).toEqual([neu.id]);
    const stale = pub(sign(A.sk, 10051, T0 - 20, [["relay", "wss://c"]]));
    expect(stale[2]).toBe(false);
    expect(ids(req("x", { kinds: [10051] }))).toEqual([neu.id]);

    const d1 = hex32("d1"), d2 = hex32("d2");
    const k1 = sign(A.sk, 30443, T0 - 10, [["d", d1]], "kp1");
    const k2 = sign(A.sk, 30443, T0 - 5, [["d", d1]], "kp2");
    const k3 = sign(A.sk, 30443, T0 - 5, [["d", d2]], "kp3");
    for (const e of [k1, k2, k3]) pub(e);
    expect(ids(req("x", { kinds: [30443], authors: [A.pk] })).sort()).toEqual([k2.id, k3.id].sort());
    // Same created_at: the lower id stays whatever the arrival order.
    const t1 = sign(B.sk, 30443, T0, [["d", d1]], "x");
    const t2 = sign(B.sk, 30443, T0, [["d", d1]], "y");
    const [low, high] = t1.id < t2.id ? [t1, t2] : [t2, t1];
    pub(high);
    pub(low);
    expect(ids(req("x", { kinds: [30443], authors: [B.pk] }))).toEqual([low.id]);
    pub(high);
    expect(ids(req("x", { kinds: [30443], authors: [B.pk] }))).toEqual([low.id]);
  });

  it("does not store ephemeral events but delivers them live", () => {
    const { core, req, pub, ids } = setup();
    const got: RelayMessage[] = [];
    core.openSession("bob", (m) => got.push(m)).handle(["REQ", "e", { kinds: [20001] }]);
    const e = sign(A.sk, 20001, T0);
    expect(pub(e)).toEqual(["OK", e.id, true, ""]);
    expect(got.some((m) => m[0] === "EVENT")).toBe(true);
    expect(ids(req("x", { kinds: [20001] }))).toEqual([]);
  });

  it("NIP-09: deletes by e and a, only by the author, and refuses re-publication", () => {
    const { req, pub, ids } = setup();
    const e = sign(A.sk, 1, T0 - 10, [], "bye");
    const kp = sign(A.sk, 30443, T0 - 10, [["d", "k"]]);
    pub(e);
    pub(kp);
    // Someone else's deletion does nothing.
    pub(sign(B.sk, 5, T0, [["e", e.id], ["a", `30443:${A.pk}:k`]]));
    expect(ids(req("x", { authors: [A.pk] }))).toHaveLength(2);
    pub(sign(A.sk, 5, T0, [["e", e.id], ["a", `30443:${A.pk}:k`]]));
    expect(ids(req("x", { authors: [A.pk], kinds: [1, 30443] }))).toEqual([]);
    const again = pub(e);
    expect(again[2]).toBe(false);
    expect(String(again[3])).toMatch(/^blocked:/);
    // An older version at the deleted address is refused; a newer one is accepted.
    expect(pub(sign(A.sk, 30443, T0 - 1, [["d", "k"]]))[2]).toBe(false);
    expect(pub(sign(A.sk, 30443, T0 + 1, [["d", "k"]]))[2]).toBe(true);
    // A replaceable event is addressed kind:pubkey: (empty d).
    const list = sign(A.sk, 10051, T0 - 3, [["relay", "wss://a.example"]]);
    pub(list);
    pub(sign(A.sk, 5, T0, [["a", `10051:${A.pk}:`]]));
    expect(ids(req("x", { kinds: [10051] }))).toEqual([]);
  });

  it("NIP-40: refuses expired events and stops serving events once expired", () => {
    const { req, pub, ids, setNow } = setup();
    const dead = pub(sign(A.sk, 1, T0, [["expiration", String(T0 - 1)]]));
    expect(dead[2]).toBe(false);
    expect(String(dead[3])).toMatch(/^invalid:/);
    const soon = sign(A.sk, 1, T0, [["expiration", String(T0 + 60)]]);
    expect(pub(soon)[2]).toBe(true);
    expect(ids(req("x", { kinds: [1] }))).toEqual([soon.id]);
    setNow(T0 + 61);
    expect(ids(req("x", { kinds: [1] }))).toEqual([]);
  });

  it("NIP-70: refuses protected events only when asked to", () => {
    const prot = sign(A.sk, 30443, T0, [["d", "x"], ["-"]]);
    expect(setup().pub(prot)[2]).toBe(true);
    const r = setup({ refuseProtected: true }).pub(prot);
    expect(r[2]).toBe(false);
    expect(String(r[3])).toMatch(/^blocked:/);
  });

  it("rejects bad ids and signatures with OK false invalid:", () => {
    const { pub, req, ids } = setup();
    const e = sign(A.sk, 1, T0, [], "real");
    const badId = { ...plain(e), content: "tampered" };
    const r1 = pub(badId);
    expect(r1.slice(0, 3)).toEqual(["OK", e.id, false]);
    expect(String(r1[3])).toMatch(/^invalid: event id/);
    const other = sign(B.sk, 1, T0, [], "other");
    const r2 = pub({ ...plain(e), sig: other.sig });
    expect(r2[2]).toBe(false);
    expect(String(r2[3])).toMatch(/^invalid: signature/);
    expect(ids(req("x", {}))).toEqual([]);
  });

  it("enforces limits: event size, subscriptions, filters, rate", () => {
    const { core, s, out, pub, req } = setup({ limits: { maxEventBytes: 2000, maxSubscriptions: 2, maxFilters: 2, maxEventsPerSecond: 3 } });
    const big = pub(sign(A.sk, 1, T0, [], "x".repeat(3000)));
    expect(big[2]).toBe(false);
    expect(String(big[3])).toMatch(/^invalid: event too large/);
    // Size is in UTF-8 bytes: 700 three-byte characters are 2,100 bytes.
    const wide = pub(sign(A.sk, 1, T0, [], "€".repeat(700)));
    expect(String(wide[3])).toMatch(/^invalid: event too large \(2\d{3} bytes/);
    req("a", {});
    req("b", {});
    expect(req("c", {})).toEqual([["CLOSED", "c", "rate-limited: too many subscriptions (limit 2)"]]);
    expect(req("a", { kinds: [1] }).at(-1)).toEqual(["EOSE", "a"]); // replacing an open one is fine
    expect(req("d", {}, {}, {})[0]?.[0]).toBe("CLOSED");
    s.handle(["CLOSE", "a"]);
    expect(req("d", {}, {}, {})[0]?.[2]).toMatch(/^invalid: too many filters/);
    out.length = 0;
    const answers = [1, 2, 3, 4, 5].map((i) => pub(sign(A.sk, 1, T0, [], `flood ${i}`)));
    expect(answers.filter((m) => m[2] === true)).toHaveLength(1); // two tokens went to the oversized events
    expect(answers.filter((m) => String(m[3]).startsWith("rate-limited:")).length).toBe(4);
    expect(core.store.size).toBe(1);
  });

  it("rate-limits REQ floods with CLOSED rate-limited: and refills over time", () => {
    const { req, setNow } = setup({ limits: { maxReqsPerSecond: 5 } });
    const answers = Array.from({ length: 8 }, (_, i) => req(`r${i}`, { kinds: [1] }).at(-1));
    expect(answers.filter((m) => m?.[0] === "EOSE")).toHaveLength(5);
    expect(answers.filter((m) => m?.[0] === "CLOSED" && String(m[2]).startsWith("rate-limited:"))).toHaveLength(3);
    setNow(T0 + 1);
    expect(req("later", { kinds: [1] }).at(-1)).toEqual(["EOSE", "later"]);
  });

  it("answers malformed frames with NOTICE or CLOSED and keeps going", () => {
    const { s, out, pub } = setup();
    const frames: unknown[] = [{}, [], [42], ["NOPE"], ["EVENT"], ["EVENT", "x"], ["REQ"], ["REQ", 5, {}], ["CLOSE"]];
    for (const f of frames) {
      out.length = 0;
      s.handle(f);
      expect(out).toHaveLength(1);
      expect(out[0]?.[0]).toBe("NOTICE");
      expect(String(out[0]?.[1])).toMatch(/^invalid:/);
    }
    out.length = 0;
    s.handleText("{not json");
    expect(out).toEqual([["NOTICE", "invalid: message is not valid JSON"]]);
    out.length = 0;
    s.handle(["REQ", "s", { kinds: ["x"] }]);
    expect(out[0]?.[0]).toBe("CLOSED");
    const e = sign(A.sk, 1, T0);
    expect(pub(e)[2]).toBe(true);
  });

  it("NIP-42: restricted kinds need AUTH; gift wraps go only to their authenticated recipient", () => {
    const { core, s, out, req, pub, ids } = setup({ authRequiredForKinds: [1059] });
    const B2 = key("b2");
    const forA = sign(B.sk, 1059, T0 - 100, [["p", A.pk]], "for a");
    const forB = sign(B.sk, 1059, T0 - 100, [["p", B2.pk]], "for b2");
    pub(forA);
    pub(forB);
    const closed = req("w", { kinds: [1059], "#p": [A.pk] });
    expect(closed).toHaveLength(1);
    expect(closed[0]?.[0]).toBe("CLOSED");
    expect(String(closed[0]?.[2])).toMatch(/^auth-required:/);
    // Other kinds need no AUTH.
    expect(req("n", { kinds: [1] }).at(-1)).toEqual(["EOSE", "n"]);
    const auth = (tags: string[][], created = T0) => sign(A.sk, 22242, created, tags);
    const bad = auth([["relay", "wss://r"], ["challenge", "wrong"]]);
    out.length = 0;
    s.handle(["AUTH", plain(bad)]);
    expect(out[0]?.slice(0, 3)).toEqual(["OK", bad.id, false]);
    const stale = auth([["relay", "wss://r"], ["challenge", s.challenge]], T0 - 3600);
    out.length = 0;
    s.handle(["AUTH", plain(stale)]);
    expect(out[0]?.[2]).toBe(false);
    const good = auth([["relay", "wss://r"], ["challenge", s.challenge]]);
    out.length = 0;
    s.handle(["AUTH", plain(good)]);
    expect(out).toEqual([["OK", good.id, true, ""]]);
    // Authenticated as A: only A's gift wraps, even when asking for everyone's.
    expect(ids(req("w2", { kinds: [1059] }))).toEqual([forA.id]);
    // Live: a new wrap for B2 is not delivered to A's subscription; one for A is.
    const live: RelayMessage[] = [];
    const other = core.openSession("x", (m) => live.push(m));
    expect(live[0]?.[0]).toBe("AUTH");
    out.length = 0;
    pub(sign(B.sk, 1059, T0, [["p", B2.pk]], "live b2"));
    const liveA = sign(B.sk, 1059, T0, [["p", A.pk]], "live a");
    pub(liveA);
    expect(ids(out)).toEqual([liveA.id]);
    expect(other.authed.size).toBe(0);
  });
});
