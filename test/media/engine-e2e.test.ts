/**
 * End to end: engines in a group, media encrypted with the sender's media exporter, uploaded to the
 * harness's Blossom server, announced in a kind-9 rumor's imeta tag, decrypted by the receivers.
 */
import { describe, it, expect } from "vitest";
import { sha256 } from "@noble/hashes/sha2.js";
import { bytesToHex } from "@noble/hashes/utils.js";
import { createEngine } from "../../src/engine/engine.ts";
import type { GroupSummary, MarmotEngine, NostrEvent, ProcessOutcome } from "../../src/engine/api.ts";
import { createRng } from "../../src/sim/random.ts";
import { blossomServerPerTest } from "./helpers.ts";
import { BlossomClient } from "../../src/blossom/client.ts";
import { decryptMedia, encryptMedia, mediaExporterLabel, parseImetaTag } from "../../src/engine/mip04-media.ts";
import { decryptGroupImage, planGroupImageChange } from "../../src/engine/mip01-group-image.ts";
import { cleanupGroupImage } from "../../src/blossom/client.ts";

const RELAYS = ["wss://relay.example.test"];
const T0 = 1_767_225_600;

function secretFor(name: string): Uint8Array {
  return sha256(new TextEncoder().encode(`media-e2e/${name}`));
}

async function engine(name: string, profile: "R0" | "R1" = "R1"): Promise<MarmotEngine> {
  const rng = createRng(`media-e2e/${name}`);
  return createEngine({ secretKey: secretFor(name), randomBytes: (n) => rng.bytes(n), profile });
}

async function mediaExporterAt(e: MarmotEngine, groupId: string, epoch: bigint): Promise<Uint8Array> {
  const ins = await e.inspect(groupId);
  const k = ins.epochKeys.find((x) => x.epoch === epoch);
  if (!k) throw new Error(`no media exporter for epoch ${epoch}`);
  return k.mediaExporter;
}

function application(outs: ProcessOutcome[]): Extract<ProcessOutcome, { kind: "application" }> {
  const app = outs.find((o) => o.kind === "application");
  expect(app, JSON.stringify(outs, (_k, v) => (typeof v === "bigint" ? v.toString() : v))).toBeDefined();
  return app as Extract<ProcessOutcome, { kind: "application" }>;
}

/** alice creates a group at T0 and invites bob and carol (engines named with `suffix`); returns each joiner's outcomes for its Welcome. */
async function groupOfThree(suffix = ""): Promise<{ alice: MarmotEngine; bob: MarmotEngine; carol: MarmotEngine; g: GroupSummary; joins: ProcessOutcome[][] }> {
  const [alice, bob, carol] = await Promise.all([engine(`alice${suffix}`), engine(`bob${suffix}`), engine(`carol${suffix}`)]);
  const g = await alice.createGroup({ name: "media", relays: RELAYS, now: T0 });
  const kps = await Promise.all([bob, carol].map((e) => e.createKeyPackage({ relays: RELAYS, now: T0 })));
  const invite = await alice.inviteMembers(g.groupId, kps, T0 + 1);
  const conf = await alice.confirmCommit(invite.id);
  const joins: ProcessOutcome[][] = [];
  for (const e of [bob, carol]) {
    const wrap = conf.welcomes.find((w) => w.tags.some((t) => t[0] === "p" && t[1] === e.pubkey)) as NostrEvent;
    joins.push(await e.processEvent(wrap, T0 + 2));
  }
  return { alice, bob, carol, g, joins };
}

describe("MIP-04 media between engines over the harness Blossom server", () => {
  const server = blossomServerPerTest();

  it("alice sends a file, bob decrypts it; after new epochs bob still reads the old file and the new ones; a removed member's keys open nothing after the next path commit", async () => {
    const { alice, bob, carol, g, joins } = await groupOfThree();
    for (const outs of joins) expect(outs[0]?.kind).toBe("welcome");

    // Alice encrypts with the media exporter of the current epoch and uploads.
    const epoch1 = (await alice.inspect(g.groupId)).epoch;
    const file = createRng("photo").bytes(64 * 1024);
    const enc = encryptMedia({ exporterSecret: await mediaExporterAt(alice, g.groupId, epoch1), data: file, mime: "image/jpeg", filename: "photo.jpg" });
    const aliceBlossom = new BlossomClient(server().url, { secretKey: secretFor("alice") });
    const desc = await aliceBlossom.upload(enc.ciphertext);
    const imeta = enc.imeta(desc.url);
    const msg = await alice.sendMessage(g.groupId, { kind: 9, content: "look", tags: [imeta] }, T0 + 10);

    // Bob receives the rumor, parses the imeta, fetches and decrypts with the message's epoch.
    const app = application(await bob.processEvent(msg, T0 + 11));
    expect(app.sender).toBe(alice.pubkey);
    const tag = app.rumor.tags.find((t) => t[0] === "imeta")!;
    const ref = parseImetaTag(tag);
    expect(ref.blobSha256).toBe(desc.sha256);
    const bobBlossom = new BlossomClient(server().url);
    const blob = await bobBlossom.download(ref.blobSha256!);
    const out = decryptMedia({ exporterSecret: await mediaExporterAt(bob, g.groupId, app.epoch), blob, imeta: ref });
    expect(bytesToHex(out.data)).toBe(bytesToHex(file));
    expect(out).toMatchObject({ mime: "image/jpeg", filename: "photo.jpg" });
    // The media exporter is the same on both sides and differs from the group-event key.
    const ins = await bob.inspect(g.groupId);
    const k = ins.epochKeys.find((x) => x.epoch === app.epoch)!;
    expect(bytesToHex(k.mediaExporter)).toBe(bytesToHex(await mediaExporterAt(alice, g.groupId, epoch1)));
    expect(bytesToHex(k.mediaExporter)).not.toBe(bytesToHex(k.groupEventKey));

    // Alice removes carol (new epoch). Bob still decrypts the epoch-1 file with the retained key.
    const removal = await alice.removeMembers(g.groupId, [carol.pubkey], T0 + 20);
    await alice.confirmCommit(removal.id);
    for (const e of [bob, carol]) expect((await e.processEvent(removal.event, T0 + 21)).map((o) => o.kind)).toContain("commit");
    const epoch2 = (await alice.inspect(g.groupId)).epoch;
    expect(epoch2).toBeGreaterThan(epoch1);
    const again = decryptMedia({ exporterSecret: await mediaExporterAt(bob, g.groupId, epoch1), blob, imeta: ref });
    expect(again.data.length).toBe(file.length);

    // A file sent after the removal: bob decrypts it with the epoch-2 exporter.
    const secret = createRng("after").bytes(2048);
    const enc2 = encryptMedia({ exporterSecret: await mediaExporterAt(alice, g.groupId, epoch2), data: secret, mime: "application/pdf", filename: "plan.pdf" });
    const desc2 = await aliceBlossom.upload(enc2.ciphertext, { type: "application/octet-stream" });
    const msg2 = await alice.sendMessage(g.groupId, { kind: 9, content: "", tags: [enc2.imeta(desc2.url)] }, T0 + 30);
    const app2 = application(await bob.processEvent(msg2, T0 + 31));
    expect(app2.epoch).toBe(epoch2);
    const blob2 = await bobBlossom.download(desc2.sha256);
    expect(bytesToHex(decryptMedia({ exporterSecret: await mediaExporterAt(bob, g.groupId, epoch2), blob: blob2, imeta: app2.rumor.tags.find((t) => t[0] === "imeta")! }).data)).toBe(
      bytesToHex(secret),
    );

    // After the next commit with an UpdatePath (alice's self-update), carol's keys open nothing new.
    const upd = await alice.selfUpdate(g.groupId, T0 + 40);
    await alice.confirmCommit(upd.id);
    expect((await bob.processEvent(upd.event, T0 + 41)).map((o) => o.kind)).toContain("commit");
    const epoch3 = (await alice.inspect(g.groupId)).epoch;
    const enc3 = encryptMedia({ exporterSecret: await mediaExporterAt(alice, g.groupId, epoch3), data: secret, mime: "application/pdf", filename: "plan.pdf" });
    const desc3 = await aliceBlossom.upload(enc3.ciphertext);
    const blob3 = await bobBlossom.download(desc3.sha256);
    expect(decryptMedia({ exporterSecret: await mediaExporterAt(bob, g.groupId, epoch3), blob: blob3, imeta: enc3.imeta(desc3.url) }).data.length).toBe(2048);
    const carolKeys = (await carol.inspect(g.groupId)).epochKeys;
    expect(carolKeys.length).toBeGreaterThan(0);
    for (const k2 of carolKeys) {
      expect(() => decryptMedia({ exporterSecret: k2.mediaExporter, blob: blob3, imeta: enc3.imeta(desc3.url) })).toThrow(/MEDIA_DECRYPT_FAILED/);
    }
  });

  it("group image: alice sets it through group data, bob reads it; a change uploads the new one and cleans up the old", async () => {
    const [alice, bob] = await Promise.all([engine("img-alice"), engine("img-bob")]);
    const g = await alice.createGroup({ name: "pics", relays: RELAYS, now: T0 });
    const invite = await alice.inviteMembers(g.groupId, [await bob.createKeyPackage({ relays: RELAYS, now: T0 })], T0 + 1);
    const conf = await alice.confirmCommit(invite.id);
    expect((await bob.processEvent(conf.welcomes[0]!, T0 + 2))[0]?.kind).toBe("welcome");

    const image1 = createRng("image-1").bytes(20_000);
    const set = planGroupImageChange(null, alice.group(g.groupId)!.groupData.version, image1);
    const p1 = set.prepared!;
    expect(set.cleanup).toBeNull();
    await new BlossomClient(server().url, { secretKey: p1.upload.secretKey }).upload(p1.blob);
    const c1 = await alice.updateGroupData(g.groupId, p1.fields, T0 + 10);
    await alice.confirmCommit(c1.id);
    const outs = await bob.processEvent(c1.event, T0 + 11);
    expect(outs.find((o) => o.kind === "commit")).toMatchObject({ groupDataChanged: true });

    const seen = bob.group(g.groupId)!.groupData;
    expect(seen.version).toBeGreaterThanOrEqual(2);
    expect(bytesToHex(seen.imageHash!)).toBe(p1.sha256);
    expect(bytesToHex(seen.imageUploadKey!)).toBe(bytesToHex(p1.fields.imageUploadKey!));
    const blob1 = await new BlossomClient(server().url).download(bytesToHex(seen.imageHash!));
    const read1 = decryptGroupImage(seen, blob1);
    expect(read1.scheme).toBe("v2-extract-expand");
    expect(bytesToHex(read1.image)).toBe(bytesToHex(image1));

    // Change: new image uploaded and committed, then the old blob deleted with the old upload key.
    const image2 = createRng("image-2").bytes(9_000);
    const change = planGroupImageChange(seen, seen.version, image2);
    const p2 = change.prepared!;
    await new BlossomClient(server().url, { secretKey: p2.upload.secretKey }).upload(p2.blob);
    const c2 = await alice.updateGroupData(g.groupId, p2.fields, T0 + 20);
    await alice.confirmCommit(c2.id);
    await bob.processEvent(c2.event, T0 + 21);
    const cleaned = await cleanupGroupImage(server().url, change.cleanup!);
    expect(cleaned).toEqual({ deletedBy: p1.upload.pubkey, refusals: [] });
    expect(server().blobs().map((b) => b.sha256)).not.toContain(p1.sha256);
    const seen2 = bob.group(g.groupId)!.groupData;
    const read2 = decryptGroupImage(seen2, await new BlossomClient(server().url).download(bytesToHex(seen2.imageHash!)));
    expect(bytesToHex(read2.image)).toBe(bytesToHex(image2));
  });

  it("a member offline for several epochs catches up in order and decrypts media from each epoch", async () => {
    const [alice, bob] = await Promise.all([engine("cu-alice"), engine("cu-bob")]);
    const g = await alice.createGroup({ name: "catch-up", relays: RELAYS, now: T0 });
    const invite = await alice.inviteMembers(g.groupId, [await bob.createKeyPackage({ relays: RELAYS, now: T0 })], T0 + 1);
    const conf = await alice.confirmCommit(invite.id);
    await bob.processEvent(conf.welcomes[0]!, T0 + 2);

    // While bob is offline: a file per epoch, with a self-update between them (3 epochs).
    const client = new BlossomClient(server().url, { secretKey: secretFor("cu-alice") });
    const timeline: NostrEvent[] = [];
    const files: Uint8Array[] = [];
    for (let i = 0; i < 3; i++) {
      const epoch = (await alice.inspect(g.groupId)).epoch;
      const data = createRng(`cu-${i}`).bytes(1000 + i);
      files.push(data);
      const enc = encryptMedia({ exporterSecret: await mediaExporterAt(alice, g.groupId, epoch), data, mime: "image/png", filename: `f${i}.png` });
      const d = await client.upload(enc.ciphertext);
      timeline.push(await alice.sendMessage(g.groupId, { kind: 9, content: `file ${i}`, tags: [enc.imeta(d.url)] }, T0 + 10 + 10 * i));
      const upd = await alice.selfUpdate(g.groupId, T0 + 15 + 10 * i);
      await alice.confirmCommit(upd.id);
      timeline.push(upd.event);
    }

    // Bob comes back and reads the relay's history in created_at order.
    const received: { epoch: bigint; tag: string[] }[] = [];
    for (const ev of timeline) {
      for (const o of await bob.processEvent(ev, T0 + 100)) {
        if (o.kind === "application") received.push({ epoch: o.epoch, tag: o.rumor.tags.find((t) => t[0] === "imeta")! });
      }
    }
    expect(received.map((r) => r.epoch)).toEqual([1n, 2n, 3n].map((e) => e + received[0]!.epoch - 1n));
    expect((await bob.inspect(g.groupId)).epoch).toBe((await alice.inspect(g.groupId)).epoch);
    for (let i = 0; i < 3; i++) {
      const ref = parseImetaTag(received[i]!.tag);
      const blob = await new BlossomClient(server().url).download(ref.blobSha256!);
      const out = decryptMedia({ exporterSecret: await mediaExporterAt(bob, g.groupId, received[i]!.epoch), blob, imeta: ref });
      expect(bytesToHex(out.data)).toBe(bytesToHex(files[i]!));
    }
  });

  it("R0 groups use MLS-Exporter(\"nostr\",\"nostr\",32) for media (obtained through inspect().exporter)", async () => {
    const [alice, bob] = await Promise.all([engine("r0-alice", "R0"), engine("r0-bob", "R0")]);
    const g = await alice.createGroup({ name: "legacy", relays: RELAYS, now: T0 });
    const invite = await alice.inviteMembers(g.groupId, [await bob.createKeyPackage({ relays: RELAYS, now: T0 })], T0 + 1);
    const conf = await alice.confirmCommit(invite.id);
    expect((await bob.processEvent(conf.welcomes[0]!, T0 + 2))[0]?.kind).toBe("welcome");
    const { label, context, length } = mediaExporterLabel("R0");
    const utf8 = new TextEncoder();
    const aliceSecret = await (await alice.inspect(g.groupId)).exporter(label, utf8.encode(context), length);
    const data = createRng("r0-file").bytes(3000);
    const enc = encryptMedia({ exporterSecret: aliceSecret, data, mime: "image/gif", filename: "old.gif" });
    const d = await new BlossomClient(server().url, { secretKey: secretFor("r0-alice") }).upload(enc.ciphertext);
    const app = application(await bob.processEvent(await alice.sendMessage(g.groupId, { kind: 9, content: "", tags: [enc.imeta(d.url)] }, T0 + 10), T0 + 11));
    const bobSecret = await (await bob.inspect(g.groupId)).exporter(label, utf8.encode(context), length);
    const out = decryptMedia({ exporterSecret: bobSecret, blob: await new BlossomClient(server().url).download(d.sha256), imeta: app.rumor.tags.find((t) => t[0] === "imeta")! });
    expect(bytesToHex(out.data)).toBe(bytesToHex(data));
    // An R0 engine's epochKeys[].mediaExporter is this same R0 exporter (engine follow-up fix; it used to
    // hold the R1 label's value). The R1 media exporter of the same epoch does not open R0 media.
    const bobIns = await bob.inspect(g.groupId);
    expect(bytesToHex(bobIns.epochKeys.find((k) => k.epoch === app.epoch)!.mediaExporter)).toBe(bytesToHex(bobSecret));
    const r1 = await bobIns.exporter("marmot", utf8.encode("encrypted-media"), 32);
    expect(bytesToHex(r1)).not.toBe(bytesToHex(bobSecret));
    expect(() => decryptMedia({ exporterSecret: r1, blob: enc.ciphertext, imeta: enc.imeta(d.url) })).toThrow(/MEDIA_DECRYPT_FAILED/);
  });

  // KNOWN BUG, outside the media code: ts-mls 2.0.0-rc.10 `applyProposals` sets `needsUpdatePath` only for
  // zero proposals or MORE THAN ONE Update/Remove, so a commit removing exactly one member carries no
  // UpdatePath (RFC 9420 §12.4 requires one). The removed member then derives the next epoch itself
  // (commit_secret = 0, init_secret known) and can read media of that epoch. `it.fails` keeps this
  // visible: it turns red once the engine or ts-mls is fixed, and then `.fails` should be removed.
  it.fails("KNOWN BUG (ts-mls rc.10 single-Remove commit without UpdatePath): a removed member cannot decrypt media sent right after her removal", async () => {
    // Setup errors must not count as the expected failure: they end the body early, so `.fails` reports them.
    let setup: { carolKeys: { mediaExporter: Uint8Array }[]; enc: ReturnType<typeof encryptMedia>; url: string };
    try {
      setup = await (async () => {
        const { alice, bob, carol, g } = await groupOfThree("2");
        const removal = await alice.removeMembers(g.groupId, [carol.pubkey], T0 + 20);
        await alice.confirmCommit(removal.id);
        await bob.processEvent(removal.event, T0 + 21);
        await carol.processEvent(removal.event, T0 + 21);
        const epoch2 = (await alice.inspect(g.groupId)).epoch;
        const enc = encryptMedia({ exporterSecret: await mediaExporterAt(alice, g.groupId, epoch2), data: createRng("x").bytes(100), mime: "text/plain", filename: "a.txt" });
        const url = `${server().url}/${bytesToHex(enc.sha256Cipher)}`;
        const carolKeys = (await carol.inspect(g.groupId)).epochKeys;
        if (carolKeys.length === 0) throw new Error("carol kept no epoch keys");
        return { carolKeys, enc, url };
      })();
    } catch (e) {
      console.error("known-bug test setup failed (not the expected failure):", e);
      return;
    }
    const { carolKeys, enc, url } = setup;
    for (const k of carolKeys) {
      expect(() => decryptMedia({ exporterSecret: k.mediaExporter, blob: enc.ciphertext, imeta: enc.imeta(url) })).toThrow(/MEDIA_DECRYPT_FAILED/);
    }
  });
});
