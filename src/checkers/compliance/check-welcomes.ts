/**
 * MIP-02 checks: gift-wrap shape (black-box), and with a recipient secret key the seal and the
 * kind-444 rumor (white-box), plus the join follow-up rules (KeyPackage rotation, failure handling).
 */
import { mlsMessageDecoder } from "ts-mls";
import { getPublicKey } from "nostr-tools/pure";
import * as nip44 from "nostr-tools/nip44";
import type { CaptureRecord } from "../../capture.ts";
import type { CheckContext } from "./context.ts";
import { KIND_KP } from "./check-keypackages.ts";
import { bytesToHex, decodeBase64Strict, hexToBytes, isHex64, isHex64Lower, isPlainObject, isValidRelayUrl, safeTags, tagValues, tagsNamed } from "./util.ts";

export const KIND_GIFT_WRAP = 1059;
export const KIND_SEAL = 13;
export const KIND_WELCOME_RUMOR = 444;

export function recipientKeyMap(ctx: CheckContext): Map<string, Uint8Array> {
  const m = new Map<string, Uint8Array>();
  for (const sk of ctx.keyring?.recipientSecretKeys ?? []) {
    try {
      const b = hexToBytes(sk);
      m.set(getPublicKey(b), b);
    } catch {
      // not a valid secret key: ignored (the keyring parser checked the shape)
    }
  }
  return m;
}

function parseJson(s: string): unknown {
  try {
    return JSON.parse(s);
  } catch {
    return undefined;
  }
}

export function checkGiftWrap(ctx: CheckContext, rec: CaptureRecord, recipients: Map<string, Uint8Array>): void {
  const { j, profile } = ctx;
  const ev = rec.event;
  const id = ev.id;
  const ps = tagsNamed(ev.tags, "p");
  const p = ps[0]?.[1];
  const shapeOk = ps.length === 1 && ps[0]?.length === 2 && isHex64Lower(p);
  if (!shapeOk) {
    j.fail("MIP02-WL-01", id, `gift wrap has ${ps.length} p tag(s) ${JSON.stringify(ps)} (expected exactly one lowercase hex recipient)`);
    return;
  }
  const sk = recipients.get(p as string);
  if (!sk) {
    j.pass("MIP02-WL-01");
    for (const rule of ["MIP02-WL-02", "MIP02-WL-03", "MIP02-WL-04", "MIP02-WL-05", "MIP02-WL-06", "MIP02-WL-08"]) j.needKeys(rule, id, "no secret key for the gift wrap recipient");
    return;
  }
  // Unwrap: 1059 -> 13 -> rumor
  let seal: unknown;
  try {
    seal = parseJson(nip44.v2.decrypt(ev.content, nip44.v2.utils.getConversationKey(sk, ev.pubkey)));
  } catch {
    seal = undefined;
  }
  if (!isPlainObject(seal) || seal.kind !== KIND_SEAL || typeof seal.content !== "string" || typeof seal.pubkey !== "string" || !isHex64(seal.pubkey)) {
    j.fail("MIP02-WL-01", id, "gift wrap does not decrypt to a kind-13 seal for its recipient");
    return;
  }
  let rumor: unknown;
  try {
    rumor = parseJson(nip44.v2.decrypt(seal.content, nip44.v2.utils.getConversationKey(sk, seal.pubkey)));
  } catch {
    rumor = undefined;
  }
  if (!isPlainObject(rumor)) {
    j.fail("MIP02-WL-01", id, "seal does not decrypt to a JSON rumor");
    return;
  }
  if (rumor.kind !== KIND_WELCOME_RUMOR) {
    // Not a Welcome (e.g. a push 446): the Welcome rules do not apply.
    j.pass("MIP02-WL-01");
    ctx.welcomes.set(id, { wrap: ev, recipient: p as string, rumor, sealPubkey: seal.pubkey });
    if (rumor.kind === 446) checkPushTrigger(ctx, id, rumor, seal.pubkey);
    return;
  }
  j.pass("MIP02-WL-01");
  const tags = safeTags(rumor.tags);
  // WL-02
  j.check("MIP02-WL-02", !("sig" in rumor), id, "the kind-444 rumor carries a sig field");
  // WL-03
  const es = tagsNamed(tags, "e");
  const eVal = es[0]?.[1];
  const eOk = es.length === 1 && es[0]?.length === 2 && (profile === "R2" ? isHex64Lower(eVal) : isHex64(eVal));
  j.check("MIP02-WL-03", eOk, id, `rumor has ${es.length} e tag(s) ${JSON.stringify(es)} (expected exactly one 64-hex KeyPackage event id)`);
  // WL-04
  const rt = tagsNamed(tags, "relays");
  const urls = tagValues(tags, "relays");
  const bad = urls.filter((u) => !isValidRelayUrl(u));
  const relaysOk = urls.length >= 1 && bad.length === 0 && (profile !== "R2" || rt.length === 1);
  j.check("MIP02-WL-04", relaysOk, id, urls.length === 0 ? "rumor has no relays tag with a URL" : bad.length ? `invalid relay URL(s) ${JSON.stringify(bad)}` : `${rt.length} relays tags (expected one)`);
  // WL-05
  const enc = tagsNamed(tags, "encoding");
  if (profile === "R2") j.check("MIP02-WL-05", enc.length === 0, id, "rumor carries an encoding tag (forbidden in R2)");
  else j.check("MIP02-WL-05", enc.length === 1 && enc[0]?.length === 2 && enc[0][1] === "base64", id, `encoding tag is ${JSON.stringify(enc)} (expected one ["encoding","base64"])`);
  // WL-06
  // R0 still allowed hex content (encoding tag absent or "hex"); R1/R2 are base64 only.
  const encVal = enc[0]?.[1];
  const hexAllowed = profile === "R0" && (encVal === undefined || encVal === "hex");
  const raw = hexAllowed && typeof rumor.content === "string" && /^(?:[0-9a-fA-F]{2})+$/.test(rumor.content) ? hexToBytes(rumor.content) : decodeBase64Strict(rumor.content);
  let newMembers: string[] | undefined;
  let m: ReturnType<typeof mlsMessageDecoder>;
  try {
    m = raw ? mlsMessageDecoder(raw, 0) : undefined;
  } catch {
    m = undefined;
  }
  if (!m || m[1] !== raw?.length || m[0].wireformat !== 3) {
    j.fail("MIP02-WL-06", id, raw === undefined ? "rumor content is not standard base64" : "rumor content is not an MLSMessage with wire format mls_welcome");
  } else {
    j.pass("MIP02-WL-06");
    const w = m[0] as { welcome: { secrets: { newMember: Uint8Array }[] } };
    newMembers = w.welcome.secrets.map((s) => bytesToHex(s.newMember));
  }
  // WL-08
  if (eOk && newMembers) {
    const kp = ctx.keyPackages.get((eVal as string).toLowerCase());
    if (!kp) j.needKeys("MIP02-WL-08", id, "the KeyPackage named by e is not in the capture");
    else if (kp.ref === undefined) j.fail("MIP02-WL-08", id, "the KeyPackage named by e does not decode");
    else j.check("MIP02-WL-08", newMembers.includes(kp.ref), id, `KeyPackageRef ${kp.ref.slice(0, 12)}… of the e KeyPackage is not a new_member of the Welcome`);
  }
  const info: { wrap: typeof ev; recipient: string; rumor: Record<string, unknown>; kpEventId?: string; newMemberRefs?: string[] } = { wrap: ev, recipient: p as string, rumor };
  if (eOk) info.kpEventId = (eVal as string).toLowerCase();
  if (newMembers) info.newMemberRefs = newMembers;
  ctx.welcomes.set(id, info);
}

/** WL-11 (failed join leaves the KeyPackage alone) and WL-12 (successful join rotates under the same d). */
export function checkWelcomeSequences(ctx: CheckContext): void {
  const { j } = ctx;
  const failed = new Set<string>();
  const joined = new Set<string>();
  for (const o of ctx.observations) {
    if (o.kind === "welcome" && o.joined === false) failed.add(o.eventId);
    if (o.kind === "welcome" && o.joined === true) joined.add(o.eventId);
    if (o.kind === "rejected" && ctx.welcomes.has(o.eventId)) failed.add(o.eventId);
  }
  const order = new Map(ctx.events.map((r, i) => [r.event.id, i]));
  // KeyPackages and deletions per author, in capture order (one pass, not one scan per Welcome).
  const rotations = new Map<string, { i: number; r: CaptureRecord }[]>();
  ctx.events.forEach((r, i) => {
    if (r.event.kind !== KIND_KP && r.event.kind !== 5) return;
    const l = rotations.get(r.event.pubkey) ?? [];
    l.push({ i, r });
    rotations.set(r.event.pubkey, l);
  });
  for (const [wrapId, w] of ctx.welcomes) {
    if (w.rumor.kind !== KIND_WELCOME_RUMOR || w.kpEventId === undefined) continue;
    const kp = ctx.keyPackages.get(w.kpEventId);
    if (!kp) continue;
    const at = order.get(wrapId) ?? 0;
    const later = (rotations.get(w.recipient) ?? []).filter((x) => x.i > at).map((x) => x.r);
    const rotated = later.filter((r) => r.event.kind === KIND_KP && kp.d !== undefined && tagValues(r.event.tags, "d").map((x) => x.toLowerCase()).includes(kp.d) && r.event.id !== kp.event.id);
    const deleted = later.filter((r) => r.event.kind === 5 && tagValues(r.event.tags, "e").includes(kp.event.id));
    if (failed.has(wrapId)) {
      j.check("MIP02-WL-11", rotated.length === 0 && deleted.length === 0, [wrapId, ...rotated.map((r) => r.event.id), ...deleted.map((r) => r.event.id)], "the KeyPackage of a failed Welcome was rotated or deleted");
    } else if (kp.event.kind === KIND_KP && kp.event.pubkey === w.recipient && (joined.has(wrapId) || !failed.has(wrapId))) {
      j.check("MIP02-WL-12", rotated.length > 0, [wrapId, kp.event.id], "no new 30443 under the consumed KeyPackage's d after the join");
    }
  }
}

/** MIP05-PN-03 and PN-06: a kind-446 push trigger rumor (gift-wrapped to a notification server). */
function checkPushTrigger(ctx: CheckContext, wrapId: string, rumor: Record<string, unknown>, sealPubkey: string): void {
  const { j, profile } = ctx;
  const pk = typeof rumor.pubkey === "string" ? rumor.pubkey : "";
  j.check("MIP05-PN-03", pk === sealPubkey && !ctx.accountKeys.has(pk), wrapId, pk !== sealPubkey ? "the 446 rumor pubkey is not the seal's signer" : "the 446 rumor pubkey is an account key, not an ephemeral one");
  const tags = safeTags(rumor.tags);
  const raw = decodeBase64Strict(rumor.content);
  const problems: string[] = [];
  if (profile === "R2") {
    if (tags.length !== 1 || tags[0]?.[0] !== "v" || tags[0]?.[1] !== "marmot-push-v1") problems.push(`tags ${JSON.stringify(tags)} are not exactly [["v","marmot-push-v1"]]`);
    if (!raw || raw.length === 0 || raw.length % 1084 !== 0 || raw.length / 1084 > 32) problems.push(`content is ${raw?.length ?? "not base64"} bytes (1-32 chunks of 1084)`);
  } else {
    if (!tags.some((t) => t[0] === "v" && t[1] === "mip05-v1")) problems.push("no [v, mip05-v1] tag");
    if (!tags.some((t) => t[0] === "encoding" && t[1] === "base64")) problems.push("no [encoding, base64] tag");
    const size = profile === "R0" ? 280 : 1084;
    if (!raw || raw.length === 0 || raw.length % size !== 0) problems.push(`content is ${raw?.length ?? "not base64"} bytes (a multiple of ${size})`);
  }
  if (profile !== "R0") j.check("MIP05-PN-06", problems.length === 0, wrapId, `446: ${problems.join("; ")}`);
}
