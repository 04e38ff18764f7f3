/**
 * Where the compliance checker's time goes, in CPU instructions per event (valgrind callgrind), a
 * figure that does not move with the load of shared cores the way wall-clock rates do.
 *
 *   npm run bench:checker:instructions       (needs valgrind; about 5 minutes)
 *
 * The capture is built once (bench/checker-capture.ts) and written to a temporary file; then one
 * child process per mode runs under callgrind: it loads the file, warms up identically in every mode
 * (a small judgement of each kind and a few verifications), then does its mode's work on N events.
 * Instructions per event = (mode total − "base" total) / N. Modes:
 *   base     warm-up only
 *   id       the NIP-01 id alone (SHA-256 of the serialisation, node:crypto)
 *   verify   nostr-wasm verifyEvent alone (id + BIP-340 in WASM), no checker
 *   ids      judge(), black-box, ids only (--no-verify-signatures), main thread
 *   verified judge(), black-box, WASM signatures on the main thread
 * Whole-process counts include Node's JIT and GC threads, so a mode's figure carries some noise
 * (compare runs of "base"); the modes whose work is small use more events.
 * Results: a table on stdout and reports/bench-checker-instructions.md.
 */
import "../src/platform/install-base64.ts"; // first: before @scure/base loads
import { execFileSync, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { mkdir, writeFile } from "node:fs/promises";
import os from "node:os";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import type { CaptureRecord } from "../src/capture.ts";
import { judge } from "../src/checkers/compliance/index.ts";
import { buildBenchCapture } from "./checker-capture.ts";

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, "..");
const self = fileURLToPath(import.meta.url);
const WARM = 100;
const MODES: Record<string, number> = { base: 0, id: 8_000, verify: 1_000, ids: 8_000, verified: 1_000 };

async function child(mode: string, file: string, n: number): Promise<void> {
  const all = JSON.parse(readFileSync(file, "utf8")) as CaptureRecord[];
  const { initNostrWasm } = await import("nostr-wasm");
  const nw = await initNostrWasm();
  const warm = all.slice(0, WARM);
  await judge(warm, { profile: "R1", verifySignatures: false });
  await judge(warm, { profile: "R1", signatureVerifier: "wasm", verifyWorkers: 0 });
  for (const r of warm) nw.verifyEvent(r.event);
  const slice = all.slice(WARM, WARM + n);
  if (mode === "id") for (const { event: e } of slice) createHash("sha256").update(JSON.stringify([0, e.pubkey, e.created_at, e.kind, e.tags, e.content]), "utf8").digest("hex");
  else if (mode === "verify") for (const r of slice) nw.verifyEvent(r.event);
  else if (mode === "ids") await judge(slice, { profile: "R1", verifySignatures: false });
  else if (mode === "verified") await judge(slice, { profile: "R1", signatureVerifier: "wasm", verifyWorkers: 0 });
}

function callgrind(mode: string, file: string, n: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const p = spawn("valgrind", ["--tool=callgrind", "--callgrind-out-file=/dev/null", process.execPath, "--import", "tsx", self, "--child", mode, file, String(n)], { cwd: root, stdio: ["ignore", "ignore", "pipe"] });
    let err = "";
    p.stderr.on("data", (d: Buffer) => (err += d.toString()));
    p.on("error", reject);
    p.on("exit", (code) => {
      const m = /Collected : (\d+)/.exec(err);
      if (code !== 0 || !m) reject(new Error(`callgrind ${mode} exited ${code}: ${err.slice(-400)}`));
      else resolve(Number(m[1]));
    });
  });
}

async function main(): Promise<void> {
  try {
    execFileSync("valgrind", ["--version"], { stdio: "ignore" });
  } catch {
    process.stdout.write("valgrind is not installed: nothing measured\n");
    return;
  }
  const max = Math.max(...Object.values(MODES));
  process.stdout.write(`building ${max + WARM} signed kind-445 events…\n`);
  const { records, base } = await buildBenchCapture(root, max + WARM);
  const dir = mkdtempSync(path.join(os.tmpdir(), "mh-checker-instr-"));
  const file = path.join(dir, "capture.json");
  writeFileSync(file, JSON.stringify(records.slice(base.length)));
  const totals = new Map<string, number>();
  try {
    // two at a time (2 cores); "base" twice to show the run-to-run noise
    const jobs: [string, string, number][] = [["base", "base", 0], ["base2", "base", 0], ...Object.entries(MODES).filter(([m]) => m !== "base").map(([m, n]): [string, string, number] => [m, m, n])];
    for (let i = 0; i < jobs.length; i += 2) {
      const batch = jobs.slice(i, i + 2);
      const out = await Promise.all(batch.map(([, mode, n]) => callgrind(mode, file, n)));
      batch.forEach(([name], k) => totals.set(name, out[k] as number));
      process.stdout.write(`${batch.map(([name], k) => `${name}: ${(out[k] as number).toLocaleString("en")}`).join(", ")}\n`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const b = ((totals.get("base") ?? 0) + (totals.get("base2") ?? 0)) / 2;
  const noise = Math.abs((totals.get("base") ?? 0) - (totals.get("base2") ?? 0));
  const per = (m: string): number => ((totals.get(m) ?? b) - b) / (MODES[m] ?? 1);
  const rows = [
    ["NIP-01 id alone (SHA-256, node:crypto)", "id"],
    ["nostr-wasm verifyEvent alone (id + BIP-340)", "verify"],
    ["judge, black-box, ids only", "ids"],
    ["judge, black-box, WASM signatures (main thread)", "verified"],
  ].map(([label, m]) => ({ label: label as string, mode: m as string, events: MODES[m as string] ?? 0, perEvent: per(m as string), noisePerEvent: noise / (MODES[m as string] ?? 1) }));
  const v = per("verify");
  const ids = per("ids");
  const md = [
    "# Compliance checker: instructions per event (callgrind)",
    "",
    `Measured by \`npm run bench:checker:instructions\` (bench/checker-instructions.ts), ${os.cpus()[0]?.model ?? "cpu"}, Node ${process.version}, ${new Date().toISOString().slice(0, 10)}.`,
    `Base (warm-up only) ${Math.round(b).toLocaleString("en")} instructions; two base runs differ by ${noise.toLocaleString("en")} (the noise on each total).`,
    "",
    "| Work | events | instructions / event | ± noise / event |",
    "|---|---|---|---|",
    ...rows.map((r) => `| ${r.label} | ${r.events} | ${Math.round(r.perEvent).toLocaleString("en")} | ${Math.round(r.noisePerEvent).toLocaleString("en")} |`),
    "",
    `One WASM signature verification costs ${(v / Math.max(1, ids)).toFixed(0)}× the whole black-box judgement of an event without it: a verified run can be at most ${(ids / (ids + v) * 100).toFixed(1)}% as fast as an ids-only run on the same cores.`,
    "",
  ].join("\n");
  await mkdir(path.join(root, "reports"), { recursive: true });
  await writeFile(path.join(root, "reports/bench-checker-instructions.md"), md);
  process.stdout.write(md);
}

if (process.argv[2] === "--child") await child(process.argv[3] as string, process.argv[4] as string, Number(process.argv[5]));
else await main();
