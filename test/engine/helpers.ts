import { sha256 } from "@noble/hashes/sha2.js";
import { expect } from "vitest";
import type { MarmotEngine, NostrEvent, PendingCommit, ProcessOutcome } from "../../src/engine/api.ts";
import { createEngine } from "../../src/engine/engine.ts";
import type { EngineOptions } from "../../src/engine/api.ts";
import { createRng } from "../../src/sim/random.ts";

export const RELAYS = ["wss://relay.example.test"];
export const T0 = 1_767_225_600; // 2026-01-01

export type TestEngine = Awaited<ReturnType<typeof createEngine>>;

/** Deterministic secret key for a name. */
export function secretFor(name: string): Uint8Array {
  return sha256(new TextEncoder().encode(`engine-test/${name}`));
}

export async function makeEngine(name: string, extra: Partial<EngineOptions> = {}): Promise<TestEngine> {
  const rng = createRng(`engine-test/${name}`);
  return createEngine({ secretKey: secretFor(name), randomBytes: (n) => rng.bytes(n), ...extra });
}

/** Deliver `events` to every engine in `to`, returning outcomes per engine. */
export async function deliver(to: MarmotEngine[], events: NostrEvent[], now: number): Promise<ProcessOutcome[][]> {
  const out: ProcessOutcome[][] = [];
  for (const e of to) {
    const all: ProcessOutcome[] = [];
    for (const ev of events) all.push(...(await e.processEvent(ev, now)));
    out.push(all);
  }
  return out;
}

/** Commit, confirm, deliver the commit to `others`; returns the confirmation. */
export async function commitAndDeliver(committer: MarmotEngine, pending: PendingCommit, others: MarmotEngine[], now: number) {
  const conf = await committer.confirmCommit(pending.id);
  const outs = await deliver(others, [pending.event], now);
  for (const o of outs) expect(o.map((x) => x.kind), show(o)).toContain("commit");
  return conf;
}

/** Build a group of `names.length` engines, the first being the creator/admin. */
export async function buildGroup(names: string[], opts: Partial<EngineOptions> = {}) {
  const engines = await Promise.all(names.map((n) => makeEngine(n, opts)));
  const [admin, ...rest] = engines as [TestEngine, ...TestEngine[]];
  const g = await admin.createGroup({ name: "test group", relays: RELAYS, now: T0 });
  if (rest.length > 0) {
    const kps = await Promise.all(rest.map((e) => e.createKeyPackage({ relays: RELAYS, now: T0 })));
    const pending = await admin.inviteMembers(g.groupId, kps, T0 + 1);
    const conf = await admin.confirmCommit(pending.id);
    for (let i = 0; i < rest.length; i++) {
      const e = rest[i] as TestEngine;
      const wrap = conf.welcomes.find((w) => w.tags.some((t) => t[0] === "p" && t[1] === e.pubkey));
      expect(wrap).toBeDefined();
      const outs = await e.processEvent(wrap as NostrEvent, T0 + 2);
      expect(outs[0]?.kind, show(outs)).toBe("welcome");
    }
  }
  return { engines, admin, rest, groupId: g.groupId };
}

export function show(o: unknown): string {
  return JSON.stringify(o, (_k, v) => (typeof v === "bigint" ? v.toString() : v instanceof Uint8Array ? `<${v.length} bytes>` : v));
}

export function kinds(o: ProcessOutcome[]): string[] {
  return o.map((x) => x.kind);
}

import { clientStateDecoder, clientStateEncoder, decode, encode, mlsMessageEncoder, type ClientState, type MlsFramedMessage } from "ts-mls";
import { MemoryStorage } from "../../src/engine/storage-memory.ts";
import { buildGroupEvent, encryptContentR1 } from "../../src/engine/mip03-group-events.ts";
import { hexToBytes } from "@noble/hashes/utils.js";

/** Reads an engine's current ts-mls state for a group from its storage (to forge messages as a rogue client would). */
export async function storedState(storage: MemoryStorage, groupId: string): Promise<ClientState> {
  const raw = await storage.get(`group/${groupId}/state`);
  if (!raw) throw new Error("no stored state");
  const s = decode(clientStateDecoder, raw);
  if (!s) throw new Error("stored state does not decode");
  // a private copy
  return decode(clientStateDecoder, encode(clientStateEncoder, s)) as ClientState;
}

/** Wrap an MLS message as a valid R1 445 for the group, with the engine-visible group-event key. */
export async function forge445(engine: MarmotEngine, groupId: string, msg: MlsFramedMessage, now: number, seed: number): Promise<NostrEvent> {
  const ins = await engine.inspect(groupId);
  const key = ins.epochKeys.find((k) => k.epoch === ins.epoch)!.groupEventKey;
  const rng = createRng(`forge/${seed}`);
  const content = encryptContentR1(key, encode(mlsMessageEncoder, msg), rng.bytes(12));
  return buildGroupEvent({ content, nostrGroupId: hexToBytes(ins.nostrGroupId), ephemeralSecretKey: rng.bytes(32), now, profile: "R1" });
}
