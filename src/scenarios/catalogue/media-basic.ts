import { scenario } from "../builder.ts";
import { param, type CatalogueEntry } from "./types.ts";

/** Encrypted files (MIP-04) over an in-process Blossom server on 127.0.0.1. */
export const mediaBasic: CatalogueEntry = {
  name: "media-basic",
  description: "Members send encrypted files over a Blossom server on 127.0.0.1; everyone fetches, decrypts and verifies them, across an epoch change.",
  defaults: { bytes: 200_000 },
  small: { bytes: 20_000 },
  tags: ["core", "media"],
  build: (p, seed = "1") => {
    const bytes = param(p, mediaBasic.defaults, "bytes");
    return scenario("media-basic", mediaBasic.description)
      .seed(seed)
      .params({ bytes })
      .relay("r1")
      .agents(["alice", "bob", "carol"], { relays: ["r1"] })
      .createGroup("alice", "g")
      .invite("alice", "g", ["bob", "carol"])
      .sendMedia("alice", "g", { filename: "photo.jpg", mimeType: "image/jpeg", bytes })
      .selfUpdate("bob", "g")
      .sendMedia("bob", "g", { filename: "notes.pdf", mimeType: "Application/PDF", bytes: Math.max(1, Math.floor(bytes / 4)) })
      .assert("g", { agents: ["alice"], mediaReceived: { alice: 1, bob: 1, carol: 2 } })
      .send("carol", "g", "got both")
      .waitForConvergence("g")
      .build();
  },
};
