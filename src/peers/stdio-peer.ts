/**
 * One engine agent behind the peer protocol on this process's stdin/stdout, against WebSocket
 * relays. Used by `marmot-harness peer` and by src/peers/peer-main.mjs (the lighter entry point
 * the engine-peer adapter spawns). stdout carries protocol lines only; logs go to stderr.
 */
import { createEngine } from "../engine/engine.ts";
import { openRelay } from "../relays/open.ts";
import { CLIENT_LABEL_HEADER } from "../relays/websocket.ts";
import { EnginePeerHandler } from "./engine-peer.ts";
import { servePeer } from "./server.ts";

export interface StdioPeerOptions {
  publishTimeoutMs?: number;
  eoseTimeoutMs?: number;
}

export async function serveEnginePeerOnStdio(o: StdioPeerOptions): Promise<void> {
  // Nothing but protocol lines may reach stdout.
  console.log = console.error;
  console.info = console.error;
  console.warn = console.error;
  console.debug = console.error;
  const handler = new EnginePeerHandler({
    engineFactory: createEngine,
    // The label lets the harness's relay server scope faults (partition, slow EOSE...) to this agent.
    connect: (url, name) => openRelay(url, { headers: { [CLIENT_LABEL_HEADER]: name } }),
    publishTimeoutMs: o.publishTimeoutMs ?? 5000,
    eoseTimeoutMs: o.eoseTimeoutMs ?? 5000,
  });
  await servePeer(handler, process.stdin, process.stdout);
}
