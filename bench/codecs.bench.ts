/**
 * Codec throughput (MIP-00 KeyPackage events, MIP-01 group data). Run: `npm run bench:codecs`.
 * Inputs are fixed (seeded KeyPackage, fixed group data), so runs are comparable.
 */
import "../src/platform/install-base64.ts"; // first: before @scure/base loads
import { Bench } from "tinybench";
import { hexToBytes } from "@noble/hashes/utils.js";
import { getPublicKey } from "nostr-tools/pure";
import type { MarmotGroupData } from "../src/engine/api.ts";
import { generateMarmotKeyPackage } from "../src/engine/identity.ts";
import { buildKeyPackageEvent, decodeKeyPackageContent, parseKeyPackageEvent, selectKeyPackage } from "../src/engine/mip00-keypackages.ts";
import { decodeGroupData, encodeGroupData } from "../src/engine/mip01-group-data.ts";
import { createRng } from "../src/sim/random.ts";

const NOW = 1_780_000_000;
const sk = hexToBytes("01".repeat(32));
const pubkey = getPublicKey(sk);
const rng = createRng("bench-codecs");
const rb = (n: number): Uint8Array => rng.bytes(n);

const { publicPackage } = await generateMarmotKeyPackage({ pubkey, now: NOW, randomBytes: rb });
const relays = ["wss://relay.one", "wss://relay.two"];
const event = await buildKeyPackageEvent({ keyPackage: publicPackage, secretKey: sk, relays, d: "d0".repeat(32), now: NOW });
const candidates = await Promise.all(
  Array.from({ length: 10 }, (_, i) => buildKeyPackageEvent({ keyPackage: publicPackage, secretKey: sk, relays, d: `${i}`.padStart(64, "0"), now: NOW + i })),
);

const admins = Array.from({ length: 20 }, (_, i) => (i + 16).toString(16).repeat(32));
const data = (version: number): MarmotGroupData => ({
  version,
  nostrGroupId: new Uint8Array(32).fill(1),
  name: "benchmark group",
  description: "a group used to measure the group-data codec",
  adminPubkeys: admins,
  relays: ["wss://relay.one", "wss://relay.two", "wss://relay.three"],
  imageHash: new Uint8Array(32).fill(2),
  imageKey: new Uint8Array(32).fill(3),
  imageNonce: new Uint8Array(12).fill(4),
  imageUploadKey: version >= 2 ? new Uint8Array(32).fill(5) : null,
  disappearingMessageSecs: version >= 3 ? 86_400n : null,
});
const encoded = { 1: encodeGroupData(data(1)), 2: encodeGroupData(data(2)), 3: encodeGroupData(data(3)) };

const bench = new Bench({ name: "engine codecs", time: 800 });
bench
  .add("group data v1 encode (20 admins)", () => void encodeGroupData(data(1)))
  .add("group data v1 decode", () => void decodeGroupData(encoded[1]))
  .add("group data v2 encode (20 admins)", () => void encodeGroupData(data(2)))
  .add("group data v2 decode", () => void decodeGroupData(encoded[2]))
  .add("group data v3 decode", () => void decodeGroupData(encoded[3]))
  .add("KeyPackage content decode (base64 + TLS)", () => void decodeKeyPackageContent(event.content, "base64"))
  .add("parseKeyPackageEvent (30443, full validation)", async () => void (await parseKeyPackageEvent(event)))
  .add("buildKeyPackageEvent (30443, sign)", async () => void (await buildKeyPackageEvent({ keyPackage: publicPackage, secretKey: sk, relays, d: "d0".repeat(32), now: NOW })))
  .add("generateMarmotKeyPackage", async () => void (await generateMarmotKeyPackage({ pubkey, now: NOW })))
  .add("selectKeyPackage (10 candidates)", () => void selectKeyPackage(candidates));

await bench.run();
console.table(bench.table());
