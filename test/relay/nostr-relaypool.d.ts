// The package ships no type declarations reachable through its "exports"; this covers what the tests use.
declare module "nostr-relaypool" {
  import type { Event, Filter } from "nostr-tools";
  export class RelayPool {
    constructor(relays?: string[], options?: { autoReconnect?: boolean; logErrorsAndNotices?: boolean });
    publish(event: Event, relays: string[]): void;
    subscribe(
      filters: Filter[],
      relays: string[] | undefined,
      onEvent: (event: Event, afterEose: boolean, url: string | undefined) => void,
      maxDelayms?: number,
      onEose?: (url: string, minCreatedAt: number) => void,
    ): () => void;
    close(): Promise<void>;
  }
}
