/**
 * What an in-process agent does with media (MIP-04 attachments, MIP-01 group images) and records
 * in the history, kept out of the agent so that the agent only delegates:
 *
 * - upload: encrypt seeded content under the current epoch's media exporter and upload it; the
 *   adversarial `wrongBlob` option makes the imeta name a different valid blob (the previous one).
 * - receive: fetch each attachment, decrypt it with the exporter of the message's epoch and check
 *   both hashes. During catch-up the fetches wait until catch-up ends, as a client shows media
 *   after syncing: they then use a retained (past-epoch) exporter.
 * - group image: set, change or clear it (upload signed by the image's upload identity, cleanup of
 *   the old blob signed by the old identity) and fetch it when the group data names a new one.
 * - probe: with every media exporter this agent ever held for a group, try to open attachments
 *   (secrecy probe for removed members).
 *
 * History entries (the compliance keyring reads them; shapes also in README "Media"):
 *   media-upload ok  { groupId, nostrGroupId, epoch, filename, bytes, sha256Plain, blob, url, wrongBlob? }
 *   media        ok  { eventId, groupId, nostrGroupId, epoch, fetchedAtEpoch, url, filename, bytes,
 *                      sha256Plain, blobSha256, blobB64? }     (blobB64 once per blob, ≤ 256 KiB)
 *   media        fail{ eventId, groupId, nostrGroupId, epoch, url?, code, rule?, message, blobSha256? }
 *   group-image  ok  { groupId, nostrGroupId, epoch, imageHash (null once cleared), groupData (hex
 *                      0xF2EE), scheme?, bytes, blobB64?, uploadPubkey?, role: "setter" | "member", cleared? }
 *   group-image  fail{ groupId, nostrGroupId, epoch, imageHash, code, message }
 *   group-image-cleanup ok|fail { groupId, sha256, deletedBy, refusals }
 *   media-probe  ok  { groupId, eventId, url, outcome: "decrypted" | "failed", code?, exportersTried }
 */
import { bytesToHex } from "@noble/hashes/utils.js";
import type { MarmotEngine, ProcessOutcome } from "../engine/api.ts";
import { encodeGroupData } from "../engine/mip01-group-data.ts";
import { decryptGroupImage, planGroupImageChange, clearedImageFields, type GroupImageChange } from "../engine/mip01-group-image.ts";
import { MEDIA_ERROR_RULES, blobAddressFromUrl, decryptMedia, encryptMedia, parseImetaTag, sha256Bytes, type MediaErrorCode } from "../engine/mip04-media.ts";
import { HarnessError } from "../errors.ts";
import { BlossomClient, cleanupGroupImage } from "./client.ts";

/** Largest blob copied into the history (base64) for the compliance checker; larger ones keep only their hashes. */
export const MAX_RECORDED_BLOB_BYTES = 256 * 1024;

export class AgentMediaError extends HarnessError {}

export interface AgentMediaHost {
  readonly name: string;
  engine(): MarmotEngine;
  secretKey: Uint8Array;
  randomBytes(n: number): Uint8Array;
  blossomUrl: string | undefined;
  rec(type: "invoke" | "ok" | "fail" | "info", op: string, data: Record<string, unknown>): void;
  /** Shared by all agents of a run: blobs already copied into the history. */
  recordedKeys: Set<string>;
}

export interface MediaSpec {
  filename: string;
  mimeType: string;
  bytes: number;
  /** Adversarial: the imeta names the blob this agent uploaded before (a valid blob, the wrong one). */
  wrongBlob?: boolean;
}

export interface MediaProbeOutcome {
  eventId: string;
  url: string;
  /** "decrypted" means the probed agent could read the file: a secrecy failure. */
  outcome: "decrypted" | "failed";
  code?: string;
  exportersTried: number;
}

export interface GroupImagePlan {
  groupId: string;
  change: GroupImageChange;
  version: 1 | 2;
}

function codeOf(e: unknown): string {
  return e instanceof HarnessError ? e.code : "MEDIA_ERROR";
}

function b64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("base64");
}

export class AgentMedia {
  /** Every media exporter seen, by group and epoch (kept after the agent leaves or is removed). */
  private readonly exporters = new Map<string, Map<number, Uint8Array>>();
  private readonly lastUpload = new Map<string, { sha256: string; url: string }>();
  private readonly imageSeen = new Map<string, string>();
  private deferred: (() => Promise<void>)[] = [];
  /** Groups whose image changed during catch-up: only the image current afterwards is fetched. */
  private readonly imagesDeferred = new Set<string>();

  constructor(private readonly host: AgentMediaHost) {}

  get enabled(): boolean {
    return this.host.blossomUrl !== undefined;
  }

  private url(): string {
    const u = this.host.blossomUrl;
    if (!u) throw new AgentMediaError("NO_BLOSSOM", `${this.host.name} has no Blossom server for media`);
    return u;
  }

  /** Remember the media exporters of an inspection (called on every epoch change). */
  remember(groupId: string, epochKeys: readonly { epoch: bigint; mediaExporter: Uint8Array }[]): void {
    let m = this.exporters.get(groupId);
    if (!m) this.exporters.set(groupId, (m = new Map()));
    for (const k of epochKeys) if (!m.has(Number(k.epoch))) m.set(Number(k.epoch), new Uint8Array(k.mediaExporter));
  }

  private async exporterFor(groupId: string, epoch: number): Promise<Uint8Array | undefined> {
    try {
      const ins = await this.host.engine().inspect(groupId);
      this.remember(groupId, ins.epochKeys);
      const k = ins.epochKeys.find((x) => Number(x.epoch) === epoch);
      if (k) return k.mediaExporter;
    } catch {
      // inactive group: only what was remembered
    }
    return this.exporters.get(groupId)?.get(epoch);
  }

  private recordBlob(blob: Uint8Array, sha: string): { blobB64?: string } {
    if (blob.length > MAX_RECORDED_BLOB_BYTES) return {};
    const key = `blob:${sha}`;
    if (this.host.recordedKeys.has(key)) return {};
    this.host.recordedKeys.add(key);
    return { blobB64: b64(blob) };
  }

  /** MIP-04 send side: encrypt seeded content for the current epoch, upload, return the imeta tag. */
  async upload(groupId: string, media: MediaSpec): Promise<string[]> {
    const url = this.url();
    const engine = this.host.engine();
    const ins = await engine.inspect(groupId);
    this.remember(groupId, ins.epochKeys);
    const k = ins.epochKeys.find((x) => x.epoch === ins.epoch);
    if (!k) throw new AgentMediaError("NO_MEDIA_KEY", `${this.host.name} has no media exporter for epoch ${ins.epoch}`);
    const rb = (n: number): Uint8Array => this.host.randomBytes(n);
    const data = rb(media.bytes);
    const enc = encryptMedia({ exporterSecret: k.mediaExporter, data, mime: media.mimeType, filename: media.filename, randomBytes: rb });
    const client = new BlossomClient(url, { secretKey: this.host.secretKey });
    const desc = await client.upload(enc.ciphertext, { type: "application/octet-stream", sha256: bytesToHex(enc.sha256Cipher) });
    let imetaUrl = desc.url;
    if (media.wrongBlob) {
      // a valid blob under its own address, but not this file's: receivers must fail the AEAD
      let prev = this.lastUpload.get(groupId);
      if (!prev) {
        const decoy = await client.upload(rb(Math.max(32, Math.min(media.bytes, 4096))), { type: "application/octet-stream" });
        prev = { sha256: decoy.sha256, url: decoy.url };
      }
      imetaUrl = prev.url;
      this.host.rec("info", "note", { text: `adversarial: imeta of ${media.filename} names blob ${prev.sha256.slice(0, 12)}… instead of its own` });
    }
    const sha = bytesToHex(enc.sha256Cipher);
    this.lastUpload.set(groupId, { sha256: sha, url: desc.url });
    this.host.rec("ok", "media-upload", {
      groupId,
      nostrGroupId: ins.nostrGroupId,
      epoch: Number(ins.epoch),
      filename: media.filename,
      bytes: media.bytes,
      sha256Plain: bytesToHex(enc.sha256Plain),
      blob: sha,
      url: imetaUrl,
      ...(media.wrongBlob ? { wrongBlob: true } : {}),
    });
    return enc.imeta(imetaUrl);
  }

  /** MIP-04 receive side for one delivered application message; deferred while catching up. */
  async onApplication(o: Extract<ProcessOutcome, { kind: "application" }>, catchingUp: boolean): Promise<void> {
    const imetas = o.rumor.tags.filter((t) => t[0] === "imeta");
    if (imetas.length === 0 || !this.enabled) return;
    const run = async (): Promise<void> => {
      for (const tag of imetas) await this.fetchOne(o.groupId, o.eventId, Number(o.epoch), tag);
    };
    if (catchingUp) this.deferred.push(run);
    else await run();
  }

  /** Run the fetches deferred during catch-up (in arrival order). */
  async flushDeferred(): Promise<void> {
    const jobs = this.deferred;
    this.deferred = [];
    for (const j of jobs) await j();
    const groups = [...this.imagesDeferred];
    this.imagesDeferred.clear();
    for (const g of groups) await this.onGroupData(g, false);
  }

  private async fetchOne(groupId: string, eventId: string, epoch: number, tag: string[]): Promise<void> {
    const g = this.host.engine().group(groupId);
    const base = { eventId, groupId, nostrGroupId: g?.nostrGroupId, epoch };
    let url: string | undefined;
    let blobSha256: string | undefined;
    try {
      const meta = parseImetaTag(tag);
      url = meta.url;
      const k = await this.exporterFor(groupId, epoch);
      if (!k) throw new AgentMediaError("MEDIA_EPOCH_UNAVAILABLE", `no media exporter retained for epoch ${epoch}`);
      const address = blobAddressFromUrl(meta.url);
      if (!address) throw new AgentMediaError("MEDIA_NO_BLOB_ADDRESS", `imeta url has no blob address: ${meta.url}`);
      // unverified download: decryptMedia checks the address itself (MEDIA_CIPHERTEXT_HASH_MISMATCH)
      const blob = await new BlossomClient(this.url()).download(address, { verify: false });
      blobSha256 = bytesToHex(sha256Bytes(blob));
      const plain = decryptMedia({ exporterSecret: k, blob, imeta: meta });
      this.host.rec("ok", "media", {
        ...base,
        fetchedAtEpoch: g ? Number(g.epoch) : undefined,
        url: meta.url,
        filename: plain.filename,
        bytes: plain.data.length,
        sha256Plain: bytesToHex(meta.sha256Plain),
        blobSha256,
        ...this.recordBlob(blob, blobSha256),
      });
    } catch (e) {
      const code = codeOf(e);
      const rule = MEDIA_ERROR_RULES[code as MediaErrorCode];
      this.host.rec("fail", "media", { ...base, ...(url ? { url } : {}), ...(blobSha256 ? { blobSha256 } : {}), code, ...(rule ? { rule } : {}), message: (e as Error).message });
    }
  }

  // ------------------------------------------------------------------ group image (MIP-01)

  /**
   * Prepare a group image change: encrypt and upload the new image signed by its upload identity.
   * The caller commits `fields()` and then calls `afterCommit`.
   */
  async prepareImage(groupId: string, opts: { bytes: number; version: 1 | 2; clear?: boolean }): Promise<GroupImagePlan> {
    const url = this.url();
    const g = this.host.engine().group(groupId);
    if (!g) throw new AgentMediaError("AGENT_NO_GROUP", `${this.host.name} is not in group ${groupId.slice(0, 12)}`);
    const d = g.groupData;
    if (opts.version === 2 && !opts.clear && d.version < 2) {
      throw new AgentMediaError("GROUP_IMAGE_VERSION_UNSUPPORTED", `a v2 group image needs group data version 2 or later (image_upload_key); this group has version ${d.version}`);
    }
    const old = d.imageHash ? { imageHash: d.imageHash, imageKey: d.imageKey, imageNonce: d.imageNonce, imageUploadKey: d.imageUploadKey } : null;
    const rb = (n: number): Uint8Array => this.host.randomBytes(n);
    const change = planGroupImageChange(old, d.version, opts.clear ? null : rb(opts.bytes), { version: opts.version, randomBytes: rb });
    if (change.prepared) {
      const p = change.prepared;
      await new BlossomClient(url, { secretKey: p.upload.secretKey }).upload(p.blob, { type: "application/octet-stream", sha256: p.sha256 });
      this.host.rec("ok", "group-image-upload", { groupId, sha256: p.sha256, bytes: p.blob.length, uploadPubkey: p.upload.pubkey, version: opts.version });
    }
    return { groupId, change, version: opts.version };
  }

  /** The group-data patch for a prepared change. */
  static fields(plan: GroupImagePlan): { imageHash: Uint8Array | null; imageKey: Uint8Array | null; imageNonce: Uint8Array | null; imageUploadKey: Uint8Array | null } {
    return plan.change.prepared ? { ...plan.change.prepared.fields } : clearedImageFields();
  }

  /** After the commit: record the setter's observation and delete the old blob with the old upload identity. */
  async afterImageCommit(plan: GroupImagePlan): Promise<{ deletedBy: string | null }> {
    const g = this.host.engine().group(plan.groupId);
    const p = plan.change.prepared;
    if (g && p) {
      this.imageSeen.set(plan.groupId, p.sha256);
      this.host.rec("ok", "group-image", {
        groupId: plan.groupId,
        nostrGroupId: g.nostrGroupId,
        epoch: Number(g.epoch),
        imageHash: p.sha256,
        groupData: bytesToHex(encodeGroupData(g.groupData)),
        groupDataVersion: g.groupData.version,
        imageVersion: plan.version,
        bytes: p.blob.length,
        uploadPubkey: p.upload.pubkey,
        role: "setter",
        ...this.recordBlob(p.blob, p.sha256),
      });
    } else if (g) {
      // cleared: the setter's record says so (no image, no blob), so that assertions know the current state
      this.imageSeen.delete(plan.groupId);
      this.host.rec("ok", "group-image", { groupId: plan.groupId, nostrGroupId: g.nostrGroupId, epoch: Number(g.epoch), imageHash: null, groupData: bytesToHex(encodeGroupData(g.groupData)), groupDataVersion: g.groupData.version, role: "setter", cleared: true });
    }
    const c = plan.change.cleanup;
    if (!c) return { deletedBy: null };
    try {
      const r = await cleanupGroupImage(this.url(), c);
      this.host.rec(r.deletedBy ? "ok" : "fail", "group-image-cleanup", { groupId: plan.groupId, sha256: c.sha256, deletedBy: r.deletedBy, refusals: r.refusals });
      return { deletedBy: r.deletedBy };
    } catch (e) {
      this.host.rec("fail", "group-image-cleanup", { groupId: plan.groupId, sha256: c.sha256, code: codeOf(e), message: (e as Error).message });
      return { deletedBy: null };
    }
  }

  /**
   * A member applied a group-data change: fetch and decrypt the image when it names a new one.
   * While catching up only the image current at the end is fetched (replaced blobs may be gone).
   */
  async onGroupData(groupId: string, catchingUp: boolean): Promise<void> {
    if (!this.enabled) return;
    if (catchingUp) {
      this.imagesDeferred.add(groupId);
      return;
    }
    const g = this.host.engine().group(groupId);
    if (!g) return;
    const d = g.groupData;
    const hash = d.imageHash ? bytesToHex(d.imageHash) : undefined;
    if (!hash) {
      this.imageSeen.delete(groupId);
      return;
    }
    if (this.imageSeen.get(groupId) === hash) return;
    this.imageSeen.set(groupId, hash);
    const base = { groupId, nostrGroupId: g.nostrGroupId, epoch: Number(g.epoch), imageHash: hash };
    try {
      const blob = await new BlossomClient(this.url()).download(hash, { verify: false });
      const { image, scheme } = decryptGroupImage({ imageHash: d.imageHash, imageKey: d.imageKey, imageNonce: d.imageNonce, imageUploadKey: d.imageUploadKey }, blob);
      this.host.rec("ok", "group-image", { ...base, groupData: bytesToHex(encodeGroupData(d)), groupDataVersion: d.version, scheme, bytes: image.length, role: "member", ...this.recordBlob(blob, hash) });
    } catch (e) {
      this.host.rec("fail", "group-image", { ...base, code: codeOf(e), message: (e as Error).message });
    }
  }

  // ------------------------------------------------------------------ secrecy probe

  /** Try every media exporter this agent ever held for the group on each attachment. */
  async probe(groupId: string, attachments: { eventId: string; imeta: string[] }[]): Promise<MediaProbeOutcome[]> {
    const out: MediaProbeOutcome[] = [];
    try {
      const ins = await this.host.engine().inspect(groupId);
      this.remember(groupId, ins.epochKeys);
    } catch {
      // removed: the remembered exporters are all it has
    }
    const keys = [...(this.exporters.get(groupId)?.values() ?? [])];
    for (const a of attachments) {
      let url = "";
      let res: MediaProbeOutcome;
      try {
        const meta = parseImetaTag(a.imeta);
        url = meta.url;
        const address = blobAddressFromUrl(meta.url);
        if (!address) throw new AgentMediaError("MEDIA_NO_BLOB_ADDRESS", `imeta url has no blob address: ${meta.url}`);
        const blob = await new BlossomClient(this.url()).download(address, { verify: false });
        let last: unknown = new AgentMediaError("MEDIA_EPOCH_UNAVAILABLE", "no media exporter held for this group");
        let opened = false;
        for (const k of keys) {
          try {
            decryptMedia({ exporterSecret: k, blob, imeta: meta, allowLegacyKdf: true });
            opened = true;
            break;
          } catch (e) {
            last = e;
          }
        }
        res = opened ? { eventId: a.eventId, url, outcome: "decrypted", exportersTried: keys.length } : { eventId: a.eventId, url, outcome: "failed", code: codeOf(last), exportersTried: keys.length };
      } catch (e) {
        res = { eventId: a.eventId, url, outcome: "failed", code: codeOf(e), exportersTried: keys.length };
      }
      this.host.rec("ok", "media-probe", { groupId, ...res });
      out.push(res);
    }
    return out;
  }
}
