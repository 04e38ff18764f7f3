import { describe, it, expect } from "vitest";
import { chacha20poly1305 } from "@noble/ciphers/chacha.js";
import { expand, extract } from "@noble/hashes/hkdf.js";
import { sha256 } from "@noble/hashes/sha2.js";
import { bytesToHex, utf8ToBytes } from "@noble/hashes/utils.js";
import { schnorr } from "@noble/curves/secp256k1.js";
import { generateSecretKey } from "nostr-tools/pure";
import { createRng } from "../../src/sim/random.ts";
import {
  GroupImageError,
  candidateUploadIdentities,
  checkGroupImageBlob,
  checkImageUploadPubkey,
  decryptGroupImage,
  deriveFromSeed,
  imageEncryptionKeyV2,
  planGroupImageChange,
  prepareGroupImage,
  uploadIdentity,
  type GroupImageFields,
} from "../../src/engine/mip01-group-image.ts";
import { blossomServerPerTest } from "./helpers.ts";
import { BlossomClient, cleanupGroupImage } from "../../src/blossom/client.ts";

const range = (a: number, b: number) => Uint8Array.from({ length: b - a }, (_, i) => a + i);
const ZERO_SALT = new Uint8Array(0);

function codeOf(f: () => unknown): string | undefined {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(GroupImageError);
    return (e as GroupImageError).code;
  }
  return undefined;
}

/** randomBytes that hands out the given buffers in order. */
function feed(...bufs: Uint8Array[]) {
  let i = 0;
  return (n: number) => {
    const b = bufs[i++]!;
    expect(b.length).toBe(n);
    return b;
  };
}

describe("group image v2 derivations (known answers)", () => {
  it("derives the encryption key and upload key step by step (MDK: Extract with empty salt, then Expand)", () => {
    const seed = createRng("img-seed").bytes(32);
    const up = createRng("img-up").bytes(32);
    const mdkKey = expand(sha256, extract(sha256, seed, ZERO_SALT), utf8ToBytes("mip01-image-encryption-v2"), 32);
    const specKey = expand(sha256, seed, utf8ToBytes("mip01-image-encryption-v2"), 32);
    expect(bytesToHex(imageEncryptionKeyV2(seed))).toBe(bytesToHex(mdkKey));
    expect(bytesToHex(imageEncryptionKeyV2(seed, "expand"))).toBe(bytesToHex(specKey));
    const upSecret = expand(sha256, extract(sha256, up, ZERO_SALT), utf8ToBytes("mip01-blossom-upload-v2"), 32);
    const id = uploadIdentity({ imageHash: null, imageKey: seed, imageNonce: null, imageUploadKey: up }, 2);
    expect(bytesToHex(id.secretKey)).toBe(bytesToHex(upSecret));
    expect(id.pubkey).toBe(bytesToHex(schnorr.getPublicKey(upSecret)));
  });

  it("matches a pinned vector (computed independently with Python cryptography 48)", () => {
    const seed = range(0x40, 0x60);
    const up = range(0x60, 0x80);
    const nonce = range(0x80, 0x8c);
    const p = prepareGroupImage({ image: utf8ToBytes("group avatar bytes"), randomBytes: feed(seed, nonce, up) });
    expect(bytesToHex(imageEncryptionKeyV2(seed))).toBe("9d59ad9d4b2a3ac04646e5ec0b895016ea161c09ac6003e992de541ee6c91d88");
    expect(bytesToHex(imageEncryptionKeyV2(seed, "expand"))).toBe("db51b996d508761cf339d854816af48416cb197df2144483d93568b8a2023875");
    expect(bytesToHex(p.blob)).toBe("28ccb875afe6da1bdf8106a576fd4b843298c8dc403e1f733363d7040318f3d4a9c3");
    expect(p.sha256).toBe("258d226d5dbc9733178c8d896d3a91bd58cae46c45ccf76fab141b8e70eb0f26");
    expect(bytesToHex(p.fields.imageHash)).toBe(p.sha256);
    expect(bytesToHex(p.upload.secretKey)).toBe("895f522b22a89ab3759bc3495c20d442e906f04da2b602dbe899b1cce90f8242");
    expect(p.upload.pubkey).toBe("e237cb1feb6d1c76b1145018fce405ec5006c1e3988a2f6a6da33e758957070a");
    const v1 = uploadIdentity({ imageHash: null, imageKey: seed, imageNonce: null, imageUploadKey: null }, 1);
    expect(bytesToHex(v1.secretKey)).toBe("f77aa45ec794ca661b8618919b5c0ae0cadf36974e5e5918da01a63ca2cb25f8");
    expect(v1.pubkey).toBe("e43ff9cb1c0ec54a7726bcafa07fa1b221eea9813df2cf8d900607e1f239f075");
  });

  it("rejects a seed of the wrong length", () => {
    expect(codeOf(() => deriveFromSeed(new Uint8Array(31), "x"))).toBe("GROUP_IMAGE_BAD_FIELDS");
  });
});

describe("group image encrypt / decrypt", () => {
  const image = createRng("avatar").bytes(5000);

  it("round-trips a v2 image (MDK HKDF) and keeps the upload seed independent", () => {
    const p = prepareGroupImage({ image });
    expect(p.fields.imageUploadKey).not.toBeNull();
    expect(bytesToHex(p.fields.imageUploadKey!)).not.toBe(bytesToHex(p.fields.imageKey));
    const out = decryptGroupImage(p.fields, p.blob);
    expect(out.scheme).toBe("v2-extract-expand");
    expect(bytesToHex(out.image)).toBe(bytesToHex(image));
  });

  it("reads an image written with the spec text's Expand-only HKDF (fallback)", () => {
    const seed = createRng("s").bytes(32);
    const nonce = createRng("n").bytes(12);
    const blob = chacha20poly1305(expand(sha256, seed, utf8ToBytes("mip01-image-encryption-v2"), 32), nonce).encrypt(image);
    const out = decryptGroupImage({ imageHash: sha256(blob), imageKey: seed, imageNonce: nonce, imageUploadKey: createRng("u").bytes(32) }, blob);
    expect(out.scheme).toBe("v2-expand");
    expect(bytesToHex(out.image)).toBe(bytesToHex(image));
  });

  it("reads a v1 image (direct key), also when labelled version 2 as marmot-ts writes it", () => {
    const p = prepareGroupImage({ image, version: 1 });
    expect(p.fields.imageUploadKey).toBeNull();
    const direct = chacha20poly1305(p.fields.imageKey, p.fields.imageNonce).decrypt(p.blob);
    expect(bytesToHex(direct)).toBe(bytesToHex(image));
    expect(decryptGroupImage(p.fields, p.blob).scheme).toBe("v1-direct");
    const v1 = uploadIdentity(p.fields, 1);
    expect(p.upload.pubkey).toBe(v1.pubkey);
  });

  it("rejects a blob whose hash is not image_hash", () => {
    const p = prepareGroupImage({ image });
    const other = prepareGroupImage({ image });
    expect(codeOf(() => decryptGroupImage(p.fields, other.blob))).toBe("GROUP_IMAGE_HASH_MISMATCH");
  });

  it("rejects a blob that matches image_hash but decrypts under no scheme", () => {
    const p = prepareGroupImage({ image });
    const wrongKey: GroupImageFields = { ...p.fields, imageKey: createRng("wrong").bytes(32) };
    expect(codeOf(() => decryptGroupImage(wrongKey, p.blob))).toBe("GROUP_IMAGE_DECRYPT_FAILED");
  });

  it("rejects malformed or absent fields", () => {
    const p = prepareGroupImage({ image });
    expect(codeOf(() => decryptGroupImage({ imageHash: null, imageKey: null, imageNonce: null, imageUploadKey: null }, p.blob))).toBe("GROUP_IMAGE_NO_IMAGE");
    expect(codeOf(() => decryptGroupImage({ ...p.fields, imageNonce: new Uint8Array(11) }, p.blob))).toBe("GROUP_IMAGE_BAD_FIELDS");
    expect(codeOf(() => decryptGroupImage({ ...p.fields, imageKey: new Uint8Array(16) }, p.blob))).toBe("GROUP_IMAGE_BAD_FIELDS");
  });

  it("lists the candidate upload identities, MDK's first", () => {
    const p = prepareGroupImage({ image });
    const ids = candidateUploadIdentities(p.fields, 2);
    expect(ids[0]!.pubkey).toBe(p.upload.pubkey);
    expect(ids.map((i) => `${i.version}/${i.kdf}`)).toEqual(["2/extract-expand", "2/expand", "1/extract-expand", "1/expand"]);
    expect(new Set(ids.map((i) => i.pubkey)).size).toBe(4);
  });
});

describe("MIP01-IMG checks", () => {
  const image = createRng("check").bytes(400);

  it("MIP01-IMG-01 passes a v2 image and fails a swapped blob and a v2 group carrying v1 crypto", () => {
    const p = prepareGroupImage({ image });
    expect(checkGroupImageBlob(p.fields, 2, p.blob)).toEqual({ rule: "MIP01-IMG-01", ok: true, detail: "v2-extract-expand" });
    expect(checkGroupImageBlob(p.fields, 2, prepareGroupImage({ image }).blob)).toMatchObject({ ok: false, detail: expect.stringContaining("GROUP_IMAGE_HASH_MISMATCH") });
    // marmot-ts 0.5.1: version-2 group data (with an upload key) but v1 crypto.
    const v1 = prepareGroupImage({ image, version: 1 });
    const quirk: GroupImageFields = { ...v1.fields, imageUploadKey: createRng("q").bytes(32) };
    expect(checkGroupImageBlob(quirk, 2, v1.blob)).toMatchObject({ ok: false });
    expect(checkGroupImageBlob(v1.fields, 1, v1.blob)).toEqual({ rule: "MIP01-IMG-01", ok: true, detail: "v1-direct" });
  });

  it("MIP01-IMG-02 accepts the derived upload identity and rejects others", () => {
    const p = prepareGroupImage({ image });
    expect(checkImageUploadPubkey(p.fields, 2, p.upload.pubkey)).toEqual({ rule: "MIP01-IMG-02", ok: true, detail: "v2/extract-expand" });
    const spec = candidateUploadIdentities(p.fields, 2).find((i) => i.version === 2 && i.kdf === "expand")!;
    expect(checkImageUploadPubkey(p.fields, 2, spec.pubkey)).toMatchObject({ ok: true, detail: "v2/expand" });
    const v1id = uploadIdentity(p.fields, 1);
    expect(checkImageUploadPubkey(p.fields, 2, v1id.pubkey)).toMatchObject({ ok: false });
    expect(checkImageUploadPubkey(p.fields, 2, bytesToHex(schnorr.getPublicKey(generateSecretKey())))).toMatchObject({ ok: false });
  });
});

describe("group image set, change and cleanup on a Blossom server", () => {
  const server = blossomServerPerTest();

  it("uploads with the derived key, then deletes the old blob with the old upload key on change", async () => {
    const first = planGroupImageChange(null, 2, createRng("a").bytes(2000));
    expect(first.cleanup).toBeNull();
    const p1 = first.prepared!;
    const c1 = new BlossomClient(server().url, { secretKey: p1.upload.secretKey });
    const d1 = await c1.upload(p1.blob);
    expect(d1.sha256).toBe(p1.sha256);
    expect(server().blobs().find((b) => b.sha256 === p1.sha256)!.owners).toHaveProperty(p1.upload.pubkey);
    // The server's auth capture shows the upload signed by the derived identity (MIP01-IMG-02 evidence).
    const uploads = server().authCapture().filter((r) => r.source === "blossom:upload" && r.event.tags.some((t) => t[0] === "x" && t[1] === p1.sha256));
    expect(uploads.length).toBe(1);
    expect(uploads.every((r) => r.event.pubkey === p1.upload.pubkey && r.event.kind === 24242)).toBe(true);

    // A member reads it back from the group data fields.
    const fetched = await new BlossomClient(server().url).download(p1.sha256);
    expect(bytesToHex(decryptGroupImage(p1.fields, fetched).image)).toBe(bytesToHex(createRng("a").bytes(2000)));

    const change = planGroupImageChange(p1.fields, 2, createRng("b").bytes(1500));
    const p2 = change.prepared!;
    await new BlossomClient(server().url, { secretKey: p2.upload.secretKey }).upload(p2.blob);
    expect(change.cleanup!.sha256).toBe(p1.sha256);

    // A stranger cannot delete the old image.
    const stranger = new BlossomClient(server().url, { secretKey: generateSecretKey() });
    await expect(stranger.delete(p1.sha256)).rejects.toMatchObject({ status: 403 });

    // Cleanup with the identities in order: the first one (MDK) owns the blob.
    const owner = change.cleanup!.identities[0]!;
    expect(await new BlossomClient(server().url).delete(p1.sha256, { secretKey: owner.secretKey })).toBe(true);
    expect(await stranger.has(p1.sha256)).toBe(false);
    expect(await stranger.has(p2.sha256)).toBe(true);

    // Clearing the image plans the cleanup of the current one and no new blob.
    const clear = planGroupImageChange(p2.fields, 2, null);
    expect(clear.prepared).toBeNull();
    expect(clear.cleanup!.sha256).toBe(p2.sha256);
  });

  it("cleanupGroupImage tries the candidate identities in order (v1 image uploaded with the spec-text key)", async () => {
    // An image written by a client that derived the v1 upload key with Expand-only.
    const p = prepareGroupImage({ image: createRng("v1img").bytes(300), version: 1 });
    const specId = candidateUploadIdentities(p.fields, 1).find((i) => i.kdf === "expand")!;
    await new BlossomClient(server().url, { secretKey: specId.secretKey }).upload(p.blob);
    const change = planGroupImageChange(p.fields, 1, createRng("v2img").bytes(300));
    expect(change.cleanup!.identities.map((i) => `${i.version}/${i.kdf}`)).toEqual(["1/extract-expand", "1/expand"]);
    const res = await cleanupGroupImage(server().url, change.cleanup!);
    expect(res.deletedBy).toBe(specId.pubkey);
    expect(res.refusals).toEqual([{ pubkey: change.cleanup!.identities[0]!.pubkey, status: 403 }]);
    expect(server().blobs().some((b) => b.sha256 === p.sha256)).toBe(false);
    // Again: the blob is gone.
    expect((await cleanupGroupImage(server().url, change.cleanup!)).deletedBy).toBe("absent");
  });
});
