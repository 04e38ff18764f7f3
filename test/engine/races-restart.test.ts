import { describe, it, expect } from "vitest";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { buildGroup, deliver, kinds, makeEngine, secretFor, RELAYS, T0, type TestEngine } from "./helpers.ts";
import { createEngine } from "../../src/engine/engine.ts";
import { FileStorage } from "../../src/engine/storage-file.ts";
import { createRng } from "../../src/sim/random.ts";

async function commitments(engines: TestEngine[], groupId: string): Promise<string[]> {
  return Promise.all(engines.map(async (e) => (await e.inspect(groupId)).epochCommitment));
}

describe("competing commits for one epoch", () => {
  it("converge on the earliest created_at in both orders of arrival, with rollback", async () => {
    const { admin: alice, rest, groupId } = await buildGroup(["race-a", "race-b", "race-c", "race-d"]);
    const [bob, carol, dave] = rest as [TestEngine, TestEngine, TestEngine];
    // Both start from epoch 1. Alice's commit is earlier (created_at T0+10) and must win.
    const pa = await alice.selfUpdate(groupId, T0 + 10);
    const pb = await bob.selfUpdate(groupId, T0 + 11);
    // Both got a relay OK and apply their own commit.
    await alice.confirmCommit(pa.id);
    await bob.confirmCommit(pb.id);
    // carol: winner first, then loser
    const [c] = await deliver([carol], [pa.event, pb.event], T0 + 12);
    expect(c![0]).toMatchObject({ kind: "commit", committer: alice.pubkey, rolledBack: false });
    expect(c![1]).toMatchObject({ kind: "ignored" });
    // dave: loser first, then winner -> rollback
    const [d] = await deliver([dave], [pb.event, pa.event], T0 + 12);
    expect(d![0]).toMatchObject({ kind: "commit", committer: bob.pubkey });
    expect(d![1]).toMatchObject({ kind: "commit", committer: alice.pubkey, rolledBack: true });
    // bob applied his own losing commit; he rolls back when alice's arrives
    // bob prepares another commit on his (losing) branch before he learns of alice's
    const stale = await bob.selfUpdate(groupId, T0 + 12);
    const [b] = await deliver([bob], [pa.event], T0 + 12);
    expect(b![0]).toMatchObject({ kind: "commit", committer: alice.pubkey, rolledBack: true });
    // it was built on the discarded branch and can no longer be confirmed
    await expect(bob.confirmCommit(stale.id)).rejects.toMatchObject({ code: "COMMIT_SUPERSEDED", details: { rolledBack: true, winner: pa.event.id, epoch: "2" } });
    // alice ignores bob's
    const [a] = await deliver([alice], [pb.event], T0 + 12);
    expect(a![0]).toMatchObject({ kind: "ignored" });
    const cs = await commitments([alice, bob, carol, dave], groupId);
    expect(new Set(cs).size).toBe(1);
    for (const e of [alice, bob, carol, dave]) expect(e.group(groupId)!.epoch).toBe(2n);
    // everyone can talk in the winning epoch
    const m = await bob.sendMessage(groupId, { kind: 9, content: "after the race" }, T0 + 20);
    const outs = await deliver([alice, carol, dave], [m], T0 + 20);
    for (const o of outs) expect(o[0]).toMatchObject({ kind: "application", rumor: { content: "after the race" } });
  });

  it("a pending commit that loses the race cannot be confirmed; a winning one holds the loser", async () => {
    const { admin: alice, rest, groupId } = await buildGroup(["race2-a", "race2-b"]);
    const bob = rest[0]!;
    const pa = await alice.selfUpdate(groupId, T0 + 10);
    const pb = await bob.selfUpdate(groupId, T0 + 10); // same second: lowest id wins
    const aliceWins = pa.event.id < pb.event.id;
    const [winner, loser, pw, pl] = aliceWins ? [alice, bob, pa, pb] : [bob, alice, pb, pa];
    // the loser learns of the winner before its relay OK
    const [lo] = await deliver([loser], [pw.event], T0 + 11);
    expect(lo![0]).toMatchObject({ kind: "commit", rolledBack: false });
    await expect(loser.confirmCommit(pl.id)).rejects.toMatchObject({ code: "COMMIT_SUPERSEDED", details: { rolledBack: false, winner: pw.event.id, epoch: "1" } });
    // the winner sees the loser's commit while its own is pending: held, then ignored after confirm
    const [wo] = await deliver([winner], [pl.event], T0 + 11);
    expect(kinds(wo!)).toEqual(["deferred"]);
    const conf = await winner.confirmCommit(pw.id);
    expect(conf.outcomes?.map((o) => o.kind)).toEqual(["ignored"]);
    const cs = await commitments([alice, bob], groupId);
    expect(cs[0]).toBe(cs[1]);
  });
});

describe("restart from FileStorage", () => {
  it("keeps groups; messages sent or received around a restart stay readable", async () => {
    const dir = await mkdtemp(path.join(tmpdir(), "marmot-engine-"));
    try {
      const alice = await makeEngine("restart-a");
      const bobRng = createRng("restart-b");
      const bobOpts = () => ({ secretKey: secretFor("restart-b"), storage: new FileStorage(dir), randomBytes: (n: number) => bobRng.bytes(n) });
      let bob = await createEngine(bobOpts());
      const g = await alice.createGroup({ name: "persist", relays: RELAYS, now: T0 });
      const kp = await bob.createKeyPackage({ relays: RELAYS, now: T0 });
      // restart between publishing the KeyPackage and receiving the Welcome
      bob = await createEngine(bobOpts());
      const p = await alice.inviteMembers(g.groupId, [kp], T0 + 1);
      const conf = await alice.confirmCommit(p.id);
      const [w] = await deliver([bob], conf.welcomes, T0 + 2);
      expect(w![0]!.kind).toBe("welcome");
      // bob sends just before a restart
      const m1 = await bob.sendMessage(g.groupId, { kind: 9, content: "before restart" }, T0 + 3);
      // alice sends while bob is down
      const m2 = await alice.sendMessage(g.groupId, { kind: 9, content: "while you were away" }, T0 + 4);
      bob = await createEngine(bobOpts());
      expect(bob.group(g.groupId)).toMatchObject({ epoch: 1n, active: true });
      const [o2] = await deliver([bob], [m2], T0 + 5);
      expect(o2![0]).toMatchObject({ kind: "application", rumor: { content: "while you were away" } });
      const m3 = await bob.sendMessage(g.groupId, { kind: 9, content: "after restart" }, T0 + 6);
      const [oa] = await deliver([alice], [m1, m3], T0 + 7);
      expect(oa!.map((o) => (o.kind === "application" ? o.rumor.content : o.kind))).toEqual(["before restart", "after restart"]);
      // a commit, then restart, then more traffic; the retained epoch survives the restart
      const oldEpochMsg = await alice.sendMessage(g.groupId, { kind: 9, content: "still epoch 1" }, T0 + 8);
      const su = await alice.selfUpdate(g.groupId, T0 + 8);
      await alice.confirmCommit(su.id);
      await deliver([bob], [su.event], T0 + 8);
      const late = await alice.sendMessage(g.groupId, { kind: 9, content: "epoch 2" }, T0 + 9);
      bob = await createEngine(bobOpts());
      const [ol] = await deliver([bob], [late, oldEpochMsg], T0 + 10);
      expect(ol![0]).toMatchObject({ kind: "application", epoch: 2n });
      // the past epoch's receiver data was stored on its own and reloaded
      expect(ol![1]).toMatchObject({ kind: "application", epoch: 1n, rumor: { content: "still epoch 1" } });
      expect((await bob.inspect(g.groupId)).epochCommitment).toBe((await alice.inspect(g.groupId)).epochCommitment);
      expect((await bob.inspect(g.groupId)).epochKeys.map((k) => k.epoch)).toEqual([1n, 2n]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("the noPersistAfterSend quirk reproduces the lost-state bug (marmot-ts 0.5.1)", async () => {
    const dir = await mkdtemp(path.join(tmpdir(), "marmot-engine-q-"));
    try {
      const alice = await makeEngine("quirk-a");
      const rng = createRng("quirk-b");
      const opts = () => ({ secretKey: secretFor("quirk-b"), storage: new FileStorage(dir), randomBytes: (n: number) => rng.bytes(n), quirks: { noPersistAfterSend: true } });
      let bob = await createEngine(opts());
      const g = await alice.createGroup({ name: "q", relays: RELAYS, now: T0 });
      const kp = await bob.createKeyPackage({ relays: RELAYS, now: T0 });
      const p = await alice.inviteMembers(g.groupId, [kp], T0 + 1);
      const conf = await alice.confirmCommit(p.id);
      await deliver([bob], conf.welcomes, T0 + 2);
      const m1 = await bob.sendMessage(g.groupId, { kind: 9, content: "one" }, T0 + 3);
      bob = await createEngine(opts());
      const m2 = await bob.sendMessage(g.groupId, { kind: 9, content: "two" }, T0 + 4);
      const [o] = await deliver([alice], [m1, m2], T0 + 5);
      expect(o![0]).toMatchObject({ kind: "application" });
      // the second message reuses the first one's key generation: MLS refuses it
      expect(o![1]).toMatchObject({ kind: "rejected", error: { code: "MLS_DECRYPT_FAILED" } });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("an event held for a future epoch survives a restart", async () => {
    const dir = await mkdtemp(path.join(tmpdir(), "marmot-engine-h-"));
    try {
      const alice = await makeEngine("held-a");
      const rng = createRng("held-b");
      const opts = () => ({ secretKey: secretFor("held-b"), storage: new FileStorage(dir), randomBytes: (n: number) => rng.bytes(n) });
      let bob = await createEngine(opts());
      const g = await alice.createGroup({ name: "h", relays: RELAYS, now: T0 });
      const kp = await bob.createKeyPackage({ relays: RELAYS, now: T0 });
      const p = await alice.inviteMembers(g.groupId, [kp], T0 + 1);
      const conf = await alice.confirmCommit(p.id);
      await deliver([bob], conf.welcomes, T0 + 2);
      const su = await alice.selfUpdate(g.groupId, T0 + 3);
      await alice.confirmCommit(su.id);
      const m = await alice.sendMessage(g.groupId, { kind: 9, content: "from the future" }, T0 + 4);
      expect(kinds(await bob.processEvent(m, T0 + 5))).toEqual(["deferred"]);
      bob = await createEngine(opts());
      const o = await bob.processEvent(su.event, T0 + 6);
      expect(kinds(o)).toEqual(["commit", "application"]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("a commit published just before the committer restarts can still be confirmed after it", async () => {
    const dir = await mkdtemp(path.join(tmpdir(), "marmot-engine-p-"));
    try {
      const rng = createRng("pend-a");
      const opts = () => ({ secretKey: secretFor("pend-a"), storage: new FileStorage(dir), randomBytes: (n: number) => rng.bytes(n) });
      let alice = await createEngine(opts());
      const bob = await makeEngine("pend-b");
      const g = await alice.createGroup({ name: "p", relays: RELAYS, now: T0 });
      const kp = await bob.createKeyPackage({ relays: RELAYS, now: T0 });
      const p = await alice.inviteMembers(g.groupId, [kp], T0 + 1);
      // the commit went to the relays; alice restarts before the OK is handled
      alice = await createEngine(opts());
      expect(kinds(await alice.processEvent(p.event, T0 + 2))).toEqual(["duplicate"]);
      const conf = await alice.confirmCommit(p.id);
      expect(conf.epoch).toBe(1n);
      const [o] = await deliver([bob], conf.welcomes, T0 + 3);
      expect(o![0]!.kind).toBe("welcome");
      const m = await bob.sendMessage(g.groupId, { kind: 9, content: "made it" }, T0 + 4);
      expect((await alice.processEvent(m, T0 + 4))[0]).toMatchObject({ kind: "application", rumor: { content: "made it" } });
      // confirmed commits leave nothing behind
      alice = await createEngine(opts());
      await expect(alice.confirmCommit(p.id)).rejects.toMatchObject({ code: "COMMIT_UNKNOWN" });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("a winning late commit rolls back a restarted engine to its stored snapshot", async () => {
    const dir = await mkdtemp(path.join(tmpdir(), "marmot-engine-r-"));
    try {
      const { admin: alice, rest, groupId } = await buildGroup(["rb-a", "rb-b"]);
      const bob = rest[0]!;
      // carol joins with durable storage
      const rng = createRng("rb-c");
      const opts = () => ({ secretKey: secretFor("rb-c"), storage: new FileStorage(dir), randomBytes: (n: number) => rng.bytes(n) });
      let carol = await createEngine(opts());
      const kp = await carol.createKeyPackage({ relays: RELAYS, now: T0 });
      const p = await alice.inviteMembers(groupId, [kp], T0 + 5);
      const conf = await alice.confirmCommit(p.id);
      await deliver([bob], [p.event], T0 + 5);
      await deliver([carol], conf.welcomes, T0 + 6);
      const pa = await alice.selfUpdate(groupId, T0 + 10);
      const pb = await bob.selfUpdate(groupId, T0 + 11);
      await alice.confirmCommit(pa.id);
      await bob.confirmCommit(pb.id);
      await deliver([carol], [pb.event], T0 + 12); // the loser first
      carol = await createEngine(opts());
      const [c] = await deliver([carol], [pa.event], T0 + 13);
      expect(c![0]).toMatchObject({ kind: "commit", committer: alice.pubkey, rolledBack: true });
      expect((await carol.inspect(groupId)).epochCommitment).toBe((await alice.inspect(groupId)).epochCommitment);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
