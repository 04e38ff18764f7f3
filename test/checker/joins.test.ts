import { describe, expect, it } from "vitest";
import { finalizeEvent, generateSecretKey, getEventHash } from "nostr-tools/pure";
import * as nip44 from "nostr-tools/nip44";
import { judge, type Keyring, type Observation } from "../../src/checkers/compliance/index.ts";
import type { CaptureRecord } from "../../src/capture.ts";
import { clone, judgeBoth, loadFixture, replaceEvent, resign, verdictOf } from "./helpers.ts";

const fx = loadFixture("engine-r1");
const base = { records: fx.records, keyring: fx.keyring };
const wraps = fx.records.filter((r) => r.event.kind === 1059);
const firstWrap = wraps[0] as CaptureRecord;
const bob = firstWrap.event.tags.find((t) => t[0] === "p")?.[1] as string;
const bobSk = fx.secretByPubkey.get(bob) as Uint8Array;
const commits = fx.keyring.observations.filter((o): o is Extract<Observation, { kind: "commit" }> => o.kind === "commit");

function openWrap(w: CaptureRecord["event"]): { rumor: Record<string, unknown>; inviter: string } {
  const seal = JSON.parse(nip44.v2.decrypt(w.content, nip44.v2.utils.getConversationKey(bobSk, w.pubkey))) as { content: string; pubkey: string };
  return { rumor: JSON.parse(nip44.v2.decrypt(seal.content, nip44.v2.utils.getConversationKey(bobSk, seal.pubkey))) as Record<string, unknown>, inviter: seal.pubkey };
}
function rewrap(rumor: Record<string, unknown>, inviterSk: Uint8Array): CaptureRecord["event"] {
  const seal = finalizeEvent({ kind: 13, tags: [], created_at: firstWrap.event.created_at, content: nip44.v2.encrypt(JSON.stringify(rumor), nip44.v2.utils.getConversationKey(inviterSk, bob)) }, inviterSk);
  const eph = generateSecretKey();
  return finalizeEvent({ kind: 1059, tags: [["p", bob]], created_at: firstWrap.event.created_at, content: nip44.v2.encrypt(JSON.stringify(seal), nip44.v2.utils.getConversationKey(eph, bob)) }, eph);
}

describe("join sequence rules", () => {
  it("engine joins pass WL-13 and WL-14", async () => {
    const r = await judge(fx.records, { profile: "R1", keyring: fx.keyring });
    expect(verdictOf(r, "MIP02-WL-13")).toBe("pass");
    expect(verdictOf(r, "MIP02-WL-14")).toBe("pass");
  });

  it("MIP02-WL-13: a first self-update 25 h after joining fails WL-13", async () => {
    const bobUpdate = commits.find((o) => o.committer === bob && (o.proposals ?? []).length === 0) as Extract<Observation, { kind: "commit" }>;
    const at = fx.records.find((r) => r.event.id === bobUpdate.eventId)?.seenAt as number;
    const shift = 25 * 3_600_000;
    const records = fx.records.map((r) => ((r.seenAt ?? 0) >= at ? { ...r, seenAt: (r.seenAt as number) + shift, acks: (r.acks ?? []).map((a) => ({ ...a, at: a.at + shift })) } : r));
    const { added } = await judgeBoth(base, { records, keyring: fx.keyring }, { profile: "R1" });
    expect(added).toEqual(["MIP02-WL-13"]);
  });

  it("MIP02-WL-14: a joiner that talks before any self-update fails WL-14 (SHOULD)", async () => {
    const carolWrap = wraps[1] as CaptureRecord;
    const carol = carolWrap.event.tags.find((t) => t[0] === "p")?.[1];
    const keyring: Keyring = { ...fx.keyring, observations: fx.keyring.observations.filter((o) => !(o.kind === "commit" && o.committer === carol)) };
    const { added } = await judgeBoth(base, { records: fx.records, keyring }, { profile: "R1" });
    expect(added).toEqual(["MIP02-WL-14"]);
  });

  it("MIP00-KP-20: the inviter skipping the invitee's newest KeyPackage fails KP-20 (SHOULD)", async () => {
    const { rumor } = openWrap(firstWrap.event);
    const used = fx.records.find((r) => r.event.id === (rumor.tags as string[][]).find((t) => t[0] === "e")?.[1]) as CaptureRecord;
    const other = resign({ ...clone(used.event), tags: used.event.tags.map((t) => (t[0] === "d" ? ["d", "ef".repeat(32)] : t)), created_at: used.event.created_at + 1 }, bobSk);
    const records = [...fx.records];
    records.splice(records.indexOf(used) + 1, 0, { event: other, relay: used.relay, seenAt: (used.seenAt as number) + 1, source: "bob" });
    const { added } = await judgeBoth(base, { records, keyring: fx.keyring }, { profile: "R1" });
    expect(added).toEqual(["MIP00-KP-20"]);
  });

  it("MIP00-KP-22: inviting through a legacy 443 while a 30443 exists fails KP-22", async () => {
    const { rumor, inviter } = openWrap(firstWrap.event);
    const used = fx.records.find((r) => r.event.id === (rumor.tags as string[][]).find((t) => t[0] === "e")?.[1]) as CaptureRecord;
    const legacy = resign({ kind: 443, tags: used.event.tags.filter((t) => !["d", "i", "mls_proposals"].includes(t[0] as string)), content: used.event.content, created_at: Date.UTC(2026, 4, 1) / 1000 }, bobSk);
    const r2 = clone(rumor);
    r2.tags = (r2.tags as string[][]).map((t) => (t[0] === "e" ? ["e", legacy.id] : t));
    r2.id = getEventHash(r2 as never);
    const wrap = rewrap(r2, fx.secretByPubkey.get(inviter) as Uint8Array);
    const records = replaceEvent(fx.records, firstWrap.event.id, wrap);
    records.splice(records.indexOf(records.find((r) => r.event.id === used.event.id) as CaptureRecord) + 1, 0, { event: legacy, seenAt: (used.seenAt as number) + 1, source: "bob" });
    const keyring: Keyring = { ...fx.keyring, observations: fx.keyring.observations.map((o) => (o.kind === "welcome" && o.eventId === firstWrap.event.id ? { ...o, eventId: wrap.id } : o)) };
    const { added } = await judgeBoth(base, { records, keyring }, { profile: "R1" });
    expect(added).toEqual(["MIP00-KP-22"]);
  });
});

describe("R2 discovery and R2 rumor rules", () => {
  it("MIP02-WL-16 / MIP00-KR-03: wraps outside the 10050 inbox, KeyPackages outside the 10002 write set", async () => {
    const inbox = resign({ kind: 10050, tags: [["relay", "wss://inbox.example"]], content: "", created_at: 1_780_000_000 }, bobSk);
    const kpAuthor = fx.records.find((r) => r.event.kind === 30443)?.event.pubkey as string;
    const nip65 = resign({ kind: 10002, tags: [["r", "ws://127.0.0.1:7777", "read"], ["r", "wss://write.example"]], content: "", created_at: 1_780_000_000 }, fx.secretByPubkey.get(kpAuthor) as Uint8Array);
    const records = [...fx.records, { event: inbox }, { event: nip65 }];
    const r = await judge(records, { profile: "R2", keyring: fx.keyring });
    expect(verdictOf(r, "MIP02-WL-16")).toBe("fail");
    expect(verdictOf(r, "MIP00-KR-03")).toBe("fail");
    const ok = await judge(fx.records, { profile: "R2", keyring: fx.keyring });
    expect(verdictOf(ok, "MIP02-WL-16")).toBe("not-applicable");
  });

  it("MIP04-MD-07 / MIP03-APP-06 (R2): imeta with blurhash, an edit without exactly one e", async () => {
    const app = fx.keyring.observations.find((o) => o.kind === "application") as Extract<Observation, { kind: "application" }>;
    const mk = (edit: (r: Record<string, unknown>) => void): Observation => {
      const r = clone(app.rumor) as Record<string, unknown>;
      edit(r);
      r.id = getEventHash(r as never);
      return { ...app, eventId: "9".repeat(64), rumor: r };
    };
    // The fixture's own picture carries an R1 (mip04-v2) imeta, which R2 rejects: leave it out here.
    const plain = { ...fx.keyring, observations: fx.keyring.observations.filter((o) => !(o.kind === "application" && JSON.stringify((o.rumor as { tags?: unknown }).tags ?? []).includes('"imeta"'))) };
    const good = ["imeta", "v encrypted-media-v2", `locator blossom-v1 https://b.example/${"a".repeat(64)}`, "m image/png", "filename a.png"];
    const withGood = await judge(fx.records, { profile: "R2", keyring: { ...plain, observations: [...plain.observations, mk((r) => (r.tags = [good]))] } });
    expect(verdictOf(withGood, "MIP04-MD-07")).toBe("pass");
    const bad = await judge(fx.records, { profile: "R2", keyring: { ...plain, observations: [...plain.observations, mk((r) => (r.tags = [[...good, "blurhash LEHV6n"]]))] } });
    expect(verdictOf(bad, "MIP04-MD-07")).toBe("fail");
    const edit = await judge(fx.records, { profile: "R2", keyring: { ...plain, observations: [...plain.observations, mk((r) => ((r.kind = 1009), (r.tags = [])))] } });
    expect(verdictOf(edit, "MIP03-APP-06")).toBe("fail");
  });
});
