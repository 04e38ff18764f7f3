/**
 * Our own engine, out of process: the engine peer (what `marmot-harness peer` serves) spawned as
 * a child through its light entry point `src/peers/peer-main.mjs`, and driven over the peer
 * protocol. Always available (it needs only this project).
 */
import { appendFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { QUIRKS } from "../../scenarios/types.ts";
import { PeerProcess } from "../process.ts";
import { ALL_STEPS, LABELLED_CONNECTIONS, type PeerAdapter, type PeerOpenOptions } from "./types.ts";

/** The CLI entry point of this project (`marmot-harness peer` serves the same peer). */
export const HARNESS_BIN = fileURLToPath(new URL("../../../bin/marmot-harness.js", import.meta.url));
/** The engine peer's own entry point: loads only the peer's modules, so it starts faster than the CLI. */
export const PEER_MAIN = fileURLToPath(new URL("../peer-main.mjs", import.meta.url));

export const enginePeerAdapter: PeerAdapter = {
  id: "engine-peer",
  title: "marmot-harness engine in a separate process (marmot-harness peer)",
  skipReason: () => undefined,
  // Its relay connections carry the agent's name (CLIENT_LABEL_HEADER): faults scoped to it apply.
  // Media with the run's Blossom server: send_application.media, set_group_image, probe_media.
  capabilities: [
    "restart",
    "profile:R1",
    "profile:R0",
    "spoof-author-probe",
    "media",
    "media-tamper",
    "group-image",
    "group-image-v2",
    "media-probe",
    LABELLED_CONNECTIONS,
    ...QUIRKS.map((q) => `quirk:${q}`),
  ],
  steps: ALL_STEPS,
  expectedProfile: "R1",
  pinnedIdentity: true,
  async open(o: PeerOpenOptions) {
    return PeerProcess.spawn({
      name: o.name,
      command: process.execPath,
      args: [PEER_MAIN, ...(o.publishTimeoutMs ? ["--publish-timeout", String(o.publishTimeoutMs)] : [])],
      env: { ...process.env, ...(o.env ?? {}) },
      timeoutMs: o.timeoutMs ?? 60_000,
      // The peer's logs, kept next to its state for post-mortems.
      onStderr: (chunk) => appendFileSync(join(o.home, "stderr.log"), chunk),
    });
  },
};
