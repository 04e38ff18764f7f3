import { describe, it, expect, beforeAll, afterAll } from "vitest";
import WebSocket from "ws";
import { startRelayServer, type RelayServer } from "../../src/simulated-relay/ws-server.ts";
import type { RelayMessage } from "../../src/simulated-relay/messages.ts";
import type { NostrEvent } from "../../src/relays/types.ts";
import { jsSignatureVerifier, loadSignatureVerifier } from "../../src/nostr/verify.ts";
import { key, sign, plain, RawClient } from "./helpers.ts";

const A = key("bad-input-a");
const now = (): number => Math.floor(Date.now() / 1000);

const refused = (m: RelayMessage): boolean => (m[0] === "OK" && m[2] === false && /^invalid: /.test(m[3])) || (m[0] === "NOTICE" && /^invalid: /.test(m[1]));

describe("more bad input over WebSocket (signatures checked on a WASM worker thread and on the event loop)", () => {
  let server: RelayServer;
  let c: RawClient;
  let stored: NostrEvent;

  beforeAll(async () => {
    server = await startRelayServer({ verifyWorkers: 1 });
    c = await RawClient.open(server.url);
    stored = sign(A.sk, 445, now() - 60, [["h", "g1"]], "already stored");
    expect(await c.publish(plain(stored))).toEqual(["OK", stored.id, true, ""]);
  });
  afterAll(async () => {
    c.close();
    await server.close();
  });

  /** After each case: the same connection works and nothing stored was lost. */
  async function stillFine(): Promise<void> {
    expect((await c.query({ ids: [stored.id] })).map((e) => e.id)).toEqual([stored.id]);
    expect(c.ws.readyState).toBe(WebSocket.OPEN);
  }

  it("upper-case hex in id, pubkey or sig is refused (NIP-01 says lowercase)", async () => {
    const e = plain(sign(A.sk, 1, now(), [], "case"));
    for (const field of ["id", "pubkey", "sig"] as const) expect(refused(await c.publish({ ...e, [field]: e[field].toUpperCase() })), field).toBe(true);
    await stillFine();
  });

  it("kind above 65535, fractional or huge created_at are refused", async () => {
    const e = plain(sign(A.sk, 1, now(), [], "numbers"));
    for (const [f, v] of [["kind", 65536], ["created_at", 1.5], ["created_at", 1e300], ["kind", -1]] as const) expect(refused(await c.publish({ ...e, [f]: v })), `${f}=${v}`).toBe(true);
    await stillFine();
  });

  it("unknown extra fields are not stored or served back", async () => {
    const e = sign(A.sk, 1, now(), [["t", "extra"]], "extra fields");
    // Also a "__proto__" key as JSON text (JSON.parse makes it an own property).
    const text = JSON.stringify(["EVENT", { ...plain(e), relays: ["wss://x"], seen_on: 3 }]).replace(/}]$/, ',"__proto__":{"evil":true}}]');
    const from = c.frames.length;
    c.send(text);
    expect(await c.next((m) => m[0] === "OK", from)).toEqual(["OK", e.id, true, ""]);
    const [got] = await c.query({ ids: [e.id] });
    expect(Object.keys(got as object).sort()).toEqual(["content", "created_at", "id", "kind", "pubkey", "sig", "tags"]);
    await stillFine();
  });

  it("lone UTF-16 surrogates and other odd Unicode in content and tags: accepted when signed, served intact; WASM and JS agree", async () => {
    const e = sign(A.sk, 1, now(), [["t", "\ud800"], ["h", "é\u0000\u2028"]], "lone \udfff, nul \u0000, emoji 🧪, line sep \u2028");
    const wasm = await loadSignatureVerifier();
    expect(wasm.verify(plain(e))).toBe(true);
    expect(jsSignatureVerifier.verify(plain(e))).toBe(true);
    expect(await c.publish(plain(e))).toEqual(["OK", e.id, true, ""]);
    const [got] = await c.query({ ids: [e.id] });
    expect(got).toEqual(plain(e));
    // Changing one code unit changes the id: refused.
    expect(await c.publish({ ...plain(e), content: e.content.replace("\udfff", "\udffe") })).toEqual(["OK", e.id, false, "invalid: event id does not match the serialized event"]);
    await stillFine();
  });

  it("a deeply nested frame (100,000 levels) gets NOTICE invalid and the relay survives", async () => {
    const from = c.frames.length;
    c.send("[".repeat(100_000) + "]".repeat(100_000));
    expect((await c.next((m) => m[0] === "NOTICE", from))[1]).toMatch(/^invalid: /);
    await stillFine();
  });

  it("a forged signature sent first does not poison the signature cache for the genuine event, pipelined", async () => {
    const e = plain(sign(A.sk, 1, now(), [], "pipelined"));
    const forged = { ...e, sig: (e.sig[0] === "0" ? "1" : "0") + e.sig.slice(1) };
    const from = c.frames.length;
    c.send(["EVENT", forged]);
    c.send(["EVENT", e]);
    await c.next((m) => m[0] === "OK" && m[2] === true, from);
    const oks = c.frames.slice(from).filter((m) => m[0] === "OK");
    expect(oks).toEqual([["OK", e.id, false, "invalid: signature verification failed"], ["OK", e.id, true, ""]]);
    await stillFine();
  });

  it("a (id, sig) pair verified by a worker cannot carry changed content in", async () => {
    const e = plain(sign(A.sk, 1, now(), [["t", "x"]], "original"));
    expect(await c.publish(e)).toEqual(["OK", e.id, true, ""]);
    for (const changed of [{ ...e, content: "changed" }, { ...e, tags: [] }, { ...e, kind: 2 }, { ...e, created_at: e.created_at + 1 }]) {
      expect(await c.publish(changed)).toEqual(["OK", e.id, false, "invalid: event id does not match the serialized event"]);
    }
    expect((await c.query({ ids: [e.id] }))[0]?.content).toBe("original");
    await stillFine();
  });
});
