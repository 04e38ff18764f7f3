/**
 * The Schnorr verifier (WASM libsecp256k1 with a pure-JS fallback), its report field, and the fast
 * strict base64 decoder that replaced the regular expression on the hot path.
 */
import { describe, expect, it } from "vitest";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { getSignatureVerifier, judge } from "../../src/checkers/compliance/index.ts";
import { jsVerifier } from "../../src/checkers/compliance/signature-verifier.ts";
import { decodeBase64Strict } from "../../src/checkers/compliance/util.ts";
import { FIXTURES, loadFixture, replaceEvent } from "./helpers.ts";
import { nativeAvailable } from "../../src/nostr/secp256k1-native.ts";

const fx = loadFixture("engine-r1");
const ev = fx.records[0]?.event as (typeof fx.records)[number]["event"];

describe("signature verifier", () => {
  it("loads the WASM verifier once and it agrees with the pure-JS verifier on good and bad signatures", async () => {
    const auto = await getSignatureVerifier("auto");
    expect(auto.name).toBe(nativeAvailable() ? "native-libsecp256k1" : "wasm-libsecp256k1");
    expect(await getSignatureVerifier("auto")).toBe(auto);
    const wasm = await getSignatureVerifier("wasm");
    expect(wasm.name).toBe("wasm-libsecp256k1");
    expect((await getSignatureVerifier("js")).name).toBe("js-noble");
    const flip = (s: string, i: number): string => s.slice(0, i) + (s[i] === "0" ? "1" : "0") + s.slice(i + 1);
    const cases: [string, { sig: string; pubkey: string }, string, boolean][] = [
      ["valid", { sig: ev.sig, pubkey: ev.pubkey }, ev.id, true],
      ["sig R flipped", { sig: flip(ev.sig, 3), pubkey: ev.pubkey }, ev.id, false],
      ["sig s flipped", { sig: flip(ev.sig, 100), pubkey: ev.pubkey }, ev.id, false],
      ["other message", { sig: ev.sig, pubkey: ev.pubkey }, flip(ev.id, 0), false],
      ["other key", { sig: ev.sig, pubkey: fx.records[5]?.event.pubkey as string }, ev.id, false],
    ];
    for (const [name, patch, id, expected] of cases) {
      const e = { ...ev, ...patch };
      expect(jsVerifier.verify(e, id), `js ${name}`).toBe(expected);
      // The WASM verifier also re-derives the message from the event: use the event's own id for it.
      if (name !== "other message") expect(wasm.verify(e, id), `wasm ${name}`).toBe(expected);
      if (auto.name !== "wasm-libsecp256k1") expect(auto.verify(e, id), `${auto.name} ${name}`).toBe(expected);
    }
  });

  it("the report names the verifier that ran; both flag a forged signature as malformed", async () => {
    const forged = { ...ev, sig: ev.sig.slice(0, 127) + (ev.sig.endsWith("0") ? "1" : "0") };
    const records = replaceEvent(fx.records, ev.id, forged);
    const w = await judge(records, { profile: "R1" });
    const j = await judge(records, { profile: "R1", signatureVerifier: "js" });
    const none = await judge(records, { profile: "R1", verifySignatures: false });
    expect(w.signatureVerifier).toBe(nativeAvailable() ? "native-libsecp256k1" : "wasm-libsecp256k1");
    expect(j.signatureVerifier).toBe("js-noble");
    expect(none.signatureVerifier).toBe("none");
    for (const r of [w, j]) expect(r.malformed.map((m) => m.eventId)).toEqual([ev.id]);
    expect(none.malformed).toEqual([]);
  });

  it("copies of an event seen on several relays: a tampered copy or one with a bad signature is malformed; an exact copy is not", async () => {
    const idx = fx.records.findIndex((r) => r.event.id === ev.id);
    const rec = fx.records[idx] as (typeof fx.records)[number];
    const exact = { ...rec, event: { ...rec.event }, relay: "ws://127.0.0.1:7001" };
    const tampered = { ...rec, event: { ...rec.event, content: rec.event.content + "x" }, relay: "ws://127.0.0.1:7002" };
    const badSig = { ...rec, event: { ...rec.event, sig: ev.sig.slice(0, 127) + (ev.sig.endsWith("0") ? "1" : "0") }, relay: "ws://127.0.0.1:7003" };
    const clean = await judge([...fx.records, exact], { profile: "R1" });
    expect(clean.malformed).toEqual([]);
    for (const copy of [tampered, badSig]) {
      const r = await judge([...fx.records, copy], { profile: "R1" });
      expect(r.malformed.map((m) => m.eventId)).toEqual([ev.id]);
      expect(r.malformed[0]?.reason).toMatch(/a copy \(record \d+\)/);
    }
  });

  it("large captures verify signatures on worker threads with the same verdicts", async () => {
    const forged = { ...ev, sig: ev.sig.slice(0, 127) + (ev.sig.endsWith("0") ? "1" : "0") };
    const once = replaceEvent(fx.records, ev.id, forged);
    // 2,000+ records (the same events seen on many relays) switch the worker path on.
    const many = Array.from({ length: Math.ceil(2_100 / once.length) }, (_, k) => once.map((r) => ({ ...r, relay: `ws://127.0.0.1:${7000 + k}` }))).flat();
    const onWorkers = await judge(many, { profile: "R1", verifyWorkers: 2 });
    const onMain = await judge(many, { profile: "R1", verifyWorkers: 0 });
    expect(onWorkers.verifyWorkers).toBe(2);
    expect(onMain.verifyWorkers).toBe(0);
    for (const r of [onWorkers, onMain]) expect(r.malformed.map((m) => m.eventId)).toEqual([ev.id]);
    expect(onWorkers.findings).toEqual(onMain.findings);
  }, 30_000);

  it("falls back to the pure-JS verifier, and says so, when the WASM cannot be used", () => {
    let json: { signatureVerifier: string; notes: string[]; malformed: unknown[] } = { signatureVerifier: "", notes: [], malformed: [] };
    const root = path.resolve(FIXTURES, "..");
    const dir = mkdtempSync(path.join(tmpdir(), "mh-verifier-"));
    const file = path.join(dir, "report.json");
    try {
      const out = execFileSync(process.execPath, ["bin/marmot-harness.js", "check", "fixtures/engine-r1.jsonl", "--json", file, "-q"], {
        cwd: root,
        env: { ...process.env, MARMOT_CHECKER_NO_WASM: "1" },
        encoding: "utf8",
      });
      expect(out).toMatch(/signatures: js-noble/);
      json = JSON.parse(readFileSync(file, "utf8")) as typeof json;
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    expect(json.signatureVerifier).toBe("js-noble");
    expect(json.notes.some((n) => n.includes("WASM secp256k1 unavailable"))).toBe(true);
    expect(json.malformed).toEqual([]);
  }, 30_000);
});

describe("strict base64", () => {
  it("accepts canonical padded base64 only", () => {
    expect(decodeBase64Strict("AAECAw==")).toEqual(new Uint8Array([0, 1, 2, 3]));
    expect(decodeBase64Strict("")).toEqual(new Uint8Array(0));
    for (const bad of ["AAECAw", "AAECA w==", "AA-_", "AAECAx==", "AAEC\n", "=AAA", "AAECAw=", 7]) expect(decodeBase64Strict(bad), String(bad)).toBeUndefined();
  });
});
