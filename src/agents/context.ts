/**
 * What the runner hands to every agent: the history, time, a way to wait, relay connections,
 * and the I/O gate that tells a deterministic driver when agents are waiting on relays.
 */
import type { History } from "../history.ts";
import type { RelayConnection } from "../relays/types.ts";
import type { Clock } from "../sim/clock.ts";

/**
 * Counts the agent operations currently blocked on a relay (an ack, an EOSE, a timer). In
 * simulation the driver advances virtual time only while something is blocked here, so that
 * real CPU time spent on MLS never moves the virtual clock: same seed, same run.
 */
export class IoGate {
  private waits = 0;
  private wake: (() => void)[] = [];
  get waiting(): number {
    return this.waits;
  }
  /** Resolves at the next change of `waiting` (a driver sleeps on it instead of polling). */
  changed(): Promise<void> {
    return new Promise<void>((resolve) => this.wake.push(resolve));
  }
  private notify(): void {
    const w = this.wake;
    this.wake = [];
    for (const f of w) f();
  }
  async wait<T>(p: Promise<T>): Promise<T> {
    this.waits++;
    this.notify();
    try {
      return await p;
    } finally {
      this.waits--;
      this.notify();
    }
  }
}

export interface AgentMetricsSink {
  commitCreated?(info: { agent: string; groupId: string; members: number; createMs: number }): void;
  commitProcessed?(info: { agent: string; groupId: string; eventId: string; members: number; processMs: number }): void;
  delivered?(info: { agent: string; eventId: string; latencyMs: number }): void;
}

export interface AgentContext {
  history: History;
  clock: Clock;
  gate: IoGate;
  /** Wait `ms` (virtual in simulation). */
  sleep(ms: number): Promise<void>;
  /** Open a connection to a relay URL for this agent. */
  connect(url: string, agentName: string): RelayConnection;
  /** Shared across agents: (nostrGroupId:epoch) keys already recorded, so 150 members record a key once. */
  recordedKeys: Set<string>;
  metrics?: AgentMetricsSink;
  /** Publish timeout, ms (virtual in simulation). Default 5 000. */
  publishTimeoutMs?: number;
  /** Blossom server for encrypted media (MIP-04), when the run has one. */
  blossomUrl?: string;
  /** How long catch-up waits for EOSE, ms. Default 10 000. */
  eoseTimeoutMs?: number;
  /**
   * Runs work started ahead of its turn (`Agent.prefetch`) for in-process engines one piece at a
   * time, so that per-call timings stay meaningful. Absent: such work starts at once (engines on
   * worker threads, whose workers queue it themselves).
   */
  serialCompute?: <T>(work: () => Promise<T>) => Promise<T>;
}
