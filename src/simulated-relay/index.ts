/**
 * The simulated relay: an in-memory NIP-01 relay core, deterministic delivery on a virtual
 * scheduler, and a nemesis for fault injection. It knows nothing of MLS.
 *
 * Usage (simulation):
 *
 * ```ts
 * import { SimNetwork } from "../simulated-relay/index.ts";
 * import { openRelay } from "../relays/open.ts";
 *
 * const net = new SimNetwork({ seed: "run-42" });           // VirtualScheduler + seeded Rng
 * const relayA = net.addRelay("relay-a", { refuseProtected: true });   // url wss://relay-a.sim.invalid
 * const alice = openRelay({ sim: relayA }, { client: "alice" });       // MemoryRelayConnection
 * await alice.connect();
 * const sub = alice.subscribe([{ kinds: [445], "#h": [groupIdHex] }], {
 *   onEvent: (e) => seen.push(e),
 *   onEose: () => {},
 * });
 * const ackPromise = alice.publish(signedEvent);             // resolves on OK (or "timeout")
 * relayA.nemesis.setLatency({ kind: "uniform", minMs: 20, maxMs: 200 });
 * relayA.nemesis.partition("bob");                           // every fault lands in net.faultLog
 * await net.scheduler.runUntilIdle();                         // deliver everything due
 * const ack = await ackPromise;
 * net.faultLog.records; net.deliveries;                      // for the run's history
 * ```
 *
 * Frames travel through the scheduler; nothing happens until it runs. A publish schedules its
 * timeout on the scheduler too, so `runUntilIdle()` moves virtual time up to the last pending
 * timeout (use `advance(ms)` to step instead).
 *
 * Relay policies are options of `addRelay`: `refuseProtected` (NIP-70), `authRequiredForKinds`
 * (NIP-42, e.g. [1059] as strfry), `authRequiredToPublish`, `maxStoredEvents`, `limits`,
 * `verifySignatures`. The same relay over WebSocket: `startRelayServer()` in `./ws-server.ts`
 * (or `marmot-harness relay`).
 */
export * from "./messages.ts";
export * from "./filter.ts";
export * from "./store.ts";
export * from "./core.ts";
export * from "./faults.ts";
export * from "./simulated-relay.ts";
export * from "./network.ts";
export * from "./commands.ts";
