import { scenario } from "../builder.ts";
import { param, type CatalogueEntry } from "./types.ts";

/**
 * Carol reads a file, is removed, and the others keep sending files. Actively probed with every
 * media exporter she ever held and the blobs themselves, she opens none of the later files.
 */
export const mediaRemovedMember: CatalogueEntry = {
  name: "media-removed-member",
  description: "A removed member, probed with every media exporter it held and the blobs, cannot decrypt media sent after its removal.",
  defaults: { bytes: 12_000 },
  small: { bytes: 3_000 },
  tags: ["core", "media", "secrecy"],
  build: (p, seed = "1") => {
    const bytes = param(p, mediaRemovedMember.defaults, "bytes");
    return scenario("media-removed-member", mediaRemovedMember.description)
      .seed(seed)
      .params({ bytes })
      .relay("r1")
      .agents(["alice", "bob", "carol"], { relays: ["r1"] })
      .createGroup("alice", "g")
      .invite("alice", "g", ["bob", "carol"])
      .sendMedia("alice", "g", { filename: "before.jpg", mimeType: "image/jpeg", bytes })
      .assert("g", { agents: ["alice"], mediaReceived: { bob: 1, carol: 1 } })
      .remove("alice", "g", ["carol"])
      .sendMedia("alice", "g", { filename: "after-1.jpg", mimeType: "image/jpeg", bytes })
      .sendMedia("bob", "g", { filename: "after-2.pdf", mimeType: "application/pdf", bytes: Math.max(1, Math.floor(bytes / 2)) })
      .assert("g", { agents: ["alice", "bob"], members: ["alice", "bob"], notMembers: ["carol"], mediaReceived: { alice: 1, bob: 1 }, cannotDecryptMedia: ["carol"] })
      .waitForConvergence("g")
      .build();
  },
};
