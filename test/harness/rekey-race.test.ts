/**
 * The re-keying follow-up after a path-less Remove can lose a commit race. Engine agents on the
 * simulated relay, driven by hand so that the race is deterministic: alice's clock runs 30 s ahead
 * (within the 60 s look-back of its subscriptions), so bob's competing commit (a group-data change, from a client that never re-keys: quirk
 * skipRekeyAfterRemove) carries the earlier `created_at` and wins the epoch (MIP-03 order). Alice sees
 * her re-key rolled back while erin is still out, and re-keys again; the secrecy checker agrees.
 */
import { describe, expect, it } from "vitest";
import type { Event as NostrEvent } from "nostr-tools";
import { IoGate, type AgentContext } from "../../src/agents/context.ts";
import { checkSecrecy } from "../../src/checkers/invariants/secrecy.ts";
import { History } from "../../src/history.ts";
import { createRelayBackend } from "../../src/scenarios/relay-backends.ts";
import type { QuirkName } from "../../src/scenarios/types.ts";
import { VirtualScheduler } from "../../src/sim/clock.ts";
import { createRng } from "../../src/sim/random.ts";
import { handAgent, makeDrive, makeSettle } from "../support/drive-agents.ts";

async function world(rekeyAgain: boolean) {
  const sched = new VirtualScheduler(Date.UTC(2026, 0, 1));
  const history = new History(sched);
  const relay = await createRelayBackend({ name: "r1" }, { clock: sched, rng: createRng("race/relays"), history, scheduler: sched });
  const gate = new IoGate();
  const ctx = (aheadMs: number): AgentContext => ({
    history,
    clock: aheadMs ? { now: () => sched.now() + aheadMs } : sched,
    gate,
    sleep: (ms) => new Promise<void>((resolve) => sched.after(ms, () => resolve())),
    connect: (_url, name) => relay.connect(name),
    recordedKeys: new Set(),
  });
  const rng = createRng("race");
  const agent = (name: string, aheadMs: number, quirks: QuirkName[] = []) => handAgent(ctx(aheadMs), rng, name, relay.url, quirks);
  const drive = makeDrive(sched);
  const alice = agent("alice", 30_000);
  const bob = agent("bob", 0, ["skipRekeyAfterRemove"]);
  const erin = agent("erin", 0);
  const carol = agent("carol", 0);
  const all = [alice, bob, carol, erin];
  const settle = makeSettle(sched, drive, all);
  if (!rekeyAgain) (alice as unknown as { rekeyAgainIfLost: () => Promise<void> }).rekeyAgainIfLost = async () => undefined;
  return { history, alice, bob, carol, erin, drive, settle, relay };
}

async function race(rekeyAgain: boolean) {
  const w = await world(rekeyAgain);
  const { alice, bob, carol, erin, drive, settle, history } = w;
  for (const a of [alice, bob, carol, erin]) {
    await drive(a.start());
    await drive(a.publishKeyPackages(1, true));
  }
  await settle();
  const g = await drive(alice.createGroup({ name: "g", adminPubkeys: [bob.pubkey], relays: [w.relay.url] }));
  await drive(alice.invite(g.groupId, [bob.pubkey, carol.pubkey, erin.pubkey]));
  await settle();
  // alice removes erin: the path-less Remove and its re-keying follow-up go out together
  await drive(alice.remove(g.groupId, [erin.pubkey]));
  await drive(w.drive(Promise.resolve()));
  // bob gets the Remove but not yet the re-key (held back, as a slow link would)
  const inbox = (bob as unknown as { inbox: { event: NostrEvent; relay: string }[] }).inbox;
  const rekeyId = history.entries.find((e) => e.actor === "alice" && e.op === "commit" && e.type === "ok" && e.data.action === "rekey-after-remove")?.data.eventId;
  expect(rekeyId).toBeDefined();
  const held = inbox.filter((i) => i.event.id === rekeyId);
  expect(held.length).toBeGreaterThan(0);
  inbox.splice(0, inbox.length, ...inbox.filter((i) => i.event.id !== rekeyId));
  await drive(bob.processInbox());
  // bob commits a group-data change in the epoch alice's re-key also claims; his created_at is earlier
  await drive(bob.updateGroupData(g.groupId, { name: "renamed" }));
  inbox.push(...held);
  await settle();
  await drive(carol.send(g.groupId, { content: "after the race" }));
  await settle();
  return { history, g, alice, bob, carol };
}



describe("re-key that loses a commit race", () => {
  it("is redone by the agent, and the secrecy rule passes", async () => {
    const { history, g, alice, bob, carol } = await race(true);
    const es = history.entries;
    // alice's first re-key was rolled back by bob's commit…
    expect(es.some((e) => e.actor === "alice" && e.op === "commit-applied" && e.data.rolledBack === true)).toBe(true);
    // …so she re-keyed again, after the rollback and before carol's message
    const rekeys = es.filter((e) => e.actor === "alice" && e.op === "commit" && e.type === "ok" && e.data.action === "rekey-after-remove");
    expect(rekeys.length).toBe(2);
    expect(es.some((e) => e.actor === "alice" && e.op === "note" && /lost a commit race/.test(String(e.data.text)))).toBe(true);
    const send = es.find((e) => e.actor === "carol" && e.op === "send" && e.type === "ok");
    expect((rekeys[1] as { seq: number }).seq).toBeLessThan((send as { seq: number }).seq);
    // everyone is on one branch
    const views = await Promise.all([alice, bob, carol].map((a) => a.groupView(g.groupId)));
    expect(new Set(views.map((v) => v?.epochCommitment)).size).toBe(1);
    expect(checkSecrecy(es).verdict).toBe("pass");
  }, 60_000);

  it("without the second re-key, the secrecy rule catches the message sent in the exposed epoch", async () => {
    const { history } = await race(false);
    const r = checkSecrecy(history.entries);
    expect(r.verdict).toBe("fail");
    expect(r.message).toMatch(/without an UpdatePath/);
  }, 60_000);
});
