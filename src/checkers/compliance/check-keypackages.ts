/**
 * MIP-00 checks on outer events: KeyPackages (443 / 30443), relay lists (10051), deletions (5),
 * and the KeyPackage sequence rules (rotation, publication on the listed relays).
 * Every rule is judged on its own: one broken tag never hides another.
 */
import { keyPackageDecoder, makeKeyPackageRef, mlsMessageDecoder, type KeyPackage } from "ts-mls";
import { getMarmotCiphersuite } from "../../engine/identity.ts";
import type { CaptureRecord } from "../../capture.ts";
import type { CheckContext } from "./context.ts";
import { bytesToHex, decodeBase64Strict, isHex, isHex64, isHex64Lower, isValidRelayUrl, normId, tagValues, tagsNamed } from "./util.ts";

export const KIND_KP = 30443;
export const KIND_KP_LEGACY = 443;
export const KIND_KP_RELAYS = 10051;
export const KIND_DELETION = 5;

/** MDK 0.8 stopped accepting kind 443 after this instant (2026-06-01 00:00 UTC = end of 2026-05-31). */
export const LEGACY_443_DEADLINE = Date.UTC(2026, 5, 1) / 1000;
export const MAX_KP_LIFETIME_SECS = 7_261_200;

const ID_RE_LOWER = /^0x[0-9a-f]{4}$/;
const textEncoder = new TextEncoder();

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

/** VerifyWithLabel(leaf key, "KeyPackageTBS", TBS) where TBS = the encoding minus the signature vector. */
async function verifyKeyPackageSignature(kp: KeyPackage, bytes: Uint8Array): Promise<boolean> {
  const sigLen = varintPrefix(kp.signature.length).length + kp.signature.length;
  if (sigLen > bytes.length) return false;
  const tbs = bytes.subarray(0, bytes.length - sigLen);
  const label = textEncoder.encode("MLS 1.0 KeyPackageTBS");
  const content = concat(varintPrefix(label.length), label, varintPrefix(tbs.length), tbs);
  const cs = await getMarmotCiphersuite();
  try {
    return await cs.signature.verify(kp.leafNode.signaturePublicKey, content, kp.signature);
  } catch {
    return false;
  }
}

function safeDecode<T>(dec: (b: Uint8Array, o: number) => [T, number] | undefined, bytes: Uint8Array): [T, number] | undefined {
  try {
    return dec(bytes, 0);
  } catch {
    return undefined;
  }
}

/** Content bytes of a KeyPackage event per its encoding tag (base64 default; hex allowed in R0). */
function contentBytes(content: string, encoding: string | undefined): Uint8Array | undefined {
  if (encoding === "hex" || (encoding === undefined && /^(?:[0-9a-fA-F]{2})+$/.test(content) && content.length > 200)) {
    return isHex(content) ? new Uint8Array(Buffer.from(content, "hex")) : undefined;
  }
  return decodeBase64Strict(content);
}

export async function checkKeyPackageEvent(ctx: CheckContext, rec: CaptureRecord): Promise<void> {
  const { j, profile } = ctx;
  const ev = rec.event;
  const id = ev.id;
  const tags = ev.tags;
  const is30443 = ev.kind === KIND_KP;

  // KP-02: d tag
  let d: string | undefined;
  if (is30443) {
    const ds = tagsNamed(tags, "d");
    const v = ds[0]?.[1];
    const okHex = profile === "R2" ? isHex64Lower(v) : isHex64(v);
    if (ds.length !== 1) j.fail("MIP00-KP-02", id, `30443 has ${ds.length} d tags (expected exactly one)`);
    else if (ds[0]?.length !== 2 || !okHex) j.fail("MIP00-KP-02", id, `d tag value ${JSON.stringify(v ?? null)} is not 64 ${profile === "R2" ? "lowercase " : ""}hex`);
    else j.pass("MIP00-KP-02");
    if (typeof v === "string") d = v.toLowerCase();
  }

  // KP-03
  const ver = tagsNamed(tags, "mls_protocol_version");
  j.check("MIP00-KP-03", ver.length === 1 && ver[0]?.length === 2 && ver[0][1] === "1.0", id, `mls_protocol_version is ${JSON.stringify(ver.map((t) => t.slice(1)))} (expected exactly ["1.0"])`);

  // KP-04 (R1)
  const cs = tagsNamed(tags, "mls_ciphersuite");
  const csVals = cs.flatMap((t) => t.slice(1)).map(normId);
  j.check("MIP00-KP-04", cs.length === 1 && csVals.length === 1 && csVals[0] === "0x0001", id, `mls_ciphersuite is ${JSON.stringify(csVals)} (expected 0x0001)`);

  // KP-05 / KP-06
  const extTags = tagsNamed(tags, "mls_extensions");
  const exts = extTags.flatMap((t) => t.slice(1)).map(normId);
  const missing = ["0xf2ee", "0x000a"].filter((x) => !exts.includes(x));
  j.check("MIP00-KP-05", missing.length === 0, id, extTags.length === 0 ? "no mls_extensions tag" : `mls_extensions lacks ${missing.join(", ")}`);
  const defaults = exts.filter((x) => ["0x0001", "0x0002", "0x0003", "0x0004", "0x0005"].includes(x));
  j.check("MIP00-KP-06", defaults.length === 0, id, `mls_extensions lists default extension(s) ${defaults.join(", ")}`);

  // KP-07 (R1, 30443 only)
  if (is30443) {
    const props = tagsNamed(tags, "mls_proposals");
    const pv = props.flatMap((t) => t.slice(1)).map(normId);
    j.check("MIP00-KP-07", props.length >= 1 && pv.includes("0x000a"), id, props.length === 0 ? "30443 has no mls_proposals tag" : `mls_proposals ${JSON.stringify(pv)} lacks 0x000a`);
  }

  // KP-08 (R1): encoding tag + base64 content
  const enc = tagsNamed(tags, "encoding");
  const encVal = enc[0]?.[1];
  if (j.applies("MIP00-KP-08")) {
    const b64ok = decodeBase64Strict(ev.content) !== undefined && ev.content.length > 0;
    if (enc.length !== 1 || enc[0]?.length !== 2 || encVal !== "base64") j.fail("MIP00-KP-08", id, enc.length === 0 ? "no encoding tag" : `encoding tag is ${JSON.stringify(enc)} (expected one ["encoding","base64"])`);
    else if (!b64ok) j.fail("MIP00-KP-08", id, "content is not standard padded base64");
    else j.pass("MIP00-KP-08");
  }

  // KP-09 (R2)
  const relaysTags = tagsNamed(tags, "relays");
  j.check("MIP00-KP-09", enc.length === 0 && relaysTags.length === 0, id, `KeyPackage carries ${[enc.length ? "an encoding" : "", relaysTags.length ? "a relays" : ""].filter(Boolean).join(" and ")} tag`);

  // KP-10 (R1)
  const relays = tagValues(tags, "relays");
  const badRelays = relays.filter((u) => !isValidRelayUrl(u));
  j.check("MIP00-KP-10", relays.length >= 1 && badRelays.length === 0, id, relays.length === 0 ? "no relays tag with a URL" : `invalid relay URL(s) ${JSON.stringify(badRelays)}`);

  // KP-15 (R2): id-list tags
  if (j.applies("MIP00-KP-15")) {
    const problems: string[] = [];
    for (const name of ["mls_ciphersuite", "mls_extensions", "mls_proposals", "app_components"]) {
      const ts = tagsNamed(tags, name);
      if (ts.length !== 1) {
        problems.push(`${name} appears ${ts.length} times`);
        continue;
      }
      const vals = (ts[0] as string[]).slice(1);
      if (vals.length === 0) problems.push(`${name} is empty`);
      const bad = vals.filter((v) => !ID_RE_LOWER.test(v));
      if (bad.length) problems.push(`${name} has malformed ids ${JSON.stringify(bad)}`);
      if (new Set(vals).size !== vals.length) problems.push(`${name} repeats a value`);
    }
    j.check("MIP00-KP-15", problems.length === 0, id, problems.join("; "));
  }
  // KP-16 (R2): tag part only (the 0x8009 proof bytes are not verified here)
  if (j.applies("MIP00-KP-16") && !tagValues(tags, "app_components").includes("0x8009")) {
    j.fail("MIP00-KP-16", id, "app_components does not include 0x8009");
  }

  // KP-21 (SHOULD)
  j.check("MIP00-KP-21", tagsNamed(tags, "-").length === 0, id, "KeyPackage carries the NIP-70 `-` tag");

  // Content: decode once, judge KP-11..14, KP-17, KP-19
  const iTags = tagsNamed(tags, "i");
  const iVal = iTags[0]?.[1];
  let kp: KeyPackage | undefined;
  let kpBytes: Uint8Array | undefined;
  let ref: string | undefined;
  const raw = contentBytes(ev.content, encVal);
  if (profile === "R2") {
    // KP-13: MLSMessage(mls_key_package)
    const m = raw ? safeDecode(mlsMessageDecoder, raw) : undefined;
    if (!m || m[1] !== raw?.length || m[0].wireformat !== 5) {
      j.fail("MIP00-KP-13", id, raw === undefined ? "content is not base64" : "content is not an MLSMessage with wire format mls_key_package");
    } else {
      j.pass("MIP00-KP-13");
      kp = (m[0] as { keyPackage: KeyPackage }).keyPackage;
    }
  } else {
    const m = raw ? safeDecode(keyPackageDecoder, raw) : undefined;
    if (!m || m[1] !== raw?.length) {
      const framed = raw !== undefined && raw.length > 4 && raw[0] === 0 && raw[1] === 1 && raw[2] === 0 && raw[3] === 5;
      j.fail("MIP00-KP-12", id, raw === undefined ? "content is not decodable (base64/hex)" : framed ? "content is MLSMessage-framed (R2), not a bare KeyPackage" : m ? `${(raw?.length ?? 0) - m[1]} trailing bytes after the KeyPackage` : "content is not a TLS KeyPackage");
    } else {
      kp = m[0];
      kpBytes = raw;
      const sigOk = await verifyKeyPackageSignature(kp, kpBytes);
      j.check("MIP00-KP-12", sigOk, id, "KeyPackage signature does not verify");
    }
  }
  if (kp) {
    const suite = await getMarmotCiphersuite();
    try {
      ref = bytesToHex(await makeKeyPackageRef(kp, suite.hash));
    } catch {
      ref = undefined;
    }
    // KP-14
    const cred = kp.leafNode.credential as { credentialType: number; identity?: Uint8Array };
    const identity = cred.credentialType === 1 && cred.identity instanceof Uint8Array ? bytesToHex(cred.identity) : undefined;
    if (identity === undefined) j.fail("MIP00-KP-14", id, `credential type ${cred.credentialType} is not BasicCredential`);
    else if (identity.length !== 64) j.fail("MIP00-KP-14", id, `credential identity is ${identity.length / 2} bytes (expected 32)`);
    else j.check("MIP00-KP-14", identity === ev.pubkey, id, `credential identity ${identity} is not the event pubkey ${ev.pubkey}`);
    // KP-17 (R2)
    if (j.applies("MIP00-KP-17")) {
      const ln = kp.leafNode as { lifetime?: { notBefore: bigint; notAfter: bigint } };
      const lt = ln.lifetime;
      if (!lt) j.fail("MIP00-KP-17", id, "KeyPackage leaf has no Lifetime");
      else {
        const now = BigInt(ev.created_at);
        const span = lt.notAfter - lt.notBefore;
        const ok = span <= BigInt(MAX_KP_LIFETIME_SECS) && lt.notBefore <= now && now <= lt.notAfter;
        j.check("MIP00-KP-17", ok, id, `Lifetime ${lt.notBefore}..${lt.notAfter} (span ${span} s) is not current at created_at or exceeds ${MAX_KP_LIFETIME_SECS} s`);
      }
    }
  } else if (raw !== undefined || ev.content.length > 0) {
    j.fail("MIP00-KP-14", id, "credential cannot be read: content does not decode");
  }
  // KP-11 (30443 only)
  if (is30443) {
    if (iTags.length !== 1 || iTags[0]?.length !== 2 || !isHex(iVal)) j.fail("MIP00-KP-11", id, `expected exactly one hex i tag, found ${JSON.stringify(iTags)}`);
    else if (ref === undefined) j.fail("MIP00-KP-11", id, "i tag cannot be compared: content does not decode");
    else j.check("MIP00-KP-11", iVal.toLowerCase() === ref && (profile !== "R2" || iVal === ref), id, `i tag ${iVal} is not the KeyPackageRef ${ref}`);
    // KP-19 (R2 heuristic)
    if (d !== undefined) j.check("MIP00-KP-19", d !== ev.pubkey && d !== iVal?.toLowerCase() && d !== ref, id, "d tag equals the pubkey or the KeyPackageRef");
  }

  const lastResort = kp ? kp.extensions.some((e) => e.extensionType === 0x000a) : undefined;
  const info: { event: typeof ev; ref?: string; d?: string; lastResort?: boolean } = { event: ev };
  if (ref !== undefined) info.ref = ref;
  if (d !== undefined) info.d = d;
  if (lastResort !== undefined) info.lastResort = lastResort;
  ctx.keyPackages.set(id, info);
}

export function checkRelayListEvent(ctx: CheckContext, rec: CaptureRecord): void {
  const ev = rec.event;
  const relays = tagValues(ev.tags, "relay");
  const bad = relays.filter((u) => !isValidRelayUrl(u));
  const problems: string[] = [];
  if (relays.length === 0) problems.push("no relay tag");
  if (bad.length) problems.push(`invalid relay URL(s) ${JSON.stringify(bad)}`);
  if (ev.content !== "") problems.push("content is not empty");
  ctx.j.check("MIP00-KR-01", problems.length === 0, ev.id, problems.join("; "));
}

/** Kind 5 that targets a KeyPackage (k tag 30443/443, an a tag 30443:…, or an e tag naming a known KeyPackage). */
export function checkDeletionEvent(ctx: CheckContext, rec: CaptureRecord): void {
  const ev = rec.event;
  const ks = tagValues(ev.tags, "k");
  const es = tagValues(ev.tags, "e");
  const as = tagValues(ev.tags, "a");
  const kp30443Targets = es.filter((e) => ctx.keyPackages.get(e)?.event.kind === KIND_KP);
  const aKp = as.filter((a) => a.startsWith(`${KIND_KP}:`));
  const targets30443 = ks.includes(String(KIND_KP)) || aKp.length > 0 || kp30443Targets.length > 0;
  if (!targets30443) return;
  const problems: string[] = [];
  if (es.length === 0 && aKp.length === 0) problems.push("names no KeyPackage by e or a tag");
  for (const a of aKp) {
    const parts = a.split(":");
    if (parts.length !== 3 || parts[1] !== ev.pubkey || !isHex64(parts[2])) problems.push(`a tag ${JSON.stringify(a)} is not 30443:<own pubkey>:<d>`);
  }
  for (const e of es) if (!isHex64Lower(e)) problems.push(`e tag ${JSON.stringify(e)} is not an event id`);
  for (const e of kp30443Targets) {
    const kp = ctx.keyPackages.get(e);
    if (kp && kp.event.pubkey !== ev.pubkey) problems.push(`deletes KeyPackage ${e} of another author`);
  }
  ctx.j.check("MIP00-DEL-01", problems.length === 0, ev.id, problems.join("; "));
}

/** KP-01 (legacy 443 publication), KP-18 (rotation), KR-02 (published on every listed relay). */
export function checkKeyPackageSequences(ctx: CheckContext): void {
  const { j } = ctx;
  const kps = [...ctx.keyPackages.values()];
  const authorsWith30443 = new Set(kps.filter((k) => k.event.kind === KIND_KP).map((k) => k.event.pubkey));
  for (const k of kps) {
    if (k.event.kind === KIND_KP) j.pass("MIP00-KP-01");
    else if (k.event.kind === KIND_KP_LEGACY) {
      if (k.event.created_at >= LEGACY_443_DEADLINE) j.fail("MIP00-KP-01", k.event.id, "kind 443 KeyPackage published after the 2026-05-31 migration deadline");
      else if (!authorsWith30443.has(k.event.pubkey)) j.fail("MIP00-KP-01", k.event.id, "kind 443 KeyPackage without the 30443 it must accompany during migration");
      else j.pass("MIP00-KP-01");
    }
  }
  // KP-18: per (author, d), events in capture order have strictly increasing created_at.
  const slots = new Map<string, { id: string; created_at: number }[]>();
  for (const k of kps) {
    if (k.event.kind !== KIND_KP || k.d === undefined) continue;
    const key = `${k.event.pubkey}:${k.d}`;
    const list = slots.get(key) ?? [];
    list.push({ id: k.event.id, created_at: k.event.created_at });
    slots.set(key, list);
  }
  for (const list of slots.values()) {
    if (list.length < 2) continue;
    for (let i = 1; i < list.length; i++) {
      const prev = list[i - 1] as { id: string; created_at: number };
      const cur = list[i] as { id: string; created_at: number };
      j.check("MIP00-KP-18", cur.created_at > prev.created_at, [prev.id, cur.id], `rotation under the same d does not increase created_at (${prev.created_at} then ${cur.created_at})`);
    }
  }
  // KR-02 (SHOULD): relays where each author's 30443 was seen cover their 10051 list.
  const seenOn = new Map<string, Set<string>>();
  let anyRelayInfo = false;
  for (const r of ctx.events) {
    const relays = ctx.seenRelays.get(r.event.id);
    if (r.event.kind !== KIND_KP || relays === undefined) continue;
    anyRelayInfo = true;
    const s = seenOn.get(r.event.pubkey) ?? new Set<string>();
    for (const x of relays) s.add(x);
    for (const a of r.acks ?? []) if (a.ok) s.add(a.relay);
    seenOn.set(r.event.pubkey, s);
  }
  if (!anyRelayInfo) return;
  for (const r of ctx.events) {
    if (r.event.kind !== KIND_KP_RELAYS) continue;
    const s = seenOn.get(r.event.pubkey);
    if (!s) continue;
    const listed = tagValues(r.event.tags, "relay");
    const norm = (u: string): string => u.replace(/\/+$/, "");
    const have = new Set([...s].map(norm));
    const missingRelays = listed.filter((u) => !have.has(norm(u)));
    j.check("MIP00-KR-02", missingRelays.length === 0, r.event.id, `KeyPackages of ${r.event.pubkey.slice(0, 12)}… not seen on listed relay(s) ${missingRelays.join(", ")}`);
  }
}
