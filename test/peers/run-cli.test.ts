/**
 * `marmot-harness run --file` honours `implementation:` on a scenario's agents: an engine-peer
 * agent runs in a child process against the harness relay over WebSocket (a fault scoped to it
 * included), and an implementation that is not available here is refused before step 0 with
 * how to provide it.
 */
import { describe, it, expect, beforeAll, afterAll } from "vitest";
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { peerRunRefusal, runWithPeers } from "../../src/peers/scenario-run.ts";
import { loadScenarioFile } from "../../src/scenarios/loader.ts";
import { runScenario } from "../../src/scenarios/runner.ts";
import { startLoopbackRelay } from "./loopback-relay.ts";

const run = promisify(execFile);
const BIN = fileURLToPath(new URL("../../bin/marmot-harness.js", import.meta.url));
const SCENARIO = fileURLToPath(new URL("./fixtures/engine-peer-scenario.yaml", import.meta.url));

let work: string;
beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), "peer-run-cli-"));
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

/** Run the CLI; resolve with its exit code and output whatever the code. */
async function cli(args: string[], env: NodeJS.ProcessEnv = process.env): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const r = await run(process.execPath, [BIN, ...args], { env, maxBuffer: 64 * 1024 * 1024, timeout: 120_000 });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (e) {
    const x = e as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof x.code === "number" ? x.code : -1, stdout: x.stdout ?? "", stderr: x.stderr ?? "" };
  }
}

// The tests are independent (own identities, own folders) and mostly wait on the wall clock.
describe.concurrent("marmot-harness run with out-of-process agents", () => {
  it("runs a scenario file whose agent bob is an engine-peer, faults included, and passes", async () => {
    const report = join(work, "ok");
    const out = await cli(["run", "--file", SCENARIO, "--report", report, "--json", "--no-progress"]);
    expect(out.code, out.stderr).toBe(0);
    const r = JSON.parse(await readFile(join(report, "report.json"), "utf8")) as { results: { scenario: string; verdict: string; relayBackend: string; checks: { name: string; verdict: string }[] }[] };
    expect(r.results).toHaveLength(1);
    const res = r.results[0] as (typeof r.results)[number];
    expect(res).toMatchObject({ scenario: "engine-peer-file", verdict: "pass", relayBackend: "ws-local" });
    expect(res.checks.find((c) => c.name === "convergence")?.verdict).toBe("pass");
    expect(res.checks.find((c) => c.name === "delivery")?.verdict).toBe("pass");
  });

  it("refuses before step 0 when an agent's implementation is not available, saying how to provide it", async () => {
    const text = (await readFile(SCENARIO, "utf8")).replace("implementation: engine-peer", "implementation: wn");
    const file = join(work, "wn-scenario.yaml");
    await writeFile(file, text);
    const env = { ...process.env };
    delete env.MARMOT_HARNESS_WN;
    const out = await cli(["run", "--file", file, "--report", join(work, "refused"), "--no-progress"], env);
    expect(out.code).toBe(2);
    expect(out.stdout).toContain("refused engine-peer-file");
    expect(out.stdout).toContain("agent bob: implementation wn is not available here (MARMOT_HARNESS_WN is not set");
    expect(out.stdout).toContain("to provide it, set MARMOT_HARNESS_WN");
  });

  it("names unknown implementations and steps a foreign peer cannot take", async () => {
    const s = await loadScenarioFile(SCENARIO);
    const withImpl = (impl: string) => ({ ...s, agents: s.agents.map((a) => (a.name === "bob" ? { ...a, implementation: impl } : a)) });
    expect(peerRunRefusal(withImpl("nope"), {})).toContain('agent bob: unknown implementation "nope" (known: engine, engine-peer, wn, mdk-node, marmot-ts)');
    expect(peerRunRefusal(withImpl("engine-peer"), {})).toBeUndefined();
    // wn "available" (any executable passes the availability check): the steps decide.
    const why = peerRunRefusal(withImpl("wn"), { MARMOT_HARNESS_WN: process.execPath, MARMOT_HARNESS_WND: process.execPath });
    expect(why).toContain('the "partition" fault scoped to bob cannot reach it');
    expect(why).toContain("wn cannot go offline");
  });

  it("keeps refusing faults on a third-party relay, before step 0, saying which relay", async () => {
    const relay = await startLoopbackRelay(); // @nostr-relay/core: a real relay that takes no faults
    try {
      const s = await loadScenarioFile(SCENARIO);
      const out = await runWithPeers(s, { relayUrls: [relay.url], compliance: false }, runScenario);
      expect(out.result.verdict).toBe("refused");
      expect(out.result.failures.join("; ")).toContain(`relay r1 (ws ${relay.url}) cannot do "faults"`);
      expect(out.result.steps).toHaveLength(0);
    } finally {
      await relay.close();
    }
  });
});
