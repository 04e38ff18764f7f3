/**
 * The relay core served over WebSocket on 127.0.0.1, with a NIP-11 information document
 * (`Accept: application/nostr+json`) and the nemesis available (faults included). Any Nostr
 * client can use it.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { WebSocketServer, type WebSocket } from "ws";
import { createRng } from "../sim/random.ts";
import { applyFaultCommand } from "./commands.ts";
import { FaultLog } from "./faults.ts";
import { RelayError, type RelayMessage } from "./messages.ts";
import { RealtimeScheduler } from "./realtime.ts";
import { defaultVerifyWorkers, VerifyPool } from "./verify-pool.ts";
import { CLIENT_LABEL_HEADER } from "../relays/websocket.ts";
import { loadSignatureVerifier, nostrWasmUrl, type SignedEventFields } from "../nostr/verify.ts";
import { nativeAddonPath } from "../nostr/secp256k1-native.ts";
import { Nemesis, SimulatedRelay, type SimConnection, type SimulatedRelayOptions } from "./simulated-relay.ts";

export interface RelayServerOptions extends Partial<Omit<SimulatedRelayOptions, "scheduler" | "directWhenNoFault" | "copyEvents" | "rng" | "url">> {
  /** TCP port (0 = any free port). */
  port?: number;
  /** Interface to listen on (default 127.0.0.1). */
  host?: string;
  /** Seed of the fault draws (default "relay"). */
  seed?: string | number;
  description?: string;
  /**
   * Accept fault commands at `POST /nemesis` (JSON, see commands.ts) and serve the fault log at
   * `GET /faults`, from loopback clients only. Off by default.
   */
  control?: boolean;
  /**
   * Worker threads that check incoming signatures off the event loop (default: one per core
   * beyond the first, at most 4; 0 = verify on the main thread).
   */
  verifyWorkers?: number;
  /**
   * When a client's socket has more than this many bytes waiting to be sent (it does not read),
   * EVENT frames for it are skipped and recorded as "socket-overflow.hit" (default 16 MiB).
   */
  maxBufferedBytes?: number;
  /**
   * Name a connection after its `x-marmot-harness-client` request header when present (the
   * harness's runs label agents' connections so that faults scoped to an agent reach them).
   * Off by default: connections are named by remote address.
   */
  labelClients?: boolean;
}

export interface Nip11Document {
  name: string;
  description: string;
  software: string;
  version: string;
  supported_nips: number[];
  limitation: Record<string, number | boolean>;
  /** Not NIP-11: which Schnorr verifier checks incoming events ("wasm-libsecp256k1", "js-noble", "off"). */
  signature_verifier: string;
  /** Not NIP-11: worker threads checking signatures, and what they run (empty when none). */
  verify_workers: { count: number; verifiers: string[] };
}

const VERSION = "0.1.0";

export class RelayServer {
  readonly relay: SimulatedRelay;
  private http: Server | undefined;
  private wss: WebSocketServer | undefined;
  private port_ = 0;
  private nextClient = 1;
  private readonly sockets = new Set<WebSocket>();
  private pool: VerifyPool | undefined;

  constructor(private readonly opts: RelayServerOptions = {}) {
    const scheduler = new RealtimeScheduler();
    this.relay = new SimulatedRelay({
      ...opts,
      name: opts.name ?? "marmot-harness-relay",
      scheduler,
      rng: createRng(opts.seed ?? "relay"),
      faultLog: opts.faultLog ?? new FaultLog(),
      directWhenNoFault: true,
      copyEvents: false,
    });
  }

  get nemesis(): Nemesis {
    return this.relay.nemesis;
  }

  get port(): number {
    return this.port_;
  }

  get url(): string {
    const host = this.opts.host ?? "127.0.0.1";
    return `ws://${host.includes(":") ? `[${host}]` : host}:${this.port_}`;
  }

  /** Open WebSocket connections right now. */
  get connections(): number {
    return this.sockets.size;
  }

  info(): Nip11Document {
    const L = this.relay.limits;
    return {
      name: this.relay.name,
      description: this.opts.description ?? "marmot-harness simulated relay (in-memory, fault injection)",
      software: "marmot-harness",
      version: VERSION,
      supported_nips: [1, 9, 11, 40, ...(this.relay.core.restrictedKinds.size > 0 || this.relay.core.authToPublish ? [42] : []), ...(this.relay.core.refuseProtected ? [] : [70])].sort((a, b) => a - b),
      limitation: {
        max_message_length: L.maxMessageBytes,
        max_event_bytes: L.maxEventBytes,
        max_subscriptions: L.maxSubscriptions,
        max_filters: L.maxFilters,
        max_limit: L.maxLimit,
        max_event_tags: L.maxEventTags,
        max_subid_length: L.maxSubscriptionIdLength,
        payment_required: false,
        restricted_writes: this.relay.core.authToPublish,
        auth_required: this.relay.core.authToPublish,
      },
      signature_verifier: this.relay.core.verifierName,
      verify_workers: { count: this.pool?.size ?? 0, verifiers: [...(this.pool?.verifiers ?? [])] },
    };
  }

  async start(): Promise<this> {
    const workers = this.opts.verifyWorkers ?? defaultVerifyWorkers();
    if (this.relay.core.verifySignatures) {
      // WASM libsecp256k1 once per process (pure JS when it cannot load), here and in the workers.
      const v = this.opts.signatureVerifier ?? (await loadSignatureVerifier());
      // Workers run what the main thread runs: native libsecp256k1, else WASM, else JS.
      if (workers > 0) this.pool = new VerifyPool(workers, v.name !== "js-noble" ? nostrWasmUrl() : undefined, v.name === "native-libsecp256k1" ? nativeAddonPath() : undefined);
    }
    const http = createServer((req, res) => this.onHttp(req, res));
    const wss = new WebSocketServer({
      server: http,
      perMessageDeflate: false,
      maxPayload: this.relay.limits.maxMessageBytes * 2 + 1024 * 1024,
    });
    wss.on("connection", (ws, req) => this.onSocket(ws, req));
    this.http = http;
    this.wss = wss;
    await new Promise<void>((resolve, reject) => {
      http.once("error", (e) => reject(new RelayError("RELAY_LISTEN_FAILED", `cannot listen on ${this.opts.host ?? "127.0.0.1"}:${this.opts.port ?? 0}: ${e.message}`)));
      http.listen(this.opts.port ?? 0, this.opts.host ?? "127.0.0.1", () => resolve());
    });
    this.port_ = (http.address() as AddressInfo).port;
    return this;
  }

  private onHttp(req: IncomingMessage, res: ServerResponse): void {
    const cors = { "Access-Control-Allow-Origin": "*", "Access-Control-Allow-Headers": "*", "Access-Control-Allow-Methods": "GET, OPTIONS" };
    if (req.method === "OPTIONS") {
      res.writeHead(204, cors).end();
      return;
    }
    if (this.opts.control && (req.url === "/nemesis" || req.url === "/faults" || req.url === "/connections")) {
      this.onControl(req, res);
      return;
    }
    if ((req.headers.accept ?? "").includes("application/nostr+json")) {
      res.writeHead(200, { ...cors, "Content-Type": "application/nostr+json" }).end(JSON.stringify(this.info()));
      return;
    }
    res.writeHead(200, { ...cors, "Content-Type": "text/plain; charset=utf-8" }).end("marmot-harness relay: connect with a Nostr client over WebSocket.\n");
  }

  private onControl(req: IncomingMessage, res: ServerResponse): void {
    const json = (status: number, body: unknown): void => {
      res.writeHead(status, { "Content-Type": "application/json" }).end(JSON.stringify(body));
    };
    const remote = req.socket.remoteAddress ?? "";
    if (!["127.0.0.1", "::1", "::ffff:127.0.0.1"].includes(remote)) {
      json(403, { error: "control is available from loopback only" });
      return;
    }
    if (req.method === "GET" && req.url === "/connections") {
      json(200, { connections: this.relay.connections().map((c) => ({ id: c.id, client: c.client })) });
      return;
    }
    if (req.method === "GET" && req.url === "/faults") {
      json(200, { records: this.relay.faultLog.records, hits: Object.fromEntries(this.relay.faultLog.hitCounts) });
      return;
    }
    if (req.method !== "POST" || req.url !== "/nemesis") {
      json(405, { error: "use POST /nemesis, GET /faults or GET /connections" });
      return;
    }
    let body = "";
    req.setEncoding("utf8");
    req.on("data", (chunk: string) => {
      body += chunk;
      if (body.length > 64 * 1024) req.destroy();
    });
    req.on("end", () => {
      try {
        const cmds: unknown = JSON.parse(body);
        for (const c of Array.isArray(cmds) ? cmds : [cmds]) applyFaultCommand(this.relay.nemesis, c);
        json(200, { ok: true, faults: this.relay.faultLog.records.length });
      } catch (e) {
        json(400, { error: e instanceof Error ? e.message : String(e), code: e instanceof RelayError ? e.code : "BAD_JSON" });
      }
    });
  }

  /** Parse an EVENT frame and start its signature check on a worker; undefined when not applicable. */
  private preVerify(text: string, pool: VerifyPool): { msg: unknown[]; done: Promise<void> } | undefined {
    let msg: unknown;
    try {
      msg = JSON.parse(text);
    } catch {
      return undefined;
    }
    if (!Array.isArray(msg) || msg.length !== 2) return undefined;
    const e = msg[1] as Record<string, unknown> | null;
    if (typeof e !== "object" || e === null) return undefined;
    const { id, pubkey, sig } = e;
    if (typeof id !== "string" || typeof pubkey !== "string" || typeof sig !== "string" || !/^[0-9a-f]{64}$/.test(id) || !/^[0-9a-f]{64}$/.test(pubkey) || !/^[0-9a-f]{128}$/.test(sig)) return undefined;
    const cache = this.relay.core.signatureCache;
    if (cache.has({ id, sig } as never)) return { msg, done: Promise.resolve() };
    return {
      msg,
      done: pool.verify(e as unknown as SignedEventFields).then((ok) => {
        if (ok) cache.addPair(id, sig);
      }),
    };
  }

  private readonly eventJson = new WeakMap<object, string>();

  /** Frames as text; an event's JSON is built once however many subscriptions receive it. */
  private serialize(m: RelayMessage): string {
    if (m[0] !== "EVENT") return JSON.stringify(m);
    const e = m[2];
    let json = this.eventJson.get(e);
    if (json === undefined) {
      json = JSON.stringify(e);
      this.eventJson.set(e, json);
    }
    return `["EVENT",${JSON.stringify(m[1])},${json}]`;
  }

  private onSocket(ws: WebSocket, req: IncomingMessage): void {
    const label = this.opts.labelClients ? req.headers[CLIENT_LABEL_HEADER] : undefined;
    const client =
      typeof label === "string" && /^[\x21-\x7e]{1,64}$/.test(label) ? label : `${req.socket.remoteAddress ?? "?"}:${req.socket.remotePort ?? 0}#${this.nextClient++}`;
    let conn: SimConnection | undefined;
    try {
      const maxBuffered = this.opts.maxBufferedBytes ?? 16 * 1024 * 1024;
      conn = this.relay.connect(client, {
        onMessage: (m) => {
          if (ws.readyState !== ws.OPEN) return;
          // A client that does not read: like relays with bounded send queues, skip its events.
          if (m[0] === "EVENT" && ws.bufferedAmount > maxBuffered) {
            this.relay.faultLog.record({
              at: Date.now(),
              relay: this.relay.name,
              connection: conn?.id,
              fault: "socket-overflow.hit",
              params: { client, sub: m[1], eventId: m[2].id, bufferedAmount: ws.bufferedAmount },
            });
            return;
          }
          ws.send(this.serialize(m));
        },
        onClose: (reason) => ws.close(1011, reason.slice(0, 120)),
      });
    } catch (e) {
      ws.close(1013, e instanceof Error ? e.message.slice(0, 120) : "relay down");
      return;
    }
    this.sockets.add(ws);
    const c = conn;
    // Frames reach the relay in arrival order; an EVENT waits for its signature check (on a worker).
    const queue: { frame: string | unknown[]; ready: boolean }[] = [];
    const drain = (): void => {
      while (queue.length > 0 && (queue[0] as { ready: boolean }).ready) c.send((queue.shift() as { frame: string | unknown[] }).frame);
    };
    ws.on("message", (data, isBinary) => {
      if (isBinary) {
        ws.send(JSON.stringify(["NOTICE", "invalid: binary frames are not supported"]));
        return;
      }
      const text = data.toString();
      const bytes = Array.isArray(data) ? data.reduce((n, b) => n + b.length, 0) : (data as Buffer | ArrayBuffer).byteLength;
      const pool = this.pool;
      if (pool && bytes <= this.relay.limits.maxMessageBytes && text.startsWith('["EVENT"')) {
        const pre = this.preVerify(text, pool);
        if (pre) {
          const entry = { frame: pre.msg as string | unknown[], ready: false };
          queue.push(entry);
          void pre.done.then(() => {
            entry.ready = true;
            drain();
          });
          return;
        }
      }
      queue.push({ frame: text, ready: true });
      drain();
    });
    ws.on("close", () => {
      this.sockets.delete(ws);
      c.close();
    });
    ws.on("error", () => {
      /* the close event follows */
    });
  }

  async close(): Promise<void> {
    await this.pool?.close();
    this.pool = undefined;
    for (const ws of this.sockets) ws.terminate();
    this.sockets.clear();
    await new Promise<void>((r) => (this.wss ? this.wss.close(() => r()) : r()));
    const http = this.http;
    if (http) {
      const closed = new Promise<void>((r) => http.close(() => r()));
      http.closeAllConnections();
      await closed;
    }
  }
}

export async function startRelayServer(opts: RelayServerOptions = {}): Promise<RelayServer> {
  return new RelayServer(opts).start();
}
