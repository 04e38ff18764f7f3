/**
 * A real third-party relay started locally for CI: `@nostr-relay/core` with its SQLite event
 * repository (better-sqlite3, in memory by default) and its validator, served with `ws` on
 * 127.0.0.1 on a free port. Its result caches are off (with them, a repeated REQ within a
 * second returns stale results).
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { WebSocketServer, type WebSocket } from "ws";
import { NostrRelay } from "@nostr-relay/core";
import { LogLevel } from "@nostr-relay/common";
import { EventRepositorySqlite } from "@nostr-relay/event-repository-sqlite";
import { Validator } from "@nostr-relay/validator";

export interface LocalNostrRelayOptions {
  port?: number;
  /** SQLite file (default ":memory:"). */
  database?: string;
}

export class LocalNostrRelay {
  private constructor(
    private readonly http: Server,
    private readonly wss: WebSocketServer,
    private readonly relay: NostrRelay,
    private readonly repo: EventRepositorySqlite,
    readonly port: number,
  ) {}

  get url(): string {
    return `ws://127.0.0.1:${this.port}`;
  }

  static async start(opts: LocalNostrRelayOptions = {}): Promise<LocalNostrRelay> {
    const repo = new EventRepositorySqlite(opts.database ?? ":memory:");
    await repo.init();
    const relay = new NostrRelay(repo, { filterResultCacheTtl: 0, eventHandlingResultCacheTtl: 0, logLevel: LogLevel.ERROR });
    const validator = new Validator();
    const http = createServer((req, res) => {
      if ((req.headers.accept ?? "").includes("application/nostr+json")) {
        res.writeHead(200, { "Content-Type": "application/nostr+json" }).end(JSON.stringify({ name: "@nostr-relay/core (local)", software: "@nostr-relay/core", supported_nips: [1, 9, 11, 40] }));
      } else res.writeHead(200).end("nostr-relay\n");
    });
    const wss = new WebSocketServer({ server: http, perMessageDeflate: false });
    wss.on("connection", (ws: WebSocket) => {
      relay.handleConnection(ws, "127.0.0.1");
      ws.on("message", (data) => {
        void (async () => {
          try {
            const msg = await validator.validateIncomingMessage(data as Buffer);
            await relay.handleMessage(ws, msg);
          } catch (e) {
            if (ws.readyState === ws.OPEN) ws.send(JSON.stringify(["NOTICE", e instanceof Error ? e.message : String(e)]));
          }
        })();
      });
      ws.on("close", () => relay.handleDisconnect(ws));
      ws.on("error", () => {});
    });
    await new Promise<void>((resolve, reject) => {
      http.once("error", reject);
      http.listen(opts.port ?? 0, "127.0.0.1", () => resolve());
    });
    return new LocalNostrRelay(http, wss, relay, repo, (http.address() as AddressInfo).port);
  }

  /**
   * Put events straight into the repository, without the relay's checks (to prepare a large
   * store quickly, e.g. for query benchmarks).
   */
  async preload(events: Iterable<import("./types.ts").NostrEvent>): Promise<void> {
    for (const e of events) await this.repo.upsert(e);
  }

  async close(): Promise<void> {
    for (const c of this.wss.clients) c.terminate();
    await new Promise<void>((r) => this.wss.close(() => r()));
    const closed = new Promise<void>((r) => this.http.close(() => r()));
    this.http.closeAllConnections();
    await closed;
    await this.relay.destroy();
    await this.repo.destroy();
  }
}
