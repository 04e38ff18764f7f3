/**
 * A leaving member's SelfRemove, overtaken by a commit that does not include it, is proposed again
 * in the new epoch by the leaver's agent (`followUps` on the commit outcome) and committed there.
 * Engine agents on the simulated relay.
 */
import { describe, expect, it } from "vitest";
import type { HistoryEntry } from "../../src/history.ts";
import { scenario } from "../../src/scenarios/builder.ts";
import { runScenario } from "../../src/scenarios/runner.ts";

const story = () =>
  scenario("selfremove-republish", "carol leaves while alice's commit is in flight; bob commits the republished SelfRemove")
    .seed("5")
    .relay("r1")
    .agents(["alice", "bob", "carol"], { relays: ["r1"] })
    .createGroup("alice", "g", { admins: ["bob"] })
    .invite("alice", "g", ["bob", "carol"])
    .step({ type: "self-update", agent: "alice", group: "g", settle: false, description: "alice commits; nobody has processed it yet" })
    .leave("carol", "g", { committer: "bob" })
    .send("alice", "g", "after carol left")
    .waitForConvergence("g")
    .assert("g", { members: ["alice", "bob"], notMembers: ["carol"] })
    .build();

const find = (es: readonly HistoryEntry[], p: (e: HistoryEntry) => boolean): HistoryEntry => {
  const e = es.find(p);
  expect(e).toBeDefined();
  return e as HistoryEntry;
};

describe("agent: republished SelfRemove", () => {
  it("is published in the next epoch after a commit without it, and that one is committed", async () => {
    const { result, history } = await runScenario(story());
    expect(result.failures).toEqual([]);
    expect(result.verdict).toBe("pass");
    const es = history.entries;
    const race = find(es, (e) => e.actor === "alice" && e.op === "commit" && e.type === "ok" && e.data.action === "self-update");
    const first = find(es, (e) => e.actor === "carol" && e.op === "publish" && e.type === "invoke" && e.data.purpose === "self-remove");
    // carol proposed in the epoch alice's commit was leaving
    const carolEpochBefore = Number(race.data.epoch) - 1;
    // carol then applied alice's commit, which did not carry her proposal…
    const overtaken = find(es, (e) => e.actor === "carol" && e.op === "commit-applied" && e.data.eventId === race.data.eventId);
    expect(overtaken.seq).toBeGreaterThan(first.seq);
    expect(Number(overtaken.data.epoch)).toBe(carolEpochBefore + 1);
    // …so she proposed it again in the new epoch
    const again = find(es, (e) => e.actor === "carol" && e.op === "publish" && e.type === "invoke" && e.data.purpose === "leave-republish");
    expect(again.seq).toBeGreaterThan(overtaken.seq);
    expect(Number(again.data.epoch)).toBe(Number(race.data.epoch));
    expect(again.data.eventId).not.toBe(first.data.eventId);
    expect(es.some((e) => e.actor === "carol" && e.op === "publish" && e.type === "ok" && e.data.eventId === again.data.eventId)).toBe(true);
    // bob received the republished proposal in that epoch and committed it: carol is out
    const proposal = find(es, (e) => e.actor === "bob" && e.op === "process" && e.data.outcome === "proposal" && e.data.eventId === again.data.eventId);
    expect(proposal.data.proposal).toBe("self_remove");
    expect(Number(proposal.data.epoch)).toBe(Number(race.data.epoch));
    const commit = find(es, (e) => e.actor === "bob" && e.op === "commit" && e.type === "ok" && e.data.action === "commit-proposals");
    expect(commit.seq).toBeGreaterThan(proposal.seq);
    expect(Number(commit.data.epoch)).toBe(Number(race.data.epoch) + 1);
    const carolPk = find(es, (e) => e.actor === "carol" && e.op === "identity").data.pubkey;
    expect(commit.data.removed).toEqual([carolPk]);
    expect(es.some((e) => e.actor === "carol" && e.op === "removed")).toBe(true);
    // the stale first proposal was never committed by anyone
    expect(es.some((e) => e.op === "commit-applied" && e.data.eventId === first.data.eventId)).toBe(false);
  }, 60_000);
});
