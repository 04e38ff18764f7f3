/**
 * The compliance-checker benchmarks' capture: the committed R1 engine fixture (KeyPackages, Welcomes,
 * keyring) plus `n` kind-445 events that re-encrypt the fixture's real MLS messages under their epoch
 * keys, each with a fresh nonce and a fresh signing key, as real traffic would. Seeded: the same `n`
 * gives the same events.
 */
import { readFile } from "node:fs/promises";
import * as path from "node:path";
import { chacha20poly1305 } from "@noble/ciphers/chacha.js";
import { schnorr } from "@noble/curves/secp256k1.js";
import { bytesToHex } from "@noble/hashes/utils.js";
import { parseCapture, type CaptureRecord } from "../src/capture.ts";
import { parseKeyring, type Keyring } from "../src/checkers/compliance/index.ts";
import { createRng } from "../src/sim/random.ts";
import { nativeAvailable, signSchnorr, xonlyPublicKey } from "../src/nostr/secp256k1-native.ts";
import { eventIdOf } from "../src/nostr/verify.ts";

/**
 * BIP-340 signing with seeded aux bytes: the native libsecp256k1 binding when built (fast), else
 * @noble/curves; both give the same bytes for the same (message, key, aux).
 */
const NATIVE = nativeAvailable();
const sign = (msg: Uint8Array, sk: Uint8Array, aux: Uint8Array): Uint8Array => (NATIVE ? signSchnorr(msg, sk, aux) : schnorr.sign(msg, sk, aux));
const pubOf = (sk: Uint8Array): Uint8Array => (NATIVE ? xonlyPublicKey(sk) : schnorr.getPublicKey(sk));

export interface BenchCapture {
  /** The fixture's events followed by the `n` generated 445s. */
  records: CaptureRecord[];
  /** The fixture's events alone. */
  base: CaptureRecord[];
  keyring: Keyring;
}

export async function buildBenchCapture(root: string, n: number): Promise<BenchCapture> {
  const { records: base } = parseCapture(await readFile(path.join(root, "fixtures/engine-r1.jsonl"), "utf8"));
  const keyring = parseKeyring(JSON.parse(await readFile(path.join(root, "fixtures/engine-r1.keyring.json"), "utf8")));
  const rng = createRng("bench-checker");
  // Decrypt the fixture's 445s to get real MLS messages with their epoch keys.
  const plain: { key: Uint8Array; h: string; bytes: Uint8Array; createdAt: number }[] = [];
  for (const r of base) {
    if (r.event.kind !== 445) continue;
    const h = r.event.tags.find((t) => t[0] === "h")?.[1] as string;
    const raw = Buffer.from(r.event.content, "base64");
    for (const k of keyring.groupEventKeys.filter((x) => x.nostrGroupId === h)) {
      const key = new Uint8Array(Buffer.from(k.key, "hex"));
      try {
        const bytes = chacha20poly1305(key, raw.subarray(0, 12)).decrypt(raw.subarray(12));
        plain.push({ key, h, bytes, createdAt: r.event.created_at });
        break;
      } catch {
        // other epoch
      }
    }
  }
  if (plain.length === 0) throw new Error("no decryptable 445 in the fixture");
  const records: CaptureRecord[] = [...base];
  for (let i = 0; i < n; i++) {
    const p = plain[i % plain.length] as (typeof plain)[number];
    const nonce = rng.bytes(12);
    const content = Buffer.concat([nonce, chacha20poly1305(p.key, nonce).encrypt(p.bytes)]).toString("base64");
    const sk = rng.bytes(32);
    const fields = { kind: 445, created_at: p.createdAt + i, tags: [["h", p.h], ["encoding", "base64"]], content, pubkey: bytesToHex(pubOf(sk)) };
    const id = eventIdOf(fields);
    const ev = { ...fields, id, sig: bytesToHex(sign(Buffer.from(id, "hex"), sk, rng.bytes(32))) };
    records.push({ event: ev, relay: "ws://127.0.0.1:7777", seenAt: (p.createdAt + i) * 1000 });
  }
  return { records, base, keyring };
}
