/**
 * Produce the engine fixtures for the compliance checker: a capture (JSONL) and a white-box keyring
 * for each profile, from a small scripted conversation between three engines (alice, bob, carol).
 * Randomness comes from a seeded Rng and time is virtual, so runs are reproducible as long as the
 * engine's own behaviour does not change.
 *
 *   npx tsx scripts/make-fixtures.ts [outDir]     (default: fixtures)
 *
 * Writes engine-r1.jsonl / engine-r1.keyring.json and engine-r0.jsonl / engine-r0.keyring.json.
 * Also usable as a library: `buildEngineFixture(profile, seed)` (the checker's tests use it).
 */
import { mkdir, writeFile } from "node:fs/promises";
import * as path from "node:path";
import { getPublicKey } from "nostr-tools/pure";
import type { CaptureRecord } from "../src/capture.ts";
import { serializeCapture } from "../src/capture.ts";
import { createEngine } from "../src/engine/engine.ts";
import type { MarmotEngine, NostrEvent, ProcessOutcome } from "../src/engine/api.ts";
import { encodeGroupData } from "../src/engine/mip01-group-data.ts";
import { encryptMedia } from "../src/engine/mip04-media.ts";
import type { ProtocolProfile } from "../src/profile.ts";
import { createRng } from "../src/sim/random.ts";
import type { Keyring, Observation } from "../src/checkers/compliance/keyring.ts";

const RELAY = "ws://127.0.0.1:7777";
const hex = (b: Uint8Array): string => Buffer.from(b).toString("hex");

export interface EngineFixture {
  records: CaptureRecord[];
  keyring: Keyring;
  /** Account pubkeys by agent name. */
  pubkeys: Record<string, string>;
  groupId: string;
  nostrGroupId: string;
}

export async function buildEngineFixture(profile: ProtocolProfile, seed = "checker-fixture"): Promise<EngineFixture> {
  const rng = createRng(`${seed}:${profile}`);
  const names = ["alice", "bob", "carol"] as const;
  type Name = (typeof names)[number];
  const engines = {} as Record<Name, MarmotEngine>;
  const secrets = {} as Record<Name, string>;
  for (const n of names) {
    const r = rng.fork(n);
    const sk = r.bytes(32);
    secrets[n] = hex(sk);
    engines[n] = await createEngine({ secretKey: sk, profile, randomBytes: (k) => r.bytes(k), clientName: "marmot-harness-fixture" });
  }
  const pubkeys = Object.fromEntries(names.map((n) => [n, getPublicKey(Buffer.from(secrets[n], "hex"))])) as Record<Name, string>;
  const byPubkey = new Map(names.map((n) => [pubkeys[n], n]));

  let nowSec = profile === "R0" ? Date.UTC(2026, 0, 12) / 1000 : Date.UTC(2026, 6, 1) / 1000;
  let tMs = nowSec * 1000;
  const tick = (): number => {
    nowSec += 1;
    tMs = nowSec * 1000;
    return nowSec;
  };
  const records: CaptureRecord[] = [];
  const observations: Observation[] = [];
  const keys = new Map<string, { nostrGroupId: string; epoch: number; key: string; mediaExporter?: string }>();
  const members = new Set<Name>();
  let groupId = "";
  let nostrGroupId = "";

  const snapshotKeys = async (): Promise<void> => {
    for (const n of names) {
      const g = engines[n].group(groupId);
      if (!g || !g.active) continue;
      const ins = await engines[n].inspect(groupId);
      const k = profile === "R0" ? await ins.exporter("nostr", new TextEncoder().encode("nostr"), 32) : (ins.epochKeys[ins.epochKeys.length - 1]?.groupEventKey as Uint8Array);
      const id = `${ins.nostrGroupId}:${ins.epoch}`;
      // R0's media exporter is the legacy exporter (the `key`); only R1/R2 keyrings carry mediaExporter.
      const media = profile === "R0" ? undefined : ins.epochKeys[ins.epochKeys.length - 1]?.mediaExporter;
      if (!keys.has(id)) keys.set(id, { nostrGroupId: ins.nostrGroupId, epoch: Number(ins.epoch), key: hex(k), ...(media ? { mediaExporter: hex(media) } : {}) });
      observations.push({
        kind: "group-state",
        nostrGroupId: ins.nostrGroupId,
        epoch: Number(ins.epoch),
        mlsGroupId: groupId,
        groupData: hex(encodeGroupData(ins.groupData)),
        requiredCapabilities: { extensions: ins.requiredCapabilities.extensions, proposals: ins.requiredCapabilities.proposals },
        admins: ins.admins,
        epochCommitment: ins.epochCommitment,
        conformanceExporter: hex(await ins.exporter("marmot", new TextEncoder().encode("convergence-conformance-v1"), 32)),
        agent: n,
      });
    }
  };

  const deliver = async (ev: NostrEvent, from: Name): Promise<void> => {
    const targets: Name[] = [];
    if (ev.kind === 445) for (const m of members) if (m !== from) targets.push(m);
    if (ev.kind === 1059) {
      const p = ev.tags.find((t) => t[0] === "p")?.[1];
      const n = p ? byPubkey.get(p) : undefined;
      if (n) targets.push(n);
    }
    for (const n of targets) {
      const before = engines[n].group(groupId);
      const beforeData = before ? hex(encodeGroupData(before.groupData)) : undefined;
      const outcomes: ProcessOutcome[] = await engines[n].processEvent(ev, nowSec);
      for (const o of outcomes) await observe(n, o, beforeData, before?.admins);
    }
  };

  const welcomeCommit = new Map<string, string>();

  const observe = async (agent: Name, o: ProcessOutcome, beforeData: string | undefined, adminsBefore: string[] | undefined): Promise<void> => {
    if (o.kind === "application") {
      observations.push({ kind: "application", agent, eventId: o.eventId, nostrGroupId, epoch: Number(o.epoch), sender: o.sender, rumor: o.rumor });
    } else if (o.kind === "commit") {
      const after = engines[agent].group(groupId);
      const proposals = [...o.added.map((t) => ({ type: "add" as const, target: t })), ...o.removed.map((t) => ({ type: "remove" as const, target: t }))];
      const obs: Observation = { kind: "commit", agent, eventId: o.eventId, committer: o.committer, proposals, decision: o.rolledBack ? "rolled-back" : "applied", nostrGroupId, epoch: Number(o.epoch) };
      if (adminsBefore) obs.committerIsAdmin = adminsBefore.includes(o.committer);
      if (beforeData !== undefined) obs.groupDataBefore = beforeData;
      if (after) obs.groupDataAfter = hex(encodeGroupData(after.groupData));
      observations.push(obs);
    } else if (o.kind === "welcome") {
      const w: Observation = { kind: "welcome", eventId: o.eventId, recipient: pubkeys[agent], joined: true, nostrGroupId };
      const c = welcomeCommit.get(o.eventId);
      if (c) w.commitEventId = c;
      observations.push(w);
      members.add(agent);
      for (const f of o.followUps) await publish(f, agent);
    } else if (o.kind === "proposal") {
      observations.push({ kind: "proposal", agent, eventId: o.eventId, sender: o.sender, proposal: o.proposal === "self_remove" ? "self_remove" : o.proposal });
    } else if (o.kind === "rejected") {
      observations.push({ kind: "rejected", agent, eventId: o.eventId, code: o.error.code, message: o.error.message });
    }
  };

  const publish = async (ev: NostrEvent, from: Name): Promise<void> => {
    tick();
    records.push({ event: ev, relay: RELAY, seenAt: tMs, source: from, acks: [{ relay: RELAY, ok: true, message: "", at: tMs + 5 }] });
    await deliver(ev, from);
  };

  const commit = async (from: Name, pending: { id: string; event: NostrEvent }): Promise<void> => {
    await publish(pending.event, from);
    const conf = await engines[from].confirmCommit(pending.id);
    for (const w of conf.welcomes) welcomeCommit.set(w.id, pending.event.id);
    for (const w of conf.welcomes) await publish(w, from);
    await snapshotKeys();
  };

  // 1. Relay lists and KeyPackages.
  const kpEvents = {} as Record<Name, NostrEvent>;
  for (const n of names) {
    if (profile !== "R2") await publish(engines[n].keyPackageRelayList([RELAY], tick()), n);
    kpEvents[n] = await engines[n].createKeyPackage({ relays: [RELAY], now: tick() });
    await publish(kpEvents[n], n);
  }
  // 2. alice creates the group and invites bob.
  const g = await engines.alice.createGroup({ name: "fixture group", description: "compliance checker fixture", relays: [RELAY], now: tick() });
  groupId = g.groupId;
  nostrGroupId = g.nostrGroupId;
  members.add("alice");
  await snapshotKeys();
  await commit("alice", await engines.alice.inviteMembers(groupId, [kpEvents.bob], tick()));
  // 3. Messages both ways.
  await publish(await engines.alice.sendMessage(groupId, { kind: 9, content: "hello bob" }, tick()), "alice");
  await commit("bob", await engines.bob.selfUpdate(groupId, tick()));
  await publish(await engines.bob.sendMessage(groupId, { kind: 9, content: "hi alice" }, tick()), "bob");
  // 3b. bob sends an encrypted picture (MIP-04): the blob would go to Blossom; the keyring keeps it
  // as a media observation so the checker can judge the file key, AAD and hashes. R1 only: the engine
  // derives its media exporter with the R1 label for every profile, which MIP04-MD-04 rejects for R0.
  if (profile !== "R0") {
    const ins = await engines.bob.inspect(groupId);
    const exporter = ins.epochKeys[ins.epochKeys.length - 1]?.mediaExporter as Uint8Array;
    const enc = encryptMedia({ exporterSecret: exporter, data: rng.fork("picture").bytes(64), mime: "image/png", filename: "fixture.png", randomBytes: (k) => rng.bytes(k) });
    const url = `https://blossom.example/${hex(enc.sha256Cipher)}.png`;
    const ev = await engines.bob.sendMessage(groupId, { kind: 9, content: "a picture", tags: [enc.imeta(url)] }, tick());
    await publish(ev, "bob");
    observations.push({ kind: "media", eventId: ev.id, url, blob: Buffer.from(enc.ciphertext).toString("base64"), agent: "alice" });
  }
  // 4. Invite carol; carol talks.
  await commit("alice", await engines.alice.inviteMembers(groupId, [kpEvents.carol], tick()));
  await commit("carol", await engines.carol.selfUpdate(groupId, tick()));
  await publish(await engines.carol.sendMessage(groupId, { kind: 9, content: "carol here", tags: [["t", "fixture"]] }, tick()), "carol");
  // 5. alice renames the group.
  await commit("alice", await engines.alice.updateGroupData(groupId, { name: "renamed fixture group" }, tick()));
  await publish(await engines.alice.sendMessage(groupId, { kind: 9, content: "new name" }, tick()), "alice");
  // 6. bob leaves (SelfRemove in R1; R0 has no SelfRemove: alice removes bob).
  if (profile === "R0") {
    await commit("alice", await engines.alice.removeMembers(groupId, [pubkeys.bob], tick()));
  } else {
    await publish(await engines.bob.leaveGroup(groupId, tick()), "bob");
    const pend = await engines.alice.commitPendingProposals(groupId, tick());
    if (pend) await commit("alice", pend);
  }
  members.delete("bob");
  await publish(await engines.carol.sendMessage(groupId, { kind: 9, content: "bye bob" }, tick()), "carol");
  await snapshotKeys();

  const keyring: Keyring = {
    groupEventKeys: [...keys.values()].sort((a, b) => a.epoch - b.epoch),
    recipientSecretKeys: names.map((n) => secrets[n]),
    observations,
  };
  return { records, keyring, pubkeys, groupId, nostrGroupId };
}

async function main(): Promise<void> {
  const out = process.argv[2] ?? "fixtures";
  await mkdir(out, { recursive: true });
  for (const profile of ["R1", "R0"] as const) {
    const f = await buildEngineFixture(profile);
    const base = path.join(out, `engine-${profile.toLowerCase()}`);
    await writeFile(`${base}.jsonl`, serializeCapture(f.records));
    await writeFile(`${base}.keyring.json`, JSON.stringify(f.keyring, (_k, v: unknown) => (typeof v === "bigint" ? v.toString() : v), 2) + "\n");
    process.stdout.write(`${base}.jsonl: ${f.records.length} events; keyring ${f.keyring.groupEventKeys.length} keys, ${f.keyring.observations.length} observations\n`);
  }
}

if (process.argv[1] !== undefined && import.meta.url === new URL(`file://${path.resolve(process.argv[1])}`).href) {
  main().catch((e: unknown) => {
    process.stderr.write(`${e instanceof Error ? e.stack ?? e.message : String(e)}\n`);
    process.exitCode = 1;
  });
}
