/**
 * The hand-over fixes: the re-keying follow-up after a path-less Remove, joiners' self-update after
 * joining, the commit-proposals roster, order-independent history normalisation, the group-data
 * description field, and R0 runs with R0 keys in the keyring.
 */
import { describe, expect, it } from "vitest";
import { historyDigest, historyToKeyring, type HistoryEntry } from "../../src/history.ts";
import { scenario } from "../../src/scenarios/builder.ts";
import { buildCatalogueScenario } from "../../src/scenarios/catalogue/index.ts";
import { runScenario } from "../../src/scenarios/runner.ts";
import { validateScenario } from "../../src/scenarios/validate.ts";

const commits = (entries: readonly HistoryEntry[], action?: string): HistoryEntry[] =>
  entries.filter((e) => e.op === "commit" && e.type === "ok" && (action === undefined || e.data.action === action));
const check = (checks: { name: string; verdict: string; message: string }[], name: string) => checks.find((c) => c.name === name);

describe("re-keying follow-up after a path-less Remove", () => {
  it("is published and confirmed right after the Remove, before the next message, and secrecy holds", async () => {
    const { result, history } = await runScenario(buildCatalogueScenario("bug-pathless-remove-fixed"));
    expect(result.verdict).toBe("pass");
    const es = history.entries;
    const remove = commits(es, "remove")[0] as HistoryEntry;
    expect(remove.data.rekeyNeeded).toBe(true);
    const rekey = commits(es, "rekey-after-remove")[0] as HistoryEntry;
    expect(rekey, "a rekey-after-remove commit").toBeDefined();
    expect(rekey.actor).toBe(remove.actor);
    expect(Number(rekey.data.epoch)).toBe(Number(remove.data.epoch) + 1);
    const firstSendAfter = es.find((e) => e.op === "send" && e.type === "ok" && e.seq > remove.seq) as HistoryEntry;
    expect(rekey.seq).toBeLessThan(firstSendAfter.seq);
    expect(Number(firstSendAfter.data.epoch)).toBe(Number(rekey.data.epoch));
    // every other member applied it
    expect(es.some((e) => e.op === "commit-applied" && e.actor === "bob" && e.data.eventId === rekey.data.eventId)).toBe(true);
    expect(check(result.checks, "secrecy")?.verdict).toBe("pass");
  }, 60_000);

  it("fails the secrecy check when the admin skips it (quirk skipRekeyAfterRemove)", async () => {
    const { result, history } = await runScenario(buildCatalogueScenario("bug-pathless-remove"));
    expect(commits(history.entries, "rekey-after-remove")).toEqual([]);
    expect(result.verdict).toBe("fail");
    expect(result.ok).toBe(true); // expected to fail, on the named check
    expect(check(result.checks, "secrecy")).toMatchObject({ verdict: "fail", message: expect.stringMatching(/without an UpdatePath/) });
  }, 60_000);

  it("removal-secrecy: the removed member's active probe reads nothing sent after the removal", async () => {
    const { result, history } = await runScenario(buildCatalogueScenario("removal-secrecy"));
    expect(result.verdict).toBe("pass");
    expect(commits(history.entries, "rekey-after-remove").length).toBe(1);
    const probes = history.entries.filter((e) => e.op === "probe" && e.actor === "eve");
    expect(probes.length).toBeGreaterThan(0);
    expect(probes.every((p) => p.data.outcome !== "application")).toBe(true);
  }, 60_000);
});

describe("joiners self-update after joining (MIP02-WL-14)", () => {
  const story = (selfUpdateAfterJoin?: boolean) =>
    scenario("join-then-update", "bob and carol join, then speak")
      .seed("3")
      .relay("r1")
      .agent("alice", { relays: ["r1"] })
      .agents(["bob", "carol"], { relays: ["r1"], ...(selfUpdateAfterJoin === undefined ? {} : { selfUpdateAfterJoin }) })
      .createGroup("alice", "g")
      .invite("alice", "g", ["bob", "carol"])
      .send("bob", "g", "hi")
      .send("carol", "g", "hello")
      .waitForConvergence("g")
      .build();

  it("by default each joiner commits a self-update before its first message", async () => {
    const { result, history } = await runScenario(story());
    expect(result.verdict).toBe("pass");
    const es = history.entries;
    for (const who of ["bob", "carol"]) {
      const upd = es.find((e) => e.actor === who && e.op === "commit" && e.type === "ok" && e.data.action === "self-update-after-join");
      const firstSend = es.find((e) => e.actor === who && e.op === "send" && e.type === "invoke");
      expect(upd, `${who}'s self-update`).toBeDefined();
      expect((upd as HistoryEntry).seq).toBeLessThan((firstSend as HistoryEntry).seq);
    }
    expect(result.compliance?.failures.map((f) => f.ruleId) ?? []).not.toContain("MIP02-WL-14");
  }, 60_000);

  it("can be turned off, and the run stays deterministic either way", async () => {
    const off = await runScenario(story(false));
    expect(commits(off.history.entries, "self-update-after-join")).toEqual([]);
    const a = await runScenario(story());
    const b = await runScenario(story());
    expect(a.history.digest()).toBe(b.history.digest());
  }, 60_000);
});

describe("small fixes", () => {
  it("a commit of a SelfRemove records who it removed", async () => {
    const s = scenario("leave", "carol leaves")
      .seed("1")
      .relay("r1")
      .agents(["alice", "bob", "carol"], { relays: ["r1"] })
      .createGroup("alice", "g")
      .invite("alice", "g", ["bob", "carol"])
      .leave("carol", "g", { committer: "alice" })
      .waitForConvergence("g")
      .build();
    const { result, history } = await runScenario(s);
    expect(result.verdict).toBe("pass");
    const carol = history.entries.find((e) => e.op === "identity" && e.actor === "carol")?.data.pubkey;
    const c = commits(history.entries, "commit-proposals")[0] as HistoryEntry;
    expect(c.data.removed).toEqual([carol]);
  }, 60_000);

  it("the structural digest does not depend on the order of keys", () => {
    const e1: HistoryEntry[] = [{ seq: 0, t: 0, actor: "a", type: "info", op: "note", data: { x: "ab".repeat(16), y: "cd".repeat(16) } }];
    const e2: HistoryEntry[] = [{ seq: 0, t: 0, actor: "a", type: "info", op: "note", data: { y: "cd".repeat(16), x: "ab".repeat(16) } }];
    expect(historyDigest(e1)).toBe(historyDigest(e2));
    const e3: HistoryEntry[] = [{ seq: 0, t: 0, actor: "a", type: "info", op: "note", data: { y: "ab".repeat(16), x: "ab".repeat(16) } }];
    expect(historyDigest(e3)).not.toBe(historyDigest(e1)); // one value twice: a different structure
  });

  it("update-group-data takes the group's new description as groupDescription; description stays report text", async () => {
    const s = scenario("describe", "rename and describe")
      .seed("1")
      .relay("r1")
      .agents(["alice", "bob"], { relays: ["r1"] })
      .createGroup("alice", "g")
      .invite("alice", "g", ["bob"])
      .updateGroupData("alice", "g", { name: "renamed", groupDescription: "what we talk about", description: "alice renames the group" })
      .build();
    expect(() => validateScenario(s)).not.toThrow();
    expect(s.steps[2]).toMatchObject({ groupDescription: "what we talk about", description: "alice renames the group" });
    const { result } = await runScenario(s);
    expect(result.verdict).toBe("pass");
    expect(result.steps[2]?.description).toBe("alice renames the group");
  }, 60_000);
});

describe("R0 (legacy profile)", () => {
  for (const name of ["invite-basic", "removal-secrecy"]) {
    it(`${name} passes under R0, and the keyring opens its group events`, async () => {
      const s = buildCatalogueScenario(name);
      s.profile = "R0";
      const { result, history } = await runScenario(s);
      expect({ verdict: result.verdict, failures: result.failures }).toEqual({ verdict: "pass", failures: [] });
      expect(result.compliance?.profile).toBe("R0");
      expect(result.compliance?.counts["not-checkable-without-keys"]).toBe(0);
      expect(historyToKeyring(history.entries).groupEventKeys.length).toBeGreaterThan(0);
    }, 60_000);
  }
});
