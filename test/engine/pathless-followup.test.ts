import { describe, it, expect } from "vitest";
import { buildGroup, commitAndDeliver, deliver, T0, type TestEngine } from "./helpers.ts";

// ts-mls 2.0.0-rc.10 sends a GroupContextExtensions-only commit without an UpdatePath (RFC 9420
// §12.4 requires one): the engine answers with a re-keying self-update in followUpCommit.
describe("pathless commits are followed by a re-keying self-update", () => {
  it("updateGroupData (GCE-only commit) returns followUpCommit, which every member applies", async () => {
    const { admin: alice, rest, groupId } = await buildGroup(["alice-gce", "bob-gce", "carol-gce"]);
    const [bob, carol] = rest as [TestEngine, TestEngine];
    const up = await alice.updateGroupData(groupId, { name: "renamed" }, T0 + 5);
    const conf = await commitAndDeliver(alice, up, [bob, carol], T0 + 5);
    expect(conf.followUpCommit).toBeDefined();
    const epoch = alice.group(groupId)!.epoch;
    await commitAndDeliver(alice, conf.followUpCommit!, [bob, carol], T0 + 6);
    for (const e of [alice, bob, carol]) expect(e.group(groupId)!.epoch).toBe(epoch + 1n);
    const commitments = await Promise.all([alice, bob, carol].map(async (e) => (await e.inspect(groupId)).epochCommitment));
    expect(new Set(commitments).size).toBe(1);
    // the follow-up itself has a path: it needs no further follow-up
    const conf2 = await alice.confirmCommit((await alice.selfUpdate(groupId, T0 + 7)).id);
    expect(conf2.followUpCommit).toBeUndefined();
  });

  it("a removed member cannot read a message sent after the follow-up of her removal", async () => {
    const { admin: alice, rest, groupId } = await buildGroup(["alice-rm", "bob-rm", "carol-rm"]);
    const [bob, carol] = rest as [TestEngine, TestEngine];
    const rm = await alice.removeMembers(groupId, [carol.pubkey], T0 + 5);
    const conf = await commitAndDeliver(alice, rm, [bob, carol], T0 + 5);
    expect(carol.group(groupId)!.active).toBe(false);
    await commitAndDeliver(alice, conf.followUpCommit!, [bob], T0 + 6);
    const carolEpochs = (await carol.inspect(groupId)).epochKeys.map((k) => k.epoch);
    expect(carolEpochs).not.toContain(alice.group(groupId)!.epoch);
    const msg = await alice.sendMessage(groupId, { kind: 9, content: "after the follow-up" }, T0 + 7);
    const [ob, oc] = await deliver([bob, carol], [msg], T0 + 7);
    expect(ob!.some((o) => o.kind === "application")).toBe(true);
    expect(oc!.some((o) => o.kind === "application")).toBe(false);
  });
});
