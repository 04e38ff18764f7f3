/**
 * The runner's relay backends: the embedded simulated relay (one SimNetwork per run, sharing the
 * run's VirtualScheduler, faults through its nemesis, every fault recorded in the history) and
 * real relays over WebSocket (no faults).
 */
import type { History } from "../history.ts";
import { openRelay } from "../relays/open.ts";
import type { RelayConnection } from "../relays/types.ts";
import type { LatencyDist, LinkScope } from "../simulated-relay/faults.ts";
import { SimNetwork } from "../simulated-relay/network.ts";
import type { SimulatedRelay } from "../simulated-relay/simulated-relay.ts";
import { HarnessError } from "../errors.ts";
import type { BackendEnv, RelayBackendFactory, RelayBackendHandle } from "./backends.ts";
import type { FaultKind, RelaySpec } from "./types.ts";

const networks = new WeakMap<History, SimNetwork>();

function networkFor(env: BackendEnv): SimNetwork {
  let n = networks.get(env.history);
  if (!n) {
    if (!env.scheduler) throw new HarnessError("NO_SCHEDULER", "the simulated relay needs the run's virtual scheduler");
    n = new SimNetwork({ seed: env.rng.seed, scheduler: env.scheduler, recordDeliveries: false });
    n.faultLog.keepHits = true;
    const history = env.history;
    n.faultLog.onRecord((r) => {
      history.record("nemesis", "info", "fault", { relay: r.relay, fault: r.fault, ...(r.connection ? { connection: r.connection } : {}), params: r.params });
    });
    networks.set(env.history, n);
  }
  return n;
}

const DEFAULT_LATENCY: LatencyDist = { kind: "uniform", minMs: 5, maxMs: 40 };

const RECONNECT = { delayMs: 500, maxDelayMs: 5000, maxAttempts: 8 };

function num(v: unknown, dflt: number): number {
  return typeof v === "number" && Number.isFinite(v) ? v : dflt;
}

function clients(params: Record<string, unknown>): (string | undefined)[] {
  return Array.isArray(params.agents) && params.agents.length > 0 ? params.agents.map(String) : [undefined];
}

class SimBackend implements RelayBackendHandle {
  readonly backend = "sim";
  readonly url: string;
  private readonly conns: RelayConnection[] = [];

  constructor(
    readonly name: string,
    readonly relay: SimulatedRelay,
    private readonly spec: RelaySpec,
  ) {
    this.url = relay.url;
  }

  capabilities(): string[] {
    return ["faults", "retention", "reject-protected", "delivery-queue", "early-eose", "crash"];
  }

  connect(agentName: string): RelayConnection {
    const c = openRelay({ sim: this.relay }, { client: agentName, reconnect: RECONNECT, publishTimeoutMs: num(this.spec.options?.publishTimeoutMs, 5000) });
    this.conns.push(c);
    return c;
  }

  fault(fault: FaultKind, params: Record<string, unknown>): void {
    const n = this.relay.nemesis;
    const direction: "up" | "down" | undefined = params.direction === "up" || params.direction === "down" ? params.direction : undefined;
    for (const client of clients(params)) {
      const scope: LinkScope = { ...(client ? { client } : {}), ...(direction ? { direction } : {}) };
      switch (fault) {
        case "drop":
          n.setDrop(num(params.p, 0.3), scope);
          break;
        case "duplicate":
          n.setDuplicate(num(params.p, 0.5), scope);
          break;
        case "reorder":
          n.setReorder(num(params.p, 0.5), num(params.maxExtraMs, 500), scope);
          break;
        case "delay":
          n.setLatency((params.dist as LatencyDist | undefined) ?? { kind: "uniform", minMs: num(params.minMs, 20), maxMs: num(params.maxMs, 200) }, scope);
          break;
        case "partition":
          if (!client) throw new HarnessError("BAD_FAULT", "partition needs params.agents (the agents cut off this relay)");
          n.partition(client);
          break;
        case "crash":
          n.crash();
          return;
        case "restart":
          n.restart({ keepStore: params.keepStore !== false });
          return;
        case "early-eose":
          n.setEarlyEose({ ...(params.after !== undefined ? { after: num(params.after, 0) } : {}), ...(params.fraction !== undefined ? { fraction: num(params.fraction, 0.5) } : {}), withholdRest: params.withholdRest === true }, client ? { client } : {});
          break;
        case "slow-eose":
          n.setSlowEose(num(params.delayMs, 2000), client ? { client } : {});
          break;
        case "retention":
          n.setRetention(params.maxEvents === undefined ? undefined : num(params.maxEvents, 0));
          return;
        case "queue-limit":
          n.setQueueLimit(params.perSubscription === undefined ? undefined : num(params.perSubscription, 0), client ? { client } : {});
          break;
        case "refuse-publish":
          n.refusePublish({ p: num(params.p, 1), ...(Array.isArray(params.kinds) ? { kinds: params.kinds.map(Number) } : {}) }, client ? { client } : {});
          break;
        case "no-answer":
          n.neverAnswer({ p: num(params.p, 1), ...(Array.isArray(params.kinds) ? { kinds: params.kinds.map(Number) } : {}), store: params.store !== false }, client ? { client } : {});
          break;
        case "heal":
          if (client) n.heal(client);
          else {
            n.clearAll();
            if (!this.relay.isUp) n.restart({ keepStore: true });
          }
          break;
      }
    }
  }

  async close(): Promise<void> {
    for (const c of this.conns) await c.close();
  }
}

class WsBackend implements RelayBackendHandle {
  readonly backend = "ws";
  private readonly conns: RelayConnection[] = [];
  constructor(
    readonly name: string,
    readonly url: string,
    private readonly spec: RelaySpec,
  ) {}
  capabilities(): string[] {
    return [];
  }
  connect(): RelayConnection {
    const c = openRelay(this.url, { reconnect: RECONNECT, publishTimeoutMs: num(this.spec.options?.publishTimeoutMs, 5000) });
    this.conns.push(c);
    return c;
  }
  async close(): Promise<void> {
    for (const c of this.conns) await c.close();
  }
}

export const createRelayBackend: RelayBackendFactory = async (spec, env) => {
  const backend = spec.backend ?? "sim";
  if (backend === "ws") {
    if (!spec.url) throw new HarnessError("RELAY_NO_URL", `relay ${spec.name}: backend "ws" needs a url`);
    return new WsBackend(spec.name, spec.url, spec);
  }
  const net = networkFor(env);
  const o = spec.options ?? {};
  const relay = net.addRelay(spec.name, {
    ...(o.refuseProtected === true ? { refuseProtected: true } : {}),
    ...(typeof o.maxStoredEvents === "number" ? { maxStoredEvents: o.maxStoredEvents } : {}),
    ...(o.verifySignatures === false ? { verifySignatures: false } : {}),
    ...(typeof o.limits === "object" && o.limits !== null ? { limits: o.limits as Record<string, number> } : {}),
  });
  const handle = new SimBackend(spec.name, relay, spec);
  // A little seeded latency by default, so delivery latency means something; `latency: false` turns it off.
  if (o.latency !== false) relay.nemesis.setLatency((o.latency as LatencyDist | undefined) ?? DEFAULT_LATENCY);
  if (typeof o.queueLimit === "number") relay.nemesis.setQueueLimit(o.queueLimit);
  return handle;
};
