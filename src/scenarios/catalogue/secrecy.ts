import { scenario } from "../builder.ts";
import type { CatalogueEntry } from "./types.ts";

export const removalSecrecy: CatalogueEntry = {
  name: "removal-secrecy",
  description: "After Eve is removed she cannot read what follows (actively probed with the group's later events).",
  defaults: {},
  small: {},
  tags: ["core", "secrecy"],
  build: (_p, seed = "1") =>
    scenario("removal-secrecy", removalSecrecy.description)
      .seed(seed)
      .relay("r1")
      .agents(["alice", "bob", "carol", "eve"], { relays: ["r1"] })
      .createGroup("alice", "g")
      .invite("alice", "g", ["bob", "carol", "eve"])
      .send("bob", "g", "everyone can read this")
      .remove("alice", "g", ["eve"])
      .send("bob", "g", "eve must not read this")
      .send("carol", "g", "nor this")
      .waitForConvergence("g")
      .assert("g", { members: ["alice", "bob", "carol"], notMembers: ["eve"], cannotDecrypt: ["eve"] })
      .build(),
};

export const lateJoinerSecrecy: CatalogueEntry = {
  name: "late-joiner-secrecy",
  description: "Carol joins late and cannot read what came before (actively probed with the earlier events).",
  defaults: {},
  small: {},
  tags: ["core", "secrecy"],
  build: (_p, seed = "1") =>
    scenario("late-joiner-secrecy", lateJoinerSecrecy.description)
      .seed(seed)
      .relay("r1")
      .agents(["alice", "bob", "carol"], { relays: ["r1"] })
      .createGroup("alice", "g")
      .invite("alice", "g", ["bob"])
      .send("alice", "g", "before carol 1")
      .send("bob", "g", "before carol 2")
      .selfUpdate("bob", "g")
      .send("alice", "g", "before carol 3")
      .invite("alice", "g", ["carol"])
      .send("carol", "g", "hi, I am new")
      .waitForConvergence("g")
      .assert("g", { members: 3, cannotDecrypt: ["carol"] })
      .build(),
};
