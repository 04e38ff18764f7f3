import { scenario } from "../builder.ts";
import { param, type CatalogueEntry } from "./types.ts";

/**
 * Carol is offline while Alice sends a file and `epochs` self-updates move the group on; Bob sends
 * a second file in the newest epoch. Carol comes back, catches up (since-cursor), and only then
 * fetches the attachments (as a client shows media after syncing): the first one with the media
 * exporter her engine retained for its earlier epoch.
 */
export const mediaOfflineFetch: CatalogueEntry = {
  name: "media-offline-fetch",
  description: "A member offline while media is sent and epochs advance catches up, then fetches and decrypts the earlier epoch's file with its retained exporter.",
  defaults: { bytes: 16_000, epochs: 3 },
  small: { bytes: 4_000, epochs: 2 },
  tags: ["core", "media"],
  build: (p, seed = "1") => {
    const bytes = param(p, mediaOfflineFetch.defaults, "bytes");
    const epochs = param(p, mediaOfflineFetch.defaults, "epochs");
    const b = scenario("media-offline-fetch", mediaOfflineFetch.description)
      .seed(seed)
      .params({ bytes, epochs })
      .relay("r1")
      .agents(["alice", "bob", "carol"], { relays: ["r1"] })
      .createGroup("alice", "g")
      .invite("alice", "g", ["bob", "carol"])
      .offline("carol")
      .sendMedia("alice", "g", { filename: "before.jpg", mimeType: "image/jpeg", bytes });
    for (let i = 0; i < epochs; i++) b.selfUpdate(i % 2 === 0 ? "bob" : "alice", "g", { description: `epoch advance ${i + 1} of ${epochs} while carol is offline` });
    return b
      .sendMedia("bob", "g", { filename: "after.pdf", mimeType: "application/pdf", bytes: Math.max(1, Math.floor(bytes / 2)) })
      .online("carol", "since-cursor")
      .assert("g", { agents: ["carol"], mediaReceived: { carol: 2, bob: 1, alice: 1 }, members: 3 })
      .send("carol", "g", "got both files")
      .waitForConvergence("g")
      .build();
  },
};
