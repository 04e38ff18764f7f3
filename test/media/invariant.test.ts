import { describe, it, expect } from "vitest";
import { checkMedia } from "../../src/checkers/invariants/media.ts";
import { History } from "../../src/history.ts";

const hex = (c: string): string => c.repeat(64).slice(0, 64);

function base(): History {
  let t = 0;
  const h = new History({ now: () => (t += 10) });
  h.record("alice", "ok", "send", { groupId: "g1", epoch: 1, eventId: hex("e"), media: true });
  h.record("bob", "ok", "decrypt", { eventId: hex("e"), groupId: "g1", epoch: 1 });
  return h;
}

describe("media invariant (detection, probes, group images)", () => {
  it("a failure the scenario expected is detection, an unexpected one fails", () => {
    const h = base();
    h.record("bob", "fail", "media", { eventId: hex("e"), groupId: "g1", code: "MEDIA_CIPHERTEXT_HASH_MISMATCH", message: "hash" });
    expect(checkMedia(h.entries).verdict).toBe("fail");
    h.record("runner", "info", "media-expected-failure", { agent: "bob", eventId: hex("e"), groupId: "g1", code: "MEDIA_CIPHERTEXT_HASH_MISMATCH" });
    const r = checkMedia(h.entries);
    expect(r.verdict).toBe("pass");
    expect(r.message).toMatch(/1 bad attachment\(s\) detected as expected/);
    // excusing bob does not excuse carol
    h.record("carol", "ok", "decrypt", { eventId: hex("e"), groupId: "g1", epoch: 1 });
    h.record("carol", "fail", "media", { eventId: hex("e"), groupId: "g1", code: "MEDIA_DECRYPT_FAILED", message: "aead" });
    expect(checkMedia(h.entries).verdict).toBe("fail");
  });

  it("a removed member opening a later attachment fails; a refused probe passes", () => {
    const h = base();
    h.record("bob", "ok", "media", { eventId: hex("e"), groupId: "g1" });
    h.record("carol", "ok", "media-probe", { groupId: "g1", eventId: hex("e"), outcome: "failed", code: "MEDIA_DECRYPT_FAILED" });
    expect(checkMedia(h.entries).verdict).toBe("pass");
    h.record("carol", "ok", "media-probe", { groupId: "g1", eventId: hex("e"), outcome: "decrypted" });
    expect(checkMedia(h.entries).message).toMatch(/carol opened the attachment .* after it left/);
  });

  it("applies to group images alone, and fails when a member could not open one", () => {
    let t = 0;
    const h = new History({ now: () => (t += 10) });
    expect(checkMedia(h.entries).verdict).toBe("not-applicable");
    h.record("bob", "ok", "group-image", { groupId: "g1", imageHash: hex("1"), role: "member" });
    expect(checkMedia(h.entries)).toMatchObject({ verdict: "pass", message: expect.stringMatching(/1 group image fetch/) });
    h.record("carol", "fail", "group-image", { groupId: "g1", imageHash: hex("1"), code: "GROUP_IMAGE_HASH_MISMATCH", message: "SHA-256 of the blob is not image_hash" });
    expect(checkMedia(h.entries).verdict).toBe("fail");
  });
});
