/**
 * A set of simulated relays sharing one virtual scheduler, one seed, one fault log and one
 * delivery log: what a simulated run's history includes.
 */
import { VirtualScheduler, type Scheduler } from "../sim/clock.ts";
import { createRng, type Rng } from "../sim/random.ts";
import { loadSignatureVerifier, type SignatureVerifier } from "../nostr/verify.ts";
import { SignatureCache } from "./core.ts";
import { FaultLog } from "./faults.ts";
import { RelayError } from "./messages.ts";
import { SimulatedRelay, type DeliveryRecord, type SimulatedRelayOptions } from "./simulated-relay.ts";

export interface SimNetworkOptions {
  seed: string | number;
  scheduler?: Scheduler;
  /** Record every delivered frame in `deliveries` (default true). */
  recordDeliveries?: boolean;
}

export class SimNetwork {
  readonly scheduler: Scheduler;
  readonly rng: Rng;
  readonly faultLog = new FaultLog();
  readonly deliveries: DeliveryRecord[] = [];
  /** Signatures verified by one relay are not verified again by another. */
  readonly signatureCache = new SignatureCache();
  private readonly record: boolean;
  private readonly byName = new Map<string, SimulatedRelay>();
  private readonly byUrl = new Map<string, SimulatedRelay>();

  constructor(opts: SimNetworkOptions) {
    this.scheduler = opts.scheduler ?? new VirtualScheduler();
    this.rng = createRng(opts.seed);
    this.record = opts.recordDeliveries ?? true;
  }

  /** Resolves when the signature verifier is loaded (WASM libsecp256k1, or the pure-JS fallback). */
  ready(): Promise<SignatureVerifier> {
    return loadSignatureVerifier();
  }

  addRelay(name: string, opts: Partial<Omit<SimulatedRelayOptions, "name" | "scheduler" | "faultLog">> = {}): SimulatedRelay {
    if (this.byName.has(name)) throw new RelayError("DUPLICATE_RELAY", `a relay named ${name} already exists`, { name });
    const relay = new SimulatedRelay({
      ...opts,
      name,
      scheduler: this.scheduler,
      rng: opts.rng ?? this.rng.fork(`relay:${name}`),
      faultLog: this.faultLog,
      signatureCache: opts.signatureCache ?? this.signatureCache,
      recordDeliveries: this.record ? this.deliveries : false,
    });
    if (this.byUrl.has(relay.url)) throw new RelayError("DUPLICATE_RELAY", `a relay with URL ${relay.url} already exists`, { url: relay.url });
    this.byName.set(name, relay);
    this.byUrl.set(relay.url, relay);
    return relay;
  }

  relay(nameOrUrl: string): SimulatedRelay {
    const r = this.byName.get(nameOrUrl) ?? this.byUrl.get(nameOrUrl) ?? this.byUrl.get(nameOrUrl.replace(/\/$/, ""));
    if (!r) throw new RelayError("UNKNOWN_RELAY", `no simulated relay named ${nameOrUrl}`, { relay: nameOrUrl, known: [...this.byName.keys()] });
    return r;
  }

  has(nameOrUrl: string): boolean {
    return this.byName.has(nameOrUrl) || this.byUrl.has(nameOrUrl) || this.byUrl.has(nameOrUrl.replace(/\/$/, ""));
  }

  get relays(): SimulatedRelay[] {
    return [...this.byName.values()];
  }
}
