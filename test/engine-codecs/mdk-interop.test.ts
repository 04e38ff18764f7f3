import { describe, it, expect, vi, afterEach } from "vitest";
import { createCommit, createGroup, defaultProposalTypes } from "ts-mls";
import type { NostrEvent } from "../../src/engine/api.ts";
import { generateMarmotKeyPackage, getMarmotCiphersuite, isGrease, marmotAuthService } from "../../src/engine/identity.ts";
import { KeyPackageError, parseKeyPackageEvent, selectKeyPackage } from "../../src/engine/mip00-keypackages.ts";
import { makeGroupDataExtension, makeRequiredCapabilities } from "../../src/engine/mip01-group-data.ts";
import { PK_A } from "./helpers.ts";

/**
 * A kind 443 KeyPackage published by White Noise (MDK 0.8.0) and seen on public relays in October
 * 2026 (public key material only). It is MDK's dual-published legacy copy: R1 tags without `d`.
 */
const MDK_080_443: NostrEvent = {
  id: "1d83c042c3a77e851af8e0dac48f2d82dbb6047620c43ef79dd997dd15961084",
  pubkey: "4432f98af8f12d5cc896428a197519a5ac07fff3c670d716088a856d037007a7",
  created_at: 1791418861,
  kind: 443,
  tags: [
    ["mls_protocol_version", "1.0"],
    ["mls_ciphersuite", "0x0001"],
    ["mls_extensions", "0x000a", "0xf2ee"],
    ["mls_proposals", "0x000a"],
    ["relays", "wss://relay.damus.io", "wss://relay.primal.net"],
    ["i", "d6f1613adc3f9125d5ee573d8c706dd77c811d88802fe97c992d6b418f2a7c13"],
    ["client", "MDK/0.8.0"],
    ["encoding", "base64"],
  ],
  content:
    "AAEAASA7bBr5krMo3qNgX9yhCgKml2orYMwipD51ZCA3xghxAyA+xGOSqsn29GnkXJ4jkTpEqsMvLkkV6iyZP3UEKJjadiC8+rXHrIk3tb5QoHK+U/xijziwcrLd++oOh3qNaj+KvgABIEQy+Yr48S1cyJZCihl1GaWsB//zxnDXFgiKhW0DcAenAgABBAABGhoGAAry7srKBAAKqqoEAAHq6gEAAAAAasbT3QAAAABrNZ/tAEBA5yjIIEnGDcTJLr2r0lga1d51t3dmdiEIh2DdcAwNNM9CzbNZwPg0MzAD1CSL55lkkEGxcafYizGGtBAFaSvpDwMACgBAQKMzRb1q5AtQTwG1snfWLAIgF0dmppOD9FQys0D2nqC0fUAOs/Q1GeAu7W1csN2YqEaHBK0jJSgo+8lU9eSL+ws=",
  sig: "135abdb1991f23762e2e6365d51cd25d5b395d716abae9101430782e13518b97073d184b0d644e94aff0101f6a9b4c09196bf0247513acf6ecccb687f70e5231",
};

afterEach(() => {
  vi.useRealTimers();
});

describe("interop with a real MDK 0.8.0 KeyPackage", () => {
  it("parses: NIP-01, tags, bare TLS KeyPackage, credential = author, signature, i = KeyPackageRef", async () => {
    const p = await parseKeyPackageEvent(MDK_080_443, { now: MDK_080_443.created_at });
    expect(p.kind).toBe(443);
    expect(p.ref).toBe("d6f1613adc3f9125d5ee573d8c706dd77c811d88802fe97c992d6b418f2a7c13");
    expect(p.lastResort).toBe(true);
    expect(p.client).toBe("MDK/0.8.0");
    expect(p.relays).toEqual(["wss://relay.damus.io", "wss://relay.primal.net"]);
    const caps = p.keyPackage.leafNode.capabilities;
    // MDK's leaf: 0x000a and 0xf2ee plus GREASE, self_remove plus GREASE.
    expect(caps.extensions.filter((e) => !isGrease(e))).toEqual([0x000a, 0xf2ee]);
    expect(caps.extensions.some(isGrease)).toBe(true);
    expect(caps.proposals.filter((e) => !isGrease(e))).toEqual([0x000a]);
    expect(caps.ciphersuites.filter((e) => !isGrease(e))).toEqual([1]);
  });

  it("is chosen by selectKeyPackage and rejected once tampered", async () => {
    expect(selectKeyPackage([MDK_080_443])?.id).toBe(MDK_080_443.id);
    await expect(parseKeyPackageEvent({ ...MDK_080_443, created_at: MDK_080_443.created_at + 1 })).rejects.toBeInstanceOf(KeyPackageError);
  });

  it("can be added by ts-mls to a group built with our required_capabilities and 0xF2EE", async () => {
    const parsed = await parseKeyPackageEvent(MDK_080_443);
    // ts-mls checks the added KeyPackage's Lifetime against the wall clock: pin it to publication time.
    vi.useFakeTimers({ toFake: ["Date"] });
    vi.setSystemTime(MDK_080_443.created_at * 1000);
    const cs = await getMarmotCiphersuite();
    const context = { cipherSuite: cs, authService: marmotAuthService };
    const a = await generateMarmotKeyPackage({ pubkey: PK_A, now: MDK_080_443.created_at });
    const state = await createGroup({
      context,
      groupId: new Uint8Array(32).fill(3),
      keyPackage: a.publicPackage,
      privateKeyPackage: a.privatePackage,
      extensions: [
        makeRequiredCapabilities(),
        makeGroupDataExtension({
          version: 2,
          nostrGroupId: new Uint8Array(32).fill(4),
          name: "interop",
          description: "",
          adminPubkeys: [PK_A],
          relays: ["wss://relay.damus.io"],
          imageHash: null,
          imageKey: null,
          imageNonce: null,
          imageUploadKey: null,
          disappearingMessageSecs: null,
        }),
      ],
    });
    const { welcome, newState } = await createCommit({
      context,
      state,
      ratchetTreeExtension: true,
      extraProposals: [{ proposalType: defaultProposalTypes.add, add: { keyPackage: parsed.keyPackage } }],
    });
    expect(welcome).toBeDefined();
    expect(newState.groupContext.epoch).toBe(1n);
  });
});
