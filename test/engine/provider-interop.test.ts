/**
 * The engine runs ts-mls on its own providers (getEngineCiphersuite: synchronous SHA-256/HMAC/HKDF,
 * OpenSSL Ed25519). Members on that suite and members on ts-mls's default suite must be one group:
 * each joins from the other's Welcome, processes the other's commits (with update paths, so HPKE,
 * signatures and the key schedule all cross), reads the other's messages, and both agree on every
 * epoch's authenticator and exporter.
 */
import { describe, expect, it } from "vitest";
import {
  createApplicationMessage,
  createCommit,
  createGroup,
  decode,
  defaultProposalTypes,
  encode,
  joinGroup,
  mlsExporter,
  mlsMessageDecoder,
  mlsMessageEncoder,
  processMessage,
  type ClientState,
  type MlsContext,
  type MlsFramedMessage,
  type MlsMessage,
} from "ts-mls";
import { generateMarmotKeyPackage, getEngineCiphersuite, getMarmotCiphersuite, marmotAuthService } from "../../src/engine/identity.ts";

const utf8 = new TextEncoder();
const pub = (c: string): string => c.repeat(64);
const wire = (m: MlsMessage): MlsFramedMessage => decode(mlsMessageDecoder, encode(mlsMessageEncoder, m)) as MlsFramedMessage;

describe("the engine's ts-mls providers interoperate with ts-mls's defaults", () => {
  it("a group of engine-suite and default-suite members stays one group through adds, commits and messages", async () => {
    const def = await getMarmotCiphersuite();
    const eng = await getEngineCiphersuite();
    expect(eng).not.toBe(def);
    const ctxE: MlsContext = { cipherSuite: eng, authService: marmotAuthService };
    const ctxD: MlsContext = { cipherSuite: def, authService: marmotAuthService };

    // alice (engine suite) creates; bob's KeyPackage is made on the default suite, carol's on the engine's.
    const a = await generateMarmotKeyPackage({ pubkey: pub("a"), cipherSuite: eng });
    const b = await generateMarmotKeyPackage({ pubkey: pub("b"), cipherSuite: def });
    const c = await generateMarmotKeyPackage({ pubkey: pub("c"), cipherSuite: eng });
    let alice: ClientState = await createGroup({ context: ctxE, groupId: new Uint8Array(32).fill(9), keyPackage: a.publicPackage, privateKeyPackage: a.privatePackage });
    const addBob = await createCommit({ context: ctxE, state: alice, extraProposals: [{ proposalType: defaultProposalTypes.add, add: { keyPackage: b.publicPackage } }], ratchetTreeExtension: true });
    alice = addBob.newState;
    let bob: ClientState = await joinGroup({ context: ctxD, welcome: addBob.welcome!.welcome, keyPackage: b.publicPackage, privateKeys: b.privatePackage });

    // bob (default suite) adds carol (engine suite); alice processes bob's commit.
    const addCarol = await createCommit({ context: ctxD, state: bob, extraProposals: [{ proposalType: defaultProposalTypes.add, add: { keyPackage: c.publicPackage } }], ratchetTreeExtension: true });
    bob = addCarol.newState;
    const aliceSees = await processMessage({ context: ctxE, state: alice, message: wire(addCarol.commit) });
    expect(aliceSees.kind).toBe("newState");
    alice = aliceSees.newState;
    let carol: ClientState = await joinGroup({ context: ctxE, welcome: addCarol.welcome!.welcome, keyPackage: c.publicPackage, privateKeys: c.privatePackage });

    const states = (): ClientState[] => [alice, bob, carol];
    const agree = async (): Promise<void> => {
      const [x, y, z] = states();
      expect(y!.groupContext.epoch).toBe(x!.groupContext.epoch);
      expect(z!.groupContext.epoch).toBe(x!.groupContext.epoch);
      for (const s of [y!, z!]) expect(Buffer.from(s.keySchedule.epochAuthenticator).equals(Buffer.from(x!.keySchedule.epochAuthenticator))).toBe(true);
      const ex = await Promise.all(states().map((s) => mlsExporter(s.keySchedule.exporterSecret, "marmot", utf8.encode("group-event"), 32, def)));
      expect(ex[1]).toEqual(ex[0]);
      expect(ex[2]).toEqual(ex[0]);
    };
    await agree();

    // Path-carrying self-updates from each side, processed by the other two.
    for (const [who, ctx] of [["bob", ctxD], ["carol", ctxE], ["alice", ctxE]] as const) {
      const me = who === "alice" ? alice : who === "bob" ? bob : carol;
      const up = await createCommit({ context: ctx, state: me, extraProposals: [] });
      for (const other of ["alice", "bob", "carol"] as const) {
        if (other === who) continue;
        const octx = other === "bob" ? ctxD : ctxE;
        const st = other === "alice" ? alice : other === "bob" ? bob : carol;
        const r = await processMessage({ context: octx, state: st, message: wire(up.commit) });
        expect(r.kind).toBe("newState");
        if (other === "alice") alice = r.newState;
        else if (other === "bob") bob = r.newState;
        else carol = r.newState;
      }
      if (who === "alice") alice = up.newState;
      else if (who === "bob") bob = up.newState;
      else carol = up.newState;
      await agree();
    }

    // Messages both ways across the suites.
    const fromBob = await createApplicationMessage({ context: ctxD, state: bob, message: utf8.encode("from the default suite") });
    bob = fromBob.newState;
    for (const [name, ctx, st] of [["alice", ctxE, alice], ["carol", ctxE, carol]] as const) {
      const r = await processMessage({ context: ctx, state: st, message: wire(fromBob.message) });
      expect(r.kind, name).toBe("applicationMessage");
      if (r.kind === "applicationMessage") expect(new TextDecoder().decode(r.message)).toBe("from the default suite");
    }
    const fromCarol = await createApplicationMessage({ context: ctxE, state: carol, message: utf8.encode("from the engine suite") });
    const r = await processMessage({ context: ctxD, state: bob, message: wire(fromCarol.message) });
    expect(r.kind).toBe("applicationMessage");
    if (r.kind === "applicationMessage") expect(new TextDecoder().decode(r.message)).toBe("from the engine suite");
  });

  it("a commit signed on one suite with a bit flipped in its signature is refused on the other", async () => {
    const def = await getMarmotCiphersuite();
    const eng = await getEngineCiphersuite();
    const ctxE: MlsContext = { cipherSuite: eng, authService: marmotAuthService };
    const ctxD: MlsContext = { cipherSuite: def, authService: marmotAuthService };
    const a = await generateMarmotKeyPackage({ pubkey: pub("d"), cipherSuite: def });
    const b = await generateMarmotKeyPackage({ pubkey: pub("e"), cipherSuite: eng });
    let alice = await createGroup({ context: ctxD, groupId: new Uint8Array(32).fill(3), keyPackage: a.publicPackage, privateKeyPackage: a.privatePackage });
    const add = await createCommit({ context: ctxD, state: alice, extraProposals: [{ proposalType: defaultProposalTypes.add, add: { keyPackage: b.publicPackage } }], ratchetTreeExtension: true });
    alice = add.newState;
    const bob = await joinGroup({ context: ctxE, welcome: add.welcome!.welcome, keyPackage: b.publicPackage, privateKeys: b.privatePackage });
    const up = await createCommit({ context: ctxD, state: alice, extraProposals: [], wireAsPublicMessage: true });
    const bytes = encode(mlsMessageEncoder, up.commit);
    // A member's PublicMessage commit ends signature (1 + 64 bytes), confirmation tag (1 + 32),
    // membership tag (1 + 32): flip one bit inside the signature.
    const tampered = bytes.slice();
    tampered[tampered.length - 100]! ^= 1;
    const msg = decode(mlsMessageDecoder, tampered) as MlsFramedMessage;
    await expect(processMessage({ context: ctxE, state: bob, message: msg })).rejects.toThrow();
    // The untampered commit goes through.
    const ok = await processMessage({ context: ctxE, state: bob, message: decode(mlsMessageDecoder, bytes) as MlsFramedMessage });
    expect(ok.kind).toBe("newState");
  });
});
