/**
 * MIP-00: KeyPackage events (kind 30443, legacy 443), the KeyPackage relay list (10051), deletion
 * (kind 5) and the inviter's choice among candidate KeyPackages.
 *
 * R1 (default) builds kind 30443 with MDK 0.8's tag order; R0 builds kind 443. The parser checks
 * the NIP-01 id and signature first, then every tag rule (digest §1.2, rules MIP00-KP-01..14), then
 * the content: strict base64 (or hex for legacy 443), a canonical TLS KeyPackage, ciphersuite
 * 0x0001, a BasicCredential equal to the event author, the KeyPackage signature and `i` == the
 * KeyPackageRef. Every failure is a `KeyPackageError` whose code names the rule.
 */
import { bytesToHex, hexToBytes } from "@noble/hashes/utils.js";
import { eventId } from "../nostr/event-id.ts";
import { publicKeyHex, signNostrEvent, verifyNostrSignature } from "./nostr-signing.ts";
import { syncSha256, verifyEd25519 } from "./sync-primitives.ts";
import { encode, keyPackageDecoder, keyPackageEncoder, makeKeyPackageRef, type KeyPackage } from "ts-mls";
import { HarnessError } from "../errors.ts";
import type { ProtocolProfile } from "../profile.ts";
import type { NostrEvent } from "./api.ts";
import {
  DEFAULT_EXTENSION_TYPES,
  EXT_LAST_RESORT,
  EXT_MARMOT_GROUP_DATA,
  MARMOT_CIPHERSUITE,
  PROPOSAL_SELF_REMOVE,
  identityOfCredential,
  isGrease,
  isLastResortKeyPackage,
} from "./identity.ts";

export const KIND_KEY_PACKAGE = 30443;
export const KIND_KEY_PACKAGE_LEGACY = 443;
export const KIND_KEY_PACKAGE_RELAYS = 10051;
export const KIND_DELETION = 5;

export const MLS_PROTOCOL_VERSION = "1.0";

export class KeyPackageError extends HarnessError {}

const fail = (code: string, message: string, details: Record<string, unknown> = {}): never => {
  throw new KeyPackageError(code, message, details);
};

// ---------------------------------------------------------------------------------------------
// Shared helpers

const textEncoder = new TextEncoder();

/**
 * A relay URL Marmot accepts: ws:// or wss://, a host, no userinfo, no fragment, no whitespace or
 * control characters, at most 512 bytes of UTF-8.
 */
export function isValidRelayUrl(url: unknown): boolean {
  if (typeof url !== "string" || url.length === 0) return false;
  // The same few relay URLs are checked on every KeyPackage and Welcome: remember recent verdicts.
  const known = relayVerdicts.get(url);
  if (known !== undefined) return known;
  const ok = checkRelayUrl(url);
  if (relayVerdicts.size >= 256) relayVerdicts.delete(relayVerdicts.keys().next().value as string);
  relayVerdicts.set(url, ok);
  return ok;
}

const relayVerdicts = new Map<string, boolean>();

function checkRelayUrl(url: string): boolean {
  if (textEncoder.encode(url).length > 512) return false;
  if (/[\s\u0000-\u001f\u007f]/u.test(url)) return false;
  if (url.includes("#")) return false;
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return false;
  }
  if (u.protocol !== "ws:" && u.protocol !== "wss:") return false;
  if (u.hostname === "" || u.username !== "" || u.password !== "") return false;
  return true;
}

/** Format an MLS code point as a Marmot tag value: `0x` + 4 lowercase hex digits. */
export function formatCodePoint(n: number): string {
  return `0x${n.toString(16).padStart(4, "0")}`;
}

const CODE_POINT = /^0x[0-9a-fA-F]{4}$/;

function parseCodePoint(v: string): number | undefined {
  return CODE_POINT.test(v) ? Number.parseInt(v.slice(2), 16) : undefined;
}

/** The `mls_extensions` values for a KeyPackage: leaf capabilities minus GREASE and defaults 1..5. */
export function extensionTagValues(kp: KeyPackage): string[] {
  const out: string[] = [];
  for (const e of kp.leafNode.capabilities.extensions) {
    if (isGrease(e) || DEFAULT_EXTENSION_TYPES.includes(e)) continue;
    const s = formatCodePoint(e);
    if (!out.includes(s)) out.push(s);
  }
  return out;
}

/** Lowercase hex KeyPackageRef (RefHash "MLS 1.0 KeyPackage Reference" over the TLS KeyPackage). */
export async function computeKeyPackageRef(kp: KeyPackage): Promise<string> {
  return bytesToHex(await makeKeyPackageRef(kp, syncSha256));
}

/** TLS encoding of the bare KeyPackage (R0/R1 content framing). */
export function encodeKeyPackage(kp: KeyPackage): Uint8Array {
  return encode(keyPackageEncoder, kp);
}

export function bytesToBase64(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString("base64");
}

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** Strict standard base64 with padding; undefined when `s` is not exactly that. */
export function strictBase64Decode(s: string): Uint8Array | undefined {
  if (typeof s !== "string" || !BASE64.test(s)) return undefined;
  const b = Buffer.from(s, "base64");
  // Reject non-zero pad bits (two strings for the same bytes).
  if (b.toString("base64") !== s) return undefined;
  return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
}

/** A random `d` value: 32 bytes as 64 lowercase hex characters. */
export function generateD(randomBytes: (n: number) => Uint8Array = (n) => crypto.getRandomValues(new Uint8Array(n))): string {
  return bytesToHex(randomBytes(32));
}

/**
 * Sign a Nostr event. With `randomBytes` the BIP-340 auxiliary randomness comes from it, so a
 * seeded run produces the same signature; without it, nostr-tools signs with CSPRNG aux bytes.
 */
export function signEvent(
  template: { kind: number; created_at: number; tags: string[][]; content: string },
  secretKey: Uint8Array,
  randomBytes?: (n: number) => Uint8Array,
): NostrEvent {
  return signNostrEvent(template, secretKey, randomBytes === undefined ? undefined : randomBytes(32)) as NostrEvent;
}

/**
 * NIP-01 checks done here rather than with nostr-tools' `verifyEvent`, which caches its verdict on
 * the event object (a mutated copy of a verified event would pass).
 */
export function checkEventIdAndSignature(event: NostrEvent, makeError: (code: string, msg: string, d: Record<string, unknown>) => never): void {
  let id: string;
  try {
    id = eventId(event);
  } catch {
    return makeError("KP_MALFORMED_EVENT", "the event cannot be serialized for its NIP-01 id", {});
  }
  if (event.id !== id) makeError("KP_BAD_ID", `event id ${event.id} is not the NIP-01 hash ${id}`, { id: event.id, expected: id });
  let ok = false;
  try {
    ok = verifyNostrSignature({ ...event, id });
  } catch {
    ok = false;
  }
  if (!ok) makeError("KP_BAD_SIGNATURE", "the event signature does not verify for its pubkey", { id: event.id, pubkey: event.pubkey });
}

function checkEventShape(event: unknown): asserts event is NostrEvent {
  const e = event as Partial<NostrEvent> | null;
  const ok =
    e !== null &&
    typeof e === "object" &&
    typeof e.id === "string" &&
    typeof e.pubkey === "string" &&
    /^[0-9a-f]{64}$/.test(e.pubkey) &&
    typeof e.sig === "string" &&
    typeof e.kind === "number" &&
    Number.isInteger(e.kind) &&
    typeof e.created_at === "number" &&
    Number.isInteger(e.created_at) &&
    typeof e.content === "string" &&
    Array.isArray(e.tags) &&
    e.tags.every((t) => Array.isArray(t) && t.length > 0 && t.every((x) => typeof x === "string"));
  if (!ok) fail("KP_MALFORMED_EVENT", "not a well-formed Nostr event (fields, types or tags)", {});
}

type Tags = string[][];

function tagsNamed(tags: Tags, name: string): string[][] {
  return tags.filter((t) => t[0] === name);
}

/** Exactly one tag named `name` (or none when optional); duplicates are errors. */
function singleTag(tags: Tags, name: string, required: boolean): string[] | undefined {
  const found = tagsNamed(tags, name);
  if (found.length > 1) fail("KP_DUPLICATE_TAG", `tag "${name}" appears ${found.length} times`, { tag: name, count: found.length });
  if (found.length === 0) {
    if (required) fail("KP_MISSING_TAG", `required tag "${name}" is missing`, { tag: name });
    return undefined;
  }
  return found[0];
}

/** A singleton tag with exactly one value. */
function singleValue(tags: Tags, name: string, required: boolean): string | undefined {
  const t = singleTag(tags, name, required);
  if (t === undefined) return undefined;
  if (t.length !== 2) fail("KP_BAD_TAG_ARITY", `tag "${name}" must have exactly one value, has ${t.length - 1}`, { tag: t });
  return t[1];
}

// ---------------------------------------------------------------------------------------------
// Build

export interface BuildKeyPackageEventParams {
  keyPackage: KeyPackage;
  /** The account secret key; its pubkey must equal the KeyPackage credential identity. */
  secretKey: Uint8Array;
  relays: string[];
  /** 64 hex characters (R1); ignored for R0. */
  d: string;
  now: number;
  profile?: ProtocolProfile;
  client?: string;
  /** Quirk (marmot-ts 0.5.1): omit `mls_proposals` on 30443. */
  omitMlsProposals?: boolean;
  /** Add the NIP-70 `-` tag (many relays refuse it). */
  protectedTag?: boolean;
  /**
   * Hex content. R0: the legacy form without an `encoding` tag. R1: a known-bad variant with
   * `["encoding","hex"]`, which R1 parsers reject.
   */
  hexContent?: boolean;
  /** Source of the signature's auxiliary randomness (seeded runs); default CSPRNG. */
  randomBytes?: (n: number) => Uint8Array;
}

/** Build and sign a KeyPackage event (R1: 30443 in MDK 0.8 tag order; R0: 443). */
export async function buildKeyPackageEvent(p: BuildKeyPackageEventParams): Promise<NostrEvent> {
  const profile = p.profile ?? "R1";
  if (profile === "R2") fail("KP_PROFILE_UNSUPPORTED", "building R2 KeyPackages is not supported (R0 and R1 only)", { profile });
  const pubkey = publicKeyHex(p.secretKey);
  let identity: string;
  try {
    identity = identityOfCredential(p.keyPackage.leafNode.credential);
  } catch (e) {
    return fail("KP_CREDENTIAL", `the KeyPackage credential is not a Marmot BasicCredential: ${(e as Error).message}`, {});
  }
  if (identity !== pubkey) {
    fail("KP_IDENTITY_MISMATCH", `credential identity ${identity} is not the signing pubkey ${pubkey}`, { identity, pubkey });
  }
  if (p.keyPackage.cipherSuite !== MARMOT_CIPHERSUITE) {
    fail("KP_BAD_CIPHERSUITE", `KeyPackage ciphersuite ${p.keyPackage.cipherSuite} is not 0x0001`, { cipherSuite: p.keyPackage.cipherSuite });
  }
  if (p.relays.length === 0) fail("KP_BAD_RELAYS", "a KeyPackage needs at least one relay", {});
  for (const r of p.relays) if (!isValidRelayUrl(r)) fail("KP_BAD_RELAYS", `relay ${JSON.stringify(r)} is not a valid ws/wss URL`, { relay: r });
  const extensions = extensionTagValues(p.keyPackage);
  const bytes = encodeKeyPackage(p.keyPackage);
  const content = p.hexContent ? bytesToHex(bytes) : bytesToBase64(bytes);
  const tags: string[][] = [];
  if (profile === "R1") {
    if (!/^[0-9a-fA-F]{64}$/.test(p.d)) fail("KP_BAD_D", `d must be 64 hex characters, got ${JSON.stringify(p.d)}`, { d: p.d });
    tags.push(["d", p.d.toLowerCase()]);
    tags.push(["mls_protocol_version", MLS_PROTOCOL_VERSION]);
    tags.push(["mls_ciphersuite", formatCodePoint(MARMOT_CIPHERSUITE)]);
    tags.push(["mls_extensions", ...extensions]);
    if (!p.omitMlsProposals) tags.push(["mls_proposals", formatCodePoint(PROPOSAL_SELF_REMOVE)]);
    tags.push(["relays", ...p.relays]);
    tags.push(["i", await computeKeyPackageRef(p.keyPackage)]);
    if (p.protectedTag) tags.push(["-"]);
    if (p.client !== undefined) tags.push(["client", p.client]);
    tags.push(["encoding", p.hexContent ? "hex" : "base64"]);
    return signEvent({ kind: KIND_KEY_PACKAGE, created_at: p.now, tags, content }, p.secretKey, p.randomBytes);
  }
  tags.push(["mls_protocol_version", MLS_PROTOCOL_VERSION]);
  tags.push(["mls_ciphersuite", formatCodePoint(MARMOT_CIPHERSUITE)]);
  tags.push(["mls_extensions", ...extensions]);
  if (!p.hexContent) tags.push(["encoding", "base64"]);
  tags.push(["relays", ...p.relays]);
  if (p.client !== undefined) tags.push(["client", p.client]);
  if (p.protectedTag) tags.push(["-"]);
  return signEvent({ kind: KIND_KEY_PACKAGE_LEGACY, created_at: p.now, tags, content }, p.secretKey, p.randomBytes);
}

// ---------------------------------------------------------------------------------------------
// Parse

export interface ParsedKeyPackage {
  kind: number;
  event: NostrEvent;
  keyPackage: KeyPackage;
  /** Lowercase hex KeyPackageRef computed from the content. */
  ref: string;
  /** The `d` tag value (30443 only), as published. */
  d?: string;
  relays: string[];
  lastResort: boolean;
  client?: string;
  /** NIP-70 `-` tag present. */
  protected: boolean;
  encoding: "base64" | "hex";
}

export interface ParseKeyPackageOptions {
  /** Default R1. R0 reads 443 (and 30443 without the R1-only tag rules). */
  profile?: ProtocolProfile;
  /** When given, the leaf Lifetime must contain `now` (Unix seconds). */
  now?: number;
  /**
   * Leave out the KeyPackage's own Ed25519 signature check (KP_BAD_KP_SIGNATURE) because the caller
   * hands the KeyPackage straight to ts-mls, whose createCommit verifies it (RFC 9420 §12.2) and fails
   * the commit otherwise: the engine's inviteMembers, which then re-validates fully to name the culprit.
   * Never set it for a KeyPackage that is not given to ts-mls.
   */
  signatureVerifiedByMls?: boolean;
}

function checkCodePointList(tag: string[], name: string, code: string): number[] {
  const values = tag.slice(1);
  const out: number[] = [];
  for (const v of values) {
    const n = parseCodePoint(v);
    if (n === undefined) fail(code, `${name} value ${JSON.stringify(v)} is not 0x followed by 4 hex digits`, { tag, value: v });
    out.push(n as number);
  }
  return out;
}

/** Read content (strict base64 or hex) into a canonical TLS KeyPackage. */
export function decodeKeyPackageContent(content: string, encoding: "base64" | "hex"): { keyPackage: KeyPackage; bytes: Uint8Array } {
  let bytes: Uint8Array | undefined;
  if (encoding === "base64") bytes = strictBase64Decode(content);
  else bytes = /^(?:[0-9a-fA-F]{2})+$/.test(content) ? hexToBytes(content.toLowerCase()) : undefined;
  if (bytes === undefined || bytes.length === 0) {
    return fail("KP_BAD_ENCODING", `content is not valid ${encoding}`, { encoding, prefix: content.slice(0, 32) });
  }
  // MLSMessage(mls_key_package) framing starts 0x0001 (mls10) 0x0005 (wire format key_package).
  const framed = bytes.length > 4 && bytes[0] === 0 && bytes[1] === 1 && bytes[2] === 0 && bytes[3] === 5;
  const decodeFail = (why: string, details: Record<string, unknown> = {}): never =>
    fail("KP_DECODE", framed ? `${why} (the content looks MLSMessage-framed, the R2 form; R0/R1 carry the bare KeyPackage)` : why, {
      ...details,
      length: bytes!.length,
      mlsMessageFraming: framed,
    });
  let decoded: [KeyPackage, number] | undefined;
  try {
    decoded = keyPackageDecoder(bytes, 0);
  } catch (e) {
    return decodeFail(`content is not a TLS KeyPackage: ${(e as Error).message}`);
  }
  if (decoded === undefined) return decodeFail("content is not a TLS KeyPackage");
  const [keyPackage, used] = decoded;
  if (used !== bytes.length) decodeFail(`${bytes.length - used} trailing bytes after the KeyPackage`, { trailing: bytes.length - used });
  let reencoded: Uint8Array;
  try {
    reencoded = encodeKeyPackage(keyPackage);
  } catch (e) {
    return decodeFail(`KeyPackage cannot be re-encoded: ${(e as Error).message}`);
  }
  if (bytesToHex(reencoded) !== bytesToHex(bytes)) decodeFail("KeyPackage encoding is not canonical");
  return { keyPackage, bytes };
}

function varintPrefix(n: number): Uint8Array {
  if (n < 0x40) return Uint8Array.of(n);
  if (n < 0x4000) return Uint8Array.of(0x40 | (n >> 8), n & 0xff);
  return Uint8Array.of(0x80 | (n >>> 24), (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff);
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/**
 * RFC 9420 §5.1.2 VerifyWithLabel(leaf signature key, "KeyPackageTBS", TBS, signature). The TBS is
 * the KeyPackage encoding without its trailing signature vector; the Ed25519 check is ts-mls's.
 */
async function verifyKeyPackageSignature(kp: KeyPackage, bytes: Uint8Array): Promise<boolean> {
  const sigLen = varintPrefix(kp.signature.length).length + kp.signature.length;
  const tbs = bytes.subarray(0, bytes.length - sigLen);
  const label = textEncoder.encode("MLS 1.0 KeyPackageTBS");
  const signContent = concat(varintPrefix(label.length), label, varintPrefix(tbs.length), tbs);
  return verifyEd25519(kp.leafNode.signaturePublicKey, signContent, kp.signature);
}

/** Parse and fully validate a KeyPackage event (30443, or legacy 443). */
export async function parseKeyPackageEvent(event: NostrEvent, opts: ParseKeyPackageOptions = {}): Promise<ParsedKeyPackage> {
  const profile = opts.profile ?? "R1";
  checkEventShape(event);
  if (event.kind !== KIND_KEY_PACKAGE && event.kind !== KIND_KEY_PACKAGE_LEGACY) {
    fail("KP_WRONG_KIND", `kind ${event.kind} is not a KeyPackage (30443 or 443)`, { kind: event.kind });
  }
  checkEventIdAndSignature(event, fail);
  const tags = event.tags;
  const addressable = event.kind === KIND_KEY_PACKAGE;
  const r1Rules = addressable && profile !== "R0";

  // d (MIP00-KP-02)
  let d: string | undefined;
  if (addressable) {
    d = singleValue(tags, "d", true)!;
    if (!/^[0-9a-fA-F]{64}$/.test(d)) fail("KP_BAD_D", `d must be 64 hex characters (32 bytes), got ${JSON.stringify(d)}`, { tag: ["d", d] });
  }
  // mls_protocol_version (KP-03)
  const version = singleValue(tags, "mls_protocol_version", true)!;
  if (version !== MLS_PROTOCOL_VERSION) fail("KP_BAD_VERSION", `mls_protocol_version must be "1.0", got ${JSON.stringify(version)}`, { tag: ["mls_protocol_version", version] });
  // mls_ciphersuite (KP-04)
  const csTag = singleTag(tags, "mls_ciphersuite", true)!;
  const suites = checkCodePointList(csTag, "mls_ciphersuite", "KP_BAD_CIPHERSUITE");
  if (suites.length !== 1 || suites[0] !== MARMOT_CIPHERSUITE) {
    fail("KP_BAD_CIPHERSUITE", `mls_ciphersuite must be exactly 0x0001, got ${csTag.slice(1).join(",")}`, { tag: csTag });
  }
  // mls_extensions (KP-05, KP-06)
  const extTag = singleTag(tags, "mls_extensions", true)!;
  const exts = checkCodePointList(extTag, "mls_extensions", "KP_EXTENSIONS").filter((n) => !isGrease(n));
  for (const need of [EXT_MARMOT_GROUP_DATA, EXT_LAST_RESORT]) {
    if (!exts.includes(need)) fail("KP_EXTENSIONS", `mls_extensions must include ${formatCodePoint(need)}`, { tag: extTag, missing: formatCodePoint(need) });
  }
  const defaults = exts.filter((n) => DEFAULT_EXTENSION_TYPES.includes(n));
  if (defaults.length > 0) {
    fail("KP_EXTENSIONS", `mls_extensions lists default extension(s) ${defaults.map(formatCodePoint).join(",")}`, { tag: extTag, defaults: defaults.map(formatCodePoint) });
  }
  // mls_proposals (KP-07): required on 30443 (R1), optional on 443.
  const propTag = singleTag(tags, "mls_proposals", r1Rules);
  if (propTag !== undefined) {
    const props = checkCodePointList(propTag, "mls_proposals", "KP_PROPOSALS");
    if (r1Rules && !props.includes(PROPOSAL_SELF_REMOVE)) fail("KP_PROPOSALS", "mls_proposals must include 0x000a (self_remove)", { tag: propTag });
  }
  // encoding (KP-08)
  const encTag = singleValue(tags, "encoding", r1Rules);
  let encoding: "base64" | "hex";
  if (r1Rules) {
    if (encTag !== "base64") fail("KP_BAD_ENCODING", `encoding must be "base64", got ${JSON.stringify(encTag)}`, { tag: ["encoding", encTag] });
    encoding = "base64";
  } else if (encTag === undefined || encTag === "hex") encoding = "hex";
  else if (encTag === "base64") encoding = "base64";
  else return fail("KP_BAD_ENCODING", `encoding must be "base64" or "hex", got ${JSON.stringify(encTag)}`, { tag: ["encoding", encTag] });
  // relays (KP-10)
  const relayTag = singleTag(tags, "relays", true)!;
  const relays = relayTag.slice(1);
  if (relays.length === 0) fail("KP_BAD_RELAYS", "relays tag lists no relay", { tag: relayTag });
  for (const r of relays) if (!isValidRelayUrl(r)) fail("KP_BAD_RELAYS", `relay ${JSON.stringify(r)} is not a valid ws/wss URL`, { tag: relayTag, relay: r });
  // i (KP-11): required on 30443.
  const iValue = singleValue(tags, "i", addressable);
  if (iValue !== undefined && !/^[0-9a-fA-F]{64}$/.test(iValue)) {
    fail("KP_BAD_I", `i must be the 64-hex KeyPackageRef, got ${JSON.stringify(iValue)}`, { tag: ["i", iValue] });
  }
  const client = singleValue(tags, "client", false);
  const isProtected = tagsNamed(tags, "-").length > 0;

  // Content (KP-08, KP-12)
  const { keyPackage, bytes } = decodeKeyPackageContent(event.content, encoding);
  if (keyPackage.cipherSuite !== MARMOT_CIPHERSUITE) {
    fail("KP_BAD_CIPHERSUITE", `KeyPackage ciphersuite is ${formatCodePoint(keyPackage.cipherSuite)}, not 0x0001`, { cipherSuite: keyPackage.cipherSuite });
  }
  // Credential (KP-14)
  let identity: string;
  try {
    identity = identityOfCredential(keyPackage.leafNode.credential);
  } catch (e) {
    return fail("KP_CREDENTIAL", (e as Error).message, { credentialType: keyPackage.leafNode.credential.credentialType });
  }
  if (identity !== event.pubkey) {
    fail("KP_IDENTITY_MISMATCH", `credential identity ${identity} is not the event pubkey ${event.pubkey}`, { identity, pubkey: event.pubkey });
  }
  // Leaf capabilities must support what the tags claim and what Marmot groups require.
  const caps = keyPackage.leafNode.capabilities;
  if (!caps.ciphersuites.includes(MARMOT_CIPHERSUITE)) fail("KP_CAPABILITIES", "leaf capabilities do not list ciphersuite 0x0001", {});
  if (!caps.extensions.includes(EXT_MARMOT_GROUP_DATA)) fail("KP_CAPABILITIES", "leaf capabilities do not list extension 0xf2ee", {});
  if (r1Rules && !caps.proposals.includes(PROPOSAL_SELF_REMOVE)) fail("KP_CAPABILITIES", "leaf capabilities do not list proposal 0x000a (self_remove)", {});
  // OpenMLS (MDK) requires a KeyPackage extension to be listed in the leaf capabilities.
  if (isLastResortKeyPackage(keyPackage) && !caps.extensions.includes(EXT_LAST_RESORT)) {
    fail("KP_CAPABILITIES", "the KeyPackage carries last_resort (0x000a) but its leaf capabilities do not list it", {});
  }
  if (bytesToHex(keyPackage.initKey) === bytesToHex(keyPackage.leafNode.hpkePublicKey)) {
    fail("KP_INIT_KEY_REUSE", "init_key equals the leaf encryption key (RFC 9420 §10.1)", {});
  }
  if (opts.now !== undefined && keyPackage.leafNode.leafNodeSource === 1) {
    const lt = keyPackage.leafNode.lifetime;
    const now = BigInt(opts.now);
    if (now < lt.notBefore || now > lt.notAfter) {
      fail("KP_LIFETIME", `KeyPackage lifetime [${lt.notBefore}, ${lt.notAfter}] does not contain ${opts.now}`, {
        notBefore: lt.notBefore.toString(),
        notAfter: lt.notAfter.toString(),
        now: opts.now,
      });
    }
  }
  if (opts.signatureVerifiedByMls !== true && !(await verifyKeyPackageSignature(keyPackage, bytes))) fail("KP_BAD_KP_SIGNATURE", "the KeyPackage signature does not verify", {});
  const ref = await computeKeyPackageRef(keyPackage);
  if (iValue !== undefined && iValue.toLowerCase() !== ref) fail("KP_REF_MISMATCH", `i ${iValue} is not the KeyPackageRef ${ref}`, { tag: ["i", iValue], ref });

  const out: ParsedKeyPackage = {
    kind: event.kind,
    event,
    keyPackage,
    ref,
    relays,
    lastResort: isLastResortKeyPackage(keyPackage),
    protected: isProtected,
    encoding,
  };
  if (d !== undefined) out.d = d;
  if (client !== undefined) out.client = client;
  return out;
}

// ---------------------------------------------------------------------------------------------
// Relay list (10051)

export function buildKeyPackageRelayListEvent(secretKey: Uint8Array, relays: string[], now: number, randomBytes?: (n: number) => Uint8Array): NostrEvent {
  if (relays.length === 0) fail("KP_RELAY_LIST", "a KeyPackage relay list needs at least one relay", {});
  for (const r of relays) if (!isValidRelayUrl(r)) fail("KP_RELAY_LIST", `relay ${JSON.stringify(r)} is not a valid ws/wss URL`, { relay: r });
  return signEvent({ kind: KIND_KEY_PACKAGE_RELAYS, created_at: now, tags: relays.map((r) => ["relay", r]), content: "" }, secretKey, randomBytes);
}

export interface ParsedRelayList {
  pubkey: string;
  createdAt: number;
  relays: string[];
}

/** MIP00-KR-01: ≥1 `["relay", url]` with a valid ws/wss URL, empty content. Other tags are ignored. */
export function parseKeyPackageRelayListEvent(event: NostrEvent): ParsedRelayList {
  checkEventShape(event);
  if (event.kind !== KIND_KEY_PACKAGE_RELAYS) fail("KP_WRONG_KIND", `kind ${event.kind} is not a KeyPackage relay list (10051)`, { kind: event.kind });
  checkEventIdAndSignature(event, fail);
  if (event.content !== "") fail("KP_RELAY_LIST", "a KeyPackage relay list has empty content", { content: event.content.slice(0, 64) });
  const relays: string[] = [];
  for (const t of tagsNamed(event.tags, "relay")) {
    if (t.length < 2 || !isValidRelayUrl(t[1])) fail("KP_RELAY_LIST", `relay tag ${JSON.stringify(t)} has no valid ws/wss URL`, { tag: t });
    if (!relays.includes(t[1]!)) relays.push(t[1]!);
  }
  if (relays.length === 0) fail("KP_RELAY_LIST", "no relay tag", {});
  return { pubkey: event.pubkey, createdAt: event.created_at, relays };
}

// ---------------------------------------------------------------------------------------------
// Deletion (kind 5)

/** NIP-09 deletion of one of our KeyPackages: `e`, `k`, and for 30443 `a` = `30443:<pubkey>:<d>`. */
export function buildKeyPackageDeletionEvent(
  secretKey: Uint8Array,
  kpEvent: NostrEvent,
  now: number,
  randomBytes?: (n: number) => Uint8Array,
): NostrEvent {
  if (kpEvent.kind !== KIND_KEY_PACKAGE && kpEvent.kind !== KIND_KEY_PACKAGE_LEGACY) {
    fail("KP_WRONG_KIND", `kind ${kpEvent.kind} is not a KeyPackage`, { kind: kpEvent.kind });
  }
  const pubkey = publicKeyHex(secretKey);
  if (kpEvent.pubkey !== pubkey) fail("KP_NOT_OWNER", "only the author may delete a KeyPackage", { author: kpEvent.pubkey, pubkey });
  const tags: string[][] = [
    ["e", kpEvent.id],
    ["k", String(kpEvent.kind)],
  ];
  if (kpEvent.kind === KIND_KEY_PACKAGE) {
    const d = kpEvent.tags.find((t) => t[0] === "d")?.[1];
    if (d === undefined) fail("KP_MISSING_TAG", "the 30443 to delete has no d tag", { tag: "d" });
    tags.push(["a", `${KIND_KEY_PACKAGE}:${pubkey}:${d}`]);
  }
  return signEvent({ kind: KIND_DELETION, created_at: now, tags, content: "" }, secretKey, randomBytes);
}

// ---------------------------------------------------------------------------------------------
// Inviter's choice (MIP00-KP-20, KP-22)

interface Candidate {
  event: NostrEvent;
  lastResort: boolean;
  /** `pubkey:d` for 30443, undefined for 443. */
  slot?: string;
}

/** Structural decode only (kind, encoding, content); the NIP-01 check is done lazily by the caller. */
function quickCandidate(event: NostrEvent): Candidate | undefined {
  try {
    checkEventShape(event);
    if (event.kind !== KIND_KEY_PACKAGE && event.kind !== KIND_KEY_PACKAGE_LEGACY) return undefined;
    const enc = event.tags.find((t) => t[0] === "encoding")?.[1];
    const encoding = enc === "base64" ? "base64" : event.kind === KIND_KEY_PACKAGE_LEGACY && (enc === undefined || enc === "hex") ? "hex" : undefined;
    if (encoding === undefined) return undefined;
    let slot: string | undefined;
    if (event.kind === KIND_KEY_PACKAGE) {
      const d = event.tags.find((t) => t[0] === "d")?.[1];
      if (d === undefined) return undefined;
      slot = `${event.pubkey}:${d}`;
    }
    const { keyPackage } = decodeKeyPackageContent(event.content, encoding);
    const c: Candidate = { event, lastResort: isLastResortKeyPackage(keyPackage) };
    if (slot !== undefined) c.slot = slot;
    return c;
  } catch {
    return undefined;
  }
}

const newestFirst = (a: NostrEvent, b: NostrEvent): number =>
  a.created_at !== b.created_at ? b.created_at - a.created_at : a.id < b.id ? -1 : a.id > b.id ? 1 : 0;

/**
 * Choose the KeyPackage to invite with. Events that are not KeyPackages, fail NIP-01 or cannot be
 * decoded are skipped (call `parseKeyPackageEvent` on the result for the full check). For each
 * 30443 slot (author, d) only the newest valid event counts. Preference: kind 30443 over 443, then
 * non-last_resort, then the newest `created_at`, then the lowest event id. Signatures are verified
 * lazily, in preference order, so typically only the winner is verified.
 */
export function selectKeyPackage(events: NostrEvent[]): NostrEvent | undefined {
  const candidates = events.map(quickCandidate).filter((c): c is Candidate => c !== undefined);
  const validity = new Map<NostrEvent, boolean>();
  const isValid = (e: NostrEvent): boolean => {
    let v = validity.get(e);
    if (v === undefined) {
      try {
        checkEventIdAndSignature(e, fail);
        v = true;
      } catch {
        v = false;
      }
      validity.set(e, v);
    }
    return v;
  };
  const slots = new Map<string, Candidate[]>();
  for (const c of candidates) {
    if (c.slot === undefined) continue;
    const list = slots.get(c.slot) ?? [];
    list.push(c);
    slots.set(c.slot, list);
  }
  for (const list of slots.values()) list.sort((a, b) => newestFirst(a.event, b.event));
  candidates.sort((a, b) => {
    const ka = a.event.kind === KIND_KEY_PACKAGE ? 0 : 1;
    const kb = b.event.kind === KIND_KEY_PACKAGE ? 0 : 1;
    if (ka !== kb) return ka - kb;
    if (a.lastResort !== b.lastResort) return a.lastResort ? 1 : -1;
    return newestFirst(a.event, b.event);
  });
  for (const c of candidates) {
    if (!isValid(c.event)) continue;
    if (c.slot !== undefined) {
      const newestValid = slots.get(c.slot)!.find((x) => isValid(x.event));
      if (newestValid !== c) continue;
    }
    return c.event;
  }
  return undefined;
}
