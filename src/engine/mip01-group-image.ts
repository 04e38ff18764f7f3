/**
 * MIP-01 group image (group data fields `image_hash`, `image_key`, `image_nonce`, `image_upload_key`).
 *
 * v2 (R1, group data version >= 2):
 *   image_key        = random 32-byte seed
 *   image_upload_key = independent random 32-byte seed
 *   encryption key   = HKDF(image_key, info "mip01-image-encryption-v2", 32)
 *   upload secret    = HKDF(image_upload_key, info "mip01-blossom-upload-v2", 32) → secp256k1 key for Blossom auth
 *   blob             = ChaCha20-Poly1305(encryption key, image_nonce, no AAD, image); image_hash = SHA256(blob)
 * v1 (R0): image_key is the AEAD key itself; upload secret = HKDF(image_key, "mip01-blossom-upload-v1").
 *
 * "HKDF" here is what MDK 0.8 does: `Hkdf::<Sha256>::new(None, seed)` = Extract with an empty
 * (all-zero) salt, then Expand. The spec text says HKDF-Expand with PRK = seed. We write with MDK's
 * variant and, on read, also try the spec's Expand-only variant and the v1 direct key (see
 * docs/protocol-decisions.md). Pure functions, no I/O: uploading and deleting are the caller's.
 */
import { randomBytes as nodeRandomBytes } from "node:crypto";
import { chacha20poly1305 } from "@noble/ciphers/chacha.js";
import { expand, extract } from "@noble/hashes/hkdf.js";
import { sha256 } from "@noble/hashes/sha2.js";
import { bytesToHex, utf8ToBytes } from "@noble/hashes/utils.js";
import { schnorr } from "@noble/curves/secp256k1.js";
import { HarnessError } from "../errors.ts";

export const IMAGE_ENCRYPTION_LABEL_V2 = "mip01-image-encryption-v2";
export const BLOSSOM_UPLOAD_LABEL_V2 = "mip01-blossom-upload-v2";
export const BLOSSOM_UPLOAD_LABEL_V1 = "mip01-blossom-upload-v1";

export type GroupImageErrorCode =
  | "GROUP_IMAGE_BAD_FIELDS"
  | "GROUP_IMAGE_HASH_MISMATCH"
  | "GROUP_IMAGE_DECRYPT_FAILED"
  | "GROUP_IMAGE_BAD_UPLOAD_KEY"
  | "GROUP_IMAGE_NO_IMAGE";

export class GroupImageError extends HarnessError {
  declare readonly code: GroupImageErrorCode;
  constructor(code: GroupImageErrorCode, message: string, details: Record<string, unknown> = {}, options?: { cause?: unknown }) {
    super(code, message, details, options);
  }
}

/** The image part of MarmotGroupData (same names as `MarmotGroupData` in engine/api.ts). */
export interface GroupImageFields {
  imageHash: Uint8Array | null;
  imageKey: Uint8Array | null;
  imageNonce: Uint8Array | null;
  imageUploadKey: Uint8Array | null;
}

/** Which HKDF the seed goes through: MDK's Extract+Expand, or the spec text's Expand-only. */
export type SeedKdf = "extract-expand" | "expand";
/** How an image was decrypted. */
export type GroupImageScheme = "v2-extract-expand" | "v2-expand" | "v1-direct";

/** HKDF-SHA256 of a 32-byte seed with a label; `extract-expand` (MDK, default) or `expand` (spec text). */
export function deriveFromSeed(seed: Uint8Array, label: string, kdf: SeedKdf = "extract-expand"): Uint8Array {
  if (!(seed instanceof Uint8Array) || seed.length !== 32) throw new GroupImageError("GROUP_IMAGE_BAD_FIELDS", `seed must be 32 bytes, got ${seed?.length}`);
  const prk = kdf === "expand" ? seed : extract(sha256, seed, new Uint8Array(0));
  return expand(sha256, prk, utf8ToBytes(label), 32);
}

export function imageEncryptionKeyV2(imageSeed: Uint8Array, kdf: SeedKdf = "extract-expand"): Uint8Array {
  return deriveFromSeed(imageSeed, IMAGE_ENCRYPTION_LABEL_V2, kdf);
}

export interface UploadIdentity {
  /** secp256k1 secret key for kind 24242 Blossom auth. */
  secretKey: Uint8Array;
  /** x-only pubkey, lowercase hex. */
  pubkey: string;
  kdf: SeedKdf;
  version: 1 | 2;
}

/**
 * The Blossom upload identity of an image. v2: from `image_upload_key` with the `-v2` label.
 * v1: from `image_key` with the `-v1` label.
 */
export function uploadIdentity(fields: GroupImageFields, version: 1 | 2, kdf: SeedKdf = "extract-expand"): UploadIdentity {
  const seed = version === 2 ? fields.imageUploadKey : fields.imageKey;
  if (!seed) throw new GroupImageError("GROUP_IMAGE_BAD_FIELDS", version === 2 ? "image_upload_key is empty" : "image_key is empty");
  const secretKey = deriveFromSeed(seed, version === 2 ? BLOSSOM_UPLOAD_LABEL_V2 : BLOSSOM_UPLOAD_LABEL_V1, kdf);
  let pubkey: string;
  try {
    pubkey = bytesToHex(schnorr.getPublicKey(secretKey));
  } catch (e) {
    throw new GroupImageError("GROUP_IMAGE_BAD_UPLOAD_KEY", "derived upload secret is not a valid secp256k1 key", {}, { cause: e });
  }
  return { secretKey, pubkey, kdf, version };
}

/** Every upload identity a reader may meet for these fields, most likely first (MDK, then spec text). */
export function candidateUploadIdentities(fields: GroupImageFields, groupDataVersion: number): UploadIdentity[] {
  const out: UploadIdentity[] = [];
  const versions: (1 | 2)[] = groupDataVersion >= 2 && fields.imageUploadKey ? [2, 1] : [1];
  for (const v of versions) for (const kdf of ["extract-expand", "expand"] as const) out.push(uploadIdentity(fields, v, kdf));
  return out;
}

export interface PrepareGroupImageInput {
  image: Uint8Array;
  /** Default 2 (R1). 1 produces an R0-style image (direct key, no upload seed). */
  version?: 1 | 2;
  randomBytes?: (n: number) => Uint8Array;
}

export interface PreparedGroupImage {
  /** Group data fields to set (`updateGroupData` patch). */
  fields: { imageHash: Uint8Array; imageKey: Uint8Array; imageNonce: Uint8Array; imageUploadKey: Uint8Array | null };
  /** The encrypted blob to upload. */
  blob: Uint8Array;
  /** Blossom address (hex SHA-256 of `blob`). */
  sha256: string;
  /** The key to sign the upload with. */
  upload: UploadIdentity;
}

/** Encrypt a new group image; returns the fields to set, the blob to upload and the upload key. */
export function prepareGroupImage(input: PrepareGroupImageInput): PreparedGroupImage {
  const version = input.version ?? 2;
  const rnd = input.randomBytes ?? ((n: number) => new Uint8Array(nodeRandomBytes(n)));
  const imageKey = rnd(32);
  const imageNonce = rnd(12);
  const imageUploadKey = version === 2 ? rnd(32) : null;
  if (imageKey.length !== 32 || imageNonce.length !== 12 || (imageUploadKey && imageUploadKey.length !== 32)) {
    throw new GroupImageError("GROUP_IMAGE_BAD_FIELDS", "randomBytes returned the wrong length");
  }
  const aeadKey = version === 2 ? imageEncryptionKeyV2(imageKey) : imageKey;
  const blob = chacha20poly1305(aeadKey, imageNonce).encrypt(input.image);
  const imageHash = sha256(blob);
  const fields = { imageHash, imageKey, imageNonce, imageUploadKey };
  return { fields, blob, sha256: bytesToHex(imageHash), upload: uploadIdentity(fields, version) };
}

function checkFields(f: GroupImageFields): asserts f is { imageHash: Uint8Array; imageKey: Uint8Array; imageNonce: Uint8Array; imageUploadKey: Uint8Array | null } {
  if (!f.imageHash && !f.imageKey && !f.imageNonce) throw new GroupImageError("GROUP_IMAGE_NO_IMAGE", "the group has no image");
  if (!f.imageHash || f.imageHash.length !== 32) throw new GroupImageError("GROUP_IMAGE_BAD_FIELDS", "image_hash must be 32 bytes");
  if (!f.imageKey || f.imageKey.length !== 32) throw new GroupImageError("GROUP_IMAGE_BAD_FIELDS", "image_key must be 32 bytes");
  if (!f.imageNonce || f.imageNonce.length !== 12) throw new GroupImageError("GROUP_IMAGE_BAD_FIELDS", "image_nonce must be 12 bytes");
  if (f.imageUploadKey && f.imageUploadKey.length !== 32) throw new GroupImageError("GROUP_IMAGE_BAD_FIELDS", "image_upload_key must be empty or 32 bytes");
}

/**
 * Decrypt a group image from its group-data fields and the fetched blob. Checks SHA256(blob) ==
 * image_hash first. Then tries, in order: v2 with MDK's Extract+Expand, v2 with Expand-only (spec
 * text), v1 direct key (marmot-ts writes version 2 with v1 crypto, so v1 is tried for any version).
 */
export function decryptGroupImage(fields: GroupImageFields, blob: Uint8Array): { image: Uint8Array; scheme: GroupImageScheme } {
  checkFields(fields);
  const actual = sha256(blob);
  if (bytesToHex(actual) !== bytesToHex(fields.imageHash)) {
    throw new GroupImageError("GROUP_IMAGE_HASH_MISMATCH", "SHA-256 of the blob is not image_hash", {
      expected: bytesToHex(fields.imageHash),
      actual: bytesToHex(actual),
    });
  }
  const attempts: [GroupImageScheme, () => Uint8Array][] = [
    ["v2-extract-expand", () => imageEncryptionKeyV2(fields.imageKey, "extract-expand")],
    ["v2-expand", () => imageEncryptionKeyV2(fields.imageKey, "expand")],
    ["v1-direct", () => fields.imageKey],
  ];
  for (const [scheme, key] of attempts) {
    try {
      return { image: chacha20poly1305(key(), fields.imageNonce).decrypt(blob), scheme };
    } catch {
      // next scheme
    }
  }
  throw new GroupImageError("GROUP_IMAGE_DECRYPT_FAILED", "the image did not decrypt under v2 (either HKDF) nor v1", { tried: attempts.map((a) => a[0]) });
}

export interface GroupImageChange {
  prepared: PreparedGroupImage | null;
  /** The old blob to delete after the change is committed, with the identities that may own it (try in order). */
  cleanup: { sha256: string; identities: UploadIdentity[] } | null;
}

/**
 * Plan an image change: a new image (or `null` to clear it) and the cleanup of the old one (delete
 * `cleanup.sha256` signed by the old upload key). `oldVersion` is the group data version the old
 * fields were written under.
 */
export function planGroupImageChange(
  oldFields: GroupImageFields | null,
  oldVersion: number,
  newImage: Uint8Array | null,
  opts: { version?: 1 | 2; randomBytes?: (n: number) => Uint8Array } = {},
): GroupImageChange {
  const prepared = newImage ? prepareGroupImage({ image: newImage, ...opts }) : null;
  let cleanup: GroupImageChange["cleanup"] = null;
  if (oldFields && oldFields.imageHash && oldFields.imageKey) {
    cleanup = { sha256: bytesToHex(oldFields.imageHash), identities: candidateUploadIdentities(oldFields, oldVersion) };
    if (prepared && cleanup.sha256 === prepared.sha256) cleanup = null;
  }
  return { prepared, cleanup };
}

/** Group-data patch that removes the image. */
export function clearedImageFields(): GroupImageFields {
  return { imageHash: null, imageKey: null, imageNonce: null, imageUploadKey: null };
}

export interface ImageRuleResult {
  rule: "MIP01-IMG-01" | "MIP01-IMG-02";
  ok: boolean;
  /** How it passed (scheme or identity), or why it failed. */
  detail: string;
}

/**
 * MIP01-IMG-01 for a fetched blob: SHA256(blob) == image_hash and the blob decrypts. A v2 image (group
 * data version >= 2 with an upload seed) must decrypt under a v2 key; the v1 direct key there is
 * reported as a failure, since it is the marmot-ts 0.5.1 quirk the rule exists to catch.
 */
export function checkGroupImageBlob(fields: GroupImageFields, groupDataVersion: number, blob: Uint8Array): ImageRuleResult {
  try {
    const { scheme } = decryptGroupImage(fields, blob);
    const v2 = groupDataVersion >= 2 && fields.imageUploadKey !== null;
    if (v2 && scheme === "v1-direct") return { rule: "MIP01-IMG-01", ok: false, detail: "version-2 group data but the image only decrypts with the v1 direct key" };
    return { rule: "MIP01-IMG-01", ok: true, detail: scheme };
  } catch (e) {
    return { rule: "MIP01-IMG-01", ok: false, detail: e instanceof GroupImageError ? `${e.code}: ${e.message}` : String(e) };
  }
}

/**
 * MIP01-IMG-02 for a Blossom upload auth event: its pubkey must be the image's upload identity
 * (v2: from image_upload_key with "-v2"; v1: from image_key with "-v1"). Either HKDF variant is
 * accepted and named in `detail`.
 */
export function checkImageUploadPubkey(fields: GroupImageFields, groupDataVersion: number, pubkey: string): ImageRuleResult {
  const ids = candidateUploadIdentities(fields, groupDataVersion);
  const expectedVersion = groupDataVersion >= 2 && fields.imageUploadKey ? 2 : 1;
  const hit = ids.find((i) => i.pubkey === pubkey.toLowerCase());
  if (!hit) return { rule: "MIP01-IMG-02", ok: false, detail: `upload pubkey ${pubkey} is none of the image's upload identities` };
  if (hit.version !== expectedVersion) return { rule: "MIP01-IMG-02", ok: false, detail: `upload signed with the v${hit.version} identity of a v${expectedVersion} image` };
  return { rule: "MIP01-IMG-02", ok: true, detail: `v${hit.version}/${hit.kdf}` };
}
