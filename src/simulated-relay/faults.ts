/**
 * The nemesis's vocabulary: fault kinds, latency distributions, and the fault log every
 * injected fault (and every time a fault took effect) is written to, in the shape a run's
 * history can include: `{at, relay, connection?, fault, params}`.
 */
import type { Rng } from "../sim/random.ts";
import { RelayError } from "./messages.ts";

export type LatencyDist =
  | { kind: "fixed"; ms: number }
  | { kind: "uniform"; minMs: number; maxMs: number }
  | { kind: "normal"; meanMs: number; sdMs: number }
  | { kind: "exponential"; meanMs: number }
  | { kind: "lognormal"; medianMs: number; sigma: number };

/** A latency sample in whole virtual milliseconds, never negative. */
export function sampleLatency(d: LatencyDist, rng: Rng): number {
  let v: number;
  switch (d.kind) {
    case "fixed":
      v = d.ms;
      break;
    case "uniform":
      v = d.minMs + rng.next() * (d.maxMs - d.minMs);
      break;
    case "normal":
      v = d.meanMs + d.sdMs * gaussian(rng);
      break;
    case "exponential":
      v = -d.meanMs * Math.log(1 - rng.next());
      break;
    case "lognormal":
      v = d.medianMs * Math.exp(d.sigma * gaussian(rng));
      break;
  }
  return Math.max(0, Math.round(v));
}

function gaussian(rng: Rng): number {
  const u = 1 - rng.next();
  const v = rng.next();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
}

export function checkLatency(d: LatencyDist): void {
  const nums = Object.entries(d).filter(([k]) => k !== "kind");
  for (const [k, v] of nums) {
    if (typeof v !== "number" || !Number.isFinite(v) || v < 0) {
      throw new RelayError("BAD_FAULT", `latency ${d.kind}: ${k} must be a non-negative number, got ${String(v)}`, { dist: d });
    }
  }
  if (d.kind === "uniform" && d.maxMs < d.minMs) throw new RelayError("BAD_FAULT", "latency uniform: maxMs < minMs", { dist: d });
}

export function checkProbability(name: string, p: number): void {
  if (!(typeof p === "number" && p >= 0 && p <= 1)) throw new RelayError("BAD_FAULT", `${name}: probability must be in [0, 1], got ${String(p)}`, { p });
}

export interface FaultRecord {
  /** Milliseconds (virtual in simulation). */
  at: number;
  relay: string;
  connection?: string;
  /**
   * The fault: "latency", "drop", "duplicate", "reorder", "partition", "heal", "disconnect", "crash",
   * "restart", "retention", "queue-limit", "refuse-publish", "no-answer", "early-eose", "slow-eose",
   * "clear"; with the suffix ".hit" when it took effect on one frame or event.
   */
  fault: string;
  params: Record<string, unknown>;
}

export class FaultLog {
  readonly records: FaultRecord[] = [];
  /** Per-frame ".hit" records are kept unless this is false (the counts are always kept). */
  keepHits = true;
  readonly hitCounts = new Map<string, number>();
  private listeners: ((r: FaultRecord) => void)[] = [];

  record(r: FaultRecord): void {
    if (r.fault.endsWith(".hit")) {
      this.hitCounts.set(r.fault, (this.hitCounts.get(r.fault) ?? 0) + 1);
      if (!this.keepHits) return;
    }
    this.records.push(r);
    for (const l of this.listeners) l(r);
  }

  onRecord(l: (r: FaultRecord) => void): void {
    this.listeners.push(l);
  }
}

export type Direction = "up" | "down" | "both";

export interface Scope {
  /** Only connections of this client (agent name); all connections when absent. */
  client?: string;
}

export interface LinkScope extends Scope {
  /** up = client to relay, down = relay to client; default both. */
  direction?: Direction;
}

export interface PublishFaultParams {
  /** Probability per EVENT (default 1). */
  p?: number;
  /** Only these kinds (default all). */
  kinds?: number[];
}
