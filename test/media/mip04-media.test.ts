import { describe, it, expect } from "vitest";
import { chacha20poly1305 } from "@noble/ciphers/chacha.js";
import { expand, extract } from "@noble/hashes/hkdf.js";
import { sha256 } from "@noble/hashes/sha2.js";
import { bytesToHex, concatBytes, utf8ToBytes } from "@noble/hashes/utils.js";
import { createRng } from "../../src/sim/random.ts";
import {
  MEDIA_ERROR_RULES,
  MediaError,
  blobAddressFromUrl,
  buildImetaTag,
  canonicalMime,
  decryptMedia,
  deriveMediaKey,
  encryptMedia,
  mediaAad,
  mediaExporterLabel,
  parseImetaTag,
  type ParsedImeta,
} from "../../src/engine/mip04-media.ts";

const range = (a: number, b: number) => Uint8Array.from({ length: b - a }, (_, i) => a + i);

function codeOf(f: () => unknown): string | undefined {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(MediaError);
    return (e as MediaError).code;
  }
  return undefined;
}

describe("MIP-04 derivations (known answers)", () => {
  it("derives file key, AAD and ciphertext step by step with @noble directly", () => {
    const exporter = createRng("kat-exporter").bytes(32);
    const plain = utf8ToBytes("step by step");
    const nonce = createRng("kat-nonce").bytes(12);
    const mime = "image/webp";
    const filename = "ph oto.webp";

    const h = sha256(plain);
    const z = new Uint8Array([0]);
    const aad = concatBytes(utf8ToBytes("mip04-v2"), z, h, z, utf8ToBytes(mime), z, utf8ToBytes(filename));
    const info = concatBytes(aad, z, utf8ToBytes("key"));
    const key = expand(sha256, exporter, info, 32);
    const expected = chacha20poly1305(key, nonce, aad).encrypt(plain);

    expect(bytesToHex(mediaAad(h, mime, filename))).toBe(bytesToHex(aad));
    expect(bytesToHex(deriveMediaKey(exporter, h, mime, filename))).toBe(bytesToHex(key));
    // Expand-only (R1) differs from the pre-0.7.1 Extract+Expand variant.
    const legacy = expand(sha256, extract(sha256, exporter, new Uint8Array(0)), info, 32);
    expect(bytesToHex(deriveMediaKey(exporter, h, mime, filename, "extract-expand"))).toBe(bytesToHex(legacy));
    expect(bytesToHex(legacy)).not.toBe(bytesToHex(key));

    const enc = encryptMedia({ exporterSecret: exporter, data: plain, mime, filename, randomBytes: () => nonce });
    expect(bytesToHex(enc.ciphertext)).toBe(bytesToHex(expected));
    expect(bytesToHex(enc.sha256Plain)).toBe(bytesToHex(h));
    expect(bytesToHex(enc.sha256Cipher)).toBe(bytesToHex(sha256(expected)));
  });

  it("matches a pinned vector (computed independently with Python cryptography 48)", () => {
    const exporter = range(0, 32);
    const nonce = range(0xa0, 0xac);
    const plain = utf8ToBytes("Marmot media test vector\n");
    const enc = encryptMedia({ exporterSecret: exporter, data: plain, mime: "image/png", filename: "cat.png", randomBytes: () => nonce });
    expect(bytesToHex(enc.sha256Plain)).toBe("6e42aa3b65be93ace91101b2c1bef055a0984cb14d2e2323c36c679c63cab350");
    expect(bytesToHex(deriveMediaKey(exporter, enc.sha256Plain, "image/png", "cat.png"))).toBe(
      "d484659e99c569ef1b12052484172ec09a7746bfb9ca20199affb1e355fc1920",
    );
    expect(bytesToHex(deriveMediaKey(exporter, enc.sha256Plain, "image/png", "cat.png", "extract-expand"))).toBe(
      "6e0548417f3b52b8a0c45cf0905210bfd762ff7dea896f9b7db01b22a99ea819",
    );
    expect(bytesToHex(enc.ciphertext)).toBe("60da1fec305e2f36b79d01f9e1f86bd4e5d84f6c5dff46d30e3d044de082f2f2ccbcb0519f5203a6d8");
    expect(bytesToHex(enc.sha256Cipher)).toBe("1f6aa9e4d2fa0bc9ded2798c4e27c55e9ce94b5d4fbcde9b113e5d6cf5581a9a");
    expect(enc.imeta("https://blossom.example/1f6aa9e4d2fa0bc9ded2798c4e27c55e9ce94b5d4fbcde9b113e5d6cf5581a9a.bin")).toEqual([
      "imeta",
      "url https://blossom.example/1f6aa9e4d2fa0bc9ded2798c4e27c55e9ce94b5d4fbcde9b113e5d6cf5581a9a.bin",
      "m image/png",
      "filename cat.png",
      "x 6e42aa3b65be93ace91101b2c1bef055a0984cb14d2e2323c36c679c63cab350",
      "n a0a1a2a3a4a5a6a7a8a9aaab",
      "v mip04-v2",
    ]);
  });

  it("uses the MIME in canonical form for the key and the tag", () => {
    const exporter = range(0, 32);
    const a = encryptMedia({ exporterSecret: exporter, data: utf8ToBytes("x"), mime: " IMAGE/JPG ; q=1", filename: "a.jpg", randomBytes: () => range(0, 12) });
    const b = encryptMedia({ exporterSecret: exporter, data: utf8ToBytes("x"), mime: "image/jpeg", filename: "a.jpg", randomBytes: () => range(0, 12) });
    expect(a.mime).toBe("image/jpeg");
    expect(bytesToHex(a.ciphertext)).toBe(bytesToHex(b.ciphertext));
  });

  it("names the exporter per profile", () => {
    expect(mediaExporterLabel("R1")).toEqual({ label: "marmot", context: "encrypted-media", length: 32 });
    expect(mediaExporterLabel("R0")).toEqual({ label: "nostr", context: "nostr", length: 32 });
  });

  it("rejects an exporter secret of the wrong length", () => {
    expect(codeOf(() => encryptMedia({ exporterSecret: new Uint8Array(31), data: new Uint8Array(1), mime: "a/b", filename: "f" }))).toBe("MEDIA_BAD_EXPORTER");
  });
});

describe("canonicalMime", () => {
  it.each([
    ["image/png", "image/png"],
    ["Image/PNG", "image/png"],
    ["  text/plain ; charset=utf-8", "text/plain"],
    ["image/jpg", "image/jpeg"],
    ["application/vnd.api+json", "application/vnd.api+json"],
  ])("%j → %j", (input, out) => expect(canonicalMime(input)).toBe(out));

  it.each(["", "image", "image/", "/png", "a/b/c", "ima ge/png", "image/p\u00e9ng", `${"a".repeat(65)}/b`])("rejects %j", (input) => {
    expect(codeOf(() => canonicalMime(input))).toBe("MEDIA_BAD_MIME");
  });
});

describe("round trips", () => {
  const exporter = createRng("roundtrip").bytes(32);
  // 0 B to 10 MiB, with the ChaCha20 block (64 B) and Poly1305 (16 B) boundaries
  for (const size of [0, 1, 15, 16, 17, 63, 64, 65, 65_537, 1024 * 1024, 10 * 1024 * 1024]) {
    it(`encrypts and decrypts ${size} bytes`, () => {
      const data = size <= 1 ? createRng(`d${size}`).bytes(size) : new Uint8Array(size).map((_, i) => (i * 31 + 7) & 0xff);
      const enc = encryptMedia({ exporterSecret: exporter, data, mime: "application/octet-stream", filename: `f${size}.bin` });
      expect(enc.ciphertext.length).toBe(size + 16);
      const url = `https://cdn.example/${bytesToHex(enc.sha256Cipher)}`;
      const out = decryptMedia({ exporterSecret: exporter, blob: enc.ciphertext, imeta: enc.imeta(url) });
      expect(out.data.length).toBe(size);
      expect(Buffer.compare(Buffer.from(out.data), Buffer.from(data))).toBe(0);
      expect(out.kdf).toBe("expand");
    });
  }
});

describe("parseImetaTag", () => {
  const good = (): string[] =>
    buildImetaTag({
      url: `https://cdn.example/${"ab".repeat(32)}.bin`,
      mime: "image/png",
      filename: "my cat.png",
      sha256Plain: range(0, 32),
      nonce: range(0, 12),
      dim: { width: 640, height: 480 },
    });

  it("parses a well-formed tag", () => {
    const tag = [...good(), "blurhash LKO2?U%2Tw=w", "thumbhash abc"];
    const p = parseImetaTag(tag);
    expect(p.url).toBe(`https://cdn.example/${"ab".repeat(32)}.bin`);
    expect(p.mime).toBe("image/png");
    expect(p.filename).toBe("my cat.png");
    expect(bytesToHex(p.sha256Plain)).toBe(bytesToHex(range(0, 32)));
    expect(bytesToHex(p.nonce)).toBe(bytesToHex(range(0, 12)));
    expect(p.dim).toEqual({ width: 640, height: 480 });
    expect(p.blobSha256).toBe("ab".repeat(32));
    expect(p.extra).toEqual({ blurhash: "LKO2?U%2Tw=w", thumbhash: "abc" });
  });

  const without = (field: string) => good().filter((e) => !e.startsWith(`${field} `));
  const replace = (field: string, value: string) => good().map((e) => (e.startsWith(`${field} `) ? `${field} ${value}` : e));

  const cases: [string, () => unknown[], string][] = [
    ["not an imeta tag", () => ["e", ...good().slice(1)], "IMETA_NOT_IMETA"],
    ["entry without a space", () => [...good(), "garbage"], "IMETA_MALFORMED_ENTRY"],
    ["entry with an empty name", () => [...good(), " value"], "IMETA_MALFORMED_ENTRY"],
    ["non-string entry", () => [...good(), 5], "IMETA_MALFORMED_ENTRY"],
    ["duplicate x", () => [...good(), `x ${"00".repeat(32)}`], "IMETA_DUPLICATE_FIELD"],
    ["duplicate url", () => [...good(), "url https://other.example/a"], "IMETA_DUPLICATE_FIELD"],
    ["duplicate unknown field", () => [...good(), "thumbhash a", "thumbhash b"], "IMETA_DUPLICATE_FIELD"],
    ["missing url", () => without("url"), "IMETA_MISSING_FIELD"],
    ["missing m", () => without("m"), "IMETA_MISSING_FIELD"],
    ["missing filename", () => without("filename"), "IMETA_MISSING_FIELD"],
    ["missing x", () => without("x"), "IMETA_MISSING_FIELD"],
    ["missing n", () => without("n"), "IMETA_MISSING_FIELD"],
    ["missing v", () => without("v"), "IMETA_MISSING_FIELD"],
    ["v mip04-v1", () => replace("v", "mip04-v1"), "IMETA_VERSION_DEPRECATED"],
    ["v encrypted-media-v2", () => replace("v", "encrypted-media-v2"), "IMETA_VERSION_UNSUPPORTED"],
    ["url not a URL", () => replace("url", "not a url"), "IMETA_BAD_URL"],
    ["url not http(s)", () => replace("url", "ftp://cdn.example/a"), "IMETA_BAD_URL"],
    ["m invalid", () => replace("m", "image"), "IMETA_BAD_MIME"],
    ["m uppercase (non-canonical)", () => replace("m", "Image/PNG"), "IMETA_NONCANONICAL_MIME"],
    ["m with parameters (non-canonical)", () => replace("m", "image/png;q=1"), "IMETA_NONCANONICAL_MIME"],
    ["m alias image/jpg (non-canonical)", () => replace("m", "image/jpg"), "IMETA_NONCANONICAL_MIME"],
    ["filename too long", () => replace("filename", "a".repeat(256)), "IMETA_BAD_FILENAME"],
    ["filename with NUL", () => replace("filename", "a\u0000b"), "IMETA_BAD_FILENAME"],
    ["x 63 hex", () => replace("x", "a".repeat(63)), "IMETA_BAD_X"],
    ["x 65 hex", () => replace("x", "a".repeat(65)), "IMETA_BAD_X"],
    ["x not hex", () => replace("x", "g".repeat(64)), "IMETA_BAD_X"],
    ["n 22 hex", () => replace("n", "a".repeat(22)), "IMETA_BAD_N"],
    ["n 32 hex", () => replace("n", "a".repeat(32)), "IMETA_BAD_N"],
    ["n not hex", () => replace("n", "z".repeat(24)), "IMETA_BAD_N"],
    ["dim malformed", () => replace("dim", "640*480"), "IMETA_BAD_DIM"],
    ["dim zero", () => replace("dim", "0x480"), "IMETA_BAD_DIM"],
  ];
  it.each(cases)("rejects %s", (_name, make, code) => {
    expect(codeOf(() => parseImetaTag(make()))).toBe(code);
    if (code !== "IMETA_NOT_IMETA") expect(MEDIA_ERROR_RULES[code as keyof typeof MEDIA_ERROR_RULES]).toMatch(/^MIP04-MD-0[1-8]$/);
  });

  it("accepts present-but-empty optional fields and a one-space filename (as MDK and its fixtures do)", () => {
    const p = parseImetaTag([...good().filter((e) => !e.startsWith("dim ")), "dim ", "thumbhash "]);
    expect(p.dim).toBeUndefined();
    expect(p.extra).toEqual({ thumbhash: "" });
    expect(parseImetaTag(replace("filename", " ")).filename).toBe(" ");
    expect(codeOf(() => parseImetaTag(replace("x", "")))).toBe("IMETA_BAD_X");
    expect(codeOf(() => parseImetaTag(replace("m", "")))).toBe("IMETA_BAD_MIME");
    expect(codeOf(() => parseImetaTag(replace("filename", "")))).toBe("IMETA_BAD_FILENAME");
  });

  it("accepts a non-canonical m in lenient mode, canonicalised (MDK behaviour)", () => {
    expect(parseImetaTag(replace("m", "Image/PNG"), { lenientMime: true }).mime).toBe("image/png");
  });

  it("finds the Blossom address in a URL", () => {
    expect(blobAddressFromUrl(`https://a.example/${"AB".repeat(32)}`)).toBe("ab".repeat(32));
    expect(blobAddressFromUrl(`https://a.example/x/${"ab".repeat(32)}.png`)).toBe("ab".repeat(32));
    expect(blobAddressFromUrl("https://a.example/file.png")).toBeNull();
  });
});

describe("tamper detection", () => {
  const exporter = createRng("tamper").bytes(32);
  const data = createRng("tamper-data").bytes(4096);
  const enc = encryptMedia({ exporterSecret: exporter, data, mime: "image/png", filename: "p.png" });
  const addr = bytesToHex(enc.sha256Cipher);
  const tag = enc.imeta(`https://cdn.example/${addr}.bin`);
  const parsed = parseImetaTag(tag);

  it("detects a flipped ciphertext byte by the Blossom address", () => {
    const bad = new Uint8Array(enc.ciphertext);
    bad[100]! ^= 1;
    expect(codeOf(() => decryptMedia({ exporterSecret: exporter, blob: bad, imeta: tag }))).toBe("MEDIA_CIPHERTEXT_HASH_MISMATCH");
  });

  it("detects a flipped byte by the AEAD when the address is taken from the blob itself", () => {
    const bad = new Uint8Array(enc.ciphertext);
    bad[100]! ^= 1;
    const tagNoAddr = enc.imeta("https://cdn.example/file.bin");
    const badAddr = bytesToHex(sha256(bad));
    expect(codeOf(() => decryptMedia({ exporterSecret: exporter, blob: bad, imeta: tagNoAddr, expectedBlobSha256: badAddr }))).toBe("MEDIA_DECRYPT_FAILED");
  });

  it("detects a swapped blob (another valid blob of the same group)", () => {
    const other = encryptMedia({ exporterSecret: exporter, data: createRng("other").bytes(4096), mime: "image/png", filename: "p.png" });
    expect(codeOf(() => decryptMedia({ exporterSecret: exporter, blob: other.ciphertext, imeta: tag }))).toBe("MEDIA_CIPHERTEXT_HASH_MISMATCH");
    // Even when the attacker also swaps the URL to the other blob's address, the AAD binds x.
    const swapped: ParsedImeta = { ...parsed, url: `https://cdn.example/${bytesToHex(other.sha256Cipher)}`, blobSha256: bytesToHex(other.sha256Cipher) };
    expect(codeOf(() => decryptMedia({ exporterSecret: exporter, blob: other.ciphertext, imeta: swapped }))).toBe("MEDIA_DECRYPT_FAILED");
  });

  it("detects a wrong x (plaintext hash) in the imeta", () => {
    const wrongX: ParsedImeta = { ...parsed, sha256Plain: sha256(utf8ToBytes("something else")) };
    expect(codeOf(() => decryptMedia({ exporterSecret: exporter, blob: enc.ciphertext, imeta: wrongX }))).toBe("MEDIA_DECRYPT_FAILED");
  });

  it("detects a changed filename, MIME or nonce", () => {
    for (const change of [{ filename: "q.png" }, { mime: "image/jpeg" }, { nonce: new Uint8Array(12) }]) {
      expect(codeOf(() => decryptMedia({ exporterSecret: exporter, blob: enc.ciphertext, imeta: { ...parsed, ...change } }))).toBe("MEDIA_DECRYPT_FAILED");
    }
  });

  it("rejects the exporter of another epoch", () => {
    expect(codeOf(() => decryptMedia({ exporterSecret: createRng("other epoch").bytes(32), blob: enc.ciphertext, imeta: tag }))).toBe("MEDIA_DECRYPT_FAILED");
  });

  it("detects SHA256(plain) != x when the key was derived for that x (sender lied about x)", () => {
    // A malicious sender encrypts plaintext P under the key and AAD built from a different x.
    const fakeX = sha256(utf8ToBytes("claimed"));
    const nonce = range(0, 12);
    const key = deriveMediaKey(exporter, fakeX, "image/png", "p.png");
    const blob = chacha20poly1305(key, nonce, mediaAad(fakeX, "image/png", "p.png")).encrypt(data);
    const lie = buildImetaTag({ url: `https://cdn.example/${bytesToHex(sha256(blob))}`, mime: "image/png", filename: "p.png", sha256Plain: fakeX, nonce });
    expect(codeOf(() => decryptMedia({ exporterSecret: exporter, blob, imeta: lie }))).toBe("MEDIA_PLAINTEXT_HASH_MISMATCH");
  });

  it("requires a Blossom address", () => {
    expect(codeOf(() => decryptMedia({ exporterSecret: exporter, blob: enc.ciphertext, imeta: enc.imeta("https://cdn.example/file.bin") }))).toBe("MEDIA_NO_BLOB_ADDRESS");
  });

  it("reads pre-0.7.1 (Extract+Expand) media only when asked", () => {
    const nonce = range(0, 12);
    const h = sha256(data);
    const key = deriveMediaKey(exporter, h, "image/png", "p.png", "extract-expand");
    const blob = chacha20poly1305(key, nonce, mediaAad(h, "image/png", "p.png")).encrypt(data);
    const t = buildImetaTag({ url: `https://cdn.example/${bytesToHex(sha256(blob))}`, mime: "image/png", filename: "p.png", sha256Plain: h, nonce });
    expect(codeOf(() => decryptMedia({ exporterSecret: exporter, blob, imeta: t }))).toBe("MEDIA_DECRYPT_FAILED");
    expect(decryptMedia({ exporterSecret: exporter, blob, imeta: t, allowLegacyKdf: true }).kdf).toBe("extract-expand");
  });

  it("refuses to build a tag with a non-canonical MIME or bad nonce", () => {
    expect(codeOf(() => buildImetaTag({ url: "https://a.example/x", mime: "Image/png", filename: "a", sha256Plain: range(0, 32), nonce: range(0, 12) }))).toBe("MEDIA_BAD_MIME");
    expect(codeOf(() => buildImetaTag({ url: "https://a.example/x", mime: "image/png", filename: "a", sha256Plain: range(0, 32), nonce: range(0, 11) }))).toBe("MEDIA_BAD_NONCE");
  });
});
