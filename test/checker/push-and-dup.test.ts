import { describe, expect, it } from "vitest";
import { finalizeEvent, generateSecretKey, getEventHash, getPublicKey } from "nostr-tools/pure";
import * as nip44 from "nostr-tools/nip44";
import { judge, type Keyring, type Observation } from "../../src/checkers/compliance/index.ts";
import type { CaptureRecord } from "../../src/capture.ts";
import { clone, judgeBoth, loadFixture, resign, verdictOf } from "./helpers.ts";

const fx = loadFixture("engine-r1");
const base = { records: fx.records, keyring: fx.keyring };
const app = fx.keyring.observations.find((o) => o.kind === "application") as Extract<Observation, { kind: "application" }>;

function inner(kind: number, tags: string[][]): Observation {
  const r: Record<string, unknown> = { ...(clone(app.rumor) as Record<string, unknown>), kind, tags, content: "" };
  r.id = getEventHash(r as never);
  return { ...app, eventId: "7".repeat(64), rumor: r };
}
const token = (n: number): string => Buffer.alloc(n, 1).toString("base64");
const server = generateSecretKey();

/** A 446 push trigger: rumor by an ephemeral key, sealed by `sealSk`, gift-wrapped to the server. */
function pushWrap(rumorTags: string[][], content: string, rumorSk: Uint8Array, sealSk: Uint8Array = rumorSk): CaptureRecord {
  const rumor: Record<string, unknown> = { kind: 446, pubkey: getPublicKey(rumorSk), created_at: 1_780_000_000, tags: rumorTags, content };
  rumor.id = getEventHash(rumor as never);
  const sp = getPublicKey(server);
  const seal = finalizeEvent({ kind: 13, tags: [], created_at: 1_780_000_000, content: nip44.v2.encrypt(JSON.stringify(rumor), nip44.v2.utils.getConversationKey(sealSk, sp)) }, sealSk);
  const eph = generateSecretKey();
  return { event: finalizeEvent({ kind: 1059, tags: [["p", sp]], created_at: 1_780_000_000, content: nip44.v2.encrypt(JSON.stringify(seal), nip44.v2.utils.getConversationKey(eph, sp)) }, eph) };
}
const withServer: Keyring = { ...fx.keyring, recipientSecretKeys: [...fx.keyring.recipientSecretKeys, Buffer.from(server).toString("hex")] };

describe("MIP-05 push rules", () => {
  it("inner 447/448: token sizes (PN-02), 448 shape (PN-04), no sig (PN-01)", async () => {
    const good448 = inner(448, [["e", "a".repeat(64)], ["token", token(1084), "b".repeat(64), "wss://r.example", "0"]]);
    const ok = await judge(fx.records, { profile: "R1", keyring: { ...fx.keyring, observations: [...fx.keyring.observations, good448] } });
    for (const id of ["MIP05-PN-01", "MIP05-PN-02", "MIP05-PN-04"]) expect(verdictOf(ok, id), id).toBe("pass");
    const short = inner(447, [["token", token(280), "b".repeat(64), "wss://r.example"]]);
    expect((await judgeBoth(base, { records: fx.records, keyring: { ...fx.keyring, observations: [...fx.keyring.observations, short] } }, { profile: "R1" })).added).toEqual(["MIP05-PN-02"]);
    const noE = inner(448, [["token", token(1084), "b".repeat(64), "wss://r.example"]]);
    expect((await judgeBoth(base, { records: fx.records, keyring: { ...fx.keyring, observations: [...fx.keyring.observations, noE] } }, { profile: "R1" })).added).toEqual(["MIP05-PN-04"]);
    const outer = resign({ kind: 447, tags: [], content: "", created_at: 1_780_000_000 });
    expect((await judgeBoth(base, { records: [...fx.records, { event: outer }], keyring: fx.keyring }, { profile: "R1" })).added).toEqual(["MIP05-PN-01"]);
  });

  it("446 trigger: ephemeral rumor key sealing itself (PN-03) and R1 tags/chunks (PN-06)", async () => {
    const eph = generateSecretKey();
    const good = pushWrap([["v", "mip05-v1"], ["encoding", "base64"]], token(1084 * 2), eph);
    const ok = await judge([...fx.records, good], { profile: "R1", keyring: withServer });
    expect(verdictOf(ok, "MIP05-PN-03")).toBe("pass");
    expect(verdictOf(ok, "MIP05-PN-06")).toBe("pass");
    const otherSealer = pushWrap([["v", "mip05-v1"], ["encoding", "base64"]], token(1084), eph, generateSecretKey());
    expect((await judgeBoth({ records: fx.records, keyring: withServer }, { records: [...fx.records, otherSealer], keyring: withServer }, { profile: "R1" })).added).toEqual(["MIP05-PN-03"]);
    const badChunks = pushWrap([["v", "mip05-v1"], ["encoding", "base64"]], token(1000), eph);
    expect((await judgeBoth({ records: fx.records, keyring: withServer }, { records: [...fx.records, badChunks], keyring: withServer }, { profile: "R1" })).added).toEqual(["MIP05-PN-06"]);
  });
});

describe("CORE-DUP-01 (R2)", () => {
  it("the same MLS bytes in two 445s applied twice by one agent fail CORE-DUP-01", async () => {
    const orig = fx.records.find((r) => r.event.id === app.eventId) as CaptureRecord;
    const dup = resign({ ...clone(orig.event), created_at: orig.event.created_at + 1 });
    const records = [...fx.records, { ...orig, event: dup }];
    const once = await judge(records, { profile: "R2", keyring: fx.keyring });
    expect(verdictOf(once, "CORE-DUP-01")).toBe("pass");
    const twice: Keyring = { ...fx.keyring, observations: [...fx.keyring.observations, { ...app, eventId: dup.id }] };
    const r = await judge(records, { profile: "R2", keyring: twice });
    expect(verdictOf(r, "CORE-DUP-01")).toBe("fail");
  });
});

describe("CORE-CONF-01 (R2)", () => {
  it("a commitment that is SHA256(domain || 0x00 || exporter) passes; any other value fails", async () => {
    const { createHash } = await import("node:crypto");
    const exporter = "11".repeat(32);
    const good = createHash("sha256").update(Buffer.concat([Buffer.from("marmot-convergence-conformance-v1"), Buffer.from([0]), Buffer.from(exporter, "hex")])).digest("hex");
    const st = fx.keyring.observations.find((o) => o.kind === "group-state") as Extract<Observation, { kind: "group-state" }>;
    const obs = (commitment: string): Keyring => ({ ...fx.keyring, observations: [...fx.keyring.observations, { kind: "group-state", nostrGroupId: st.nostrGroupId, epoch: 50, epochCommitment: commitment, conformanceExporter: exporter }] });
    expect(verdictOf(await judge(fx.records, { profile: "R2", keyring: obs(good) }), "CORE-CONF-01")).toBe("pass");
    // The raw exporter itself (the secret the spec says never to log) is not the commitment.
    expect(verdictOf(await judge(fx.records, { profile: "R2", keyring: obs(exporter) }), "CORE-CONF-01")).toBe("fail");
  });
});
