import { describe, it, expect, beforeAll, afterAll } from "vitest";
import { chmod, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PEER_MAIN } from "../../src/peers/adapters/engine-peer.ts";
import { MDK_NODE_ENV, mdkNodeAdapter } from "../../src/peers/adapters/mdk-node.ts";
import { marmotTsAdapter, slotId } from "../../src/peers/adapters/marmot-ts.ts";
import { openRelay } from "../../src/relays/open.ts";
import type { Event as NostrEvent } from "nostr-tools";
import { parseWnOutput, wnAdapter, wnCommandLine, wnHex } from "../../src/peers/adapters/wn.ts";
import { executableSkipReason, runCommand } from "../../src/peers/child-process.ts";
import type { PeerTransport } from "../../src/peers/peer-agent.ts";
import { PeerCommandError } from "../../src/peers/process.ts";
import type { PeerObservation, PeerResponseBody } from "../../src/peers/protocol.ts";
import { startLoopbackRelay, type LoopbackRelay } from "./loopback-relay.ts";

let relay: LoopbackRelay;
let work: string;
beforeAll(async () => {
  relay = await startLoopbackRelay();
  work = await mkdtemp(join(tmpdir(), "peer-adapters-"));
});
afterAll(async () => {
  await relay?.close();
  await rm(work, { recursive: true, force: true });
});

function obs(b: PeerResponseBody): PeerObservation {
  if (b.type !== "observation") throw new Error(`expected an observation, got ${b.type}`);
  return b.observation;
}

/** Two peers through one adapter: create a group, invite, send; the invitee sees the message. */
async function twoPeerSmoke(open: (name: string) => Promise<PeerTransport>): Promise<void> {
  const x = await open("x");
  const y = await open("y");
  try {
    const ix = await x.request({ type: "initialize", participant: "x", relay_urls: [relay.url] });
    const iy = await y.request({ type: "initialize", participant: "y", relay_urls: [relay.url] });
    if (ix.type !== "initialized" || iy.type !== "initialized") throw new Error("not initialized");
    await y.request({ type: "publish_key_package", action_id: "kp" });
    const created = await x.request({ type: "create_group", action_id: "c", group: "g", name: "Adapters", member_accounts: [iy.account_id], initial_admin_accounts: [] });
    if (created.type !== "ack" || !created.group_id_hex) throw new Error("no group id");
    const gid = created.group_id_hex;
    await x.request({ type: "send_application", action_id: "s", group: gid, payload: "through the adapter" });
    let seen: PeerObservation | undefined;
    for (let i = 0; i < 150; i++) {
      await y.request({ type: "catch_up", action_id: `c${i}`, full_history: false });
      seen = obs(await y.request({ type: "observe", action_id: `o${i}`, group: gid }).catch(() => ({ type: "observation", action_id: "", observation: undefined as never })));
      if (seen?.application?.visible_plaintexts.includes("through the adapter") || seen?.messages?.some((m) => m.content === "through the adapter")) break;
      await new Promise((r) => setTimeout(r, 40));
    }
    const plaintexts = [...(seen?.application?.visible_plaintexts ?? []), ...(seen?.messages ?? []).map((m) => m.content)];
    expect(plaintexts).toContain("through the adapter");
    const xo = obs(await x.request({ type: "observe", action_id: "final", group: gid }));
    const g = xo.groups?.find((v) => v.group_id_hex === gid);
    expect(g?.members.sort()).toEqual([ix.account_id, iy.account_id].sort());
  } finally {
    await x.close();
    await y.close();
  }
}

describe("MDK node adapter", () => {
  it("maps our commands onto marmot-convergence-node-v1 (against our own node speaking it)", async () => {
    // A stand-in for MDK's binary: our peer, which also answers MDK's protocol.
    const wrapper = join(work, "stand-in-node.sh");
    await writeFile(wrapper, `#!/bin/sh\nexec "${process.execPath}" "${PEER_MAIN}"\n`);
    await chmod(wrapper, 0o755);
    const env = { ...process.env, [MDK_NODE_ENV]: wrapper };
    expect(mdkNodeAdapter.skipReason(env)).toBeUndefined();
    await twoPeerSmoke((name) => mdkNodeAdapter.open({ name, relays: [relay.url], home: join(work, `mdk-${name}`), env }));
  });

  it("refuses what MDK's protocol cannot express, before sending it", async () => {
    const wrapper = join(work, "stand-in-node.sh");
    const t = await mdkNodeAdapter.open({ name: "z", relays: [relay.url], home: join(work, "mdk-z"), env: { ...process.env, [MDK_NODE_ENV]: wrapper } });
    try {
      const e = await t.request({ type: "probe", action_id: "p", events: [] }).catch((x: unknown) => x);
      expect(e).toBeInstanceOf(PeerCommandError);
      expect((e as PeerCommandError).peerCode).toBe("PEER_UNSUPPORTED");
    } finally {
      await t.close();
    }
  });

  const mdkSkip = mdkNodeAdapter.skipReason();
  it.skipIf(mdkSkip !== undefined)(`drives MDK's real cgka-conformance-node${mdkSkip ? ` (skipped: ${mdkSkip})` : ""}`, async () => {
    await twoPeerSmoke((name) => mdkNodeAdapter.open({ name, relays: [relay.url], home: join(work, `real-mdk-${name}`) }));
  });

  it("skips with a reason when the binary is not configured", () => {
    expect(mdkNodeAdapter.skipReason({})).toMatch(/MARMOT_HARNESS_MDK_NODE is not set/);
    expect(mdkNodeAdapter.skipReason({ [MDK_NODE_ENV]: "/nonexistent/node" })).toMatch(/not an executable file/);
  });
});

describe("White Noise adapter", () => {
  it("skips with a reason when wn is not configured", () => {
    expect(wnAdapter.skipReason({})).toMatch(/MARMOT_HARNESS_WN is not set/);
    expect(wnAdapter.skipReason({ MARMOT_HARNESS_WN: "/nonexistent/wn" })).toMatch(/not an executable file/);
  });

  it("reads the id shapes wn prints", () => {
    expect(wnHex("ABcd")).toBe("abcd");
    expect(wnHex([1, 255])).toBe("01ff");
    expect(wnHex({ value: { vec: [16, 32] } })).toBe("1020");
    expect(wnHex(42)).toBeUndefined();
  });

  // Unit tests of the adapter's own side (no wn involved): the argument lists it builds and its
  // reading of the `--json` answer shape it assumes ({"result": ...} or {"error": ...}).
  it("builds wn command lines: --json, the daemon socket, the account once known, then the subcommand", () => {
    expect(wnCommandLine("/h/data/dev/wnd.sock", "", ["account", "create"])).toEqual(["--json", "--socket", "/h/data/dev/wnd.sock", "account", "create"]);
    expect(wnCommandLine("/s", "ab".repeat(32), ["messages", "send", "00ff", "hi there"])).toEqual(["--json", "--socket", "/s", "--account", "ab".repeat(32), "messages", "send", "00ff", "hi there"]);
  });

  it("reads wn --json answers: result on success; the JSON error, stderr or exit status on failure", () => {
    const base = { signal: null, stderr: "", timedOut: false };
    expect(parseWnOutput({ ...base, code: 0, stdout: '{"result":{"pubkey":"ab"}}' })).toEqual({ ok: true, result: { pubkey: "ab" } });
    expect(parseWnOutput({ ...base, code: 0, stdout: "{}" })).toEqual({ ok: true, result: null });
    expect(parseWnOutput({ ...base, code: 0, stdout: '{"error":"no such group"}' })).toEqual({ ok: false, result: null, error: "no such group" });
    expect(parseWnOutput({ ...base, code: 1, stdout: '{"error":{"kind":"NotFound"}}' }).error).toBe('{"kind":"NotFound"}');
    expect(parseWnOutput({ ...base, code: 2, stdout: "not json", stderr: "error: unknown subcommand\n" }).error).toBe("error: unknown subcommand");
    expect(parseWnOutput({ ...base, code: 0, stdout: "[1,2]" }).ok).toBe(false);
    expect(parseWnOutput({ ...base, code: null, signal: "SIGKILL", stdout: "", timedOut: true }).error).toBe("timed out");
    expect(parseWnOutput({ ...base, code: null, stdout: "", spawnError: "spawn /x ENOENT" }).error).toBe("spawn /x ENOENT");
  });

  it("runs one-shot commands with a timeout (the plumbing wn calls go through)", async () => {
    const ok = await runCommand(process.execPath, ["-e", "process.stdout.write(JSON.stringify({result:process.argv.slice(1)}))", "a b", "c"], { timeoutMs: 20_000 });
    expect(parseWnOutput(ok)).toEqual({ ok: true, result: ["a b", "c"] });
    const hung = await runCommand(process.execPath, ["-e", "setTimeout(() => {}, 60000)"], { timeoutMs: 300 });
    expect(hung).toMatchObject({ timedOut: true, signal: "SIGKILL", code: null });
    const missing = await runCommand("/nonexistent/wn", [], { timeoutMs: 1000 });
    expect(missing.spawnError).toMatch(/ENOENT/);
    expect(executableSkipReason({}, "X_BIN", "a program")).toBe("X_BIN is not set (path to a program)");
    expect(executableSkipReason({ X_BIN: process.execPath }, "X_BIN", "a program")).toBeUndefined();
  });

  const wnSkip = wnAdapter.skipReason();
  it.skipIf(wnSkip !== undefined)(`drives two White Noise peers${wnSkip ? ` (skipped: ${wnSkip})` : ""}`, async () => {
    await twoPeerSmoke((name) => wnAdapter.open({ name, relays: [relay.url], home: join(work, `wn-${name}`) }));
  });
});

describe("marmot-ts adapter", () => {
  it("skips with a reason when the library is absent", () => {
    expect(marmotTsAdapter.skipReason({})).toMatch(/@internet-privacy\/marmot-ts is not installed/);
    expect(marmotTsAdapter.skipReason({ MARMOT_HARNESS_MARMOT_TS: "/nonexistent/index.js" })).toMatch(/does not exist/);
  });

  const mtsSkip = marmotTsAdapter.skipReason();
  it.skipIf(mtsSkip !== undefined)(`drives two marmot-ts peers in process${mtsSkip ? ` (skipped: ${mtsSkip})` : ""}`, async () => {
    await twoPeerSmoke((name) => marmotTsAdapter.open({ name, relays: [relay.url], home: join(work, `mts-${name}`) }));
  });

  it("derives a 64-hex KeyPackage slot from the participant label", () => {
    expect(slotId("bob")).toMatch(/^[0-9a-f]{64}$/);
    expect(slotId("bob")).toBe(slotId("bob"));
    expect(slotId("bob")).not.toBe(slotId("carol"));
  });

  it.skipIf(mtsSkip !== undefined)(`marmot-ts KeyPackages: 64-hex d from the driver, no mls_proposals tag (digest §11)${mtsSkip ? ` (skipped: ${mtsSkip})` : ""}`, async () => {
    const t = await marmotTsAdapter.open({ name: "kp", relays: [relay.url], home: join(work, "mts-kp") });
    try {
      const init = await t.request({ type: "initialize", participant: "kp", relay_urls: [relay.url] });
      if (init.type !== "initialized") throw new Error("not initialized");
      const conn = openRelay(relay.url);
      await conn.connect();
      const evs: NostrEvent[] = [];
      await new Promise<void>((resolve) => {
        const sub = conn.subscribe([{ kinds: [30443, 443], authors: [init.account_id] }], { onEvent: (e) => evs.push(e), onEose: () => (sub.close(), resolve()) });
      });
      await conn.close();
      expect(evs.length).toBeGreaterThan(0);
      const kp = evs[0]!;
      expect(kp.tags.find((x) => x[0] === "d")?.[1]).toBe(slotId("kp"));
      expect(kp.tags.some((x) => x[0] === "mls_proposals")).toBe(false);
    } finally {
      await t.close();
    }
  });
});
