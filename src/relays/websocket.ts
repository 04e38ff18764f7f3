/**
 * WebSocket RelayConnection to any ws:// or wss:// relay, built on `ws`: reconnects with
 * backoff and resubscribes, resends unanswered events after a reconnect, publishes with a
 * timeout. permessage-deflate is off unless asked for.
 */
import WebSocket from "ws";
import { RelayError } from "../simulated-relay/messages.ts";
import { Nip01Client, realTimers, type Nip01ClientOptions } from "./nip01-client.ts";

export interface WebSocketConnectionOptions extends Nip01ClientOptions {
  /** Give up opening the socket after this long (default 10,000 ms). */
  connectTimeoutMs?: number;
  perMessageDeflate?: boolean;
  /** Largest frame accepted from the relay (default 16 MiB). */
  maxPayload?: number;
  /** Extra HTTP headers on the WebSocket upgrade request (e.g. CLIENT_LABEL_HEADER). */
  headers?: Record<string, string>;
}

/**
 * Header naming the agent behind a connection. The harness's own relay server (with
 * `labelClients`) names the connection after it, so faults scoped to an agent reach it.
 */
export const CLIENT_LABEL_HEADER = "x-marmot-harness-client";

export class WebSocketRelayConnection extends Nip01Client {
  private ws: WebSocket | undefined;

  constructor(
    readonly url: string,
    private readonly wsOpts: WebSocketConnectionOptions = {},
  ) {
    super(realTimers, { reconnect: { delayMs: 250, maxDelayMs: 5000 }, ...wsOpts });
  }

  protected openTransport(): Promise<void> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(this.url, {
        perMessageDeflate: this.wsOpts.perMessageDeflate ?? false,
        maxPayload: this.wsOpts.maxPayload ?? 16 * 1024 * 1024,
        handshakeTimeout: this.wsOpts.connectTimeoutMs ?? 10_000,
        ...(this.wsOpts.headers ? { headers: this.wsOpts.headers } : {}),
      });
      let opened = false;
      ws.on("open", () => {
        opened = true;
        this.ws = ws;
        resolve();
      });
      ws.on("message", (data, isBinary) => {
        if (isBinary || this.ws !== ws) return;
        let msg: unknown;
        try {
          msg = JSON.parse(data.toString());
        } catch {
          return;
        }
        this.handleFrame(msg);
      });
      ws.on("error", (err) => {
        if (!opened) reject(new RelayError("RELAY_CONNECT_FAILED", `cannot connect to ${this.url}: ${err.message}`, { url: this.url }));
      });
      ws.on("close", (code, why) => {
        if (!opened) {
          reject(new RelayError("RELAY_CONNECT_FAILED", `connection to ${this.url} closed before opening (${code})`, { url: this.url }));
          return;
        }
        if (this.ws !== ws) return;
        this.ws = undefined;
        this.transportLost(`error: connection closed (${code}${why.length ? ` ${why.toString()}` : ""})`);
      });
    });
  }

  protected sendFrame(msg: unknown[]): boolean {
    const ws = this.ws;
    if (!ws || ws.readyState !== WebSocket.OPEN) return false;
    ws.send(JSON.stringify(msg));
    return true;
  }

  /** Send raw text as-is (for bad-input tests and conformance probes). */
  sendRaw(text: string): boolean {
    const ws = this.ws;
    if (!ws || ws.readyState !== WebSocket.OPEN) return false;
    ws.send(text);
    return true;
  }

  protected closeTransport(): Promise<void> {
    const ws = this.ws;
    this.ws = undefined;
    if (!ws || ws.readyState === WebSocket.CLOSED) return Promise.resolve();
    return new Promise((resolve) => {
      ws.once("close", () => resolve());
      ws.close();
      setTimeout(() => {
        ws.terminate();
        resolve();
      }, 1000).unref();
    });
  }
}
