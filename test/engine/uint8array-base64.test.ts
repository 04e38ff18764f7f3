/**
 * The Buffer-backed Uint8Array.fromBase64 / toBase64 (src/platform/uint8array-base64.ts) against a
 * literal transcription of the standard's FromBase64 algorithm (ECMAScript 2026, "Uint8Array to/from
 * base64"), on fixed cases and random strings; and that nostr-tools' NIP-44 really takes that path here.
 */
import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { v2 as nip44 } from "nostr-tools/nip44";
import { fromBase64, toBase64, uint8ArrayBase64State } from "../../src/platform/uint8array-base64.ts";
import { nip44Base64Path } from "../../src/engine/nip44-conversation.ts";

const STD = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
const WS = "\t\n\f\r ";

type Mode = "loose" | "strict" | "stop-before-partial";
type Outcome = { bytes: number[] } | { error: string };

/** The standard's FromBase64 (maxLength unbounded), step by step, slow on purpose. */
function specFromBase64(s: string, alphabet: "base64" | "base64url", mode: Mode): Outcome {
  const chars = alphabet === "base64" ? STD : URL;
  const bytes: number[] = [];
  let chunk: number[] = [];
  let index = 0;
  const skip = (i: number): number => {
    while (i < s.length && WS.includes(s[i]!)) i++;
    return i;
  };
  const decodeChunk = (c: number[], throwOnExtraBits: boolean): number[] | "extra-bits" => {
    const n = c.length;
    const padded = [...c, ...Array<number>(4 - n).fill(0)];
    const v = (padded[0]! << 18) | (padded[1]! << 12) | (padded[2]! << 6) | padded[3]!;
    const out = [(v >> 16) & 0xff, (v >> 8) & 0xff, v & 0xff];
    if (n === 2) {
      if (throwOnExtraBits && out[1] !== 0) return "extra-bits";
      return [out[0]!];
    }
    if (n === 3) {
      if (throwOnExtraBits && out[2] !== 0) return "extra-bits";
      return [out[0]!, out[1]!];
    }
    return out;
  };
  for (;;) {
    index = skip(index);
    if (index === s.length) {
      if (chunk.length > 0) {
        if (mode === "stop-before-partial") return { bytes };
        if (mode === "loose") {
          if (chunk.length === 1) return { error: "SyntaxError" };
          bytes.push(...(decodeChunk(chunk, false) as number[]));
        } else return { error: "SyntaxError" };
      }
      return { bytes };
    }
    const ch = s[index]!;
    index++;
    if (ch === "=") {
      if (chunk.length < 2) return { error: "SyntaxError" };
      index = skip(index);
      if (chunk.length === 2) {
        if (index === s.length) {
          if (mode === "stop-before-partial") return { bytes };
          return { error: "SyntaxError" };
        }
        if (s[index] === "=") index = skip(index + 1);
      }
      if (index < s.length) return { error: "SyntaxError" };
      const d = decodeChunk(chunk, mode === "strict");
      if (d === "extra-bits") return { error: "SyntaxError" };
      bytes.push(...d);
      return { bytes };
    }
    const k = chars.indexOf(ch);
    if (k < 0) return { error: "SyntaxError" };
    chunk.push(k);
    if (chunk.length === 4) {
      bytes.push(...(decodeChunk(chunk, false) as number[]));
      chunk = [];
    }
  }
}

function ours(s: string, alphabet: "base64" | "base64url", mode: Mode): Outcome {
  try {
    return { bytes: [...fromBase64(s, { alphabet, lastChunkHandling: mode })] };
  } catch (e) {
    return { error: (e as Error).name };
  }
}

const MODES: Mode[] = ["loose", "strict", "stop-before-partial"];

describe("Uint8Array base64 built-ins (Buffer-backed, ES2026 semantics)", () => {
  it("are installed on this Node (which lacks them) and nostr-tools' NIP-44 uses them", () => {
    expect(["installed", "native"]).toContain(uint8ArrayBase64State());
    expect(nip44Base64Path()).toBe("built-in");
    // A NIP-44 payload still round-trips and a malformed one is still refused.
    const key = new Uint8Array(32).fill(9);
    const payload = nip44.encrypt("x".repeat(3000), key);
    expect(nip44.decrypt(payload, key)).toBe("x".repeat(3000));
    expect(() => nip44.decrypt(payload.slice(0, -2) + "A=", key)).toThrow(/base64|MAC/);
    expect(() => nip44.decrypt(payload.replace(/.$/, "") + "*", key)).toThrow(/invalid base64/);
  });

  it("decode fixed cases exactly as the standard says", () => {
    const cases: Array<[string, Mode, number[] | "SyntaxError"]> = [
      ["", "strict", []],
      ["Zm9v", "strict", [0x66, 0x6f, 0x6f]],
      ["Zm9vYg==", "strict", [0x66, 0x6f, 0x6f, 0x62]],
      ["Zm9vYmE=", "strict", [0x66, 0x6f, 0x6f, 0x62, 0x61]],
      [" Zm 9v\nYg = =\t", "strict", [0x66, 0x6f, 0x6f, 0x62]],
      ["Zm9vYg", "loose", [0x66, 0x6f, 0x6f, 0x62]],
      ["Zm9vYg", "strict", "SyntaxError"],
      ["Zm9vYg", "stop-before-partial", [0x66, 0x6f, 0x6f]],
      ["Zm9vYg=", "loose", "SyntaxError"],
      ["Zm9vYg=", "stop-before-partial", [0x66, 0x6f, 0x6f]],
      ["Zm9vYh==", "loose", [0x66, 0x6f, 0x6f, 0x62]],
      ["Zm9vYh==", "strict", "SyntaxError"],
      ["Zm9vY", "loose", "SyntaxError"],
      ["Zm9vY", "stop-before-partial", [0x66, 0x6f, 0x6f]],
      ["Zm9vYmE==", "loose", "SyntaxError"],
      ["Zm9v=", "loose", "SyntaxError"],
      ["Zm=9v", "loose", "SyntaxError"],
      ["Zm9vYg==Zm9v", "loose", "SyntaxError"],
      ["Zm9v-_", "loose", "SyntaxError"],
      ["Zm9v\u00a0", "loose", "SyntaxError"],
    ];
    for (const [s, mode, want] of cases) {
      const got = ours(s, "base64", mode);
      expect(got, `${JSON.stringify(s)} ${mode}`).toEqual(want === "SyntaxError" ? { error: "SyntaxError" } : { bytes: want });
      expect(specFromBase64(s, "base64", mode), `oracle ${JSON.stringify(s)} ${mode}`).toEqual(got);
    }
    expect([...fromBase64("-_8=", { alphabet: "base64url" })]).toEqual([0xfb, 0xff]);
    expect(() => fromBase64("+/8=", { alphabet: "base64url" })).toThrow(SyntaxError);
  });

  it("refuse bad arguments with TypeError, as the standard does", () => {
    expect(() => fromBase64(42)).toThrow(TypeError);
    expect(() => fromBase64("", { alphabet: "hex" })).toThrow(TypeError);
    expect(() => fromBase64("", { lastChunkHandling: "lenient" })).toThrow(TypeError);
    expect(() => fromBase64("", "strict")).toThrow(TypeError);
    expect(() => toBase64([1, 2, 3])).toThrow(TypeError);
    expect(() => toBase64(new Uint8Array(1), { alphabet: "base32" })).toThrow(TypeError);
  });

  it("encode: both alphabets, padding kept or omitted, views into larger buffers", () => {
    const b = new Uint8Array([0xfb, 0xff, 0x00, 0x01, 0xfe]);
    const view = b.subarray(0, 2);
    expect(toBase64(view)).toBe("+/8=");
    expect(toBase64(view, { alphabet: "base64url" })).toBe("-_8=");
    expect(toBase64(view, { alphabet: "base64url", omitPadding: true })).toBe("-_8");
    // Through the installed globals, as @scure/base calls them.
    const builtins = Uint8Array as unknown as { fromBase64(s: string): Uint8Array; prototype: { toBase64(this: Uint8Array): string } };
    expect(builtins.prototype.toBase64.call(new Uint8Array([1, 2, 3, 4]))).toBe("AQIDBA==");
    expect(builtins.fromBase64("AQIDBA==")).toEqual(new Uint8Array([1, 2, 3, 4]));
  });

  it("agree with the standard's algorithm on random strings (both alphabets, every mode)", () => {
    const alphabetChar = fc.constantFrom(...(STD + URL + "==== \n\t*").split(""));
    fc.assert(
      fc.property(fc.array(alphabetChar, { maxLength: 40 }), fc.constantFrom<"base64" | "base64url">("base64", "base64url"), fc.constantFrom(...MODES), (cs, alphabet, mode) => {
        const s = cs.join("");
        expect(ours(s, alphabet, mode)).toEqual(specFromBase64(s, alphabet, mode));
      }),
      { numRuns: 3000 },
    );
  });

  it("round-trip random bytes, and decoding valid encodings agrees with the standard's algorithm", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), fc.boolean(), fc.boolean(), (bytes, url, omit) => {
        const alphabet = url ? "base64url" : "base64";
        const s = toBase64(bytes, { alphabet, omitPadding: omit });
        const mode: Mode = omit ? "loose" : "strict";
        expect(ours(s, alphabet, mode)).toEqual({ bytes: [...bytes] });
        expect(specFromBase64(s, alphabet, mode)).toEqual({ bytes: [...bytes] });
        expect(toBase64(bytes)).toBe(Buffer.from(bytes).toString("base64"));
      }),
      { numRuns: 1000 },
    );
  });
});
