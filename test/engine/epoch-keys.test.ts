import { describe, it, expect } from "vitest";
import { buildGroup, makeEngine, RELAYS, T0 } from "./helpers.ts";
import { legacyConversationKey, tryDecryptContentR0 } from "../../src/engine/mip03-group-events.ts";

const utf8 = new TextEncoder();

describe("inspect().epochKeys per profile", () => {
  it("R0: mediaExporter and legacyGroupEventKey are MLS-Exporter(\"nostr\",\"nostr\",32), and that key opens the group's 445s", async () => {
    const { admin: alice, groupId } = await buildGroup(["ek-r0-a", "ek-r0-b"], { profile: "R0" });
    const ins = await alice.inspect(groupId);
    const legacy = await ins.exporter("nostr", utf8.encode("nostr"), 32);
    const cur = ins.epochKeys.find((k) => k.epoch === ins.epoch)!;
    expect(cur.legacyGroupEventKey).toEqual(legacy);
    expect(cur.mediaExporter).toEqual(legacy);
    expect(cur.groupEventKey).toEqual(await ins.exporter("marmot", utf8.encode("group-event"), 32));
    const ev = await alice.sendMessage(groupId, { kind: 9, content: "r0 keyring" }, T0 + 5);
    const plain = tryDecryptContentR0(legacyConversationKey(cur.legacyGroupEventKey!), ev.content);
    expect(plain).toBeDefined();
  });

  it("R1: mediaExporter is MLS-Exporter(\"marmot\",\"encrypted-media\",32) and there is no legacy key", async () => {
    const alice = await makeEngine("ek-r1-a");
    const g = await alice.createGroup({ name: "r1", relays: RELAYS, now: T0 });
    const ins = await alice.inspect(g.groupId);
    const cur = ins.epochKeys.find((k) => k.epoch === ins.epoch)!;
    expect(cur.mediaExporter).toEqual(await ins.exporter("marmot", utf8.encode("encrypted-media"), 32));
    expect(cur.legacyGroupEventKey).toBeUndefined();
  });
});
