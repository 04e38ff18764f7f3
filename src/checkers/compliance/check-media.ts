/**
 * White-box rules on encrypted media and group images, judged from keyring observations:
 *
 * - MIP04-MD-03 (R1) / MD-04 (R0): the blob of an imeta (kind-9 rumor) opens with the file key
 *   HKDF-Expand(PRK = the epoch's media exporter, info) — the keyring's `mediaExporter` of that
 *   epoch (R0: the legacy exporter MLS-Exporter("nostr","nostr",32), i.e. the R0 `key`).
 * - MIP04-MD-05: the AEAD authenticates with exactly label‖0‖sha256(plain)‖0‖mime‖0‖filename.
 * - MIP04-MD-06: SHA-256 of the plaintext is `x` and SHA-256 of the blob is its Blossom address.
 * - MIP01-IMG-01/02: a group image blob decrypts as the group data says, and its Blossom upload
 *   auth event is signed by the image's upload identity.
 *
 * Blob bytes are never in a Nostr capture; they come from observations:
 *   { kind: "media", eventId, url, blob?: base64, blobSha256?: hex, plainSha256?: hex }
 *   { kind: "group-image", nostrGroupId, epoch?, groupData: hex (0xF2EE bytes), blob?: base64,
 *     uploadAuthEventId?: id of the Blossom auth event in the capture, uploadPubkey?: hex }
 * Without the bytes (or the hashes an agent measured) the rules are not checkable.
 */
import { createHash } from "node:crypto";
import { chacha20poly1305 } from "@noble/ciphers/chacha.js";
import { decodeGroupData } from "../../engine/mip01-group-data.ts";
import { checkGroupImageBlob, checkImageUploadPubkey } from "../../engine/mip01-group-image.ts";
import { blobAddressFromUrl, deriveMediaKey, MIP04_DEPRECATED_VERSION, mediaAad, type MediaKdf, type ParsedImeta, parseImetaTag } from "../../engine/mip04-media.ts";
import type { CheckContext } from "./context.ts";
import type { ApplicationObservation, GroupImageObservation, MediaObservation } from "./keyring.ts";
import { bytesToHex, decodeBase64Strict, hexToBytes, isHex64, isPlainObject, safeTags, tagsNamed } from "./util.ts";

function sha256Hex(b: Uint8Array): string {
  return createHash("sha256").update(b).digest("hex");
}

/** Media exporters to try for one message: the message's epoch when known, else every epoch of its group. */
function mediaExporters(ctx: CheckContext, nostrGroupId: string | undefined, epoch: number | undefined): { epoch: number; secret: Uint8Array }[] {
  const out: { epoch: number; secret: Uint8Array }[] = [];
  for (const k of ctx.keyring?.groupEventKeys ?? []) {
    if (nostrGroupId !== undefined && k.nostrGroupId !== nostrGroupId) continue;
    if (epoch !== undefined && k.epoch !== epoch) continue;
    // R0 (MD-04): the media exporter must be MLS-Exporter("nostr","nostr",32), which is exactly what an
    // R0 keyring's `key` holds; a differing `mediaExporter` entry is ignored, so the rule is tested.
    const hex = ctx.profile === "R0" ? k.key : k.mediaExporter;
    if (hex !== undefined) out.push({ epoch: k.epoch, secret: hexToBytes(hex) });
  }
  return out;
}

function tryOpen(key: Uint8Array, nonce: Uint8Array, aad: Uint8Array, blob: Uint8Array): Uint8Array | undefined {
  try {
    return chacha20poly1305(key, nonce, aad).decrypt(blob);
  } catch {
    return undefined;
  }
}

interface OpenResult {
  plain?: Uint8Array;
  kdf?: MediaKdf;
  /** The AAD that authenticated: the MIP-04 one, or a deviation. */
  aad?: "mip04" | "empty" | "v1-label" | "no-filename";
}

/** Try the file key of each exporter with the MIP-04 AAD, then the known deviations. */
function openBlob(meta: ParsedImeta, blob: Uint8Array, exporters: { secret: Uint8Array }[]): OpenResult {
  const aads: [NonNullable<OpenResult["aad"]>, () => Uint8Array][] = [
    ["mip04", () => mediaAad(meta.sha256Plain, meta.mime, meta.filename)],
    ["empty", () => new Uint8Array(0)],
    ["v1-label", () => mediaAad(meta.sha256Plain, meta.mime, meta.filename, MIP04_DEPRECATED_VERSION)],
    ["no-filename", () => mediaAad(meta.sha256Plain, meta.mime, "")],
  ];
  for (const kdf of ["expand", "extract-expand"] as MediaKdf[]) {
    for (const { secret } of exporters) {
      const key = deriveMediaKey(secret, meta.sha256Plain, meta.mime, meta.filename, kdf);
      for (const [name, aad] of aads) {
        const plain = tryOpen(key, meta.nonce, aad(), blob);
        if (plain) return { plain, kdf, aad: name };
      }
    }
  }
  return {};
}

function checkMedia(ctx: CheckContext, o: MediaObservation, apps: Map<string, ApplicationObservation[]>): void {
  const { j } = ctx;
  const id = o.eventId;
  const keyRule = ctx.profile === "R0" ? "MIP04-MD-04" : "MIP04-MD-03";
  if (ctx.profile === "R2") return; // R2 imeta (encrypted-media-v2 locators) is not parsed here
  // The imeta this blob belongs to: the delivered rumor of the same event, matched by url.
  let tag: string[] | undefined;
  let app: ApplicationObservation | undefined;
  for (const a of apps.get(id) ?? []) {
    if (!isPlainObject(a.rumor)) continue;
    tag = tagsNamed(safeTags(a.rumor.tags), "imeta").find((t) => t.includes(`url ${o.url}`));
    if (tag) {
      app = a;
      break;
    }
  }
  if (!tag) {
    for (const r of ["MIP04-MD-05", "MIP04-MD-06", keyRule]) j.needKeys(r, id, "no delivered rumor of this event has an imeta with this url");
    return;
  }
  let meta: ParsedImeta;
  try {
    meta = parseImetaTag(tag);
  } catch {
    return; // a malformed imeta is MIP04-MD-01/02's finding; nothing to decrypt against
  }
  const blob = o.blob !== undefined ? decodeBase64Strict(o.blob) : undefined;
  const address = blobAddressFromUrl(o.url);
  const blobHash = blob ? sha256Hex(blob) : isHex64(o.blobSha256) ? o.blobSha256.toLowerCase() : undefined;
  // MD-06 (ciphertext half): the blob is what its Blossom address says.
  if (blobHash !== undefined && address !== null) {
    j.check("MIP04-MD-06", blobHash === address, id, `SHA-256 of the blob (${blobHash.slice(0, 12)}…) is not its Blossom address (${address.slice(0, 12)}…)`);
  }
  if (!blob) {
    const x = bytesToHex(meta.sha256Plain);
    if (isHex64(o.plainSha256)) j.check("MIP04-MD-06", o.plainSha256.toLowerCase() === x, id, `the decrypted file hashes to ${o.plainSha256.slice(0, 12)}…, not x ${x.slice(0, 12)}…`);
    j.needKeys(keyRule, id, "the blob bytes are not in the observations");
    j.needKeys("MIP04-MD-05", id, "the blob bytes are not in the observations");
    return;
  }
  const group = o.nostrGroupId ?? app?.nostrGroupId ?? ctx.byId.get(id)?.event.tags.find((t) => t[0] === "h")?.[1];
  const epoch = o.epoch ?? app?.epoch ?? ctx.decoded445.get(id)?.keyEpoch;
  let exporters = mediaExporters(ctx, group?.toLowerCase(), epoch);
  if (exporters.length === 0 && epoch !== undefined) exporters = mediaExporters(ctx, group?.toLowerCase(), undefined);
  if (exporters.length === 0) {
    j.needKeys(keyRule, id, "no media exporter for this group in the keyring");
    j.needKeys("MIP04-MD-05", id, "no media exporter for this group in the keyring");
    return;
  }
  const res = openBlob(meta, blob, exporters);
  if (res.plain === undefined) {
    j.fail(keyRule, id, `the blob opens under no file key HKDF-Expand(media exporter of epoch ${epoch ?? "any"}, info) with any known AAD`);
    return;
  }
  j.check(keyRule, res.kdf === "expand", id, "the file key was derived with HKDF-Extract+Expand (pre-0.7.1 MDK), not Expand-only over the exporter");
  j.check("MIP04-MD-05", res.aad === "mip04", id, `the blob authenticates with a non-MIP-04 AAD (${res.aad ?? "?"})`);
  const plainHash = sha256Hex(res.plain);
  const x = bytesToHex(meta.sha256Plain);
  j.check("MIP04-MD-06", plainHash === x, id, `the decrypted file hashes to ${plainHash.slice(0, 12)}…, not x ${x.slice(0, 12)}…`);
}

function checkGroupImage(ctx: CheckContext, o: GroupImageObservation): void {
  const { j } = ctx;
  if (j.applies("MIP01-IMG-01") === false && j.applies("MIP01-IMG-02") === false) return;
  const subject = o.uploadAuthEventId ?? `group-image:${o.nostrGroupId}:${o.epoch ?? "?"}`;
  let data;
  try {
    data = decodeGroupData(hexToBytes(o.groupData));
  } catch {
    return; // undecodable group data is a MIP01-GD finding
  }
  if (data.imageHash === null) return; // no image set
  const fields = { imageHash: data.imageHash, imageKey: data.imageKey, imageNonce: data.imageNonce, imageUploadKey: data.imageUploadKey };
  const blob = o.blob !== undefined ? decodeBase64Strict(o.blob) : undefined;
  if (blob) {
    const r = checkGroupImageBlob(fields, data.version, blob);
    j.check("MIP01-IMG-01", r.ok, subject, `group image: ${r.detail}`);
  } else j.needKeys("MIP01-IMG-01", subject, "the image blob bytes are not in the observations");
  // IMG-02: the pubkey of the upload's Blossom auth event (from the capture when present).
  const auth = o.uploadAuthEventId !== undefined ? ctx.byId.get(o.uploadAuthEventId) : undefined;
  const pubkey = auth?.event.pubkey ?? o.uploadPubkey;
  if (pubkey !== undefined && isHex64(pubkey)) {
    const r = checkImageUploadPubkey(fields, data.version, pubkey);
    j.check("MIP01-IMG-02", r.ok, subject, `group image upload: ${r.detail}`);
  } else if (o.uploadAuthEventId !== undefined) j.needKeys("MIP01-IMG-02", subject, "the Blossom upload auth event is not in the capture");
}

/**
 * MIP00-CR-01: a member's credential identity never changes. Judged from group-state observations
 * that list `members` (leaf index → credential identity) per epoch: a leaf that stays occupied across
 * consecutive observed epochs of one group keeps its identity unless a commit in between removed its
 * occupant (commit observations' removal proposals or `removed`). States are grouped per group and
 * per reporting agent (or per group when observations carry no agent, as a run's merged views do).
 */
function checkCredentialIdentities(ctx: CheckContext): void {
  const { j } = ctx;
  const byGroup = new Map<string, { epoch: number; members: Record<string, string>; agent?: string }[]>();
  for (const o of ctx.observations) {
    if (o.kind !== "group-state" || !isPlainObject(o.leaves)) continue;
    const members: Record<string, string> = {};
    for (const [leaf, ident] of Object.entries(o.leaves)) if (typeof ident === "string") members[leaf] = ident.toLowerCase();
    const key = `${o.nostrGroupId.toLowerCase()}|${o.agent ?? ""}`;
    const l = byGroup.get(key) ?? [];
    l.push({ epoch: o.epoch, members, ...(o.agent !== undefined ? { agent: o.agent } : {}) });
    byGroup.set(key, l);
  }
  const removedAt = new Map<string, Set<string>>();
  for (const o of ctx.observations) {
    if (o.kind !== "commit" || o.nostrGroupId === undefined || o.epoch === undefined) continue;
    const k = `${o.nostrGroupId.toLowerCase()}|${o.epoch}`;
    const s = removedAt.get(k) ?? new Set<string>();
    for (const p of o.proposals ?? []) if ((p.type === "remove" || p.type === "self_remove") && p.target !== undefined) s.add(p.target.toLowerCase());
    for (const r of o.removed ?? []) if (typeof r === "string") s.add(r.toLowerCase());
    removedAt.set(k, s);
  }
  for (const [key, states] of byGroup) {
    const gid = key.slice(0, key.indexOf("|"));
    // Views per epoch: members can briefly disagree (a commit race's losing branch), so a transition
    // is judged against every view of the previous observed epoch and fails only if none explains it.
    const byEpoch = new Map<number, Record<string, string>[]>();
    for (const st of states) {
      const l = byEpoch.get(st.epoch) ?? [];
      l.push(st.members);
      byEpoch.set(st.epoch, l);
    }
    const epochs = [...byEpoch.keys()].sort((a, b) => a - b);
    for (let i = 1; i < epochs.length; i++) {
      const prevEpoch = epochs[i - 1] as number;
      const curEpoch = epochs[i] as number;
      const removedBetween = (who: string): boolean => {
        // (commit observations carry either the epoch they were sent in or the one they created)
        for (let e = prevEpoch; e <= curEpoch; e++) if (removedAt.get(`${gid}|${e}`)?.has(who)) return true;
        return false;
      };
      for (const cur of byEpoch.get(curEpoch) ?? []) {
        let best: string[] | undefined;
        for (const prev of byEpoch.get(prevEpoch) ?? []) {
          const changed: string[] = [];
          for (const [leaf, ident] of Object.entries(cur)) {
            const before = prev[leaf];
            if (before === undefined || before === ident) continue;
            // The old occupant left in between (a commit removed it): a new member took the leaf.
            if (!removedBetween(before)) changed.push(`leaf ${leaf}: ${before.slice(0, 12)}… → ${ident.slice(0, 12)}…`);
          }
          if (best === undefined || changed.length < best.length) best = changed;
          if (changed.length === 0) break;
        }
        const changed = best ?? [];
        j.check("MIP00-CR-01", changed.length === 0, `group-state:${gid}:${curEpoch}`, `credential identity changed between epochs ${prevEpoch} and ${curEpoch} (${changed.join("; ")})`);
      }
    }
  }
}

/**
 * MIP02-WL-15 (R2): a Welcome for an MLS group id the recipient already retains is refused and its
 * KeyPackage left alone. Judged from welcome observations that say `duplicateGroup: true` (the
 * recipient already held that MLS group): `joined` must be false and the consumed KeyPackage must not
 * be rotated or deleted afterwards.
 */
function checkDuplicateWelcomes(ctx: CheckContext): void {
  const { j } = ctx;
  if (!j.applies("MIP02-WL-15")) return;
  const order = new Map(ctx.events.map((r, i) => [r.event.id, i]));
  for (const o of ctx.observations) {
    if (o.kind !== "welcome" || o.duplicateGroup !== true) continue;
    if (o.joined === true) {
      j.fail("MIP02-WL-15", o.eventId, "a Welcome for an MLS group the recipient already retains was accepted");
      continue;
    }
    const w = ctx.welcomes.get(o.eventId);
    const kp = w?.kpEventId !== undefined ? ctx.keyPackages.get(w.kpEventId) : undefined;
    if (!w || !kp) {
      j.pass("MIP02-WL-15");
      continue;
    }
    const at = order.get(o.eventId) ?? 0;
    const touched = ctx.events.filter((r, i) => {
      if (i <= at || r.event.pubkey !== w.recipient) return false;
      if (r.event.kind === 5) return r.event.tags.some((t) => t[0] === "e" && t[1] === kp.event.id);
      return r.event.kind === kp.event.kind && kp.d !== undefined && r.event.tags.some((t) => t[0] === "d" && t[1]?.toLowerCase() === kp.d) && r.event.id !== kp.event.id;
    });
    j.check("MIP02-WL-15", touched.length === 0, [o.eventId, ...touched.map((r) => r.event.id)], "the KeyPackage of a refused duplicate-group Welcome was rotated or deleted");
  }
}

export function checkMediaAndIdentity(ctx: CheckContext): void {
  const apps = new Map<string, ApplicationObservation[]>();
  for (const o of ctx.observations) {
    if (o.kind !== "application") continue;
    const l = apps.get(o.eventId) ?? [];
    l.push(o);
    apps.set(o.eventId, l);
  }
  for (const o of ctx.observations) {
    try {
      if (o.kind === "media") checkMedia(ctx, o, apps);
      else if (o.kind === "group-image") checkGroupImage(ctx, o);
    } catch (e) {
      ctx.j.notes.push(`${o.kind} observation of ${"eventId" in o ? o.eventId : o.nostrGroupId} not judged: ${(e as Error).message}`);
    }
  }
  checkCredentialIdentities(ctx);
  checkDuplicateWelcomes(ctx);
}
