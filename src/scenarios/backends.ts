/**
 * Relay backends as the runner sees them: something agents can connect to, that may accept
 * faults, and that says what it can do. The simulated relay and real WebSocket relays are
 * adapted here; the relay itself knows nothing of scenarios.
 */
import type { History } from "../history.ts";
import type { RelayConnection } from "../relays/types.ts";
import type { Clock, VirtualScheduler } from "../sim/clock.ts";
import type { Rng } from "../sim/random.ts";
import type { FaultKind, RelaySpec } from "./types.ts";

export interface RelayBackendHandle {
  readonly name: string;
  readonly url: string;
  /** "sim", "ws", ... */
  readonly backend: string;
  /** e.g. "faults", "retention", "reject-protected", "delivery-queue". */
  capabilities(): string[];
  connect(agentName: string): RelayConnection;
  /** Inject a fault (only with capability "faults"). `agents` limits a partition. */
  fault?(fault: FaultKind, params: Record<string, unknown>): void;
  close(): Promise<void>;
}

export interface BackendEnv {
  /** Present in simulation. */
  scheduler?: VirtualScheduler;
  clock: Clock;
  rng: Rng;
  history: History;
}

export type RelayBackendFactory = (spec: RelaySpec, env: BackendEnv) => Promise<RelayBackendHandle>;
