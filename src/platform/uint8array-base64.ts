/**
 * `Uint8Array.fromBase64` and `Uint8Array.prototype.toBase64` (ECMAScript 2026, the TC39
 * "Uint8Array to/from base64" proposal) for runtimes that lack them, backed by Node's Buffer.
 *
 * Why: @scure/base, which nostr-tools uses for every NIP-44 payload, takes the built-in methods when
 * they exist and otherwise falls back to a generic radix converter that is about ten times slower. On
 * Node 20 that fallback is most of the cost of sealing and gift-wrapping a Welcome (a 45 kB NIP-44
 * encryption: ~10 ms through the fallback, ~1 ms through Buffer). No cryptography is involved: this is
 * base64 only, with the standard's exact acceptance rules (alphabets, ASCII whitespace, the three
 * `lastChunkHandling` modes, `omitPadding`), checked against the fallback in test/platform.
 *
 * `installUint8ArrayBase64()` adds the two methods only where they are missing; native ones are never
 * replaced. It must run before @scure/base is first evaluated, because that module decides once, at
 * load, which path to take: import "./install-base64.ts" first in every entry point.
 * `setFromBase64` and the hex methods of the same proposal are not provided.
 */

type Alphabet = "base64" | "base64url";
type LastChunkHandling = "loose" | "strict" | "stop-before-partial";

export interface FromBase64Options {
  alphabet?: Alphabet;
  lastChunkHandling?: LastChunkHandling;
}
export interface ToBase64Options {
  alphabet?: Alphabet;
  omitPadding?: boolean;
}

const WHITESPACE = /[\t\n\f\r ]/g;
const HAS_WHITESPACE = /[\t\n\f\r ]/;
// Data characters, then at most two "=" at the very end; anything else is a SyntaxError in the standard.
const SHAPE: Record<Alphabet, RegExp> = {
  base64: /^[A-Za-z0-9+/]*={0,2}$/,
  base64url: /^[A-Za-z0-9_-]*={0,2}$/,
};
const INDEX: Record<Alphabet, Map<string, number>> = {
  base64: indexOf("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"),
  base64url: indexOf("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"),
};

function indexOf(chars: string): Map<string, number> {
  return new Map([...chars].map((c, i) => [c, i]));
}

function optionsObject(options: unknown): Record<string, unknown> {
  if (options === undefined) return {};
  if (options === null || (typeof options !== "object" && typeof options !== "function")) {
    throw new TypeError("options must be an object");
  }
  return options as Record<string, unknown>;
}

function readAlphabet(opts: Record<string, unknown>): Alphabet {
  const alphabet = opts.alphabet;
  if (alphabet === undefined) return "base64";
  if (alphabet !== "base64" && alphabet !== "base64url") {
    throw new TypeError(`expected alphabet to be "base64" or "base64url"`);
  }
  return alphabet;
}

function readLastChunkHandling(opts: Record<string, unknown>): LastChunkHandling {
  const mode = opts.lastChunkHandling;
  if (mode === undefined) return "loose";
  if (mode !== "loose" && mode !== "strict" && mode !== "stop-before-partial") {
    throw new TypeError(`expected lastChunkHandling to be "loose", "strict" or "stop-before-partial"`);
  }
  return mode;
}

function bytesOf(buf: Buffer): Uint8Array {
  // A copy into a Uint8Array of its own: Buffer.from(string) may share a pooled ArrayBuffer.
  const out = new Uint8Array(buf.byteLength);
  out.set(buf);
  return out;
}

/** The standard's Uint8Array.fromBase64(string, options). */
export function fromBase64(input: unknown, options?: unknown): Uint8Array {
  if (typeof input !== "string") throw new TypeError("fromBase64 expects a string");
  const opts = optionsObject(options);
  const alphabet = readAlphabet(opts);
  const lastChunkHandling = readLastChunkHandling(opts);

  const s = HAS_WHITESPACE.test(input) ? input.replace(WHITESPACE, "") : input;
  if (!SHAPE[alphabet].test(s)) throw new SyntaxError("invalid base64 string");
  const padding = s.endsWith("==") ? 2 : s.endsWith("=") ? 1 : 0;
  const dataLength = s.length - padding;
  const partial = dataLength % 4;

  let take = dataLength; // data characters to decode
  if (padding > 0) {
    // "=" may only close a chunk of two (then "==") or three (then "=") characters.
    if (partial < 2) throw new SyntaxError("invalid base64 padding");
    if (partial === 2 && padding === 1) {
      if (lastChunkHandling === "stop-before-partial") take = dataLength - partial;
      else throw new SyntaxError("incomplete base64 padding");
    } else if (partial === 3 && padding === 2) {
      throw new SyntaxError("unexpected data after base64 padding");
    } else if (lastChunkHandling === "strict") {
      checkZeroBits(s, dataLength, partial, alphabet);
    }
  } else if (partial > 0) {
    if (lastChunkHandling === "stop-before-partial") take = dataLength - partial;
    else if (lastChunkHandling === "strict") throw new SyntaxError("missing base64 padding");
    else if (partial === 1) throw new SyntaxError("base64 string ends inside a byte");
  }
  // Buffer decodes both alphabets and ignores trailing bits; the shape was checked above.
  return bytesOf(Buffer.from(take === s.length ? s : s.slice(0, take), "base64"));
}

function checkZeroBits(s: string, dataLength: number, partial: number, alphabet: Alphabet): void {
  const last = INDEX[alphabet].get(s[dataLength - 1]!)!;
  const unused = partial === 2 ? 0b1111 : 0b11;
  if ((last & unused) !== 0) throw new SyntaxError("non-zero padding bits in base64 string");
}

/** The standard's Uint8Array.prototype.toBase64(options), with `bytes` as the receiver. */
export function toBase64(bytes: unknown, options?: unknown): string {
  if (!(bytes instanceof Uint8Array)) throw new TypeError("toBase64 expects a Uint8Array receiver");
  const opts = optionsObject(options);
  const alphabet = readAlphabet(opts);
  const omitPadding = Boolean(opts.omitPadding);
  let out = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("base64");
  if (alphabet === "base64url") out = out.replace(/\+/g, "-").replace(/\//g, "_");
  if (omitPadding) out = out.replace(/=+$/, "");
  return out;
}

export type Base64BuiltinState = "native" | "installed" | "absent";

let installedHere = false;

/** Where Uint8Array's base64 methods come from in this realm. */
export function uint8ArrayBase64State(): Base64BuiltinState {
  const ctor = Uint8Array as unknown as { fromBase64?: unknown; prototype: { toBase64?: unknown } };
  if (typeof ctor.fromBase64 !== "function" || typeof ctor.prototype.toBase64 !== "function") return "absent";
  return installedHere ? "installed" : "native";
}

/** Adds the two methods where missing (never replaces native ones). Idempotent. */
export function installUint8ArrayBase64(): Base64BuiltinState {
  if (uint8ArrayBase64State() !== "absent") return uint8ArrayBase64State();
  Object.defineProperty(Uint8Array, "fromBase64", {
    value: function fromBase64Builtin(input: unknown, options?: unknown) {
      return fromBase64(input, options);
    },
    writable: true,
    configurable: true,
    enumerable: false,
  });
  Object.defineProperty(Uint8Array.prototype, "toBase64", {
    value: function toBase64Builtin(this: unknown, options?: unknown) {
      return toBase64(this, options);
    },
    writable: true,
    configurable: true,
    enumerable: false,
  });
  installedHere = true;
  return "installed";
}
