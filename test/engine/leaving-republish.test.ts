import { describe, it, expect } from "vitest";
import { buildGroup, commitAndDeliver, deliver, T0, type TestEngine } from "./helpers.ts";
import type { ProcessOutcome } from "../../src/engine/api.ts";

describe("a leaving member republishes its SelfRemove in each new epoch", () => {
  it("after a commit that does not remove her, the leaver's commit outcome carries a new SelfRemove that gets her removed", async () => {
    const { admin: alice, rest, groupId } = await buildGroup(["lv-alice", "lv-bob", "lv-carol"]);
    const [bob, carol] = rest as [TestEngine, TestEngine];
    const leave = await carol.leaveGroup(groupId, T0 + 5);
    await deliver([alice, bob], [leave], T0 + 5);
    // bob re-keys without committing the pending SelfRemove: a new epoch, carol still a member
    const su = await bob.selfUpdate(groupId, T0 + 6);
    await bob.confirmCommit(su.id);
    const [oa, oc] = await deliver([alice, carol], [su.event], T0 + 6);
    const fromAlice = oa![0] as Extract<ProcessOutcome, { kind: "commit" }>;
    expect(fromAlice.followUps).toBeUndefined();
    const co = oc![0] as Extract<ProcessOutcome, { kind: "commit" }>;
    expect(co).toMatchObject({ kind: "commit", selfRemoved: false });
    expect(co.followUps).toHaveLength(1);
    const again = co.followUps![0]!;
    expect(again.kind).toBe(445);
    const outs = await deliver([alice, bob], [again], T0 + 7);
    for (const o of outs) expect(o[0]).toMatchObject({ kind: "proposal", proposal: "self_remove", sender: carol.pubkey, epoch: bob.group(groupId)!.epoch });
    const pc = (await alice.commitPendingProposals(groupId, T0 + 8))!;
    expect(pc).toBeDefined();
    await commitAndDeliver(alice, pc, [bob, carol], T0 + 8);
    expect(carol.group(groupId)!.active).toBe(false);
    expect(alice.group(groupId)!.members.sort()).toEqual([alice.pubkey, bob.pubkey].sort());
  });
});
