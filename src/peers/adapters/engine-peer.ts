/**
 * Our own engine, out of process: `marmot-harness peer` spawned as a child and driven over the
 * peer protocol. Always available (it needs only this project).
 */
import { fileURLToPath } from "node:url";
import { QUIRKS } from "../../scenarios/types.ts";
import { PeerProcess } from "../process.ts";
import { ALL_STEPS, type PeerAdapter, type PeerOpenOptions } from "./types.ts";

/** The CLI entry point of this project. */
export const HARNESS_BIN = fileURLToPath(new URL("../../../bin/marmot-harness.js", import.meta.url));

export const enginePeerAdapter: PeerAdapter = {
  id: "engine-peer",
  title: "marmot-harness engine in a separate process (marmot-harness peer)",
  skipReason: () => undefined,
  capabilities: ["restart", "profile:R1", "profile:R0", "spoof-author-probe", ...QUIRKS.map((q) => `quirk:${q}`)],
  steps: ALL_STEPS,
  expectedProfile: "R1",
  pinnedIdentity: true,
  async open(o: PeerOpenOptions) {
    return PeerProcess.spawn({
      name: o.name,
      command: process.execPath,
      args: [HARNESS_BIN, "peer"],
      env: { ...process.env, ...(o.env ?? {}) },
      timeoutMs: o.timeoutMs ?? 60_000,
    });
  },
};
