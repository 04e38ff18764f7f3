/**
 * Property tests: random scenarios (operations and relay faults) against the model of membership and
 * epochs, with the real runner on the embedded relay. Kept small here (10 cases of at most 6
 * operations over at most 4 agents); `npm run campaign:random` runs a bigger campaign.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { afterAll, describe, expect, it } from "vitest";
import { readCapsule } from "../../src/report/capsule.ts";
import { materialize, randomCaseArbitrary, runRandomCampaign, type ScenarioRunFn } from "../../src/scenarios/random.ts";
import { runScenario } from "../../src/scenarios/runner.ts";
import { validateScenario } from "../../src/scenarios/validate.ts";

const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

const run: ScenarioRunFn = async (s) => {
  const out = await runScenario(s, { catalogueName: "random", compliance: false });
  return { result: out.result, history: out.history.entries };
};

describe("random scenario model", () => {
  it("tracks members and epochs and skips impossible operations", () => {
    const { scenario, model, applied } = materialize(
      {
        agents: 3,
        ops: [
          { op: "remove", who: 1 }, // not a member yet: skipped
          { op: "invite", who: 1 },
          { op: "invite", who: 1 }, // already a member: skipped
          { op: "offline", who: 2 },
          { op: "invite", who: 2 }, // offline: skipped
          { op: "self-update", who: 1 },
          { op: "leave", who: 1 },
          { op: "fault", fault: "duplicate", relay: 1 },
          { op: "rename", who: 2 }, // an admin commit, whoever drew it
          { op: "restart", who: 2 }, // offline: skipped
          { op: "restart", who: 0 },
        ],
      },
      "s",
    );
    expect(applied.map((o) => o.op)).toEqual(["invite", "offline", "self-update", "leave", "fault", "rename", "restart"]);
    expect([...model.members]).toEqual([0]);
    expect(model.epoch).toBe(6); // invite, self-update, leave + its re-keying follow-up, rename + its re-keying follow-up
    expect(scenario.steps).toContainEqual({ type: "update-group-data", agent: "alice", group: "g", name: "random 1" });
    const last = scenario.steps.at(-1)!;
    expect(last).toMatchObject({ type: "assert", epoch: 6, members: ["alice"], notMembers: ["bob", "carol"] });
    expect(scenario.steps.map((s) => s.type)).toContain("online"); // carol comes back before judging
    expect(scenario.steps.some((s) => s.type === "fault" && s.fault === "heal" && s.relay === "r2")).toBe(true);
  });

  it("every generated case is a valid scenario", () => {
    fc.assert(fc.property(randomCaseArbitrary({ maxAgents: 4, maxSteps: 6 }), (c) => {
      validateScenario(materialize(c, "x").scenario);
    }), { numRuns: 200, seed: 3 });
  });
});

describe("random scenarios against the runner", () => {
  it("10 random cases (≤6 operations, ≤4 agents, faults) all pass", async () => {
    const out = await runRandomCampaign({ runs: 10, seed: 42, maxAgents: 4, maxSteps: 6, run });
    expect(out.detail ?? "").toBe("");
    expect(out).toMatchObject({ ok: true, runs: 10 });
  });

  it("shrinks a failure to a minimal case and saves it as a capsule", async () => {
    const reportDir = await mkdtemp(join(tmpdir(), "mh-random-"));
    dirs.push(reportDir);
    // A deliberately wrong system: any run with an invite and a send is judged one epoch off.
    const broken: ScenarioRunFn = async (s) => {
      const wrong = s.steps.some((st) => st.type === "send") && s.steps.some((st) => st.type === "invite")
        ? { ...s, steps: s.steps.map((st) => (st.type === "assert" ? { ...st, epoch: (st.epoch ?? 0) + 1 } : st)) }
        : s;
      return run(wrong);
    };
    const out = await runRandomCampaign({ runs: 30, seed: 5, maxAgents: 3, maxSteps: 6, run: broken, reportDir });
    expect(out.ok).toBe(false);
    const ops = out.counterexample!.ops;
    expect(ops.map((o) => o.op).sort()).toEqual(["invite", "send"]); // the minimal failing story
    expect(out.counterexample!.agents).toBe(2);
    const capsule = await readCapsule(out.capsuleDir!);
    expect(capsule.scenario.steps.map((s) => s.type)).toEqual(expect.arrayContaining(["invite", "send"]));
    expect(capsule.result?.verdict).toBe("fail");
    expect(out.replayCommand).toBe(`marmot-harness replay ${out.capsuleDir}`);
  });
});
