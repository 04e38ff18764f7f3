import { scenario } from "../builder.ts";
import type { CatalogueEntry } from "./types.ts";

/** Drop, duplicate, reorder, partition and crash over three relays; the group still converges. */
export const relayFaults: CatalogueEntry = {
  name: "relay-faults",
  description: "Drop, duplicate, reorder, partition and crash over three relays while the group commits and chats; everyone converges.",
  defaults: {},
  small: {},
  tags: ["core", "faults"],
  build: (_p, seed = "1") =>
    scenario("relay-faults", relayFaults.description)
      .seed(seed)
      .relay("r1")
      .relay("r2")
      .relay("r3")
      .agents(["alice", "bob", "carol", "dave"], { relays: ["r1", "r2", "r3"] })
      .createGroup("alice", "g")
      .invite("alice", "g", ["bob", "carol"])
      .fault("drop", { relay: "r1", params: { p: 0.3 } })
      .fault("duplicate", { relay: "r2", params: { p: 0.5 } })
      .fault("reorder", { relay: "r3", params: { p: 0.5, maxExtraMs: 800 } })
      .send("bob", "g", "through lossy relays")
      .selfUpdate("carol", "g")
      .send("alice", "g", "after carol's update")
      .fault("partition", { relay: "r1", params: { agents: ["bob"] } })
      .fault("partition", { relay: "r2", params: { agents: ["bob"] } })
      .invite("alice", "g", ["dave"], { description: "alice adds dave while bob only reaches r3" })
      .send("dave", "g", "hello, I am dave")
      .fault("crash", { relay: "r2" })
      .selfUpdate("bob", "g")
      .send("carol", "g", "r2 is down")
      .advanceTime(5_000)
      .fault("restart", { relay: "r2", params: { keepStore: true } })
      .fault("heal")
      .send("bob", "g", "all healed")
      .waitForConvergence("g")
      .assert("g", { epoch: 7, members: 4 }) // 4 commits of the story and 3 joiners' self-updates
      .build(),
};
