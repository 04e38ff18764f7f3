import { describe, expect, it } from "vitest";
import { finalizeEvent, generateSecretKey, getPublicKey } from "nostr-tools/pure";
import * as nip44 from "nostr-tools/nip44";
import { judge } from "../../src/checkers/compliance/index.ts";
import type { CaptureRecord } from "../../src/capture.ts";
import { clone, findingOf, judgeBoth, loadFixture, replaceEvent, resign, verdictOf } from "./helpers.ts";

const fx = loadFixture("engine-r1");
const base = { records: fx.records, keyring: fx.keyring };
const wraps = fx.records.filter((r) => r.event.kind === 1059);
const firstWrap = wraps[0] as CaptureRecord;
const recipient = firstWrap.event.tags.find((t) => t[0] === "p")?.[1] as string;
const recipientSk = fx.secretByPubkey.get(recipient) as Uint8Array;

/** Open the original wrap to get its rumor and the inviter (seal author). */
function openWrap(w: CaptureRecord["event"]): { rumor: Record<string, unknown>; inviter: string } {
  const seal = JSON.parse(nip44.v2.decrypt(w.content, nip44.v2.utils.getConversationKey(recipientSk, w.pubkey))) as { content: string; pubkey: string };
  const rumor = JSON.parse(nip44.v2.decrypt(seal.content, nip44.v2.utils.getConversationKey(recipientSk, seal.pubkey))) as Record<string, unknown>;
  return { rumor, inviter: seal.pubkey };
}

/** Seal and gift-wrap a (possibly mutated) rumor from the inviter to the recipient. */
function rewrap(rumor: Record<string, unknown>, inviterSk: Uint8Array): CaptureRecord["event"] {
  const seal = finalizeEvent({ kind: 13, tags: [], created_at: firstWrap.event.created_at, content: nip44.v2.encrypt(JSON.stringify(rumor), nip44.v2.utils.getConversationKey(inviterSk, recipient)) }, inviterSk);
  const eph = generateSecretKey();
  return finalizeEvent({ kind: 1059, tags: [["p", recipient]], created_at: firstWrap.event.created_at, content: nip44.v2.encrypt(JSON.stringify(seal), nip44.v2.utils.getConversationKey(eph, recipient)) }, eph);
}

async function mutateRumor(edit: (r: Record<string, unknown>) => Record<string, unknown>): Promise<{ added: string[]; id: string }> {
  const { rumor, inviter } = openWrap(firstWrap.event);
  const inviterSk = fx.secretByPubkey.get(inviter) as Uint8Array;
  const next = rewrap(edit(clone(rumor)), inviterSk);
  const { added } = await judgeBoth(base, { records: replaceEvent(fx.records, firstWrap.event.id, next), keyring: fx.keyring }, { profile: "R1" });
  return { added, id: next.id };
}

const tagsOf = (r: Record<string, unknown>): string[][] => r.tags as string[][];

describe("Welcome rules", () => {
  it("engine Welcomes pass WL-01..08 and WL-12 with keys; without keys the rumor rules need keys", async () => {
    const white = await judge(fx.records, { profile: "R1", keyring: fx.keyring });
    for (const id of ["MIP02-WL-01", "MIP02-WL-02", "MIP02-WL-03", "MIP02-WL-04", "MIP02-WL-05", "MIP02-WL-06", "MIP02-WL-07", "MIP02-WL-08", "MIP02-WL-12"]) expect(verdictOf(white, id), id).toBe("pass");
    const black = await judge(fx.records, { profile: "R1" });
    expect(verdictOf(black, "MIP02-WL-01")).toBe("pass");
    expect(verdictOf(black, "MIP02-WL-02")).toBe("not-checkable-without-keys");
  });

  it("MIP02-WL-01: a gift wrap with two p tags fails WL-01", async () => {
    const ev = resign({ ...clone(firstWrap.event), tags: [...firstWrap.event.tags, ["p", getPublicKey(generateSecretKey())]] });
    const { added } = await judgeBoth(base, { records: replaceEvent(fx.records, firstWrap.event.id, ev), keyring: fx.keyring }, { profile: "R1" });
    expect(added).toEqual(["MIP02-WL-01"]);
  });

  it("MIP02-WL-02: a signed rumor fails WL-02", async () => {
    expect((await mutateRumor((r) => ({ ...r, sig: "00".repeat(64) }))).added).toEqual(["MIP02-WL-02"]);
  });

  it("MIP02-WL-03: two e tags fail WL-03", async () => {
    expect((await mutateRumor((r) => ({ ...r, tags: [...tagsOf(r), ["e", "ab".repeat(32)]] }))).added).toEqual(["MIP02-WL-03"]);
  });

  it("MIP02-WL-04: no relays tag fails WL-04", async () => {
    expect((await mutateRumor((r) => ({ ...r, tags: tagsOf(r).filter((t) => t[0] !== "relays") }))).added).toEqual(["MIP02-WL-04"]);
  });

  it("MIP02-WL-05: encoding hex fails WL-05", async () => {
    expect((await mutateRumor((r) => ({ ...r, tags: tagsOf(r).map((t) => (t[0] === "encoding" ? ["encoding", "hex"] : t)) }))).added).toEqual(["MIP02-WL-05"]);
  });

  it("MIP02-WL-06: content that is not an MLS Welcome fails WL-06", async () => {
    expect((await mutateRumor((r) => ({ ...r, content: Buffer.from("hello").toString("base64") }))).added).toEqual(["MIP02-WL-06"]);
  });

  it("MIP02-WL-08: an e tag naming a KeyPackage that is not a new_member fails WL-08", async () => {
    const other = fx.records.find((r) => r.event.kind === 30443 && r.event.pubkey !== recipient) as CaptureRecord;
    expect((await mutateRumor((r) => ({ ...r, tags: tagsOf(r).map((t) => (t[0] === "e" ? ["e", other.event.id] : t)) }))).added).toEqual(["MIP02-WL-08"]);
  });

  it("MIP02-WL-07: a Welcome published before its commit's relay OK fails WL-07", async () => {
    const records = fx.records.map((r) => (r.event.id === firstWrap.event.id ? { ...r, seenAt: (r.seenAt as number) - 3_000 } : r));
    const { added, after } = await judgeBoth(base, { records, keyring: fx.keyring }, { profile: "R1" });
    expect(added).toEqual(["MIP02-WL-07"]);
    expect(findingOf(after, "MIP02-WL-07")?.eventIds).toContain(firstWrap.event.id);
  });

  it("MIP02-WL-12: no rotation after a join fails WL-12 (SHOULD); MIP02-WL-11: rotation after a failed join fails WL-11", async () => {
    const { rumor } = openWrap(firstWrap.event);
    const kpId = tagsOf(rumor).find((t) => t[0] === "e")?.[1] as string;
    const kp = fx.records.find((r) => r.event.id === kpId) as CaptureRecord;
    const d = kp.event.tags.find((t) => t[0] === "d")?.[1];
    const rotation = fx.records.find((r) => r.event.kind === 30443 && r.event.id !== kpId && r.event.pubkey === recipient && r.event.tags.some((t) => t[0] === "d" && t[1] === d)) as CaptureRecord;
    expect(rotation).toBeDefined();
    const withoutRotation = fx.records.filter((r) => r.event.id !== rotation.event.id);
    const r1 = await judgeBoth({ records: withoutRotation.filter(() => true), keyring: fx.keyring }, { records: withoutRotation, keyring: fx.keyring }, { profile: "R1" });
    expect(verdictOf(r1.after, "MIP02-WL-12")).toBe("fail");
    const failedKeyring = { ...fx.keyring, observations: [...fx.keyring.observations.filter((o) => !(o.kind === "welcome" && o.eventId === firstWrap.event.id)), { kind: "welcome" as const, eventId: firstWrap.event.id, joined: false }] };
    const r2 = await judge(fx.records, { profile: "R1", keyring: failedKeyring });
    expect(verdictOf(r2, "MIP02-WL-11")).toBe("fail");
  });
});
