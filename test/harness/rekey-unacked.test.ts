/**
 * The re-keying follow-up after a path-less Remove can go unacknowledged (every relay refuses it or
 * never answers). The agent then owes the re-key and makes it (a self-update) before it sends or
 * commits again, after it catches up, or after it processes its inbox. Engine agents on the simulated
 * relay, driven by hand; alice's link refuses exactly her re-key (a relay answering `OK false`).
 */
import { describe, expect, it } from "vitest";
import { IoGate, type AgentContext } from "../../src/agents/context.ts";
import { checkSecrecy } from "../../src/checkers/invariants/secrecy.ts";
import { History } from "../../src/history.ts";
import type { RelayConnection } from "../../src/relays/types.ts";
import { createRelayBackend } from "../../src/scenarios/relay-backends.ts";
import { VirtualScheduler } from "../../src/sim/clock.ts";
import { createRng } from "../../src/sim/random.ts";
import { handAgent, makeDrive, makeSettle } from "../support/drive-agents.ts";

async function run(settleOwed: boolean, refuseFromThenOn = false) {
  const sched = new VirtualScheduler(Date.UTC(2026, 0, 1));
  const history = new History(sched);
  const relay = await createRelayBackend({ name: "r1" }, { clock: sched, rng: createRng("unacked/relays"), history, scheduler: sched });
  const gate = new IoGate();
  /** alice's 445 publishes refused from this count on (the Remove is #1, its re-key #2). */
  let alice445 = 0;
  let refuseAlice445 = Number.POSITIVE_INFINITY;
  const ctx = (name: string): AgentContext => ({
    history,
    clock: sched,
    gate,
    sleep: (ms) => new Promise<void>((resolve) => sched.after(ms, () => resolve())),
    connect: (_url, label) => {
      const conn = relay.connect(label) as RelayConnection;
      if (name !== "alice") return conn;
      const publish = conn.publish.bind(conn);
      conn.publish = async (event, opts) => {
        if (event.kind === 445 && (++alice445 === refuseAlice445 || (refuseFromThenOn && alice445 > refuseAlice445))) {
          return { relay: conn.url, eventId: event.id, ok: false, message: "blocked: link fault for this test", at: sched.now() };
        }
        return publish(event, opts);
      };
      return conn;
    },
    recordedKeys: new Set(),
  });
  const rng = createRng("unacked");
  const agent = (name: string) => handAgent(ctx(name), rng, name, relay.url);
  const drive = makeDrive(sched);
  const alice = agent("alice");
  const bob = agent("bob");
  const erin = agent("erin");
  const all = [alice, bob, erin];
  // the behaviour before owed re-keys: an unacknowledged re-key is dropped
  if (!settleOwed) (alice as unknown as { oweRekey: () => void }).oweRekey = () => undefined;
  const settle = makeSettle(sched, drive, all);
  for (const a of all) {
    await drive(a.start());
    await drive(a.publishKeyPackages(1, true));
  }
  await settle();
  const g = await drive(alice.createGroup({ name: "g", adminPubkeys: [], relays: [relay.url] }));
  await drive(alice.invite(g.groupId, [bob.pubkey, erin.pubkey]));
  await settle();
  refuseAlice445 = alice445 + 2; // the Remove goes out; its re-keying follow-up is refused
  await drive(alice.remove(g.groupId, [erin.pubkey]));
  await settle();
  await drive(bob.send(g.groupId, { content: "after the removal" }));
  await settle();
  // let virtual time pass (owed re-keys back off 1, 2, 4, 8 s)
  for (let i = 0; i < 20; i++) {
    await drive(new Promise<void>((r) => sched.after(1000, () => r())));
    await settle();
  }
  return { history, g, alice, bob };
}

describe("re-key that no relay acknowledged", () => {
  it("is owed and made before the group talks again; the secrecy rule passes", async () => {
    const { history, g, alice, bob } = await run(true);
    const es = history.entries;
    const rekeys = es.filter((e) => e.actor === "alice" && e.op === "commit" && e.data.action === "rekey-after-remove");
    // the first re-key was refused by every relay…
    expect(rekeys.find((e) => e.type === "fail")?.data.code).toBe("COMMIT_NOT_ACKED");
    expect(es.some((e) => e.actor === "alice" && e.op === "note" && /owed/.test(String(e.data.text)))).toBe(true);
    // …and made again, before bob's message
    const made = rekeys.find((e) => e.type === "ok");
    const send = es.find((e) => e.actor === "bob" && e.op === "send" && e.type === "ok");
    expect(made).toBeDefined();
    expect((made as { seq: number }).seq).toBeLessThan((send as { seq: number }).seq);
    const views = await Promise.all([alice, bob].map((a) => a.groupView(g.groupId)));
    expect(new Set(views.map((v) => v?.epochCommitment)).size).toBe(1);
    expect(checkSecrecy(es).verdict).toBe("pass");
  }, 60_000);

  it("stops after 5 tries when every relay keeps refusing, saying so, and the run ends", async () => {
    const { history } = await run(true, true);
    const es = history.entries;
    const tries = es.filter((e) => e.actor === "alice" && e.op === "note" && /owed re-key failed/.test(String(e.data.text)));
    expect(tries.map((e) => String(e.data.text).match(/\((\d)\/5\)/)?.[1])).toEqual(["1", "2", "3", "4", "5"]);
    expect(es.some((e) => e.actor === "alice" && e.op === "commit" && e.type === "ok" && e.data.action === "rekey-after-remove")).toBe(false);
    // backed off: the tries are spread over virtual time, not back to back
    const at = tries.map((e) => (e as { t: number }).t);
    for (let i = 1; i < at.length; i++) expect(at[i]! - at[i - 1]!).toBeGreaterThanOrEqual(1000 * 2 ** (i - 1));
  }, 60_000);

  it("without the owed re-key, the secrecy rule catches the message sent in the exposed epoch", async () => {
    const { history } = await run(false);
    const es = history.entries;
    expect(es.some((e) => e.actor === "alice" && e.op === "commit" && e.type === "ok" && e.data.action === "rekey-after-remove")).toBe(false);
    const r = checkSecrecy(es);
    expect(r.verdict).toBe("fail");
    expect(r.message).toMatch(/without an UpdatePath/);
  }, 60_000);
});
