import { describe, it, expect } from "vitest";
import { finalizeEvent, getEventHash } from "nostr-tools/pure";
import { createApplicationMessage, createCommit, createProposal, defaultProposalTypes, makeCustomExtension } from "ts-mls";
import { buildGroup, deliver, forge445, kinds, makeEngine, secretFor, storedState, RELAYS, T0 } from "./helpers.ts";
import { sealRumor, unwrapWelcome, wrapSeal } from "../../src/engine/mip02-welcome.ts";
import { MemoryStorage } from "../../src/engine/storage-memory.ts";
import { buildGroupEvent, encryptContentR1, toBase64 } from "../../src/engine/mip03-group-events.ts";
import { encodeGroupData, EXT } from "./group-data-shim.ts";
import { createRng } from "../../src/sim/random.ts";
import { hexToBytes } from "@noble/hashes/utils.js";
import type { NostrEvent } from "../../src/engine/api.ts";

const firstCode = (o: { kind: string; error?: { code: string } }[]) => (o[0] as { error?: { code: string } }).error?.code;

describe("inbound rejections", () => {
  it("spoofed inner author is rejected (and accepted only with the skipInnerAuthorCheck quirk)", async () => {
    const bobStorage = new MemoryStorage();
    const { admin: alice, rest, groupId } = await buildGroup(["spoof-a", "spoof-b"], {});
    // mallory: a member whose MLS state the test can read, to forge messages as a rogue client would
    const mallory = await makeEngine("spoof-m", { storage: bobStorage });
    const kp = await mallory.createKeyPackage({ relays: RELAYS, now: T0 });
    const p = await alice.inviteMembers(groupId, [kp], T0 + 3);
    const conf = await alice.confirmCommit(p.id);
    await deliver([rest[0]!], [p.event], T0 + 3);
    await deliver([mallory], conf.welcomes, T0 + 4);
    // mallory writes a rumor claiming to be alice, with a correct id
    const unsigned = { pubkey: alice.pubkey, created_at: T0 + 5, kind: 9, tags: [], content: "I am alice" };
    const rumor = { ...unsigned, id: getEventHash(unsigned) };
    const state = await storedState(bobStorage, groupId);
    const { getMarmotCiphersuite, marmotAuthService } = await import("../../src/engine/identity.ts");
    const ctx = { cipherSuite: await getMarmotCiphersuite(), authService: marmotAuthService };
    const res = await createApplicationMessage({ context: ctx, state, message: new TextEncoder().encode(JSON.stringify(rumor)) });
    const ev = await forge445(mallory, groupId, res.message, T0 + 5, 1);
    const [o] = await deliver([rest[0]!], [ev], T0 + 5);
    expect(o![0]).toMatchObject({ kind: "rejected", error: { code: "RUMOR_AUTHOR_MISMATCH" } });

    // a rumor whose id does not match
    const bad = { ...rumor, pubkey: mallory.pubkey };
    const res2 = await createApplicationMessage({ context: ctx, state: res.newState, message: new TextEncoder().encode(JSON.stringify(bad)) });
    const ev2 = await forge445(mallory, groupId, res2.message, T0 + 6, 2);
    const [o2] = await deliver([rest[0]!], [ev2], T0 + 6);
    expect(firstCode(o2!)).toBe("RUMOR_BAD_ID");

    // the quirk reproduces marmot-ts 0.5.1: the spoof goes through
    const lax = await makeEngine("spoof-lax", { quirks: { skipInnerAuthorCheck: true } });
    const kp2 = await lax.createKeyPackage({ relays: RELAYS, now: T0 });
    const p2 = await alice.inviteMembers(groupId, [kp2], T0 + 7);
    const conf2 = await alice.confirmCommit(p2.id);
    await deliver([lax], conf2.welcomes, T0 + 7);
    // mallory must catch up to the new epoch before forging again
    await deliver([mallory], [p2.event], T0 + 7);
    const st4 = await storedState(bobStorage, groupId);
    const res4 = await createApplicationMessage({ context: ctx, state: st4, message: new TextEncoder().encode(JSON.stringify({ ...rumor, created_at: T0 + 8, id: getEventHash({ ...unsigned, created_at: T0 + 8 }) })) });
    const ev4 = await forge445(mallory, groupId, res4.message, T0 + 8, 4);
    const [o4] = await deliver([lax], [ev4], T0 + 8);
    expect(o4![0]).toMatchObject({ kind: "application", sender: mallory.pubkey, rumor: { pubkey: alice.pubkey } });
  });

  it("a non-admin's group-data commit, a non-admin removal and an admin SelfRemove are rejected by receivers", async () => {
    const bobStorage = new MemoryStorage();
    const alice = await makeEngine("rogue-a");
    const bob = await makeEngine("rogue-b", { storage: bobStorage });
    const carol = await makeEngine("rogue-c");
    const g = await alice.createGroup({ name: "rules", relays: RELAYS, now: T0 });
    const kps = [await bob.createKeyPackage({ relays: RELAYS, now: T0 }), await carol.createKeyPackage({ relays: RELAYS, now: T0 })];
    const p = await alice.inviteMembers(g.groupId, kps, T0 + 1);
    const conf = await alice.confirmCommit(p.id);
    await deliver([bob, carol], conf.welcomes, T0 + 2);
    const { getMarmotCiphersuite, marmotAuthService } = await import("../../src/engine/identity.ts");
    const ctx = { cipherSuite: await getMarmotCiphersuite(), authService: marmotAuthService };
    const state = await storedState(bobStorage, g.groupId);
    // (1) bob (not an admin) renames the group through GroupContextExtensions
    const data = { ...bob.group(g.groupId)!.groupData, name: "taken over", adminPubkeys: [bob.pubkey] };
    const ext = makeCustomExtension({ extensionType: EXT, extensionData: encodeGroupData(data) });
    const extensions = state.groupContext.extensions.map((e) => (e.extensionType === EXT ? ext : e));
    const gce = await createCommit({ context: ctx, state, extraProposals: [{ proposalType: defaultProposalTypes.group_context_extensions, groupContextExtensions: { extensions } }] });
    const ev1 = await forge445(bob, g.groupId, gce.commit, T0 + 3, 11);
    const [oa, oc] = await deliver([alice, carol], [ev1], T0 + 3);
    for (const o of [oa!, oc!]) expect(o[0]).toMatchObject({ kind: "rejected", error: { code: "COMMIT_UNAUTHORIZED" } });
    expect(carol.group(g.groupId)!.groupData.name).toBe("rules");
    // (2) bob removes carol
    const rmv = await createCommit({ context: ctx, state, extraProposals: [{ proposalType: defaultProposalTypes.remove, remove: { removed: 2 } }] });
    const ev2 = await forge445(bob, g.groupId, rmv.commit, T0 + 4, 12);
    const [oa2] = await deliver([alice], [ev2], T0 + 4);
    expect(firstCode(oa2!)).toBe("COMMIT_UNAUTHORIZED");
    // (3) a non-SelfRemove standalone proposal is not accepted
    const prop = await createProposal({ context: ctx, state, wireAsPublicMessage: true, proposal: { proposalType: defaultProposalTypes.remove, remove: { removed: 2 } } });
    const ev3 = await forge445(bob, g.groupId, prop.message, T0 + 5, 13);
    const [oa3] = await deliver([alice], [ev3], T0 + 5);
    expect(firstCode(oa3!)).toBe("PROPOSAL_REJECTED");
    // (4) a SelfRemove sent as a PrivateMessage is not accepted
    const prop2 = await createProposal({ context: ctx, state, wireAsPublicMessage: false, proposal: { proposalType: 0x000a, proposalData: new Uint8Array(0) } });
    const ev4 = await forge445(bob, g.groupId, prop2.message, T0 + 6, 14);
    const [oa4] = await deliver([alice], [ev4], T0 + 6);
    expect(firstCode(oa4!)).toBe("PROPOSAL_REJECTED");
    // alice, carol and bob still agree
    const cs = await Promise.all([alice, bob, carol].map(async (e) => (await e.inspect(g.groupId)).epochCommitment));
    expect(new Set(cs).size).toBe(1);
  });

  it("malformed 445s get typed rejections", async () => {
    const { admin: alice, rest, groupId } = await buildGroup(["bad-a", "bad-b"]);
    const bob = rest[0]!;
    const good = await alice.sendMessage(groupId, { kind: 9, content: "x" }, T0 + 10);
    const rng = createRng("bad445");
    const ngid = hexToBytes(bob.group(groupId)!.nostrGroupId);
    const resign = (content: string): NostrEvent => buildGroupEvent({ content, nostrGroupId: ngid, ephemeralSecretKey: rng.bytes(32), now: T0 + 10, profile: "R1" });
    // tampered content, not re-signed
    const raw = Buffer.from(good.content, "base64");
    raw[20] = (raw[20] ?? 0) ^ 1;
    const tampered = { id: good.id, pubkey: good.pubkey, sig: good.sig, kind: good.kind, tags: good.tags, created_at: good.created_at, content: raw.toString("base64") };
    expect(firstCode(await bob.processEvent(tampered, T0 + 10))).toBe("GROUP_EVENT_BAD_ID");
    // short content, properly signed
    expect(firstCode(await bob.processEvent(resign(toBase64(rng.bytes(27))), T0 + 10))).toBe("GROUP_EVENT_CONTENT_TOO_SHORT");
    // not base64
    expect(firstCode(await bob.processEvent(resign("***not base64***"), T0 + 10))).toBe("GROUP_EVENT_BAD_BASE64");
    // wrong kind
    const k1 = { ...good, kind: 1 };
    expect(firstCode(await bob.processEvent(k1, T0 + 10))).toBe("EVENT_WRONG_KIND");
    // authentic under the epoch key but not an MLS message
    const key = (await bob.inspect(groupId)).epochKeys.at(-1)!.groupEventKey;
    const garbage = resign(encryptContentR1(key, rng.bytes(64), rng.bytes(12)));
    expect(firstCode(await bob.processEvent(garbage, T0 + 10))).toBe("MLS_DECODE_FAILED");
    // re-signed corrupt ciphertext: no key opens it, so it is held, never delivered
    const corrupt = resign(raw.toString("base64"));
    expect(kinds(await bob.processEvent(corrupt, T0 + 10))).toEqual(["deferred"]);
    // two h tags (re-signed so that only the tag rule fails)
    const twoH = finalizeEvent({ kind: 445, created_at: T0 + 10, content: good.content, tags: [...good.tags, ["h", "00".repeat(32)]] }, rng.bytes(32));
    expect(firstCode(await bob.processEvent(twoH, T0 + 10))).toBe("GROUP_EVENT_BAD_H_TAG");
    // the genuine one still reads
    const o = await bob.processEvent(good, T0 + 11);
    expect(o[0]).toMatchObject({ kind: "application" });
  });

  it("unknown groups are ignored; Welcomes not for us are rejected and leave the KeyPackage usable", async () => {
    const alice = await makeEngine("wl-a");
    const bob = await makeEngine("wl-b");
    const eve = await makeEngine("wl-e");
    const g = await alice.createGroup({ name: "g", relays: RELAYS, now: T0 });
    const kp = await bob.createKeyPackage({ relays: RELAYS, now: T0 });
    const p = await alice.inviteMembers(g.groupId, [kp], T0 + 1);
    const conf = await alice.confirmCommit(p.id);
    expect(firstCode(await eve.processEvent(conf.welcomes[0]!, T0 + 2))).toBe("WELCOME_NOT_FOR_US");
    const other = await makeEngine("wl-o");
    const og = await other.createGroup({ name: "o", relays: RELAYS, now: T0 });
    const msg = await other.sendMessage(og.groupId, { kind: 9, content: "?" }, T0);
    expect(kinds(await bob.processEvent(msg, T0))).toEqual(["ignored"]);
    // bob's KeyPackage was not consumed by eve's failure and still joins
    const o = await bob.processEvent(conf.welcomes[0]!, T0 + 3);
    expect(o[0]!.kind).toBe("welcome");
  });
});

describe("Welcome checks", () => {
  it("a Welcome whose e tag names another KeyPackage is rejected and the KeyPackage still joins later", async () => {
    const alice = await makeEngine("wle-a");
    const bob = await makeEngine("wle-b");
    const g = await alice.createGroup({ name: "g", relays: RELAYS, now: T0 });
    const kp = await bob.createKeyPackage({ relays: RELAYS, now: T0 });
    const p = await alice.inviteMembers(g.groupId, [kp], T0 + 1);
    const conf = await alice.confirmCommit(p.id);
    const genuine = conf.welcomes[0]!;
    const rng = createRng("wle");
    const { rumor } = unwrapWelcome(genuine, secretFor("wle-b"));
    const forge = (tags: string[][]) => {
      const unsigned = { kind: 444, pubkey: rumor.pubkey, created_at: rumor.created_at, tags, content: rumor.content };
      const r = { ...unsigned, id: getEventHash(unsigned) };
      return wrapSeal(sealRumor(r, secretFor("wle-a"), bob.pubkey, T0 + 1, (n) => rng.bytes(n)), bob.pubkey, T0 + 1, (n) => rng.bytes(n));
    };
    const otherE = rumor.tags.map((t) => (t[0] === "e" ? ["e", "ab".repeat(32)] : t));
    expect(firstCode(await bob.processEvent(forge(otherE), T0 + 2))).toBe("WELCOME_KP_MISMATCH");
    const noEncoding = rumor.tags.filter((t) => t[0] !== "encoding");
    expect(firstCode(await bob.processEvent(forge(noEncoding), T0 + 2))).toBe("WELCOME_BAD_ENCODING");
    const noRelays = rumor.tags.filter((t) => t[0] !== "relays");
    expect(firstCode(await bob.processEvent(forge(noRelays), T0 + 2))).toBe("WELCOME_BAD_RELAYS");
    // a Welcome sealed by someone else than the rumor's author
    const unsigned = { kind: 444, pubkey: rumor.pubkey, created_at: rumor.created_at, tags: rumor.tags, content: rumor.content };
    const r = { ...unsigned, id: getEventHash(unsigned) };
    const sealedByEve = wrapSeal(sealRumor(r, secretFor("wle-eve"), bob.pubkey, T0 + 1, (n) => rng.bytes(n)), bob.pubkey, T0 + 1, (n) => rng.bytes(n));
    expect(firstCode(await bob.processEvent(sealedByEve, T0 + 2))).toBe("WELCOME_AUTHOR_MISMATCH");
    // nothing was consumed: the genuine Welcome joins
    const o = await bob.processEvent(genuine, T0 + 3);
    expect(o[0]!.kind).toBe("welcome");
  });
});

describe("caller errors", () => {
  it("`now` in milliseconds is refused with ENGINE_BAD_NOW", async () => {
    const alice = await makeEngine("now-a");
    await expect(alice.createGroup({ name: "g", relays: RELAYS, now: Date.UTC(2026, 0, 1) })).rejects.toMatchObject({ code: "ENGINE_BAD_NOW" });
    const g = await alice.createGroup({ name: "g", relays: RELAYS, now: T0 });
    await expect(alice.sendMessage(g.groupId, { kind: 9, content: "x" }, 1.5)).rejects.toMatchObject({ code: "ENGINE_BAD_NOW" });
    await expect(alice.sendMessage("00".repeat(32), { kind: 9, content: "x" }, T0)).rejects.toMatchObject({ code: "GROUP_UNKNOWN" });
  });
});

describe("Welcome size", () => {
  it("an invite whose Welcome exceeds NIP-44's 65,535 bytes is refused before anything is published", async () => {
    const alice = await makeEngine("big-a");
    const bob = await makeEngine("big-b");
    const relays = Array.from({ length: 80 }, (_, i) => `wss://relay-${i}.example.test/${"p".repeat(440)}`);
    const g = await alice.createGroup({ name: "huge relay list", relays, now: T0 });
    const kp = await bob.createKeyPackage({ relays: RELAYS, now: T0 });
    const err = await alice.inviteMembers(g.groupId, [kp], T0 + 1).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: "WELCOME_TOO_LARGE", details: { members: 2 } });
    expect((err as { details: { bytes: number } }).details.bytes).toBeGreaterThan(65_535);
    expect((err as Error).message).toMatch(/2 members/);
    // nothing changed: same epoch, one member, and a smaller invite still works
    expect(alice.group(g.groupId)).toMatchObject({ epoch: 0n, members: [alice.pubkey] });
    const up = await alice.updateGroupData(g.groupId, { relays: RELAYS }, T0 + 2);
    await alice.confirmCommit(up.id);
    const p = await alice.inviteMembers(g.groupId, [kp], T0 + 3);
    const conf = await alice.confirmCommit(p.id);
    expect((await bob.processEvent(conf.welcomes[0]!, T0 + 4))[0]!.kind).toBe("welcome");
  });
});

describe("experimental out-of-band ratchet tree", () => {
  it("Welcome without the tree waits for provideRatchetTree, then joins", async () => {
    const alice = await makeEngine("oob-a", { outOfBandRatchetTree: true });
    const bob = await makeEngine("oob-b");
    const g = await alice.createGroup({ name: "oob", relays: RELAYS, now: T0 });
    const kp = await bob.createKeyPackage({ relays: RELAYS, now: T0 });
    const p = await alice.inviteMembers(g.groupId, [kp], T0 + 1);
    const conf = await alice.confirmCommit(p.id);
    const tree = conf.outOfBandTrees?.[bob.pubkey];
    expect(tree).toBeInstanceOf(Uint8Array);
    expect(kinds(await bob.processEvent(conf.welcomes[0]!, T0 + 2))).toEqual(["deferred"]);
    const outs = await bob.provideRatchetTree!(tree!, T0 + 3);
    expect(kinds(outs)).toEqual(["welcome"]);
    const m = await bob.sendMessage(g.groupId, { kind: 9, content: "joined without inline tree" }, T0 + 4);
    expect((await alice.processEvent(m, T0 + 4))[0]).toMatchObject({ kind: "application" });
  });
});

