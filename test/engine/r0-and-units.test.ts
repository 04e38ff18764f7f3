import { describe, it, expect } from "vitest";
import { mkdtemp, rm, readdir } from "node:fs/promises";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { v2 as nip44 } from "nostr-tools/nip44";
import { chacha20poly1305 } from "@noble/ciphers/chacha.js";
import { buildGroup, deliver, makeEngine, RELAYS, T0 } from "./helpers.ts";
import { MemoryStorage } from "../../src/engine/storage-memory.ts";
import { FileStorage } from "../../src/engine/storage-file.ts";
import {
  buildRumor,
  decodeContentR1,
  encodeRumor,
  encryptContentR0,
  encryptContentR1,
  legacyConversationKey,
  parseRumor,
  tryDecryptContentR0,
  tryDecryptContentR1,
} from "../../src/engine/mip03-group-events.ts";
import { createRng } from "../../src/sim/random.ts";

describe("R0 legacy profile", () => {
  it("three members on R0: 443 KeyPackages, NIP-44 445s, v1 group data, admin removal", async () => {
    const { admin: alice, rest, groupId } = await buildGroup(["r0-a", "r0-b", "r0-c"], { profile: "R0" });
    const [bob, carol] = rest as [typeof alice, typeof alice];
    expect(alice.group(groupId)!.groupData.version).toBe(1);
    const m = await bob.sendMessage(groupId, { kind: 9, content: "legacy hello" }, T0 + 10);
    expect(m.tags.some((t) => t[0] === "encoding")).toBe(false);
    const outs = await deliver([alice, carol], [m], T0 + 10);
    for (const o of outs) expect(o[0]).toMatchObject({ kind: "application", rumor: { content: "legacy hello" } });
    await expect(carol.leaveGroup(groupId, T0 + 11)).rejects.toMatchObject({ code: "NOT_SUPPORTED_IN_PROFILE" });
    const rmv = await alice.removeMembers(groupId, [carol.pubkey], T0 + 12);
    await alice.confirmCommit(rmv.id);
    const [ob, oc] = await deliver([bob, carol], [rmv.event], T0 + 12);
    expect(ob![0]).toMatchObject({ kind: "commit", removed: [carol.pubkey] });
    expect(oc![0]).toMatchObject({ kind: "commit", selfRemoved: true });
  });

  it("an R0 joiner deletes a consumed single-use 443 KeyPackage (kind 5) instead of rotating it", async () => {
    const alice = await makeEngine("r0del-a", { profile: "R0" });
    const bob = await makeEngine("r0del-b", { profile: "R0" });
    const g = await alice.createGroup({ name: "g", relays: RELAYS, now: T0 });
    const kp = await bob.createKeyPackage({ relays: RELAYS, now: T0, lastResort: false });
    expect(kp.kind).toBe(443);
    const p = await alice.inviteMembers(g.groupId, [kp], T0 + 1);
    const conf = await alice.confirmCommit(p.id);
    const [o] = await deliver([bob], conf.welcomes, T0 + 2);
    const w = o![0]!;
    expect(w.kind).toBe("welcome");
    if (w.kind !== "welcome") return;
    expect(w.followUps.map((e) => e.kind)).toEqual([5]);
    expect(w.followUps[0]!.tags).toContainEqual(["e", kp.id]);
  });

  it("an R0 joiner keeps a last-resort 443 KeyPackage: a second group can still invite it", async () => {
    const alice = await makeEngine("r0lr-a", { profile: "R0" });
    const bob = await makeEngine("r0lr-b", { profile: "R0" });
    const kp = await bob.createKeyPackage({ relays: RELAYS, now: T0, lastResort: true });
    expect(kp.kind).toBe(443);
    for (const [i, name] of ["first", "second"].entries()) {
      const g = await alice.createGroup({ name, relays: RELAYS, now: T0 + 10 * i });
      const p = await alice.inviteMembers(g.groupId, [kp], T0 + 10 * i + 1);
      const conf = await alice.confirmCommit(p.id);
      const [o] = await deliver([bob], conf.welcomes, T0 + 10 * i + 2);
      expect(o!.map((x) => (x.kind === "rejected" ? `rejected ${x.error.code}` : x.kind))).toEqual(["welcome"]);
      const w = o![0]!;
      // Nothing to delete or rotate: the last-resort KeyPackage stays published and usable.
      if (w.kind === "welcome") expect(w.followUps).toEqual([]);
    }
    expect(bob.groups().map((g) => g.groupData.name).sort()).toEqual(["first", "second"]);
  });

  it("R1 445 content is base64 of at least nonce + tag (28 bytes)", async () => {
    const r1 = await makeEngine("mix-1");
    const g = await r1.createGroup({ name: "g", relays: RELAYS, now: T0 });
    const ev = await r1.sendMessage(g.groupId, { kind: 9, content: "r1" }, T0);
    const raw = decodeContentR1(ev.content);
    expect(raw.length).toBeGreaterThanOrEqual(28);
  });
});

describe("MIP-03 content codecs", () => {
  it("R1: ChaCha20-Poly1305 with the nonce in front, empty AAD", () => {
    const rng = createRng("r1codec");
    const key = rng.bytes(32);
    const nonce = rng.bytes(12);
    const msg = rng.bytes(100);
    const content = encryptContentR1(key, msg, nonce);
    const raw = Buffer.from(content, "base64");
    expect([...raw.subarray(0, 12)]).toEqual([...nonce]);
    expect([...chacha20poly1305(key, nonce).decrypt(raw.subarray(12))]).toEqual([...msg]);
    expect([...tryDecryptContentR1(key, decodeContentR1(content))!]).toEqual([...msg]);
    expect(tryDecryptContentR1(rng.bytes(32), decodeContentR1(content))).toBeUndefined();
  });

  it("R0: our binary NIP-44 v2 payloads match nostr-tools byte for byte on UTF-8 plaintexts", () => {
    const rng = createRng("r0codec");
    for (let i = 0; i < 20; i++) {
      const secret = rng.bytes(32);
      const ck = legacyConversationKey(secret);
      const text = "x".repeat(1 + rng.int(3000)) + String(i);
      const nonce = rng.bytes(32);
      const ours = encryptContentR0(ck, new TextEncoder().encode(text), nonce);
      expect(ours).toBe(nip44.encrypt(text, ck, nonce));
      expect(new TextDecoder().decode(tryDecryptContentR0(ck, ours))).toBe(text);
      expect(nip44.decrypt(ours, ck)).toBe(text);
    }
    const ck = legacyConversationKey(rng.bytes(32));
    const bin = rng.bytes(500);
    expect([...tryDecryptContentR0(ck, encryptContentR0(ck, bin, rng.bytes(32)))!]).toEqual([...bin]);
    expect(tryDecryptContentR0(legacyConversationKey(rng.bytes(32)), encryptContentR0(ck, bin, rng.bytes(32)))).toBeUndefined();
  });

  it("inner rumor: round trip, id check, author check, no h tag", () => {
    const pk = "a".repeat(64);
    const r = buildRumor(pk, { kind: 9, content: "hi", tags: [["t", "x"]] }, T0);
    expect(parseRumor(encodeRumor(r), pk)).toEqual(r);
    expect(() => parseRumor(encodeRumor(r), "b".repeat(64))).toThrow(/RUMOR_AUTHOR_MISMATCH/);
    expect(() => parseRumor(encodeRumor({ ...r, content: "changed" }), pk)).toThrow(/RUMOR_BAD_ID/);
    expect(() => parseRumor(new TextEncoder().encode(JSON.stringify({ ...r, sig: "00" })), pk)).toThrow(/RUMOR_HAS_SIG/);
    expect(() => parseRumor(new Uint8Array([0xff, 0xfe]), pk)).toThrow(/RUMOR_INVALID_JSON/);
    expect(() => buildRumor(pk, { kind: 9, content: "", tags: [["h", "00"]] }, T0)).toThrow(/RUMOR_HAS_GROUP_TAG/);
  });
});

describe("storage", () => {
  for (const kind of ["memory", "file"] as const) {
    it(`${kind}: put/get/list/delete, values are copies`, async () => {
      const dir = kind === "file" ? await mkdtemp(path.join(tmpdir(), "marmot-store-")) : "";
      try {
        const s = kind === "file" ? new FileStorage(dir) : new MemoryStorage();
        const v = new Uint8Array([1, 2, 3]);
        await s.put("group/a/state", v);
        v[0] = 9;
        await s.put("group/a/meta", new Uint8Array([4]));
        await s.put("kp/x", new Uint8Array([]));
        await s.put("weird key/ü:*", new Uint8Array([7]));
        expect([...(await s.get("group/a/state"))!]).toEqual([1, 2, 3]);
        expect(await s.list("group/")).toEqual(["group/a/meta", "group/a/state"]);
        expect([...(await s.get("weird key/ü:*"))!]).toEqual([7]);
        expect(await s.get("nope")).toBeUndefined();
        await s.put("group/a/state", new Uint8Array([5]));
        expect([...(await s.get("group/a/state"))!]).toEqual([5]);
        await s.delete("group/a/state");
        await s.delete("group/a/state");
        expect(await s.list("group/")).toEqual(["group/a/meta"]);
        if (kind === "file") {
          // no temporary files left behind; a second instance sees the same data
          expect((await readdir(dir)).some((f) => f.startsWith(".tmp"))).toBe(false);
          expect([...(await new FileStorage(dir).get("group/a/meta"))!]).toEqual([4]);
        }
      } finally {
        if (dir) await rm(dir, { recursive: true, force: true });
      }
    });
  }
});

describe("KeyPackage quirks and client tag", () => {
  it("omitMlsProposalsTag and protectedKeyPackages change the published 30443; clientName adds `client`", async () => {
    const normal = await makeEngine("kpq-n", { clientName: "marmot-harness/test" });
    const quirky = await makeEngine("kpq-q", { quirks: { omitMlsProposalsTag: true, protectedKeyPackages: true } });
    const a = await normal.createKeyPackage({ relays: RELAYS, now: T0 });
    const b = await quirky.createKeyPackage({ relays: RELAYS, now: T0 });
    expect(a.kind).toBe(30443);
    expect(a.tags).toContainEqual(["mls_proposals", "0x000a"]);
    expect(a.tags).toContainEqual(["client", "marmot-harness/test"]);
    expect(a.tags.some((t) => t[0] === "-")).toBe(false);
    expect(b.tags.some((t) => t[0] === "mls_proposals")).toBe(false);
    expect(b.tags).toContainEqual(["-"]);
    expect(normal.keyPackageRelayList(RELAYS, T0)).toMatchObject({ kind: 10051, tags: [["relay", RELAYS[0]]] });
    expect(normal.deleteKeyPackage(a, T0 + 1)).toMatchObject({ kind: 5 });
  });
});
