/**
 * Driving hand-built engine agents on a virtual scheduler (the runner's drive and settle, minimal),
 * for tests that stage races and faults step by step.
 */
import type { AgentContext } from "../../src/agents/context.ts";
import { EngineAgent } from "../../src/agents/engine-agent.ts";
import { createEngine } from "../../src/engine/engine.ts";
import { MemoryStorage } from "../../src/engine/storage-memory.ts";
import type { QuirkName } from "../../src/scenarios/types.ts";
import type { VirtualScheduler } from "../../src/sim/clock.ts";
import type { Rng } from "../../src/sim/random.ts";

/** An in-process engine agent on one relay, durable memory store, no self-update after joining. */
export function handAgent(ctx: AgentContext, rng: Rng, name: string, relayUrl: string, quirks: QuirkName[] = []): EngineAgent {
  return new EngineAgent(ctx, {
    name,
    secretKey: rng.fork(name).bytes(32),
    relays: [relayUrl],
    engineFactory: createEngine,
    storage: new MemoryStorage(),
    durable: true,
    ...(quirks.length ? { quirks } : {}),
    selfUpdateAfterJoin: false,
  });
}

export type Drive = <T>(p: Promise<T>) => Promise<T>;

/** Runs the scheduler's tasks while `p` waits on them. */
export function makeDrive(sched: VirtualScheduler): Drive {
  return async <T>(p: Promise<T>): Promise<T> => {
    let done = false;
    const out = p.finally(() => (done = true));
    while (!done) {
      if (sched.pending > 0) await sched.runUntilIdle({ maxTasks: 1 });
      await new Promise<void>((r) => setImmediate(r));
    }
    return out;
  };
}

/** Runs relays and agents until no agent has work and nothing is scheduled. */
export function makeSettle(sched: VirtualScheduler, drive: Drive, agents: readonly EngineAgent[]): () => Promise<void> {
  return async () => {
    for (;;) {
      await drive(sched.runUntilIdle());
      const busy = agents.filter((a) => a.hasWork());
      if (busy.length === 0 && sched.pending === 0) return;
      for (const a of busy) await drive(a.processInbox());
    }
  };
}
