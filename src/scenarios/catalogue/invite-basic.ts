import { scenario } from "../builder.ts";
import type { CatalogueEntry } from "./types.ts";

export const inviteBasic: CatalogueEntry = {
  name: "invite-basic",
  description: "Alice creates a group, invites Bob then Carol; everyone chats; Bob self-updates; all converge.",
  defaults: {},
  small: {},
  tags: ["core"],
  build: (_p, seed = "1") =>
    scenario("invite-basic", inviteBasic.description)
      .seed(seed)
      .relay("r1")
      .agents(["alice", "bob", "carol"], { relays: ["r1"] })
      .createGroup("alice", "g", { name: "Friends" })
      .invite("alice", "g", ["bob"])
      .send("bob", "g", "hi alice")
      .send("alice", "g", "hi bob")
      .invite("alice", "g", ["carol"])
      .send("carol", "g", "hello both")
      .selfUpdate("bob", "g")
      .send("alice", "g", "welcome carol")
      .waitForConvergence("g")
      .assert("g", { epoch: 5, members: ["alice", "bob", "carol"], messagesReceived: { alice: 2, bob: 3, carol: 1 } })
      .build(),
};
