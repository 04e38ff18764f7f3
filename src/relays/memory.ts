/**
 * In-memory RelayConnection: straight to a SimulatedRelay, no sockets. Frames travel through
 * the relay's scheduler (virtual time in simulation), so latency and faults apply.
 */
import type { Scheduler } from "../sim/clock.ts";
import type { SimConnection, SimulatedRelay } from "../simulated-relay/simulated-relay.ts";
import { Nip01Client, type Nip01ClientOptions, type Timers } from "./nip01-client.ts";

export interface MemoryConnectionOptions extends Nip01ClientOptions {
  /** Who is connecting (agent name); faults such as partitions are scoped by it. */
  client?: string;
}

/** Timers on a Scheduler: cancelled timers still wake the scheduler, but do nothing. */
export function schedulerTimers(s: Scheduler): Timers {
  return {
    now: () => s.now(),
    set(ms, fn) {
      let live = true;
      s.after(ms, () => (live ? fn() : undefined), "timer");
      return () => {
        live = false;
      };
    },
  };
}

let anon = 0;

export class MemoryRelayConnection extends Nip01Client {
  readonly url: string;
  readonly client: string;
  private conn: SimConnection | undefined;

  constructor(
    readonly relay: SimulatedRelay,
    opts: MemoryConnectionOptions = {},
  ) {
    super(schedulerTimers(relay.scheduler), { reconnect: false, ...opts });
    this.url = relay.url;
    this.client = opts.client ?? `client${++anon}`;
  }

  /** The relay-side connection id while open (appears in fault and delivery logs). */
  get connectionId(): string | undefined {
    return this.conn?.id;
  }

  protected async openTransport(): Promise<void> {
    const conn = this.relay.connect(this.client, {
      onMessage: (m) => {
        if (this.conn === conn) this.handleFrame(m);
      },
      onClose: (reason) => {
        if (this.conn !== conn) return;
        this.conn = undefined;
        this.transportLost(reason);
      },
    });
    this.conn = conn;
  }

  protected sendFrame(msg: unknown[]): boolean {
    const c = this.conn;
    if (!c?.isOpen) return false;
    // A relay that answers synchronously (directWhenNoFault) must not call handlers before
    // subscribe()/publish() return.
    if (this.relay.direct) queueMicrotask(() => c.send(msg));
    else c.send(msg);
    return true;
  }

  /** Send raw text as a WebSocket would carry it (for bad-input tests and conformance probes). */
  sendRaw(text: string): boolean {
    if (!this.conn?.isOpen) return false;
    this.conn.send(text);
    return true;
  }

  protected async closeTransport(): Promise<void> {
    const c = this.conn;
    this.conn = undefined;
    c?.close();
  }
}
