/**
 * What every peer adapter declares: how to tell whether it can run here (and why not), what it
 * can do (so the runner refuses a scenario before step 0), which profile it is expected to
 * speak, and how to open a transport to one peer.
 */
import type { ProtocolProfile } from "../../profile.ts";
import { STEP_TYPES, type StepType } from "../../scenarios/types.ts";
import type { PeerTransport } from "../peer-agent.ts";

export interface PeerOpenOptions {
  /** Participant label (used in errors and logs). */
  name: string;
  relays: string[];
  /** A scratch directory that belongs to this peer only (home dir, database, sockets). */
  home: string;
  env?: NodeJS.ProcessEnv;
  /** Per-request timeout, ms. */
  timeoutMs?: number;
  /** How long the peer waits for a relay's OK, ms (adapters that can set it). */
  publishTimeoutMs?: number;
}

export interface PeerAdapter {
  /** Implementation id used in scenarios (`implementation:`) and in the matrix. */
  readonly id: string;
  readonly title: string;
  /** Undefined when the adapter can run on this machine; otherwise the reason it is skipped. */
  skipReason(env?: NodeJS.ProcessEnv): string | undefined;
  /** Agent capabilities (scenario `requires.agents` vocabulary: "restart", "profile:R1", "quirk:<name>", ...). */
  readonly capabilities: readonly string[];
  /** Step types an agent of this implementation can perform as the acting agent. */
  readonly steps: readonly StepType[];
  /** The profile its events are expected to show (profile detection checks it at run time). */
  readonly expectedProfile: ProtocolProfile | "unknown";
  /** True when it honours a pinned identity (`secret_key_hex`). */
  readonly pinnedIdentity: boolean;
  open(opts: PeerOpenOptions): Promise<PeerTransport>;
}

/** Every step type; adapters that can do everything list these. */
export const ALL_STEPS: readonly StepType[] = STEP_TYPES;

/**
 * Adapter capability: the peer names its relay connections after its agent (CLIENT_LABEL_HEADER),
 * so faults scoped to that agent (partition, slow EOSE, queue limit...) reach it on the
 * harness's WebSocket relay. Peers without it can only take relay-wide faults.
 */
export const LABELLED_CONNECTIONS = "labelled-connections";
