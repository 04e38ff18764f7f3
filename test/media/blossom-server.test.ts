import { describe, it, expect, beforeEach, afterEach } from "vitest";
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createHash } from "node:crypto";
import { finalizeEvent, generateSecretKey, getPublicKey } from "nostr-tools/pure";
import { encodeAuthorizationHeader, type SignedEvent } from "blossom-client-sdk";
import { BlossomServer, type BlossomServerOptions } from "../../src/blossom/server.ts";
import { BlossomClient } from "../../src/blossom/client.ts";
import { BlossomError, verifyAuthHeader } from "../../src/blossom/auth.ts";
import { DiskBlobStore } from "../../src/blossom/store.ts";
import { decryptMedia, encryptMedia, MediaError } from "../../src/engine/mip04-media.ts";
import { createRng } from "../../src/sim/random.ts";

const sha = (d: Uint8Array) => createHash("sha256").update(d).digest("hex");
const nowS = () => Math.floor(Date.now() / 1000);

function authEvent(sk: Uint8Array, tags: string[][], over: { kind?: number; created_at?: number } = {}): SignedEvent {
  return finalizeEvent({ kind: over.kind ?? 24242, created_at: over.created_at ?? nowS() - 1, content: "test", tags }, sk) as unknown as SignedEvent;
}

function header(ev: SignedEvent): string {
  return encodeAuthorizationHeader(ev);
}

let server: BlossomServer;
async function start(opts: BlossomServerOptions = {}): Promise<BlossomServer> {
  server = new BlossomServer(opts);
  await server.start();
  return server;
}

afterEach(async () => {
  await server?.stop();
});

async function put(data: Uint8Array, auth?: string): Promise<Response> {
  return fetch(`${server.url}/upload`, { method: "PUT", body: data, headers: auth ? { Authorization: auth } : {} });
}

async function errorOf(res: Response): Promise<{ status: number; code: string }> {
  const body = (await res.json()) as { code: string; message: string };
  expect(typeof body.message).toBe("string");
  expect(res.headers.get("x-reason")).toBeTruthy();
  return { status: res.status, code: body.code };
}

describe("Blossom server with blossom-client-sdk", () => {
  beforeEach(async () => {
    await start();
  });

  it("listens on loopback", () => {
    expect(server.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(server.port).toBeGreaterThan(0);
  });

  it("uploads, downloads, checks, lists and deletes", async () => {
    const sk = generateSecretKey();
    const c = new BlossomClient(server.url, { secretKey: sk });
    const a = createRng("blob-a").bytes(3000);
    const b = createRng("blob-b").bytes(10);
    const da = await c.upload(a);
    const db = await c.upload(b, { type: "image/png" });
    expect(da).toMatchObject({ sha256: sha(a), size: 3000, type: "application/octet-stream" });
    expect(da.url).toBe(`${server.url}/${sha(a)}.bin`);
    expect(db.url).toBe(`${server.url}/${sha(b)}.png`);
    expect(Buffer.from(await c.download(sha(a))).equals(Buffer.from(a))).toBe(true);
    expect(await c.has(sha(a))).toBe(true);

    // GET and HEAD accept an extension; HEAD carries type and length.
    const head = await fetch(`${server.url}/${sha(b)}.png`, { method: "HEAD" });
    expect(head.status).toBe(200);
    expect(head.headers.get("content-type")).toBe("image/png");
    expect(head.headers.get("content-length")).toBe("10");
    const got = await fetch(`${server.url}/${sha(b)}.whatever`);
    expect(Buffer.from(await got.arrayBuffer()).equals(Buffer.from(b))).toBe(true);

    const listed = await c.list();
    expect(listed.map((d) => d.sha256).sort()).toEqual([sha(a), sha(b)].sort());
    expect(await c.list(getPublicKey(generateSecretKey()))).toEqual([]);
    expect(await c.list(undefined, { since: nowS() + 3600 })).toEqual([]);
    expect((await c.list(undefined, { until: nowS() + 3600 })).length).toBe(2);

    expect(await c.delete(sha(a))).toBe(true);
    expect(await c.has(sha(a))).toBe(false);
    await expect(c.download(sha(a))).rejects.toMatchObject({ code: "CLIENT_HTTP_ERROR", status: 404 });
    expect((await c.list()).map((d) => d.sha256)).toEqual([sha(b)]);
  });

  it("keeps a blob uploaded by two owners until both delete it", async () => {
    const c1 = new BlossomClient(server.url, { secretKey: generateSecretKey() });
    const c2 = new BlossomClient(server.url, { secretKey: generateSecretKey() });
    const data = createRng("shared").bytes(100);
    await c1.upload(data);
    await c2.upload(data);
    await c1.delete(sha(data));
    expect(await c1.has(sha(data))).toBe(true);
    expect(await c1.list()).toEqual([]);
    await c2.delete(sha(data));
    expect(await c1.has(sha(data))).toBe(false);
  });

  it("answers unknown routes and unknown blobs with JSON errors", async () => {
    expect(await errorOf(await fetch(`${server.url}/nope`))).toEqual({ status: 404, code: "BAD_REQUEST" });
    expect(await errorOf(await fetch(`${server.url}/${"0".repeat(64)}`))).toEqual({ status: 404, code: "BLOB_NOT_FOUND" });
    expect((await fetch(`${server.url}/${"0".repeat(64)}`, { method: "HEAD" })).status).toBe(404);
    expect(await errorOf(await fetch(`${server.url}/list/${"ab".repeat(32)}?since=yesterday`))).toEqual({ status: 400, code: "BAD_REQUEST" });
  });
});

describe("Blossom authorization", () => {
  const sk = generateSecretKey();
  const data = new TextEncoder().encode("auth test blob");
  const x = sha(data);
  const exp = () => String(nowS() + 600);

  beforeEach(async () => {
    await start();
  });

  it("accepts a valid upload auth in standard padded base64 and in base64url", async () => {
    const ev = authEvent(sk, [["t", "upload"], ["x", x], ["expiration", exp()]]);
    const std = `Nostr ${Buffer.from(JSON.stringify(ev)).toString("base64")}`;
    expect((await put(data, std)).status).toBe(200);
    expect((await put(data, header(ev))).status).toBe(200);
  });

  const cases: [string, () => string | undefined, number, string][] = [
    ["missing", () => undefined, 401, "AUTH_MISSING"],
    ["not the Nostr scheme", () => "Bearer abc", 401, "AUTH_MALFORMED"],
    ["not base64 JSON", () => "Nostr !!!!", 401, "AUTH_MALFORMED"],
    ["expired", () => header(authEvent(sk, [["t", "upload"], ["x", x], ["expiration", String(nowS() - 10)]], { created_at: nowS() - 100 })), 401, "AUTH_EXPIRED"],
    ["without expiration", () => header(authEvent(sk, [["t", "upload"], ["x", x]])), 401, "AUTH_EXPIRED"],
    ["created in the future", () => header(authEvent(sk, [["t", "upload"], ["x", x], ["expiration", String(nowS() + 9000)]], { created_at: nowS() + 3600 })), 401, "AUTH_NOT_YET_VALID"],
    ["of the wrong kind", () => header(authEvent(sk, [["t", "upload"], ["x", x], ["expiration", exp()]], { kind: 1 })), 401, "AUTH_BAD_KIND"],
    ["with a wrong verb", () => header(authEvent(sk, [["t", "delete"], ["x", x], ["expiration", exp()]])), 403, "AUTH_WRONG_VERB"],
    ["for another hash", () => header(authEvent(sk, [["t", "upload"], ["x", "ab".repeat(32)], ["expiration", exp()]])), 403, "AUTH_WRONG_HASH"],
    ["without x", () => header(authEvent(sk, [["t", "upload"], ["expiration", exp()]])), 403, "AUTH_WRONG_HASH"],
    [
      "with a bad signature",
      () => {
        const ev = authEvent(sk, [["t", "upload"], ["x", x], ["expiration", exp()]]);
        const sig = (ev.sig[0] === "0" ? "1" : "0") + ev.sig.slice(1);
        return header({ ...ev, sig });
      },
      401,
      "AUTH_BAD_SIGNATURE",
    ],
    [
      "with content changed after signing",
      () => header({ ...authEvent(sk, [["t", "upload"], ["x", x], ["expiration", exp()]]), content: "changed" }),
      401,
      "AUTH_BAD_SIGNATURE",
    ],
  ];
  it.each(cases)("refuses an upload whose auth is %s", async (_n, make, status, code) => {
    expect(await errorOf(await put(data, make()))).toEqual({ status, code });
    expect(server.blobs()).toEqual([]);
    const last = server.authLog().at(-1)!;
    expect(last).toMatchObject({ verb: "upload", status, code });
    expect(server.authCapture()).toEqual([]);
  });

  it("checks delete auth: missing, wrong verb, wrong hash, not the owner", async () => {
    const owner = new BlossomClient(server.url, { secretKey: sk });
    await owner.upload(data);
    const del = (auth?: string) => fetch(`${server.url}/${x}`, { method: "DELETE", headers: auth ? { Authorization: auth } : {} });
    expect(await errorOf(await del())).toEqual({ status: 401, code: "AUTH_MISSING" });
    expect(await errorOf(await del(header(authEvent(sk, [["t", "upload"], ["x", x], ["expiration", exp()]]))))).toEqual({ status: 403, code: "AUTH_WRONG_VERB" });
    expect(await errorOf(await del(header(authEvent(sk, [["t", "delete"], ["x", "cd".repeat(32)], ["expiration", exp()]]))))).toEqual({ status: 403, code: "AUTH_WRONG_HASH" });
    const other = generateSecretKey();
    expect(await errorOf(await del(header(authEvent(other, [["t", "delete"], ["x", x], ["expiration", exp()]]))))).toEqual({ status: 403, code: "NOT_OWNER" });
    expect(await owner.has(x)).toBe(true);
    expect((await del(header(authEvent(sk, [["t", "delete"], ["x", "cd".repeat(32)], ["x", x], ["expiration", exp()]])))).status).toBe(200);
    expect(await owner.has(x)).toBe(false);
  });

  it("refuses an upload whose body does not match X-SHA-256", async () => {
    const ev = authEvent(sk, [["t", "upload"], ["x", x], ["expiration", exp()]]);
    const res = await fetch(`${server.url}/upload`, { method: "PUT", body: new TextEncoder().encode("other"), headers: { Authorization: header(ev), "X-SHA-256": x } });
    expect(await errorOf(res)).toEqual({ status: 409, code: "HASH_MISMATCH" });
  });

  it("verifyAuthHeader throws typed errors without a server", () => {
    const ev = authEvent(sk, [["t", "get"], ["server", "https://cdn.example.com/"], ["expiration", exp()]]);
    expect(verifyAuthHeader(header(ev), { verb: "get", now: nowS(), sha256: x, serverHost: "cdn.example.com" }).pubkey).toBe(getPublicKey(sk));
    expect(() => verifyAuthHeader(header(ev), { verb: "get", now: nowS(), sha256: x, serverHost: "other.example" })).toThrow(BlossomError);
    expect(() => verifyAuthHeader(header(ev), { verb: "get", now: nowS() + 10_000 })).toThrow(/AUTH_EXPIRED/);
  });
});

describe("Blossom auth required for get and list", () => {
  it("asks for auth with 401 and accepts the client's signed retry", async () => {
    await start({ requireAuth: { get: true, list: true } });
    const sk = generateSecretKey();
    const c = new BlossomClient(server.url, { secretKey: sk });
    const data = createRng("private").bytes(64);
    await c.upload(data);
    expect((await fetch(`${server.url}/${sha(data)}`)).status).toBe(401);
    expect((await fetch(`${server.url}/list/${getPublicKey(sk)}`)).status).toBe(401);
    expect(Buffer.from(await c.download(sha(data))).equals(Buffer.from(data))).toBe(true);
    expect((await c.list()).length).toBe(1);
    await expect(new BlossomClient(server.url).download(sha(data))).rejects.toMatchObject({ code: "CLIENT_HTTP_ERROR" });
  });
});

describe("Blossom faults", () => {
  const sk = generateSecretKey();
  let c: BlossomClient;
  beforeEach(async () => {
    await start();
    c = new BlossomClient(server.url, { secretKey: sk });
  });

  it("missing blob: GET and HEAD answer 404 while the fault is on", async () => {
    const data = createRng("m").bytes(50);
    await c.upload(data);
    server.setFaults({ missing: [sha(data)] });
    expect(await c.has(sha(data))).toBe(false);
    await expect(c.download(sha(data))).rejects.toMatchObject({ status: 404 });
    server.setFaults({ missing: "all" });
    expect(await c.has(sha(data))).toBe(false);
    server.clearFaults();
    expect(await c.has(sha(data))).toBe(true);
  });

  it("corrupted bytes: the client's hash check and MIP-04 decryption both detect them", async () => {
    const exporter = createRng("exp").bytes(32);
    const enc = encryptMedia({ exporterSecret: exporter, data: createRng("pic").bytes(2048), mime: "image/png", filename: "a.png" });
    const d = await c.upload(enc.ciphertext);
    server.setFaults({ corrupt: "all" });
    await expect(c.download(d.sha256)).rejects.toMatchObject({ code: "CLIENT_HASH_MISMATCH" });
    const raw = await c.download(d.sha256, { verify: false });
    expect(raw.length).toBe(enc.ciphertext.length);
    expect(() => decryptMedia({ exporterSecret: exporter, blob: raw, imeta: enc.imeta(d.url) })).toThrow(MediaError);
    try {
      decryptMedia({ exporterSecret: exporter, blob: raw, imeta: enc.imeta(d.url) });
    } catch (e) {
      expect((e as MediaError).code).toBe("MEDIA_CIPHERTEXT_HASH_MISMATCH");
    }
    server.clearFaults();
    const ok = await c.download(d.sha256);
    expect(decryptMedia({ exporterSecret: exporter, blob: ok, imeta: enc.imeta(d.url) }).data.length).toBe(2048);
  });

  it("swapped blob: the server serves another valid blob under the address; hash checks catch it", async () => {
    const exporter = createRng("exp-swap").bytes(32);
    const a = encryptMedia({ exporterSecret: exporter, data: createRng("a").bytes(700), mime: "image/png", filename: "a.png" });
    const b = encryptMedia({ exporterSecret: exporter, data: createRng("b").bytes(900), mime: "image/png", filename: "b.png" });
    const da = await c.upload(a.ciphertext);
    const db = await c.upload(b.ciphertext);
    server.setFaults({ swap: { [da.sha256]: db.sha256 } });
    const raw = await c.download(da.sha256, { verify: false });
    expect(Buffer.from(raw).equals(Buffer.from(b.ciphertext))).toBe(true);
    await expect(c.download(da.sha256)).rejects.toMatchObject({ code: "CLIENT_HASH_MISMATCH" });
    expect(() => decryptMedia({ exporterSecret: exporter, blob: raw, imeta: a.imeta(da.url) })).toThrow(expect.objectContaining({ code: "MEDIA_CIPHERTEXT_HASH_MISMATCH" }));
    // the other direction is untouched, and clearing the fault restores the blob
    expect(Buffer.from(await c.download(db.sha256)).equals(Buffer.from(b.ciphertext))).toBe(true);
    server.clearFaults();
    expect(decryptMedia({ exporterSecret: exporter, blob: await c.download(da.sha256), imeta: a.imeta(da.url) }).data.length).toBe(700);
  });

  it("upload with a precomputed hash: accepted when right, refused by the server when wrong", async () => {
    const data = createRng("pre").bytes(300);
    expect((await c.upload(data, { sha256: sha(data) })).sha256).toBe(sha(data));
    const other = createRng("pre2").bytes(300);
    await expect(c.upload(other, { sha256: sha(data) })).rejects.toBeInstanceOf(Error);
    expect(await c.has(sha(other))).toBe(false);
  });

  it("slow responses: a client with a short timeout gives up, and succeeds once the delay is off", async () => {
    const data = createRng("slow").bytes(10);
    await c.upload(data);
    server.setFaults({ delayMs: 1500 });
    const impatient = new BlossomClient(server.url, { secretKey: sk, timeoutMs: 250 });
    await expect(impatient.download(sha(data))).rejects.toMatchObject({ code: "CLIENT_HTTP_ERROR" });
    // A patient client still gets the bytes through the delay.
    expect((await c.download(sha(data))).length).toBe(10);
    server.setFaults({ delayMs: 0 });
    expect((await new BlossomClient(server.url, { timeoutMs: 10_000 }).download(sha(data))).length).toBe(10);
  });

  it("size limit: 413 for uploads over the limit (pre-flight and PUT), accepted under it", async () => {
    server.setFaults({ maxUploadBytes: 1000 });
    await expect(c.upload(new Uint8Array(1001))).rejects.toMatchObject({ status: 413, details: { serverCode: "BLOB_TOO_LARGE" } });
    const ev = authEvent(sk, [["t", "upload"], ["x", sha(new Uint8Array(5000))], ["expiration", String(nowS() + 60)]]);
    expect(await errorOf(await put(new Uint8Array(5000), header(ev)))).toEqual({ status: 413, code: "BLOB_TOO_LARGE" });
    expect((await c.upload(new Uint8Array(1000))).size).toBe(1000);
    expect(server.blobs().length).toBe(1);
  });

  it("refused auth: 401 or 403 for everyone or for listed pubkeys", async () => {
    const data = createRng("r").bytes(20);
    server.setFaults({ refuseAuth: { status: 403 } });
    await expect(c.upload(data)).rejects.toMatchObject({ status: 403, details: { serverCode: "AUTH_REFUSED" } });
    server.setFaults({ refuseAuth: { status: 401 } });
    await expect(c.upload(data)).rejects.toMatchObject({ status: 401 });
    const other = new BlossomClient(server.url, { secretKey: generateSecretKey() });
    server.setFaults({ refuseAuth: { status: 403, pubkeys: [getPublicKey(sk)] } });
    await expect(c.upload(data)).rejects.toMatchObject({ status: 403 });
    expect((await other.upload(data)).sha256).toBe(sha(data));
    expect(server.stats.rejected["AUTH_REFUSED"]).toBeGreaterThanOrEqual(3);
  });

  it("faults can be switched over HTTP when the admin API is on", async () => {
    await server.stop();
    await start({ adminApi: true });
    c = new BlossomClient(server.url, { secretKey: sk });
    const res = await fetch(`${server.url}/_harness/faults`, { method: "PUT", body: JSON.stringify({ maxUploadBytes: 5 }) });
    expect(((await res.json()) as { maxUploadBytes: number }).maxUploadBytes).toBe(5);
    await expect(c.upload(new Uint8Array(6))).rejects.toMatchObject({ status: 413 });
    const stats = (await (await fetch(`${server.url}/_harness/stats`)).json()) as { rejected: Record<string, number> };
    expect(stats.rejected["BLOB_TOO_LARGE"]).toBeGreaterThanOrEqual(1);
  });
});

describe("Blossom disk store", () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), "blossom-test-"));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("keeps blobs and owners across a restart and removes files on delete", async () => {
    const sk = generateSecretKey();
    await start({ store: await DiskBlobStore.open(dir) });
    const data = createRng("disk").bytes(777);
    await new BlossomClient(server.url, { secretKey: sk }).upload(data);
    expect((await readdir(dir)).sort()).toEqual([sha(data), `${sha(data)}.json`].sort());
    await server.stop();

    await start({ store: await DiskBlobStore.open(dir) });
    const c = new BlossomClient(server.url, { secretKey: sk });
    expect(Buffer.from(await c.download(sha(data))).equals(Buffer.from(data))).toBe(true);
    expect((await c.list()).map((d) => d.sha256)).toEqual([sha(data)]);
    await c.delete(sha(data));
    expect(await readdir(dir)).toEqual([]);
  });
});
