import { describe, it, expect, beforeAll, afterAll } from "vitest";
import WebSocket from "ws";
import { Relay, useWebSocketImplementation } from "nostr-tools/relay";
import { finalizeEvent } from "nostr-tools/pure";
import { RelayPool } from "nostr-relaypool";
import { startRelayServer, type RelayServer } from "../../src/simulated-relay/ws-server.ts";
import type { RelayMessage } from "../../src/simulated-relay/messages.ts";
import { openRelay } from "../../src/relays/open.ts";
import type { NostrEvent } from "../../src/relays/types.ts";
import { key, sign, plain, RawClient } from "./helpers.ts";

useWebSocketImplementation(WebSocket);

const A = key("ws-a");
const now = (): number => Math.floor(Date.now() / 1000);

describe("WebSocket relay server", () => {
  let server: RelayServer;
  let stored: NostrEvent;

  beforeAll(async () => {
    server = await startRelayServer({ limits: { maxEventBytes: 4096, maxMessageBytes: 16 * 1024, maxEventsPerSecond: 20 } });
    stored = sign(A.sk, 445, now() - 60, [["h", "g1"]], "already stored");
    const c = await RawClient.open(server.url);
    c.send(["EVENT", plain(stored)]);
    await c.next((m) => m[0] === "OK");
    c.close();
  });
  afterAll(async () => {
    await server.close();
  });

  it("listens on 127.0.0.1 and serves the NIP-11 document for Accept: application/nostr+json", async () => {
    expect(server.url).toMatch(/^ws:\/\/127\.0\.0\.1:\d+$/);
    const res = await fetch(server.url.replace("ws:", "http:"), { headers: { Accept: "application/nostr+json" } });
    expect(res.headers.get("content-type")).toBe("application/nostr+json");
    expect(res.headers.get("access-control-allow-origin")).toBe("*");
    const doc = (await res.json()) as { supported_nips: number[]; limitation: { max_event_bytes: number } };
    expect(doc.supported_nips).toEqual(expect.arrayContaining([1, 9, 11, 40]));
    expect(doc.limitation.max_event_bytes).toBe(4096);
    const plainRes = await fetch(server.url.replace("ws:", "http:"));
    expect(plainRes.headers.get("content-type")).toMatch(/^text\/plain/);
  });

  describe("bad input gets the standard answer; the connection and the stored events survive", () => {
    const cases: { name: string; frame: string | object; expect: (m: RelayMessage) => boolean }[] = [
      { name: "bad JSON", frame: "[\"EVENT\", {", expect: (m) => m[0] === "NOTICE" && /^invalid: .*JSON/.test(m[1]) },
      { name: "not an array", frame: { hello: 1 }, expect: (m) => m[0] === "NOTICE" && m[1].startsWith("invalid:") },
      { name: "empty array", frame: [], expect: (m) => m[0] === "NOTICE" && m[1].startsWith("invalid:") },
      { name: "unknown message type", frame: ["HELLO", 1], expect: (m) => m[0] === "NOTICE" && m[1].startsWith("invalid: unsupported message type") },
      { name: "EVENT with a string", frame: ["EVENT", "nope"], expect: (m) => m[0] === "NOTICE" && m[1].startsWith("invalid:") },
      { name: "REQ with a numeric id", frame: ["REQ", 7, {}], expect: (m) => m[0] === "NOTICE" && m[1].startsWith("invalid:") },
      { name: "REQ with a wrongly typed filter", frame: ["REQ", "bad", { kinds: "445" }], expect: (m) => m[0] === "CLOSED" && m[1] === "bad" && m[2].startsWith("invalid:") },
      { name: "REQ with a non-hex author", frame: ["REQ", "bad2", { authors: ["xyz"] }], expect: (m) => m[0] === "CLOSED" && m[2].startsWith("invalid:") },
      { name: "CLOSE without id", frame: ["CLOSE"], expect: (m) => m[0] === "NOTICE" && m[1].startsWith("invalid:") },
      { name: "binary frame", frame: "", expect: (m) => m[0] === "NOTICE" && m[1].includes("binary") },
    ];
    for (const c of cases) {
      it(c.name, async () => {
        const client = await RawClient.open(server.url);
        if (c.name === "binary frame") client.ws.send(Buffer.from([1, 2, 3]), { binary: true });
        else client.send(c.frame);
        await client.next(c.expect);
        // The connection still works, and nothing stored is lost.
        const from = client.frames.length;
        client.send(["REQ", "after", { ids: [stored.id] }]);
        const ev = await client.next((m) => m[0] === "EVENT" && m[1] === "after", from);
        expect((ev[2] as NostrEvent).id).toBe(stored.id);
        expect(client.open).toBe(true);
        client.close();
      });
    }

    it("wrongly typed event fields", async () => {
      const client = await RawClient.open(server.url);
      const e = sign(A.sk, 1, now(), [], "typed");
      for (const [field, value] of [["kind", "1"], ["created_at", -1], ["tags", [[1]]], ["content", 5], ["pubkey", "ab"], ["sig", "zz"]] as const) {
        const from = client.frames.length;
        client.send(["EVENT", { ...plain(e), [field]: value }]);
        const ok = await client.next((m) => m[0] === "OK", from);
        expect(ok[2]).toBe(false);
        expect(ok[3]).toMatch(/^invalid: /);
      }
      client.close();
    });

    it("invalid id and invalid signature", async () => {
      const client = await RawClient.open(server.url);
      const e = sign(A.sk, 1, now(), [], "sig test");
      client.send(["EVENT", { ...plain(e), content: "changed" }]);
      expect(await client.next((m) => m[0] === "OK")).toEqual(["OK", e.id, false, "invalid: event id does not match the serialized event"]);
      const from = client.frames.length;
      const other = sign(key("ws-b").sk, 1, now(), [], "x");
      client.send(["EVENT", { ...plain(e), sig: other.sig }]);
      expect(await client.next((m) => m[0] === "OK", from)).toEqual(["OK", e.id, false, "invalid: signature verification failed"]);
      client.close();
    });

    it("oversized event and oversized frame", async () => {
      const client = await RawClient.open(server.url);
      const big = sign(A.sk, 1, now(), [], "x".repeat(5000));
      client.send(["EVENT", plain(big)]);
      const ok = await client.next((m) => m[0] === "OK");
      expect(ok.slice(0, 3)).toEqual(["OK", big.id, false]);
      expect(ok[3]).toMatch(/^invalid: event too large/);
      const huge = sign(A.sk, 1, now(), [], "y".repeat(20_000));
      const from = client.frames.length;
      client.send(["EVENT", plain(huge)]);
      const ok2 = await client.next((m) => m[0] === "OK", from);
      expect(ok2.slice(0, 3)).toEqual(["OK", huge.id, false]);
      expect(ok2[3]).toMatch(/^invalid: message too large/);
      expect(client.open).toBe(true);
      client.close();
    });

    it("a flood of EVENTs is rate-limited, the rest accepted, the connection kept", async () => {
      const client = await RawClient.open(server.url);
      const events = Array.from({ length: 40 }, (_, i) => sign(A.sk, 1, now(), [["t", "flood"]], `flood ${i}`));
      for (const e of events) client.send(["EVENT", plain(e)]);
      const start = Date.now();
      while (client.frames.filter((m) => m[0] === "OK").length < 40 && Date.now() - start < 5000) await new Promise((r) => setTimeout(r, 10));
      const oks = client.frames.filter((m) => m[0] === "OK");
      expect(oks).toHaveLength(40);
      const limited = oks.filter((m) => String(m[3]).startsWith("rate-limited:"));
      expect(limited.length).toBeGreaterThan(0);
      expect(oks.filter((m) => m[2] === true).length).toBeGreaterThanOrEqual(20);
      expect(client.open).toBe(true);
      client.close();
    });

    it("too many subscriptions and too many filters get CLOSED", async () => {
      const client = await RawClient.open(server.url);
      const max = server.relay.limits.maxSubscriptions;
      for (let i = 0; i <= max; i++) client.send(["REQ", `s${i}`, { kinds: [9] }]);
      const closed = await client.next((m) => m[0] === "CLOSED");
      expect(closed).toEqual(["CLOSED", `s${max}`, `rate-limited: too many subscriptions (limit ${max})`]);
      const from = client.frames.length;
      client.send(["CLOSE", "s0"]);
      client.send(["REQ", "many", ...Array.from({ length: 20 }, () => ({}))]);
      const c2 = await client.next((m) => m[0] === "CLOSED", from);
      expect(c2[2]).toMatch(/^invalid: too many filters/);
      client.close();
    });
  });

  it("works with nostr-tools Relay as a client (publish, subscribe, live delivery)", async () => {
    const r1 = await Relay.connect(server.url);
    const r2 = await Relay.connect(server.url);
    const got: NostrEvent[] = [];
    await new Promise<void>((resolve) => {
      r2.subscribe([{ kinds: [445], "#h": ["nt"] }], { onevent: (e) => got.push(e as NostrEvent), oneose: () => resolve() });
    });
    const e = sign(A.sk, 445, now(), [["h", "nt"]], "from nostr-tools");
    await r1.publish(e);
    const start = Date.now();
    while (got.length === 0 && Date.now() - start < 3000) await new Promise((r) => setTimeout(r, 10));
    expect(got.map((x) => x.id)).toEqual([e.id]);
    const bad = sign(A.sk, 1, now(), [], "bad");
    await expect(r1.publish({ ...plain(bad), content: "tampered" })).rejects.toThrow(/invalid/);
    r1.close();
    r2.close();
  });

  it("works with nostr-relaypool as a client (publish, stored query with EOSE, live delivery)", async () => {
    const pool = new RelayPool([server.url]);
    const e = sign(A.sk, 445, now(), [["h", "pool"]], "from relaypool");
    pool.publish(e, [server.url]);
    const start = Date.now();
    while (!server.relay.core.store.has(e.id) && Date.now() - start < 3000) await new Promise((r) => setTimeout(r, 10));
    expect(server.relay.core.store.has(e.id)).toBe(true);
    const got: string[] = [];
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error("no EOSE from relaypool")), 5000);
      pool.subscribe([{ kinds: [445], "#h": ["pool"] }], [server.url], (ev) => got.push(ev.id), undefined, () => {
        clearTimeout(t);
        resolve();
      });
    });
    expect(got).toEqual([e.id]);
    const ours = openRelay(server.url);
    await ours.connect();
    const live = sign(A.sk, 445, now(), [["h", "pool"]], "live to relaypool");
    expect((await ours.publish(live)).ok).toBe(true);
    const t0 = Date.now();
    while (!got.includes(live.id) && Date.now() - t0 < 3000) await new Promise((r) => setTimeout(r, 10));
    expect(got).toContain(live.id);
    await ours.close();
    await pool.close();
  });

  it("faults apply over WebSocket too: latency, refused publishes, crash and restart with the store", async () => {
    const s = await startRelayServer({ seed: "ws-faults" });
    try {
      const c = openRelay(s.url, { reconnect: { delayMs: 50 } });
      await c.connect();
      s.nemesis.setLatency({ kind: "fixed", ms: 150 }, { direction: "down" });
      const t0 = Date.now();
      const a = await c.publish(sign(A.sk, 1, now(), [], "slow"));
      expect(a.ok).toBe(true);
      expect(Date.now() - t0).toBeGreaterThanOrEqual(140);
      s.nemesis.clearAll();
      s.nemesis.refusePublish({ message: "blocked: maintenance" });
      expect(await c.publish(sign(A.sk, 1, now(), [], "refused"))).toMatchObject({ ok: false, message: "blocked: maintenance" });
      s.nemesis.clearAll();
      s.nemesis.neverAnswer({ store: true });
      const unanswered = sign(A.sk, 1, now(), [], "never answered");
      expect(await c.publish(unanswered, { timeoutMs: 300 })).toMatchObject({ ok: false, message: "timeout" });
      expect(s.relay.core.store.has(unanswered.id)).toBe(true);
      s.nemesis.clearAll();
      const kept = sign(A.sk, 1, now(), [["t", "kept"]], "kept");
      await c.publish(kept);
      const closed: string[] = [];
      const live: string[] = [];
      c.subscribe([{ "#t": ["kept", "later"] }], { onEvent: (e) => live.push(e.id), onClosed: (r) => closed.push(r) });
      s.nemesis.crash();
      s.nemesis.restart({ keepStore: true });
      const start = Date.now();
      while (c.status !== "open" && Date.now() - start < 3000) await new Promise((r) => setTimeout(r, 10));
      await new Promise((r) => setTimeout(r, 200));
      expect(c.status).toBe("open");
      const later = sign(A.sk, 1, now(), [["t", "later"]], "after restart");
      expect((await c.publish(later)).ok).toBe(true);
      await new Promise((r) => setTimeout(r, 100));
      expect(live).toContain(kept.id);
      expect(live).toContain(later.id);
      expect(s.relay.faultLog.records.map((r) => r.fault)).toEqual(expect.arrayContaining(["latency", "refuse-publish", "refuse-publish.hit", "no-answer.hit", "crash", "restart"]));
      await c.close();
    } finally {
      await s.close();
    }
  });

  it("control endpoint (opt-in): POST /nemesis applies fault commands, GET /faults returns the log, bad commands get 400", async () => {
    const s = await startRelayServer({ control: true });
    const base = s.url.replace("ws:", "http:");
    try {
      const post = (body: unknown) => fetch(`${base}/nemesis`, { method: "POST", body: JSON.stringify(body) });
      const ok = await post([{ fault: "refuse-publish", kinds: [445], message: "blocked: control" }, { fault: "latency", dist: { kind: "fixed", ms: 10 }, direction: "down" }]);
      expect(ok.status).toBe(200);
      const c = openRelay(s.url);
      await c.connect();
      expect(await c.publish(sign(A.sk, 445, now(), [["h", "c"]]))).toMatchObject({ ok: false, message: "blocked: control" });
      const r1 = await post({ fault: "explode" });
      expect(r1.status).toBe(400);
      expect(((await r1.json()) as { code: string }).code).toBe("BAD_FAULT_COMMAND");
      const r2 = await post({ fault: "drop", p: 3 });
      expect(((await r2.json()) as { code: string }).code).toBe("BAD_FAULT");
      const r3 = await fetch(`${base}/nemesis`, { method: "POST", body: "{nope" });
      expect(r3.status).toBe(400);
      // Partition one WebSocket client, named as GET /connections lists it.
      const conns = (await (await fetch(`${base}/connections`)).json()) as { connections: { id: string; client: string }[] };
      expect(conns.connections).toHaveLength(1);
      expect((await post({ fault: "partition", client: conns.connections[0]!.client })).status).toBe(200);
      expect(await c.publish(sign(A.sk, 1, now(), [], "cut off"), { timeoutMs: 300 })).toMatchObject({ ok: false, message: "timeout" });
      expect((await post({ fault: "heal", client: conns.connections[0]!.client })).status).toBe(200);
      const log = (await (await fetch(`${base}/faults`)).json()) as { records: { fault: string }[]; hits: Record<string, number> };
      expect(log.records.map((r) => r.fault)).toEqual(["refuse-publish", "latency", "refuse-publish.hit", "partition", "partition.hit", "heal"]);
      expect(log.hits["refuse-publish.hit"]).toBe(1);
      await c.close();
    } finally {
      await s.close();
    }
    // Off by default.
    const plainServer = await startRelayServer();
    try {
      const res = await fetch(`${plainServer.url.replace("ws:", "http:")}/nemesis`, { method: "POST", body: "{}" });
      expect(await res.text()).toMatch(/marmot-harness relay/);
      expect(plainServer.relay.faultLog.records).toEqual([]);
    } finally {
      await plainServer.close();
    }
  });

  it("WebSocket backend: a relay that is not there is a typed connect error; publish before connect is an error ack", async () => {
    const c = openRelay("ws://127.0.0.1:1", { reconnect: false, connectTimeoutMs: 2000 });
    await expect(c.connect()).rejects.toMatchObject({ code: "RELAY_CONNECT_FAILED" });
    expect(c.status).toBe("closed");
    const idle = openRelay(server.url);
    expect(await idle.publish(sign(A.sk, 1, now()))).toMatchObject({ ok: false, message: "error: not connected" });
  });

  it("NIP-42 with nostr-tools as the client: AUTH, then the recipient reads its gift wrap; others are refused", async () => {
    const s = await startRelayServer({ authRequiredForKinds: [1059] });
    try {
      const B = key("ws-auth-b");
      const wrap = sign(A.sk, 1059, now() - 3600, [["p", B.pk]], "welcome wrap");
      const pubc = openRelay(s.url);
      await pubc.connect();
      expect((await pubc.publish(wrap)).ok).toBe(true);
      const r = await Relay.connect(s.url);
      const start = Date.now();
      while (!(r as unknown as { challenge?: string }).challenge && Date.now() - start < 2000) await new Promise((res) => setTimeout(res, 5));
      await r.auth(async (t) => finalizeEvent(t, B.sk));
      const got: string[] = [];
      await new Promise<void>((resolve) => r.subscribe([{ kinds: [1059], "#p": [B.pk] }], { onevent: (e) => got.push(e.id), oneose: () => resolve() }));
      expect(got).toEqual([wrap.id]);
      r.close();
      const anon = await Relay.connect(s.url);
      const reason = await new Promise<string>((resolve) => anon.subscribe([{ kinds: [1059], "#p": [B.pk] }], { onevent: () => {}, onclose: (why) => resolve(why) }));
      expect(reason).toMatch(/^auth-required:/);
      anon.close();
      await pubc.close();
    } finally {
      await s.close();
    }
  });

  it("signatures are checked on a worker thread when one is configured; forged ones are still refused", async () => {
    const s = await startRelayServer({ verifyWorkers: 1 });
    try {
      const c = openRelay(s.url);
      await c.connect();
      const events = Array.from({ length: 10 }, (_, i) => sign(A.sk, 1, now(), [], `w${i}`));
      const acks = await Promise.all(events.map((e) => c.publish(e)));
      expect(acks.every((a) => a.ok)).toBe(true);
      // Each event: a miss before the worker, then the core finds the worker's result.
      expect(s.relay.core.signatureCache.hits).toBe(10);
      const forged = { ...plain(sign(A.sk, 1, now(), [], "forged")), sig: events[0]!.sig };
      expect(await c.publish(forged)).toMatchObject({ ok: false, message: "invalid: signature verification failed" });
      await c.close();
    } finally {
      await s.close();
    }
  });

  it("a client that stops reading has its events skipped once its socket buffer is full (socket-overflow), and the relay goes on", async () => {
    const s = await startRelayServer({ maxBufferedBytes: 64 * 1024, verifySignatures: false, verifyWorkers: 0 });
    try {
      const slow = await RawClient.open(s.url);
      slow.send(["REQ", "slow", { kinds: [1], "#t": ["bulk"] }]);
      await slow.next((m) => m[0] === "EOSE");
      const sock = (slow.ws as unknown as { _socket: { pause(): void; resume(): void } })._socket;
      sock.pause();
      const pubc = openRelay(s.url);
      await pubc.connect();
      const N = 120;
      const events = Array.from({ length: N }, (_, i) => sign(A.sk, 1, now(), [["t", "bulk"]], `${i} ${"b".repeat(120 * 1024)}`));
      const acks = await Promise.all(events.map((e) => pubc.publish(e, { timeoutMs: 20_000 })));
      expect(acks.every((a) => a.ok)).toBe(true);
      const skipped = s.relay.faultLog.hitCounts.get("socket-overflow.hit") ?? 0;
      expect(skipped).toBeGreaterThan(0);
      sock.resume();
      const t0 = Date.now();
      while (slow.frames.filter((m) => m[0] === "EVENT").length < N - skipped && Date.now() - t0 < 10_000) await new Promise((r) => setTimeout(r, 20));
      expect(slow.frames.filter((m) => m[0] === "EVENT")).toHaveLength(N - skipped);
      // Everything is stored; the slow client can catch up with a query.
      expect(s.relay.core.store.size).toBe(N);
      await pubc.close();
      slow.close();
    } finally {
      await s.close();
    }
  });
});
