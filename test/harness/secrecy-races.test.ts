/**
 * The secrecy rule's path-less-Remove exposure across commit races: a lost Remove arms nothing (no
 * false failure), a lost re-key does not disarm (no gap), a winner with a path does.
 */
import { describe, expect, it } from "vitest";
import { checkSecrecy } from "../../src/checkers/invariants/index.ts";
import { History } from "../../src/history.ts";

const hex = (c: string): string => c.repeat(64).slice(0, 64);
const E = hex("e");

function start(): History {
  let t = 1000;
  const h = new History({ now: () => (t += 10) });
  for (const n of ["alice", "bob", "carol"]) h.record(n, "info", "online", { mode: "start" });
  return h;
}

const commitOk = (h: History, agent: string, action: string, eventId: string, epoch: number, extra: Record<string, unknown> = {}): unknown =>
  h.record(agent, "ok", "commit", { action, groupId: "g1", eventId, epoch, added: [], removed: [], ...extra });
const applied = (h: History, agent: string, eventId: string, epoch: number, rolledBack: boolean): unknown =>
  h.record(agent, "ok", "commit-applied", { groupId: "g1", eventId, epoch, rolledBack, removed: [], added: [] });
const removed = (h: History): unknown => h.record("erin", "info", "removed", { groupId: "g1", epoch: 3 });
const sent = (h: History, agent: string, eventId: string, epoch: number): unknown => h.record(agent, "ok", "send", { groupId: "g1", eventId, epoch, expectedRecipients: [] });

describe("secrecy: path-less Remove exposure across commit races", () => {
  it("baseline: a message between a path-less Remove and its re-key fails; after the re-key it passes", () => {
    const gap = start();
    commitOk(gap, "alice", "remove", "c1", 3, { rekeyNeeded: true, removed: [E] });
    sent(gap, "bob", "m1", 3);
    expect(checkSecrecy(gap.entries).verdict).toBe("fail");
    const ok = start();
    commitOk(ok, "alice", "remove", "c1", 3, { rekeyNeeded: true, removed: [E] });
    removed(ok);
    commitOk(ok, "alice", "rekey-after-remove", "r1", 4);
    sent(ok, "bob", "m1", 4);
    expect(checkSecrecy(ok.entries).verdict).toBe("pass");
  });

  it("a re-key that loses its race to a path-less commit leaves the group exposed: a later message fails", () => {
    const h = start();
    commitOk(h, "alice", "remove", "c1", 3, { rekeyNeeded: true, removed: [E] });
    applied(h, "bob", "c1", 3, false);
    commitOk(h, "alice", "rekey-after-remove", "r1", 4); // alice's re-key…
    commitOk(h, "bob", "update-group-data", "g2", 4); // …and bob's path-less commit in the same epoch
    applied(h, "carol", "r1", 4, false);
    applied(h, "carol", "g2", 4, true); // bob's wins: r1 is rolled back
    applied(h, "alice", "g2", 4, true);
    sent(h, "carol", "m1", 4);
    const r = checkSecrecy(h.entries);
    expect(r.verdict).toBe("fail");
    expect(r.message).toMatch(/without an UpdatePath/);
    expect(r.subjects).toContain("m1");
  });

  it("a re-key that loses to a commit with a path leaves nothing exposed", () => {
    const h = start();
    commitOk(h, "alice", "remove", "c1", 3, { rekeyNeeded: true, removed: [E] });
    commitOk(h, "alice", "rekey-after-remove", "r1", 4);
    removed(h);
    commitOk(h, "bob", "self-update", "u2", 4);
    applied(h, "alice", "u2", 4, true);
    sent(h, "carol", "m1", 4);
    expect(checkSecrecy(h.entries).verdict).toBe("pass");
  });

  it("a path-less Remove that itself loses its race removed nobody: later messages are no failure, even if its re-key failed", () => {
    const h = start();
    commitOk(h, "alice", "remove", "c1", 3, { rekeyNeeded: true, removed: [E] });
    h.record("alice", "fail", "commit", { action: "rekey-after-remove", groupId: "g1", eventId: "r1", code: "COMMIT_NOT_ACKED" });
    commitOk(h, "bob", "update-group-data", "g2", 3);
    applied(h, "alice", "g2", 3, true); // bob's commit won epoch 3: c1 (and its exposure) is gone
    sent(h, "carol", "m1", 3);
    sent(h, "alice", "m2", 4);
    expect(checkSecrecy(h.entries).verdict).not.toBe("fail");
  });

  it("a further re-key after the lost one closes the exposure again", () => {
    const h = start();
    commitOk(h, "alice", "remove", "c1", 3, { rekeyNeeded: true, removed: [E] });
    commitOk(h, "alice", "rekey-after-remove", "r1", 4);
    commitOk(h, "bob", "update-group-data", "g2", 4);
    applied(h, "alice", "g2", 4, true);
    removed(h);
    commitOk(h, "alice", "rekey-after-remove", "r2", 5, { cause: "re-key lost a commit race" });
    sent(h, "carol", "m1", 5);
    expect(checkSecrecy(h.entries).verdict).toBe("pass");
  });
});
