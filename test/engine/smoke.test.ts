import { describe, it, expect } from "vitest";
import { buildGroup, deliver, T0 } from "./helpers.ts";

describe("smoke", () => {
  it("two members exchange a message", async () => {
    const { admin, rest, groupId } = await buildGroup(["alice", "bob"]);
    const bob = rest[0]!;
    const ev = await admin.sendMessage(groupId, { kind: 9, content: "hi bob" }, T0 + 10);
    const [outs] = await deliver([bob], [ev], T0 + 11);
    expect(outs![0]).toMatchObject({ kind: "application", sender: admin.pubkey });
    const ev2 = await bob.sendMessage(groupId, { kind: 9, content: "hi alice" }, T0 + 12);
    const [outs2] = await deliver([admin], [ev2], T0 + 13);
    expect(outs2![0]).toMatchObject({ kind: "application", sender: bob.pubkey });
  });
});
