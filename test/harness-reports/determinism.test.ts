/**
 * `run --check-determinism`: the "determinism" check over two runs of one scenario and seed, with the
 * real runner on the embedded relay, and through the CLI.
 */
import { spawnSync } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { determinismCheck, withDeterminism, withDeterminismCheck } from "../../src/report/determinism.ts";
import type { RunFn } from "../../src/report/run-set.ts";
import { buildCatalogueScenario } from "../../src/scenarios/catalogue/index.ts";
import { runScenario } from "../../src/scenarios/runner.ts";
import { scenarioResult } from "./report-fixtures.ts";

const BIN = fileURLToPath(new URL("../../bin/marmot-harness.js", import.meta.url));
const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

describe("determinism check", () => {
  it("tells byte-identical, structure-only and diverging histories apart, naming where they part", async () => {
    const { history } = await runScenario(buildCatalogueScenario("invite-basic", { size: "small", seed: "3" }));
    const a = history.entries;
    expect(determinismCheck(a, a.map((e) => structuredClone(e)))).toMatchObject({ verdict: "pass", message: expect.stringMatching(/byte for byte/) });
    const at = a.findIndex((e) => e.op === "event" && typeof (e.data.event as { sig?: string } | undefined)?.sig === "string");
    expect(at).toBeGreaterThan(0);
    const otherBytes = a.map((e, i) => (i === at ? { ...e, data: { ...e.data, event: { ...(e.data.event as object), sig: "f".repeat(128) } } } : e));
    expect(determinismCheck(a, otherBytes)).toMatchObject({ verdict: "pass", message: expect.stringContaining(`the bytes differ from entry ${at}`) });
    const dropped = a.filter((_, i) => i !== at);
    const parted = determinismCheck(a, dropped);
    expect(parted.verdict).toBe("fail");
    expect(parted.message).toContain(`departs from entry ${at}`);
  });

  it("a failed determinism check makes even an expected failure not ok", () => {
    const expectedFail = scenarioResult({ verdict: "fail", expected: "fail", ok: true });
    const out = withDeterminism(expectedFail, { name: "determinism", verdict: "fail", message: "departs" });
    expect(out.ok).toBe(false);
    expect(out.failures.at(-1)).toBe("determinism: departs");
    const fine = withDeterminism(expectedFail, { name: "determinism", verdict: "pass", message: "same" });
    expect(fine.ok).toBe(true);
  });

  it("runs the scenario twice with the real runner; a second run that differs fails the check; wall-clock relays are not applicable", async () => {
    const scenario = buildCatalogueScenario("concurrent-commits", { size: "small", seed: "8" });
    let calls = 0;
    const counting: RunFn = (s, o) => (calls++, runScenario(s, o));
    const same = await withDeterminismCheck(counting)(scenario, {});
    expect(calls).toBe(2);
    expect(same.result.checks.find((c) => c.name === "determinism")).toMatchObject({ verdict: "pass", message: expect.stringMatching(/byte for byte/) });
    expect(same.result.ok).toBe(true);

    // A second run on another seed stands in for a nondeterministic implementation.
    let n = 0;
    const drifting: RunFn = (s, o) => runScenario(s, { ...o, seed: n++ === 0 ? "8" : "9" });
    const drift = await withDeterminismCheck(drifting)(scenario, {});
    expect(drift.result.checks.find((c) => c.name === "determinism")?.verdict).toBe("fail");
    expect(drift.result.ok).toBe(false);

    const wall: RunFn = async (s, o) => {
      const out = await runScenario(s, o);
      return { ...out, result: { ...out.result, relayBackend: "ws" } };
    };
    const na = await withDeterminismCheck(wall)(scenario, {});
    expect(na.result.checks.find((c) => c.name === "determinism")?.verdict).toBe("not-applicable");
  });

  it("the CLI adds the check with --check-determinism and refuses it with --random", async () => {
    const dir = await mkdtemp(join(tmpdir(), "mh-det-"));
    dirs.push(dir);
    const r = spawnSync(process.execPath, [BIN, "run", "invite-basic", "--size", "small", "--check-determinism", "--json", "--no-progress", "--report", dir], { encoding: "utf8", timeout: 120_000 });
    expect(r.status, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout) as { results: { checks: { name: string; verdict: string }[] }[] };
    expect(report.results[0]!.checks.find((c) => c.name === "determinism")?.verdict).toBe("pass");
    const bad = spawnSync(process.execPath, [BIN, "run", "--random", "2", "--check-determinism", "--report", join(dir, "r")], { encoding: "utf8", timeout: 60_000 });
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/--check-determinism/);
  }, 180_000);
});
