/**
 * Engines on worker threads: the proxy answers like an in-process engine, a run with workers gives
 * the same history (kinds, agents, outcomes, epochs) and verdicts as a run without, white-box keys
 * still reach the keyring, and a crashed worker ends the run with a typed error naming the agent.
 */
import { describe, expect, it } from "vitest";
import { verifyEvent } from "nostr-tools/pure";
import { generateSecretKey, getPublicKey } from "nostr-tools/pure";
import { defaultWorkerCount, EngineWorkerPool, parseWorkerCount, WorkerEngine } from "../../src/agents/worker-engine.ts";
import { HarnessError } from "../../src/errors.ts";
import { historyToKeyring, type HistoryEntry } from "../../src/history.ts";
import { scenario } from "../../src/scenarios/builder.ts";
import { runScenario } from "../../src/scenarios/runner.ts";

const RELAY = "ws://127.0.0.1:1/unused";

describe("WorkerEngine (engine on a worker thread)", () => {
  it("creates, invites, joins and rejects like the engine, with the mirror and sync calls answering", async () => {
    const pool = await EngineWorkerPool.start(2);
    try {
      const skA = generateSecretKey();
      const skB = generateSecretKey();
      const a = await pool.factoryFor("alice", { kind: "memory" }, "seed/alice")({ secretKey: skA });
      const b = await pool.factoryFor("bob", { kind: "memory" }, "seed/bob")({ secretKey: skB });
      expect(a).toBeInstanceOf(WorkerEngine);
      expect(pool.workerOf("alice")).not.toBe(pool.workerOf("bob"));
      expect(a.pubkey).toBe(getPublicKey(skA));
      const g = await a.createGroup({ name: "g", relays: [RELAY], now: 1_700_000_000 });
      expect(a.group(g.groupId)?.epoch).toBe(0n); // the mirror follows the reply
      const kp = await b.createKeyPackage({ relays: [RELAY], now: 1_700_000_000 });
      const pending = await a.inviteMembers(g.groupId, [kp], 1_700_000_001);
      const conf = await a.confirmCommit(pending.id);
      expect(conf.epoch).toBe(1n);
      expect(a.group(g.groupId)?.members.sort()).toEqual([getPublicKey(skA), getPublicKey(skB)].sort());
      const outs = await b.processEvent(conf.welcomes[0]!, 1_700_000_002);
      expect(outs.map((o) => o.kind)).toContain("welcome");
      expect(b.groups().map((x) => x.groupId)).toEqual([g.groupId]);
      // white-box inspection crosses threads; its exporter is a further call and agrees on both sides
      const [ia, ib] = [await a.inspect(g.groupId), await b.inspect(g.groupId)];
      expect(ia.epochCommitment).toBe(ib.epochCommitment);
      const ctx = new TextEncoder().encode("x");
      expect(Buffer.from(await ia.exporter("l", ctx, 32)).toString("hex")).toBe(Buffer.from(await ib.exporter("l", ctx, 32)).toString("hex"));
      // a message round trip
      const msg = await a.sendMessage(g.groupId, { kind: 9, content: "hi" }, 1_700_000_003);
      const got = await b.processEvent(msg, 1_700_000_004);
      expect(got[0]).toMatchObject({ kind: "application", rumor: { content: "hi" } });
      // synchronous calls are signed on the main thread
      const list = a.keyPackageRelayList([RELAY], 1_700_000_005);
      expect(list.kind).toBe(10051);
      expect(verifyEvent(list)).toBe(true);
      expect(verifyEvent(b.deleteKeyPackage(kp, 1_700_000_006))).toBe(true);
      // engine errors keep their code across the thread boundary
      const err = await a.removeMembers("00".repeat(32), [getPublicKey(skB)], 1_700_000_007).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(HarnessError);
      expect((err as HarnessError).code).toMatch(/^[A-Z_]+$/);
    } finally {
      await pool.close();
    }
  }, 60_000);

  it("auto: in-process for small scenarios and below 3 cores, else cores − 1", () => {
    expect(defaultWorkerCount(10, 20, 8)).toBe(0);
    expect(defaultWorkerCount(150, 20, 2)).toBe(0);
    expect(defaultWorkerCount(150, 20, 4)).toBe(3);
    expect(defaultWorkerCount(150, 20, 64)).toBe(16);
  });

  it("refuses bad worker counts with a typed error", () => {
    expect(parseWorkerCount(undefined)).toBe("auto");
    expect(parseWorkerCount("2")).toBe(2);
    expect(parseWorkerCount("0")).toBe(0);
    for (const bad of ["-1", "two", "1.5", "99"]) expect(() => parseWorkerCount(bad)).toThrow(/BAD_WORKER_COUNT/);
  });
});

/** A story with joins, messages, a path-less Remove (re-keying follow-up), a SelfRemove, a restart from a directory store. */
const story = () =>
  scenario("workers-story", "joins, messages, removal, leave, restart, re-add")
    .seed("11")
    .relay("r1")
    .relay("r2")
    .agent("alice", { relays: ["r1", "r2"] })
    .agents(["bob", "carol", "erin", "frank"], { relays: ["r1", "r2"] })
    .agent("dave", { relays: ["r1", "r2"], storage: "file" })
    .createGroup("alice", "g")
    .invite("alice", "g", ["bob", "carol", "dave", "erin"])
    .send("bob", "g", "one")
    .send("dave", "g", "two")
    .remove("alice", "g", ["erin"])
    .restart("dave")
    .send("carol", "g", "three")
    .leave("carol", "g")
    .selfUpdate("bob", "g")
    .invite("alice", "g", ["frank"])
    .send("frank", "g", "four")
    .waitForConvergence("g")
    .assert("g", { members: ["alice", "bob", "dave", "frank"] })
    .build();

/**
 * Runs the story on two workers, has `inject` fault dave's worker at step 3, and checks that the run
 * ends with `code` naming dave, keeps what was recorded before (the invite's commit, the runner's
 * closing entry), and runs no later step.
 */
async function runWithWorkerFault(inject: (pool: EngineWorkerPool) => void, code: string, opts: { workerHangMs?: number } = {}): Promise<void> {
  let pool: EngineWorkerPool | undefined;
  const { result, history } = await runScenario(story(), {
    workers: 2,
    ...opts,
    onWorkerPool: (p) => (pool = p),
    onStep: (i) => {
      if (i === 3 && pool) inject(pool);
    },
  });
  expect(result.verdict).toBe("error");
  const text = result.failures.join("\n");
  expect(text).toMatch(new RegExp(code));
  expect(text).toMatch(/dave/);
  expect(history.entries.some((e) => e.op === "commit" && e.type === "ok" && e.data.action === "invite")).toBe(true);
  expect(history.entries.at(-1)).toMatchObject({ actor: "runner", op: "run" });
  expect(result.steps.length).toBeLessThan(story().steps.length);
}

/** What must not depend on where engines run: who did what, with which outcome, at which epoch. */
function shape(entries: readonly HistoryEntry[]): string[] {
  return entries
    .filter((e) => e.op !== "event" && e.op !== "note")
    .map((e) => [e.actor, e.type, e.op, e.data.epoch ?? "", e.data.outcome ?? "", e.data.code ?? "", e.data.action ?? "", e.data.purpose ?? "", Array.isArray(e.data.members) ? e.data.members.length : ""].join(" "));
}

describe("runs with engine workers", () => {
  it("give the same history shape, verdicts and keyring coverage as in-process runs", async () => {
    const inProc = await runScenario(story(), { workers: 0 });
    // a short hang watchdog (10 s) does not fire on a run whose workers keep answering
    const onWorkers = await runScenario(story(), { workers: 2, workerHangMs: 10_000 });
    expect(inProc.result.verdict).toBe("pass");
    expect(onWorkers.result.notes).toContain("engines on 2 worker thread(s)");
    expect(onWorkers.result.verdict).toBe(inProc.result.verdict);
    expect(onWorkers.result.checks.map((c) => [c.name, c.verdict])).toEqual(inProc.result.checks.map((c) => [c.name, c.verdict]));
    expect(onWorkers.result.steps.map((s) => s.verdict)).toEqual(inProc.result.steps.map((s) => s.verdict));
    // the story did what it says (so the comparison is not between two empty runs)
    const es = onWorkers.history.entries;
    expect(es.some((e) => e.op === "commit" && e.type === "ok" && e.data.action === "rekey-after-remove")).toBe(true);
    expect(es.some((e) => e.op === "commit" && e.type === "ok" && e.data.action === "commit-proposals")).toBe(true);
    expect(es.filter((e) => e.op === "decrypt" && e.type === "ok").length).toBeGreaterThan(8);
    expect(shape(es)).toEqual(shape(inProc.history.entries));
    // white-box keys still flow: one epoch-keys record per epoch, same epochs both ways
    const epochs = (h: readonly HistoryEntry[]) => h.filter((e) => e.op === "epoch-keys").map((e) => Number(e.data.epoch));
    expect(epochs(es)).toEqual(epochs(inProc.history.entries));
    expect(historyToKeyring(es).groupEventKeys.length).toBe(historyToKeyring(inProc.history.entries).groupEventKeys.length);
    expect(onWorkers.result.checks.find((c) => c.name === "compliance")?.verdict).toBe(inProc.result.checks.find((c) => c.name === "compliance")?.verdict);
  }, 120_000);

  it("end with ENGINE_WORKER_HUNG naming the agent when a worker stops answering, and keep what was recorded", async () => {
    const t0 = performance.now();
    await runWithWorkerFault((pool) => pool.hangWorkerOf("dave"), "ENGINE_WORKER_HUNG", { workerHangMs: 1500 });
    // ended by the watchdog, not by the test's own timeout
    expect(performance.now() - t0).toBeLessThan(60_000);
  }, 120_000);

  it("refuse a hang timeout that is not a positive integer", async () => {
    await expect(EngineWorkerPool.start(1, { hangTimeoutMs: 0 })).rejects.toMatchObject({ code: "BAD_WORKER_HANG_TIMEOUT" });
  });

  it("end with a typed error naming the agent when a worker crashes, and do not hang", async () => {
    await runWithWorkerFault((pool) => pool.crashWorkerOf("dave"), "ENGINE_WORKER_CRASHED");
  }, 120_000);
});
