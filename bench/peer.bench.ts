/**
 * Per-command overhead of the peer protocol (tinybench): the same action through the protocol
 * to a `marmot-harness peer` child process, and in process.
 *
 *   npm run bench:peer          full run (5 s per task)
 *   npm run bench:peer:short    quick run (1 s per task; BENCH_SHORT=1)
 *
 * Tasks:
 * - no-op: `ping` round trip over stdio (JSON encode, validate, pipe, decode, validate) vs the
 *   same `ping` handed to the peer handler in process (no stdio);
 * - send: one application message (MLS encrypt, 445 build, publish, relay OK) by an out-of-process
 *   PeerAgent vs by an in-process EngineAgent, both members of the same 3-member group, against
 *   the harness relay served over WebSocket on 127.0.0.1.
 * Writes reports/bench-peer.md and reports/bench-peer.json.
 */
import "../src/platform/install-base64.ts"; // first: before @scure/base loads
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import os, { tmpdir } from "node:os";
import path, { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Bench } from "tinybench";
import { EngineAgent } from "../src/agents/engine-agent.ts";
import { IoGate, type AgentContext } from "../src/agents/context.ts";
import type { Agent } from "../src/agents/types.ts";
import { createEngine } from "../src/engine/engine.ts";
import { MemoryStorage } from "../src/engine/storage-memory.ts";
import { History } from "../src/history.ts";
import { EnginePeerHandler } from "../src/peers/engine-peer.ts";
import { createPeerAgent } from "../src/peers/implementations.ts";
import { PeerProcess } from "../src/peers/process.ts";
import { PEER_MAIN } from "../src/peers/adapters/engine-peer.ts";
import { openRelay } from "../src/relays/open.ts";
import { createRng } from "../src/sim/random.ts";
import { startRelayServer } from "../src/simulated-relay/ws-server.ts";

const SHORT = process.env.BENCH_SHORT === "1" || process.argv.includes("--short");
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

const server = await startRelayServer({ seed: "bench-peer", name: "bench-peer" });
const work = await mkdtemp(join(tmpdir(), "bench-peer-"));
const history = new History({ now: () => Date.now() });
const ctx: AgentContext = { history, clock: { now: () => Date.now() }, gate: new IoGate(), sleep: (ms) => new Promise((r) => setTimeout(r, ms)), connect: (url) => openRelay(url), recordedKeys: new Set() };
const rng = createRng("bench-peer");

const alice = new EngineAgent(ctx, { name: "alice", secretKey: rng.bytes(32), relays: [server.url], engineFactory: createEngine, storage: new MemoryStorage(), durable: true });
const bob = new EngineAgent(ctx, { name: "bob", secretKey: rng.bytes(32), relays: [server.url], engineFactory: createEngine, storage: new MemoryStorage(), durable: true });
// pollMs 0: no background pings competing with the measured requests.
const carol = createPeerAgent("engine-peer", ctx, "carol", { secretKey: rng.bytes(32), relays: [server.url], seed: "carol" }, { workDir: work, pollMs: 0 });
const all: Agent[] = [alice, bob, carol];

async function settle(): Promise<void> {
  for (let quiet = 0; quiet < 3; ) {
    const busy = all.filter((a) => a.hasWork());
    if (busy.length) {
      quiet = 0;
      for (const a of busy) await a.processInbox();
    } else {
      quiet++;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

for (const a of all) await a.start();
for (const a of all) await a.publishKeyPackages(1, true);
const g = await alice.createGroup({ name: "bench", adminPubkeys: [alice.pubkey], relays: [server.url] });
await alice.invite(g.groupId, [bob.pubkey, carol.pubkey]);
await settle();
for (let i = 0; i < 10 && !(await carol.groupView(g.groupId)); i++) {
  await carol.processInbox();
  await new Promise((r) => setTimeout(r, 200));
}

// A bare peer process for the no-op, and the same handler in process.
const proc = await PeerProcess.spawn({ name: "noop", command: process.execPath, args: [PEER_MAIN] });
await proc.request({ type: "initialize", participant: "noop", relay_urls: [server.url], key_packages: 0 });
const handler = new EnginePeerHandler({ engineFactory: createEngine, connect: (url) => openRelay(url) });
await handler.handle({ type: "initialize", participant: "noop-in", relay_urls: [server.url], key_packages: 0 }, "marmot-harness-peer-v1");

let n = 0;
const bench = new Bench({ time: SHORT ? 1_000 : 5_000, warmup: true, warmupIterations: 5 });
bench
  .add("no-op: ping over the peer protocol (child process, stdio)", async () => {
    await proc.request({ type: "ping", action_id: `p${n++}` });
  })
  .add("no-op: ping to the peer handler in process", async () => {
    await handler.handle({ type: "ping", action_id: `q${n++}` }, "marmot-harness-peer-v1");
  })
  .add("send: PeerAgent (out of process) → relay OK", async () => {
    await carol.send(g.groupId, { content: `peer ${n++}` });
  })
  .add("send: EngineAgent (in process) → relay OK", async () => {
    await alice.send(g.groupId, { content: `engine ${n++}` });
  });
await bench.run();

interface Row {
  task: string;
  meanMs: number;
  p99Ms: number;
  samples: number;
  rme: number;
}
const rows: Row[] = bench.tasks.map((t) => {
  const r = t.result as unknown as { latency?: { mean: number; p99?: number; rme: number; samplesCount?: number; samples?: number[] } };
  return { task: t.name, meanMs: r.latency?.mean ?? NaN, p99Ms: r.latency?.p99 ?? NaN, samples: r.latency?.samplesCount ?? r.latency?.samples?.length ?? 0, rme: r.latency?.rme ?? NaN };
});
console.table(rows.map((r) => ({ task: r.task, "mean ms": r.meanMs.toFixed(3), "p99 ms": r.p99Ms.toFixed(3), samples: r.samples, "rme %": r.rme.toFixed(1) })));

const overhead = (a: number, b: number): string => `${((rows[a]?.meanMs ?? NaN) - (rows[b]?.meanMs ?? NaN)).toFixed(3)} ms`;
const machine = `${os.cpus()[0]?.model ?? "cpu"} × ${os.cpus().length}, Node ${process.version}`;
const md = [
  "# Peer protocol overhead",
  "",
  `Measured by \`npm run bench:peer${SHORT ? ":short" : ""}\` (bench/peer.bench.ts) on ${machine}, ${new Date().toISOString().slice(0, 10)}.`,
  "Relay: the harness relay over WebSocket on 127.0.0.1. Group of 3 (two in-process engine agents, one out-of-process peer).",
  "",
  "| Task | mean (ms) | p99 (ms) | samples | rme % |",
  "|---|---|---|---|---|",
  ...rows.map((r) => `| ${r.task} | ${r.meanMs.toFixed(3)} | ${r.p99Ms.toFixed(3)} | ${r.samples} | ${r.rme.toFixed(1)} |`),
  "",
  `Protocol overhead per command: no-op ${overhead(0, 1)}; send ${overhead(2, 3)} (out of process minus in process).`,
  "",
].join("\n");
await mkdir(path.join(root, "reports"), { recursive: true });
await writeFile(path.join(root, "reports/bench-peer.md"), md);
await writeFile(path.join(root, "reports/bench-peer.json"), JSON.stringify({ machine, short: SHORT, rows }, null, 2) + "\n");
process.stdout.write(md);

await handler.close();
await proc.close();
for (const a of all) await a.stop();
await server.close();
await rm(work, { recursive: true, force: true });
