/**
 * Compliance checker throughput (tinybench): events judged per second on a capture of 10,000+
 * events built from the committed R1 engine fixture (its KeyPackages, Welcomes and keyring, plus
 * 10,000 kind-445 events that re-encrypt the fixture's real MLS messages under their epoch keys,
 * each with a fresh nonce and a fresh signing key, as real traffic would).
 *
 *   npm run bench:checker          10,000 group events, more samples
 *   npm run bench:checker:short    2,000 group events, fewer samples (BENCH_SHORT=1)
 *
 * Tasks: black-box with Schnorr signature verification (the default of `check`) with each backend
 * (native libsecp256k1 when built, WASM libsecp256k1, pure JS; main thread and worker threads),
 * black-box with ids only (`--no-verify-signatures`), white-box (keyring: decrypt + decode every 445,
 * observations), and each verifier alone without the checker.
 * Results: a table on stdout and reports/bench-checker.md / .json.
 */
import "../src/platform/install-base64.ts"; // first: before @scure/base loads
import { mkdir, writeFile } from "node:fs/promises";
import os from "node:os";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { createHash } from "node:crypto";
import { Bench } from "tinybench";
import { initNostrWasm } from "nostr-wasm";
import type { CaptureRecord } from "../src/capture.ts";
import { judge } from "../src/checkers/compliance/index.ts";
import { buildBenchCapture } from "./checker-capture.ts";
import { defaultVerifyWorkers } from "../src/checkers/compliance/verify-workers.ts";
import { nativeAvailable, nativeUnavailableReason, packVerifyItems, verifyMany, verifySchnorr } from "../src/nostr/secp256k1-native.ts";

const SHORT = process.env.BENCH_SHORT === "1" || process.argv.includes("--short");
const N = SHORT ? 2_000 : 10_000;
const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, "..");

process.stdout.write(`building ${N} signed kind-445 events (fresh key each)…\n`);
const t0 = Date.now();
const { records, base, keyring } = await buildBenchCapture(root, N);
process.stdout.write(`built in ${((Date.now() - t0) / 1000).toFixed(1)} s; capture has ${records.length} events\n`);

// Pure-JS Schnorr verification is slow: it is measured on a slice (events/s stays comparable).
const JS_SLICE = SHORT ? 500 : 2_000;
const jsRecords = records.slice(0, JS_SLICE);
const sizes = new Map<string, number>();
const bench = new Bench({ time: 1, iterations: SHORT ? 2 : 3, warmup: true, warmupIterations: 1 });
const add = (name: string, recs: CaptureRecord[], fn: () => Promise<unknown>): void => {
  sizes.set(name, recs.length);
  bench.add(name, fn);
};
const W = defaultVerifyWorkers();
const NATIVE = nativeAvailable();
if (!NATIVE) process.stdout.write(`native verifier rows skipped: ${nativeUnavailableReason() ?? "not available"}\n`);
if (NATIVE) {
  add(`black-box, signatures verified (native libsecp256k1 on ${defaultVerifyWorkers("native-libsecp256k1")} worker thread(s) + main thread, default)`, records, async () => {
    await judge(records, { profile: "R1", signatureVerifier: "native" });
  });
  add("black-box, signatures verified (native libsecp256k1, main thread)", records, async () => {
    await judge(records, { profile: "R1", signatureVerifier: "native", verifyWorkers: 0 });
  });
  add(`black-box, signatures verified (native libsecp256k1 on ${W} worker threads + main thread)`, records, async () => {
    await judge(records, { profile: "R1", signatureVerifier: "native", verifyWorkers: W });
  });
}
add(`black-box, signatures verified (WASM libsecp256k1 on ${W} worker threads${NATIVE ? "" : ", default"})`, records, async () => {
  await judge(records, { profile: "R1", signatureVerifier: "wasm" });
});
add("black-box, signatures verified (WASM libsecp256k1, main thread)", records, async () => {
  await judge(records, { profile: "R1", signatureVerifier: "wasm", verifyWorkers: 0 });
});
add(`black-box, signatures verified (pure-JS @noble; ${JS_SLICE}-event slice)`, jsRecords, async () => {
  await judge(jsRecords, { profile: "R1", signatureVerifier: "js" });
});
add("black-box, ids only (--no-verify-signatures)", records, async () => {
  await judge(records, { profile: "R1", verifySignatures: false });
});
// The same traffic as captured from three relays: every event appears three times (ids and
// signatures are checked once per distinct event). Events/s counts capture records.
// Each copy is its own object, as parsed from a capture file (copies are re-hashed, not re-verified).
const relays3: CaptureRecord[] = records.flatMap((r) => ["ws://127.0.0.1:7777", "ws://127.0.0.1:7778", "ws://127.0.0.1:7779"].map((relay) => ({ ...r, event: { ...r.event, tags: r.event.tags.map((t) => [...t]) }, relay })));
const defaultName = NATIVE ? "native" : "WASM";
add(`black-box, signatures verified (${defaultName}, default), same traffic from 3 relays (${relays3.length} records, ${records.length} distinct)`, relays3, async () => {
  await judge(relays3, { profile: "R1" });
});
if (NATIVE) {
  add("white-box (keyring), signatures verified (native, default)", records, async () => {
    await judge(records, { profile: "R1", keyring, signatureVerifier: "native" });
  });
}
add("white-box (keyring), signatures verified (WASM)", records, async () => {
  await judge(records, { profile: "R1", keyring, signatureVerifier: "wasm" });
});
add("white-box (keyring), ids only", records, async () => {
  await judge(records, { profile: "R1", keyring, verifySignatures: false });
});
// The floor under every verified mode: the verifier alone, without the checker (main thread).
const nw = await initNostrWasm();
const plainEvents = records.map((r) => ({ ...r.event }));
if (NATIVE) {
  add("signature verification alone: native verifySchnorr (BIP-340, hex decoded per event), main thread, no checker", records, async () => {
    for (const e of plainEvents) verifySchnorr(Buffer.from(e.id, "hex"), Buffer.from(e.pubkey, "hex"), Buffer.from(e.sig, "hex"));
  });
  add("signature verification alone: native verifyMany (packing + one batch call), main thread, no checker", records, async () => {
    verifyMany(packVerifyItems(plainEvents).packed);
  });
}
add("signature verification alone: nostr-wasm verifyEvent (id + BIP-340), main thread, no checker", records, async () => {
  for (const e of plainEvents) nw.verifyEvent(e);
});
add("NIP-01 id alone: SHA-256 of the serialisation (node:crypto), main thread, no checker", records, async () => {
  for (const e of plainEvents) createHash("sha256").update(JSON.stringify([0, e.pubkey, e.created_at, e.kind, e.tags, e.content]), "utf8").digest("hex");
});
const probe = await judge(base, { profile: "R1" });
process.stdout.write(`signature verifier loaded: ${probe.signatureVerifier}\n`);
const loadStart = os.loadavg()[0]?.toFixed(1);
await bench.run();

interface Row {
  task: string;
  meanMs: number;
  eventsPerSec: number;
  samples: number;
  rme: number;
}
const rows: Row[] = bench.tasks.map((t) => {
  const r = t.result as unknown as { latency?: { mean: number; rme: number; samplesCount?: number; samples?: number[] } };
  const mean = r.latency?.mean ?? NaN;
  return { task: t.name, meanMs: mean, eventsPerSec: (sizes.get(t.name) ?? records.length) / (mean / 1000), samples: r.latency?.samplesCount ?? r.latency?.samples?.length ?? 0, rme: r.latency?.rme ?? NaN };
});
console.table(rows.map((r) => ({ task: r.task, "mean ms / capture": r.meanMs.toFixed(0), "events/s": r.eventsPerSec.toFixed(0), samples: r.samples, "rme %": r.rme.toFixed(1) })));

function ratios(): string[] {
  const eps = (prefix: string): number | undefined => rows.find((r) => r.task.startsWith(prefix))?.eventsPerSec;
  const nativePooled = eps("black-box, signatures verified (native libsecp256k1 on");
  const nativeMain = eps("black-box, signatures verified (native libsecp256k1, main thread");
  const pooled = eps("black-box, signatures verified (WASM libsecp256k1 on");
  const wasm = eps("black-box, signatures verified (WASM libsecp256k1, main thread");
  const js = eps("black-box, signatures verified (pure-JS");
  const ids = eps("black-box, ids only");
  const out: string[] = [];
  if (nativeMain !== undefined && wasm !== undefined) out.push(`Same run: native verification (main thread) is ${(nativeMain / wasm).toFixed(1)}× WASM (main thread), black-box events/s.`);
  if (nativePooled !== undefined && pooled !== undefined) out.push(`Same run: native on worker threads is ${(nativePooled / pooled).toFixed(1)}× WASM on worker threads.`);
  if (wasm !== undefined && js !== undefined) out.push(`Same run: WASM verification (main thread) is ${(wasm / js).toFixed(1)}× the pure-JS verifier (black-box events/s).`);
  if (pooled !== undefined && wasm !== undefined) out.push(`Same run: WASM on worker threads is ${(pooled / wasm).toFixed(2)}× WASM on the main thread.`);
  if (ids !== undefined) {
    const best = nativePooled ?? pooled;
    if (best !== undefined) out.push(`Same run: ids only is ${(ids / best).toFixed(1)}× the default verified black-box rate.`);
  }
  const cores = os.availableParallelism();
  const perVerify = (prefix: string, what: string): void => {
    const alone = eps(prefix);
    if (alone !== undefined) out.push(`Same run: one ${what} costs ${(1e6 / alone).toFixed(0)} µs here (${alone.toFixed(0)}/s per core, about ${(alone * cores).toFixed(0)}/s on ${cores} cores before any rule is judged).`);
  };
  perVerify("signature verification alone: native verifySchnorr", "native verifySchnorr call");
  perVerify("signature verification alone: native verifyMany", "native verification in a verifyMany batch");
  perVerify("signature verification alone: nostr-wasm", "nostr-wasm verifyEvent");
  const target = nativePooled ?? pooled;
  if (target !== undefined) out.push(`Target ≥20,000 events/s black-box with signatures verified (default mode): ${target >= 20_000 ? "met" : "not met"} in this run (${target.toFixed(0)}/s; load average ${loadStart} at the start).`);
  return out;
}

const load = os.loadavg().map((x) => x.toFixed(1)).join(" / ");
const machine = `${os.cpus()[0]?.model ?? "cpu"} × ${os.cpus().length}, Node ${process.version}; load average at the end ${load} (1/5/15 min, the cores are shared)`;
const md = [
  "# Compliance checker throughput",
  "",
  `Measured by \`npm run bench:checker${SHORT ? ":short" : ""}\` (bench/checker.bench.ts) on ${machine}, ${new Date().toISOString().slice(0, 10)}.`,
  `Load average (1 min) when the measurement started: ${loadStart}.`,
  `Capture: ${records.length} events (${N} kind-445 re-encryptions of real engine MLS messages with fresh keys, plus the ${base.length} events of fixtures/engine-r1.jsonl).`,
  "",
  "| Mode | mean per capture (ms) | events judged / s | samples | rme % |",
  "|---|---|---|---|---|",
  ...rows.map((r) => `| ${r.task} | ${r.meanMs.toFixed(0)} | ${r.eventsPerSec.toFixed(0)} | ${r.samples} | ${r.rme.toFixed(1)} |`),
  "",
  ...ratios(),
  "",
  "Target: ≥20,000 events/s black-box. BIP-340 verification of every event dominates the verified modes;",
  NATIVE ? "the native libsecp256k1 binding (native/secp256k1) is the default when built." : `the native libsecp256k1 binding was not used: ${nativeUnavailableReason() ?? "not available"}.`,
  "`--no-verify-signatures` keeps the NIP-01 id check and skips only the signature.",
  "",
].join("\n");
await mkdir(path.join(root, "reports"), { recursive: true });
await writeFile(path.join(root, "reports/bench-checker.md"), md);
await writeFile(path.join(root, "reports/bench-checker.json"), JSON.stringify({ machine, events: records.length, short: SHORT, rows }, null, 2) + "\n");
process.stdout.write(md);
