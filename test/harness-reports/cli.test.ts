/**
 * The `list`, `run` and `replay` verbs through the CLI entry point (in process), with the real
 * runner on the embedded relay: exit codes, report files, capsule lines, bad input.
 */
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { main } from "../../src/cli/main.ts";
import { resolveRunItems } from "../../src/cli/run.ts";
import { resolveMdkVectorDir } from "../../src/scenarios/import-mdk.ts";
import { startRelayServer } from "../../src/simulated-relay/ws-server.ts";

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "mh-cli-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});
afterEach(() => {
  process.exitCode = undefined;
  vi.restoreAllMocks();
});

async function cli(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  vi.spyOn(console, "log").mockImplementation((...a: unknown[]) => void out.push(a.join(" ")));
  vi.spyOn(console, "error").mockImplementation((...a: unknown[]) => void err.push(a.join(" ")));
  vi.spyOn(process.stderr, "write").mockImplementation((s: string | Uint8Array) => (err.push(String(s)), true));
  process.exitCode = undefined;
  const code = await main(["node", "marmot-harness", ...args]);
  process.exitCode = undefined;
  vi.restoreAllMocks();
  return { code, out: out.join("\n"), err: err.join("") };
}

const scenarioYaml = (epoch: number): string => `
name: cli-chat
description: alice invites bob and bob says hi
seed: "3"
checks: { compliance: false }
relays: [{ name: r1 }]
agents:
  - { name: alice, relays: [r1] }
  - { name: bob, relays: [r1] }
steps:
  - { type: create-group, agent: alice, group: g }
  - { type: invite, agent: alice, group: g, members: [bob] }
  - { type: send, agent: bob, group: g, text: hi }
  - { type: assert, group: g, epoch: ${epoch}, members: [alice, bob] }
`;

describe("marmot-harness list", () => {
  it("lists the catalogue with descriptions, as text and JSON", async () => {
    const text = await cli("list");
    expect(text.code).toBe(0);
    expect(text.out).toMatch(/^invite-basic\s+\S/m);
    const json = await cli("list", "--json");
    const names = (JSON.parse(json.out) as { name: string; description: string }[]).map((e) => e.name);
    expect(names).toContain("epoch-churn-150");
    expect(names.length).toBeGreaterThan(5);
  });
});

describe("resolving what to run", () => {
  it("passes --members and --size to catalogue scenarios and into their replay flags", async () => {
    const [churn] = await resolveRunItems(["epoch-churn-150"], {}, 40);
    expect(churn?.scenario?.params).toMatchObject({ members: 40 });
    expect(churn?.runOptions?.replayFlags).toBe("--members 40");
    const [small] = await resolveRunItems(["epoch-churn-150"], { size: "small", profile: "R1" }, undefined);
    expect(small?.scenario?.agents.length).toBeLessThan(20);
    expect(small?.runOptions?.replayFlags).toBe("--size small --profile R1");
    const [basic] = await resolveRunItems(["invite-basic"], {}, 40); // no group-size parameter: unchanged
    expect(basic?.scenario?.params?.members).toBeUndefined();
    await expect(resolveRunItems(["invite-basic"], { size: "huge" }, undefined)).rejects.toThrow(/--size must be "full" or "small"/);
  });
});

describe("marmot-harness run", () => {
  it("exits 0 with the report written when every scenario is as expected", async () => {
    const file = join(dir, "good.yaml");
    await writeFile(file, scenarioYaml(2)); // the invite, then bob's self-update on joining
    const report = join(dir, "good-report");
    const r = await cli("run", "--file", file, "--report", report, "--no-progress");
    expect(r.code).toBe(0);
    expect(r.out).toContain("1/1 scenarios as expected");
    const json = JSON.parse(await readFile(join(report, "report.json"), "utf8"));
    expect(json.results[0]).toMatchObject({ scenario: "cli-chat", verdict: "pass", ok: true, seed: "3" });
    expect(json.results[0].replayCommand).toBe(`marmot-harness run --file ${file} --seed 3`);
    for (const f of ["summary.md", "junit.xml", "index.html"]) expect((await readFile(join(report, f), "utf8")).length).toBeGreaterThan(100);
  });

  it("exits 1 on a failure, prints the replay line, and the capsule replays (exit 0: reproduced)", async () => {
    const file = join(dir, "bad.yaml");
    await writeFile(file, scenarioYaml(4));
    const report = join(dir, "bad-report");
    const r = await cli("run", "--file", file, "--report", report, "--seed", "9");
    expect(r.code).toBe(1);
    const capsule = join(report, "capsules", "cli-chat-9");
    expect(r.out).toContain(`cli-chat: marmot-harness replay ${capsule}`);
    expect(r.err).toMatch(/FAIL \[1\/1\] cli-chat: fail, seed 9/); // plain progress lines off a terminal
    const replay = await cli("replay", capsule);
    expect(replay.code).toBe(0);
    expect(replay.out).toMatch(/cli-chat \(seed 9\): reproduced: same verdict \(fail\)/);
    const asJson = JSON.parse((await cli("run", "--file", file, "--report", join(dir, "bad2"), "--json")).out);
    expect(asJson.results[0].capsuleDir).toBe(join(dir, "bad2", "capsules", "cli-chat-3"));
  });

  it("runs the same scenario against a real relay listening on 127.0.0.1 (--relay)", async () => {
    const server = await startRelayServer({ port: 0 });
    try {
      const file = join(dir, "ws.yaml");
      await writeFile(file, scenarioYaml(2)); // the invite, then bob's self-update on joining
      const r = await cli("run", "--file", file, "--relay", server.url, "--report", join(dir, "ws-report"), "--json");
      expect(r.code).toBe(0);
      const result = JSON.parse(r.out).results[0];
      expect(result).toMatchObject({ verdict: "pass", ok: true });
      expect(result.relayBackend).not.toBe("sim");
    } finally {
      await server.close();
    }
  });

  it("runs a small random campaign and writes its report (--random)", async () => {
    const report = join(dir, "random");
    const r = await cli("run", "--random", "3", "--seed", "4", "--report", report);
    expect(r.code).toBe(0);
    expect(r.out).toContain("random campaign: 3 cases, all passed");
    const json = JSON.parse(await readFile(join(report, "report.json"), "utf8"));
    expect(json.results.map((x: { scenario: string }) => x.scenario)).toEqual(["random #1", "random #2", "random #3"]);
    expect((await cli("run", "--random", "3", "--seed", "x")).err).toMatch(/--seed for --random must be an integer/);
  });

  it("passes --workers and --worker-hang-ms on to a random campaign's cases, and refuses bad values", async () => {
    const report = join(dir, "random-workers");
    const r = await cli("run", "--random", "2", "--seed", "4", "--workers", "1", "--worker-hang-ms", "60000", "--report", report);
    expect(r.code).toBe(0);
    const json = JSON.parse(await readFile(join(report, "report.json"), "utf8"));
    for (const x of json.results as { notes: string[] }[]) expect(x.notes).toContain("engines on 1 worker thread(s)");
    expect((await cli("run", "--random", "2", "--workers", "many")).err).toMatch(/--workers must be "auto" or an integer/);
    const badHang = await cli("run", "--random", "2", "--workers", "1", "--worker-hang-ms", "0");
    expect([badHang.code, badHang.err]).toEqual([2, expect.stringMatching(/--worker-hang-ms must be an integer >= 1/)]);
  });

  it("exits 2 on bad input, naming what was wrong", async () => {
    const nothing = await cli("run");
    expect([nothing.code, nothing.err]).toEqual([2, expect.stringMatching(/NOTHING_TO_RUN/)]);
    const unknown = await cli("run", "no-such-scenario", "--report", join(dir, "x"));
    expect(unknown.code).toBe(2);
    expect(unknown.err).toMatch(/unknown scenario "no-such-scenario"; known: invite-basic/);
    expect((await cli("run", "invite-basic", "--profile", "R9")).err).toMatch(/--profile: unknown protocol profile "R9"/);
    expect((await cli("run", "invite-basic", "--members", "-3")).err).toMatch(/--members needs a positive integer/);
    expect((await cli("run", "invite-basic", "--relay", "http://x")).err).toMatch(/must be a ws:\/\/ or wss:\/\/ URL/);
    expect((await cli("run", "--mdk-vectors", join(dir, "nope"))).err).toMatch(/MDK_VECTORS_READ/);
    expect((await cli("run", "--file", join(dir, "missing.yaml"))).err).toMatch(/SCENARIO_READ/);
    expect((await cli("replay", join(dir, "no-capsule"))).code).toBe(2);
  });

  const vectors = resolveMdkVectorDir();
  // The vectors live beside the repository (../shared/...) or at $MARMOT_MDK_VECTORS; a checkout without them skips this.
  const noVectors = existsSync(vectors) ? "" : ` (skipped: no MDK vectors at ${vectors}; set MARMOT_MDK_VECTORS)`;
  it.skipIf(!existsSync(vectors))(`runs MDK vectors and judges their protocol-level expectations${noVectors}`, async () => {
    const r = await cli("run", "mdk:invite-member/v1", "--mdk-vectors", vectors, "--report", join(dir, "mdk"), "--json");
    const result = JSON.parse(r.out).results[0] as { scenario: string; checks: { name: string; verdict: string; message: string }[] };
    expect(result.scenario).toBe("mdk:invite-member/v1");
    const mdk = result.checks.filter((c) => c.name.startsWith("mdk:"));
    expect(mdk.filter((c) => c.verdict === "pass").length).toBe(3); // alice, bob, carol client states
    expect(mdk.filter((c) => c.verdict === "not-applicable").map((c) => c.message).join("\n")).toMatch(/pending_resolution create: MDK-internal/);
    expect(mdk.filter((c) => c.verdict === "fail")).toEqual([]);
  });

  it.skipIf(!existsSync(vectors))(`a failing MDK vector leaves a capsule whose replay judges the vector again${noVectors}`, async () => {
    const copy = join(dir, "vectors");
    await mkdir(copy, { recursive: true });
    const doc = JSON.parse(await readFile(join(vectors, "invite-member.v1.json"), "utf8"));
    doc.expected_outcomes.find((o: { type: string; client?: string }) => o.type === "client_state" && o.client === "carol").epoch = 7;
    await writeFile(join(copy, "invite-member.v1.json"), JSON.stringify(doc));
    const r = await cli("run", "--mdk-vectors", copy, "--report", join(dir, "mdk-bad"), "--no-progress");
    expect(r.code).toBe(1);
    const capsule = join(dir, "mdk-bad", "capsules", "mdk_invite-member_v1-mdk");
    expect(r.out).toContain(`marmot-harness replay ${capsule}`);
    const replay = await cli("replay", capsule, "--json");
    const out = JSON.parse(replay.out);
    expect(out.reproduced).toBe(true);
    expect(out.result.checks.find((c: { verdict: string }) => c.verdict === "fail").message).toMatch(/carol: epoch 2, expected 7/);
  });
});
