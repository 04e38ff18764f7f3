/**
 * The one interface agents use to talk to a relay, whatever is behind it: the in-memory
 * simulated relay (no sockets), a WebSocket URL, a locally started third-party relay.
 * It knows nothing of MLS.
 */
import type { Event as NostrEvent, Filter } from "nostr-tools";

export type { NostrEvent, Filter };

/** The relay's answer to EVENT (NIP-01 OK), or a timeout / transport failure. */
export interface PublishAck {
  relay: string;
  eventId: string;
  ok: boolean;
  /** The OK message, e.g. "duplicate: ...", "blocked: ...", or "timeout" / "error: ..." locally. */
  message: string;
  /** Milliseconds (virtual in simulation) when the answer arrived. */
  at: number;
}

export interface SubscriptionHandlers {
  onEvent(event: NostrEvent): void;
  /** End of stored events (may be premature under the "early EOSE" fault). */
  onEose?(): void;
  /** The relay closed the subscription (CLOSED) or the connection dropped it. */
  onClosed?(reason: string): void;
}

export interface RelaySubscription {
  readonly id: string;
  close(): void;
}

export type ConnectionStatus = "idle" | "connecting" | "open" | "closed";

export interface RelayConnection {
  readonly url: string;
  readonly status: ConnectionStatus;
  connect(): Promise<void>;
  publish(event: NostrEvent, opts?: { timeoutMs?: number }): Promise<PublishAck>;
  subscribe(filters: Filter[], handlers: SubscriptionHandlers, opts?: { id?: string }): RelaySubscription;
  close(): Promise<void>;
}
