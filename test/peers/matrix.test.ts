import { describe, it, expect, beforeAll, afterAll } from "vitest";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { EngineAgent } from "../../src/agents/engine-agent.ts";
import { IoGate, type AgentContext } from "../../src/agents/context.ts";
import type { Agent } from "../../src/agents/types.ts";
import { runInvariants } from "../../src/checkers/invariants/index.ts";
import { createEngine } from "../../src/engine/engine.ts";
import { MemoryStorage } from "../../src/engine/storage-memory.ts";
import { History } from "../../src/history.ts";
import { matrixMarkdown, roleAgents, runMatrix, type ScenarioRunnerFn } from "../../src/peers/matrix.ts";
import { openRelay } from "../../src/relays/open.ts";
import type { Scenario } from "../../src/scenarios/types.ts";
import { createRng } from "../../src/sim/random.ts";
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
  ],
};

async function settle(agents: Agent[], quietRounds = 3): Promise<void> {
  let quiet = 0;
  while (quiet < quietRounds) {
    const busy = agents.filter((a) => a.hasWork());
    if (busy.length) {
      quiet = 0;
      for (const a of busy) await a.processInbox();
    } else {
      quiet++;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

/**
 * A small scripted runner honouring the agent factory hook (the project's runner gets the same
 * hook through RunOptions.agentFactory): enough steps for the matrix's own test.
 */
const scripted: ScenarioRunnerFn = async (s, o) => {
  const history = new History({ now: () => Date.now() });
  const ctx: AgentContext = { history, clock: { now: () => Date.now() }, gate: new IoGate(), sleep: (ms) => new Promise((r) => setTimeout(r, ms)), connect: (url) => openRelay(url), recordedKeys: new Set() };
  const rng = createRng(s.seed);
  const agents = new Map<string, Agent>();
  for (const spec of s.agents) {
    const secretKey = rng.bytes(32);
    const relays = spec.relays.map((r) => o.relayUrls[s.relays.findIndex((x) => x.name === r)] as string);
    agents.set(spec.name, o.agentFactory(spec, ctx, { secretKey, relays, seed: `${s.seed}/${spec.name}` }) ?? new EngineAgent(ctx, { name: spec.name, secretKey, relays, engineFactory: createEngine, storage: new MemoryStorage(), durable: true }));
  }
  const all = [...agents.values()];
  const groups = new Map<string, string>();
  const get = (n: string): Agent => agents.get(n) as Agent;
  const failures: string[] = [];
  try {
    for (const a of all) await a.start();
    for (const a of all) await a.publishKeyPackages(1, true);
    for (const st of s.steps) {
      if (st.type === "create-group") groups.set(st.group, (await get(st.agent).createGroup({ name: st.group, adminPubkeys: [get(st.agent).pubkey], relays: o.relayUrls })).groupId);
      else if (st.type === "invite") await get(st.agent).invite(groups.get(st.group) as string, st.members.map((m) => get(m).pubkey));
      else if (st.type === "send") await get(st.agent).send(groups.get(st.group) as string, { content: st.text ?? "" });
      else if (st.type === "self-update") await get(st.agent).selfUpdate(groups.get(st.group) as string);
      await settle(all);
    }
    await settle(all, 8);
    for (const gid of groups.values()) {
      for (const a of all) {
        const v = await a.groupView(gid);
        if (v) history.record(a.name, "info", "state", { label: "end", groupId: v.groupId, epoch: v.epoch, members: v.members, epochCommitment: v.epochCommitment, active: v.active, online: a.isOnline() });
      }
    }
  } catch (e) {
    failures.push((e as Error).message);
  } finally {
    for (const a of all) await a.stop();
  }
  const checks = runInvariants(history.entries);
  for (const c of checks) if (c.verdict === "fail") failures.push(`${c.name}: ${c.message}`);
  const verdict = failures.length ? "fail" : "pass";
  return { verdict, ok: verdict === "pass", failures, history: history.entries };
};

describe("interop matrix", () => {
  it("finds the agent of each role", () => {
    expect(roleAgents(SCENARIO)).toEqual({ creator: "alice", invitee: "bob", sender: "bob" });
  });

  it("runs our engine in both roles, in process and out of process, and tabulates it", async () => {
    const result = await runMatrix({
      scenarios: [SCENARIO],
      roles: ["creator", "invitee"],
      implementations: ["engine", "engine-peer", "wn", "mdk-node"],
      relayUrls: [relay.url],
      run: scripted,
      workDir: work,
      env: {},
    });
    const cell = (role: string, impl: string): string | undefined => result.cells.find((c) => c.role === role && c.implementation === impl)?.verdict;
    expect(result.cells.find((c) => c.role === "baseline")?.verdict).toBe("pass");
    expect(cell("creator", "engine-peer")).toBe("pass");
    expect(cell("invitee", "engine-peer")).toBe("pass");
    expect(cell("creator", "wn")).toBe("skipped");
    expect(cell("invitee", "mdk-node")).toBe("skipped");
    const md = matrixMarkdown(result);
    expect(md).toContain("| pair | creator (alice) | ✅ pass | ✅ pass | ⏭ skipped | ⏭ skipped |");
    expect(md).toContain("MARMOT_HARNESS_WN is not set");
  });
});
