import { describe, expect, it } from "vitest";
import { chacha20poly1305 } from "@noble/ciphers/chacha.js";
import { generateSecretKey } from "nostr-tools/pure";
import { judge } from "../../src/checkers/compliance/index.ts";
import type { CaptureRecord } from "../../src/capture.ts";
import { clone, findingOf, judgeBoth, loadFixture, replaceEvent, resign, verdictOf } from "./helpers.ts";

const fx = loadFixture("engine-r1");
const base = { records: fx.records, keyring: fx.keyring };
const groupEvents = fx.records.filter((r) => r.event.kind === 445);
/** The last 445 is an application message from carol in the final epoch. */
const lastApp = groupEvents[groupEvents.length - 1] as CaptureRecord;
const hOf = (r: CaptureRecord): string => r.event.tags.find((t) => t[0] === "h")?.[1] as string;

async function mutate445(edit: (ev: CaptureRecord["event"]) => { tags?: string[][]; content?: string; created_at?: number }, sk?: Uint8Array): Promise<{ added: string[]; id: string }> {
  const ev = clone(lastApp.event);
  const res = edit(ev);
  const next = resign({ kind: 445, tags: res.tags ?? ev.tags, content: res.content ?? ev.content, created_at: res.created_at ?? ev.created_at }, sk);
  const { added } = await judgeBoth(base, { records: replaceEvent(fx.records, lastApp.event.id, next), keyring: fx.keyring }, { profile: "R1" });
  return { added, id: next.id };
}

function keyFor(epoch: number): Uint8Array {
  const k = fx.keyring.groupEventKeys.find((x) => x.nostrGroupId === hOf(lastApp) && x.epoch === epoch);
  return new Uint8Array(Buffer.from(k?.key as string, "hex"));
}

describe("kind 445 rules (black-box and white-box)", () => {
  it("engine 445s pass the envelope and decryption rules in both modes", async () => {
    const black = await judge(fx.records, { profile: "R1" });
    for (const id of ["MIP03-GM-01", "MIP03-GM-02", "MIP03-GM-03", "MIP03-GM-10"]) expect(verdictOf(black, id), id).toBe("pass");
    expect(verdictOf(black, "MIP03-GM-04")).toBe("not-checkable-without-keys");
    const white = await judge(fx.records, { profile: "R1", keyring: fx.keyring });
    for (const id of ["MIP03-GM-04", "MIP03-GM-11", "MIP03-GM-09", "MIP01-GD-14", "MIP03-CM-09"]) expect(verdictOf(white, id), id).toBe("pass");
  });

  it("MIP03-GM-01: an uppercase h fails only GM-01", async () => {
    const { added } = await mutate445((ev) => ({ tags: ev.tags.map((t) => (t[0] === "h" ? ["h", (t[1] as string).toUpperCase()] : t)) }));
    expect(added).toEqual(["MIP03-GM-01"]);
  });

  it("MIP03-GM-01: two h tags fail GM-01", async () => {
    const { added } = await mutate445((ev) => ({ tags: [...ev.tags, ["h", "ab".repeat(32)]] }));
    expect(added).toEqual(["MIP03-GM-01"]);
  });

  it("MIP03-GM-02: a reused signing key is named (both events)", async () => {
    const sk = generateSecretKey();
    // Two 445s no observation refers to by id (alice's application messages; alice never joins).
    const admin = groupEvents[0]?.source;
    const referenced = new Set(fx.keyring.observations.filter((o) => o.kind === "commit" || o.kind === "welcome").map((o) => o.eventId));
    const [e1, e2] = groupEvents.filter((r) => r.source === admin && !referenced.has(r.event.id)) as [CaptureRecord, CaptureRecord];
    const a = resign(clone(e1).event, sk);
    const b = resign(clone(e2).event, sk);
    let records = replaceEvent(fx.records, e1.event.id, a);
    records = replaceEvent(records, e2.event.id, b);
    const { added, after } = await judgeBoth(base, { records, keyring: fx.keyring }, { profile: "R1" });
    expect(added).toEqual(["MIP03-GM-02"]);
    expect(findingOf(after, "MIP03-GM-02")?.eventIds.sort()).toEqual([a.id, b.id].sort());
  });

  it("MIP03-GM-02: a 445 signed with an account key fails GM-02", async () => {
    const aliceSk = [...fx.secretByPubkey.values()][0] as Uint8Array;
    const { added } = await mutate445(() => ({}), aliceSk);
    expect(added).toEqual(["MIP03-GM-02"]);
  });

  it("MIP03-GM-03: non-base64 content and too-short content fail GM-03", async () => {
    expect((await mutate445(() => ({ content: "not base64!" }))).added).toEqual(["MIP03-GM-03"]);
    expect((await mutate445(() => ({ content: Buffer.alloc(20, 7).toString("base64") }))).added).toEqual(["MIP03-GM-03"]);
  });

  it("MIP03-GM-04: a flipped ciphertext byte fails GM-04 (white-box)", async () => {
    const raw = Buffer.from(lastApp.event.content, "base64");
    raw[20] = (raw[20] as number) ^ 1;
    expect((await mutate445(() => ({ content: raw.toString("base64") }))).added).toEqual(["MIP03-GM-04"]);
  });

  it("MIP03-GM-11: content that decrypts to non-MLS bytes fails GM-11", async () => {
    const nonce = new Uint8Array(12).fill(9);
    const epoch = Math.max(...fx.keyring.groupEventKeys.filter((k) => k.nostrGroupId === hOf(lastApp)).map((k) => k.epoch));
    const ct = chacha20poly1305(keyFor(epoch), nonce).encrypt(new TextEncoder().encode("definitely not an MLSMessage"));
    const content = Buffer.concat([nonce, ct]).toString("base64");
    expect((await mutate445(() => ({ content }))).added).toEqual(["MIP03-GM-11"]);
  });

  it("MIP03-GM-09: an expiration tag in a group without disappearing messages fails GM-09", async () => {
    const { added } = await mutate445((ev) => ({ tags: [...ev.tags, ["expiration", String(ev.created_at + 3600)]] }));
    expect(added).toEqual(["MIP03-GM-09"]);
  });

  it("MIP03-GM-10: a tampered signature fails GM-10 and is reported as malformed", async () => {
    const ev = clone(lastApp.event);
    ev.sig = (ev.sig[0] === "0" ? "1" : "0") + ev.sig.slice(1);
    const { added, after } = await judgeBoth(base, { records: replaceEvent(fx.records, lastApp.event.id, ev), keyring: fx.keyring }, { profile: "R1" });
    expect(added).toEqual(["MIP03-GM-10"]);
    expect(after.malformed.some((m) => m.eventId === ev.id)).toBe(true);
  });

  it("MIP03-GM-06 / GM-12 (R2): the MDK-style encoding tag and PrivateMessage commits are named under R2", async () => {
    const r = await judge(fx.records, { profile: "R2", keyring: fx.keyring });
    expect(verdictOf(r, "MIP03-GM-06")).toBe("fail");
    const gm12 = findingOf(r, "MIP03-GM-12");
    expect(gm12?.verdict).toBe("fail");
    expect(gm12?.message).toContain("handshake message is not a PublicMessage");
  });

  it("MIP03-CM-09: an application message in the new epoch before the commit's relay OK fails CM-09", async () => {
    // alice's rename commit, then alice's message in the new epoch: delay the commit's OK past the message.
    const white = await judge(fx.records, { profile: "R1", keyring: fx.keyring });
    expect(verdictOf(white, "MIP03-CM-09")).toBe("pass");
    // A commit of alice followed by a message of alice (the rename, then "new name").
    const records = fx.records.map((r) => clone(r));
    const commits = new Set(fx.keyring.observations.filter((o) => o.kind === "commit").map((o) => o.eventId));
    const aliceCommit = [...records].reverse().find((r) => r.source === "alice" && r.event.kind === 445 && commits.has(r.event.id) && records.some((o) => o.source === "alice" && o.event.kind === 445 && !commits.has(o.event.id) && (o.seenAt ?? 0) > (r.seenAt ?? 0))) as CaptureRecord;
    expect(aliceCommit).toBeDefined();
    for (const a of aliceCommit.acks ?? []) a.at += 1_000_000;
    const { added } = await judgeBoth(base, { records, keyring: fx.keyring }, { profile: "R1" });
    expect(added).toContain("MIP03-CM-09");
    expect(added.filter((x) => x !== "MIP02-WL-07")).toEqual(["MIP03-CM-09"]);
  });

  it("MIP03-CM-10: when an agent keeps the later of two competing commits, CM-10 names it", async () => {
    const commits = new Set(fx.keyring.observations.filter((o) => o.kind === "commit").map((o) => o.eventId));
    const c = fx.records.find((r) => r.event.kind === 445 && commits.has(r.event.id)) as CaptureRecord;
    // A rewrap of the same MLS commit with an earlier created_at is the race winner.
    const rival = resign({ ...clone(c.event), created_at: c.event.created_at - 1 });
    const records = [...fx.records, { event: rival, source: "mallory", seenAt: (c.seenAt ?? 0) + 1 }];
    const { added, after } = await judgeBoth(base, { records, keyring: fx.keyring }, { profile: "R1" });
    expect(added).toEqual(["MIP03-CM-10"]);
    expect(findingOf(after, "MIP03-CM-10")?.eventIds).toContain(rival.id);
  });

  it("MIP01-GD-14: the MLS group id in a published tag fails GD-14", async () => {
    const mlsId = fx.keyring.observations.find((o) => o.kind === "group-state" && o.mlsGroupId)?.kind === "group-state" ? (fx.keyring.observations.find((o) => o.kind === "group-state") as { mlsGroupId: string }).mlsGroupId : "";
    const leak = resign({ kind: 1, tags: [["x", mlsId]], content: "oops", created_at: 1_800_000_000 });
    const { added } = await judgeBoth(base, { records: [...fx.records, { event: leak }], keyring: fx.keyring }, { profile: "R1" });
    expect(added).toEqual(["MIP01-GD-14"]);
  });
});

describe("R0 legacy 445", () => {
  const r0 = loadFixture("engine-r0");
  it("NIP-44 content decrypts with the legacy exporter secret (GM-05 pass), a broken MAC fails GM-05", async () => {
    const ok = await judge(r0.records, { profile: "R0", keyring: r0.keyring });
    expect(verdictOf(ok, "MIP03-GM-05")).toBe("pass");
    expect(verdictOf(ok, "MIP03-GM-11")).toBe("pass");
    const last = [...r0.records].reverse().find((r) => r.event.kind === 445) as CaptureRecord;
    const raw = Buffer.from(last.event.content, "base64");
    raw[raw.length - 1] = (raw[raw.length - 1] as number) ^ 1;
    const bad = resign({ ...clone(last.event), content: raw.toString("base64") });
    const { added } = await judgeBoth({ records: r0.records, keyring: r0.keyring }, { records: replaceEvent(r0.records, last.event.id, bad), keyring: r0.keyring }, { profile: "R0" });
    expect(added).toEqual(["MIP03-GM-05"]);
  });
});

describe("MIP03-GM-08 (retention and expiration)", () => {
  it("with a disappearing duration, an application 445 without expiration fails GM-08 (SHOULD); with created_at + secs it passes", async () => {
    const { decodeGroupData, encodeGroupData } = await import("../../src/engine/mip01-group-data.ts");
    const keyring = {
      ...fx.keyring,
      observations: fx.keyring.observations.map((o) => {
        if (o.kind !== "group-state" || o.groupData === undefined) return o;
        const d = decodeGroupData(new Uint8Array(Buffer.from(o.groupData, "hex")));
        return { ...o, groupData: Buffer.from(encodeGroupData({ ...d, version: 3, disappearingMessageSecs: 3600n })).toString("hex") };
      }),
    };
    const without = await judge(fx.records, { profile: "R1", keyring });
    expect(verdictOf(without, "MIP03-GM-08")).toBe("fail");
    expect(findingOf(without, "MIP03-GM-08")?.eventIds).toContain(lastApp.event.id);
    // Keep only the non-445 events and the last message, now with expiration = created_at + secs.
    const withExp = fx.records
      .filter((r) => r.event.kind !== 445 || r.event.id === lastApp.event.id)
      .map((r) => (r.event.id === lastApp.event.id ? { ...r, event: resign({ ...clone(r.event), tags: [...r.event.tags, ["expiration", String(r.event.created_at + 3600)]] }) } : r));
    const r2 = await judge(withExp, { profile: "R1", keyring });
    expect(verdictOf(r2, "MIP03-GM-08")).toBe("pass");
    expect(verdictOf(r2, "MIP03-GM-09")).not.toBe("fail");
  });
});
