import { describe, it, expect } from "vitest";
import { finalizeEvent, generateSecretKey, getPublicKey, type Event as NostrEvent } from "nostr-tools/pure";
import { v2 as nip44 } from "nostr-tools/nip44";
import { createRng } from "../../src/sim/random.ts";
import { generateMarmotKeyPackage } from "../../src/engine/identity.ts";
import { buildKeyPackageEvent, buildKeyPackageRelayListEvent } from "../../src/engine/mip00-keypackages.ts";
import { buildGroupEvent, encryptContentR0, encryptContentR1, legacyConversationKey } from "../../src/engine/mip03-group-events.ts";
import { ProfileMismatchError, assertProfilesCompatible, classifyEvent, detectProfile, looksLikeNip44 } from "../../src/peers/profile-detect.ts";

const rng = createRng("profile-detect");
const sk = rng.bytes(32);
const now = 1_780_000_000;
const b64 = (b: Uint8Array): string => Buffer.from(b).toString("base64");

function ev(kind: number, tags: string[][], content = ""): NostrEvent {
  return finalizeEvent({ kind, created_at: now, tags, content }, sk);
}

/** Hand-built events of each profile, as other implementations publish them. */
const R2_KP = ev(
  30443,
  [
    ["d", "ab".repeat(32)],
    ["mls_protocol_version", "1.0"],
    ["i", "cd".repeat(32)],
    ["mls_ciphersuite", "0x0001"],
    ["mls_extensions", "0x0006"],
    ["mls_proposals", "0x0008", "0x000a"],
    ["app_components", "0x8009"],
  ],
  b64(new Uint8Array([0, 1, 0, 5, 0, 1, 9, 9])),
);
const R2_445 = ev(445, [["h", "ef".repeat(32)]], b64(rng.bytes(120)));
const R1_MTS_KP = ev(30443, [["d", "client-1"], ["mls_protocol_version", "1.0"], ["mls_ciphersuite", "0x0001"], ["mls_extensions", "0xf2ee", "0x000a"], ["encoding", "base64"]], b64(new Uint8Array([0, 1, 0, 1, 7])));
const R0_KP_HEX = ev(443, [["mls_protocol_version", "1.0"], ["mls_ciphersuite", "0x0001"], ["mls_extensions", "0xf2ee"], ["relays", "wss://r"]], "0001000100");

describe("profile detection", () => {
  it("recognises R2 from its KeyPackage tags and content framing", () => {
    const d = detectProfile("mdk", [R2_KP, R2_445]);
    expect(d.profile).toBe("R2");
    expect(d.evidence[0]?.reason).toContain("app_components");
    expect(d.evidence[0]?.reason).toContain("MLSMessage");
  });

  it("recognises marmot-ts style R1 (30443 with encoding, no mls_proposals)", () => {
    expect(detectProfile("mts", [R1_MTS_KP]).profile).toBe("R1");
  });

  it("recognises R0 hex KeyPackages", () => {
    expect(detectProfile("old", [R0_KP_HEX]).profile).toBe("R0");
  });

  it("reads our engine's real R1 events: 30443, 10051 and a ChaCha20-Poly1305 445", async () => {
    const pubkey = getPublicKey(sk);
    const { publicPackage } = await generateMarmotKeyPackage({ pubkey, randomBytes: rng.fork("kp").bytes, now });
    const kp = await buildKeyPackageEvent({ keyPackage: publicPackage, secretKey: sk, relays: ["ws://127.0.0.1:7000"], d: "11".repeat(32), now, profile: "R1" });
    const relays = buildKeyPackageRelayListEvent(sk, ["ws://127.0.0.1:7000"], now);
    const content = encryptContentR1(rng.bytes(32), rng.bytes(200), rng.bytes(12));
    const g = buildGroupEvent({ content, nostrGroupId: rng.bytes(32), ephemeralSecretKey: generateSecretKey(), now, profile: "R1" });
    const d = detectProfile("engine", [relays, kp, g]);
    expect(d.profile).toBe("R1");
    expect(d.evidence.map((e) => e.kind)).toEqual([10051, 30443, 445]);
    expect(d.evidence[1]?.reason).toContain("bare KeyPackage");
  });

  it("reads our engine's real R0 events: 443 and a NIP-44 445", async () => {
    const pubkey = getPublicKey(sk);
    const { publicPackage } = await generateMarmotKeyPackage({ pubkey, randomBytes: rng.fork("kp0").bytes, now });
    const kp = await buildKeyPackageEvent({ keyPackage: publicPackage, secretKey: sk, relays: ["ws://127.0.0.1:7000"], d: "", now, profile: "R0" });
    const content = encryptContentR0(legacyConversationKey(rng.bytes(32)), rng.bytes(300), rng.bytes(32));
    expect(looksLikeNip44(content)).toBe(true);
    const g = buildGroupEvent({ content, nostrGroupId: rng.bytes(32), ephemeralSecretKey: generateSecretKey(), now, profile: "R0" });
    const d = detectProfile("legacy", [kp, g]);
    expect(d.profile).toBe("R0");
    expect(classifyEvent(g)?.reason).toContain("NIP-44");
  });

  it("NIP-44 shape test has no false positives on AEAD payloads of many sizes", () => {
    const key = rng.bytes(32);
    let hits = 0;
    for (let n = 0; n < 600; n += 7) if (looksLikeNip44(encryptContentR1(key, rng.bytes(n), rng.bytes(12)))) hits++;
    expect(hits).toBeLessThanOrEqual(1);
    const ck = nip44.utils.getConversationKey(generateSecretKey(), getPublicKey(generateSecretKey()));
    for (const n of [1, 31, 33, 300, 5000]) expect(looksLikeNip44(nip44.encrypt("x".repeat(n), ck))).toBe(true);
  });

  it("says unknown with no evidence and ignores events that carry none", () => {
    const wrap = ev(1059, [["p", "aa".repeat(32)]], "xyz");
    const d = detectProfile("quiet", [wrap]);
    expect(d.profile).toBe("unknown");
    expect(d.candidates).toEqual(["R0", "R1", "R2"]);
  });

  it("calls a peer mixed when its events contradict each other", () => {
    const d = detectProfile("confused", [R0_KP_HEX, R2_KP]);
    expect(d.profile).toBe("mixed");
    expect(d.candidates).toEqual([]);
  });

  it("stops a mixed run with a message naming who speaks what", () => {
    const detections = [detectProfile("mdk", [R2_KP]), detectProfile("bob", [R1_MTS_KP])];
    expect(() => assertProfilesCompatible(detections, "R1")).toThrow(ProfileMismatchError);
    try {
      assertProfilesCompatible(detections, "R1");
    } catch (e) {
      expect((e as ProfileMismatchError).code).toBe("PROFILE_MISMATCH");
      expect((e as Error).message).toContain("peer mdk speaks R2, engine agents speak R1");
      expect((e as Error).message).not.toContain("peer bob");
    }
    // Unknown and compatible peers pass.
    expect(() => assertProfilesCompatible([detectProfile("bob", [R1_MTS_KP]), detectProfile("quiet", [])], "R1")).not.toThrow();
  });
});
