import { scenario } from "../builder.ts";
import { param, type CatalogueEntry } from "./types.ts";

/**
 * Bad blobs are detected, not opened. In turn: the Blossom server flips a byte of every blob; it
 * serves the previous blob's (valid) bytes under the newest blob's address; and a sender's imeta
 * names a valid blob that is not its file. Receivers must reject each with a typed error
 * (ciphertext hash mismatch, then AEAD failure); the asserts check that they did. A good file
 * before and after shows the path works when nothing is wrong.
 */
export const mediaCorruptBlob: CatalogueEntry = {
  name: "media-corrupt-blob",
  description: "A corrupted blob, a blob swapped under the same address and an imeta naming the wrong blob are each detected by every receiver (hash or AEAD failure), never opened.",
  defaults: { bytes: 12_000 },
  small: { bytes: 3_000 },
  tags: ["core", "media"],
  build: (p, seed = "1") => {
    const bytes = param(p, mediaCorruptBlob.defaults, "bytes");
    const file = (name: string, mimeType: string): { filename: string; mimeType: string; bytes: number } => ({ filename: name, mimeType, bytes });
    return scenario("media-corrupt-blob", mediaCorruptBlob.description)
      .seed(seed)
      .params({ bytes })
      .relay("r1")
      .agents(["alice", "bob", "carol"], { relays: ["r1"] })
      .createGroup("alice", "g")
      .invite("alice", "g", ["bob", "carol"])
      .sendMedia("alice", "g", file("good.jpg", "image/jpeg"))
      .assert("g", { agents: ["alice"], mediaReceived: { bob: 1, carol: 1 } })
      .blossomFault("corrupt", { target: "all", description: "the server flips one byte of every blob it serves" })
      .sendMedia("alice", "g", file("corrupted.png", "image/png"))
      .assert("g", { agents: ["alice"], mediaFailed: { bob: "MEDIA_CIPHERTEXT_HASH_MISMATCH", carol: "MEDIA_CIPHERTEXT_HASH_MISMATCH" } })
      .blossomFault("heal")
      .sendMedia("alice", "g", file("swapped.jpg", "image/jpeg"), { settle: false, description: "alice sends a file; receivers have not fetched it yet" })
      .blossomFault("swap", { target: "latest", description: "the server answers the newest blob's address with the previous blob's bytes" })
      .assert("g", { agents: ["alice"], mediaFailed: { bob: "MEDIA_CIPHERTEXT_HASH_MISMATCH", carol: "MEDIA_CIPHERTEXT_HASH_MISMATCH" } })
      .blossomFault("heal")
      .sendMedia("alice", "g", { ...file("wrong-blob.jpg", "image/jpeg"), wrongBlob: true }, { description: "alice's imeta names her previous (valid) blob instead of this file's" })
      .assert("g", { agents: ["alice"], mediaFailed: { bob: "MEDIA_DECRYPT_FAILED", carol: "MEDIA_DECRYPT_FAILED" } })
      .sendMedia("bob", "g", file("after.txt", "text/plain"))
      .assert("g", { agents: ["alice"], mediaReceived: { alice: 1, carol: 2 } })
      .waitForConvergence("g")
      .build();
  },
};
