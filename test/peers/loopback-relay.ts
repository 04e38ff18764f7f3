/**
 * A real Nostr relay for the peer tests: @nostr-relay/core with an in-memory SQLite store, served
 * over WebSocket on 127.0.0.1 (random port). The test that starts it stops it.
 */
import { WebSocketServer, type WebSocket } from "ws";
import { NostrRelay } from "@nostr-relay/core";
import { EventRepositorySqlite } from "@nostr-relay/event-repository-sqlite";
import { Validator } from "@nostr-relay/validator";

export interface LoopbackRelay {
  url: string;
  close(): Promise<void>;
}

export async function startLoopbackRelay(): Promise<LoopbackRelay> {
  const repository = new EventRepositorySqlite(":memory:");
  await repository.init();
  // Caches off: a repeated REQ within a second would otherwise return stale results.
  const relay = new NostrRelay(repository, { filterResultCacheTtl: 0, eventHandlingResultCacheTtl: 0, logLevel: 4 as never });
  const validator = new Validator();
  const wss = new WebSocketServer({ host: "127.0.0.1", port: 0, perMessageDeflate: false });
  wss.on("connection", (ws: WebSocket) => {
    relay.handleConnection(ws);
    ws.on("message", async (data) => {
      try {
        const message = await validator.validateIncomingMessage(data);
        await relay.handleMessage(ws, message);
      } catch (e) {
        ws.send(JSON.stringify(["NOTICE", `invalid: ${(e as Error).message}`]));
      }
    });
    ws.on("close", () => relay.handleDisconnect(ws));
    ws.on("error", () => undefined);
  });
  await new Promise<void>((resolve) => wss.once("listening", () => resolve()));
  const address = wss.address();
  if (address === null || typeof address === "string") throw new Error("unexpected address");
  return {
    url: `ws://127.0.0.1:${address.port}`,
    close: async () => {
      for (const c of wss.clients) c.terminate();
      await new Promise<void>((resolve) => wss.close(() => resolve()));
      await relay.destroy();
      await repository.destroy();
    },
  };
}
