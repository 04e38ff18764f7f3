import { describe, it, expect } from "vitest";
import { SimNetwork } from "../../src/simulated-relay/network.ts";
import { openRelay } from "../../src/relays/open.ts";
import type { NostrEvent, PublishAck, RelayConnection } from "../../src/relays/types.ts";
import { finalizeEvent, verifiedSymbol, verifyEvent } from "nostr-tools/pure";
import { key, sign } from "./helpers.ts";

const T0 = 1_767_225_600;
const A = key("a");

async function connected(net: SimNetwork, relay: string, client: string): Promise<RelayConnection> {
  const c = openRelay({ sim: net.relay(relay) }, { client, publishTimeoutMs: 5000 });
  await c.connect();
  return c;
}

describe("simulated relay: in-memory connections on the virtual scheduler", () => {
  it("delivers nothing until the scheduler runs, then publishes, acks and fans out", async () => {
    const net = new SimNetwork({ seed: 1 });
    net.addRelay("r1");
    const alice = await connected(net, "r1", "alice");
    const bob = await connected(net, "r1", "bob");
    const got: NostrEvent[] = [];
    let eose = 0;
    bob.subscribe([{ kinds: [445], "#h": ["g"] }], { onEvent: (e) => got.push(e), onEose: () => eose++ });
    const e = sign(A.sk, 445, T0, [["h", "g"]]);
    let ack: PublishAck | undefined;
    void alice.publish(e).then((a) => (ack = a));
    expect(got).toHaveLength(0);
    await net.scheduler.runUntilIdle();
    expect(ack?.ok).toBe(true);
    expect(eose).toBe(1);
    expect(got.map((x) => x.id)).toEqual([e.id]);
    // The relay verified the signature; the nostr-tools mark travels with the event.
    expect(verifyEvent(got[0]!)).toBe(true);
    expect((got[0] as unknown as Record<symbol, unknown>)[verifiedSymbol]).toBe(true);
    // Each receiver gets its own object.
    got[0]!.content = "mutated";
    const again: NostrEvent[] = [];
    bob.subscribe([{ ids: [e.id] }], { onEvent: (x) => again.push(x) });
    await net.scheduler.runUntilIdle();
    expect(again[0]?.content).toBe("");
  });

  it("applies latency from the distribution in virtual time and keeps FIFO order", async () => {
    const net = new SimNetwork({ seed: 2 });
    const r = net.addRelay("r1");
    r.nemesis.setLatency({ kind: "fixed", ms: 100 });
    const alice = await connected(net, "r1", "alice");
    const start = net.scheduler.now();
    const ack = alice.publish(sign(A.sk, 1, T0));
    await net.scheduler.advance(150);
    expect(net.scheduler.now() - start).toBe(150);
    const early = await Promise.race([ack, Promise.resolve(undefined)]);
    expect(early).toBeUndefined(); // 100 ms up + 100 ms down
    await net.scheduler.advance(100);
    const a = await ack;
    expect(a.ok).toBe(true);
    expect(a.at - start).toBe(200);
    expect(net.faultLog.records[0]).toMatchObject({ relay: "r1", fault: "latency", params: { dist: { kind: "fixed", ms: 100 } } });
  });

  it("partition loses frames both ways until healed; publish times out", async () => {
    const net = new SimNetwork({ seed: 3 });
    const r = net.addRelay("r1");
    const alice = await connected(net, "r1", "alice");
    r.nemesis.partition("alice");
    const p = alice.publish(sign(A.sk, 1, T0), { timeoutMs: 1000 });
    await net.scheduler.runUntilIdle();
    expect((await p).message).toBe("timeout");
    expect(r.core.store.size).toBe(0);
    r.nemesis.heal("alice");
    const ok = alice.publish(sign(A.sk, 1, T0 + 1));
    await net.scheduler.runUntilIdle();
    expect((await ok).ok).toBe(true);
    expect(net.faultLog.records.map((x) => x.fault)).toEqual(["partition", "partition.hit", "heal"]);
  });

  it("refuses publishes with OK false, or never answers (stored or not)", async () => {
    const net = new SimNetwork({ seed: 4 });
    const r = net.addRelay("r1");
    const alice = await connected(net, "r1", "alice");
    r.nemesis.refusePublish({ kinds: [445], message: "blocked: no 445 here" });
    const p1 = alice.publish(sign(A.sk, 445, T0));
    const p2 = alice.publish(sign(A.sk, 1, T0));
    await net.scheduler.runUntilIdle();
    expect(await p1).toMatchObject({ ok: false, message: "blocked: no 445 here" });
    expect((await p2).ok).toBe(true);
    r.nemesis.clearAll();
    r.nemesis.neverAnswer({ store: true });
    const stored = sign(A.sk, 1, T0 + 5);
    const p3 = alice.publish(stored, { timeoutMs: 2000 });
    await net.scheduler.runUntilIdle();
    expect((await p3).message).toBe("timeout");
    expect(r.core.store.has(stored.id)).toBe(true);
    r.nemesis.neverAnswer({ store: false });
    const lost = sign(A.sk, 1, T0 + 6);
    const p4 = alice.publish(lost, { timeoutMs: 2000 });
    await net.scheduler.runUntilIdle();
    expect((await p4).message).toBe("timeout");
    expect(r.core.store.has(lost.id)).toBe(false);
  });

  it("early EOSE hides part of the stored history (sent after, or withheld)", async () => {
    const net = new SimNetwork({ seed: 5 });
    const r = net.addRelay("r1");
    const alice = await connected(net, "r1", "alice");
    for (let i = 0; i < 10; i++) void alice.publish(sign(A.sk, 445, T0 + i, [["h", "g"]]));
    await net.scheduler.runUntilIdle();
    r.nemesis.setEarlyEose({ after: 3 });
    const order: string[] = [];
    alice.subscribe([{ "#h": ["g"] }], { onEvent: () => order.push("E"), onEose: () => order.push("EOSE") });
    await net.scheduler.runUntilIdle();
    expect(order.join(",")).toBe("E,E,E,EOSE,E,E,E,E,E,E,E");
    r.nemesis.setEarlyEose({ fraction: 0.5, withholdRest: true });
    const seen: string[] = [];
    alice.subscribe([{ "#h": ["g"] }], { onEvent: () => seen.push("E"), onEose: () => seen.push("EOSE") });
    await net.scheduler.runUntilIdle();
    expect(seen.join(",")).toBe("E,E,E,E,E,EOSE");
    expect(net.faultLog.records.filter((x) => x.fault === "early-eose.hit")).toHaveLength(2);
  });

  it("slow EOSE arrives after live events", async () => {
    const net = new SimNetwork({ seed: 6 });
    const r = net.addRelay("r1");
    const alice = await connected(net, "r1", "alice");
    const bob = await connected(net, "r1", "bob");
    r.nemesis.setSlowEose(5000, { client: "bob" });
    const order: string[] = [];
    bob.subscribe([{ kinds: [1] }], { onEvent: () => order.push("E"), onEose: () => order.push("EOSE") });
    await net.scheduler.advance(10);
    void alice.publish(sign(A.sk, 1, T0));
    await net.scheduler.runUntilIdle();
    expect(order).toEqual(["E", "EOSE"]);
  });

  it("per-subscription queue overflow silently skips events", async () => {
    const net = new SimNetwork({ seed: 7 });
    const r = net.addRelay("r1");
    r.nemesis.setLatency({ kind: "fixed", ms: 50 }, { direction: "down" });
    r.nemesis.setQueueLimit(3, { client: "bob" });
    const alice = await connected(net, "r1", "alice");
    const bob = await connected(net, "r1", "bob");
    const got: NostrEvent[] = [];
    bob.subscribe([{ kinds: [1] }], { onEvent: (e) => got.push(e) });
    await net.scheduler.runUntilIdle();
    for (let i = 0; i < 10; i++) void alice.publish(sign(A.sk, 1, T0 + i, [], `m${i}`));
    await net.scheduler.runUntilIdle();
    expect(got).toHaveLength(3);
    expect(net.faultLog.hitCounts.get("queue-overflow.hit")).toBe(7);
    expect(r.core.store.size).toBe(10);
  });

  it("crash closes connections and loses subscriptions; restart with or without the store", async () => {
    const net = new SimNetwork({ seed: 8 });
    const r = net.addRelay("r1");
    const alice = await connected(net, "r1", "alice");
    const e = sign(A.sk, 1, T0);
    void alice.publish(e);
    const closed: string[] = [];
    alice.subscribe([{ kinds: [1] }], { onEvent: () => {}, onClosed: (why) => closed.push(why) });
    await net.scheduler.runUntilIdle();
    r.nemesis.crash();
    await net.scheduler.runUntilIdle();
    expect(closed).toEqual(["error: relay crashed"]);
    expect(alice.status).toBe("closed");
    await expect(alice.connect()).rejects.toMatchObject({ code: "RELAY_DOWN" });
    r.nemesis.restart({ keepStore: true });
    await alice.connect();
    expect(r.core.store.has(e.id)).toBe(true);
    r.nemesis.restart({ keepStore: false });
    expect(r.core.store.size).toBe(0);
    expect(net.faultLog.records.map((x) => x.fault)).toEqual(["crash", "restart", "restart"]);
  });

  it("reconnects and resubscribes after a crash when asked to", async () => {
    const net = new SimNetwork({ seed: 9 });
    const r = net.addRelay("r1");
    const bob = openRelay({ sim: r }, { client: "bob", reconnect: { delayMs: 100, maxAttempts: 5 } });
    await bob.connect();
    const alice = await connected(net, "r1", "alice");
    const got: NostrEvent[] = [];
    bob.subscribe([{ kinds: [1] }], { onEvent: (e) => got.push(e) });
    await net.scheduler.runUntilIdle();
    r.nemesis.crash();
    await net.scheduler.advance(50);
    r.nemesis.restart({ keepStore: true });
    await net.scheduler.advance(500);
    expect(bob.status).toBe("open");
    await alice.connect();
    void alice.publish(sign(A.sk, 1, T0));
    await net.scheduler.runUntilIdle();
    expect(got).toHaveLength(1);
  });

  it("retention limit evicts the oldest created_at first (a back-dated gift wrap goes first)", async () => {
    const net = new SimNetwork({ seed: 10 });
    const r = net.addRelay("r1");
    const alice = await connected(net, "r1", "alice");
    const wrap = sign(A.sk, 1059, T0 - 2 * 86400, [["p", A.pk]]);
    void alice.publish(wrap);
    for (let i = 0; i < 3; i++) void alice.publish(sign(A.sk, 445, T0 + i, [["h", "g"]]));
    await net.scheduler.runUntilIdle();
    r.nemesis.setRetention(3);
    expect(r.core.store.has(wrap.id)).toBe(false);
    expect(r.core.store.size).toBe(3);
    expect(net.faultLog.records.find((x) => x.fault === "retention.hit")?.params.eventId).toBe(wrap.id);
  });

  it("drop and duplicate follow their probabilities and are logged", async () => {
    const net = new SimNetwork({ seed: 11 });
    const r = net.addRelay("r1");
    r.nemesis.setDuplicate(1, { direction: "down", client: "bob" });
    const alice = await connected(net, "r1", "alice");
    const bob = await connected(net, "r1", "bob");
    const got: NostrEvent[] = [];
    bob.subscribe([{ kinds: [1] }], { onEvent: (e) => got.push(e) });
    void alice.publish(sign(A.sk, 1, T0));
    await net.scheduler.runUntilIdle();
    expect(got).toHaveLength(2);
    r.nemesis.setDrop(1, { direction: "down", client: "bob" });
    void alice.publish(sign(A.sk, 1, T0 + 1));
    await net.scheduler.runUntilIdle();
    expect(got).toHaveLength(2);
    expect(() => r.nemesis.setDrop(2)).toThrowError(/BAD_FAULT/);
  });

  it("same seed, same run: identical delivery and fault logs; another seed differs", async () => {
    async function run(seed: string) {
      const net = new SimNetwork({ seed });
      const relays = [net.addRelay("r1"), net.addRelay("r2")];
      for (const r of relays) {
        r.nemesis.setLatency({ kind: "lognormal", medianMs: 40, sigma: 0.8 });
        r.nemesis.setReorder(0.3, 200);
        r.nemesis.setDrop(0.05);
        r.nemesis.setDuplicate(0.05);
      }
      const conns: RelayConnection[] = [];
      for (const name of ["alice", "bob", "carol"]) {
        for (const r of relays) conns.push(await connected(net, r.name, name));
      }
      for (const c of conns) c.subscribe([{ kinds: [445], "#h": ["g"] }], { onEvent: () => {} });
      for (let i = 0; i < 20; i++) {
        const c = conns[i % conns.length]!;
        void c.publish(sign(A.sk, 445, T0 + i, [["h", "g"]], `m${i}`));
        await net.scheduler.advance(15);
      }
      await net.scheduler.runUntilIdle();
      return { deliveries: JSON.stringify(net.deliveries), faults: JSON.stringify(net.faultLog.records), n: net.deliveries.length };
    }
    const a = await run("same");
    const b = await run("same");
    const c = await run("other");
    expect(a.n).toBeGreaterThan(100);
    expect(b.deliveries).toBe(a.deliveries);
    expect(b.faults).toBe(a.faults);
    expect(c.deliveries).not.toBe(a.deliveries);
  });

  it("openRelay resolves a network's URLs to in-memory connections and rejects bad URLs with a typed error", async () => {
    const net = new SimNetwork({ seed: 12 });
    const r = net.addRelay("relay-a");
    expect(r.url).toBe("wss://relay-a.sim.invalid");
    const c = openRelay(r.url, { network: net, client: "alice" });
    await c.connect();
    expect(r.openConnections).toBe(1);
    expect(() => openRelay("http://x.example")).toThrowError(expect.objectContaining({ code: "BAD_RELAY_URL" }));
    expect(() => openRelay("not a url")).toThrowError(expect.objectContaining({ code: "BAD_RELAY_URL" }));
    expect(() => net.relay("nope")).toThrowError(expect.objectContaining({ code: "UNKNOWN_RELAY" }));
    expect(() => net.addRelay("relay-a")).toThrowError(expect.objectContaining({ code: "DUPLICATE_RELAY" }));
  });

  it("relays of a network share verified signatures: an event published to two relays is verified once", async () => {
    const net = new SimNetwork({ seed: 13 });
    const r1 = net.addRelay("r1"), r2 = net.addRelay("r2");
    const c1 = await connected(net, "r1", "alice");
    const c2 = await connected(net, "r2", "alice");
    const e = sign(A.sk, 1, T0);
    void c1.publish(e);
    void c2.publish(e);
    await net.scheduler.runUntilIdle();
    expect(r1.core.store.has(e.id) && r2.core.store.has(e.id)).toBe(true);
    expect(net.signatureCache.hits).toBe(1);
    // A forged signature is still refused (the cache only holds pairs that verified).
    const forged = { ...JSON.parse(JSON.stringify(sign(A.sk, 1, T0 + 1))), sig: e.sig } as NostrEvent;
    const ack = c1.publish(forged);
    await net.scheduler.runUntilIdle();
    expect((await ack).message).toMatch(/^invalid: signature/);
  });

  it("disconnect closes one client's connections; clearAll lifts every rule and is logged", async () => {
    const net = new SimNetwork({ seed: 14 });
    const r = net.addRelay("r1");
    const alice = await connected(net, "r1", "alice");
    const bob = await connected(net, "r1", "bob");
    r.nemesis.setDrop(1);
    r.nemesis.disconnect("bob");
    await net.scheduler.runUntilIdle();
    expect(bob.status).toBe("closed");
    expect(alice.status).toBe("open");
    r.nemesis.clearAll();
    const ack = alice.publish(sign(A.sk, 1, T0));
    await net.scheduler.runUntilIdle();
    expect((await ack).ok).toBe(true);
    expect(net.faultLog.records.map((x) => x.fault)).toEqual(["drop", "disconnect", "clear"]);
  });

  it("a subscriber whose handler throws does not stall its connection; the error is reported by the scheduler", async () => {
    const net = new SimNetwork({ seed: 15 });
    const sched = net.scheduler as import("../../src/sim/clock.ts").VirtualScheduler;
    net.addRelay("r1");
    const alice = await connected(net, "r1", "alice");
    const bob = await connected(net, "r1", "bob");
    const got: string[] = [];
    bob.subscribe([{ kinds: [1] }], {
      onEvent: (e) => {
        got.push(e.content);
        if (e.content === "boom") throw new Error("handler failed");
      },
    });
    await net.scheduler.runUntilIdle();
    for (const c of ["boom", "after"]) void alice.publish(sign(A.sk, 1, T0, [], c));
    await net.scheduler.runUntilIdle();
    expect(got).toEqual(["boom", "after"]);
    expect(sched.taskErrors.map((x) => String(x.error))).toEqual(["Error: handler failed"]);
  });

  it("NIP-42 through the in-memory backend: a client with a signer authenticates and fetches its Welcome; one without is refused", async () => {
    const net = new SimNetwork({ seed: 16 });
    const r = net.addRelay("inbox", { authRequiredForKinds: [1059] });
    const alice = await connected(net, "inbox", "alice");
    const B = key("bob");
    const wrap = sign(A.sk, 1059, T0 - 86400, [["p", B.pk]], "welcome");
    const ack = alice.publish(wrap);
    await net.scheduler.runUntilIdle();
    expect((await ack).ok).toBe(true);
    const withSigner = openRelay({ sim: r }, { client: "bob", authSigner: (t) => finalizeEvent(t, B.sk) as NostrEvent });
    await withSigner.connect();
    const got: string[] = [];
    let eose = false;
    withSigner.subscribe([{ kinds: [1059], "#p": [B.pk] }], { onEvent: (e) => got.push(e.id), onEose: () => (eose = true) });
    await net.scheduler.runUntilIdle();
    expect(eose).toBe(true);
    expect(got).toEqual([wrap.id]);
    expect((withSigner as unknown as { authenticatedAs?: string }).authenticatedAs).toBe(B.pk);
    const noSigner = await connected(net, "inbox", "carol");
    const closed: string[] = [];
    noSigner.subscribe([{ kinds: [1059], "#p": [B.pk] }], { onEvent: () => {}, onClosed: (why) => closed.push(why) });
    await net.scheduler.runUntilIdle();
    expect(closed).toHaveLength(1);
    expect(closed[0]).toMatch(/^auth-required:/);
  });

  it("NIP-42 for publishing: OK false auth-required:, then the client authenticates and the event is sent again", async () => {
    const net = new SimNetwork({ seed: 17 });
    const r = net.addRelay("closed", { authRequiredToPublish: true });
    const anon = await connected(net, "closed", "anon");
    const refused = anon.publish(sign(A.sk, 1, T0, [], "anon"));
    await net.scheduler.runUntilIdle();
    expect(await refused).toMatchObject({ ok: false });
    expect((await refused).message).toMatch(/^auth-required:/);
    const alice = openRelay({ sim: r }, { client: "alice", authSigner: (t) => finalizeEvent(t, A.sk) as NostrEvent });
    await alice.connect();
    const e = sign(A.sk, 1, T0, [], "authenticated");
    const ok = alice.publish(e);
    await net.scheduler.runUntilIdle();
    expect(await ok).toMatchObject({ ok: true, eventId: e.id });
    expect(r.core.store.has(e.id)).toBe(true);
  });
});
