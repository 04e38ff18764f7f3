/**
 * Small pure helpers for the compliance checks: tag access, hex, strict base64, relay URLs.
 * Everything here tolerates arbitrary (malformed) input and never throws.
 */

const HEX64 = /^[0-9a-fA-F]{64}$/;
const HEX64_LOWER = /^[0-9a-f]{64}$/;
const HEX_ANY = /^(?:[0-9a-fA-F]{2})+$/;

export function isHex64(v: unknown): v is string {
  return typeof v === "string" && HEX64.test(v);
}

export function isHex64Lower(v: unknown): v is string {
  return typeof v === "string" && HEX64_LOWER.test(v);
}

export function isHex(v: unknown): v is string {
  return typeof v === "string" && HEX_ANY.test(v);
}

export function hexToBytes(hex: string): Uint8Array {
  return new Uint8Array(Buffer.from(hex, "hex"));
}

export function bytesToHex(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString("hex");
}

/**
 * Strict standard padded base64 (canonical: re-encoding gives the same string), or undefined.
 * Node's decoder is lenient (URL-safe alphabet, missing padding, stray characters); the round trip
 * rejects all of those natively, much faster than a regular expression on long payloads.
 */
export function decodeBase64Strict(s: unknown): Uint8Array | undefined {
  if (typeof s !== "string" || s.length % 4 !== 0) return undefined;
  const buf = Buffer.from(s, "base64");
  if (buf.toString("base64") !== s) return undefined;
  return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
}

/** Memo of strict base64 decodes for one judgement run (the same 445 content is read by several passes). */
export type Base64Memo = Map<string, Uint8Array | undefined>;

export function decodeBase64Memo(s: unknown, memo: Base64Memo | undefined): Uint8Array | undefined {
  if (memo === undefined || typeof s !== "string") return decodeBase64Strict(s);
  if (memo.has(s)) return memo.get(s);
  const out = decodeBase64Strict(s);
  memo.set(s, out);
  return out;
}

export function toBase64(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString("base64");
}

/** Tags of an event as string arrays; anything that is not an array of strings is dropped. */
export function safeTags(tags: unknown): string[][] {
  if (!Array.isArray(tags)) return [];
  const out: string[][] = [];
  for (const t of tags) {
    if (Array.isArray(t) && t.length > 0 && t.every((x) => typeof x === "string")) out.push(t as string[]);
  }
  return out;
}

export function tagsNamed(tags: string[][], name: string): string[][] {
  return tags.filter((t) => t[0] === name);
}

/** All values of all tags with this name (the elements after the name). */
export function tagValues(tags: string[][], name: string): string[] {
  const out: string[] = [];
  for (const t of tags) if (t[0] === name) out.push(...t.slice(1));
  return out;
}

/** A relay URL as the digest's profile wants it: ws/wss, host, no userinfo or fragment, at most 512 bytes. */
export function isValidRelayUrl(v: unknown): boolean {
  if (typeof v !== "string" || v.length === 0 || Buffer.byteLength(v, "utf8") > 512) return false;
  let u: URL;
  try {
    u = new URL(v);
  } catch {
    return false;
  }
  if (u.protocol !== "ws:" && u.protocol !== "wss:") return false;
  if (u.hostname === "" || u.username !== "" || u.password !== "" || u.hash !== "") return false;
  return true;
}

/** `0x` followed by four hex digits; lower-cased for comparison. */
export function normId(v: string): string {
  return v.trim().toLowerCase();
}

export function isUnsignedIntString(v: unknown): boolean {
  return typeof v === "string" && /^(0|[1-9][0-9]*)$/.test(v) && v.length <= 20;
}

export function utf8(s: string): Uint8Array {
  return new TextEncoder().encode(s);
}

export function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}
