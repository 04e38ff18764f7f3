/**
 * MIP-04 encrypted media (R1 `mip04-v2`; R0 uses the same scheme with another exporter).
 *
 * Pure functions, no I/O. The caller supplies the 32-byte media exporter secret of the message's
 * epoch: R1 `MLS-Exporter("marmot","encrypted-media",32)`, R0 `MLS-Exporter("nostr","nostr",32)`
 * (see `mediaExporterLabel`). Everything else is derived here:
 *
 *   file_key = HKDF-Expand(PRK = exporter, info = L ‖ 0x00 ‖ sha256(plain) ‖ 0x00 ‖ mime ‖ 0x00 ‖ filename ‖ 0x00 ‖ "key", 32)
 *   aad      = L ‖ 0x00 ‖ sha256(plain) ‖ 0x00 ‖ mime ‖ 0x00 ‖ filename
 *   blob     = ChaCha20-Poly1305(file_key, nonce12, aad, plain)          (ciphertext ‖ 16-byte tag)
 *
 * with L = "mip04-v2", mime the canonical MIME type, and the blob stored on Blossom under SHA256(blob).
 * The `imeta` tag carries `url m filename x n v` (+ optional `dim` and other descriptive fields).
 *
 * Bulk SHA-256 uses node:crypto (native; @noble/hashes is 10x slower on multi-MiB files), the KDF and
 * the AEAD use @noble/hashes and @noble/ciphers.
 */
import { createHash, randomBytes as nodeRandomBytes } from "node:crypto";
import { chacha20poly1305 } from "@noble/ciphers/chacha.js";
import { expand, extract } from "@noble/hashes/hkdf.js";
import { sha256 } from "@noble/hashes/sha2.js";
import { bytesToHex, concatBytes, hexToBytes, utf8ToBytes } from "@noble/hashes/utils.js";
import { HarnessError } from "../errors.ts";
import type { ProtocolProfile } from "../profile.ts";

/** The scheme label / `v` value of R0 and R1. */
export const MIP04_VERSION = "mip04-v2";
/** Deprecated label that MUST be rejected. */
export const MIP04_DEPRECATED_VERSION = "mip04-v1";
export const MEDIA_NONCE_BYTES = 12;
export const MEDIA_KEY_BYTES = 32;
export const MEDIA_TAG_BYTES = 16;

export type MediaErrorCode =
  | "MEDIA_BAD_EXPORTER"
  | "MEDIA_BAD_MIME"
  | "MEDIA_BAD_FILENAME"
  | "MEDIA_BAD_NONCE"
  | "MEDIA_BAD_HASH"
  | "MEDIA_BAD_URL"
  | "MEDIA_BAD_DIM"
  | "MEDIA_NO_BLOB_ADDRESS"
  | "MEDIA_CIPHERTEXT_HASH_MISMATCH"
  | "MEDIA_DECRYPT_FAILED"
  | "MEDIA_PLAINTEXT_HASH_MISMATCH"
  | "MEDIA_EPOCH_UNAVAILABLE"
  | "MEDIA_FETCH_FAILED"
  | "IMETA_NOT_IMETA"
  | "IMETA_MALFORMED_ENTRY"
  | "IMETA_DUPLICATE_FIELD"
  | "IMETA_MISSING_FIELD"
  | "IMETA_VERSION_DEPRECATED"
  | "IMETA_VERSION_UNSUPPORTED"
  | "IMETA_BAD_URL"
  | "IMETA_BAD_MIME"
  | "IMETA_NONCANONICAL_MIME"
  | "IMETA_BAD_FILENAME"
  | "IMETA_BAD_X"
  | "IMETA_BAD_N"
  | "IMETA_BAD_DIM";

export class MediaError extends HarnessError {
  declare readonly code: MediaErrorCode;
  constructor(code: MediaErrorCode, message: string, details: Record<string, unknown> = {}, options?: { cause?: unknown }) {
    super(code, message, details, options);
  }
}

/**
 * The digest §9 rule each rejection code evidences (for checkers that report by rule id).
 * MIP04-MD-01: required fields and formats; -02: `v mip04-v1` or a missing/malformed `n`;
 * -05/-03: wrong key, AAD or tampered blob (AEAD failure); -06: hash checks; -08: canonical MIME.
 */
export const MEDIA_ERROR_RULES: Partial<Record<MediaErrorCode, string>> = {
  IMETA_MISSING_FIELD: "MIP04-MD-01",
  IMETA_MALFORMED_ENTRY: "MIP04-MD-01",
  IMETA_DUPLICATE_FIELD: "MIP04-MD-01",
  IMETA_BAD_URL: "MIP04-MD-01",
  IMETA_BAD_FILENAME: "MIP04-MD-01",
  IMETA_BAD_X: "MIP04-MD-01",
  IMETA_BAD_DIM: "MIP04-MD-01",
  IMETA_VERSION_UNSUPPORTED: "MIP04-MD-01",
  IMETA_VERSION_DEPRECATED: "MIP04-MD-02",
  IMETA_BAD_N: "MIP04-MD-02",
  IMETA_BAD_MIME: "MIP04-MD-08",
  IMETA_NONCANONICAL_MIME: "MIP04-MD-08",
  MEDIA_DECRYPT_FAILED: "MIP04-MD-05",
  MEDIA_CIPHERTEXT_HASH_MISMATCH: "MIP04-MD-06",
  MEDIA_PLAINTEXT_HASH_MISMATCH: "MIP04-MD-06",
};

/** Exporter label and context of the media secret for a profile (R0 legacy, R1/R2 current). */
export function mediaExporterLabel(profile: ProtocolProfile): { label: string; context: string; length: 32 } {
  return profile === "R0"
    ? { label: "nostr", context: "nostr", length: 32 }
    : { label: "marmot", context: "encrypted-media", length: 32 };
}

// ---------------------------------------------------------------------------------------------
// MIME and filename
// ---------------------------------------------------------------------------------------------

const TOKEN_RE = /^[!#$%&'*+\-.^_`|~0-9a-z]{1,64}$/;
const MIME_ALIASES: Record<string, string> = { "image/jpg": "image/jpeg" };

/**
 * Canonical MIME type (digest §6): cut at `;`, trim ASCII whitespace, ASCII-lowercase, exactly one
 * `/`, type and subtype 1..64 HTTP token characters, alias `image/jpg` → `image/jpeg`.
 * Throws `MEDIA_BAD_MIME` when nothing canonical can be made of the input.
 */
export function canonicalMime(input: string): string {
  if (typeof input !== "string") throw new MediaError("MEDIA_BAD_MIME", "MIME type must be a string");
  const cut = input.split(";", 1)[0] ?? "";
  const trimmed = cut.replace(/^[\t\n\f\r ]+|[\t\n\f\r ]+$/g, "");
  const lower = trimmed.replace(/[A-Z]/g, (c) => c.toLowerCase());
  const parts = lower.split("/");
  if (parts.length !== 2) throw new MediaError("MEDIA_BAD_MIME", `MIME type "${input}" must have exactly one "/"`, { mime: input });
  const [type, subtype] = parts as [string, string];
  if (!TOKEN_RE.test(type) || !TOKEN_RE.test(subtype)) {
    throw new MediaError("MEDIA_BAD_MIME", `MIME type "${input}" has an empty, too long or non-token type or subtype`, { mime: input });
  }
  const joined = `${type}/${subtype}`;
  return MIME_ALIASES[joined] ?? joined;
}

/** True when `s` is already its own canonical form. */
export function isCanonicalMime(s: string): boolean {
  try {
    return canonicalMime(s) === s;
  } catch {
    return false;
  }
}

const LONE_SURROGATE_RE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** Filename rule: 1..255 UTF-8 bytes, no U+0000. Never normalised. */
export function validateFilename(name: string): void {
  if (typeof name !== "string" || name.length === 0) throw new MediaError("MEDIA_BAD_FILENAME", "filename must be a non-empty string");
  const n = Buffer.byteLength(name, "utf8");
  if (n > 255) throw new MediaError("MEDIA_BAD_FILENAME", `filename is ${n} UTF-8 bytes (max 255)`, { bytes: n });
  if (name.includes("\u0000")) throw new MediaError("MEDIA_BAD_FILENAME", "filename contains U+0000");
  if (LONE_SURROGATE_RE.test(name)) throw new MediaError("MEDIA_BAD_FILENAME", "filename is not well-formed Unicode");
}

// ---------------------------------------------------------------------------------------------
// Derivations
// ---------------------------------------------------------------------------------------------

/** SHA-256 of (possibly large) bytes. */
export function sha256Bytes(data: Uint8Array): Uint8Array {
  return new Uint8Array(createHash("sha256").update(data).digest());
}

function labelBytes(label: string): Uint8Array {
  return utf8ToBytes(label);
}

const ZERO = new Uint8Array([0]);

function checkHash32(h: Uint8Array, what: string): void {
  if (!(h instanceof Uint8Array) || h.length !== 32) throw new MediaError("MEDIA_BAD_HASH", `${what} must be 32 bytes`);
}

/** AAD = L ‖ 0x00 ‖ sha256(plain) ‖ 0x00 ‖ mime ‖ 0x00 ‖ filename. */
export function mediaAad(sha256Plain: Uint8Array, mime: string, filename: string, label: string = MIP04_VERSION): Uint8Array {
  checkHash32(sha256Plain, "sha256(plain)");
  return concatBytes(labelBytes(label), ZERO, sha256Plain, ZERO, utf8ToBytes(mime), ZERO, utf8ToBytes(filename));
}

/** HKDF info = AAD ‖ 0x00 ‖ "key". */
export function mediaKeyInfo(sha256Plain: Uint8Array, mime: string, filename: string, label: string = MIP04_VERSION): Uint8Array {
  return concatBytes(mediaAad(sha256Plain, mime, filename, label), ZERO, utf8ToBytes("key"));
}

/** How the file key is derived from the exporter secret. */
export type MediaKdf = "expand" | "extract-expand";

/**
 * file_key = HKDF-Expand(PRK = exporter, info, 32) (R1, MDK >= 0.7.1). `extract-expand` is the
 * pre-0.7.1 MDK variant (HKDF-Extract with an empty salt first), offered for reading old media only.
 */
export function deriveMediaKey(
  exporterSecret: Uint8Array,
  sha256Plain: Uint8Array,
  mime: string,
  filename: string,
  kdf: MediaKdf = "expand",
): Uint8Array {
  if (!(exporterSecret instanceof Uint8Array) || exporterSecret.length !== 32) {
    throw new MediaError("MEDIA_BAD_EXPORTER", `the media exporter secret must be 32 bytes, got ${exporterSecret?.length ?? "none"}`);
  }
  const info = mediaKeyInfo(sha256Plain, mime, filename);
  const prk = kdf === "expand" ? exporterSecret : extract(sha256, exporterSecret, new Uint8Array(0));
  return expand(sha256, prk, info, MEDIA_KEY_BYTES);
}

// ---------------------------------------------------------------------------------------------
// imeta
// ---------------------------------------------------------------------------------------------

export interface ImetaFields {
  url: string;
  /** Canonical MIME type. */
  mime: string;
  filename: string;
  /** SHA-256 of the plaintext (`x`), 32 bytes. */
  sha256Plain: Uint8Array;
  /** 12-byte nonce (`n`). */
  nonce: Uint8Array;
  /** `WxH` */
  dim?: { width: number; height: number };
}

export interface ParsedImeta extends ImetaFields {
  version: typeof MIP04_VERSION;
  /** The Blossom address found in the URL (64 lowercase hex, last path segment, optional extension), if any. */
  blobSha256: string | null;
  /** Descriptive fields this parser does not interpret (e.g. blurhash, thumbhash, duration, waveform), by name. */
  extra: Record<string, string>;
}

const HEX_RE = /^[0-9a-fA-F]*$/;

/** The 64-hex Blossom address in a URL's last path segment (`/<sha256>` or `/<sha256>.<ext>`), or null. */
export function blobAddressFromUrl(url: string): string | null {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return null;
  }
  const last = u.pathname.split("/").pop() ?? "";
  const m = /^([0-9a-fA-F]{64})(\.[A-Za-z0-9]{1,16})?$/.exec(last);
  return m ? m[1]!.toLowerCase() : null;
}

/** `["imeta","url …","m …","filename …",("dim WxH"),"x …","n …","v mip04-v2", …extra]`. */
export function buildImetaTag(f: ImetaFields & { extra?: Record<string, string> }): string[] {
  const mime = canonicalMime(f.mime);
  if (mime !== f.mime) throw new MediaError("MEDIA_BAD_MIME", `MIME type "${f.mime}" is not canonical (expected "${mime}")`, { mime: f.mime });
  validateFilename(f.filename);
  checkHash32(f.sha256Plain, "sha256Plain");
  if (!(f.nonce instanceof Uint8Array) || f.nonce.length !== MEDIA_NONCE_BYTES) throw new MediaError("MEDIA_BAD_NONCE", "nonce must be 12 bytes");
  if (!isHttpUrl(f.url)) throw new MediaError("MEDIA_BAD_URL", `url "${f.url}" is not an http(s) URL`, { url: f.url });
  const tag = ["imeta", `url ${f.url}`, `m ${mime}`, `filename ${f.filename}`];
  if (f.dim) {
    if (!validDimPart(f.dim.width) || !validDimPart(f.dim.height)) throw new MediaError("MEDIA_BAD_DIM", "dim must be two positive integers");
    tag.push(`dim ${f.dim.width}x${f.dim.height}`);
  }
  tag.push(`x ${bytesToHex(f.sha256Plain)}`, `n ${bytesToHex(f.nonce)}`, `v ${MIP04_VERSION}`);
  for (const [k, v] of Object.entries(f.extra ?? {})) {
    if (KNOWN_FIELDS.has(k)) throw new MediaError("IMETA_DUPLICATE_FIELD", `extra field "${k}" collides with a known field`, { field: k });
    tag.push(`${k} ${v}`);
  }
  return tag;
}

const KNOWN_FIELDS = new Set(["url", "m", "filename", "x", "n", "v", "dim"]);
const REQUIRED_FIELDS = ["url", "m", "filename", "x", "n", "v"] as const;

function isHttpUrl(s: string): boolean {
  try {
    const u = new URL(s);
    return (u.protocol === "https:" || u.protocol === "http:") && u.host.length > 0;
  } catch {
    return false;
  }
}

function validDimPart(n: number): boolean {
  return Number.isSafeInteger(n) && n > 0 && n <= 0xffffffff;
}

export interface ParseImetaOptions {
  /**
   * Accept a non-canonical `m` and canonicalise it (what MDK 0.8 does). Default false: a
   * non-canonical `m` is rejected (`IMETA_NONCANONICAL_MIME`), because the MIME used in the
   * crypto must be canonical (MIP04-MD-08) and the sender is the one who must canonicalise.
   */
  lenientMime?: boolean;
}

/**
 * Parse and validate a MIP-04 `imeta` tag. Every entry must be `"<field> <value>"` with a non-empty
 * field name (the value may be empty: `"dim "` is a present-but-empty optional field, read as absent,
 * as MDK does); `url m filename x n v` are required; no field may appear twice; `v` must be `mip04-v2`
 * (`mip04-v1` is deprecated and rejected); `x` is 64 hex, `n` 24 hex; unknown fields are kept in `extra`.
 */
export function parseImetaTag(tag: readonly unknown[], opts: ParseImetaOptions = {}): ParsedImeta {
  if (!Array.isArray(tag) || tag[0] !== "imeta") throw new MediaError("IMETA_NOT_IMETA", `not an imeta tag (first element ${JSON.stringify(tag?.[0])})`);
  const fields = new Map<string, string>();
  for (let i = 1; i < tag.length; i++) {
    const entry = tag[i];
    if (typeof entry !== "string") throw new MediaError("IMETA_MALFORMED_ENTRY", `entry ${i} is not a string`, { index: i });
    const sp = entry.indexOf(" ");
    if (sp <= 0) {
      throw new MediaError("IMETA_MALFORMED_ENTRY", `entry ${i} ("${entry.slice(0, 40)}") is not "<field> <value>"`, { index: i });
    }
    const key = entry.slice(0, sp);
    const value = entry.slice(sp + 1);
    if (fields.has(key)) throw new MediaError("IMETA_DUPLICATE_FIELD", `field "${key}" appears more than once`, { field: key });
    fields.set(key, value);
  }
  for (const f of REQUIRED_FIELDS) {
    if (!fields.has(f)) throw new MediaError("IMETA_MISSING_FIELD", `required field "${f}" is missing`, { field: f });
  }
  const v = fields.get("v")!;
  if (v === MIP04_DEPRECATED_VERSION) throw new MediaError("IMETA_VERSION_DEPRECATED", `"v ${v}" is deprecated and must be rejected`, { version: v });
  if (v !== MIP04_VERSION) throw new MediaError("IMETA_VERSION_UNSUPPORTED", `unsupported version "v ${v}" (expected ${MIP04_VERSION})`, { version: v });

  const url = fields.get("url")!;
  if (!isHttpUrl(url)) throw new MediaError("IMETA_BAD_URL", `url "${url}" is not an http(s) URL`, { url });

  const rawMime = fields.get("m")!;
  let mime: string;
  try {
    mime = canonicalMime(rawMime);
  } catch (e) {
    throw new MediaError("IMETA_BAD_MIME", `m "${rawMime}" is not a valid MIME type`, { mime: rawMime }, { cause: e });
  }
  if (mime !== rawMime && !opts.lenientMime) {
    throw new MediaError("IMETA_NONCANONICAL_MIME", `m "${rawMime}" is not canonical (canonical form "${mime}")`, { mime: rawMime, canonical: mime });
  }

  const filename = fields.get("filename")!;
  try {
    validateFilename(filename);
  } catch (e) {
    throw new MediaError("IMETA_BAD_FILENAME", `filename is invalid: ${(e as Error).message}`, {}, { cause: e });
  }

  const x = fields.get("x")!;
  if (x.length !== 64 || !HEX_RE.test(x)) throw new MediaError("IMETA_BAD_X", `x must be 64 hex characters (SHA-256 of the plaintext), got ${x.length} characters`, { length: x.length });
  const n = fields.get("n")!;
  if (n.length !== 24 || !HEX_RE.test(n)) throw new MediaError("IMETA_BAD_N", `n must be 24 hex characters (12-byte nonce), got ${n.length} characters`, { length: n.length });

  let dim: ParsedImeta["dim"];
  const rawDim = fields.get("dim");
  if (rawDim !== undefined && rawDim !== "") {
    const m = /^([1-9][0-9]{0,9})x([1-9][0-9]{0,9})$/.exec(rawDim);
    const w = m ? Number(m[1]) : NaN;
    const h = m ? Number(m[2]) : NaN;
    if (!m || !validDimPart(w) || !validDimPart(h)) throw new MediaError("IMETA_BAD_DIM", `dim "${rawDim}" is not <width>x<height>`, { dim: rawDim });
    dim = { width: w, height: h };
  }

  const extra: Record<string, string> = {};
  for (const [k, val] of fields) if (!KNOWN_FIELDS.has(k)) extra[k] = val;

  return {
    version: MIP04_VERSION,
    url,
    mime,
    filename,
    sha256Plain: hexToBytes(x.toLowerCase()),
    nonce: hexToBytes(n.toLowerCase()),
    ...(dim ? { dim } : {}),
    blobSha256: blobAddressFromUrl(url),
    extra,
  };
}

// ---------------------------------------------------------------------------------------------
// Encrypt / decrypt
// ---------------------------------------------------------------------------------------------

export interface EncryptMediaInput {
  /** 32-byte media exporter secret of the epoch the message is sent in. */
  exporterSecret: Uint8Array;
  data: Uint8Array;
  /** Any MIME spelling; it is canonicalised before use. */
  mime: string;
  filename: string;
  /** Source of the 12-byte nonce (default: CSPRNG). */
  randomBytes?: (n: number) => Uint8Array;
  dim?: { width: number; height: number };
}

export interface EncryptedMedia {
  /** Ciphertext ‖ tag: the blob to upload. */
  ciphertext: Uint8Array;
  sha256Plain: Uint8Array;
  /**
   * SHA-256 of `ciphertext`: the Blossom address. Computed on first use (the upload or `imeta`
   * needs it; encrypting does not), once.
   */
  readonly sha256Cipher: Uint8Array;
  nonce: Uint8Array;
  mime: string;
  filename: string;
  /** The imeta tag once the blob's URL is known. */
  imeta(url: string): string[];
}

export function encryptMedia(input: EncryptMediaInput): EncryptedMedia {
  const mime = canonicalMime(input.mime);
  validateFilename(input.filename);
  if (!(input.data instanceof Uint8Array)) throw new MediaError("MEDIA_BAD_HASH", "data must be a Uint8Array");
  const nonce = (input.randomBytes ?? ((n: number) => new Uint8Array(nodeRandomBytes(n))))(MEDIA_NONCE_BYTES);
  if (!(nonce instanceof Uint8Array) || nonce.length !== MEDIA_NONCE_BYTES) throw new MediaError("MEDIA_BAD_NONCE", "randomBytes must return 12 bytes");
  const sha256Plain = sha256Bytes(input.data);
  const key = deriveMediaKey(input.exporterSecret, sha256Plain, mime, input.filename);
  const aad = mediaAad(sha256Plain, mime, input.filename);
  const ciphertext = chacha20poly1305(key, nonce, aad).encrypt(input.data);
  key.fill(0);
  const filename = input.filename;
  const dim = input.dim;
  let address: Uint8Array | undefined;
  return {
    ciphertext,
    sha256Plain,
    get sha256Cipher(): Uint8Array {
      address ??= sha256Bytes(ciphertext);
      return address;
    },
    nonce,
    mime,
    filename,
    imeta: (url: string) => buildImetaTag({ url, mime, filename, sha256Plain, nonce, ...(dim ? { dim } : {}) }),
  };
}

export interface DecryptMediaInput {
  exporterSecret: Uint8Array;
  blob: Uint8Array;
  /** A parsed imeta, or the raw tag (parsed with default options). */
  imeta: ParsedImeta | readonly string[];
  /**
   * The Blossom address the blob was fetched by (hex), when the imeta URL does not contain it.
   * One of the two is required.
   */
  expectedBlobSha256?: string;
  /** Also try the pre-0.7.1 Extract+Expand key (read-only compatibility). Default false. */
  allowLegacyKdf?: boolean;
}

export interface DecryptedMedia {
  data: Uint8Array;
  mime: string;
  filename: string;
  kdf: MediaKdf;
}

export function decryptMedia(input: DecryptMediaInput): DecryptedMedia {
  const meta: ParsedImeta = Array.isArray(input.imeta) ? parseImetaTag(input.imeta as readonly string[]) : (input.imeta as ParsedImeta);
  const address = (input.expectedBlobSha256 ?? meta.blobSha256)?.toLowerCase() ?? null;
  if (!address) {
    throw new MediaError("MEDIA_NO_BLOB_ADDRESS", "no Blossom address: the imeta url has no <sha256> segment and none was given", { url: meta.url });
  }
  if (meta.blobSha256 && input.expectedBlobSha256 && meta.blobSha256 !== input.expectedBlobSha256.toLowerCase()) {
    throw new MediaError("MEDIA_CIPHERTEXT_HASH_MISMATCH", "the requested address differs from the imeta url's address", {
      url: meta.blobSha256,
      requested: input.expectedBlobSha256,
    });
  }
  const actual = bytesToHex(sha256Bytes(input.blob));
  if (actual !== address) {
    throw new MediaError("MEDIA_CIPHERTEXT_HASH_MISMATCH", `SHA-256 of the blob (${actual}) is not its Blossom address (${address})`, { expected: address, actual });
  }
  if (input.blob.length < MEDIA_TAG_BYTES) throw new MediaError("MEDIA_DECRYPT_FAILED", `blob of ${input.blob.length} bytes is shorter than the AEAD tag`);
  const aad = mediaAad(meta.sha256Plain, meta.mime, meta.filename);
  const kdfs: MediaKdf[] = input.allowLegacyKdf ? ["expand", "extract-expand"] : ["expand"];
  let lastErr: unknown;
  for (const kdf of kdfs) {
    const key = deriveMediaKey(input.exporterSecret, meta.sha256Plain, meta.mime, meta.filename, kdf);
    let data: Uint8Array;
    try {
      data = chacha20poly1305(key, meta.nonce, aad).decrypt(input.blob);
    } catch (e) {
      lastErr = e;
      continue;
    } finally {
      key.fill(0);
    }
    const plainHash = sha256Bytes(data);
    if (bytesToHex(plainHash) !== bytesToHex(meta.sha256Plain)) {
      throw new MediaError("MEDIA_PLAINTEXT_HASH_MISMATCH", "SHA-256 of the decrypted file is not x", {
        expected: bytesToHex(meta.sha256Plain),
        actual: bytesToHex(plainHash),
      });
    }
    return { data, mime: meta.mime, filename: meta.filename, kdf };
  }
  throw new MediaError(
    "MEDIA_DECRYPT_FAILED",
    "ChaCha20-Poly1305 authentication failed (wrong epoch exporter, wrong imeta fields or tampered blob)",
    { kdfsTried: kdfs },
    { cause: lastErr },
  );
}
