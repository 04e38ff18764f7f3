/**
 * One test per validation rule: each malformed input gets the typed error that names the rule,
 * and (for Welcomes) leaves the KeyPackage usable. Complements rejections.test.ts.
 */
import { describe, it, expect, beforeAll } from "vitest";
import { sha256 } from "@noble/hashes/sha2.js";
import { bytesToHex, hexToBytes } from "@noble/hashes/utils.js";
import { finalizeEvent, getEventHash } from "nostr-tools/pure";
import {
  createCommit,
  createGroup,
  decode,
  defaultKeyPackageEqualityConfig,
  defaultKeyRetentionConfig,
  defaultLifetimeConfig,
  defaultPaddingConfig,
  defaultProposalTypes,
  makeCustomExtension,
  mlsMessageDecoder,
  type MlsContext,
  type Extension,
} from "ts-mls";
import type { MarmotGroupData, NostrEvent, Rumor } from "../../src/engine/api.ts";
import { createEngine } from "../../src/engine/engine.ts";
import { generateMarmotKeyPackage, getMarmotCiphersuite, marmotAuthService } from "../../src/engine/identity.ts";
import { computeKeyPackageRef, decodeKeyPackageContent, parseKeyPackageEvent } from "../../src/engine/mip00-keypackages.ts";
import { encodeGroupData, makeGroupDataExtension, makeRequiredCapabilities } from "../../src/engine/mip01-group-data.ts";
import { buildWelcomeRumor, OOB_TREE_TAG, sealRumor, unwrapWelcome, wrapSeal } from "../../src/engine/mip02-welcome.ts";
import { buildGroupEvent } from "../../src/engine/mip03-group-events.ts";
import { MemoryStorage } from "../../src/engine/storage-memory.ts";
import { createRng } from "../../src/sim/random.ts";
import { buildGroup, deliver, forge445, makeEngine, secretFor, storedState, RELAYS, T0, type TestEngine } from "./helpers.ts";

const codeOf = (o: { kind: string; error?: { code: string } }[]): string | undefined => (o[0] as { error?: { code: string } } | undefined)?.error?.code;

interface WelcomeFixture {
  alice: TestEngine;
  bob: TestEngine;
  kp: NostrEvent;
  genuine: NostrEvent;
  rumor: Rumor;
  daveRumor: Rumor;
  rb: (n: number) => Uint8Array;
}

let f: WelcomeFixture;

function rumorWith(base: Rumor, change: Partial<Rumor>): Rumor {
  const unsigned = { kind: base.kind, pubkey: base.pubkey, created_at: base.created_at, tags: base.tags, content: base.content, ...change };
  delete (unsigned as { id?: string }).id;
  return { ...unsigned, id: getEventHash(unsigned) } as Rumor;
}

/** Seal (as `sealer`) and gift-wrap a rumor to bob. */
function wrapToBob(rumor: Rumor, sealer = "vr-alice"): NostrEvent {
  return wrapSeal(sealRumor(rumor, secretFor(sealer), f.bob.pubkey, T0 + 1, f.rb), f.bob.pubkey, T0 + 1, f.rb);
}

/** A gift wrap to bob around an arbitrary (already signed) "seal". */
function wrapRawSeal(seal: NostrEvent): NostrEvent {
  return wrapSeal(seal, f.bob.pubkey, T0 + 1, f.rb);
}

function welcomeBytes(r: Rumor): Uint8Array {
  return Uint8Array.from(Buffer.from(r.content, "base64"));
}

async function mlsContext(): Promise<MlsContext> {
  return {
    cipherSuite: await getMarmotCiphersuite(),
    authService: marmotAuthService,
    clientConfig: { keyRetentionConfig: defaultKeyRetentionConfig, lifetimeConfig: defaultLifetimeConfig, keyPackageEqualityConfig: defaultKeyPackageEqualityConfig, paddingConfig: defaultPaddingConfig },
  };
}

function groupData(adminPubkeys: string[]): MarmotGroupData {
  return {
    version: 2,
    nostrGroupId: sha256(new TextEncoder().encode("vr-raw-group")),
    name: "raw",
    description: "",
    adminPubkeys,
    relays: RELAYS,
    imageHash: null,
    imageKey: null,
    imageNonce: null,
    imageUploadKey: null,
    disappearingMessageSecs: null,
  } as MarmotGroupData;
}

/**
 * A Welcome for `kpEvent` from a group built directly with ts-mls by alice's identity, with the
 * group context extensions given (so that the engine's group checks can be exercised).
 */
async function rawWelcome(kpEvent: NostrEvent, extensions: Extension[], groupId = new Uint8Array(32).fill(9)): Promise<NostrEvent> {
  // ts-mls checks KeyPackage lifetimes against the wall clock; these KeyPackages live around T0.
  const realNow = Date.now;
  Date.now = () => (T0 + 1) * 1000;
  try {
    return await rawWelcomeAt(kpEvent, extensions, groupId);
  } finally {
    Date.now = realNow;
  }
}

async function rawWelcomeAt(kpEvent: NostrEvent, extensions: Extension[], groupId: Uint8Array): Promise<NostrEvent> {
  const ctx = await mlsContext();
  const creator = await generateMarmotKeyPackage({ pubkey: f.alice.pubkey, now: T0 });
  const state = await createGroup({ context: ctx, groupId, keyPackage: creator.publicPackage, privateKeyPackage: creator.privatePackage, extensions: extensions as never });
  const { keyPackage } = await parseKeyPackageEvent(kpEvent);
  const res = await createCommit({ context: ctx, state, extraProposals: [{ proposalType: defaultProposalTypes.add, add: { keyPackage } }], ratchetTreeExtension: true });
  const rumor = buildWelcomeRumor({ inviterPubkey: f.alice.pubkey, welcome: res.welcome!, keyPackageEventId: kpEvent.id, relays: RELAYS, now: T0 + 1, profile: "R1" });
  return wrapToBob(rumor);
}

describe("Welcome validation: one rule, one typed error, the KeyPackage untouched", () => {
  beforeAll(async () => {
    const alice = await makeEngine("vr-alice");
    const bob = await makeEngine("vr-bob");
    const dave = await makeEngine("vr-dave");
    const g = await alice.createGroup({ name: "rules", relays: RELAYS, now: T0 });
    const kp = await bob.createKeyPackage({ relays: RELAYS, now: T0 });
    const kpDave = await dave.createKeyPackage({ relays: RELAYS, now: T0 });
    // dave and bob in separate commits, so that dave's Welcome holds no secrets for bob's KeyPackage
    const forDave = (await alice.confirmCommit((await alice.inviteMembers(g.groupId, [kpDave], T0 + 1)).id)).welcomes[0]!;
    const genuine = (await alice.confirmCommit((await alice.inviteMembers(g.groupId, [kp], T0 + 1)).id)).welcomes[0]!;
    const rng = createRng("validation-rules");
    f = {
      alice,
      bob,
      kp,
      genuine,
      rumor: unwrapWelcome(genuine, secretFor("vr-bob")).rumor,
      daveRumor: unwrapWelcome(forDave, secretFor("vr-dave")).rumor,
      rb: (n) => rng.bytes(n),
    };
  });

  const cases: [string, string, () => NostrEvent | Promise<NostrEvent>][] = [
    ["the gift wrap's signature does not verify", "WELCOME_BAD_WRAP_SIGNATURE", () => ({ ...f.genuine, sig: (f.genuine.sig[0] === "0" ? "1" : "0") + f.genuine.sig.slice(1) })],
    ["the gift wrap names someone else", "WELCOME_NOT_FOR_US", () => wrapSeal(sealRumor(f.rumor, secretFor("vr-alice"), f.alice.pubkey, T0 + 1, f.rb), f.alice.pubkey, T0 + 1, f.rb)],
    ["the gift wrap does not decrypt", "WELCOME_UNWRAP_FAILED", () => finalizeEvent({ kind: 1059, created_at: T0, tags: [["p", f.bob.pubkey]], content: "AgAAAA==" }, f.rb(32)) as NostrEvent],
    ["the gift wrap holds a kind-1 event, not a seal", "WELCOME_BAD_SEAL", () => wrapRawSeal(finalizeEvent({ kind: 1, created_at: T0, tags: [], content: "x" }, secretFor("vr-alice")) as NostrEvent)],
    [
      "the seal's signature does not verify",
      "WELCOME_BAD_SEAL",
      () => {
        const seal = sealRumor(f.rumor, secretFor("vr-alice"), f.bob.pubkey, T0 + 1, f.rb);
        return wrapRawSeal({ ...seal, sig: (seal.sig[0] === "0" ? "1" : "0") + seal.sig.slice(1) });
      },
    ],
    ["the seal does not decrypt", "WELCOME_UNSEAL_FAILED", () => wrapRawSeal(finalizeEvent({ kind: 13, created_at: T0, tags: [], content: "AgAAAA==" }, secretFor("vr-alice")) as NostrEvent)],
    ["the rumor carries a sig", "WELCOME_RUMOR_SIGNED", () => wrapToBob({ ...f.rumor, sig: "00".repeat(64) } as Rumor)],
    ["the rumor is not kind 444", "WELCOME_BAD_RUMOR", () => wrapToBob(rumorWith(f.rumor, { kind: 1 }))],
    ["the rumor id is not its hash", "WELCOME_BAD_RUMOR", () => wrapToBob({ ...f.rumor, id: "cd".repeat(32) })],
    ["the rumor's author is not the seal's signer", "WELCOME_AUTHOR_MISMATCH", () => wrapToBob(f.rumor, "vr-eve")],
    ["no e tag", "WELCOME_BAD_E_TAG", () => wrapToBob(rumorWith(f.rumor, { tags: f.rumor.tags.filter((t) => t[0] !== "e") }))],
    ["an e tag that is not an event id", "WELCOME_BAD_E_TAG", () => wrapToBob(rumorWith(f.rumor, { tags: f.rumor.tags.map((t) => (t[0] === "e" ? ["e", "not-an-id"] : t)) }))],
    ["no relays tag", "WELCOME_BAD_RELAYS", () => wrapToBob(rumorWith(f.rumor, { tags: f.rumor.tags.filter((t) => t[0] !== "relays") }))],
    ["a relay that is not a ws(s) URL", "WELCOME_BAD_RELAYS", () => wrapToBob(rumorWith(f.rumor, { tags: f.rumor.tags.map((t) => (t[0] === "relays" ? ["relays", "https://x.example"] : t)) }))],
    ["no encoding tag (R1)", "WELCOME_BAD_ENCODING", () => wrapToBob(rumorWith(f.rumor, { tags: f.rumor.tags.filter((t) => t[0] !== "encoding") }))],
    ["content that is not base64", "WELCOME_BAD_CONTENT", () => wrapToBob(rumorWith(f.rumor, { content: "***" }))],
    ["content that is an MLSMessage but not a Welcome", "WELCOME_BAD_CONTENT", () => wrapToBob(rumorWith(f.rumor, { content: f.kp.content }))],
    ["a Welcome for a KeyPackage this engine does not hold", "WELCOME_NO_KEY_PACKAGE", () => wrapToBob(rumorWith(f.daveRumor, {}))],
    ["the e tag names another KeyPackage event", "WELCOME_KP_MISMATCH", () => wrapToBob(rumorWith(f.rumor, { tags: f.rumor.tags.map((t) => (t[0] === "e" ? ["e", "ab".repeat(32)] : t)) }))],
    [
      "MLS cannot join (encrypted group info tampered)",
      "WELCOME_JOIN_FAILED",
      () => {
        const bytes = welcomeBytes(f.rumor);
        bytes[bytes.length - 5]! ^= 0x01;
        if (decode(mlsMessageDecoder, bytes) === undefined) throw new Error("tampering broke the framing, pick another byte");
        return wrapToBob(rumorWith(f.rumor, { content: Buffer.from(bytes).toString("base64") }));
      },
    ],
    ["the Welcome's author is not a member (re-authored by eve)", "WELCOME_INVITER_NOT_ADMIN", () => wrapToBob(rumorWith(f.rumor, { pubkey: finalizeEvent({ kind: 1, created_at: 0, tags: [], content: "" }, secretFor("vr-eve")).pubkey }), "vr-eve")],
    [
      "the out-of-band tree handed over does not decode",
      "WELCOME_BAD_TREE",
      async () => {
        const garbage = new Uint8Array([1, 2, 3, 4, 5]);
        await f.bob.provideRatchetTree(garbage, T0 + 1);
        return wrapToBob(rumorWith(f.rumor, { tags: [...f.rumor.tags, [...OOB_TREE_TAG, bytesToHex(sha256(garbage))]] }));
      },
    ],
    ["the group's 0xF2EE extension does not decode", "WELCOME_BAD_GROUP_DATA", () => rawWelcome(f.kp, [makeRequiredCapabilities({ profile: "R1" }), makeCustomExtension({ extensionType: 0xf2ee, extensionData: new Uint8Array([0, 99, 1, 2]) })])],
    ["required_capabilities is missing", "WELCOME_REQUIRED_CAPABILITIES", () => rawWelcome(f.kp, [makeGroupDataExtension(groupData([f.alice.pubkey]))])],
    ["the inviter is a member but not an admin", "WELCOME_INVITER_NOT_ADMIN", () => rawWelcome(f.kp, [makeRequiredCapabilities({ profile: "R1" }), makeGroupDataExtension(groupData(["ef".repeat(32)]))])],
  ];

  for (const [rule, code, make] of cases) {
    it(`${code}: ${rule}`, async () => {
      const ev = await make();
      const o = await f.bob.processEvent(ev, T0 + 2);
      expect(o).toHaveLength(1);
      expect(o[0]).toMatchObject({ kind: "rejected", error: { code } });
    });
  }

  it("after all of the above the genuine Welcome still joins (nothing was consumed)", async () => {
    const o = await f.bob.processEvent(f.genuine, T0 + 3);
    expect(o[0]).toMatchObject({ kind: "welcome" });
  });

  it("WELCOME_DUPLICATE_GROUP: a second Welcome into a group this engine is already in", async () => {
    const bob = await makeEngine("vr-dup-bob");
    const prev = f.bob;
    f.bob = bob; // wrapToBob and rawWelcome address f.bob
    try {
      const kp1 = await bob.createKeyPackage({ relays: RELAYS, now: T0 });
      const kp2 = await bob.createKeyPackage({ relays: RELAYS, now: T0 });
      const ext = [makeRequiredCapabilities({ profile: "R1" }), makeGroupDataExtension(groupData([f.alice.pubkey]))];
      const gid = new Uint8Array(32).fill(0x42);
      expect(await bob.processEvent(await rawWelcome(kp1, ext, gid), T0 + 2)).toMatchObject([{ kind: "welcome", groupId: bytesToHex(gid) }]);
      expect(codeOf(await bob.processEvent(await rawWelcome(kp2, ext, gid), T0 + 3))).toBe("WELCOME_DUPLICATE_GROUP");
    } finally {
      f.bob = prev;
    }
  });
});

describe("group-event and commit validation", () => {
  it("GROUP_EVENT_BAD_SIGNATURE: a 445 with a correct id and a signature by another key", async () => {
    const { admin: alice, rest, groupId } = await buildGroup(["vr-sig-a", "vr-sig-b"]);
    const good = await alice.sendMessage(groupId, { kind: 9, content: "x" }, T0 + 10);
    const other = buildGroupEvent({ content: good.content, nostrGroupId: hexToBytes(alice.group(groupId)!.nostrGroupId), ephemeralSecretKey: secretFor("vr-sig-other"), now: good.created_at, profile: "R1" });
    // same id (the pubkey differs, so the id differs): keep the genuine id/pubkey and put the other signature in
    const forged = { ...good, sig: other.sig };
    expect(codeOf(await rest[0]!.processEvent(forged, T0 + 10))).toBe("GROUP_EVENT_BAD_SIGNATURE");
    expect((await rest[0]!.processEvent(good, T0 + 10))[0]).toMatchObject({ kind: "application" });
  });

  it("MLS_WRONG_GROUP: a 445 authentic under this group's key whose MLS message belongs to another group", async () => {
    const { admin: alice, rest, groupId } = await buildGroup(["vr-wg-a", "vr-wg-b"]);
    const storage = new MemoryStorage();
    const mallory = await createEngine({ secretKey: secretFor("vr-wg-m"), storage });
    const other = await mallory.createGroup({ name: "elsewhere", relays: RELAYS, now: T0 });
    const elsewhere = await storedState(storage, other.groupId);
    const { createApplicationMessage } = await import("ts-mls");
    const res = await createApplicationMessage({ context: await mlsContext(), state: elsewhere, message: new TextEncoder().encode("{}") });
    const ev = await forge445(alice, groupId, res.message, T0 + 10, 77);
    expect(codeOf(await rest[0]!.processEvent(ev, T0 + 10))).toBe("MLS_WRONG_GROUP");
  });

  it("COMMIT_ZERO_ADMINS and COMMIT_BAD_GROUP_DATA: forged admin commits are refused by every receiver", async () => {
    const aliceStorage = new MemoryStorage();
    const alice = await createEngine({ secretKey: secretFor("vr-za-a"), storage: aliceStorage });
    const bob = await makeEngine("vr-za-b");
    const carol = await makeEngine("vr-za-c");
    const g = await alice.createGroup({ name: "admins", relays: RELAYS, now: T0 });
    const kps = [await bob.createKeyPackage({ relays: RELAYS, now: T0 }), await carol.createKeyPackage({ relays: RELAYS, now: T0 })];
    const conf = await alice.confirmCommit((await alice.inviteMembers(g.groupId, kps, T0 + 1)).id);
    await deliver([bob, carol], conf.welcomes, T0 + 2);
    const ctx = await mlsContext();
    const state = await storedState(aliceStorage, g.groupId);
    const gce = async (data: Uint8Array, seed: number): Promise<NostrEvent> => {
      const extensions = state.groupContext.extensions.map((e) => (e.extensionType === 0xf2ee ? makeCustomExtension({ extensionType: 0xf2ee, extensionData: data }) : e));
      const c = await createCommit({ context: ctx, state, extraProposals: [{ proposalType: defaultProposalTypes.group_context_extensions, groupContextExtensions: { extensions } }] });
      return forge445(alice, g.groupId, c.commit, T0 + 3, seed);
    };
    const zero = await gce(encodeGroupData({ ...alice.group(g.groupId)!.groupData, adminPubkeys: [] }), 91);
    const bad = await gce(new Uint8Array([0, 2, 0xff]), 92);
    for (const e of [bob, carol]) {
      expect(codeOf(await e.processEvent(zero, T0 + 3))).toBe("COMMIT_ZERO_ADMINS");
      expect(codeOf(await e.processEvent(bad, T0 + 3))).toBe("COMMIT_BAD_GROUP_DATA");
    }
    expect(bob.group(g.groupId)!.admins).toEqual([alice.pubkey]);
  });
});

describe("caller mistakes and refused actions", () => {
  let alice: TestEngine;
  let bob: TestEngine;
  let groupId: string;
  beforeAll(async () => {
    const g = await buildGroup(["vr-call-a", "vr-call-b"]);
    alice = g.admin;
    bob = g.rest[0]!;
    groupId = g.groupId;
  });

  const refusals: [string, string, () => Promise<unknown>][] = [
    ["a secret key that is not 32 bytes", "ENGINE_BAD_SECRET_KEY", () => createEngine({ secretKey: new Uint8Array(31) })],
    ["a secret key that is not a valid scalar", "ENGINE_BAD_SECRET_KEY", () => createEngine({ secretKey: new Uint8Array(32) })],
    ["profile R2", "ENGINE_PROFILE_UNSUPPORTED", () => createEngine({ secretKey: secretFor("vr-r2"), profile: "R2" })],
    ["maxPastEpochs 0", "ENGINE_BAD_OPTION", () => createEngine({ secretKey: secretFor("vr-mp"), maxPastEpochs: 0 })],
    ["an unknown group", "GROUP_UNKNOWN", () => alice.sendMessage("00".repeat(32), { kind: 9, content: "?" }, T0 + 5)],
    ["an unknown pending commit", "COMMIT_UNKNOWN", () => alice.confirmCommit("no-such-commit")],
    ["an invite without KeyPackages", "INVITE_EMPTY", () => alice.inviteMembers(groupId, [], T0 + 5)],
    ["inviting someone already in the group", "INVITEE_ALREADY_MEMBER", async () => alice.inviteMembers(groupId, [await (await makeEngine("vr-call-b")).createKeyPackage({ relays: RELAYS, now: T0 })], T0 + 5)],
    [
      "inviting the same account twice in one commit",
      "INVITEE_DUPLICATE",
      async () => {
        const c = await makeEngine("vr-call-c");
        return alice.inviteMembers(groupId, [await c.createKeyPackage({ relays: RELAYS, now: T0 }), await c.createKeyPackage({ relays: RELAYS, now: T0 })], T0 + 5);
      },
    ],
    [
      // The invite path leaves the KeyPackage signature to ts-mls's createCommit; its refusal is still
      // reported as the MIP-00 error, and the group is unchanged (the next test's calls still work).
      "a KeyPackage whose own signature is broken (i tag and event signature valid)",
      "KP_BAD_KP_SIGNATURE",
      async () => {
        const d = await makeEngine("vr-call-badsig");
        const ev = await d.createKeyPackage({ relays: RELAYS, now: T0 });
        const kp = decodeKeyPackageContent(ev.content, "base64");
        const bytes = kp.bytes.slice();
        bytes[bytes.length - 1]! ^= 0x01; // last byte of the KeyPackage's Ed25519 signature
        const tampered = decodeKeyPackageContent(Buffer.from(bytes).toString("base64"), "base64").keyPackage;
        const ref = await computeKeyPackageRef(tampered);
        const tags = ev.tags.map((t) => (t[0] === "i" ? ["i", ref] : t));
        const forged = finalizeEvent({ kind: ev.kind, created_at: ev.created_at, tags, content: Buffer.from(bytes).toString("base64") }, secretFor("vr-call-badsig"));
        expect((await parseKeyPackageEvent(forged, { now: T0, signatureVerifiedByMls: true })).ref).toBe(ref); // nothing else wrong with it
        const before = alice.group(groupId)!.epoch;
        const out = await alice.inviteMembers(groupId, [forged], T0 + 5).catch((e: unknown) => e);
        expect(alice.group(groupId)!.epoch).toBe(before);
        throw out;
      },
    ],
    ["a removal without members", "REMOVE_EMPTY", () => alice.removeMembers(groupId, [], T0 + 5)],
    ["removing oneself (use leaveGroup)", "REMOVE_SELF", () => alice.removeMembers(groupId, [alice.pubkey], T0 + 5)],
    ["removing someone not in the group", "NOT_A_MEMBER", () => alice.removeMembers(groupId, ["ab".repeat(32)], T0 + 5)],
    ["a non-admin inviting", "NOT_ADMIN", async () => bob.inviteMembers(groupId, [await (await makeEngine("vr-call-d")).createKeyPackage({ relays: RELAYS, now: T0 })], T0 + 5)],
    ["group data without admins", "ZERO_ADMINS", () => alice.updateGroupData(groupId, { adminPubkeys: [] }, T0 + 5)],
    ["an admin who is not a member", "ADMIN_NOT_MEMBER", () => alice.updateGroupData(groupId, { adminPubkeys: [alice.pubkey, "ab".repeat(32)] }, T0 + 5)],
  ];

  for (const [what, code, call] of refusals) {
    it(`${code}: ${what}`, async () => {
      await expect(call()).rejects.toMatchObject({ code });
    });
  }

  it("GROUP_INACTIVE: a removed member can no longer act in the group", async () => {
    const { admin: a, rest, groupId: gid } = await buildGroup(["vr-sup-a", "vr-sup-c"]);
    const c = rest[0]!;
    const r = await a.removeMembers(gid, [c.pubkey], T0 + 7);
    await a.confirmCommit(r.id);
    await deliver([c], [r.event], T0 + 7);
    await expect(c.sendMessage(gid, { kind: 9, content: "still here?" }, T0 + 8)).rejects.toMatchObject({ code: "GROUP_INACTIVE" });
  });
});
