import { describe, expect, it } from "vitest";
import { getEventHash } from "nostr-tools/pure";
import { judge, type Keyring, type Observation } from "../../src/checkers/compliance/index.ts";
import { clone, judgeBoth, loadFixture, verdictOf } from "./helpers.ts";

const fx = loadFixture("engine-r1");
const base = { records: fx.records, keyring: fx.keyring };
const app = fx.keyring.observations.find((o) => o.kind === "application") as Extract<Observation, { kind: "application" }>;
const state = fx.keyring.observations.find((o) => o.kind === "group-state" && o.groupData) as Extract<Observation, { kind: "group-state" }>;
const alice = state.admins?.[0] as string;
const bob = fx.keyring.observations.find((o) => o.kind === "application" && o.sender !== alice)?.kind === "application" ? (fx.keyring.observations.find((o) => o.kind === "application" && (o as { sender: string }).sender !== alice) as { sender: string }).sender : "";

function withObservations(extra: Observation[], replaceApp?: Observation): Keyring {
  const obs = fx.keyring.observations.map((o) => (replaceApp && o === app ? replaceApp : o));
  return { ...fx.keyring, observations: [...obs, ...extra] };
}

async function added(keyring: Keyring, profile: "R1" | "R2" | "R0" = "R1"): Promise<string[]> {
  return (await judgeBoth(base, { records: fx.records, keyring }, { profile })).added;
}

function rumorWith(edit: (r: Record<string, unknown>) => void, rehash = true): Observation {
  const r = clone(app.rumor) as Record<string, unknown>;
  edit(r);
  if (rehash) r.id = getEventHash(r as never);
  return { ...app, rumor: r };
}

// MLS varint vector and v2/v3 group data layout, written here to craft bad bytes.
const vec = (b: Uint8Array): Buffer => {
  const n = b.length;
  const prefix = n < 0x40 ? Buffer.from([n]) : Buffer.from([0x40 | (n >> 8), n & 0xff]);
  return Buffer.concat([prefix, Buffer.from(b)]);
};
function groupData(p: { version?: number; admins?: Buffer; relays?: string[]; imageHash?: Buffer; imageNonce?: Buffer; secs?: Buffer; name?: Buffer }): string {
  const version = p.version ?? 2;
  const parts = [
    Buffer.from([version >> 8, version & 0xff]),
    Buffer.alloc(32, 7),
    vec(p.name ?? Buffer.from("g")),
    vec(Buffer.from("")),
    vec(p.admins ?? Buffer.from(alice, "hex")),
    vec(Buffer.concat((p.relays ?? ["wss://relay.example"]).map((u) => vec(Buffer.from(u))))),
    vec(p.imageHash ?? Buffer.alloc(0)),
    vec(Buffer.alloc(0)),
    vec(p.imageNonce ?? Buffer.alloc(0)),
    vec(Buffer.alloc(0)),
  ];
  if (version >= 3) parts.push(vec(p.secs ?? Buffer.alloc(0)));
  return Buffer.concat(parts).toString("hex");
}
const gs = (groupDataHex: string): Observation => ({ kind: "group-state", nostrGroupId: state.nostrGroupId, epoch: 99, groupData: groupDataHex });

describe("inner application rumor rules (observations)", () => {
  it("engine rumors pass APP-01/02/03/05", async () => {
    const r = await judge(fx.records, { profile: "R1", keyring: fx.keyring });
    for (const id of ["MIP03-APP-01", "MIP03-APP-02", "MIP03-APP-03", "MIP03-APP-05"]) expect(verdictOf(r, id), id).toBe("pass");
  });
  it("MIP03-APP-01: a rumor with sig fails APP-01", async () => {
    expect(await added(withObservations([], rumorWith((r) => (r.sig = "00".repeat(64)), false)))).toEqual(["MIP03-APP-01"]);
  });
  it("MIP03-APP-02: a spoofed inner author fails APP-02", async () => {
    expect(await added(withObservations([], rumorWith((r) => (r.pubkey = "ab".repeat(32)))))).toEqual(["MIP03-APP-02"]);
  });
  it("MIP03-APP-03: a rumor id that is not its hash fails APP-03", async () => {
    expect(await added(withObservations([], rumorWith((r) => (r.id = "00".repeat(32)), false)))).toEqual(["MIP03-APP-03"]);
  });
  it("MIP03-APP-05: an h tag in the rumor fails APP-05", async () => {
    expect(await added(withObservations([], rumorWith((r) => (r.tags = [["h", state.nostrGroupId]]))))).toEqual(["MIP03-APP-05"]);
  });
  it("MIP03-APP-04 (R2): an extra member fails APP-04", async () => {
    const k = withObservations([], rumorWith((r) => (r.extra = 1)));
    expect((await added(k, "R2")).filter((x) => x.startsWith("MIP03-APP"))).toEqual(["MIP03-APP-04"]);
  });
  it("MIP04-MD-01/02/08: imeta without n, with mip04-v1, or a non-canonical MIME", async () => {
    const good = ["imeta", "url https://blossom.example/" + "a".repeat(64), "m image/png", "filename a.png", `x ${"a".repeat(64)}`, `n ${"b".repeat(24)}`, "v mip04-v2"];
    const ok = await judge(fx.records, { profile: "R1", keyring: withObservations([], rumorWith((r) => (r.tags = [good]))) });
    for (const id of ["MIP04-MD-01", "MIP04-MD-02", "MIP04-MD-08"]) expect(verdictOf(ok, id), id).toBe("pass");
    expect(await added(withObservations([], rumorWith((r) => (r.tags = [good.map((e) => (e === "m image/png" ? "m Image/PNG" : e))]))))).toEqual(["MIP04-MD-08"]);
    expect(await added(withObservations([], rumorWith((r) => (r.tags = [good.map((e) => (e === "v mip04-v2" ? "v mip04-v1" : e))]))))).toEqual(["MIP04-MD-01", "MIP04-MD-02"]);
  });
});

describe("commit authorisation rules (observations)", () => {
  const commit = (p: Partial<Extract<Observation, { kind: "commit" }>>): Observation => ({ kind: "commit", eventId: "c".repeat(64), decision: "applied", ...p });
  it("MIP03-CM-01: a non-admin commit removing itself is accepted -> CM-01", async () => {
    expect(await added(withObservations([commit({ committer: bob, committerIsAdmin: false, proposals: [{ type: "remove", target: bob }] })]))).toEqual(["MIP03-CM-01"]);
  });
  it("MIP03-CM-02: a non-admin SelfRemove-only commit that was rejected -> CM-02", async () => {
    expect(await added(withObservations([commit({ committer: bob, committerIsAdmin: false, proposals: [{ type: "self_remove", sender: "d".repeat(64) }], decision: "rejected" })]))).toEqual(["MIP03-CM-02"]);
  });
  it("MIP03-CM-03: a SelfRemove from an admin -> CM-03", async () => {
    expect(await added(withObservations([{ kind: "proposal", eventId: "e".repeat(64), sender: alice, senderIsAdmin: true, proposal: "self_remove" }]))).toEqual(["MIP03-CM-03"]);
  });
  it("MIP03-CM-04: a committer committing its own SelfRemove -> CM-04", async () => {
    expect(await added(withObservations([commit({ committer: alice, committerIsAdmin: true, proposals: [{ type: "self_remove", sender: alice, senderIsAdmin: false }] })]))).toEqual(["MIP03-CM-04"]);
  });
  it("MIP03-CM-06: a non-admin's Add that was accepted -> CM-06 (and CM-01, which covers every non-admin commit)", async () => {
    expect(await added(withObservations([commit({ committer: bob, committerIsAdmin: false, proposals: [{ type: "add", target: "f".repeat(64) }] })]))).toEqual(["MIP03-CM-01", "MIP03-CM-06"]);
  });
  it("MIP01-GD-12: a group data change by a member outside the admin list -> GD-12", async () => {
    const before = groupData({});
    const after = groupData({ name: Buffer.from("renamed") });
    expect(await added(withObservations([commit({ committer: bob, groupDataBefore: before, groupDataAfter: after, proposals: [] })]))).toEqual(["MIP01-GD-12"]);
  });
  it("MIP01-GD-13: an accepted commit leaving no admin -> GD-13", async () => {
    expect(await added(withObservations([commit({ committer: alice, committerIsAdmin: true, adminsAfter: [], proposals: [] })]))).toEqual(["MIP01-GD-13"]);
  });
});

describe("group data and GroupContext rules (observations)", () => {
  it("valid crafted v2 and v3 bytes pass", async () => {
    const r = await judge(fx.records, { profile: "R1", keyring: withObservations([gs(groupData({})), gs(groupData({ version: 3, secs: Buffer.from([0, 0, 0, 0, 0, 0, 0, 60]) }))]) });
    for (const id of ["MIP01-GD-05", "MIP01-GD-07", "MIP01-GD-08", "MIP01-GD-09", "MIP01-GD-10", "MIP01-GD-11"]) expect(verdictOf(r, id), id).toBe("pass");
  });
  it.each([
    ["MIP01-GD-05", () => "0000" + groupData({}).slice(4)],
    ["MIP01-GD-05", () => groupData({}) + "00"],
    ["MIP01-GD-07", () => groupData({ imageHash: Buffer.alloc(5) })],
    ["MIP01-GD-07", () => groupData({ imageNonce: Buffer.alloc(32) })],
    ["MIP01-GD-08", () => groupData({ version: 3, secs: Buffer.alloc(8) })],
    ["MIP01-GD-08", () => groupData({ version: 3, secs: Buffer.alloc(4, 1) })],
    ["MIP01-GD-09", () => groupData({ admins: Buffer.alloc(33, 1) })],
    ["MIP01-GD-09", () => groupData({ admins: Buffer.concat([Buffer.from(alice, "hex"), Buffer.from(alice, "hex")]) })],
    ["MIP01-GD-10", () => groupData({ relays: ["https://not.ws"] })],
    ["MIP01-GD-10", () => groupData({ name: Buffer.from([0xff, 0xfe]) })],
    ["MIP01-GD-11", () => groupData({ relays: [] })],
  ])("%s is named for crafted bad bytes", async (rule, make) => {
    expect(await added(withObservations([gs(make())]))).toEqual([rule]);
  });
  it("MIP01-GD-02/03: a group without self_remove in required_capabilities fails GD-03 (the MDK lowest-common-denominator deviation)", async () => {
    const k = withObservations([{ kind: "group-state", nostrGroupId: state.nostrGroupId, epoch: 99, requiredCapabilities: { extensions: [0xf2ee], proposals: [] } }]);
    expect(await added(k)).toEqual(["MIP01-GD-03"]);
    const k2 = withObservations([{ kind: "group-state", nostrGroupId: state.nostrGroupId, epoch: 99, requiredCapabilities: { extensions: [], proposals: [10] } }]);
    expect(await added(k2)).toEqual(["MIP01-GD-02"]);
  });
  it("MIP01-GD-01/04: GroupContext extension list without one 0xF2EE or without required_capabilities", async () => {
    expect(await added(withObservations([{ kind: "group-state", nostrGroupId: state.nostrGroupId, epoch: 99, extensionTypes: [3, 0xf2ee, 0xf2ee] }]))).toEqual(["MIP01-GD-01"]);
    expect(await added(withObservations([{ kind: "group-state", nostrGroupId: state.nostrGroupId, epoch: 99, extensionTypes: [0xf2ee], requiredCapabilities: { extensions: [0xf2ee], proposals: [10] } }]))).toEqual(["MIP01-GD-04"]);
  });
});

describe("MIP03-CM-07 (R2)", () => {
  it("a commit removing an admin while keeping the key in the admin list fails CM-07", async () => {
    const before = groupData({ admins: Buffer.concat([Buffer.from(alice, "hex"), Buffer.from(bob, "hex")]) });
    const okAfter = groupData({ admins: Buffer.from(alice, "hex") });
    const keep: Observation = { kind: "commit", eventId: "c".repeat(64), decision: "applied", committer: alice, committerIsAdmin: true, proposals: [{ type: "remove", target: bob }], groupDataBefore: before, groupDataAfter: before };
    const r = await judge(fx.records, { profile: "R2", keyring: withObservations([keep]) });
    expect(verdictOf(r, "MIP03-CM-07")).toBe("fail");
    const good = await judge(fx.records, { profile: "R2", keyring: withObservations([{ ...keep, groupDataAfter: okAfter } as Observation]) });
    expect(verdictOf(good, "MIP03-CM-07")).toBe("pass");
  });
});
