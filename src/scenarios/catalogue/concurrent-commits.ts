import { scenario } from "../builder.ts";
import type { CatalogueEntry } from "./types.ts";

export const concurrentCommits: CatalogueEntry = {
  name: "concurrent-commits",
  description: "Two admins commit in the same epoch before seeing each other's commit; every member ends on the same branch.",
  defaults: {},
  small: {},
  tags: ["core"],
  build: (_p, seed = "1") =>
    scenario("concurrent-commits", concurrentCommits.description)
      .seed(seed)
      .relay("r1")
      .agents(["alice", "bob", "carol", "dave"], { relays: ["r1"] })
      .createGroup("alice", "g", { admins: ["bob"] })
      .invite("alice", "g", ["bob", "carol", "dave"])
      .step({ type: "self-update", agent: "alice", group: "g", settle: false, description: "alice commits (not yet seen by bob)" })
      .step({ type: "self-update", agent: "bob", group: "g", description: "bob commits in the same epoch" })
      .send("carol", "g", "which branch am I on?")
      .send("alice", "g", "after the race")
      .send("bob", "g", "me too")
      .waitForConvergence("g")
      .assert("g", { epoch: 5, members: 4 }) // invite, three joiners' self-updates, one race winner
      .build(),
};
