import { describe, it, expect } from "vitest";
import { buildGroup, deliver, commitAndDeliver, kinds, makeEngine, show, RELAYS, T0, type TestEngine } from "./helpers.ts";
import type { NostrEvent } from "../../src/engine/api.ts";

async function commitments(engines: TestEngine[], groupId: string): Promise<string[]> {
  return Promise.all(engines.map(async (e) => (await e.inspect(groupId)).epochCommitment));
}

describe("engine flows: two members", () => {
  it("invite, messages both ways, self-update, remove", async () => {
    const { admin: alice, rest, groupId } = await buildGroup(["alice2", "bob2"]);
    const bob = rest[0]!;
    expect(alice.group(groupId)!.members.sort()).toEqual([alice.pubkey, bob.pubkey].sort());
    expect(bob.group(groupId)!.epoch).toBe(1n);
    expect(bob.group(groupId)!.groupData.name).toBe("test group");

    const m1 = await alice.sendMessage(groupId, { kind: 9, content: "hello bob" }, T0 + 10);
    const [o1] = await deliver([bob], [m1], T0 + 10);
    expect(o1![0]).toMatchObject({ kind: "application", sender: alice.pubkey, rumor: { content: "hello bob", pubkey: alice.pubkey, kind: 9 } });
    const m2 = await bob.sendMessage(groupId, { kind: 9, content: "hello alice" }, T0 + 11);
    const [o2] = await deliver([alice], [m2], T0 + 11);
    expect(o2![0]).toMatchObject({ kind: "application", sender: bob.pubkey, rumor: { content: "hello alice" } });

    // duplicate delivery
    const [dup] = await deliver([bob], [m1], T0 + 12);
    expect(kinds(dup!)).toEqual(["duplicate"]);

    // non-admin self-update is accepted
    const su = await bob.selfUpdate(groupId, T0 + 20);
    await commitAndDeliver(bob, su, [alice], T0 + 20);
    expect((await commitments([alice, bob], groupId))[0]).toBe((await commitments([alice, bob], groupId))[1]);
    expect(alice.group(groupId)!.epoch).toBe(2n);

    // remove
    const rm = await alice.removeMembers(groupId, [bob.pubkey], T0 + 30);
    const rmConf = await alice.confirmCommit(rm.id);
    // a single Remove has no UpdatePath in ts-mls rc.10: the engine offers a re-keying self-update
    expect(rmConf.followUpCommit).toBeDefined();
    const epochAfterRemove = alice.group(groupId)!.epoch;
    await alice.confirmCommit(rmConf.followUpCommit!.id);
    expect(alice.group(groupId)!.epoch).toBe(epochAfterRemove + 1n);
    const [ob] = await deliver([bob], [rm.event], T0 + 30);
    expect(ob![0]).toMatchObject({ kind: "commit", selfRemoved: true, removed: [bob.pubkey] });
    expect(bob.group(groupId)!.active).toBe(false);
    expect(alice.group(groupId)!.members).toEqual([alice.pubkey]);
    const after = await alice.sendMessage(groupId, { kind: 9, content: "bob cannot read this" }, T0 + 31);
    const [ob2] = await deliver([bob], [after], T0 + 31);
    expect(ob2!.some((o) => o.kind === "application")).toBe(false);
  });
});

describe("engine flows: three members", () => {
  it("SelfRemove with auto-commit by another (non-admin) member", async () => {
    const { admin: alice, rest, groupId } = await buildGroup(["alice3", "bob3", "carol3"]);
    const [bob, carol] = rest as [TestEngine, TestEngine];
    const leave = await carol.leaveGroup(groupId, T0 + 10);
    const outs = await deliver([alice, bob], [leave], T0 + 10);
    for (const o of outs) expect(o[0]).toMatchObject({ kind: "proposal", proposal: "self_remove", sender: carol.pubkey });
    // the leaver never commits its own SelfRemove
    expect(await carol.commitPendingProposals(groupId, T0 + 11)).toBeUndefined();
    const pc = await bob.commitPendingProposals(groupId, T0 + 11);
    expect(pc).toBeDefined();
    const pcConf = await bob.confirmCommit(pc!.id);
    const [oa, oc] = await deliver([alice, carol], [pc!.event], T0 + 12);
    expect(oa![0]).toMatchObject({ kind: "commit", committer: bob.pubkey, removed: [carol.pubkey], selfRemoved: false });
    // the re-keying follow-up (a non-admin self-update) is accepted
    expect(pcConf.followUpCommit).toBeDefined();
    await bob.confirmCommit(pcConf.followUpCommit!.id);
    const [fa] = await deliver([alice], [pcConf.followUpCommit!.event], T0 + 13);
    expect(fa![0]).toMatchObject({ kind: "commit", committer: bob.pubkey, removed: [] });
    expect(oc![0]).toMatchObject({ kind: "commit", selfRemoved: true });
    expect(carol.group(groupId)!.active).toBe(false);
    expect(alice.group(groupId)!.members.sort()).toEqual([alice.pubkey, bob.pubkey].sort());
    const [ca, cb] = await commitments([alice, bob], groupId);
    expect(ca).toBe(cb);
  });

  it("an admin's leave is refused until it self-demotes; group data update by admin", async () => {
    const { admin: alice, rest, groupId } = await buildGroup(["alice4", "bob4", "carol4"]);
    const [bob, carol] = rest as [TestEngine, TestEngine];
    await expect(alice.leaveGroup(groupId, T0 + 5)).rejects.toMatchObject({ code: "ADMIN_MUST_SELF_DEMOTE" });
    // non-admin update refused locally
    await expect(bob.updateGroupData(groupId, { name: "bob's group" }, T0 + 6)).rejects.toMatchObject({ code: "NOT_ADMIN" });
    await expect(bob.removeMembers(groupId, [carol.pubkey], T0 + 6)).rejects.toMatchObject({ code: "NOT_ADMIN" });
    // admin hands admin to bob and renames
    const up = await alice.updateGroupData(groupId, { name: "renamed", adminPubkeys: [bob.pubkey] }, T0 + 7);
    await alice.confirmCommit(up.id);
    const outs = await deliver([bob, carol], [up.event], T0 + 7);
    for (const o of outs) expect(o[0]).toMatchObject({ kind: "commit", groupDataChanged: true });
    expect(carol.group(groupId)!.groupData.name).toBe("renamed");
    expect(carol.group(groupId)!.admins).toEqual([bob.pubkey]);
    // alice is no longer admin and can now leave
    const leave = await alice.leaveGroup(groupId, T0 + 8);
    const [ob, oc0] = await deliver([bob, carol], [leave], T0 + 8);
    expect(ob![0]).toMatchObject({ kind: "proposal", proposal: "self_remove" });
    expect(oc0![0]).toMatchObject({ kind: "proposal", proposal: "self_remove" });
    const pc = (await bob.commitPendingProposals(groupId, T0 + 9))!;
    await bob.confirmCommit(pc.id);
    const [oa, oc] = await deliver([alice, carol], [pc.event], T0 + 9);
    expect(oa![0]).toMatchObject({ kind: "commit", selfRemoved: true });
    expect(oc![0]).toMatchObject({ kind: "commit", removed: [alice.pubkey] });
    // zero admins refused
    await expect(bob.updateGroupData(groupId, { adminPubkeys: [] }, T0 + 10)).rejects.toMatchObject({ code: "ZERO_ADMINS" });
  });

  it("messages from a future epoch are held and delivered after the commit", async () => {
    const { admin: alice, rest, groupId } = await buildGroup(["alice5", "bob5", "carol5"]);
    const [bob, carol] = rest as [TestEngine, TestEngine];
    const su = await alice.selfUpdate(groupId, T0 + 10);
    await alice.confirmCommit(su.id);
    const msg = await alice.sendMessage(groupId, { kind: 9, content: "epoch 2" }, T0 + 11);
    const [early] = await deliver([bob], [msg], T0 + 11);
    expect(kinds(early!)).toEqual(["deferred"]);
    const [late] = await deliver([bob], [su.event], T0 + 12);
    expect(kinds(late!)).toEqual(["commit", "application"]);
    expect(late![1]).toMatchObject({ rumor: { content: "epoch 2" } });
    // a late message from the previous epoch is still readable (retained keys)
    const [c1] = await deliver([carol], [su.event], T0 + 12);
    expect(kinds(c1!)).toEqual(["commit"]);
  });

  it("late application messages from a past epoch are readable", async () => {
    const { admin: alice, rest, groupId } = await buildGroup(["alice6", "bob6"]);
    const bob = rest[0]!;
    const old = await bob.sendMessage(groupId, { kind: 9, content: "sent in epoch 1" }, T0 + 10);
    const su = await alice.selfUpdate(groupId, T0 + 11);
    await commitAndDeliver(alice, su, [bob], T0 + 11);
    const [o] = await deliver([alice], [old], T0 + 12);
    expect(o![0]).toMatchObject({ kind: "application", epoch: 1n, rumor: { content: "sent in epoch 1" } });
  });
});

describe("engine flows: twenty members", () => {
  it("invite 19, messages reach everyone, one removal, all converge, 445 keys never reused", async () => {
    const names = Array.from({ length: 20 }, (_, i) => `m20-${i}`);
    const { engines, admin, rest, groupId } = await buildGroup(names);
    const published: NostrEvent[] = [];
    const m = await rest[7]!.sendMessage(groupId, { kind: 9, content: "from member 8" }, T0 + 10);
    published.push(m);
    const outs = await deliver(engines.filter((e) => e !== rest[7]), [m], T0 + 10);
    for (const o of outs) expect(o[0]).toMatchObject({ kind: "application", sender: rest[7]!.pubkey });
    const rm = await admin.removeMembers(groupId, [rest[3]!.pubkey, rest[4]!.pubkey], T0 + 20);
    published.push(rm.event);
    await commitAndDeliver(admin, rm, rest, T0 + 20);
    const remaining = engines.filter((e) => e !== rest[3] && e !== rest[4]);
    const cs = await commitments(remaining, groupId);
    expect(new Set(cs).size).toBe(1);
    expect(admin.group(groupId)!.members.length).toBe(18);
    for (const e of remaining) {
      const ev = await e.sendMessage(groupId, { kind: 9, content: "x" }, T0 + 30);
      published.push(ev);
    }
    const pubkeys = published.map((e) => e.pubkey);
    expect(new Set(pubkeys).size).toBe(pubkeys.length);
    const accounts = new Set(engines.map((e) => e.pubkey));
    expect(pubkeys.some((p) => accounts.has(p))).toBe(false);
  }, 60_000);
});

describe("engine flows: KeyPackage consumption", () => {
  it("a joiner rotates its KeyPackage under the same d", async () => {
    const alice = await makeEngine("alice7");
    const bob = await makeEngine("bob7");
    const g = await alice.createGroup({ name: "g", relays: RELAYS, now: T0 });
    const kp = await bob.createKeyPackage({ relays: RELAYS, now: T0 });
    const p = await alice.inviteMembers(g.groupId, [kp], T0 + 1);
    expect(p.event.kind).toBe(445);
    const conf = await alice.confirmCommit(p.id);
    expect(conf.welcomes).toHaveLength(1);
    expect(conf.welcomes[0]!.kind).toBe(1059);
    const [o] = await deliver([bob], [conf.welcomes[0]!], T0 + 2);
    const w = o![0]!;
    expect(w.kind, show(o)).toBe("welcome");
    if (w.kind !== "welcome") return;
    expect(w.followUps).toHaveLength(1);
    const d = (e: NostrEvent) => e.tags.find((t) => t[0] === "d")?.[1];
    expect(w.followUps[0]!.kind).toBe(30443);
    expect(d(w.followUps[0]!)).toBe(d(kp));
    expect(w.followUps[0]!.created_at).toBeGreaterThan(kp.created_at);
    // the same Welcome again is a duplicate
    const [o2] = await deliver([bob], [conf.welcomes[0]!], T0 + 3);
    expect(kinds(o2!)).toEqual(["duplicate"]);
  });
});

describe("engine flows: ordering, expiration and persistence quirks", () => {
  it("a SelfRemove commit that arrives before its proposal is held, then applied", async () => {
    const { admin: alice, rest, groupId } = await buildGroup(["ord-a", "ord-b", "ord-c"]);
    const [bob, carol] = rest as [TestEngine, TestEngine];
    const leave = await carol.leaveGroup(groupId, T0 + 10);
    await deliver([bob], [leave], T0 + 10);
    const pc = (await bob.commitPendingProposals(groupId, T0 + 11))!;
    await bob.confirmCommit(pc.id);
    const [early] = await deliver([alice], [pc.event], T0 + 12);
    expect(kinds(early!)).toEqual(["deferred"]);
    const [late] = await deliver([alice], [leave], T0 + 13);
    expect(kinds(late!)).toEqual(["proposal", "commit"]);
    expect(alice.group(groupId)!.members).not.toContain(carol.pubkey);
  });

  it("group data v3 disappearing messages put a NIP-40 expiration on 445s", async () => {
    const alice = await makeEngine("exp-a");
    const g = await alice.createGroup({ name: "ephemeral", relays: RELAYS, now: T0, disappearingMessageSecs: 3600n });
    expect(g.groupData.version).toBe(3);
    const ev = await alice.sendMessage(g.groupId, { kind: 9, content: "gone in an hour" }, T0 + 5);
    expect(ev.tags).toContainEqual(["expiration", String(T0 + 5 + 3600)]);
    expect(ev.tags.filter((t) => t[0] === "h")).toHaveLength(1);
    expect(ev.tags).toContainEqual(["encoding", "base64"]);
    const plain = await alice.createGroup({ name: "plain", relays: RELAYS, now: T0 });
    expect(plain.groupData.version).toBe(2);
    const ev2 = await alice.sendMessage(plain.groupId, { kind: 9, content: "stays" }, T0 + 5);
    expect(ev2.tags.some((t) => t[0] === "expiration")).toBe(false);
  });
});
