import { scenario } from "../builder.ts";
import { param, type CatalogueEntry } from "./types.ts";

/**
 * MIP-01 group image lifecycle. Alice (admin) sets a v2 image (image seed, independent upload
 * seed, upload signed by the derived Blossom identity); members fetch and decrypt it. She changes
 * it to a v1 image (the key used directly, as older clients write it), which members still read;
 * the old v2 blob is deleted with the old v2 upload identity. She changes it back to v2, and the
 * v1 blob is deleted with the v1 identity. Carol, offline during the v1 image, catches up and
 * fetches the current image; Dave, invited last, fetches it on joining.
 */
export const groupImageLifecycle: CatalogueEntry = {
  name: "group-image-lifecycle",
  description: "An admin sets a v2 group image, changes it to a v1 image and back; members (and a later joiner) fetch and decrypt each, and every replaced blob is deleted from Blossom with its upload identity.",
  defaults: { bytes: 6_000 },
  small: { bytes: 1_500 },
  tags: ["core", "media"],
  build: (p, seed = "1") => {
    const bytes = param(p, groupImageLifecycle.defaults, "bytes");
    return scenario("group-image-lifecycle", groupImageLifecycle.description)
      .seed(seed)
      .onlyProfiles(["R1"], "group data v1 (the R0 layout) cannot hold a v2 group image")
      .params({ bytes })
      .relay("r1")
      .agents(["alice", "bob", "carol", "dave"], { relays: ["r1"] })
      .createGroup("alice", "g")
      .invite("alice", "g", ["bob", "carol"])
      .setGroupImage("alice", "g", { bytes, version: 2 })
      .assert("g", { agents: ["alice"], groupImageFetchedBy: ["bob", "carol"] })
      .offline("carol")
      .setGroupImage("alice", "g", { bytes: Math.max(1, Math.floor(bytes / 2)), version: 1, description: "alice changes the image to a v1 image (direct key)" })
      .assert("g", { agents: ["alice"], groupImageFetchedBy: ["bob"], groupImageCleanedUp: true })
      .setGroupImage("alice", "g", { bytes, version: 2, description: "alice changes the image back to v2" })
      .online("carol")
      .assert("g", { agents: ["alice", "bob", "carol"], groupImageFetchedBy: ["bob", "carol"], groupImageCleanedUp: true, members: 3 })
      .invite("alice", "g", ["dave"])
      .assert("g", { agents: ["alice"], groupImageFetchedBy: ["dave"], members: 4 })
      .send("bob", "g", "nice picture")
      .waitForConvergence("g")
      .build();
  },
};
