/**
 * Seeded engines draw all of ts-mls's randomness (rng, HPKE encapsulation, HPKE key generation) from
 * their `randomBytes` (src/engine/seeded-suite.ts): the same seeds give byte-identical events, and the
 * HPKE they produce is standard (ts-mls's default suite opens it).
 */
import { describe, expect, it } from "vitest";
import type { NostrEvent } from "../../src/engine/api.ts";
import { createEngine } from "../../src/engine/engine.ts";
import { getMarmotCiphersuite } from "../../src/engine/identity.ts";
import { seededCiphersuite } from "../../src/engine/seeded-suite.ts";
import { createRng } from "../../src/sim/random.ts";

const RELAYS = ["wss://relay.example.test"];
const utf8 = new TextEncoder();

function streamOf(seed: string): (n: number) => Uint8Array {
  const rng = createRng(seed);
  return (n: number) => rng.bytes(n);
}

describe("seeded ts-mls suite", () => {
  it("encapsulates reproducibly from the seed, and ts-mls's default HPKE opens what it seals", async () => {
    const def = await getMarmotCiphersuite();
    const recipient = await def.hpke.generateKeyPair();
    const seal = async (seed: string): Promise<{ ct: Uint8Array; enc: Uint8Array }> =>
      seededCiphersuite(def, streamOf(seed)).hpke.seal(recipient.publicKey, utf8.encode("group secrets"), utf8.encode("info"), utf8.encode("aad"));
    const a = await seal("s1");
    const b = await seal("s1");
    const c = await seal("s2");
    expect(b.enc).toEqual(a.enc);
    expect(b.ct).toEqual(a.ct);
    expect(c.enc).not.toEqual(a.enc);
    const opened = await def.hpke.open(recipient.privateKey, a.enc, a.ct, utf8.encode("info"), utf8.encode("aad"));
    expect(new TextDecoder().decode(opened)).toBe("group secrets");
    // A changed ciphertext is refused by the default suite.
    const bad = a.ct.slice();
    bad[0]! ^= 1;
    await expect(def.hpke.open(recipient.privateKey, a.enc, bad, utf8.encode("info"), utf8.encode("aad"))).rejects.toThrow();

    const ex1 = await seededCiphersuite(def, streamOf("x")).hpke.exportSecret(recipient.publicKey, utf8.encode("ctx"), 32, utf8.encode("i"));
    const ex2 = await seededCiphersuite(def, streamOf("x")).hpke.exportSecret(recipient.publicKey, utf8.encode("ctx"), 32, utf8.encode("i"));
    expect(ex2).toEqual(ex1);
    expect(await def.hpke.importSecret(recipient.privateKey, utf8.encode("ctx"), ex1.enc, 32, utf8.encode("i"))).toEqual(ex1.secret);

    const k1 = await seededCiphersuite(def, streamOf("k")).hpke.generateKeyPair();
    const k2 = await seededCiphersuite(def, streamOf("k")).hpke.generateKeyPair();
    expect(await def.hpke.exportPublicKey(k2.publicKey)).toEqual(await def.hpke.exportPublicKey(k1.publicKey));
    expect(seededCiphersuite(def, streamOf("r")).rng.randomBytes(16)).toEqual(streamOf("r")(16));
    expect(() => seededCiphersuite({ ...def, id: 3 }, streamOf("r"))).toThrow(/0x0001/);
  });

  // A three-member story through the engine: invite, joins (KeyPackage rotation), messages, a
  // self-update, a removal and its re-key; every event it publishes, serialised.
  const story = async (seed: string, mlsProviders: "engine" | "ts-mls" = "engine"): Promise<string[]> => {
    const sk = (who: string): Uint8Array => createRng(`${seed}/${who}/sk`).bytes(32);
    const mk = (who: string) => createEngine({ secretKey: sk(who), randomBytes: streamOf(`${seed}/${who}`), mlsProviders });
    const alice = await mk("alice");
    const bob = await mk("bob");
    const carol = await mk("carol");
    let now = 1_800_000_000;
    const ids: string[] = [];
    const out = (...evs: NostrEvent[]): void => void ids.push(...evs.map((e) => JSON.stringify(e)));
    const g = await alice.createGroup({ name: "seeded", relays: RELAYS, now: now++ });
    const kps = [await bob.createKeyPackage({ relays: RELAYS, now }), await carol.createKeyPackage({ relays: RELAYS, now })];
    out(...kps);
    const inv = await alice.inviteMembers(g.groupId, kps, now++);
    const conf = await alice.confirmCommit(inv.id);
    out(inv.event, ...conf.welcomes);
    for (const [e, w] of [[bob, conf.welcomes.find((x) => x.tags.some((t) => t[1] === bob.pubkey))!], [carol, conf.welcomes.find((x) => x.tags.some((t) => t[1] === carol.pubkey))!]] as const) {
      const o = await e.processEvent(w, now);
      expect(o.at(-1)?.kind).toBe("welcome");
      const j = o.at(-1);
      if (j?.kind === "welcome") out(...j.followUps);
    }
    now++;
    const m1 = await bob.sendMessage(g.groupId, { kind: 9, content: "hello" }, now++);
    out(m1);
    for (const e of [alice, carol]) expect((await e.processEvent(m1, now))[0]?.kind).toBe("application");
    const up = await carol.selfUpdate(g.groupId, now++);
    await carol.confirmCommit(up.id);
    out(up.event);
    for (const e of [alice, bob]) expect((await e.processEvent(up.event, now))[0]?.kind).toBe("commit");
    const rm = await alice.removeMembers(g.groupId, [bob.pubkey], now++);
    const rc = await alice.confirmCommit(rm.id);
    out(rm.event);
    expect((await carol.processEvent(rm.event, now))[0]?.kind).toBe("commit");
    if (rc.followUpCommit) out(rc.followUpCommit.event);
    const m2 = await alice.sendMessage(g.groupId, { kind: 9, content: "after" }, now++);
    out(m2);
    expect((await carol.processEvent(m2, now))[0]?.kind).toBe("application");
    return ids;
  };

  it("two runs of the same seeds produce byte-identical events (ids and signatures included); another seed shares none", async () => {
    const first = await story("seed-a");
    const second = await story("seed-a");
    const other = await story("seed-b");
    expect(first.length).toBeGreaterThanOrEqual(10);
    expect(second).toEqual(first);
    expect(other.filter((id, i) => id === first[i])).toEqual([]);
  });

  it("the engine's providers and ts-mls's own give the same events, byte for byte, for the same seeds", async () => {
    const onEngine = await story("seed-c", "engine");
    const onTsMls = await story("seed-c", "ts-mls");
    expect(onTsMls).toEqual(onEngine);
    await expect(createEngine({ secretKey: createRng("x").bytes(32), mlsProviders: "other" as "engine" })).rejects.toMatchObject({ code: "ENGINE_BAD_OPTION" });
  });
});
