import { describe, it, expect, beforeAll, afterAll } from "vitest";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { matrixMarkdown, rejections, roleAgents, runMatrix, type ScenarioRunnerFn } from "../../src/peers/matrix.ts";
import type { HistoryEntry } from "../../src/history.ts";
import { runScenario } from "../../src/scenarios/runner.ts";
import type { Scenario } from "../../src/scenarios/types.ts";
import { startLoopbackRelay, type LoopbackRelay } from "./loopback-relay.ts";

let relay: LoopbackRelay;
let work: string;
beforeAll(async () => {
  relay = await startLoopbackRelay();
  work = await mkdtemp(join(tmpdir(), "peer-matrix-"));
});
afterAll(async () => {
  await relay?.close();
  await rm(work, { recursive: true, force: true });
});

const SCENARIO: Scenario = {
  name: "pair",
  description: "alice creates, invites bob, bob talks",
  seed: "pair",
  relays: [{ name: "r1" }],
  agents: [
    { name: "alice", relays: ["r1"] },
    { name: "bob", relays: ["r1"] },
  ],
  steps: [
    { type: "create-group", agent: "alice", group: "g" },
    { type: "invite", agent: "alice", group: "g", members: ["bob"] },
    { type: "send", agent: "bob", group: "g", text: "hi alice" },
    { type: "wait-for-convergence", group: "g" },
    // Epoch 2: the invite, then bob's self-update right after joining (MIP-02), in or out of process.
    { type: "assert", group: "g", epoch: 2, members: ["alice", "bob"], messagesReceived: { alice: 1 } },
  ],
};

/** The project's runner, with the matrix's agent factory hook. */
const realRunner: ScenarioRunnerFn = async (s, o) => {
  const out = await runScenario(s, { relayUrls: o.relayUrls, workDir: o.workDir, agentFactory: o.agentFactory });
  return { verdict: out.result.verdict, ok: out.result.ok, failures: out.result.failures, history: out.history.entries };
};

describe("interop matrix", () => {
  it("names the events agents refused, so a failed cell shows the cause behind it", () => {
    const e = (seq: number, actor: string, type: string, op: string, data: Record<string, unknown>) => ({ seq, t: 0, actor, type, op, data }) as unknown as HistoryEntry;
    const h = [
      e(0, "bob", "fail", "reject", { code: "WELCOME_REQUIRED_CAPABILITIES" }),
      e(1, "carol", "fail", "reject", { code: "WELCOME_REQUIRED_CAPABILITIES" }),
      e(2, "bob", "fail", "reject", { code: "WELCOME_REQUIRED_CAPABILITIES" }),
      e(3, "runner", "fail", "step", { message: "AGENT_NO_GROUP" }),
    ];
    expect(rejections(h)).toBe("rejected: bob WELCOME_REQUIRED_CAPABILITIES ×2, carol WELCOME_REQUIRED_CAPABILITIES ×1");
    expect(rejections([h[3] as HistoryEntry])).toBeUndefined();
  });

  it("finds the agent of each role", () => {
    expect(roleAgents(SCENARIO)).toEqual({ creator: "alice", invitee: "bob", sender: "bob" });
  });

  it("runs our engine in both roles, in process and out of process, through the runner, and tabulates it", async () => {
    const result = await runMatrix({
      scenarios: [SCENARIO],
      roles: ["creator", "invitee"],
      implementations: ["engine", "engine-peer", "wn", "mdk-node"],
      relayUrls: [relay.url],
      run: realRunner,
      workDir: work,
      env: {},
    });
    const cell = (role: string, impl: string) => result.cells.find((c) => c.role === role && c.implementation === impl);
    expect(result.cells.find((c) => c.role === "baseline")?.verdict).toBe("pass");
    expect(cell("creator", "engine-peer")).toMatchObject({ agent: "alice", verdict: "pass" });
    expect(cell("invitee", "engine-peer")).toMatchObject({ agent: "bob", verdict: "pass" });
    expect(cell("creator", "wn")?.verdict).toBe("skipped");
    expect(cell("invitee", "mdk-node")?.verdict).toBe("skipped");
    const md = matrixMarkdown(result);
    expect(md).toContain("| pair | creator (alice) | ✅ pass | ✅ pass | ⏭ skipped | ⏭ skipped |");
    expect(md).toContain("MARMOT_HARNESS_WN is not set");
  });

  it("refuses a role the implementation cannot play, before running it", async () => {
    const withSelfUpdate: Scenario = { ...SCENARIO, name: "pair-update", steps: [...SCENARIO.steps.slice(0, 3), { type: "self-update", agent: "bob", group: "g" }] };
    let runs = 0;
    const result = await runMatrix({
      scenarios: [withSelfUpdate],
      roles: ["invitee"],
      implementations: ["wn"],
      relayUrls: [relay.url],
      run: async (s, o) => {
        runs++;
        return realRunner(s, o);
      },
      workDir: work,
      // wn "available" (any executable will do for the availability check); the refusal comes first.
      env: { MARMOT_HARNESS_WN: process.execPath, MARMOT_HARNESS_WND: process.execPath },
    });
    const c = result.cells.find((x) => x.role === "invitee");
    expect(c?.verdict).toBe("refused");
    expect(c?.message).toContain('wn cannot perform "self-update"');
    expect(runs).toBe(1); // the baseline only
  });
});
