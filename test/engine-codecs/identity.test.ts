import { describe, it, expect } from "vitest";
import fc from "fast-check";
import { bytesToHex } from "@noble/hashes/utils.js";
import {
  createCommit,
  createGroup,
  defaultCredentialTypes,
  defaultProposalTypes,
  generateKeyPackage,
  joinGroup,
  type Credential,
} from "ts-mls";
import {
  GREASE_VALUES,
  IdentityError,
  MARMOT_CIPHERSUITE,
  generateMarmotKeyPackage,
  getMarmotCiphersuite,
  identityOfCredential,
  isGrease,
  isLastResortKeyPackage,
  lastResortExtension,
  makeCredential,
  marmotAuthService,
  marmotCapabilities,
} from "../../src/engine/identity.ts";
import { encodeKeyPackage } from "../../src/engine/mip00-keypackages.ts";
import type { MarmotGroupData } from "../../src/engine/api.ts";
import { makeGroupDataExtension, makeRequiredCapabilities, readGroupDataExtension } from "../../src/engine/mip01-group-data.ts";
import { createRng } from "../../src/sim/random.ts";
import { NOW, PK_A, PK_B, fixedKeyPackage } from "./helpers.ts";

function codeOf(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    if (e instanceof IdentityError) return e.code;
    throw e;
  }
  throw new Error("expected an IdentityError");
}

describe("credentials", () => {
  it("BasicCredential with the raw 32-byte pubkey, and back to lowercase hex", () => {
    const c = makeCredential(PK_A.toUpperCase());
    expect(c.credentialType).toBe(defaultCredentialTypes.basic);
    expect(c.credentialType === 1 && "identity" in c && c.identity.length).toBe(32);
    expect(identityOfCredential(c)).toBe(PK_A);
  });

  it("rejects bad pubkeys and non-Marmot credentials with typed errors", () => {
    expect(codeOf(() => makeCredential("npub1xyz"))).toBe("ID_BAD_PUBKEY");
    expect(codeOf(() => makeCredential("ab".repeat(33)))).toBe("ID_BAD_PUBKEY");
    const x509: Credential = { credentialType: defaultCredentialTypes.x509, certificates: [] };
    expect(codeOf(() => identityOfCredential(x509))).toBe("ID_NOT_BASIC_CREDENTIAL");
    const hex64Text: Credential = { credentialType: defaultCredentialTypes.basic, identity: new TextEncoder().encode(PK_A) };
    expect(codeOf(() => identityOfCredential(hex64Text))).toBe("ID_BAD_IDENTITY_LENGTH");
    expect(codeOf(() => identityOfCredential({ credentialType: 0x7777, data: new Uint8Array(32) }))).toBe("ID_NOT_BASIC_CREDENTIAL");
  });

  it("the authentication service accepts only 32-byte BasicCredentials", async () => {
    expect(await marmotAuthService.validateCredential(makeCredential(PK_B), new Uint8Array(32))).toBe(true);
    expect(await marmotAuthService.validateCredential({ credentialType: 1, identity: new Uint8Array(31) }, new Uint8Array(32))).toBe(false);
    expect(await marmotAuthService.validateCredential({ credentialType: 2, certificates: [] }, new Uint8Array(32))).toBe(false);
  });
});

describe("capabilities and GREASE", () => {
  it("GREASE values are the 15 RFC 9420 §13.5 values", () => {
    expect(GREASE_VALUES).toHaveLength(15);
    expect(GREASE_VALUES[0]).toBe(0x0a0a);
    expect(GREASE_VALUES[14]).toBe(0xeaea);
    for (const g of GREASE_VALUES) {
      expect(isGrease(g)).toBe(true);
      expect(g & 0x0f0f).toBe(0x0a0a);
    }
    expect(isGrease(0xf2ee)).toBe(false);
    expect(isGrease(0x000a)).toBe(false);
    expect(isGrease(0xfafa)).toBe(false);
  });

  it("without GREASE: exactly MDK's list", () => {
    expect(marmotCapabilities({ grease: false })).toEqual({
      versions: [1],
      ciphersuites: [MARMOT_CIPHERSUITE],
      extensions: [0x000a, 0xf2ee],
      proposals: [0x000a],
      credentials: [defaultCredentialTypes.basic],
    });
  });

  it("with GREASE (default): the same list plus at least one GREASE value per field, and only GREASE", () => {
    fc.assert(
      fc.property(fc.string(), (seed) => {
        const rng = createRng(seed);
        const caps = marmotCapabilities({ randomBytes: (n) => rng.bytes(n) });
        for (const [field, base] of [
          ["ciphersuites", [1]],
          ["extensions", [0x000a, 0xf2ee]],
          ["proposals", [0x000a]],
          ["credentials", [1]],
        ] as const) {
          const list = caps[field];
          expect(list.slice(0, base.length)).toEqual(base);
          const extra = list.slice(base.length);
          expect(extra.length).toBeGreaterThan(0);
          expect(extra.every(isGrease)).toBe(true);
          expect(new Set(extra).size).toBe(extra.length);
        }
      }),
      { numRuns: 200 },
    );
  });
});

describe("KeyPackage generation", () => {
  it("last_resort by default, single-use on request; credential, suite and lifetime", async () => {
    const { publicPackage: kp, privatePackage } = await generateMarmotKeyPackage({ pubkey: PK_A, now: NOW });
    expect(isLastResortKeyPackage(kp)).toBe(true);
    expect(kp.extensions.map((e) => e.extensionType)).toEqual([0x000a]);
    expect(kp.cipherSuite).toBe(1);
    expect(identityOfCredential(kp.leafNode.credential)).toBe(PK_A);
    expect(kp.leafNode.leafNodeSource === 1 && kp.leafNode.lifetime).toEqual({ notBefore: BigInt(NOW - 86_400), notAfter: BigInt(NOW + 90 * 86_400) });
    expect(privatePackage.initPrivateKey.length).toBeGreaterThan(0);
    const single = await generateMarmotKeyPackage({ pubkey: PK_A, now: NOW, lastResort: false, grease: false });
    expect(isLastResortKeyPackage(single.publicPackage)).toBe(false);
    expect(single.publicPackage.leafNode.capabilities.extensions).toEqual([0x000a, 0xf2ee]);
  });

  it("is reproducible from randomBytes, and different seeds give different keys", async () => {
    const a1 = await fixedKeyPackage(PK_A, "seed-1");
    const a2 = await fixedKeyPackage(PK_A, "seed-1");
    const b = await fixedKeyPackage(PK_A, "seed-2");
    expect(bytesToHex(encodeKeyPackage(a1.publicPackage))).toBe(bytesToHex(encodeKeyPackage(a2.publicPackage)));
    expect(a1.privatePackage).toEqual(a2.privatePackage);
    expect(bytesToHex(b.publicPackage.initKey)).not.toBe(bytesToHex(a1.publicPackage.initKey));
    expect(bytesToHex(a1.publicPackage.initKey)).not.toBe(bytesToHex(a1.publicPackage.leafNode.hpkePublicKey));
  });

  it("the ciphersuite implementation is cached", async () => {
    expect(await getMarmotCiphersuite()).toBe(await getMarmotCiphersuite());
    expect((await getMarmotCiphersuite()).id).toBe(1);
  });
});

describe("the helpers build groups ts-mls accepts", () => {
  const groupData: MarmotGroupData = {
    version: 2,
    nostrGroupId: new Uint8Array(32).fill(9),
    name: "codec group",
    description: "",
    adminPubkeys: [PK_A],
    relays: ["wss://relay.one"],
    imageHash: null,
    imageKey: null,
    imageNonce: null,
    imageUploadKey: null,
    disappearingMessageSecs: null,
  };

  it("create with required_capabilities + 0xF2EE, add a member, the joiner reads the same group data", async () => {
    const cs = await getMarmotCiphersuite();
    const context = { cipherSuite: cs, authService: marmotAuthService };
    const a = await generateMarmotKeyPackage({ pubkey: PK_A, lastResort: false });
    const b = await generateMarmotKeyPackage({ pubkey: PK_B });
    const state = await createGroup({
      context,
      groupId: new Uint8Array(32).fill(7),
      keyPackage: a.publicPackage,
      privateKeyPackage: a.privatePackage,
      extensions: [makeRequiredCapabilities(), makeGroupDataExtension(groupData)],
    });
    expect(readGroupDataExtension(state.groupContext.extensions)).toEqual(groupData);
    const { welcome } = await createCommit({
      context,
      state,
      ratchetTreeExtension: true,
      extraProposals: [{ proposalType: defaultProposalTypes.add, add: { keyPackage: b.publicPackage } }],
    });
    expect(welcome).toBeDefined();
    const joined = await joinGroup({ context, welcome: welcome!.welcome, keyPackage: b.publicPackage, privateKeys: b.privatePackage });
    expect(joined.groupContext.epoch).toBe(1n);
    expect(readGroupDataExtension(joined.groupContext.extensions)).toEqual(groupData);
  });

  it("a KeyPackage whose leaf lacks 0xF2EE cannot be added (required_capabilities is enforced)", async () => {
    const cs = await getMarmotCiphersuite();
    const context = { cipherSuite: cs, authService: marmotAuthService };
    const a = await generateMarmotKeyPackage({ pubkey: PK_A });
    const state = await createGroup({
      context,
      groupId: new Uint8Array(32).fill(8),
      keyPackage: a.publicPackage,
      privateKeyPackage: a.privatePackage,
      extensions: [makeRequiredCapabilities(), makeGroupDataExtension(groupData)],
    });
    const legacy = await generateKeyPackage({
      credential: makeCredential(PK_B),
      capabilities: { ...marmotCapabilities({ grease: false }), extensions: [0x000a] },
      extensions: [lastResortExtension()],
      cipherSuite: cs,
    });
    await expect(
      createCommit({ context, state, extraProposals: [{ proposalType: defaultProposalTypes.add, add: { keyPackage: legacy.publicPackage } }] }),
    ).rejects.toThrow(/support/i);
  });
});
