/**
 * A Blossom server for the harness (node:http, 127.0.0.1 by default).
 *
 * BUD-01: GET and HEAD `/<sha256>[.ext]`. BUD-02: PUT `/upload`, DELETE `/<sha256>`,
 * GET `/list/<pubkey>?since&until` (plus `cursor`/`limit` as blossom-client-sdk sends them).
 * BUD-06: HEAD `/upload` pre-flight (X-SHA-256, X-Content-Length).
 * Authorization: kind 24242 (see auth.ts); required for upload and delete, optional (off by
 * default) for get and list.
 *
 * Faults, switchable at runtime with `setFaults` (or `PUT /_harness/faults` when `adminApi` is on):
 * missing blobs (GET/HEAD answer 404), corrupted bytes (GET flips one byte), swapped blobs (GET
 * serves another stored blob's bytes under the asked address), slow responses (a
 * delay before every answer), an upload size limit (413) and refused auth (401 or 403).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { createHash } from "node:crypto";
import { BlossomError, decodeAuthHeader, verifyAuthHeader, type BlossomVerb, type VerifiedAuth } from "./auth.ts";
import { MemoryBlobStore, type BlobMeta, type BlobStore } from "./store.ts";
import type { Event as NostrEvent } from "nostr-tools";
import type { CaptureRecord } from "../capture.ts";

export interface BlossomFaults {
  /** GET/HEAD of these blobs answer 404 although they are stored ("all" for every blob). */
  missing: "all" | string[];
  /** GET of these blobs returns the bytes with one byte flipped ("all" for every blob). */
  corrupt: "all" | string[];
  /**
   * GET of a key blob returns the stored bytes of its value blob instead (a valid blob under the
   * wrong address: what a malicious or confused server does). Both must be stored.
   */
  swap: Record<string, string>;
  /** Milliseconds to wait before answering any request. */
  delayMs: number;
  /** Uploads larger than this many bytes answer 413 (null: no limit). */
  maxUploadBytes: number | null;
  /** Refuse every authorized request (or only these pubkeys') with this status. */
  refuseAuth: { status: 401 | 403; pubkeys?: string[] } | null;
}

export const NO_FAULTS: Readonly<BlossomFaults> = Object.freeze({
  missing: [],
  corrupt: [],
  swap: {},
  delayMs: 0,
  maxUploadBytes: null,
  refuseAuth: null,
});

export interface BlossomServerOptions {
  /** Default 127.0.0.1. */
  host?: string;
  /** Default 0 (a free port). */
  port?: number;
  /** Default: a memory store. */
  store?: BlobStore;
  /** Which verbs need authorization (default: upload and delete). */
  requireAuth?: Partial<Record<BlossomVerb, boolean>>;
  /** Base of descriptor URLs (default http://host:port). */
  publicUrl?: string;
  /** Unix seconds (default: wall clock). */
  now?: () => number;
  faults?: Partial<BlossomFaults>;
  /** Serve PUT/GET /_harness/faults and GET /_harness/stats (default false). */
  adminApi?: boolean;
}

/** One authorization the server checked (accepted or not), for checkers (e.g. MIP01-IMG-02). */
export interface AuthLogEntry {
  /** The kind 24242 event as received (absent when the header could not be decoded). */
  event?: NostrEvent;
  verb: BlossomVerb;
  sha256?: string;
  /** HTTP status the check led to (200 when accepted). */
  status: number;
  code?: string;
  /** Milliseconds since the Unix epoch. */
  at: number;
}

export interface BlobDescriptor {
  url: string;
  sha256: string;
  size: number;
  type: string;
  uploaded: number;
}

export interface BlossomStats {
  requests: number;
  uploads: number;
  downloads: number;
  deletes: number;
  rejected: Record<string, number>;
  bytesIn: number;
  bytesOut: number;
}

const SHA_PATH = /^\/([0-9a-fA-F]{64})(\.[A-Za-z0-9]{1,16})?$/;
const LIST_PATH = /^\/list\/([0-9a-fA-F]{64})$/;

const EXT_BY_TYPE: Record<string, string> = {
  "image/jpeg": ".jpg",
  "image/png": ".png",
  "image/gif": ".gif",
  "image/webp": ".webp",
  "video/mp4": ".mp4",
  "audio/mpeg": ".mp3",
  "application/pdf": ".pdf",
  "text/plain": ".txt",
  "application/octet-stream": ".bin",
};

export class BlossomServer {
  private readonly opts: BlossomServerOptions;
  private readonly store: BlobStore;
  private readonly requireAuth: Record<BlossomVerb, boolean>;
  private server: Server | undefined;
  private base = "";
  private faultState: BlossomFaults;
  private readonly authEntries: AuthLogEntry[] = [];
  readonly stats: BlossomStats = { requests: 0, uploads: 0, downloads: 0, deletes: 0, rejected: {}, bytesIn: 0, bytesOut: 0 };

  constructor(opts: BlossomServerOptions = {}) {
    this.opts = opts;
    this.store = opts.store ?? new MemoryBlobStore();
    this.requireAuth = { upload: true, delete: true, get: false, list: false, ...opts.requireAuth };
    this.faultState = { ...NO_FAULTS, ...opts.faults };
  }

  /** Start listening; resolves with the base URL (e.g. http://127.0.0.1:41234). */
  async start(): Promise<string> {
    if (this.server) return this.url;
    const host = this.opts.host ?? "127.0.0.1";
    const server = createServer((req, res) => {
      this.handle(req, res).catch((e) => this.fail(res, e));
    });
    // Keep idle connections longer than clients do (undici: 4 s), so that a client never reuses a
    // socket the server is closing at that moment (a "fetch failed" under load with Node's 5 s).
    server.keepAliveTimeout = 30_000;
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(this.opts.port ?? 0, host, () => {
        server.off("error", reject);
        resolve();
      });
    });
    this.server = server;
    const port = (server.address() as AddressInfo).port;
    this.base = (this.opts.publicUrl ?? `http://${host}:${port}`).replace(/\/+$/, "");
    return this.url;
  }

  /** Stop listening and drop open connections. */
  async stop(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  }

  get url(): string {
    if (!this.server) throw new Error("Blossom server not started");
    return this.base;
  }

  get port(): number {
    if (!this.server) throw new Error("Blossom server not started");
    return (this.server.address() as AddressInfo).port;
  }

  get faults(): Readonly<BlossomFaults> {
    return this.faultState;
  }

  /** Change some faults (the others keep their value). */
  setFaults(patch: Partial<BlossomFaults>): void {
    this.faultState = { ...this.faultState, ...patch };
  }

  clearFaults(): void {
    this.faultState = { ...NO_FAULTS };
  }

  /** Every authorization checked so far, in order (accepted ones have status 200). */
  authLog(): readonly AuthLogEntry[] {
    return this.authEntries;
  }

  /**
   * The accepted kind 24242 events as capture records (`relay` = this server's URL, `source` =
   * "blossom:<verb>"), so a compliance run can check who uploaded and deleted what.
   */
  authCapture(): CaptureRecord[] {
    const seen = new Set<string>();
    const out: CaptureRecord[] = [];
    for (const e of this.authEntries) {
      if (e.status !== 200 || !e.event || seen.has(e.event.id)) continue; // one record per event (pre-flight + PUT check it twice)
      seen.add(e.event.id);
      out.push({ event: e.event, relay: this.base, seenAt: e.at, source: `blossom:${e.verb}` });
    }
    return out;
  }

  /** Stored blob metadata (for tests and checkers). */
  blobs(): BlobMeta[] {
    return this.store.all();
  }

  private now(): number {
    return this.opts.now ? this.opts.now() : Math.floor(Date.now() / 1000);
  }

  private serverHost(): string {
    return new URL(this.base).hostname.toLowerCase();
  }

  private matches(list: "all" | string[], sha: string): boolean {
    return list === "all" || list.map((s) => s.toLowerCase()).includes(sha);
  }

  private auth(req: IncomingMessage, verb: BlossomVerb, sha256?: string, required = this.requireAuth[verb]): VerifiedAuth | undefined {
    const header = req.headers.authorization;
    if (!header && !required) return undefined;
    const entry: AuthLogEntry = { verb, ...(sha256 ? { sha256 } : {}), status: 200, at: this.opts.now ? this.opts.now() * 1000 : Date.now() };
    try {
      entry.event = decodeAuthHeader(header ?? "");
    } catch {
      // logged without the event
    }
    this.authEntries.push(entry);
    try {
      const auth = verifyAuthHeader(header, { verb, now: this.now(), ...(sha256 ? { sha256 } : {}), serverHost: this.serverHost() });
      const refuse = this.faultState.refuseAuth;
      if (refuse && (!refuse.pubkeys || refuse.pubkeys.includes(auth.pubkey))) {
        throw new BlossomError("AUTH_REFUSED", refuse.status, `authorization refused for ${auth.pubkey} (fault)`);
      }
      return auth;
    } catch (e) {
      if (e instanceof BlossomError) {
        entry.status = e.status;
        entry.code = e.code;
      }
      throw e;
    }
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    this.stats.requests++;
    res.setHeader("Access-Control-Allow-Origin", "*");
    res.setHeader("Access-Control-Allow-Headers", "Authorization,*");
    res.setHeader("Access-Control-Allow-Methods", "GET, HEAD, PUT, DELETE");
    const url = new URL(req.url ?? "/", "http://localhost");
    const path = url.pathname;
    const method = req.method ?? "GET";
    if (this.faultState.delayMs > 0 && !path.startsWith("/_harness/")) await new Promise((r) => setTimeout(r, this.faultState.delayMs));

    if (method === "OPTIONS") return this.send(res, 204);
    if (this.opts.adminApi && path === "/_harness/faults") {
      if (method === "PUT" || method === "POST") {
        const body = await this.readBody(req, 1 << 16);
        this.setFaults(JSON.parse(Buffer.from(body).toString("utf8") || "{}") as Partial<BlossomFaults>);
      }
      return this.json(res, 200, this.faultState);
    }
    if (this.opts.adminApi && path === "/_harness/stats") return this.json(res, 200, { ...this.stats, blobs: this.store.all().length });

    if (path === "/upload") {
      if (method === "HEAD") return this.uploadCheck(req, res);
      if (method === "PUT") return this.upload(req, res);
    }
    const list = LIST_PATH.exec(path);
    if (list && method === "GET") return this.list(req, res, list[1]!.toLowerCase(), url.searchParams);
    const blob = SHA_PATH.exec(path);
    if (blob) {
      const sha = blob[1]!.toLowerCase();
      if (method === "GET" || method === "HEAD") return this.get(req, res, sha, method === "HEAD");
      if (method === "DELETE") return this.remove(req, res, sha);
    }
    await this.drain(req);
    throw new BlossomError("BAD_REQUEST", 404, `no endpoint ${method} ${path}`);
  }

  private async get(req: IncomingMessage, res: ServerResponse, sha: string, head: boolean): Promise<void> {
    this.auth(req, "get", sha);
    const meta = this.store.meta(sha);
    if (!meta || this.matches(this.faultState.missing, sha)) throw new BlossomError("BLOB_NOT_FOUND", 404, `blob ${sha} not found`);
    res.setHeader("Content-Type", meta.type);
    res.setHeader("Content-Length", String(meta.size));
    if (head) return this.send(res, 200);
    const swapTo = Object.entries(this.faultState.swap ?? {}).find(([k]) => k.toLowerCase() === sha)?.[1]?.toLowerCase();
    let data = await this.store.get(swapTo && this.store.meta(swapTo) ? swapTo : sha);
    if (!data) throw new BlossomError("BLOB_NOT_FOUND", 404, `blob ${sha} not found`);
    if (swapTo && this.store.meta(swapTo)) res.setHeader("Content-Length", String(data.length));
    if (this.matches(this.faultState.corrupt, sha) && data.length > 0) {
      data = new Uint8Array(data);
      data[data.length >> 1] ^= 0x01;
    }
    this.stats.downloads++;
    this.stats.bytesOut += data.length;
    res.writeHead(200);
    res.end(data);
  }

  private uploadCheck(req: IncomingMessage, res: ServerResponse): void {
    const sha = String(req.headers["x-sha-256"] ?? "").toLowerCase();
    const len = Number(req.headers["x-content-length"] ?? NaN);
    if (!/^[0-9a-f]{64}$/.test(sha)) throw new BlossomError("BAD_REQUEST", 400, "X-SHA-256 header missing or not 64 hex");
    const max = this.faultState.maxUploadBytes;
    if (max !== null && Number.isFinite(len) && len > max) throw new BlossomError("BLOB_TOO_LARGE", 413, `blob of ${len} bytes exceeds ${max}`);
    this.auth(req, "upload", sha);
    this.send(res, 200);
  }

  private async upload(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const max = this.faultState.maxUploadBytes;
    const declared = Number(req.headers["content-length"] ?? NaN);
    if (max !== null && Number.isFinite(declared) && declared > max) {
      await this.drain(req);
      throw new BlossomError("BLOB_TOO_LARGE", 413, `blob of ${declared} bytes exceeds ${max}`);
    }
    // Fail fast on auth when the client announced the hash.
    const announced = String(req.headers["x-sha-256"] ?? "").toLowerCase();
    if (/^[0-9a-f]{64}$/.test(announced)) {
      try {
        this.auth(req, "upload", announced);
      } catch (e) {
        await this.drain(req);
        throw e;
      }
    }
    const data = await this.readBody(req, max);
    const sha = createHash("sha256").update(data).digest("hex");
    if (announced && /^[0-9a-f]{64}$/.test(announced) && announced !== sha) {
      throw new BlossomError("HASH_MISMATCH", 409, `X-SHA-256 ${announced} does not match the body (${sha})`);
    }
    const auth = this.auth(req, "upload", sha);
    const owner = auth?.pubkey ?? "anonymous";
    const now = this.now();
    const type = normaliseType(req.headers["content-type"]);
    const existing = this.store.meta(sha);
    if (existing) {
      if (!(owner in existing.owners)) await this.store.updateMeta({ ...existing, owners: { ...existing.owners, [owner]: now } });
    } else {
      await this.store.put(data, { sha256: sha, size: data.length, type, owners: { [owner]: now } });
    }
    this.stats.uploads++;
    this.stats.bytesIn += data.length;
    const meta = this.store.meta(sha)!;
    this.json(res, 200, this.descriptor(meta, meta.owners[owner] ?? now));
  }

  private async remove(req: IncomingMessage, res: ServerResponse, sha: string): Promise<void> {
    const auth = this.auth(req, "delete", sha, true)!;
    const meta = this.store.meta(sha);
    if (!meta) throw new BlossomError("BLOB_NOT_FOUND", 404, `blob ${sha} not found`);
    if (!(auth.pubkey in meta.owners)) throw new BlossomError("NOT_OWNER", 403, `${auth.pubkey} did not upload ${sha}`);
    const owners = { ...meta.owners };
    delete owners[auth.pubkey];
    if (Object.keys(owners).length === 0) await this.store.remove(sha);
    else await this.store.updateMeta({ ...meta, owners });
    this.stats.deletes++;
    this.json(res, 200, { message: "deleted", sha256: sha });
  }

  private list(req: IncomingMessage, res: ServerResponse, pubkey: string, q: URLSearchParams): void {
    this.auth(req, "list");
    const since = q.has("since") ? Number(q.get("since")) : -Infinity;
    const until = q.has("until") ? Number(q.get("until")) : Infinity;
    const limit = q.has("limit") ? Math.max(1, Number(q.get("limit"))) : Infinity;
    if (Number.isNaN(since) || Number.isNaN(until) || Number.isNaN(limit)) throw new BlossomError("BAD_REQUEST", 400, "since, until and limit must be numbers");
    const cursor = q.get("cursor");
    let items = this.store
      .all()
      .filter((m) => pubkey in m.owners)
      .map((m) => this.descriptor(m, m.owners[pubkey]!))
      .filter((d) => d.uploaded >= since && d.uploaded <= until)
      .sort((a, b) => b.uploaded - a.uploaded || a.sha256.localeCompare(b.sha256));
    if (cursor) {
      const i = items.findIndex((d) => d.sha256 === cursor);
      items = i >= 0 ? items.slice(i + 1) : items;
    }
    if (Number.isFinite(limit)) items = items.slice(0, limit);
    this.json(res, 200, items);
  }

  private descriptor(meta: BlobMeta, uploaded: number): BlobDescriptor {
    return { url: `${this.base}/${meta.sha256}${EXT_BY_TYPE[meta.type] ?? ""}`, sha256: meta.sha256, size: meta.size, type: meta.type, uploaded };
  }

  private async readBody(req: IncomingMessage, max: number | null): Promise<Uint8Array> {
    const chunks: Buffer[] = [];
    let total = 0;
    let tooLarge = false;
    for await (const chunk of req as AsyncIterable<Buffer>) {
      total += chunk.length;
      if (max !== null && total > max) tooLarge = true; // keep draining so the client reads our answer
      if (!tooLarge) chunks.push(chunk);
    }
    if (tooLarge) throw new BlossomError("BLOB_TOO_LARGE", 413, `blob of ${total} bytes exceeds ${max}`);
    const buf = Buffer.concat(chunks, total);
    return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
  }

  private async drain(req: IncomingMessage): Promise<void> {
    if (req.readableEnded) return;
    for await (const _chunk of req as AsyncIterable<Buffer>) {
      // discard
    }
  }

  private send(res: ServerResponse, status: number): void {
    res.writeHead(status);
    res.end();
  }

  private json(res: ServerResponse, status: number, body: unknown): void {
    const text = JSON.stringify(body);
    res.writeHead(status, { "Content-Type": "application/json; charset=utf-8", "Content-Length": Buffer.byteLength(text) });
    res.end(text);
  }

  private fail(res: ServerResponse, e: unknown): void {
    const err =
      e instanceof BlossomError ? e : new BlossomError("BAD_REQUEST", 400, e instanceof Error ? e.message : String(e), {}, { cause: e });
    this.stats.rejected[err.code] = (this.stats.rejected[err.code] ?? 0) + 1;
    if (res.headersSent) {
      res.destroy();
      return;
    }
    const reason = err.message.replace(/[^\x20-\x7e]/g, "?");
    const text = JSON.stringify({ message: err.message, code: err.code });
    res.removeHeader("Content-Length");
    res.removeHeader("Content-Type");
    res.writeHead(err.status, { "Content-Type": "application/json; charset=utf-8", "X-Reason": reason, "Content-Length": Buffer.byteLength(text) });
    res.end(text);
  }
}

function normaliseType(h: string | undefined): string {
  const t = (h ?? "").split(";")[0]!.trim().toLowerCase();
  return /^[a-z0-9!#$&^_.+-]+\/[a-z0-9!#$&^_.+-]+$/.test(t) ? t : "application/octet-stream";
}

/** Start a server with options; the caller stops it. */
export async function startBlossomServer(opts: BlossomServerOptions = {}): Promise<BlossomServer> {
  const s = new BlossomServer(opts);
  await s.start();
  return s;
}
