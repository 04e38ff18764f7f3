/**
 * Messages between `WorkerEngine` proxies (main thread) and the engine host (worker thread).
 * Everything here crosses threads by structured clone: plain data, bigint and Uint8Array only.
 */
import type { EngineQuirks, GroupInspection, GroupSummary } from "../engine/api.ts";
import type { ProtocolProfile } from "../profile.ts";

/** Where a hosted engine keeps its state: memory inside the worker, or a directory (the agent's own). */
export type HostedStorage = { kind: "memory" } | { kind: "file"; dir: string };

export interface HostedEngineOptions {
  secretKeyHex: string;
  profile?: ProtocolProfile;
  quirks?: Partial<EngineQuirks>;
  clientName?: string;
  maxPastEpochs?: number;
  outOfBandRatchetTree?: boolean;
}

export type HostRequest =
  | { id: number; op: "create"; agent: string; options: HostedEngineOptions; storage: HostedStorage; rngSeed?: string }
  | { id: number; op: "call"; agent: string; method: string; args: unknown[]; pubkeyOverride?: string }
  | { id: number; op: "inspect"; agent: string; groupId: string }
  | { id: number; op: "exporter"; agent: string; groupId: string; label: string; context: Uint8Array; length: number }
  | { id: number; op: "crash"; agent: string }
  | { id: number; op: "hang"; agent: string };

export interface RemoteError {
  name: string;
  message: string;
  code?: string;
  details?: Record<string, unknown>;
}

/** A group inspection without its `exporter` function (which cannot cross threads). */
export type PlainInspection = Omit<GroupInspection, "exporter">;

export type HostReply =
  | {
      id: number;
      ok: true;
      value: unknown;
      groups: GroupSummary[];
      ms: number;
      /** Inspections of the groups the call changed, taken right after it (saves the agent's snapshot a round trip). */
      inspections?: PlainInspection[];
    }
  | { id: number; ok: false; error: RemoteError; groups: GroupSummary[]; ms: number };

/** A request before the pool numbers it. */
export type HostRequestBody = HostRequest extends infer R ? (R extends unknown ? Omit<R, "id"> : never) : never;
