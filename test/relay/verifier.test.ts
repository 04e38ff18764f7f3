import { describe, it, expect } from "vitest";
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { verifiedSymbol } from "nostr-tools/pure";
import { currentSignatureVerifier, eventIdOf, jsSignatureVerifier, loadSignatureVerifier, nostrWasmUrl, type SignatureVerifier, type SignedEventFields } from "../../src/nostr/verify.ts";
import { RelayCore } from "../../src/simulated-relay/core.ts";
import type { RelayMessage } from "../../src/simulated-relay/messages.ts";
import { VerifyPool } from "../../src/simulated-relay/verify-pool.ts";
import { startRelayServer } from "../../src/simulated-relay/ws-server.ts";
import { SimNetwork } from "../../src/simulated-relay/network.ts";
import { nativeAddonPath, nativeAvailable } from "../../src/nostr/secp256k1-native.ts";
import { startFromOptions } from "../../src/cli/relay.ts";
import { key, plain, sign } from "./helpers.ts";

const T0 = 1_767_225_600;
const A = key("verifier-a");
const B = key("verifier-b");

/** A good event, and variants each of which must be refused. */
function cases(): { good: SignedEventFields; bad: Record<string, SignedEventFields> } {
  const good = plain(sign(A.sk, 445, T0, [["h", "ab".repeat(32)]], "hello")) as SignedEventFields;
  const other = plain(sign(B.sk, 445, T0, [["h", "ab".repeat(32)]], "hello")) as SignedEventFields;
  const flip = (h: string): string => (h[0] === "0" ? "1" : "0") + h.slice(1);
  return {
    good,
    bad: {
      "flipped signature": { ...good, sig: flip(good.sig) },
      "someone else's signature": { ...good, sig: other.sig },
      "other pubkey": { ...good, pubkey: B.pk },
      "signature not hex": { ...good, sig: "zz".repeat(64) },
      "short signature": { ...good, sig: good.sig.slice(0, 100) },
      "pubkey not on the curve": { ...good, pubkey: "f".repeat(64) },
    },
  };
}

describe("signature verifier (src/nostr/verify.ts)", () => {
  it("loads WASM libsecp256k1 once; it and the pure-JS verifier agree on good and bad signatures", async () => {
    const v = await loadSignatureVerifier();
    expect(await loadSignatureVerifier()).toBe(v); // once per process
    // nostr-wasm is a dependency and loads here; the native addon comes first when it is built.
    expect(v.name).toBe(nativeAvailable() ? "native-libsecp256k1" : "wasm-libsecp256k1");
    expect(currentSignatureVerifier()).toBe(v);
    const wasm = await loadSignatureVerifier("wasm");
    expect(wasm.name).toBe("wasm-libsecp256k1");
    const { good, bad } = cases();
    for (const ver of [v, wasm, jsSignatureVerifier]) {
      expect(ver.verify(good), ver.name).toBe(true);
      for (const [what, e] of Object.entries(bad)) expect(ver.verify(e), `${ver.name}: ${what}`).toBe(false);
    }
    // WASM re-derives the id: content changed under a valid (id, sig) pair is refused.
    expect(wasm.verify({ ...good, content: "changed" })).toBe(false);
    expect(eventIdOf(good)).toBe(good.id);
    // Nothing is read from or written to the caller's object.
    const marked = { ...bad["flipped signature"]!, [verifiedSymbol]: true };
    expect(v.verify(marked)).toBe(false);
    expect(Object.getOwnPropertySymbols(good)).toEqual([]);
    expect(await loadSignatureVerifier("js")).toBe(jsSignatureVerifier);
  });

  it("falls back to pure JS, saying why, when WASM cannot load (MARMOT_NO_WASM=1 MARMOT_NO_NATIVE=1 in a fresh process)", async () => {
    const script = `import { loadSignatureVerifier } from "./src/nostr/verify.ts"; const v = await loadSignatureVerifier(); console.log(JSON.stringify({ name: v.name, reason: v.fallbackReason }));`;
    const { stdout } = await promisify(execFile)(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], { env: { ...process.env, MARMOT_NO_WASM: "1", MARMOT_NO_NATIVE: "1" }, timeout: 30_000 });
    const out = JSON.parse(stdout.trim().split("\n").pop() as string) as { name: string; reason: string };
    expect(out.name).toBe("js-noble");
    expect(out.reason).toMatch(/MARMOT_NO_WASM/);
  });
});

describe("relay core with the verifier", () => {
  function core(opts: Partial<ConstructorParameters<typeof RelayCore>[0]> = {}) {
    const c = new RelayCore({ name: "r", clock: { now: () => T0 * 1000 }, ...opts });
    const out: RelayMessage[] = [];
    const s = c.openSession("alice", (m) => out.push(m));
    const pub = (e: object): RelayMessage => {
      out.length = 0;
      s.handle(["EVENT", e]);
      return out.find((m) => m[0] === "OK" || m[0] === "NOTICE") as RelayMessage;
    };
    return { c, pub };
  }

  it("refuses every bad case with WASM and with JS, and says which verifier runs in its stats", async () => {
    const wasm = await loadSignatureVerifier();
    for (const v of [wasm, jsSignatureVerifier]) {
      const { c, pub } = core({ signatureVerifier: v });
      expect(c.stats.signatureVerifier).toBe(v.name);
      const { good, bad } = cases();
      for (const [what, e] of Object.entries(bad)) {
        const ok = pub(e);
        expect(ok[0] === "NOTICE" || (ok[0] === "OK" && ok[2] === false), `${v.name}: ${what} ${JSON.stringify(ok)}`).toBe(true);
      }
      expect(pub(good)).toEqual(["OK", good.id, true, ""]);
      expect(c.store.size).toBe(1);
    }
    expect(core({ verifySignatures: false }).c.stats.signatureVerifier).toBe("off");
    expect(JSON.parse(JSON.stringify(core().c.stats)).signatureVerifier).toBe(wasm.name);
  });

  it("recomputes the id itself: a verifier that accepts anything still cannot let a wrong id in, nor a nostr-tools 'verified' mark", async () => {
    const yes: SignatureVerifier = { name: "js-noble", verify: () => true };
    const { pub } = core({ signatureVerifier: yes });
    const { good } = cases();
    const wrongId = { ...good, content: "changed" };
    expect(pub(wrongId)).toEqual(["OK", good.id, false, "invalid: event id does not match the serialized event"]);
    // A forged signature on an object carrying nostr-tools' verified mark is refused by the real verifier.
    const { pub: pub2 } = core({ signatureVerifier: await loadSignatureVerifier() });
    const forged = { ...good, sig: cases().bad["flipped signature"]!.sig, [verifiedSymbol]: true };
    expect(pub2(forged)).toEqual(["OK", good.id, false, "invalid: signature verification failed"]);
  });

  it("SimNetwork.ready() resolves to the WASM verifier its relays then use", async () => {
    const net = new SimNetwork({ seed: "v" });
    const v = await net.ready();
    expect(net.addRelay("r").core.verifierName).toBe(v.name);
  });
});

describe("verify pool (worker threads) and the WebSocket server", () => {
  it("workers run WASM when asked, and answer like the main thread", async () => {
    const pool = new VerifyPool(2, nostrWasmUrl());
    try {
      const { good, bad } = cases();
      expect(await pool.verify(good)).toBe(true);
      for (const [what, e] of Object.entries(bad)) expect(await pool.verify(e), what).toBe(false);
      expect(await pool.verify({ ...good, content: "changed" })).toBe(false);
      expect(pool.verifiers).toEqual(["wasm-libsecp256k1", "wasm-libsecp256k1"]);
      expect(pool.fallbackReason).toBeUndefined();
    } finally {
      await pool.close();
    }
    // native libsecp256k1 in the workers when the addon is built (it also checks the id)
    if (nativeAvailable()) {
      const native = new VerifyPool(1, nostrWasmUrl(), nativeAddonPath());
      try {
        const { good, bad } = cases();
        expect(await native.verify(good)).toBe(true);
        for (const [what, e] of Object.entries(bad)) expect(await native.verify(e), what).toBe(false);
        expect(await native.verify({ ...good, content: "changed" })).toBe(false);
        expect(native.verifiers).toEqual(["native-libsecp256k1"]);
      } finally {
        await native.close();
      }
    }
    // an addon that does not load: the worker falls back to WASM and says why
    const broken = new VerifyPool(1, nostrWasmUrl(), "/nonexistent/marmot_secp256k1.node");
    try {
      expect(await broken.verify(cases().good)).toBe(true);
      expect(broken.verifiers).toEqual(["wasm-libsecp256k1"]);
      expect(broken.fallbackReason).toMatch(/Cannot find module|nonexistent/);
    } finally {
      await broken.close();
    }
    const js = new VerifyPool(1);
    try {
      expect(await js.verify(cases().good)).toBe(true);
      expect(js.verifiers).toEqual(["js-noble"]);
    } finally {
      await js.close();
    }
  });

  it("NIP-11 names the verifier of the relay and of its workers (WASM by default, JS when chosen, off)", async () => {
    const servers = [await startRelayServer({ verifyWorkers: 1 }), await startRelayServer({ verifyWorkers: 1, signatureVerifier: jsSignatureVerifier }), await startRelayServer({ verifySignatures: false })];
    try {
      const info = async (i: number): Promise<{ signature_verifier: string; verify_workers: { count: number; verifiers: string[] } }> => {
        const res = await fetch(servers[i]!.url.replace("ws:", "http:"), { headers: { Accept: "application/nostr+json" } });
        return (await res.json()) as never;
      };
      // Workers report once started; a first verification guarantees it.
      await (servers[0] as unknown as { pool: VerifyPool }).pool.verify(cases().good);
      await (servers[1] as unknown as { pool: VerifyPool }).pool.verify(cases().good);
      expect(await info(0)).toMatchObject({ signature_verifier: nativeAvailable() ? "native-libsecp256k1" : "wasm-libsecp256k1", verify_workers: { count: 1, verifiers: [nativeAvailable() ? "native-libsecp256k1" : "wasm-libsecp256k1"] } });
      expect(await info(1)).toMatchObject({ signature_verifier: "js-noble", verify_workers: { count: 1, verifiers: ["js-noble"] } });
      expect(await info(2)).toMatchObject({ signature_verifier: "off", verify_workers: { count: 0, verifiers: [] } });
    } finally {
      for (const s of servers) await s.close();
    }
  });

  it("`relay --js-verifier` runs pure JS, and still refuses a bad signature", async () => {
    const server = await startFromOptions({ port: 0, host: "127.0.0.1", seed: "s", name: "js", jsVerifier: true, verifyWorkers: 0 });
    try {
      expect(server.info().signature_verifier).toBe("js-noble");
      expect(server.relay.core.verifier).toBe(jsSignatureVerifier);
      const { good, bad } = cases();
      const r = server.relay.core.load([bad["flipped signature"], good]);
      expect(r.accepted).toBe(1);
      expect(r.refused).toEqual([{ id: good.id, reason: "invalid: signature verification failed" }]);
    } finally {
      await server.close();
    }
  });
});
