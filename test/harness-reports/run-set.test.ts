/**
 * The run-set orchestration, replay and progress output, with the real runner on the embedded
 * relay (two small scenarios) and with a stand-in run function for the edge cases of folding results.
 */
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { readCapsule } from "../../src/report/capsule.ts";
import { createProgress } from "../../src/report/progress.ts";
import { compareRuns, replayCapsule } from "../../src/report/replay.ts";
import { addChecks, exitCodeFor, runScenarioSet, type RunFn } from "../../src/report/run-set.ts";
import { runScenario } from "../../src/scenarios/runner.ts";
import type { Scenario } from "../../src/scenarios/types.ts";
import { parseXml, sampleReport, scenarioResult } from "./report-fixtures.ts";

const dirs: string[] = [];
async function tmp(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), "mh-runset-"));
  dirs.push(d);
  return d;
}
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

const realRun: RunFn = (s, o) => runScenario(s, { ...o, compliance: false });

/** Epoch 2 is right: the invite, then bob's self-update on joining. */
function chat(expectEpoch: number): Scenario {
  return {
    name: `chat-epoch-${expectEpoch}`,
    description: "alice invites bob, bob says hi",
    seed: "7",
    relays: [{ name: "r1" }],
    agents: [{ name: "alice", relays: ["r1"] }, { name: "bob", relays: ["r1"] }],
    steps: [
      { type: "create-group", agent: "alice", group: "g" },
      { type: "invite", agent: "alice", group: "g", members: ["bob"] },
      { type: "send", agent: "bob", group: "g", text: "hi" },
      { type: "assert", group: "g", epoch: expectEpoch, members: ["alice", "bob"] },
    ],
  };
}

describe("runScenarioSet with the real runner", () => {
  it("writes the report, a capsule for the failure only, and the exit code says 1; the capsule replays", async () => {
    const reportDir = join(await tmp(), "run");
    const lines: string[] = [];
    const { report, capsules, written } = await runScenarioSet(
      [
        { name: "good", description: "passes", scenario: chat(2) },
        { name: "bad", description: "asserts the wrong epoch", scenario: chat(5) },
      ],
      { reportDir, run: realRun, progress: createProgress({ write: (s) => (lines.push(s), true) }, { tty: false }) },
    );
    expect(report.results.map((r) => [r.scenario, r.verdict, r.ok])).toEqual([["chat-epoch-2", "pass", true], ["chat-epoch-5", "fail", false]]);
    expect(exitCodeFor(report)).toBe(1);
    expect(capsules).toHaveLength(1);
    const bad = report.results[1]!;
    expect(bad.capsuleDir).toBe(capsules[0]!.dir);
    expect(bad.replayCommand).toBe(`marmot-harness replay ${capsules[0]!.dir}`);
    expect(bad.failures.join("\n")).toMatch(/step 3 \(assert\)/);
    expect(lines.join("")).toMatch(/^ok {3}\[1\/2\] chat-epoch-2: pass/m);
    expect(lines.join("")).toMatch(/^FAIL \[2\/2\] chat-epoch-5: fail/m);

    const json = JSON.parse(await readFile(written.json, "utf8"));
    expect(json.results[1].capsuleDir).toBe(bad.capsuleDir);
    parseXml(await readFile(written.junit, "utf8"));
    expect(await readFile(written.markdown, "utf8")).toContain(bad.replayCommand);

    const capsule = await readCapsule(bad.capsuleDir!);
    expect(capsule.scenario.steps).toEqual(chat(5).steps);
    expect(capsule.trace.length).toBeGreaterThan(0);
    expect(capsule.trace.some((r) => r.event.kind === 445)).toBe(true);

    const replay = await replayCapsule(bad.capsuleDir!, { run: realRun });
    expect(replay.reproduced).toBe(true);
    expect(replay.identical).toBe(true);
    expect(replay.byteIdentical).toBe(true);
    expect(replay.divergence).toBeUndefined();
    expect(replay.explanation).toMatch(/^reproduced: same verdict \(fail\).*byte for byte$/);

    // The same replay against a schedule with one event's bytes changed (same length: same structure)
    // names that entry as where the bytes part; with an entry dropped, where the structure parts.
    const schedulePath = join(bad.capsuleDir!, "schedule.jsonl");
    const original = await readFile(schedulePath, "utf8");
    const lines0 = original.trimEnd().split("\n");
    const at = lines0.findIndex((l) => l.includes('"op":"event"') && /"sig":"[0-9a-f]{128}"/.test(l));
    expect(at).toBeGreaterThan(0);
    lines0[at] = lines0[at]!.replace(/"sig":"([0-9a-f])/, (_m, c: string) => `"sig":"${c === "0" ? "1" : "0"}`);
    await writeFile(schedulePath, lines0.join("\n") + "\n");
    const bytesDiffer = await replayCapsule(bad.capsuleDir!, { run: realRun });
    expect(bytesDiffer.reproduced).toBe(true);
    expect(bytesDiffer.identical).toBe(true);
    expect(bytesDiffer.byteIdentical).toBe(false);
    expect(bytesDiffer.divergence).toMatchObject({ index: at, mode: "exact" });
    expect(bytesDiffer.explanation).toMatch(new RegExp(`its bytes differ from entry ${at} \\(recorded #\\d+ \\w+ event/`));
    const dropped = original.trimEnd().split("\n");
    dropped.splice(at, 1);
    await writeFile(schedulePath, dropped.join("\n") + "\n");
    const structureDiffers = await replayCapsule(bad.capsuleDir!, { run: realRun });
    expect(structureDiffers.identical).toBe(false);
    expect(structureDiffers.divergence).toMatchObject({ index: at, mode: "structural" });
    expect(structureDiffers.explanation).toMatch(/history differs from the capsule's schedule from entry/);
  });

  it("refuses an item that cannot run, and an invalid scenario, with exit code 2 and without running it", async () => {
    let ran = 0;
    const counting: RunFn = (s, o) => (ran++, realRun(s, o));
    const broken = { ...chat(1), steps: [{ type: "invite", agent: "zed", group: "g", members: ["bob"] }] } as Scenario;
    const { report, capsules } = await runScenarioSet(
      [
        { name: "vector", description: "unsupported", scenario: chat(1), refused: "uses omit_message" },
        { name: "broken", description: "invalid", scenario: broken },
      ],
      { reportDir: join(await tmp(), "r"), run: counting },
    );
    expect(ran).toBe(1); // only the invalid one reached the runner, which refused it
    expect(report.results.map((r) => r.verdict)).toEqual(["refused", "refused"]);
    expect(report.results[1]!.failures[0]).toMatch(/unknown agent "zed"/);
    expect(capsules).toEqual([]);
    expect(exitCodeFor(report)).toBe(2);
  });
});

describe("when a capsule cannot be written", () => {
  it("keeps the result with a note and still writes the report", async () => {
    const reportDir = join(await tmp(), "run");
    await mkdir(reportDir, { recursive: true });
    await writeFile(join(reportDir, "capsules"), "a file where the capsules folder should go");
    const { report, capsules, written } = await runScenarioSet([{ name: "bad", description: "fails", scenario: chat(5) }], { reportDir, run: realRun });
    expect(capsules).toEqual([]);
    expect(report.results[0]).toMatchObject({ verdict: "fail", ok: false });
    expect(report.results[0]!.notes.join("\n")).toMatch(/no capsule: CAPSULE_WRITE/);
    expect(JSON.parse(await readFile(written.json, "utf8")).results).toHaveLength(1);
  });
});

describe("folding extra checks and comparing runs", () => {
  it("a failing extra check fails a passing run; n/a checks change nothing", () => {
    const r = scenarioResult();
    const na = addChecks(r, [{ name: "mdk:x", verdict: "not-applicable", message: "internal" }]);
    expect([na.verdict, na.ok]).toEqual(["pass", true]);
    const failed = addChecks(r, [{ name: "mdk:client-state", verdict: "fail", message: "epoch 2, expected 1" }]);
    expect([failed.verdict, failed.ok]).toEqual(["fail", false]);
    expect(failed.failures).toContain("mdk:client-state: epoch 2, expected 1");
    expect(r.checks).toHaveLength(2); // the input is not mutated
  });

  it("exit code: 0 all as expected, 1 some not, 2 refused", () => {
    const rep = sampleReport();
    expect(exitCodeFor({ ...rep, results: [rep.results[0]!, rep.results[2]!] })).toBe(0);
    expect(exitCodeFor(rep)).toBe(1);
    expect(exitCodeFor({ ...rep, results: [...rep.results, scenarioResult({ verdict: "refused", ok: false })] })).toBe(2);
  });

  it("a replay reproduces only with the same verdict and the same failing checks", () => {
    const recorded = scenarioResult({ verdict: "fail", ok: false, checks: [{ name: "delivery", verdict: "fail", message: "x" }] });
    expect(compareRuns(recorded, recorded).reproduced).toBe(true);
    expect(compareRuns(recorded, scenarioResult()).why).toBe("verdict pass, recorded fail");
    const other = scenarioResult({ verdict: "fail", ok: false, checks: [{ name: "secrecy", verdict: "fail", message: "y" }] });
    expect(compareRuns(recorded, other)).toEqual({ reproduced: false, why: "no longer failing: check delivery" });
    expect(compareRuns(undefined, other).reproduced).toBe(true);
  });
});

describe("progress", () => {
  it("redraws one line on a terminal and leaves one line per scenario", () => {
    const out: string[] = [];
    const p = createProgress({ write: (s) => (out.push(s), true), columns: 60 }, { tty: true });
    p.scenarioStart?.(0, 2, "invite-basic");
    p.step?.(0, 2, "invite-basic", 0, 4, "alice creates group g");
    p.scenarioEnd?.(0, 2, scenarioResult());
    p.finish();
    const text = out.join("");
    expect(text).toContain("\r\x1b[2K[----");
    expect(text).toContain("· step 1/4 alice c…"); // cut to the terminal width
    expect(text).toMatch(/ok {3}\[1\/2\] invite-basic: pass, seed s1/);
    for (const chunk of out.filter((s) => s.startsWith("\r"))) expect(chunk.length - "\r\x1b[2K".length).toBeLessThanOrEqual(59);
  });
  it("writes no control characters when not on a terminal", () => {
    const out: string[] = [];
    const p = createProgress({ write: (s) => (out.push(s), true) }, { tty: false });
    p.scenarioStart?.(0, 1, "x");
    p.step?.(0, 1, "x", 0, 1, "y");
    p.scenarioEnd?.(0, 1, scenarioResult({ verdict: "fail", ok: false, failures: ["boom"] }));
    expect(out.join("")).toBe("FAIL [1/1] invite-basic: fail, seed s1, 1234 ms — boom\n");
  });
});
