import { describe, it, expect } from "vitest";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { bytesToHex } from "@noble/hashes/utils.js";
import { sha256 } from "@noble/hashes/sha2.js";
import { createEngine } from "../../src/engine/engine.ts";
import { SeenEvents, RecentSet } from "../../src/engine/seen-events.ts";
import { FileStorage } from "../../src/engine/storage-file.ts";
import { MemoryStorage } from "../../src/engine/storage-memory.ts";
import { createRng } from "../../src/sim/random.ts";
import { deliver, kinds, makeEngine, secretFor, RELAYS, T0 } from "./helpers.ts";

const idOf = (i: number): string => bytesToHex(sha256(new TextEncoder().encode(`seen/${i}`)));

describe("processed events are remembered across a restart (durable store)", () => {
  it("a replayed Welcome, a replayed 445 (received, and sent by itself) and a re-signed copy are duplicates after a restart", async () => {
    const dir = await mkdtemp(path.join(tmpdir(), "marmot-engine-dedup-"));
    try {
      const alice = await makeEngine("dedup-a");
      const rng = createRng("dedup-b");
      const opts = () => ({ secretKey: secretFor("dedup-b"), storage: new FileStorage(dir), randomBytes: (n: number) => rng.bytes(n) });
      let bob = await createEngine(opts());
      const g = await alice.createGroup({ name: "dedup", relays: RELAYS, now: T0 });
      const kp = await bob.createKeyPackage({ relays: RELAYS, now: T0 });
      const p = await alice.inviteMembers(g.groupId, [kp], T0 + 1);
      const conf = await alice.confirmCommit(p.id);
      const [w] = await deliver([bob], conf.welcomes, T0 + 2);
      expect(kinds(w!)).toEqual(["welcome"]);
      const fromAlice = await alice.sendMessage(g.groupId, { kind: 9, content: "hello bob" }, T0 + 3);
      const [m] = await deliver([bob], [fromAlice], T0 + 3);
      expect(kinds(m!)).toEqual(["application"]);
      const fromBob = await bob.sendMessage(g.groupId, { kind: 9, content: "hello alice" }, T0 + 4);

      bob = await createEngine(opts());
      // the same Welcome again: recognised, not WELCOME_NO_KEY_PACKAGE (the KeyPackage was consumed)
      const [again] = await deliver([bob], [...conf.welcomes, fromAlice, fromBob], T0 + 5);
      expect(again).toEqual([
        { kind: "duplicate", eventId: conf.welcomes[0]!.id },
        { kind: "duplicate", eventId: fromAlice.id },
        { kind: "duplicate", eventId: fromBob.id },
      ]);
      // a copy of alice's 445 under a new id (same content, re-signed): duplicate by content
      const copy = { ...fromAlice, id: "f".repeat(64) };
      expect(await bob.processEvent(copy, T0 + 5)).toEqual([{ kind: "duplicate", eventId: copy.id }]);
      // and the group still works after the restart
      const next = await alice.sendMessage(g.groupId, { kind: 9, content: "still here" }, T0 + 6);
      const [n] = await deliver([bob], [next], T0 + 6);
      expect(n![0]).toMatchObject({ kind: "application", rumor: { content: "still here" } });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("without the persisted memory the replayed Welcome would be refused (the failure this guards against)", async () => {
    const dir = await mkdtemp(path.join(tmpdir(), "marmot-engine-dedup2-"));
    try {
      const alice = await makeEngine("dedup2-a");
      const storage = new FileStorage(dir);
      const opts = () => ({ secretKey: secretFor("dedup2-b"), storage });
      let bob = await createEngine(opts());
      const g = await alice.createGroup({ name: "dedup", relays: RELAYS, now: T0 });
      const kp = await bob.createKeyPackage({ relays: RELAYS, now: T0 });
      const conf = await alice.confirmCommit((await alice.inviteMembers(g.groupId, [kp], T0 + 1)).id);
      await deliver([bob], conf.welcomes, T0 + 2);
      for (const key of await storage.list("seen/")) await storage.delete(key);
      bob = await createEngine(opts());
      const [o] = await deliver([bob], conf.welcomes, T0 + 3);
      expect(o![0]).toMatchObject({ kind: "rejected", error: { code: "WELCOME_NO_KEY_PACKAGE" } });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe("SeenEvents (the bounded, persisted memory)", () => {
  it("round-trips ids and content hashes through storage, in segments", async () => {
    const storage = new MemoryStorage();
    const a = new SeenEvents(storage, { segmentSize: 4, maxEntries: 100 });
    for (let i = 0; i < 10; i++) a.addId(idOf(i));
    a.addContent(idOf(1000));
    await a.flush();
    expect(await storage.list("seen/")).toHaveLength(3);
    const b = new SeenEvents(storage, { segmentSize: 4, maxEntries: 100 });
    await b.load();
    for (let i = 0; i < 10; i++) expect(b.hasId(idOf(i))).toBe(true);
    expect(b.hasContent(idOf(1000))).toBe(true);
    expect(b.hasId(idOf(1000))).toBe(false); // an id and a content hash are different things
    expect(b.size).toBe(11);
    // more entries after a load go on from the last segment
    b.addId(idOf(10));
    b.addId(idOf(11));
    await b.flush();
    const c = new SeenEvents(storage, { segmentSize: 4, maxEntries: 100 });
    await c.load();
    expect(c.hasId(idOf(11))).toBe(true);
    expect(c.size).toBe(13);
  });

  it("stays bounded: the oldest segments leave memory and storage together", async () => {
    const storage = new MemoryStorage();
    const s = new SeenEvents(storage, { segmentSize: 10, maxEntries: 30 });
    for (let i = 0; i < 100; i++) {
      s.addId(idOf(i));
      await s.flush();
    }
    expect(s.size).toBeLessThanOrEqual(30);
    expect(s.hasId(idOf(99))).toBe(true);
    expect(s.hasId(idOf(0))).toBe(false);
    expect((await storage.list("seen/")).length).toBeLessThanOrEqual(3);
    const r = new SeenEvents(storage, { segmentSize: 10, maxEntries: 30 });
    await r.load();
    expect(r.size).toBe(s.size);
    expect(r.hasId(idOf(99))).toBe(true);
    expect(r.hasId(idOf(0))).toBe(false);
  });

  it("does not remember malformed ids, and refuses a corrupt segment with STORAGE_CORRUPT", async () => {
    const storage = new MemoryStorage();
    const s = new SeenEvents(storage);
    s.addId("not-an-id");
    s.addId("AB".repeat(32));
    expect(s.size).toBe(0);
    await storage.put("seen/00000000000000000001", new Uint8Array(40));
    await expect(new SeenEvents(storage).load()).rejects.toMatchObject({ code: "STORAGE_CORRUPT" });
    await storage.put("seen/00000000000000000001", new Uint8Array(33).fill(7));
    await expect(new SeenEvents(storage).load()).rejects.toMatchObject({ code: "STORAGE_CORRUPT" });
    expect(() => new SeenEvents(storage, { segmentSize: 10, maxEntries: 5 })).toThrow(expect.objectContaining({ code: "ENGINE_BAD_OPTION" }));
  });
});

describe("RecentSet (the engine's memory of recent 445 signing keys)", () => {
  it("keeps exactly the last `limit` members, oldest dropped first, and refuses a bad limit", () => {
    const s = new RecentSet<number>(3);
    for (const x of [1, 2, 3, 2, 4]) s.add(x);
    expect([1, 2, 3, 4].map((x) => s.has(x))).toEqual([false, true, true, true]);
    expect(s.size).toBe(3);
    s.add(5);
    expect(s.has(2)).toBe(false);
    expect(() => new RecentSet(0)).toThrow(RangeError);
  });
});
