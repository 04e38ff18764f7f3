import { describe, it, expect, beforeEach, afterEach } from "vitest";
import { sha256 } from "@noble/hashes/sha2.js";
import { bytesToHex } from "@noble/hashes/utils.js";
import { createEngine } from "../../src/engine/engine.ts";
import type { MarmotEngine, ProcessOutcome } from "../../src/engine/api.ts";
import { createRng } from "../../src/sim/random.ts";
import { BlossomServer } from "../../src/blossom/server.ts";
import { BlossomClient } from "../../src/blossom/client.ts";
import { attachmentsOf, fetchMedia, mediaSecretForEpoch, sendMedia } from "../../src/blossom/media-transfer.ts";
import { MediaError } from "../../src/engine/mip04-media.ts";

const RELAYS = ["wss://relay.example.test"];
const T0 = 1_767_225_600;
const sk = (name: string) => sha256(new TextEncoder().encode(`media-transfer/${name}`));

async function pair(profile: "R0" | "R1" = "R1"): Promise<{ alice: MarmotEngine; bob: MarmotEngine; groupId: string }> {
  const mk = (n: string) => {
    const rng = createRng(`media-transfer/${profile}/${n}`);
    return createEngine({ secretKey: sk(n), randomBytes: (k) => rng.bytes(k), profile });
  };
  const [alice, bob] = await Promise.all([mk("alice"), mk("bob")]);
  const g = await alice.createGroup({ name: "t", relays: RELAYS, now: T0 });
  const invite = await alice.inviteMembers(g.groupId, [await bob.createKeyPackage({ relays: RELAYS, now: T0 })], T0 + 1);
  const conf = await alice.confirmCommit(invite.id);
  expect((await bob.processEvent(conf.welcomes[0]!, T0 + 2))[0]?.kind).toBe("welcome");
  return { alice, bob, groupId: g.groupId };
}

function app(outs: ProcessOutcome[]): Extract<ProcessOutcome, { kind: "application" }> {
  const a = outs.find((o) => o.kind === "application");
  if (!a) throw new Error(`no application outcome: ${outs.map((o) => o.kind).join(",")}`);
  return a as Extract<ProcessOutcome, { kind: "application" }>;
}

async function codeOf(p: Promise<unknown>): Promise<string | undefined> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(MediaError);
    return (e as MediaError).code;
  }
  return undefined;
}

describe("media transfer helpers (engine + Blossom)", () => {
  let a: BlossomServer;
  let b: BlossomServer;
  beforeEach(async () => {
    a = new BlossomServer();
    b = new BlossomServer();
    await Promise.all([a.start(), b.start()]);
  });
  afterEach(async () => {
    await Promise.all([a.stop(), b.stop()]);
  });

  it("sends two attachments, receives and decrypts them; falls back to a mirror when the first server corrupts or loses the blob", async () => {
    const { alice, bob, groupId } = await pair();
    const files = [
      { data: createRng("f1").bytes(5000), mime: "image/png", filename: "one.png", dim: { width: 10, height: 20 } },
      { data: createRng("f2").bytes(70), mime: "Text/Plain; charset=utf-8", filename: "two.txt" },
    ];
    const sent = await sendMedia({ engine: alice, groupId, blossom: new BlossomClient(a.url, { secretKey: sk("alice") }), files, content: "two files", now: T0 + 10 });
    expect(sent.attachments.map((x) => x.descriptor.url.startsWith(a.url))).toEqual([true, true]);

    const msg = app(await bob.processEvent(sent.event, T0 + 11));
    expect(msg.rumor.content).toBe("two files");
    const { ok, rejected } = attachmentsOf(msg.rumor);
    expect(rejected).toEqual([]);
    expect(ok.map((x) => [x.filename, x.mime])).toEqual([
      ["one.png", "image/png"],
      ["two.txt", "text/plain"],
    ]);
    expect(ok[0]!.dim).toEqual({ width: 10, height: 20 });
    for (let i = 0; i < 2; i++) {
      const got = await fetchMedia({ engine: bob, groupId, epoch: msg.epoch, imeta: ok[i]! });
      expect(got.server).toBe(a.url);
      expect(bytesToHex(got.data)).toBe(bytesToHex(files[i]!.data));
    }

    // Mirror the first blob to server b, then break it on a.
    const cipher = await new BlossomClient(a.url).download(ok[0]!.blobSha256!);
    await new BlossomClient(b.url, { secretKey: sk("bob") }).upload(cipher);
    a.setFaults({ corrupt: "all" });
    expect(await codeOf(fetchMedia({ engine: bob, groupId, epoch: msg.epoch, imeta: ok[0]! }))).toBe("MEDIA_CIPHERTEXT_HASH_MISMATCH");
    const viaB = await fetchMedia({ engine: bob, groupId, epoch: msg.epoch, imeta: ok[0]!, fallbackServers: [b.url] });
    expect(viaB.server).toBe(b.url);
    expect(bytesToHex(viaB.data)).toBe(bytesToHex(files[0]!.data));
    a.setFaults({ corrupt: [], missing: "all" });
    expect(await codeOf(fetchMedia({ engine: bob, groupId, epoch: msg.epoch, imeta: ok[1]! }))).toBe("MEDIA_FETCH_FAILED");
    expect((await fetchMedia({ engine: bob, groupId, epoch: msg.epoch, imeta: ok[0]!, fallbackServers: [b.url] })).server).toBe(b.url);
  });

  it("reports malformed attachments, unknown epochs and wrong epochs with typed errors", async () => {
    const { alice, bob, groupId } = await pair();
    const good = await sendMedia({ engine: alice, groupId, blossom: new BlossomClient(a.url, { secretKey: sk("alice") }), files: [{ data: new Uint8Array(10), mime: "image/png", filename: "z.png" }], now: T0 + 10 });
    const tag = good.attachments[0]!.imeta;
    const bad = tag.map((e) => (e.startsWith("v ") ? "v mip04-v1" : e));
    const ev = await alice.sendMessage(groupId, { kind: 9, content: "", tags: [tag, bad, ["p", "ab".repeat(32)]] }, T0 + 12);
    const msg = app(await bob.processEvent(ev, T0 + 13));
    const { ok, rejected } = attachmentsOf(msg.rumor);
    expect(ok.length).toBe(1);
    expect(rejected.map((r) => r.error.code)).toEqual(["IMETA_VERSION_DEPRECATED"]);
    expect(await codeOf(mediaSecretForEpoch(bob, groupId, 999n))).toBe("MEDIA_EPOCH_UNAVAILABLE");

    // A new epoch: the old message still decrypts with its own epoch, not with the new one.
    const upd = await alice.selfUpdate(groupId, T0 + 20);
    await alice.confirmCommit(upd.id);
    await bob.processEvent(upd.event, T0 + 21);
    const newEpoch = (await bob.inspect(groupId)).epoch;
    expect(newEpoch).toBeGreaterThan(msg.epoch);
    expect((await fetchMedia({ engine: bob, groupId, epoch: msg.epoch, imeta: ok[0]! })).data.length).toBe(10);
    expect(await codeOf(fetchMedia({ engine: bob, groupId, epoch: newEpoch, imeta: ok[0]! }))).toBe("MEDIA_DECRYPT_FAILED");
  });

  it("R0 engines send and fetch with the legacy exporter at the current epoch only", async () => {
    const { alice, bob, groupId } = await pair("R0");
    const data = createRng("r0").bytes(900);
    const sent = await sendMedia({ engine: alice, groupId, blossom: new BlossomClient(a.url, { secretKey: sk("alice") }), files: [{ data, mime: "image/webp", filename: "w.webp" }], now: T0 + 10 });
    const msg = app(await bob.processEvent(sent.event, T0 + 11));
    const got = await fetchMedia({ engine: bob, groupId, epoch: msg.epoch, imeta: attachmentsOf(msg.rumor).ok[0]! });
    expect(bytesToHex(got.data)).toBe(bytesToHex(data));
    expect(await codeOf(mediaSecretForEpoch(bob, groupId, msg.epoch - 1n))).toBe("MEDIA_EPOCH_UNAVAILABLE");
  });
});
