/**
 * Small pure helpers for the compliance checks: tag access, hex, strict base64, relay URLs.
 * Everything here tolerates arbitrary (malformed) input and never throws.
 */

const HEX64 = /^[0-9a-fA-F]{64}$/;
const HEX64_LOWER = /^[0-9a-f]{64}$/;
const HEX_ANY = /^(?:[0-9a-fA-F]{2})+$/;
const B64_STRICT = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

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

/** Strict standard padded base64, or undefined. */
export function decodeBase64Strict(s: unknown): Uint8Array | undefined {
  if (typeof s !== "string" || !B64_STRICT.test(s)) return undefined;
  const buf = Buffer.from(s, "base64");
  return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
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
