/**
 * MIP04-MD-03..06 (encrypted media), MIP01-IMG-01/02 (group image), MIP00-CR-01 (credential
 * identity) and MIP02-WL-15 (duplicate-group Welcome): for each, a passing input and a violating one,
 * built on the committed engine fixtures with real MIP-04 / MIP-01 crypto from the engine modules.
 */
import { describe, expect, it } from "vitest";
import { chacha20poly1305 } from "@noble/ciphers/chacha.js";
import { finalizeEvent, generateSecretKey, getEventHash } from "nostr-tools/pure";
import { createHash } from "node:crypto";
import type { CaptureRecord } from "../../src/capture.ts";
import { judge, type Keyring, type Observation } from "../../src/checkers/compliance/index.ts";
import { decodeGroupData, encodeGroupData } from "../../src/engine/mip01-group-data.ts";
import { prepareGroupImage } from "../../src/engine/mip01-group-image.ts";
import { deriveMediaKey, encryptMedia, mediaAad, MIP04_VERSION } from "../../src/engine/mip04-media.ts";
import { createRng } from "../../src/sim/random.ts";
import { clone, findingOf, judgeBoth, loadFixture, verdictOf, type Fixture } from "./helpers.ts";

type AppObs = Extract<Observation, { kind: "application" }>;
const rng = createRng("checker-media-tests");
const hex = (b: Uint8Array): string => Buffer.from(b).toString("hex");
const b64 = (b: Uint8Array): string => Buffer.from(b).toString("base64");
const sha = (b: Uint8Array): Uint8Array => new Uint8Array(createHash("sha256").update(b).digest());

interface MediaCase {
  keyring: Keyring;
  base: { records: CaptureRecord[]; keyring: Keyring };
}

/**
 * Attach one encrypted file to the first application rumor of the fixture: the rumor gets the imeta
 * (re-hashed id), the epoch's key entry gets a media exporter (R1) and a media observation carries
 * the blob. `make` builds the blob and imeta fields so a test can break one step.
 */
function mediaCase(
  fx: Fixture,
  make: (exporter: Uint8Array) => { blob: Uint8Array; url: string; imeta: string[] },
  opts: { withBlob?: boolean; r0?: boolean } = {},
): MediaCase {
  const app = fx.keyring.observations.find((o) => o.kind === "application" && (o.rumor as { kind?: number }).kind === 9) as AppObs;
  const keyIdx = fx.keyring.groupEventKeys.findIndex((k) => k.nostrGroupId === app.nostrGroupId && k.epoch === app.epoch);
  expect(keyIdx).toBeGreaterThanOrEqual(0);
  const groupEventKeys = clone(fx.keyring.groupEventKeys);
  const entry = groupEventKeys[keyIdx] as (typeof groupEventKeys)[number];
  // R0: the media exporter is the legacy exporter secret, which is the R0 keyring's `key`.
  const exporter = opts.r0 ? new Uint8Array(Buffer.from(entry.key, "hex")) : rng.bytes(32);
  if (!opts.r0) entry.mediaExporter = hex(exporter);
  const { blob, url, imeta } = make(exporter);
  const rumor = clone(app.rumor) as Record<string, unknown>;
  rumor.tags = [...(rumor.tags as string[][]), imeta];
  rumor.id = getEventHash(rumor as never);
  const obs = fx.keyring.observations.map((o) => (o === app ? { ...app, rumor } : o));
  const media: Observation = { kind: "media", eventId: app.eventId, url, ...(opts.withBlob === false ? {} : { blob: b64(blob) }) };
  // Baseline: same rumor with its imeta, no media observation (blob rules not applicable).
  const baseKeyring = { ...fx.keyring, groupEventKeys, observations: obs };
  return { keyring: { ...baseKeyring, observations: [...obs, media] }, base: { records: fx.records, keyring: baseKeyring } };
}

const DATA = new TextEncoder().encode("a small test picture, not really a PNG");

function goodMedia(exporter: Uint8Array): { blob: Uint8Array; url: string; imeta: string[] } {
  const enc = encryptMedia({ exporterSecret: exporter, data: DATA, mime: "image/png", filename: "pic.png", randomBytes: (n) => rng.bytes(n) });
  const url = `https://blossom.example/${hex(enc.sha256Cipher)}.png`;
  return { blob: enc.ciphertext, url, imeta: enc.imeta(url) };
}

/** Encrypt by hand so one ingredient can be wrong. */
function craftedMedia(exporter: Uint8Array, o: { kdf?: "expand" | "extract-expand"; aad?: Uint8Array; claimedPlain?: Uint8Array; wrongAddress?: boolean }) {
  const nonce = rng.bytes(12);
  const x = sha(o.claimedPlain ?? DATA);
  const key = deriveMediaKey(exporter, x, "image/png", "pic.png", o.kdf ?? "expand");
  const blob = chacha20poly1305(key, nonce, o.aad ?? mediaAad(x, "image/png", "pic.png")).encrypt(DATA);
  const address = o.wrongAddress ? hex(sha(new Uint8Array([1, 2, 3]))) : hex(sha(blob));
  const url = `https://blossom.example/${address}.png`;
  const imeta = ["imeta", `url ${url}`, "m image/png", "filename pic.png", `x ${hex(x)}`, `n ${hex(nonce)}`, `v ${MIP04_VERSION}`];
  return { blob, url, imeta };
}

describe("encrypted media (MIP04-MD-03..06)", () => {
  const fx = loadFixture("engine-r1");

  it("the engine's own picture in the R1 fixture passes MD-03, MD-05 and MD-06 end to end", async () => {
    const r = await judge(fx.records, { profile: "R1", keyring: fx.keyring });
    expect(fx.keyring.observations.some((o) => o.kind === "media" && o.blob !== undefined)).toBe(true);
    for (const id of ["MIP04-MD-03", "MIP04-MD-05", "MIP04-MD-06"]) expect(verdictOf(r, id), id).toBe("pass");
  });

  it("a blob made with the engine's encryptMedia passes MD-03, MD-05 and MD-06 and adds no failure", async () => {
    const c = mediaCase(fx, goodMedia);
    const { after, added } = await judgeBoth(c.base, { records: fx.records, keyring: c.keyring }, { profile: "R1" });
    expect(added).toEqual([]);
    for (const id of ["MIP04-MD-03", "MIP04-MD-05", "MIP04-MD-06", "MIP04-MD-01"]) expect(verdictOf(after, id), id).toBe("pass");
  });

  it("MIP04-MD-03: a file key from HKDF-Extract+Expand (pre-0.7.1 MDK) fails exactly MD-03", async () => {
    const c = mediaCase(fx, (e) => craftedMedia(e, { kdf: "extract-expand" }));
    const { after, added } = await judgeBoth(c.base, { records: fx.records, keyring: c.keyring }, { profile: "R1" });
    expect(added).toEqual(["MIP04-MD-03"]);
    expect(verdictOf(after, "MIP04-MD-05")).toBe("pass");
  });

  it("MIP04-MD-03: a blob under another epoch's exporter fails exactly MD-03", async () => {
    const c = mediaCase(fx, () => goodMedia(rng.bytes(32)));
    expect((await judgeBoth(c.base, { records: fx.records, keyring: c.keyring }, { profile: "R1" })).added).toEqual(["MIP04-MD-03"]);
  });

  it("MIP04-MD-05: the right key with an empty AAD fails exactly MD-05", async () => {
    const c = mediaCase(fx, (e) => craftedMedia(e, { aad: new Uint8Array(0) }));
    const { after, added } = await judgeBoth(c.base, { records: fx.records, keyring: c.keyring }, { profile: "R1" });
    expect(added).toEqual(["MIP04-MD-05"]);
    expect(verdictOf(after, "MIP04-MD-03")).toBe("pass");
  });

  it("MIP04-MD-06: a blob whose hash is not its Blossom address fails exactly MD-06", async () => {
    const c = mediaCase(fx, (e) => craftedMedia(e, { wrongAddress: true }));
    expect((await judgeBoth(c.base, { records: fx.records, keyring: c.keyring }, { profile: "R1" })).added).toEqual(["MIP04-MD-06"]);
  });

  it("MIP04-MD-06: a file whose plaintext does not hash to x (x used consistently in key and AAD) fails exactly MD-06", async () => {
    const c = mediaCase(fx, (e) => craftedMedia(e, { claimedPlain: new TextEncoder().encode("another file") }));
    const { after, added } = await judgeBoth(c.base, { records: fx.records, keyring: c.keyring }, { profile: "R1" });
    expect(added).toEqual(["MIP04-MD-06"]);
    expect(findingOf(after, "MIP04-MD-06")?.message).toMatch(/not x/);
  });

  it("without the blob bytes MD-03 and MD-05 are not checkable, and measured hashes still judge MD-06", async () => {
    const c = mediaCase(fx, goodMedia, { withBlob: false });
    const r = await judge(fx.records, { profile: "R1", keyring: c.keyring });
    expect(verdictOf(r, "MIP04-MD-03")).toBe("not-checkable-without-keys");
    expect(verdictOf(r, "MIP04-MD-05")).toBe("not-checkable-without-keys");
    const media = [...c.keyring.observations].reverse().find((o) => o.kind === "media") as Extract<Observation, { kind: "media" }>;
    const bad = { ...c.keyring, observations: [...c.keyring.observations.filter((o) => o !== media), { ...media, plainSha256: "ab".repeat(32) }] };
    const r2 = await judge(fx.records, { profile: "R1", keyring: bad });
    expect(verdictOf(r2, "MIP04-MD-06")).toBe("fail");
  });

  it("MIP04-MD-04 (R0): the legacy exporter opens the blob; another exporter fails exactly MD-04", async () => {
    const r0 = loadFixture("engine-r0");
    const good = mediaCase(r0, goodMedia, { r0: true });
    const g = await judgeBoth(good.base, { records: r0.records, keyring: good.keyring }, { profile: "R0" });
    expect(g.added).toEqual([]);
    expect(verdictOf(g.after, "MIP04-MD-04")).toBe("pass");
    const bad = mediaCase(r0, () => goodMedia(rng.bytes(32)), { r0: true });
    expect((await judgeBoth(bad.base, { records: r0.records, keyring: bad.keyring }, { profile: "R0" })).added).toEqual(["MIP04-MD-04"]);
  });
});

describe("group image (MIP01-IMG-01/02)", () => {
  const fx = loadFixture("engine-r1");
  const state = fx.keyring.observations.find((o) => o.kind === "group-state" && o.groupData) as Extract<Observation, { kind: "group-state" }>;
  const image = new TextEncoder().encode("group avatar bytes");

  function imageCase(o: { v1Crypto?: boolean; flipBlob?: boolean; signer?: Uint8Array; inCapture?: boolean }) {
    const prep = prepareGroupImage({ image, version: 2, randomBytes: (n) => rng.bytes(n) });
    let blob = prep.blob;
    let fields = prep.fields;
    if (o.v1Crypto) {
      // marmot-ts 0.5.1: version-2 group data, but the blob encrypted with image_key directly.
      blob = chacha20poly1305(prep.fields.imageKey, prep.fields.imageNonce).encrypt(image);
      fields = { ...fields, imageHash: sha(blob) };
    }
    if (o.flipBlob) blob = Uint8Array.from(blob, (b, i) => (i === 0 ? b ^ 1 : b));
    const data = { ...decodeGroupData(new Uint8Array(Buffer.from(state.groupData as string, "hex"))), ...fields };
    const auth = finalizeEvent({ kind: 24242, created_at: 1_800_000_000, tags: [["t", "upload"], ["x", hex(sha(blob))], ["expiration", "1800000600"]], content: "Upload group image" }, o.signer ?? prep.upload.secretKey);
    const obs: Observation = {
      kind: "group-image",
      nostrGroupId: state.nostrGroupId,
      epoch: state.epoch,
      groupData: hex(encodeGroupData(data)),
      blob: b64(blob),
      ...(o.inCapture === false ? { uploadPubkey: auth.pubkey } : { uploadAuthEventId: auth.id }),
    };
    const records = o.inCapture === false ? fx.records : [...fx.records, { event: auth, relay: "ws://127.0.0.1:1" } as CaptureRecord];
    return { records, keyring: { ...fx.keyring, observations: [...fx.keyring.observations, obs] } };
  }

  it("an image made by prepareGroupImage passes IMG-01 and IMG-02 (auth event in the capture)", async () => {
    const c = imageCase({});
    const r = await judge(c.records, { profile: "R1", keyring: c.keyring });
    expect(verdictOf(r, "MIP01-IMG-01")).toBe("pass");
    expect(verdictOf(r, "MIP01-IMG-02")).toBe("pass");
  });

  it("MIP01-IMG-01: a v2 image encrypted with the v1 direct key fails exactly IMG-01", async () => {
    const c = imageCase({ v1Crypto: true, inCapture: false });
    expect((await judgeBoth({ records: fx.records, keyring: fx.keyring }, c, { profile: "R1" })).added).toEqual(["MIP01-IMG-01"]);
  });

  it("MIP01-IMG-01: a blob that is not image_hash fails exactly IMG-01", async () => {
    const c = imageCase({ flipBlob: true, inCapture: false });
    expect((await judgeBoth({ records: fx.records, keyring: fx.keyring }, c, { profile: "R1" })).added).toEqual(["MIP01-IMG-01"]);
  });

  it("MIP01-IMG-02: an upload auth event signed by another key fails exactly IMG-02", async () => {
    const c = imageCase({ signer: generateSecretKey(), inCapture: false });
    expect((await judgeBoth({ records: fx.records, keyring: fx.keyring }, c, { profile: "R1" })).added).toEqual(["MIP01-IMG-02"]);
  });
});

describe("credential identity (MIP00-CR-01)", () => {
  const fx = loadFixture("engine-r1");
  const gid = fx.keyring.groupEventKeys[0]?.nostrGroupId as string;
  const [a, b, c] = ["aa", "bb", "cc"].map((x) => x.repeat(32)) as [string, string, string];
  const st = (epoch: number, leaves: Record<string, string>): Observation => ({ kind: "group-state", nostrGroupId: gid, epoch, leaves, agent: "observer" });
  const withObs = (extra: Observation[]): Keyring => ({ ...fx.keyring, observations: [...fx.keyring.observations, ...extra] });

  it("identities that stay on their leaves, or a leaf reused after a removal, pass", async () => {
    const removal: Observation = { kind: "commit", eventId: "c".repeat(64), nostrGroupId: gid, epoch: 2, proposals: [{ type: "remove", target: b }] };
    const r = await judge(fx.records, { profile: "R1", keyring: withObs([st(1, { 0: a, 1: b }), st(2, { 0: a, 1: b }), removal, st(3, { 0: a, 1: c })]) });
    expect(verdictOf(r, "MIP00-CR-01")).toBe("pass");
  });

  it("MIP00-CR-01: a leaf whose identity changes without a removal fails exactly CR-01", async () => {
    const k = withObs([st(1, { 0: a, 1: b }), st(2, { 0: a, 1: c })]);
    const { after, added } = await judgeBoth({ records: fx.records, keyring: fx.keyring }, { records: fx.records, keyring: k }, { profile: "R1" });
    expect(added).toEqual(["MIP00-CR-01"]);
    expect(findingOf(after, "MIP00-CR-01")?.message).toMatch(/leaf 1/);
  });

  it("members' views merged per group (no agent): a race's losing view is not a violation, a changed identity in every view is", async () => {
    const view = (epoch: number, leaves: Record<string, string>): Observation => ({ kind: "group-state", nostrGroupId: gid, epoch, leaves });
    const d = "dd".repeat(32);
    // at epoch 2 one member briefly held a losing branch that put d on leaf 2; epoch 3 follows the winner (c)
    const race = withObs([view(1, { 0: a, 1: b }), view(2, { 0: a, 1: b, 2: c }), view(2, { 0: a, 1: b, 2: d }), view(3, { 0: a, 1: b, 2: c })]);
    expect(verdictOf(await judge(fx.records, { profile: "R1", keyring: race }), "MIP00-CR-01")).toBe("pass");
    const changed = withObs([view(1, { 0: a, 1: b }), view(2, { 0: a, 1: b, 2: c }), view(2, { 0: a, 1: b, 2: d }), view(3, { 0: a, 1: d, 2: c })]);
    const { added } = await judgeBoth({ records: fx.records, keyring: fx.keyring }, { records: fx.records, keyring: changed }, { profile: "R1" });
    expect(added).toEqual(["MIP00-CR-01"]);
  });
});

describe("duplicate-group Welcome (MIP02-WL-15, R2)", () => {
  const fx = loadFixture("engine-r1");
  const welcome = fx.keyring.observations.find((o) => o.kind === "welcome" && o.joined === true) as Extract<Observation, { kind: "welcome" }>;
  const withDup = (joined: boolean): Keyring => ({
    ...fx.keyring,
    observations: [...fx.keyring.observations.filter((o) => o !== welcome), { ...welcome, joined, duplicateGroup: true }],
  });
  const upToWelcome = fx.records.slice(0, fx.records.findIndex((r) => r.event.id === welcome.eventId) + 1);

  it("a refused duplicate Welcome whose KeyPackage is left alone passes", async () => {
    const r = await judge(upToWelcome, { profile: "R2", keyring: withDup(false) });
    expect(verdictOf(r, "MIP02-WL-15")).toBe("pass");
  });

  it("MIP02-WL-15: accepting a Welcome for a retained group fails exactly WL-15", async () => {
    expect((await judgeBoth({ records: upToWelcome, keyring: fx.keyring }, { records: upToWelcome, keyring: withDup(true) }, { profile: "R2" })).added).toEqual(["MIP02-WL-15"]);
  });

  it("MIP02-WL-15: rotating the KeyPackage of a refused duplicate Welcome fails WL-15 and names the rotation", async () => {
    const r = await judge(fx.records, { profile: "R2", keyring: withDup(false) });
    const f = findingOf(r, "MIP02-WL-15");
    expect(f?.verdict).toBe("fail");
    expect(f?.eventIds.length).toBeGreaterThan(1);
  });
});
