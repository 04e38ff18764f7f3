import { scenario } from "../builder.ts";
import type { CatalogueEntry } from "./types.ts";

/**
 * KeyPackages: exhaustion (nothing to invite with), last resort (one KeyPackage serves two
 * invitations), rotation under the same `d` (the relay keeps only the newest), deletion.
 */
export const keyPackageLifecycle: CatalogueEntry = {
  name: "keypackage-lifecycle",
  description: "KeyPackage exhaustion, last resort, rotation under the same d, and deletion.",
  defaults: {},
  small: {},
  tags: ["core"],
  build: (_p, seed = "1") =>
    scenario("keypackage-lifecycle", keyPackageLifecycle.description)
      .seed(seed)
      .relay("r1")
      .agents(["alice", "bob"], { relays: ["r1"] })
      .agent("dave", { relays: ["r1"], keyPackages: 0 })
      .agent("erin", { relays: ["r1"] })
      .createGroup("alice", "g1")
      .createGroup("bob", "g2")
      .invite("alice", "g1", ["dave"], { expectError: "NO_KEYPACKAGE", description: "exhaustion: dave has no KeyPackage" })
      .publishKeyPackage("dave", { lastResort: true })
      .invite("alice", "g1", ["dave"], { description: "dave's last-resort KeyPackage serves alice" })
      .invite("bob", "g2", ["dave"], { description: "…and still serves bob (last resort)" })
      .rotateKeyPackage("erin", { description: "erin rotates her KeyPackage under the same d" })
      .invite("alice", "g1", ["erin"], { description: "alice finds erin's newest KeyPackage" })
      .deleteKeyPackage("dave", { description: "dave deletes his KeyPackages" })
      .createGroup("erin", "g3")
      .invite("erin", "g3", ["dave"], { expectError: "NO_KEYPACKAGE", description: "after deletion nobody can invite dave" })
      .invite("bob", "g2", ["alice"], { description: "alice's KeyPackage is still there" })
      .step({ type: "invite", agent: "erin", group: "g1", members: ["bob"], expectError: "*", description: "erin is not an admin of g1: refused" })
      .send("dave", "g1", "in g1")
      .send("dave", "g2", "in g2")
      .waitForConvergence()
      .assert("g1", { members: ["alice", "dave", "erin"] })
      .assert("g2", { members: ["alice", "bob", "dave"] })
      .build(),
};
