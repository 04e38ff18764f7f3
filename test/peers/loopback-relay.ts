/**
 * A real Nostr relay for the peer tests: @nostr-relay/core with an in-memory SQLite store, served
 * over WebSocket on 127.0.0.1 (random port), through the relay area's LocalNostrRelay. The test
 * that starts it stops it.
 */
import { LocalNostrRelay } from "../../src/relays/nostr-relay-core.ts";

export interface LoopbackRelay {
  url: string;
  close(): Promise<void>;
}

export async function startLoopbackRelay(): Promise<LoopbackRelay> {
  const relay = await LocalNostrRelay.start();
  return { url: relay.url, close: () => relay.close() };
}
