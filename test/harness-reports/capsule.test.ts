import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { parseCapture } from "../../src/capture.ts";
import { History } from "../../src/history.ts";
import { capsuleName, CapsuleError, readCapsule, replayCommandFor, shellQuote, writeCapsule } from "../../src/report/capsule.ts";
import type { Scenario } from "../../src/scenarios/types.ts";
import { scenarioResult } from "./report-fixtures.ts";

const dirs: string[] = [];
async function tmp(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), "mh-capsule-"));
  dirs.push(d);
  return d;
}
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

const scenario: Scenario = {
  name: "invite/basic v1",
  description: "alice invites bob",
  seed: "ignored",
  relays: [{ name: "r1" }],
  agents: [{ name: "alice", relays: ["r1"] }, { name: "bob", relays: ["r1"] }],
  steps: [{ type: "create-group", agent: "alice", group: "g" }, { type: "invite", agent: "alice", group: "g", members: ["bob"] }],
};

function sampleHistory(): History {
  let t = 1000;
  const h = new History({ now: () => (t += 5) });
  const ev = { id: "e1", pubkey: "p", created_at: 1, kind: 445, tags: [["h", "x"]], content: "c", sig: "s" };
  h.record("runner", "invoke", "step", { index: 0, type: "create-group" });
  h.noteEvent(ev, "alice", { relay: "sim://r1", source: "alice" });
  h.record("alice", "invoke", "publish", { eventId: "e1", kind: 445, relays: ["sim://r1"], epoch: 1n });
  h.record("alice", "ok", "publish", { eventId: "e1", acks: [{ relay: "sim://r1", ok: true, message: "", at: 1010 }] });
  return h;
}

describe("capsules", () => {
  it("writes scenario, seed, schedule, trace and replay command, and reads them back", async () => {
    const reportDir = await tmp();
    const history = sampleHistory();
    const { dir, replayCommand } = await writeCapsule({ reportDir, scenario, seed: "s 42", history: history.entries, result: scenarioResult({ verdict: "fail", ok: false }) });
    expect(dir).toBe(join(reportDir, "capsules", "invite_basic_v1-s_42"));
    expect(replayCommand).toBe(`marmot-harness replay ${dir}`);
    expect((await readFile(join(dir, "REPLAY.txt"), "utf8")).trim()).toBe(replayCommand);
    const trace = parseCapture(await readFile(join(dir, "trace.jsonl"), "utf8"));
    expect(trace.errors).toEqual([]);
    expect(trace.records).toHaveLength(1);
    expect(trace.records[0]?.acks?.[0]?.relay).toBe("sim://r1");
    const capsule = await readCapsule(dir);
    expect(capsule.seed).toBe("s 42");
    expect(capsule.scenario.seed).toBe("s 42");
    expect(capsule.scenario.steps).toEqual(scenario.steps);
    expect(capsule.schedule).toHaveLength(history.length);
    expect(capsule.schedule[2]?.data.epoch).toBe(1);
    expect(capsule.digest).toBe(history.digest());
    expect(capsule.result?.capsuleDir).toBe(dir);
  });

  it("names what is wrong with a broken capsule", async () => {
    const dir = await tmp();
    await expect(readCapsule(dir)).rejects.toMatchObject({ code: "CAPSULE_READ" });
    await writeFile(join(dir, "scenario.json"), "{not json");
    await expect(readCapsule(dir)).rejects.toThrow(/scenario\.json is not JSON/);
    await writeFile(join(dir, "scenario.json"), JSON.stringify({ name: "x" }));
    await expect(readCapsule(dir)).rejects.toBeInstanceOf(CapsuleError);
    await writeFile(join(dir, "scenario.json"), JSON.stringify({ name: "x", steps: [] }));
    await expect(readCapsule(dir)).rejects.toMatchObject({ code: "CAPSULE_FORMAT" });
    await writeFile(join(dir, "seed.txt"), "7\n");
    await writeFile(join(dir, "schedule.jsonl"), '{"seq":0}\n');
    await expect(readCapsule(dir)).rejects.toThrow(/schedule\.jsonl: .*line 1/);
  });

  it("quotes folder names for the shell only when needed", () => {
    expect(shellQuote("reports/latest/capsules/a-1")).toBe("reports/latest/capsules/a-1");
    expect(shellQuote("it's here")).toBe(`'it'\\''s here'`);
    expect(replayCommandFor("a b")).toBe("marmot-harness replay 'a b'");
    expect(capsuleName("../../etc", "1")).toBe("etc-1");
  });
});
