import { describe, expect, it } from "vitest";
import { scenario } from "../../src/scenarios/builder.ts";
import { buildCatalogueScenario } from "../../src/scenarios/catalogue/index.ts";
import { runScenario } from "../../src/scenarios/runner.ts";

describe("runner", () => {
  it("refuses, before step 0, a scenario that injects faults into a real relay", async () => {
    const s = scenario("impossible", "faults on a real relay")
      .relay("real", { backend: "ws", url: "ws://127.0.0.1:9" })
      .agents(["alice", "bob"], { relays: ["real"] })
      .createGroup("alice", "g")
      .fault("drop", { relay: "real", params: { p: 0.5 } })
      .build();
    const { result, history } = await runScenario(s);
    expect(result.verdict).toBe("refused");
    expect(result.ok).toBe(false);
    expect(result.steps).toHaveLength(0);
    expect(result.failures[0]).toMatch(/refused before step 0: relay real \(ws ws:\/\/127\.0\.0\.1:9\) cannot do "faults"/);
    expect(history.entries.some((e) => e.op === "step" || e.op === "publish")).toBe(false);
    expect(result.replayCommand).toBe("marmot-harness run impossible --seed 1");
  });

  it("an assert step that expects ASSERTION_FAILED passes when the assertion fails, and fails when it holds", async () => {
    const build = (members: number) =>
      scenario("assert-expected", "an assertion expected to fail")
        .relay("r1")
        .agents(["alice", "bob"], { relays: ["r1"] })
        .createGroup("alice", "g")
        .invite("alice", "g", ["bob"])
        .step({ type: "assert", group: "g", members, expectError: "ASSERTION_FAILED" })
        .build();
    const wrong = (await runScenario(build(5))).result;
    expect(wrong.failures).toEqual([]);
    expect(wrong.verdict).toBe("pass");
    const check = wrong.checks.find((c) => c.name === "assert:2");
    expect(check?.verdict).toBe("pass");
    expect(check?.message).toMatch(/failed as expected: .*5/);
    const holds = (await runScenario(build(2))).result;
    expect(holds.verdict).toBe("fail");
    expect(holds.failures.join("\n")).toMatch(/expected error ASSERTION_FAILED but the step succeeded/);
  });

  it("refuses a scenario in a profile the agents cannot speak", async () => {
    const s = scenario("r2-only", "the newest profile is recognised by the checker only")
      .profile("R2")
      .relay("r1")
      .agents(["alice"], { relays: ["r1"] })
      .createGroup("alice", "g")
      .build();
    const { result } = await runScenario(s);
    expect(result.verdict).toBe("refused");
    expect(result.failures[0]).toContain('agent alice cannot do "profile:R2"');
  });

  it("the same seed gives the same history, byte for byte; the run records traffic, acks and keys", async () => {
    const a = await runScenario(buildCatalogueScenario("invite-basic", { seed: "42" }));
    const b = await runScenario(buildCatalogueScenario("invite-basic", { seed: "42" }));
    expect(a.result.ok).toBe(true);
    expect(a.history.digest()).toBe(b.history.digest());
    expect(a.history.length).toBe(b.history.length);
    // Seeded engines draw every random byte from the seed (MLS included): the events themselves repeat.
    expect(a.history.digest("exact")).toBe(b.history.digest("exact"));
    const c = await runScenario(buildCatalogueScenario("invite-basic", { seed: "43" }));
    expect(c.history.digest()).not.toBe(a.history.digest());
    expect(c.history.digest("exact")).not.toBe(a.history.digest("exact"));
    // every published group event was acknowledged, and every epoch's key is kept
    expect(a.history.entries.filter((e) => e.op === "publish" && e.type === "ok").length).toBeGreaterThan(5);
    expect(a.history.entries.filter((e) => e.op === "epoch-keys").map((e) => e.data.epoch)).toEqual(expect.arrayContaining([0, 1, 2, 3]));
  }, 60_000);

  it("a run on ts-mls's own providers (MARMOT_MLS_PROVIDERS=ts-mls) is byte-identical to one on the engine's", async () => {
    const onEngine = await runScenario(buildCatalogueScenario("concurrent-commits", { seed: "5" }));
    const saved = process.env.MARMOT_MLS_PROVIDERS;
    process.env.MARMOT_MLS_PROVIDERS = "ts-mls";
    try {
      const onTsMls = await runScenario(buildCatalogueScenario("concurrent-commits", { seed: "5" }));
      expect(onTsMls.result.verdict).toBe(onEngine.result.verdict);
      expect(onTsMls.history.digest("exact")).toBe(onEngine.history.digest("exact"));
      process.env.MARMOT_MLS_PROVIDERS = "tsmls";
      const bad = await runScenario(buildCatalogueScenario("invite-basic", { seed: "5" }));
      expect(bad.result.ok).toBe(false);
      expect(JSON.stringify(bad.result)).toContain("MARMOT_MLS_PROVIDERS must be");
    } finally {
      if (saved === undefined) delete process.env.MARMOT_MLS_PROVIDERS;
      else process.env.MARMOT_MLS_PROVIDERS = saved;
    }
  }, 60_000);

  it("a failed step fails the run and carries a reproduce command", async () => {
    const s = scenario("wrong-epoch", "assert the wrong epoch")
      .seed("9")
      .relay("r1")
      .agents(["alice", "bob"], { relays: ["r1"] })
      .createGroup("alice", "g")
      .invite("alice", "g", ["bob"])
      .assert("g", { epoch: 7 })
      .build();
    const { result } = await runScenario(s);
    expect(result.verdict).toBe("fail");
    expect(result.failures.join("\n")).toMatch(/step 2 \(assert\): .*alice is at epoch 2, expected 7/);
    expect(result.replayCommand).toBe("marmot-harness run wrong-epoch --seed 9");
  }, 30_000);
});

describe("runner on a real WebSocket relay", () => {
  it("runs invite-basic against a relay listening on 127.0.0.1 (wall clock)", async () => {
    const { startRelayServer } = await import("../../src/simulated-relay/ws-server.ts");
    const server = await startRelayServer({ port: 0, host: "127.0.0.1" });
    try {
      const { result } = await runScenario(buildCatalogueScenario("invite-basic"), { relayUrls: [server.url], compliance: false });
      expect(result.relayBackend).toBe("ws");
      expect({ verdict: result.verdict, failures: result.failures }).toEqual({ verdict: "pass", failures: [] });
    } finally {
      await server.close();
    }
  }, 60_000);

  it("waits on the wall clock for events still in flight before judging convergence (bob's link 1.5 s slow)", async () => {
    const { startLocalRelays } = await import("../../src/scenarios/relay-backends.ts");
    const s = scenario("slow-link", "deliveries to bob take 1.5 s on a real WebSocket relay")
      .relay("r1")
      .agents(["alice", "bob"], { relays: ["r1"] })
      .fault("delay", { relay: "r1", params: { agents: ["bob"], direction: "down", dist: { kind: "fixed", ms: 1500 } } })
      .createGroup("alice", "g")
      .invite("alice", "g", ["bob"])
      .waitForConvergence("g", 20_000)
      .send("alice", "g", "hello over a slow link")
      .waitForConvergence("g", 20_000)
      .build();
    const local = await startLocalRelays(s);
    try {
      const { result, history } = await runScenario(s, { relayUrls: local.urls, relayFactory: local.relayFactory, compliance: false });
      expect({ verdict: result.verdict, failures: result.failures }).toEqual({ verdict: "pass", failures: [] });
      // the fault did slow bob down: his Welcome arrived after the runner's quiet period had ended once
      const welcomed = history.entries.find((e) => e.actor === "bob" && e.op === "welcome" && e.type === "ok");
      const invited = history.entries.find((e) => e.actor === "alice" && e.op === "commit" && e.type === "ok" && e.data.action === "invite");
      expect(welcomed && invited).toBeTruthy();
      expect(welcomed!.t - invited!.t).toBeGreaterThanOrEqual(1400);
    } finally {
      await local.close();
    }
  }, 120_000);
});

describe("scenario files and faults, end to end", () => {
  it("runs the example YAML scenario, and the same seed with faults gives the same digest", async () => {
    const { loadScenarioFile } = await import("../../src/scenarios/loader.ts");
    const s = await loadScenarioFile(new URL("../../src/scenarios/examples/catch-up-two-relays.yaml", import.meta.url).pathname);
    const a = await runScenario(s);
    expect({ verdict: a.result.verdict, failures: a.result.failures }).toEqual({ verdict: "pass", failures: [] });
    expect(a.history.entries.some((e) => e.op === "fault" && e.data.fault === "drop")).toBe(true);
    const b = await runScenario(s);
    expect(b.history.digest()).toBe(a.history.digest());
  }, 60_000);
});

describe("agent factory hook", () => {
  it("lets a caller supply an agent (as out-of-process peers do) and runs with it", async () => {
    const { EngineAgent } = await import("../../src/agents/engine-agent.ts");
    const { MemoryStorage } = await import("../../src/engine/storage-memory.ts");
    const { createEngine } = await import("../../src/engine/engine.ts");
    const calls: { name: string; relays: string[] }[] = [];
    const { result } = await runScenario(buildCatalogueScenario("invite-basic"), {
      agentFactory: (spec, ctx, d) => {
        calls.push({ name: spec.name, relays: d.relays });
        if (spec.name !== "bob") return undefined;
        return new EngineAgent(ctx, { name: spec.name, secretKey: d.secretKey as Uint8Array, relays: d.relays, engineFactory: createEngine, storage: new MemoryStorage(), durable: true });
      },
    });
    expect(calls.map((c) => c.name)).toEqual(["alice", "bob", "carol"]);
    expect(calls[0]?.relays).toEqual(["wss://r1.sim.invalid"]);
    expect({ verdict: result.verdict, failures: result.failures }).toEqual({ verdict: "pass", failures: [] });
  }, 60_000);
});
