import { describe, it, expect, beforeAll, afterAll } from "vitest";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { PeerCommandError, PeerProcess } from "../../src/peers/process.ts";
import { MDK_NODE_PROTOCOL_VERSION, type PeerObservation, type PeerResponseBody } from "../../src/peers/protocol.ts";
import { startLoopbackRelay, type LoopbackRelay } from "./loopback-relay.ts";

const BIN = fileURLToPath(new URL("../../bin/marmot-harness.js", import.meta.url));

let relay: LoopbackRelay;
const peers: PeerProcess[] = [];
let root: string;

beforeAll(async () => {
  relay = await startLoopbackRelay();
  root = await mkdtemp(join(tmpdir(), "peer-test-"));
});
afterAll(async () => {
  await Promise.all(peers.splice(0).map((p) => p.close()));
  await relay?.close();
  await rm(root, { recursive: true, force: true });
});

async function spawnPeer(name: string, protocol?: typeof MDK_NODE_PROTOCOL_VERSION): Promise<PeerProcess> {
  const p = await PeerProcess.spawn({ name, command: process.execPath, args: [BIN, "peer"], timeoutMs: 60_000, ...(protocol ? { protocol } : {}) });
  peers.push(p);
  return p;
}

function obs(b: PeerResponseBody): PeerObservation {
  if (b.type !== "observation") throw new Error(`expected an observation, got ${b.type}`);
  return b.observation;
}

/** Process what arrived until `done` holds (relays deliver asynchronously). */
async function until(p: PeerProcess, done: (o: PeerObservation) => boolean, group?: string): Promise<PeerObservation> {
  for (let i = 0; i < 150; i++) {
    await p.request({ type: "catch_up", action_id: `c${i}`, full_history: false });
    const o = obs(await p.request({ type: "observe", action_id: `o${i}`, ...(group ? { group } : {}) }));
    if (done(o)) return o;
    await new Promise((r) => setTimeout(r, 40));
  }
  throw new Error(`${p.name}: condition not reached`);
}

// The tests are independent (own identities, own folders) and mostly wait on the wall clock.
describe.concurrent("our engine as a peer (separate processes, WebSocket relay on 127.0.0.1)", () => {
  it("creates a group, invites, exchanges messages and converges across three processes", async () => {
    const [alice, bob, carol] = await Promise.all([spawnPeer("alice"), spawnPeer("bob"), spawnPeer("carol")]);
    const init = async (p: PeerProcess, name: string): Promise<string> => {
      // Epochs are counted step by step below, so joiners skip their post-join self-update here
      // (the matrix test covers the default, where they do it).
      const b = await p.request({ type: "initialize", participant: name, relay_urls: [relay.url], seed: `seed-${name}`, self_update_after_join: false });
      if (b.type !== "initialized") throw new Error("not initialized");
      expect(b.implementation).toBe("marmot-harness-engine");
      expect(b.profile).toBe("R1");
      expect(b.capabilities).not.toContain("media");
      // The peer forwards what its agent recorded: identity, KeyPackage publication.
      expect(b.records?.some((r) => r.op === "keypackage")).toBe(true);
      return b.account_id;
    };
    const [a, b, c] = await Promise.all([init(alice, "alice"), init(bob, "bob"), init(carol, "carol")]);
    for (const p of [alice, bob, carol]) await p.request({ type: "configure_peers", accounts_by_participant: { alice: a, bob: b, carol: c } });

    const created = await alice.request({ type: "create_group", action_id: "s1", group: "g", name: "Peers", member_accounts: [b, c], initial_admin_accounts: [a] });
    if (created.type !== "ack" || !created.group_id_hex) throw new Error("no group id");
    const gid = created.group_id_hex;
    expect(created.published).toBe(1);

    const bobView = await until(bob, (o) => (o.groups ?? []).some((g) => g.group_id_hex === gid));
    const bg = bobView.groups?.find((g) => g.group_id_hex === gid);
    expect(bg?.epoch).toBe(1);
    expect(bg?.members).toEqual([a, b, c].sort());

    await alice.request({ type: "send_application", action_id: "s2", payload: "hello from alice", group: gid });
    const bobSees = await until(bob, (o) => (o.messages ?? []).some((m) => m.content === "hello from alice"), gid);
    expect(bobSees.messages?.find((m) => m.content === "hello from alice")?.sender).toBe(a);
    // MDK-style projection, with participant labels and a state commitment.
    expect(bobSees.protocol?.member_identities).toEqual(["alice", "bob", "carol"]);
    expect(bobSees.application?.visible_plaintexts).toContain("hello from alice");

    await until(carol, (o) => (o.groups ?? []).some((g) => g.group_id_hex === gid));
    await carol.request({ type: "self_update", action_id: "s3", group: gid });
    const [ao, bo, co] = await Promise.all([
      until(alice, (o) => o.groups?.find((g) => g.group_id_hex === gid)?.epoch === 2, gid),
      until(bob, (o) => o.groups?.find((g) => g.group_id_hex === gid)?.epoch === 2, gid),
      until(carol, (o) => o.groups?.find((g) => g.group_id_hex === gid)?.epoch === 2, gid),
    ]);
    // Same epoch, same exporter commitment, same public state commitment everywhere.
    const commitments = [ao, bo, co].map((o) => o.groups?.find((g) => g.group_id_hex === gid)?.epoch_commitment);
    expect(commitments[0]).toMatch(/^[0-9a-f]{64}$/);
    expect(new Set(commitments).size).toBe(1);
    expect(new Set([ao, bo, co].map((o) => o.protocol?.state_commitment_sha256)).size).toBe(1);

    // A refused action comes back as a typed error; the session goes on.
    const e = await bob.request({ type: "send_application", action_id: "s4", payload: "x", group: "ff".repeat(32) }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(PeerCommandError);
    expect((e as PeerCommandError).peerCode).toBe("AGENT_NO_GROUP");
    // Initialized without a Blossom server: no media capability, and an attachment is refused by name.
    const noMedia = await bob
      .request({ type: "send_application", action_id: "s5", payload: "x", group: gid, media: { filename: "f.bin", mime_type: "application/octet-stream", bytes: 10 } })
      .catch((x: unknown) => x);
    expect(noMedia).toBeInstanceOf(PeerCommandError);
    expect((noMedia as PeerCommandError).peerCode).toBe("media_unavailable");
    for (const cmd of [
      { type: "set_group_image" as const, action_id: "s6", group: gid, bytes: 100, version: 2 as const },
      { type: "probe_media" as const, action_id: "s7", group: gid, attachments: [] },
    ]) {
      const refused = await bob.request(cmd).catch((x: unknown) => x);
      expect((refused as PeerCommandError).peerCode, cmd.type).toBe("media_unavailable");
    }
    expect((await bob.request({ type: "ping", action_id: "p" })).type).toBe("ack");

    for (const p of [alice, bob, carol]) expect((await p.close()).code).toBe(0);
  });

  it("answers MDK's marmot-convergence-node-v1 commands", async () => {
    const [x, y] = await Promise.all([spawnPeer("x", MDK_NODE_PROTOCOL_VERSION), spawnPeer("y", MDK_NODE_PROTOCOL_VERSION)]);
    const ix = await x.request({ type: "initialize", participant: "x", root: join(root, "x"), relay_urls: [relay.url] });
    const iy = await y.request({ type: "initialize", participant: "y", root: join(root, "y"), relay_urls: [relay.url] });
    if (ix.type !== "initialized" || iy.type !== "initialized") throw new Error("not initialized");
    // No extension fields on the MDK protocol.
    expect(Object.keys(ix).sort()).toEqual(["account_id", "type"]);
    const accounts = { x: ix.account_id, y: iy.account_id };
    await x.request({ type: "configure_peers", accounts_by_participant: accounts });
    await y.request({ type: "configure_peers", accounts_by_participant: accounts });
    const created = await x.request({ type: "create_group", action_id: "step-1", group: "main", name: "M", member_accounts: [iy.account_id], initial_admin_accounts: [ix.account_id] });
    if (created.type !== "ack" || !created.group_id_hex) throw new Error("no group");
    await y.request({ type: "select_group", group: "main", group_id_hex: created.group_id_hex });
    await x.request({ type: "send_application", action_id: "step-2", payload: "mdk says hi" });
    let seen: PeerObservation | undefined;
    for (let i = 0; i < 150 && !seen?.application?.visible_plaintexts.includes("mdk says hi"); i++) {
      await y.request({ type: "catch_up", action_id: `c${i}`, full_history: false });
      seen = await y
        .request({ type: "observe", action_id: `o${i}` })
        .then(obs)
        .catch(() => undefined);
      await new Promise((r) => setTimeout(r, 40));
    }
    expect(seen?.application?.visible_plaintexts).toEqual(["mdk says hi"]);
    expect(seen?.protocol).toMatchObject({ epoch: 1, member_identities: ["x", "y"], admin_identities: ["x"], member_count: 2 });
    expect(seen && "groups" in seen).toBe(false);
    const xo = obs(await x.request({ type: "observe", action_id: "final" }));
    expect(xo.protocol?.state_commitment_sha256).toBe(seen?.protocol?.state_commitment_sha256);
  });
});
