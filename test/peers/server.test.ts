import { describe, it, expect } from "vitest";
import { PassThrough } from "node:stream";
import { createEngine } from "../../src/engine/engine.ts";
import { EnginePeerHandler } from "../../src/peers/engine-peer.ts";
import { MDK_NODE_PROTOCOL_VERSION, PEER_PROTOCOL_VERSION, decodeResponse, type PeerResponse } from "../../src/peers/protocol.ts";
import { servePeer } from "../../src/peers/server.ts";
import { openRelay } from "../../src/relays/open.ts";

/** Feed lines to the real peer server (our engine's handler, not initialized) and read the answers. */
async function exchange(lines: string[]): Promise<PeerResponse[]> {
  const input = new PassThrough();
  const output = new PassThrough();
  let text = "";
  output.on("data", (d: Buffer) => (text += d.toString()));
  const done = servePeer(new EnginePeerHandler({ engineFactory: createEngine, connect: (url) => openRelay(url) }), input, output);
  for (const l of lines) input.write(l + "\n");
  input.end();
  await done;
  return text
    .trim()
    .split("\n")
    .map((l) => decodeResponse(l));
}

const req = (command: unknown, id = "r", protocol: string = PEER_PROTOCOL_VERSION): string => JSON.stringify({ protocol, request_id: id, command });

describe("peer server", () => {
  it("answers every line, in order, and keeps going after bad ones", async () => {
    const out = await exchange([
      "not json",
      req({ type: "ping", action_id: "p" }, "v", "future-protocol"),
      req({ type: "dance" }, "u"),
      "x".repeat(1_048_577),
      req({ type: "observe", action_id: "o" }, "early"),
      req({ type: "send_application", action_id: "s", payload: 1 }, "m", MDK_NODE_PROTOCOL_VERSION),
      req({ type: "ping", action_id: "p" }, "ok"),
      req({ type: "shutdown" }, "bye"),
      req({ type: "ping", action_id: "after" }, "ignored"),
    ]);
    expect(out.map((r) => [r.request_id, r.body.type === "error" ? r.body.code : r.body.type])).toEqual([
      ["unparseable", "invalid_json"],
      ["v", "wrong_protocol"],
      ["u", "PEER_PROTOCOL_UNKNOWN_COMMAND"],
      ["oversized", "frame_too_large"],
      ["early", "not_initialized"],
      ["unparseable", "invalid_json"],
      ["ok", "ack"],
      ["bye", "shutdown"],
    ]);
    expect(out[5]?.protocol).toBe(MDK_NODE_PROTOCOL_VERSION);
  });
});
