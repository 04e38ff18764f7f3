/**
 * The one factory agents call: a RelayConnection for a URL (WebSocket) or a simulated relay
 * (in-memory), or a URL that names a relay of a SimNetwork.
 */
import { RelayError } from "../simulated-relay/messages.ts";
import type { SimNetwork } from "../simulated-relay/network.ts";
import type { SimulatedRelay } from "../simulated-relay/simulated-relay.ts";
import { MemoryRelayConnection, type MemoryConnectionOptions } from "./memory.ts";
import type { RelayConnection } from "./types.ts";
import { WebSocketRelayConnection, type WebSocketConnectionOptions } from "./websocket.ts";

export type RelayTarget = string | { sim: SimulatedRelay };

export interface OpenRelayOptions extends MemoryConnectionOptions, WebSocketConnectionOptions {
  /** Resolve URLs that name a relay of this network to in-memory connections. */
  network?: SimNetwork;
}

export function openRelay(target: RelayTarget, opts: OpenRelayOptions = {}): RelayConnection {
  if (typeof target !== "string") return new MemoryRelayConnection(target.sim, opts);
  if (opts.network?.has(target)) return new MemoryRelayConnection(opts.network.relay(target), opts);
  let u: URL;
  try {
    u = new URL(target);
  } catch {
    throw new RelayError("BAD_RELAY_URL", `not a URL: ${JSON.stringify(target)}`, { url: target });
  }
  if (u.protocol !== "ws:" && u.protocol !== "wss:") {
    throw new RelayError("BAD_RELAY_URL", `relay URL must be ws:// or wss://, got ${JSON.stringify(target)}`, { url: target });
  }
  return new WebSocketRelayConnection(target, opts);
}
