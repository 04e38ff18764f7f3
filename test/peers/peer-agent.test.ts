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
import { openRelay } from "../../src/relays/open.ts";
import { createRng } from "../../src/sim/random.ts";
import { fileURLToPath } from "node:url";
import { createPeerAgent, implementationStatus, refusals } from "../../src/peers/implementations.ts";
import { PeerAgent } from "../../src/peers/peer-agent.ts";
import { PeerProcess } from "../../src/peers/process.ts";
import { ProfileMismatchError, detectProfile } from "../../src/peers/profile-detect.ts";
import { finalizeEvent } from "nostr-tools/pure";
import { startLoopbackRelay, type LoopbackRelay } from "./loopback-relay.ts";

let relay: LoopbackRelay;
let work: string;
beforeAll(async () => {
  relay = await startLoopbackRelay();
  work = await mkdtemp(join(tmpdir(), "peer-agent-"));
});
afterAll(async () => {
  await relay?.close();
  await rm(work, { recursive: true, force: true });
});

function context(history: History): AgentContext {
  return {
    history,
    clock: { now: () => Date.now() },
    gate: new IoGate(),
    sleep: (ms) => new Promise((r) => setTimeout(r, ms)),
    connect: (url) => openRelay(url),
    recordedKeys: new Set(),
    publishTimeoutMs: 5000,
    eoseTimeoutMs: 3000,
  };
}

/** Let every agent process what arrived until nothing moves for a while (as the runner does on real relays). */
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
 * A catalogue-like scenario (invite, messages both ways, removal) acted out through
 * the Agent interface. `outOfProcess` names the agents that run as `marmot-harness peer` children.
 */
async function act(outOfProcess: string[]): Promise<{ history: History; agents: Record<string, Agent> }> {
  const history = new History({ now: () => Date.now() });
  const ctx = context(history);
  const rng = createRng(`peer-agent-${outOfProcess.join("+")}`);
  const agents: Record<string, Agent> = {};
  for (const name of ["alice", "bob", "carol"]) {
    const secretKey = rng.bytes(32);
    agents[name] = outOfProcess.includes(name)
      ? createPeerAgent("engine-peer", ctx, name, { secretKey, relays: [relay.url], seed: `${name}-seed` }, { workDir: work })
      : new EngineAgent(ctx, { name, secretKey, relays: [relay.url], engineFactory: createEngine, storage: new MemoryStorage(), durable: true });
  }
  const all = Object.values(agents);
  const { alice, bob, carol } = agents as Record<"alice" | "bob" | "carol", Agent>;
  try {
    await Promise.all(all.map((a) => a.start()));
    for (const a of all) await a.publishKeyPackages(1, true);
    const g = await alice.createGroup({ name: "matrix", adminPubkeys: [alice.pubkey], relays: [relay.url] });
    await alice.invite(g.groupId, [bob.pubkey, carol.pubkey]);
    await settle(all);
    await bob.send(g.groupId, { content: "hello from bob" });
    await alice.send(g.groupId, { content: "hello from alice" });
    await settle(all);
    await alice.remove(g.groupId, [carol.pubkey]);
    await settle(all);
    await bob.send(g.groupId, { content: "carol is gone" });
    await settle(all, 8);
    // Final state snapshot, as the runner records it for the convergence checker.
    for (const a of all) {
      const v = await a.groupView(g.groupId);
      if (v) history.record(a.name, "info", "state", { label: "end", groupId: v.groupId, nostrGroupId: v.nostrGroupId, epoch: v.epoch, members: v.members, epochCommitment: v.epochCommitment, active: v.active, online: a.isOnline() });
    }
    return { history, agents };
  } finally {
    await Promise.all(all.map((a) => a.stop()));
  }
}

// The tests are independent (own identities, own folders) and mostly wait on the wall clock.
describe.concurrent("PeerAgent: scenarios with some agents out of process", () => {
  it("gives the same verdicts in process and out of process", async () => {
    // (invite, messages both ways, removal; self-update is covered by engine-peer.test.ts)
    // Different identities (the rng seed names who is out of process), so both can run at once.
    const [inProcess, mixed] = await Promise.all([act([]), act(["bob", "carol"])]);
    const verdicts = (h: History): Record<string, string> => Object.fromEntries(runInvariants(h.entries).map((c) => [c.name, c.verdict]));
    const a = verdicts(inProcess.history);
    const b = verdicts(mixed.history);
    expect(a.convergence).toBe("pass");
    expect(a.delivery).toBe("pass");
    expect(b).toEqual(a);
    // The out-of-process agents' work is in the run's history under their names.
    const decryptsBy = (h: History, who: string): string[] =>
      h.entries
        .filter((e) => e.op === "decrypt" && e.actor === who)
        .map((e) => String(e.data.content))
        .sort();
    expect(decryptsBy(mixed.history, "bob")).toEqual(decryptsBy(inProcess.history, "bob"));
    expect(decryptsBy(mixed.history, "bob")).toEqual(["hello from alice"]);
    expect(mixed.history.entries.some((e) => e.op === "peer" && e.actor === "bob")).toBe(true);
    // Profile detection on the peer's real events: the out-of-process engine speaks R1.
    const bobEvents = mixed.history.events().filter((e) => e.pubkey === mixed.agents.bob?.pubkey);
    expect(detectProfile("bob", bobEvents).profile).toBe("R1");
  });

  it("stops early when a peer has already published events of another profile", async () => {
    const history = new History({ now: () => Date.now() });
    const ctx = context(history);
    const secretKey = createRng("r2-peer").bytes(32);
    // What an R2 client publishes at identity creation: a 30443 with app_components, no encoding/relays.
    const r2 = finalizeEvent(
      {
        kind: 30443,
        created_at: Math.floor(Date.now() / 1000),
        tags: [["d", "ab".repeat(32)], ["mls_protocol_version", "1.0"], ["i", "cd".repeat(32)], ["mls_ciphersuite", "0x0001"], ["mls_extensions", "0x0006"], ["mls_proposals", "0x0008", "0x000a"], ["app_components", "0x8009"]],
        content: Buffer.from([0, 1, 0, 5, 0, 1]).toString("base64"),
      },
      secretKey,
    );
    const c = openRelay(relay.url);
    await c.connect();
    expect((await c.publish(r2)).ok).toBe(true);
    await c.close();
    const peer = createPeerAgent("engine-peer", ctx, "mallory", { secretKey, relays: [relay.url] }, { workDir: work });
    const e = await peer.start().catch((x: unknown) => x);
    expect(e).toBeInstanceOf(ProfileMismatchError);
    expect((e as Error).message).toContain("peer mallory (engine-peer) speaks R2, engine agents speak R1");
    expect(history.entries.some((x) => x.op === "profile" && x.data.profile === "R2")).toBe(true);
    // The failed start ended the peer process; nothing is left to talk to.
    expect(peer.isOnline()).toBe(false);
    await expect(peer.groups()).rejects.toMatchObject({ code: "PEER_NOT_STARTED" });
  });

  it("surfaces a peer that dies mid-scenario as PEER_EXITED, and stops cleanly", async () => {
    const history = new History({ now: () => Date.now() });
    const fixture = fileURLToPath(new URL("./fixtures/misbehaving-peer.mjs", import.meta.url));
    let proc: PeerProcess | undefined;
    const peer = new PeerAgent(context(history), {
      name: "crashy",
      implementation: "fixture",
      relays: [relay.url],
      capabilities: [],
      profileCheck: false,
      pollMs: 0,
      open: async () => (proc = await PeerProcess.spawn({ name: "crashy", command: process.execPath, args: [fixture, "die-on", "send_application"], killGraceMs: 200 })),
    });
    await peer.start();
    expect(peer.pubkey).toBe("a".repeat(64));
    const e = await peer.send("00", { content: "x" }).catch((x: unknown) => x);
    expect((e as { code?: string }).code).toBe("PEER_EXITED");
    await expect(peer.groups()).rejects.toMatchObject({ code: "PEER_EXITED" });
    await peer.stop();
    expect(proc?.exited?.code).toBe(3);
  });

  it("lists implementations with skip reasons and refuses what an adapter cannot do", () => {
    const status = implementationStatus({});
    expect(status.find((s) => s.id === "engine-peer")?.available).toBe(true);
    expect(status.find((s) => s.id === "wn")?.skipReason).toContain("MARMOT_HARNESS_WN");
    expect(status.find((s) => s.id === "mdk-node")?.skipReason).toContain("MARMOT_HARNESS_MDK_NODE");
    expect(status.find((s) => s.id === "marmot-ts")?.skipReason).toContain("MARMOT_HARNESS_MARMOT_TS");
    const scenario = {
      name: "s",
      description: "",
      seed: "x",
      relays: [{ name: "r" }],
      agents: [
        { name: "a", relays: ["r"] },
        { name: "b", relays: ["r"], quirks: ["noPersistAfterSend" as const] },
      ],
      steps: [
        { type: "create-group" as const, agent: "a", group: "g" },
        { type: "invite" as const, agent: "a", group: "g", members: ["b"] },
        { type: "self-update" as const, agent: "b", group: "g" },
        { type: "restart" as const, agent: "b" },
      ],
    };
    expect(refusals(scenario, "b", "engine-peer")).toEqual([]);
    expect(refusals(scenario, "b", "wn")).toEqual(['wn cannot perform "self-update"', 'wn cannot perform "restart"', "wn cannot reproduce quirk noPersistAfterSend"]);
    expect(refusals(scenario, "b", "engine")).toEqual([]);
  });
});
