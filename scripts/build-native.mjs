#!/usr/bin/env node
/**
 * Builds the optional native BIP-340 verifier (native/secp256k1, an N-API binding of the system's
 * libsecp256k1) when the library's headers are installed; run by `npm install` / `npm ci`
 * (the "postinstall" script) and by hand with `node scripts/build-native.mjs`.
 *
 * It never fails an install: when the headers, a C toolchain or node-gyp are missing, or the build
 * fails, it prints one line saying the native verifier is off and why, and exits 0. The project
 * then verifies signatures with nostr-wasm (WASM libsecp256k1) or @noble/curves.
 * `MARMOT_NO_NATIVE=1` skips the build.
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const addonDir = path.join(root, "native", "secp256k1");
const addonFile = path.join(addonDir, "build", "Release", "marmot_secp256k1.node");

function off(reason) {
  console.log(`marmot-harness: native secp256k1 verifier off (${reason}); signatures are verified with WASM/JS instead`);
  process.exit(0);
}

if (process.env.MARMOT_NO_NATIVE === "1") off("MARMOT_NO_NATIVE=1");
if (process.platform === "win32") off("not built on Windows");

/** The include directory holding secp256k1_schnorrsig.h, or undefined. */
function headerDir() {
  const dirs = ["/usr/include", "/usr/local/include", "/opt/homebrew/include"];
  const pc = spawnSync("pkg-config", ["--variable=includedir", "libsecp256k1"], { encoding: "utf8" });
  if (pc.status === 0 && pc.stdout.trim() !== "") dirs.unshift(pc.stdout.trim());
  return dirs.find((d) => existsSync(path.join(d, "secp256k1_schnorrsig.h")) && existsSync(path.join(d, "secp256k1_extrakeys.h")));
}

/** How to run node-gyp: npm's own copy (npm sets npm_config_node_gyp for lifecycle scripts), else the one bundled with npm next to node, else one on PATH. */
function nodeGyp() {
  const candidates = [
    process.env.npm_config_node_gyp,
    path.resolve(path.dirname(process.execPath), "..", "lib", "node_modules", "npm", "node_modules", "node-gyp", "bin", "node-gyp.js"),
  ];
  const js = candidates.find((c) => c !== undefined && c !== "" && existsSync(c));
  if (js !== undefined) return [process.execPath, [js]];
  if (spawnSync("node-gyp", ["--version"], { stdio: "ignore" }).status === 0) return ["node-gyp", []];
  return undefined;
}

const include = headerDir();
if (include === undefined) off("libsecp256k1 headers not found: install libsecp256k1-dev (or libsecp256k1 with pkg-config) and run `node scripts/build-native.mjs`");
const gyp = nodeGyp();
if (gyp === undefined) off("node-gyp not found");

const args = [...gyp[1], "rebuild", "--loglevel=warn"];
// Node's own headers: use the installed ones (no download) when they are next to the binary.
const nodeDir = path.resolve(path.dirname(process.execPath), "..");
if (existsSync(path.join(nodeDir, "include", "node", "node_api.h"))) args.push(`--nodedir=${nodeDir}`);
const run = spawnSync(gyp[0], args, { cwd: addonDir, encoding: "utf8", env: { ...process.env, CFLAGS: `${process.env.CFLAGS ?? ""} -I${include}`.trim() } });
const log = `${run.stdout ?? ""}${run.stderr ?? ""}${run.error ? String(run.error) : ""}`;
mkdirSync(path.join(addonDir, "build"), { recursive: true });
writeFileSync(path.join(addonDir, "build", "build-native.log"), log);
if (run.status !== 0 || !existsSync(addonFile)) {
  const last = log.split("\n").map((l) => l.trim()).filter((l) => /error/i.test(l)).slice(0, 1)[0] ?? `node-gyp exited with ${run.status}`;
  off(`build failed: ${last.slice(0, 160)}; full log in native/secp256k1/build/build-native.log`);
}
try {
  const addon = createRequire(import.meta.url)(addonFile);
  const pub = Buffer.from(addon.xonlyPublicKey(new Uint8Array(32).fill(1))).toString("hex");
  // BIP-340 x-only key of the secret key 0x0101…01 (checked against @noble/curves when written).
  if (pub !== "1b84c5567b126440995d3ed5aaba0565d71e1834604819ff9c17f5e9d5dd078f") throw new Error(`unexpected public key ${pub}`);
} catch (e) {
  off(`built but did not load: ${e instanceof Error ? e.message : String(e)}`);
}
console.log("marmot-harness: native secp256k1 verifier built (native/secp256k1, system libsecp256k1)");
