/**
 * The runner's relay backends: the embedded simulated relay (one SimNetwork per run, sharing the
 * run's VirtualScheduler, faults through its nemesis, every fault recorded in the history), the
 * same relay served over WebSocket on 127.0.0.1 for runs with out-of-process agents (wall clock,
 * faults through the server's nemesis), and any other relay over WebSocket (no faults).
 */
import type { History } from "../history.ts";
import { openRelay } from "../relays/open.ts";
import type { RelayConnection } from "../relays/types.ts";
import type { LatencyDist, LinkScope } from "../simulated-relay/faults.ts";
import { SimNetwork } from "../simulated-relay/network.ts";
import type { SimulatedRelay } from "../simulated-relay/simulated-relay.ts";
import { startRelayServer, type RelayServer, type RelayServerOptions } from "../simulated-relay/ws-server.ts";
import { CLIENT_LABEL_HEADER } from "../relays/websocket.ts";
import { HarnessError } from "../errors.ts";
import type { BackendEnv, RelayBackendFactory, RelayBackendHandle } from "./backends.ts";
import type { FaultKind, RelaySpec, Scenario } from "./types.ts";

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

/** Apply one scenario fault step to a simulated relay's nemesis (in memory or behind the WebSocket server). */
function applyFault(relay: SimulatedRelay, fault: FaultKind, params: Record<string, unknown>): void {
  const n = relay.nemesis;
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
          if (!relay.isUp) n.restart({ keepStore: true });
        }
        break;
    }
  }
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
    applyFault(this.relay, fault, params);
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

/** The scenario relay's options that the relay itself honours (same mapping in memory and over WebSocket). */
function relayOptions(spec: RelaySpec): Partial<RelayServerOptions> {
  const o = spec.options ?? {};
  return {
    ...(o.refuseProtected === true ? { refuseProtected: true } : {}),
    ...(typeof o.maxStoredEvents === "number" ? { maxStoredEvents: o.maxStoredEvents } : {}),
    ...(o.verifySignatures === false ? { verifySignatures: false } : {}),
    ...(typeof o.limits === "object" && o.limits !== null ? { limits: o.limits as Record<string, number> } : {}),
  };
}

/**
 * The harness's own relay behind its WebSocket server, in this process: agents in process and
 * out of process reach it over WebSocket, each connection labelled with its agent's name
 * (CLIENT_LABEL_HEADER), and the runner injects faults through the server's nemesis. Faults are
 * recorded in the run's history as in simulation.
 */
class LocalWsBackend implements RelayBackendHandle {
  readonly backend = "ws-local";
  readonly url: string;
  private readonly conns: RelayConnection[] = [];
  constructor(
    readonly name: string,
    private readonly server: RelayServer,
    private readonly spec: RelaySpec,
  ) {
    this.url = server.url;
  }
  capabilities(): string[] {
    return ["faults", "retention", "reject-protected", "delivery-queue", "early-eose", "crash"];
  }
  connect(agentName: string): RelayConnection {
    const c = openRelay(this.url, { reconnect: RECONNECT, publishTimeoutMs: num(this.spec.options?.publishTimeoutMs, 5000), headers: { [CLIENT_LABEL_HEADER]: agentName } });
    this.conns.push(c);
    return c;
  }
  fault(fault: FaultKind, params: Record<string, unknown>): void {
    applyFault(this.server.relay, fault, params);
  }
  async close(): Promise<void> {
    for (const c of this.conns) await c.close();
  }
}

export interface LocalRelays {
  /** One URL per scenario relay, in the scenario's order (pass as RunOptions.relayUrls). */
  urls: string[];
  /** Pass as RunOptions.relayFactory: these URLs get fault-capable backends, any other URL a plain one. */
  relayFactory: RelayBackendFactory;
  close(): Promise<void>;
}

/**
 * Start the scenario's relays as the harness relay behind WebSocket on 127.0.0.1, for a run
 * with out-of-process agents: same relay options as in simulation, faults through the nemesis,
 * connections named by agent. The caller closes them after the run.
 */
export async function startLocalRelays(scenario: Scenario, seed = scenario.seed): Promise<LocalRelays> {
  const servers = await Promise.all(
    scenario.relays.map((spec) => startRelayServer({ ...relayOptions(spec), name: spec.name, seed: `${seed}/relay:${spec.name}`, labelClients: true, verifyWorkers: 0 })),
  );
  const byUrl = new Map(servers.map((s) => [s.url, s]));
  const hooked = new WeakSet<History>();
  const relayFactory: RelayBackendFactory = async (spec, env) => {
    const server = spec.url ? byUrl.get(spec.url) : undefined;
    if (!server) return createRelayBackend(spec, env);
    if (!hooked.has(env.history)) {
      hooked.add(env.history);
      const history = env.history;
      for (const s of servers) {
        s.relay.faultLog.keepHits = true;
        s.relay.faultLog.onRecord((r) => {
          history.record("nemesis", "info", "fault", { relay: r.relay, fault: r.fault, ...(r.connection ? { connection: r.connection } : {}), params: r.params });
        });
      }
    }
    if (typeof spec.options?.queueLimit === "number") server.nemesis.setQueueLimit(spec.options.queueLimit);
    return new LocalWsBackend(spec.name, server, spec);
  };
  return { urls: servers.map((s) => s.url), relayFactory, close: async () => void (await Promise.all(servers.map((s) => s.close()))) };
}

export const createRelayBackend: RelayBackendFactory = async (spec, env) => {
  const backend = spec.backend ?? "sim";
  if (backend === "ws") {
    if (!spec.url) throw new HarnessError("RELAY_NO_URL", `relay ${spec.name}: backend "ws" needs a url`);
    return new WsBackend(spec.name, spec.url, spec);
  }
  const net = networkFor(env);
  const o = spec.options ?? {};
  const relay = net.addRelay(spec.name, relayOptions(spec));
  const handle = new SimBackend(spec.name, relay, spec);
  // A little seeded latency by default, so delivery latency means something; `latency: false` turns it off.
  if (o.latency !== false) relay.nemesis.setLatency((o.latency as LatencyDist | undefined) ?? DEFAULT_LATENCY);
  if (typeof o.queueLimit === "number") relay.nemesis.setQueueLimit(o.queueLimit);
  return handle;
};
