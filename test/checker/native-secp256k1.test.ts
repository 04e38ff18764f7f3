/**
 * The optional native BIP-340 backend (native/secp256k1, a binding of the system libsecp256k1):
 * it agrees with @noble/curves on valid and mutated signatures, signs reproducibly from aux bytes,
 * validates argument lengths, and the checker uses it (main thread and worker threads) with the
 * same verdicts as the WASM backend. Skipped, with the reason, when the addon is not built.
 */
import { describe, expect, it } from "vitest";
import { execFile } from "node:child_process";
import { createRequire } from "node:module";
import { promisify } from "node:util";
import { schnorr } from "@noble/curves/secp256k1.js";
import { bytesToHex, hexToBytes } from "@noble/hashes/utils.js";
import { judge } from "../../src/checkers/compliance/index.ts";
import { getSignatureVerifier } from "../../src/checkers/compliance/signature-verifier.ts";
import { startVerifyOnWorkers, verifyOnWorkers } from "../../src/checkers/compliance/verify-workers.ts";
import {
  nativeAddonPath,
  nativeAvailable,
  nativeUnavailableReason,
  NativeSecp256k1Error,
  packVerifyItems,
  signSchnorr,
  verifyMany,
  verifySchnorr,
  xonlyPublicKey,
} from "../../src/nostr/secp256k1-native.ts";
import { loadSignatureVerifier } from "../../src/nostr/verify.ts";
import { createRng } from "../../src/sim/random.ts";
import { loadFixture, replaceEvent } from "./helpers.ts";

const available = nativeAvailable();
const title = available ? "native secp256k1 (libsecp256k1 N-API addon)" : `native secp256k1 (skipped: ${nativeUnavailableReason() ?? "not available"})`;

/** secp256k1 group order n: a secret key equal to it is invalid. */
const N_HEX = "fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141";
/** Field prime p: an x coordinate or a signature's r equal to it is out of range. */
const P_HEX = "fffffffffffffffffffffffffffffffffffffffffffffffffffffffefffffc2f";

function flip(b: Uint8Array, i: number): Uint8Array {
  const c = Uint8Array.from(b);
  c[i] = (c[i] as number) ^ 0x01;
  return c;
}

interface Case {
  sk: Uint8Array;
  pub: Uint8Array;
  msg: Uint8Array;
  aux: Uint8Array;
  sig: Uint8Array;
}

function cases(count: number, seed: string): Case[] {
  const rng = createRng(seed);
  const out: Case[] = [];
  while (out.length < count) {
    const sk = rng.bytes(32);
    let pub: Uint8Array;
    try {
      pub = schnorr.getPublicKey(sk);
    } catch {
      continue; // (astronomically unlikely) out-of-range scalar
    }
    const msg = rng.bytes(32);
    const aux = rng.bytes(32);
    out.push({ sk, pub, msg, aux, sig: schnorr.sign(msg, sk, aux) });
  }
  return out;
}

function expectBadArgument(fn: () => unknown, argument: string): void {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  expect(caught, `expected a NativeSecp256k1Error naming ${argument}`).toBeInstanceOf(NativeSecp256k1Error);
  expect((caught as NativeSecp256k1Error).code).toBe("NATIVE_SECP256K1_BAD_ARGUMENT");
  expect((caught as NativeSecp256k1Error).details.argument).toBe(argument);
  expect((caught as Error).message).toContain(argument);
}

describe.skipIf(!available)(title, () => {
  it("agrees with @noble on valid signatures and on mutated signature, message and key", () => {
    for (const c of cases(40, "native-agree")) {
      expect(verifySchnorr(c.msg, c.pub, c.sig)).toBe(true);
      const mutants: [string, Uint8Array, Uint8Array, Uint8Array][] = [
        ["sig r", c.msg, c.pub, flip(c.sig, 5)],
        ["sig s", c.msg, c.pub, flip(c.sig, 40)],
        ["msg (id)", flip(c.msg, 0), c.pub, c.sig],
        ["pubkey", c.msg, flip(c.pub, 31), c.sig],
        ["sig r = p", c.msg, c.pub, new Uint8Array([...hexToBytes(P_HEX), ...c.sig.slice(32)])],
        ["sig s = n", c.msg, c.pub, new Uint8Array([...c.sig.slice(0, 32), ...hexToBytes(N_HEX)])],
        ["pubkey x = p", c.msg, hexToBytes(P_HEX), c.sig],
      ];
      for (const [what, m, p, s] of mutants) {
        let noble: boolean;
        try {
          noble = schnorr.verify(s, m, p);
        } catch {
          noble = false;
        }
        expect(noble, `noble ${what}`).toBe(false);
        expect(verifySchnorr(m, p, s), `native ${what}`).toBe(false);
      }
    }
  });

  it("verifies a BIP-340 test vector and signs it byte for byte", () => {
    // BIP-340 test vector 0: secret key 3, aux and message all zero.
    const sk = hexToBytes("0000000000000000000000000000000000000000000000000000000000000003");
    const pub = "f9308a019258c31049344f85f89d5229b531c845836f99b08601f113bce036f9";
    const sig = "e907831f80848d1069a5371b402410364bdf1c5f8307b0084c55f1ce2dca821525f66a4a85ea8b71e482a74f382d2ce5ebeee8fdb2172f477df4900d310536c0";
    const zero = new Uint8Array(32);
    expect(bytesToHex(xonlyPublicKey(sk))).toBe(pub);
    expect(bytesToHex(signSchnorr(zero, sk, zero))).toBe(sig);
    expect(verifySchnorr(zero, hexToBytes(pub), hexToBytes(sig))).toBe(true);
  });

  it("signs reproducibly from aux: the same inputs give @noble's signature, which @noble verifies", () => {
    for (const c of cases(25, "native-sign")) {
      const a = signSchnorr(c.msg, c.sk, c.aux);
      expect(a).toBeInstanceOf(Uint8Array);
      expect(bytesToHex(a)).toBe(bytesToHex(signSchnorr(c.msg, c.sk, c.aux)));
      expect(bytesToHex(a)).toBe(bytesToHex(c.sig)); // BIP-340 signing is a function of (msg, sk, aux)
      expect(schnorr.verify(a, c.msg, c.pub)).toBe(true);
      expect(bytesToHex(xonlyPublicKey(c.sk))).toBe(bytesToHex(c.pub));
      // Other aux bytes: another valid signature.
      const b = signSchnorr(c.msg, c.sk, flip(c.aux, 0));
      expect(bytesToHex(b)).not.toBe(bytesToHex(a));
      expect(schnorr.verify(b, c.msg, c.pub)).toBe(true);
    }
  });

  it("rejects wrong lengths and types with a typed error naming the argument; invalid secret keys too", () => {
    const [c] = cases(1, "native-args") as [Case];
    expectBadArgument(() => verifySchnorr(c.msg.slice(1), c.pub, c.sig), "msg32");
    expectBadArgument(() => verifySchnorr(c.msg, new Uint8Array(33), c.sig), "xonlyPub32");
    expectBadArgument(() => verifySchnorr(c.msg, c.pub, c.sig.slice(0, 63)), "sig64");
    expectBadArgument(() => verifySchnorr(c.msg, c.pub, bytesToHex(c.sig) as unknown as Uint8Array), "sig64");
    expectBadArgument(() => signSchnorr(c.msg, c.sk, new Uint8Array(31)), "aux32");
    expectBadArgument(() => signSchnorr(c.msg, new Uint8Array(32), c.aux), "seckey32"); // zero
    expectBadArgument(() => signSchnorr(c.msg, hexToBytes(N_HEX), c.aux), "seckey32"); // = n
    expectBadArgument(() => xonlyPublicKey(new Uint8Array(32)), "seckey32");
    expectBadArgument(() => verifyMany(new Uint8Array(129)), "items");
    // The addon itself (without the TypeScript wrapper) throws TypeErrors naming the argument.
    const raw = createRequire(import.meta.url)(nativeAddonPath()) as { verifySchnorr: (...a: unknown[]) => boolean; verifyMany: (b: unknown) => Uint8Array };
    expect(() => raw.verifySchnorr(c.msg, c.pub, c.sig.slice(1))).toThrow(TypeError);
    expect(() => raw.verifySchnorr(c.msg, c.pub, c.sig.slice(1))).toThrow(/sig64 must be 64 bytes, got 63/);
    expect(() => raw.verifySchnorr(c.msg, "nope", c.sig)).toThrow(/xonlyPub32 must be a Uint8Array/);
    expect(() => raw.verifySchnorr(c.msg, c.pub)).toThrow(TypeError);
    expect(() => raw.verifyMany(new Uint8Array(127))).toThrow(/multiple of 128/);
  });

  it("verifyMany answers like verifySchnorr, item by item, in order", () => {
    const cs = cases(30, "native-many");
    const items = cs.map((c, i) => ({ id: bytesToHex(c.msg), pubkey: bytesToHex(c.pub), sig: bytesToHex(i % 3 === 1 ? flip(c.sig, 63) : c.sig) }));
    items.push({ id: "zz".repeat(32), pubkey: items[0]!.pubkey, sig: items[0]!.sig }); // not hex
    items.push({ id: items[0]!.id, pubkey: items[0]!.pubkey, sig: items[0]!.sig.toUpperCase() }); // not lowercase
    const { packed, wellFormed } = packVerifyItems(items);
    expect(packed.length).toBe(items.length * 128);
    const out = verifyMany(packed);
    expect(out.length).toBe(items.length);
    items.forEach((e, i) => {
      const expected = i < cs.length && i % 3 !== 1;
      expect(out[i] === 1 && wellFormed[i], `item ${i}`).toBe(expected);
      if (wellFormed[i]) expect(verifySchnorr(hexToBytes(e.id), hexToBytes(e.pubkey), hexToBytes(e.sig))).toBe(out[i] === 1);
    });
    expect(verifyMany(new Uint8Array(0)).length).toBe(0);
  });

  it("is the shared verifier's first choice, and MARMOT_NO_NATIVE=1 falls back to WASM in a fresh process", async () => {
    expect((await loadSignatureVerifier()).name).toBe("native-libsecp256k1");
    expect((await loadSignatureVerifier("native")).name).toBe("native-libsecp256k1");
    expect((await loadSignatureVerifier("wasm")).name).toBe("wasm-libsecp256k1");
    const script = `import { loadSignatureVerifier } from "./src/nostr/verify.ts"; import { nativeUnavailableReason } from "./src/nostr/secp256k1-native.ts"; const a = await loadSignatureVerifier(); const n = await loadSignatureVerifier("native"); console.log(JSON.stringify({ auto: a.name, native: n.name, reason: n.fallbackReason, why: nativeUnavailableReason() }));`;
    const { stdout } = await promisify(execFile)(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], { env: { ...process.env, MARMOT_NO_NATIVE: "1" }, timeout: 30_000 });
    const out = JSON.parse(stdout.trim().split("\n").pop() as string) as { auto: string; native: string; reason: string; why: string };
    expect(out).toMatchObject({ auto: "wasm-libsecp256k1", native: "wasm-libsecp256k1" });
    expect(out.reason).toMatch(/native libsecp256k1 unavailable \(disabled by MARMOT_NO_NATIVE=1\); using wasm-libsecp256k1/);
    expect(out.why).toMatch(/MARMOT_NO_NATIVE=1/);
  }, 30_000);

  it("the checker's worker path (native verifyMany on 2 threads) matches the main thread and WASM on a forged capture", async () => {
    const fx = loadFixture("engine-r1");
    const ev = fx.records[0]!.event;
    const forged = { ...ev, sig: ev.sig.slice(0, 127) + (ev.sig.endsWith("0") ? "1" : "0") };
    const once = replaceEvent(fx.records, ev.id, forged);
    // Distinct events (verifyOnWorkers) and relay copies (judge, ≥2,000 records switch workers on).
    const items = once.map((r) => r.event);
    const onWorkers = await verifyOnWorkers(items, 2, "native-libsecp256k1");
    const native = await getSignatureVerifier("native");
    expect(native.name).toBe("native-libsecp256k1");
    expect(onWorkers).toEqual(items.map((e) => native.verify(e, e.id)));
    expect(onWorkers?.filter((ok) => !ok).length).toBe(1);
    const many = Array.from({ length: Math.ceil(2_100 / once.length) }, (_, k) => once.map((r) => ({ ...r, relay: `ws://127.0.0.1:${7000 + k}` }))).flat();
    const nw = await judge(many, { profile: "R1", signatureVerifier: "native", verifyWorkers: 2 });
    const nm = await judge(many, { profile: "R1", signatureVerifier: "native", verifyWorkers: 0 });
    const ww = await judge(many, { profile: "R1", signatureVerifier: "wasm", verifyWorkers: 2 });
    expect([nw.signatureVerifier, nm.signatureVerifier, ww.signatureVerifier]).toEqual(["native-libsecp256k1", "native-libsecp256k1", "wasm-libsecp256k1"]);
    expect(nw.verifyWorkers).toBe(2);
    for (const r of [nw, nm, ww]) expect(r.malformed.map((m) => m.eventId)).toEqual([ev.id]);
    expect(nw.findings).toEqual(nm.findings);
    expect(nw.findings).toEqual(ww.findings);
  }, 60_000);
});

describe.skipIf(!available)(`${title}: worker threads`, () => {
  it("workers and the main thread share chunks and return every verdict in order, across chunk boundaries", async () => {
    const rng = createRng("native-chunks");
    const sk = rng.bytes(32);
    const pubkey = bytesToHex(xonlyPublicKey(sk));
    const bad = new Set([0, 255, 256, 511, 512, 700, 899]);
    const items = Array.from({ length: 900 }, (_, i) => {
      const id = rng.bytes(32);
      const sig = signSchnorr(id, sk, rng.bytes(32));
      return { id: bytesToHex(id), pubkey, sig: bytesToHex(bad.has(i) ? flip(sig, 10) : sig), created_at: 1, kind: 445, tags: [], content: "" };
    });
    items[300] = { ...items[300]!, pubkey: "g".repeat(64) }; // not hex: false without reaching the addon
    bad.add(300);
    const expected = items.map((_, i) => !bad.has(i));
    for (const workers of [1, 2, 3]) {
      expect(await verifyOnWorkers(items, workers, "native-libsecp256k1"), `${workers} workers`).toEqual(expected);
      expect(await startVerifyOnWorkers(items, workers, "native-libsecp256k1").finish()).toEqual(expected);
    }
  }, 30_000);
});

describe("native build script", () => {
  it("never fails an install: MARMOT_NO_NATIVE=1 prints one line saying the verifier is off and exits 0", async () => {
    const { stdout } = await promisify(execFile)(process.execPath, ["scripts/build-native.mjs"], { env: { ...process.env, MARMOT_NO_NATIVE: "1" }, timeout: 30_000 });
    expect(stdout.trim().split("\n")).toEqual([expect.stringMatching(/native secp256k1 verifier off \(MARMOT_NO_NATIVE=1\)/)]);
  }, 30_000);
});
