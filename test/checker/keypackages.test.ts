import { describe, expect, it } from "vitest";
import { keyPackageDecoder, keyPackageEncoder, encode, makeKeyPackageRef } from "ts-mls";
import { generateSecretKey } from "nostr-tools/pure";
import { getMarmotCiphersuite } from "../../src/engine/identity.ts";
import { judge } from "../../src/checkers/compliance/index.ts";
import type { CaptureRecord } from "../../src/capture.ts";
import { clone, findRecord, judgeBoth, loadFixture, replaceEvent, resign, verdictOf } from "./helpers.ts";

const fx = loadFixture("engine-r1");
const base = { records: fx.records };
// alice's first KeyPackage is never consumed: mutations of it touch no Welcome.
const aliceKp = findRecord(fx.records, (r) => r.source === "alice" && r.event.kind === 30443);
const aliceSk = fx.secretByPubkey.get(aliceKp.event.pubkey) as Uint8Array;

async function mutateKp(edit: (tags: string[][], ev: CaptureRecord["event"]) => { tags?: string[][]; content?: string; created_at?: number }, sk: Uint8Array = aliceSk): Promise<string[]> {
  const ev = clone(aliceKp.event);
  const res = edit(ev.tags, ev);
  const next = resign({ kind: ev.kind, tags: res.tags ?? ev.tags, content: res.content ?? ev.content, created_at: res.created_at ?? ev.created_at }, sk);
  const { added } = await judgeBoth(base, { records: replaceEvent(fx.records, aliceKp.event.id, next) }, { profile: "R1" });
  return added;
}

const setTag = (tags: string[][], name: string, value: string[] | undefined): string[][] => {
  const out = tags.filter((t) => t[0] !== name);
  if (value) out.push([name, ...value]);
  return out;
};

describe("KeyPackage rules (black-box, mutated engine output)", () => {
  it("the unmutated engine KeyPackages pass every KeyPackage rule", async () => {
    const r = await judge(fx.records, { profile: "R1" });
    for (const id of ["MIP00-KP-01", "MIP00-KP-02", "MIP00-KP-03", "MIP00-KP-04", "MIP00-KP-05", "MIP00-KP-06", "MIP00-KP-07", "MIP00-KP-08", "MIP00-KP-10", "MIP00-KP-11", "MIP00-KP-12", "MIP00-KP-14", "MIP00-KP-18", "MIP00-KP-21", "MIP00-KR-01"]) {
      expect(verdictOf(r, id), id).toBe("pass");
    }
  });

  it.each([
    ["MIP00-KP-02", (t: string[][]) => ({ tags: setTag(t, "d", ["not-hex"]) })],
    ["MIP00-KP-03", (t: string[][]) => ({ tags: setTag(t, "mls_protocol_version", ["1.1"]) })],
    ["MIP00-KP-04", (t: string[][]) => ({ tags: setTag(t, "mls_ciphersuite", ["0x0002"]) })],
    ["MIP00-KP-05", (t: string[][]) => ({ tags: setTag(t, "mls_extensions", ["0x000a"]) })],
    ["MIP00-KP-06", (t: string[][]) => ({ tags: setTag(t, "mls_extensions", ["0xf2ee", "0x000a", "0x0003"]) })],
    ["MIP00-KP-07", (t: string[][]) => ({ tags: setTag(t, "mls_proposals", undefined) })],
    ["MIP00-KP-08", (t: string[][]) => ({ tags: setTag(t, "encoding", undefined) })],
    ["MIP00-KP-10", (t: string[][]) => ({ tags: setTag(t, "relays", ["https://not-a-relay.example"]) })],
    ["MIP00-KP-11", (t: string[][]) => ({ tags: setTag(t, "i", ["ab".repeat(32)]) })],
    ["MIP00-KP-21", (t: string[][]) => ({ tags: [...t, ["-"]] })],
  ])("%s: a KeyPackage violating only this rule is named by exactly this rule", async (rule, edit) => {
    expect(await mutateKp(edit)).toEqual([rule]);
  });

  it("MIP00-KP-12: a re-encoded KeyPackage with a broken signature (i recomputed) fails only KP-12", async () => {
    const raw = new Uint8Array(Buffer.from(aliceKp.event.content, "base64"));
    const [kp] = keyPackageDecoder(raw, 0) as NonNullable<ReturnType<typeof keyPackageDecoder>>;
    const sig = kp.signature.slice();
    sig[0] = (sig[0] as number) ^ 0xff;
    const bad = { ...kp, signature: sig };
    const bytes = encode(keyPackageEncoder, bad);
    const ref = Buffer.from(await makeKeyPackageRef(bad, (await getMarmotCiphersuite()).hash)).toString("hex");
    expect(await mutateKp((t) => ({ tags: setTag(t, "i", [ref]), content: Buffer.from(bytes).toString("base64") }))).toEqual(["MIP00-KP-12"]);
  });

  it("MIP00-KP-14: someone else's KeyPackage published under a stranger's key fails only KP-14", async () => {
    expect(await mutateKp(() => ({}), generateSecretKey())).toEqual(["MIP00-KP-14"]);
  });

  it("MIP00-KP-18: a rotation under the same d with an older created_at fails KP-18", async () => {
    const older = resign({ ...clone(aliceKp.event), created_at: aliceKp.event.created_at - 100 }, aliceSk);
    const { added } = await judgeBoth(base, { records: [...fx.records, { event: older, source: "alice" }] }, { profile: "R1" });
    expect(added).toEqual(["MIP00-KP-18"]);
  });

  it("MIP00-KP-01: a kind 443 published after the migration deadline fails KP-01 (R1)", async () => {
    const legacy = resign({ kind: 443, tags: aliceKp.event.tags.filter((t) => t[0] !== "d" && t[0] !== "i" && t[0] !== "mls_proposals"), content: aliceKp.event.content, created_at: aliceKp.event.created_at }, aliceSk);
    const { added } = await judgeBoth(base, { records: [...fx.records, { event: legacy, source: "alice" }] }, { profile: "R1" });
    expect(added).toEqual(["MIP00-KP-01"]);
  });

  it("MIP00-KR-01: a 10051 with a non-websocket relay fails KR-01; MIP00-KR-02 flags an unlisted relay", async () => {
    const rl = findRecord(fx.records, (r) => r.source === "alice" && r.event.kind === 10051);
    const bad = resign({ ...clone(rl.event), tags: [["relay", "http://127.0.0.1:1"]] }, aliceSk);
    const r1 = await judgeBoth(base, { records: replaceEvent(fx.records, rl.event.id, bad) }, { profile: "R1" });
    expect(r1.added).toEqual(["MIP00-KR-01", "MIP00-KR-02"].filter((x) => r1.added.includes(x)));
    expect(r1.added).toContain("MIP00-KR-01");
    const extra = resign({ ...clone(rl.event), tags: [...rl.event.tags, ["relay", "wss://elsewhere.example"]] }, aliceSk);
    const r2 = await judgeBoth(base, { records: replaceEvent(fx.records, rl.event.id, extra) }, { profile: "R1" });
    expect(r2.added).toEqual(["MIP00-KR-02"]);
  });

  it("MIP00-DEL-01: a deletion naming a 30443 of another author by `a` fails; a proper one passes", async () => {
    const d = aliceKp.event.tags.find((t) => t[0] === "d")?.[1] as string;
    const good = resign({ kind: 5, tags: [["k", "30443"], ["e", aliceKp.event.id], ["a", `30443:${aliceKp.event.pubkey}:${d}`]], content: "", created_at: aliceKp.event.created_at + 5 }, aliceSk);
    const okRun = await judge([...fx.records, { event: good }], { profile: "R1" });
    expect(verdictOf(okRun, "MIP00-DEL-01")).toBe("pass");
    const bad = resign({ kind: 5, tags: [["k", "30443"], ["a", `30443:${"1".repeat(64)}:${d}`]], content: "", created_at: aliceKp.event.created_at + 5 }, aliceSk);
    const { added } = await judgeBoth(base, { records: [...fx.records, { event: bad }] }, { profile: "R1" });
    expect(added).toEqual(["MIP00-DEL-01"]);
  });

  it("R2-only rules: KP-09 (no encoding/relays) and KP-15 (id lists) are judged under R2", async () => {
    const r = await judge(fx.records, { profile: "R2" });
    expect(verdictOf(r, "MIP00-KP-09")).toBe("fail");
    expect(verdictOf(r, "MIP00-KP-13")).toBe("fail"); // bare KeyPackage, not MLSMessage framing
    expect(verdictOf(r, "MIP00-KP-16")).toBe("fail"); // no app_components
    // Under R1 the same rules do not exist.
    const r1 = await judge(fx.records, { profile: "R1" });
    expect(verdictOf(r1, "MIP00-KP-09")).toBeUndefined();
  });
});
