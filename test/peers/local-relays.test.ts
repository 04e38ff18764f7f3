/**
 * The scenario's relays served over WebSocket for runs with out-of-process agents: a fault
 * scoped to an agent reaches that agent's labelled connections and no one else's, relay options
 * carry over, and every fault lands in the run's history.
 */
import { describe, it, expect } from "vitest";
import { finalizeEvent, generateSecretKey } from "nostr-tools/pure";
import { History } from "../../src/history.ts";
import { openRelay } from "../../src/relays/open.ts";
import { CLIENT_LABEL_HEADER } from "../../src/relays/websocket.ts";
import { startLocalRelays } from "../../src/scenarios/relay-backends.ts";
import type { Scenario } from "../../src/scenarios/types.ts";
import { createRng } from "../../src/sim/random.ts";

const SCENARIO: Scenario = {
  name: "local",
  description: "two relays",
  seed: "local",
  relays: [{ name: "r1", options: { publishTimeoutMs: 400 } }, { name: "r2", options: { refuseProtected: true } }],
  agents: [
    { name: "alice", relays: ["r1", "r2"] },
    { name: "bob", relays: ["r1", "r2"] },
  ],
  steps: [],
};

function note(text: string, tags: string[][] = []) {
  return finalizeEvent({ kind: 1, created_at: Math.floor(Date.now() / 1000), tags, content: text }, generateSecretKey());
}

describe("local relays (the harness relay over WebSocket, faults included)", () => {
  it("scopes a partition to the labelled agent, keeps relay options, and records faults", async () => {
    const local = await startLocalRelays(SCENARIO);
    const history = new History({ now: () => Date.now() });
    const env = { clock: { now: () => Date.now() }, rng: createRng("x"), history };
    try {
      expect(local.urls).toHaveLength(2);
      const [u1, u2] = local.urls as [string, string];
      const r1 = await local.relayFactory({ ...(SCENARIO.relays[0] as Scenario["relays"][number]), backend: "ws", url: u1 }, env);
      const r2 = await local.relayFactory({ ...(SCENARIO.relays[1] as Scenario["relays"][number]), backend: "ws", url: u2 }, env);
      expect(r1.backend).toBe("ws-local");
      expect(r1.capabilities()).toContain("faults");
      // Another URL is a plain WebSocket relay, with no faults.
      const other = await local.relayFactory({ name: "x", backend: "ws", url: "ws://127.0.0.1:9" }, env);
      expect(other.backend).toBe("ws");
      expect(other.capabilities()).not.toContain("faults");

      const alice = r1.connect("alice");
      const bob = r1.connect("bob");
      // An out-of-process peer opens its own connection with the label header.
      const bobPeer = openRelay(u1, { headers: { [CLIENT_LABEL_HEADER]: "bob" }, publishTimeoutMs: 400 });
      await Promise.all([alice.connect(), bob.connect(), bobPeer.connect()]);
      r1.fault?.("partition", { agents: ["bob"] });
      expect((await alice.publish(note("alice still gets through"))).ok).toBe(true);
      expect((await bob.publish(note("bob is cut off"))).ok).toBe(false);
      expect((await bobPeer.publish(note("so is bob's peer process"))).ok).toBe(false);
      r1.fault?.("heal", { agents: ["bob"] });
      expect((await bobPeer.publish(note("healed"))).ok).toBe(true);
      const faults = history.entries.filter((e) => e.op === "fault").map((e) => e.data.fault);
      expect(faults).toEqual(expect.arrayContaining(["partition", "partition.hit", "heal"]));

      // refuseProtected carried over to r2 (NIP-70 `-` tag refused).
      const c2 = r2.connect("alice");
      await c2.connect();
      expect((await c2.publish(note("protected", [["-"]]))).ok).toBe(false);
      expect((await c2.publish(note("not protected"))).ok).toBe(true);
      await bobPeer.close();
      await Promise.all([r1.close(), r2.close(), other.close()]);
    } finally {
      await local.close();
    }
  });
});
