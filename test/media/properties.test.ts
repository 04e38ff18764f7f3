/** Property-based checks of the MIP-04 codec (fast-check, fixed seed so runs are reproducible). */
import { describe, it, expect } from "vitest";
import fc from "fast-check";
import { bytesToHex } from "@noble/hashes/utils.js";
import { MediaError, buildImetaTag, canonicalMime, decryptMedia, encryptMedia, parseImetaTag } from "../../src/engine/mip04-media.ts";

const SEED = 20260425;
const filename = fc
  .string({ unit: "binary", minLength: 1, maxLength: 60 })
  .filter((s) => !s.includes("\u0000") && Buffer.byteLength(s, "utf8") <= 255);
const mime = fc.constantFrom("image/png", "image/jpeg", "video/mp4", "application/octet-stream", "text/plain", "application/vnd.api+json");
const bytes = (n: number) => fc.uint8Array({ minLength: n, maxLength: n });

describe("MIP-04 properties", () => {
  it("parse(build(fields)) gives the fields back", () => {
    fc.assert(
      fc.property(filename, mime, bytes(32), bytes(12), fc.option(fc.record({ width: fc.integer({ min: 1, max: 10000 }), height: fc.integer({ min: 1, max: 10000 }) }), { nil: undefined }), (name, m, x, n, dim) => {
        const url = `https://cdn.example/${bytesToHex(x)}.bin`;
        const tag = buildImetaTag({ url, mime: m, filename: name, sha256Plain: x, nonce: n, ...(dim ? { dim } : {}) });
        const p = parseImetaTag(tag);
        expect(p.filename).toBe(name);
        expect(p.mime).toBe(m);
        expect(bytesToHex(p.sha256Plain)).toBe(bytesToHex(x));
        expect(bytesToHex(p.nonce)).toBe(bytesToHex(n));
        expect(p.dim).toEqual(dim);
        expect(p.blobSha256).toBe(bytesToHex(x));
      }),
      { seed: SEED, numRuns: 300 },
    );
  });

  it("decrypt(encrypt(data)) == data for any data, name and MIME spelling", () => {
    fc.assert(
      fc.property(bytes(32), fc.uint8Array({ maxLength: 2048 }), filename, mime, fc.boolean(), (exporter, data, name, m, shout) => {
        const spelled = shout ? ` ${m.toUpperCase()} ; charset=x` : m;
        const enc = encryptMedia({ exporterSecret: exporter, data, mime: spelled, filename: name });
        const out = decryptMedia({ exporterSecret: exporter, blob: enc.ciphertext, imeta: enc.imeta(`https://cdn.example/${bytesToHex(enc.sha256Cipher)}`) });
        expect(bytesToHex(out.data)).toBe(bytesToHex(data));
        expect(out.mime).toBe(m);
      }),
      { seed: SEED, numRuns: 150 },
    );
  });

  it("canonicalMime is idempotent and its output is canonical", () => {
    fc.assert(
      fc.property(fc.string({ unit: "binary-ascii", maxLength: 40 }), (s) => {
        let c: string;
        try {
          c = canonicalMime(s);
        } catch (e) {
          expect((e as MediaError).code).toBe("MEDIA_BAD_MIME");
          return;
        }
        expect(canonicalMime(c)).toBe(c);
        expect(c).toMatch(/^[!#$%&'*+\-.^_`|~0-9a-z]{1,64}\/[!#$%&'*+\-.^_`|~0-9a-z]{1,64}$/);
      }),
      { seed: SEED, numRuns: 1000 },
    );
  });

  it("parseImetaTag only ever throws MediaError on arbitrary input", () => {
    const entry = fc.oneof(
      fc.string({ maxLength: 30 }),
      fc.constantFrom("url https://a.example/" + "ab".repeat(32), "m image/png", "filename a", `x ${"cd".repeat(32)}`, `n ${"ef".repeat(12)}`, "v mip04-v2", "v mip04-v1", "dim 1x1"),
      fc.integer(),
    );
    fc.assert(
      fc.property(fc.array(entry, { maxLength: 10 }), fc.boolean(), (entries, head) => {
        const tag = head ? ["imeta", ...entries] : entries;
        try {
          parseImetaTag(tag);
        } catch (e) {
          expect(e).toBeInstanceOf(MediaError);
        }
      }),
      { seed: SEED, numRuns: 2000 },
    );
  });
});
