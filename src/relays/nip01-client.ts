/**
 * The client side of NIP-01 shared by every RelayConnection backend: pending publishes
 * waiting for OK (with timeout), subscriptions routed by id, resubscription after a
 * reconnect. Backends supply the transport (send a frame, open, close) and the timers.
 */
import type { Clock } from "../sim/clock.ts";
import type {
  ConnectionStatus,
  Filter,
  NostrEvent,
  PublishAck,
  RelayConnection,
  RelaySubscription,
  SubscriptionHandlers,
} from "./types.ts";

export interface Timers extends Clock {
  /** Run fn after ms; returns a cancel function. A scheduler awaits the promise fn returns. */
  set(ms: number, fn: () => void | Promise<void>): () => void;
}

export const realTimers: Timers = {
  now: () => Date.now(),
  set(ms, fn) {
    const t = setTimeout(() => void fn(), ms);
    return () => clearTimeout(t);
  },
};

export interface ReconnectOptions {
  /** First retry delay (default 250 ms); doubles up to maxDelayMs. */
  delayMs?: number;
  maxDelayMs?: number;
  /** Give up after this many failed attempts (default unlimited). */
  maxAttempts?: number;
}

export interface Nip01ClientOptions {
  /** Default publish timeout in ms (default 10,000). */
  publishTimeoutMs?: number;
  /** Reconnect and resubscribe when the transport drops (false: subscriptions close). */
  reconnect?: ReconnectOptions | false;
  /** Called for every NOTICE. */
  onNotice?(text: string): void;
  /**
   * NIP-42: sign the relay's AUTH challenge (a kind 22242 template) when the relay answers
   * `auth-required:` to a REQ or an EVENT; the REQ or EVENT is then sent again once.
   */
  authSigner?(template: { kind: number; created_at: number; tags: string[][]; content: string }): NostrEvent | Promise<NostrEvent>;
}

interface PendingPublish {
  event: NostrEvent;
  resolve(a: PublishAck): void;
  cancel: () => void;
}

interface ActiveSub {
  id: string;
  filters: Filter[];
  handlers: SubscriptionHandlers;
}

export abstract class Nip01Client implements RelayConnection {
  abstract readonly url: string;
  protected _status: ConnectionStatus = "idle";
  protected readonly pending = new Map<string, PendingPublish>();
  protected readonly subs = new Map<string, ActiveSub>();
  readonly notices: string[] = [];
  private subCounter = 0;
  private challenge: string | undefined;
  private authState: "none" | "pending" | "done" = "none";
  private authEventId: string | undefined;
  private authWaiters: ((ok: boolean) => void)[] = [];
  private readonly authRetried = new Set<string>();
  /** Pubkey this connection authenticated as (NIP-42), if any. */
  authenticatedAs: string | undefined;
  private reconnectAttempts = 0;
  private closedByUser = false;
  private cancelReconnect: (() => void) | undefined;

  constructor(
    protected readonly timers: Timers,
    protected readonly opts: Nip01ClientOptions,
  ) {}

  get status(): ConnectionStatus {
    return this._status;
  }

  /** Open the transport; resolves when open, rejects when it cannot be opened. */
  protected abstract openTransport(): Promise<void>;
  /** Send a frame; false when the transport is not open. */
  protected abstract sendFrame(msg: unknown[]): boolean;
  protected abstract closeTransport(): Promise<void>;

  async connect(): Promise<void> {
    if (this._status === "open") return;
    this.closedByUser = false;
    // A scheduled reconnect is superseded; an open already under way is shared.
    this.cancelReconnect?.();
    this.cancelReconnect = undefined;
    this._status = "connecting";
    try {
      await this.openOnce();
    } catch (e) {
      this._status = "closed";
      throw e;
    }
    this.transportOpened();
  }

  private opening: Promise<void> | undefined;

  private openOnce(): Promise<void> {
    if (!this.opening) {
      this.opening = this.openTransport().finally(() => {
        this.opening = undefined;
      });
    }
    return this.opening;
  }

  /** Call when the transport is (again) open: resubscribe and resend unanswered events. */
  protected transportOpened(): void {
    if (this._status === "open") return;
    this._status = "open";
    this.authRetried.clear();
    this.reconnectAttempts = 0;
    for (const s of this.subs.values()) this.sendFrame(["REQ", s.id, ...s.filters]);
    for (const p of this.pending.values()) this.sendFrame(["EVENT", p.event]);
  }

  /** Call when the transport dropped without the user closing it. */
  protected transportLost(reason: string): void {
    this.challenge = undefined;
    this.authState = "none";
    this.authenticatedAs = undefined;
    for (const w of this.authWaiters.splice(0)) w(false);
    if (this._status === "closed" && this.closedByUser) return;
    this._status = "closed";
    const rc = this.opts.reconnect;
    if (rc && !this.closedByUser && (rc.maxAttempts === undefined || this.reconnectAttempts < rc.maxAttempts)) {
      this._status = "connecting";
      const base = rc.delayMs ?? 250;
      const delay = Math.min(rc.maxDelayMs ?? 10_000, base * 2 ** this.reconnectAttempts);
      this.reconnectAttempts++;
      this.cancelReconnect = this.timers.set(delay, () => {
        this.cancelReconnect = undefined;
        if (this.closedByUser) return;
        return this.openOnce().then(
          () => this.transportOpened(),
          (e: unknown) => this.transportLost(e instanceof Error ? e.message : String(e)),
        );
      });
      return;
    }
    this.failEverything(reason);
  }

  private failEverything(reason: string): void {
    const subs = [...this.subs.values()];
    this.subs.clear();
    for (const s of subs) s.handlers.onClosed?.(reason);
    const pend = [...this.pending.values()];
    this.pending.clear();
    for (const p of pend) {
      p.cancel();
      p.resolve({ relay: this.url, eventId: p.event.id, ok: false, message: reason.startsWith("error:") ? reason : `error: ${reason}`, at: this.timers.now() });
    }
  }

  /** Route one relay frame. */
  protected handleFrame(msg: unknown): void {
    if (!Array.isArray(msg) || typeof msg[0] !== "string") return;
    switch (msg[0]) {
      case "EVENT": {
        const s = this.subs.get(msg[1] as string);
        if (s && typeof msg[2] === "object" && msg[2] !== null) s.handlers.onEvent(msg[2] as NostrEvent);
        return;
      }
      case "AUTH":
        if (typeof msg[1] === "string") this.challenge = msg[1];
        return;
      case "OK": {
        if (msg[1] === this.authEventId && this.authState === "pending") {
          this.authState = msg[2] === true ? "done" : "none";
          if (msg[2] !== true) this.authenticatedAs = undefined;
          for (const w of this.authWaiters.splice(0)) w(msg[2] === true);
          return;
        }
        const p = this.pending.get(msg[1] as string);
        if (!p) return;
        if (msg[2] !== true && typeof msg[3] === "string" && msg[3].startsWith("auth-required:") && this.canAuth(`event:${p.event.id}`)) {
          void this.authenticate().then((ok) => {
            if (ok && this.pending.get(p.event.id) === p) this.sendFrame(["EVENT", p.event]);
            else if (this.pending.get(p.event.id) === p) {
              this.pending.delete(p.event.id);
              p.cancel();
              p.resolve({ relay: this.url, eventId: p.event.id, ok: false, message: msg[3] as string, at: this.timers.now() });
            }
          });
          return;
        }
        this.pending.delete(msg[1] as string);
        p.cancel();
        p.resolve({ relay: this.url, eventId: p.event.id, ok: msg[2] === true, message: typeof msg[3] === "string" ? msg[3] : "", at: this.timers.now() });
        return;
      }
      case "EOSE":
        this.subs.get(msg[1] as string)?.handlers.onEose?.();
        return;
      case "CLOSED": {
        const s = this.subs.get(msg[1] as string);
        if (!s) return;
        const why = typeof msg[2] === "string" ? msg[2] : "";
        if (why.startsWith("auth-required:") && this.canAuth(`sub:${s.id}`)) {
          void this.authenticate().then((ok) => {
            if (this.subs.get(s.id) !== s) return;
            if (ok) this.sendFrame(["REQ", s.id, ...s.filters]);
            else {
              this.subs.delete(s.id);
              s.handlers.onClosed?.(why);
            }
          });
          return;
        }
        this.subs.delete(s.id);
        s.handlers.onClosed?.(typeof msg[2] === "string" ? msg[2] : "");
        return;
      }
      case "NOTICE":
        this.notices.push(String(msg[1]));
        this.opts.onNotice?.(String(msg[1]));
        return;
      default:
      // AUTH and others: not handled by this client.
    }
  }

  /** One AUTH retry per subscription or event per connection, and only with a signer and a challenge. */
  private canAuth(key: string): boolean {
    if (!this.opts.authSigner || this.challenge === undefined || this.authRetried.has(key)) return false;
    this.authRetried.add(key);
    return true;
  }

  /** Answer the relay's NIP-42 challenge; resolves true once the relay accepted it. */
  authenticate(): Promise<boolean> {
    if (this.authState === "done") return Promise.resolve(true);
    const signer = this.opts.authSigner;
    const challenge = this.challenge;
    if (!signer || challenge === undefined) return Promise.resolve(false);
    const waiter = new Promise<boolean>((resolve) => this.authWaiters.push(resolve));
    if (this.authState === "none") {
      this.authState = "pending";
      void (async () => {
        try {
          const ev = await signer({ kind: 22242, created_at: Math.floor(this.timers.now() / 1000), tags: [["relay", this.url], ["challenge", challenge]], content: "" });
          this.authEventId = ev.id;
          this.authenticatedAs = ev.pubkey;
          const cancel = this.timers.set(this.opts.publishTimeoutMs ?? 10_000, () => {
            if (this.authState !== "pending" || this.authEventId !== ev.id) return;
            this.authState = "none";
            this.authenticatedAs = undefined;
            for (const w of this.authWaiters.splice(0)) w(false);
          });
          this.authWaiters.push(() => cancel());
          if (!this.sendFrame(["AUTH", ev])) throw new Error("not connected");
        } catch {
          this.authState = "none";
          this.authenticatedAs = undefined;
          for (const w of this.authWaiters.splice(0)) w(false);
        }
      })();
    }
    return waiter;
  }

  publish(event: NostrEvent, opts: { timeoutMs?: number } = {}): Promise<PublishAck> {
    const timeoutMs = opts.timeoutMs ?? this.opts.publishTimeoutMs ?? 10_000;
    const existing = this.pending.get(event.id);
    if (existing) {
      // Same event published twice while waiting: share the answer.
      return new Promise((resolve) => {
        const prev = existing.resolve;
        existing.resolve = (a) => {
          prev(a);
          resolve(a);
        };
      });
    }
    return new Promise<PublishAck>((resolve) => {
      const cancel = this.timers.set(timeoutMs, () => {
        if (this.pending.get(event.id)?.resolve !== entry.resolve) return;
        this.pending.delete(event.id);
        entry.resolve({ relay: this.url, eventId: event.id, ok: false, message: "timeout", at: this.timers.now() });
      });
      const entry: PendingPublish = { event, resolve, cancel };
      this.pending.set(event.id, entry);
      if (this._status === "open") this.sendFrame(["EVENT", event]);
      else if (this._status === "idle" || (this._status === "closed" && !this.opts.reconnect)) {
        this.pending.delete(event.id);
        cancel();
        resolve({ relay: this.url, eventId: event.id, ok: false, message: "error: not connected", at: this.timers.now() });
      }
      // connecting: sent by transportOpened()
    });
  }

  subscribe(filters: Filter[], handlers: SubscriptionHandlers, opts: { id?: string } = {}): RelaySubscription {
    const id = opts.id ?? `sub${++this.subCounter}`;
    const sub: ActiveSub = { id, filters, handlers };
    this.subs.set(id, sub);
    if (this._status === "open") this.sendFrame(["REQ", id, ...filters]);
    return {
      id,
      close: () => {
        if (this.subs.get(id) !== sub) return;
        this.subs.delete(id);
        if (this._status === "open") this.sendFrame(["CLOSE", id]);
      },
    };
  }

  async close(): Promise<void> {
    this.closedByUser = true;
    this.cancelReconnect?.();
    this.cancelReconnect = undefined;
    const wasOpen = this._status !== "closed" && this._status !== "idle";
    this._status = "closed";
    this.failEverything("closed by client");
    if (wasOpen) await this.closeTransport();
  }
}
