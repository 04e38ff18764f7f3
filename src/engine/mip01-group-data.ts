/**
 * MIP-01: the Marmot Group Data Extension (0xF2EE) codec and the GroupContext helpers.
 *
 * Versions (digest §3):
 * - 1: the R0 (Jan 2026) layout: uint16 lengths, admins and relays as comma-separated UTF-8,
 *   fixed 32/32/12-byte image fields (all zeros when absent), no trailing bytes.
 * - 2: MLS varint `<V>` vectors (RFC 9420 §2.1.2): admins as raw 32-byte keys, relays as a vector of
 *   `<V>` strings, image fields empty or exact size, plus image_upload_key. No trailing bytes.
 * - 3: version 2 plus `disappearing_message_secs<V>` (empty, or 8-byte big-endian non-zero u64).
 *   Versions above 3 are read with the v3 layout and their trailing bytes are ignored (forward
 *   compatibility, as MDK does).
 *
 * Every failure is a `GroupDataError` whose code names the rule. Pure: no I/O, no clock.
 */
import { bytesToHex, hexToBytes } from "@noble/hashes/utils.js";
import { defaultExtensionTypes, makeCustomExtension, type CustomExtension, type ExtensionRequiredCapabilities } from "ts-mls";
import { HarnessError } from "../errors.ts";
import type { ProtocolProfile } from "../profile.ts";
import type { MarmotGroupData } from "./api.ts";
import { EXT_MARMOT_GROUP_DATA, PROPOSAL_SELF_REMOVE } from "./identity.ts";
import { isValidRelayUrl } from "./mip00-keypackages.ts";

export type { MarmotGroupData };

export const MARMOT_GROUP_DATA_EXTENSION = EXT_MARMOT_GROUP_DATA;
/** The newest version this codec knows the layout of. */
export const GROUP_DATA_LATEST_VERSION = 3;
/** Minimum size of a version-1 extension: 2+32+2+2+2+2+32+32+12. */
export const GROUP_DATA_V1_MIN_SIZE = 118;

export class GroupDataError extends HarnessError {}

const fail = (code: string, message: string, details: Record<string, unknown> = {}): never => {
  throw new GroupDataError(code, message, details);
};

// ---------------------------------------------------------------------------------------------
// MLS variable-length integers (RFC 9420 §2.1.2)

/** Largest length a `<V>` vector may declare (4-byte form, 30 bits). */
export const MAX_VARINT = 0x3fff_ffff;

/** Minimal-length MLS varint (1, 2 or 4 bytes). */
export function encodeVarint(n: number): Uint8Array {
  if (!Number.isInteger(n) || n < 0 || n > MAX_VARINT) fail("GD_FIELD_TOO_LONG", `length ${n} does not fit an MLS varint`, { length: n });
  if (n < 0x40) return Uint8Array.of(n);
  if (n < 0x4000) return Uint8Array.of(0x40 | (n >> 8), n & 0xff);
  return Uint8Array.of(0x80 | (n >>> 24), (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff);
}

/** Decode a varint at `offset`; rejects prefix 11, non-minimal forms and truncation. */
export function decodeVarint(b: Uint8Array, offset: number, field = "varint"): { value: number; next: number } {
  if (offset >= b.length) fail("GD_TRUNCATED", `${field}: missing length prefix at byte ${offset}`, { field, offset });
  const first = b[offset]!;
  const prefix = first >> 6;
  if (prefix === 0) return { value: first & 0x3f, next: offset + 1 };
  if (prefix === 1) {
    if (offset + 2 > b.length) fail("GD_TRUNCATED", `${field}: 2-byte length prefix cut at byte ${offset}`, { field, offset });
    const value = ((first & 0x3f) << 8) | b[offset + 1]!;
    if (value < 0x40) fail("GD_BAD_VARINT", `${field}: non-minimal 2-byte varint for ${value}`, { field, offset, value });
    return { value, next: offset + 2 };
  }
  if (prefix === 2) {
    if (offset + 4 > b.length) fail("GD_TRUNCATED", `${field}: 4-byte length prefix cut at byte ${offset}`, { field, offset });
    const value = (first & 0x3f) * 0x100_0000 + (b[offset + 1]! << 16) + (b[offset + 2]! << 8) + b[offset + 3]!;
    if (value < 0x4000) fail("GD_BAD_VARINT", `${field}: non-minimal 4-byte varint for ${value}`, { field, offset, value });
    return { value, next: offset + 4 };
  }
  return fail("GD_BAD_VARINT", `${field}: varint prefix 0b11 is invalid in MLS (byte 0x${first.toString(16)} at ${offset})`, { field, offset });
}

// ---------------------------------------------------------------------------------------------
// Small byte helpers

const utf8Encoder = new TextEncoder();
const utf8Decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

function utf8Bytes(s: string, field: string): Uint8Array {
  const bytes = utf8Encoder.encode(s);
  // A lone surrogate would be silently replaced by U+FFFD: refuse instead.
  if (utf8Decoder.decode(bytes) !== s) fail("GD_UTF8", `${field} is not a well-formed Unicode string`, { field });
  return bytes;
}

function utf8String(bytes: Uint8Array, field: string): string {
  try {
    return utf8Decoder.decode(bytes);
  } catch {
    return fail("GD_UTF8", `${field} is not valid UTF-8`, { field, hex: bytesToHex(bytes.slice(0, 64)) });
  }
}

class Writer {
  private parts: Uint8Array[] = [];
  u16(n: number): void {
    this.parts.push(Uint8Array.of((n >> 8) & 0xff, n & 0xff));
  }
  raw(b: Uint8Array): void {
    this.parts.push(b);
  }
  v(b: Uint8Array): void {
    this.parts.push(encodeVarint(b.length), b);
  }
  u16Bytes(b: Uint8Array, field: string): void {
    if (b.length > 0xffff) fail("GD_FIELD_TOO_LONG", `${field} is ${b.length} bytes, the v1 limit is 65535`, { field, length: b.length });
    this.u16(b.length);
    this.parts.push(b);
  }
  bytes(): Uint8Array {
    const total = this.parts.reduce((n, p) => n + p.length, 0);
    const out = new Uint8Array(total);
    let o = 0;
    for (const p of this.parts) {
      out.set(p, o);
      o += p.length;
    }
    return out;
  }
}

class Reader {
  offset = 0;
  constructor(readonly b: Uint8Array) {}
  take(n: number, field: string): Uint8Array {
    if (this.offset + n > this.b.length) {
      fail("GD_TRUNCATED", `${field}: needs ${n} bytes at offset ${this.offset}, only ${this.b.length - this.offset} left`, {
        field,
        offset: this.offset,
        needed: n,
      });
    }
    // Always a fresh plain Uint8Array (a Buffer's slice would alias the input).
    const out = new Uint8Array(this.b.subarray(this.offset, this.offset + n));
    this.offset += n;
    return out;
  }
  u16(field: string): number {
    const b = this.take(2, field);
    return (b[0]! << 8) | b[1]!;
  }
  u16Bytes(field: string): Uint8Array {
    return this.take(this.u16(`${field} length`), field);
  }
  v(field: string): Uint8Array {
    const { value, next } = decodeVarint(this.b, this.offset, field);
    this.offset = next;
    return this.take(value, field);
  }
  get remaining(): number {
    return this.b.length - this.offset;
  }
}

const HEX64_LOWER = /^[0-9a-f]{64}$/;
const HEX64_ANY = /^[0-9a-fA-F]{64}$/;

function isZero(b: Uint8Array): boolean {
  return b.every((x) => x === 0);
}

// ---------------------------------------------------------------------------------------------
// Field validation shared by encoder and decoder

function checkAdmins(admins: readonly string[], strictLowercase: boolean): void {
  const seen = new Set<string>();
  for (const a of admins) {
    const ok = strictLowercase ? HEX64_LOWER.test(a) : HEX64_ANY.test(a);
    if (!ok) fail("GD_ADMINS", `admin pubkey ${JSON.stringify(a)} is not 64 ${strictLowercase ? "lowercase " : ""}hex characters`, { admin: a });
    const k = a.toLowerCase();
    if (seen.has(k)) fail("GD_ADMINS", `admin pubkey ${k} is listed twice`, { admin: k });
    seen.add(k);
  }
}

function checkRelays(relays: readonly string[]): void {
  for (const r of relays) {
    if (!isValidRelayUrl(r)) fail("GD_RELAY_URL", `relay ${JSON.stringify(r)} is not a valid ws:// or wss:// URL`, { relay: r });
  }
}

function checkImageField(v: Uint8Array | null, size: number, field: string): void {
  if (v !== null && (!(v instanceof Uint8Array) || v.length !== size)) {
    fail("GD_IMAGE_FIELD_SIZE", `${field} must be empty or ${size} bytes, got ${v?.length}`, { field, length: v?.length, expected: size });
  }
}

const U64_MAX = (1n << 64n) - 1n;

function checkCommon(d: MarmotGroupData): void {
  if (!Number.isInteger(d.version) || d.version < 1 || d.version > 0xffff) {
    fail("GD_BAD_VERSION", `version ${d.version} is not in 1..65535`, { version: d.version });
  }
  if (!(d.nostrGroupId instanceof Uint8Array) || d.nostrGroupId.length !== 32) {
    fail("GD_GROUP_ID_SIZE", `nostr_group_id must be 32 bytes, got ${d.nostrGroupId?.length}`, { length: d.nostrGroupId?.length });
  }
  checkAdmins(d.adminPubkeys, true);
  checkRelays(d.relays);
  checkImageField(d.imageHash, 32, "image_hash");
  checkImageField(d.imageKey, 32, "image_key");
  checkImageField(d.imageNonce, 12, "image_nonce");
  checkImageField(d.imageUploadKey, 32, "image_upload_key");
  const secs = d.disappearingMessageSecs;
  if (secs !== null) {
    if (typeof secs !== "bigint" || secs < 0n || secs > U64_MAX) fail("GD_DISAPPEARING_SIZE", `disappearing_message_secs ${String(secs)} is not a u64`, {});
    if (secs === 0n) fail("GD_ZERO_DISAPPEARING", "disappearing_message_secs must be non-zero when set", {});
  }
}

// ---------------------------------------------------------------------------------------------
// Encoding

/** Encode any version (1, 2, 3, or >3 with the v3 layout). The input is validated first. */
export function encodeGroupData(d: MarmotGroupData): Uint8Array {
  checkCommon(d);
  return d.version === 1 ? encodeV1(d) : encodeVarintLayout(d);
}

function encodeV1(d: MarmotGroupData): Uint8Array {
  if (d.imageUploadKey !== null) fail("GD_FIELD_NOT_IN_VERSION", "image_upload_key does not exist in version 1", { field: "image_upload_key" });
  if (d.disappearingMessageSecs !== null) {
    fail("GD_FIELD_NOT_IN_VERSION", "disappearing_message_secs does not exist in version 1", { field: "disappearing_message_secs" });
  }
  for (const r of d.relays) {
    if (r.includes(",")) fail("GD_RELAY_URL", `relay ${JSON.stringify(r)} contains a comma, which the v1 list format cannot carry`, { relay: r });
  }
  for (const [v, field] of [
    [d.imageHash, "image_hash"],
    [d.imageKey, "image_key"],
    [d.imageNonce, "image_nonce"],
  ] as const) {
    if (v !== null && isZero(v)) fail("GD_IMAGE_FIELD_SIZE", `${field} is all zeros, which version 1 reads as "no image"`, { field });
  }
  const w = new Writer();
  w.u16(1);
  w.raw(d.nostrGroupId);
  w.u16Bytes(utf8Bytes(d.name, "name"), "name");
  w.u16Bytes(utf8Bytes(d.description, "description"), "description");
  w.u16Bytes(utf8Encoder.encode(d.adminPubkeys.join(",")), "admin_pubkeys");
  w.u16Bytes(utf8Bytes(d.relays.join(","), "relays"), "relays");
  w.raw(d.imageHash ?? new Uint8Array(32));
  w.raw(d.imageKey ?? new Uint8Array(32));
  w.raw(d.imageNonce ?? new Uint8Array(12));
  return w.bytes();
}

function encodeVarintLayout(d: MarmotGroupData): Uint8Array {
  if (d.version === 2 && d.disappearingMessageSecs !== null) {
    fail("GD_FIELD_NOT_IN_VERSION", "disappearing_message_secs needs version 3", { field: "disappearing_message_secs" });
  }
  const w = new Writer();
  w.u16(d.version);
  w.raw(d.nostrGroupId);
  w.v(utf8Bytes(d.name, "name"));
  w.v(utf8Bytes(d.description, "description"));
  const admins = new Uint8Array(32 * d.adminPubkeys.length);
  d.adminPubkeys.forEach((a, i) => admins.set(hexToBytes(a), 32 * i));
  w.v(admins);
  const relays = new Writer();
  for (const r of d.relays) relays.v(utf8Bytes(r, "relay"));
  w.v(relays.bytes());
  w.v(d.imageHash ?? new Uint8Array(0));
  w.v(d.imageKey ?? new Uint8Array(0));
  w.v(d.imageNonce ?? new Uint8Array(0));
  w.v(d.imageUploadKey ?? new Uint8Array(0));
  if (d.version >= 3) {
    const secs = d.disappearingMessageSecs;
    if (secs === null) w.v(new Uint8Array(0));
    else {
      const b = new Uint8Array(8);
      new DataView(b.buffer).setBigUint64(0, secs, false);
      w.v(b);
    }
  }
  return w.bytes();
}

// ---------------------------------------------------------------------------------------------
// Decoding

/** Strict decoder for every version; throws `GroupDataError` with a precise code. */
export function decodeGroupData(bytes: Uint8Array): MarmotGroupData {
  if (!(bytes instanceof Uint8Array)) fail("GD_TRUNCATED", "group data must be bytes", {});
  if (bytes.length < 2) fail("GD_TRUNCATED", `group data is ${bytes.length} bytes, too short for a version`, { length: bytes.length });
  const version = (bytes[0]! << 8) | bytes[1]!;
  if (version === 0) fail("GD_BAD_VERSION", "version 0 is invalid", { version });
  return version === 1 ? decodeV1(bytes) : decodeVarintLayout(bytes, version);
}

function splitCsv(s: string): string[] {
  return s === "" ? [] : s.split(",");
}

function decodeV1(bytes: Uint8Array): MarmotGroupData {
  const r = new Reader(bytes);
  r.u16("version");
  const nostrGroupId = r.take(32, "nostr_group_id");
  const name = utf8String(r.u16Bytes("name"), "name");
  const description = utf8String(r.u16Bytes("description"), "description");
  const adminCsv = utf8String(r.u16Bytes("admin_pubkeys"), "admin_pubkeys");
  const relayCsv = utf8String(r.u16Bytes("relays"), "relays");
  const imageHash = r.take(32, "image_hash");
  const imageKey = r.take(32, "image_key");
  const imageNonce = r.take(12, "image_nonce");
  if (r.remaining !== 0) fail("GD_TRAILING_BYTES", `${r.remaining} bytes after the version-1 fixed tail`, { trailing: r.remaining });
  const adminPubkeys = splitCsv(adminCsv);
  checkAdmins(adminPubkeys, false);
  const relays = splitCsv(relayCsv);
  checkRelays(relays);
  return {
    version: 1,
    nostrGroupId,
    name,
    description,
    adminPubkeys: adminPubkeys.map((a) => a.toLowerCase()),
    relays,
    imageHash: isZero(imageHash) ? null : imageHash,
    imageKey: isZero(imageKey) ? null : imageKey,
    imageNonce: isZero(imageNonce) ? null : imageNonce,
    imageUploadKey: null,
    disappearingMessageSecs: null,
  };
}

function optionalSized(b: Uint8Array, size: number, field: string): Uint8Array | null {
  if (b.length === 0) return null;
  if (b.length !== size) fail("GD_IMAGE_FIELD_SIZE", `${field} must be empty or ${size} bytes, got ${b.length}`, { field, length: b.length, expected: size });
  return b;
}

function decodeVarintLayout(bytes: Uint8Array, version: number): MarmotGroupData {
  const r = new Reader(bytes);
  r.u16("version");
  const nostrGroupId = r.take(32, "nostr_group_id");
  const name = utf8String(r.v("name"), "name");
  const description = utf8String(r.v("description"), "description");
  const adminBytes = r.v("admin_pubkeys");
  if (adminBytes.length % 32 !== 0) {
    fail("GD_ADMINS", `admin_pubkeys is ${adminBytes.length} bytes, not a multiple of 32`, { length: adminBytes.length });
  }
  const adminPubkeys: string[] = [];
  for (let i = 0; i < adminBytes.length; i += 32) adminPubkeys.push(bytesToHex(adminBytes.subarray(i, i + 32)));
  checkAdmins(adminPubkeys, true);
  const relayBytes = r.v("relays");
  const rr = new Reader(relayBytes);
  const relays: string[] = [];
  while (rr.remaining > 0) relays.push(utf8String(rr.v("relay"), "relay"));
  checkRelays(relays);
  const imageHash = optionalSized(r.v("image_hash"), 32, "image_hash");
  const imageKey = optionalSized(r.v("image_key"), 32, "image_key");
  const imageNonce = optionalSized(r.v("image_nonce"), 12, "image_nonce");
  const imageUploadKey = optionalSized(r.v("image_upload_key"), 32, "image_upload_key");
  let disappearingMessageSecs: bigint | null = null;
  if (version >= 3) {
    const secs = r.v("disappearing_message_secs");
    if (secs.length !== 0) {
      if (secs.length !== 8) {
        fail("GD_DISAPPEARING_SIZE", `disappearing_message_secs must be empty or 8 bytes, got ${secs.length}`, { length: secs.length });
      }
      disappearingMessageSecs = new DataView(secs.buffer, secs.byteOffset, 8).getBigUint64(0, false);
      if (disappearingMessageSecs === 0n) fail("GD_ZERO_DISAPPEARING", "disappearing_message_secs is zero", {});
    }
  }
  if (r.remaining !== 0 && version <= GROUP_DATA_LATEST_VERSION) {
    fail("GD_TRAILING_BYTES", `${r.remaining} bytes after the last version-${version} field`, { trailing: r.remaining, version });
  }
  return {
    version,
    nostrGroupId,
    name,
    description,
    adminPubkeys,
    relays,
    imageHash,
    imageKey,
    imageNonce,
    imageUploadKey,
    disappearingMessageSecs,
  };
}

// ---------------------------------------------------------------------------------------------
// Version choice and SHOULD-level checks

/** R0 writes version 1; R1/R2 write 2, or 3 when disappearing messages are set (MDK behaviour). */
export function groupDataVersionFor(d: Pick<MarmotGroupData, "disappearingMessageSecs">, profile: ProtocolProfile): number {
  if (profile === "R0") return 1;
  return d.disappearingMessageSecs !== null && d.disappearingMessageSecs !== undefined ? 3 : 2;
}

export interface GroupDataWarning {
  code: string;
  message: string;
}

/** SHOULD-level checks (MIP01-GD-11): name ≤255 characters, description ≤1000, 1..20 relays. */
export function validateGroupDataSoft(d: MarmotGroupData): GroupDataWarning[] {
  const out: GroupDataWarning[] = [];
  const nameChars = [...d.name].length;
  const descChars = [...d.description].length;
  if (nameChars > 255) out.push({ code: "GD_NAME_TOO_LONG", message: `name has ${nameChars} characters (SHOULD be ≤255)` });
  if (descChars > 1000) out.push({ code: "GD_DESCRIPTION_TOO_LONG", message: `description has ${descChars} characters (SHOULD be ≤1000)` });
  if (d.relays.length < 1) out.push({ code: "GD_NO_RELAYS", message: "no relays (SHOULD list at least one)" });
  if (d.relays.length > 20) out.push({ code: "GD_TOO_MANY_RELAYS", message: `${d.relays.length} relays (SHOULD be ≤20)` });
  return out;
}

// ---------------------------------------------------------------------------------------------
// GroupContext helpers

/** The 0xF2EE GroupContext extension carrying `d` (encoded at `d.version`). */
export function makeGroupDataExtension(d: MarmotGroupData): CustomExtension {
  return makeCustomExtension({ extensionType: MARMOT_GROUP_DATA_EXTENSION, extensionData: encodeGroupData(d) });
}

/** Read the one 0xF2EE extension from a GroupContext (or GroupInfo) extension list. */
export function readGroupDataExtension(extensions: readonly { extensionType: number; extensionData: unknown }[]): MarmotGroupData {
  const found = extensions.filter((e) => e.extensionType === MARMOT_GROUP_DATA_EXTENSION);
  if (found.length === 0) fail("GD_EXTENSION_MISSING", "the group has no marmot_group_data (0xF2EE) extension", {});
  if (found.length > 1) fail("GD_EXTENSION_DUPLICATE", `the group has ${found.length} marmot_group_data (0xF2EE) extensions`, { count: found.length });
  const data = found[0]!.extensionData;
  if (!(data instanceof Uint8Array)) fail("GD_TRUNCATED", "marmot_group_data extension data is not bytes", {});
  return decodeGroupData(data as Uint8Array);
}

export interface RequiredCapabilitiesOptions {
  profile?: ProtocolProfile;
  /**
   * Require self_remove (0x000a). Default true for R1/R2 (MIP-01 R1 "MUST include self_remove").
   * Pass false to reproduce MDK 0.8's lowest-common-denominator choice when an invitee lacks it.
   */
  selfRemove?: boolean;
}

/** required_capabilities: ext [0xF2EE] and, for R1, proposals [0x000a]; R0 requires no proposals. */
export function makeRequiredCapabilities(opts: RequiredCapabilitiesOptions = {}): ExtensionRequiredCapabilities {
  const profile = opts.profile ?? "R1";
  const selfRemove = opts.selfRemove ?? profile !== "R0";
  return {
    extensionType: defaultExtensionTypes.required_capabilities,
    extensionData: {
      extensionTypes: [MARMOT_GROUP_DATA_EXTENSION],
      proposalTypes: selfRemove ? [PROPOSAL_SELF_REMOVE] : [],
      credentialTypes: [],
    },
  };
}

/** Lowercase hex of a nostr_group_id (what goes in the `h` tag). */
export function nostrGroupIdHex(d: Pick<MarmotGroupData, "nostrGroupId">): string {
  return bytesToHex(d.nostrGroupId);
}
