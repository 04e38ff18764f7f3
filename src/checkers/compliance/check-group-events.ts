/**
 * MIP-03 checks on kind 445: the outer envelope (black-box), decryption and MLSMessage decoding
 * with the keyring's epoch keys (white-box), and the cross-event rules (fresh signing keys,
 * publish-before-apply, race winners, the private MLS group id never leaking).
 */
import { createHash } from "node:crypto";
import { mlsMessageDecoder } from "ts-mls";
import { chacha20poly1305 } from "@noble/ciphers/chacha.js";
import { legacyConversationKey, tryDecryptContentR0 } from "../../engine/mip03-group-events.ts";
import { decodeGroupData } from "../../engine/mip01-group-data.ts";
import type { CaptureRecord } from "../../capture.ts";
import type { CheckContext, Decoded445 } from "./context.ts";
import { idAndSignatureProblem } from "./context.ts";
import type { GroupStateObservation } from "./keyring.ts";
import { bytesToHex, decodeBase64Memo, hexToBytes, isHex64Lower, isUnsignedIntString, tagsNamed, toBase64 } from "./util.ts";

export const KIND_GROUP_EVENT = 445;
const MIN_CONTENT = 28;
const CONTENT_APPLICATION = 1;
const CONTENT_PROPOSAL = 2;
const CONTENT_COMMIT = 3;
const WF_PUBLIC = 1;
const WF_PRIVATE = 2;

interface PreparedKey {
  epoch: number;
  key: Uint8Array;
  conv?: Uint8Array;
}

/** Keys per nostr group id, newest epoch first. */
export function prepareGroupKeys(ctx: CheckContext): Map<string, PreparedKey[]> {
  const out = new Map<string, PreparedKey[]>();
  for (const k of ctx.keyring?.groupEventKeys ?? []) {
    const list = out.get(k.nostrGroupId) ?? [];
    const key = hexToBytes(k.key);
    const pk: PreparedKey = { epoch: k.epoch, key };
    if (ctx.profile === "R0") {
      try {
        pk.conv = legacyConversationKey(key);
      } catch {
        // not a valid secp256k1 scalar: cannot be an R0 key
      }
    }
    list.push(pk);
    out.set(k.nostrGroupId, list);
  }
  for (const list of out.values()) list.sort((a, b) => b.epoch - a.epoch);
  return out;
}

/** The latest group-state observation for this group at or before `epoch`. */
const stateIndex = new WeakMap<readonly unknown[], Map<string, GroupStateObservation[]>>();

export function groupStateAt(ctx: CheckContext, nostrGroupId: string, epoch: number | undefined): GroupStateObservation | undefined {
  let index = stateIndex.get(ctx.observations);
  if (!index) {
    index = new Map();
    for (const o of ctx.observations) {
      if (o.kind !== "group-state") continue;
      const l = index.get(o.nostrGroupId) ?? [];
      l.push(o);
      index.set(o.nostrGroupId, l);
    }
    stateIndex.set(ctx.observations, index);
  }
  let best: GroupStateObservation | undefined;
  for (const o of index.get(nostrGroupId) ?? []) {
    if (o.kind !== "group-state" || o.nostrGroupId !== nostrGroupId) continue;
    if (epoch !== undefined && o.epoch > epoch) continue;
    if (!best || o.epoch > best.epoch) best = o;
  }
  return best;
}

const retentionCache = new WeakMap<GroupStateObservation, bigint | null | undefined>();

function retentionSecs(state: GroupStateObservation | undefined): bigint | null | undefined {
  if (!state || state.groupData === undefined) return undefined;
  if (retentionCache.has(state)) return retentionCache.get(state);
  let v: bigint | null | undefined;
  try {
    v = decodeGroupData(hexToBytes(state.groupData)).disappearingMessageSecs;
  } catch {
    v = undefined;
  }
  retentionCache.set(state, v);
  return v;
}

function decodeMls(ctx: CheckContext, id: string, plain: Uint8Array, keyEpoch: number): Decoded445 | undefined {
  let m: ReturnType<typeof mlsMessageDecoder>;
  try {
    m = mlsMessageDecoder(plain, 0);
  } catch {
    m = undefined;
  }
  if (!m) {
    ctx.j.fail("MIP03-GM-11", id, "decrypted bytes are not an MLSMessage");
    return undefined;
  }
  if (m[1] !== plain.length) {
    ctx.j.fail("MIP03-GM-11", id, `${plain.length - m[1]} trailing bytes after the MLSMessage`);
    return undefined;
  }
  const msg = m[0];
  const d: Decoded445 = { keyEpoch, wireformat: msg.wireformat, mlsDigest: createHash("sha256").update(plain).digest("hex") };
  if (msg.wireformat === WF_PRIVATE) {
    d.contentType = msg.privateMessage.contentType;
    d.mlsEpoch = msg.privateMessage.epoch;
    d.mlsGroupId = bytesToHex(msg.privateMessage.groupId);
  } else if (msg.wireformat === WF_PUBLIC) {
    const c = msg.publicMessage.content;
    d.contentType = c.contentType;
    d.mlsEpoch = c.epoch;
    d.mlsGroupId = bytesToHex(c.groupId);
    if (c.contentType === CONTENT_PROPOSAL) d.proposalType = c.proposal.proposalType;
    if (c.contentType === CONTENT_COMMIT) {
      d.commitProposalTypes = c.commit.proposals.flatMap((p) => (p.proposalOrRefType === 1 ? [p.proposal.proposalType] : []));
    }
  } else {
    ctx.j.fail("MIP03-GM-11", id, `MLSMessage wire format ${msg.wireformat} is not a framed group message`);
    return undefined;
  }
  ctx.j.pass("MIP03-GM-11");
  return d;
}

export function checkGroupEvent(ctx: CheckContext, rec: CaptureRecord, keys: Map<string, PreparedKey[]>): void {
  const { j, profile } = ctx;
  const ev = rec.event;
  const id = ev.id;

  // GM-10 (the 445's id and signature) is judged by judge() once every signature verdict is in.

  // GM-01
  const hs = tagsNamed(ev.tags, "h");
  const h = hs[0]?.[1];
  const hOk = hs.length === 1 && hs[0]?.length === 2 && isHex64Lower(h);
  j.check("MIP03-GM-01", hOk, id, hs.length !== 1 ? `445 has ${hs.length} h tags (expected exactly one)` : `h tag ${JSON.stringify(hs[0])} is not one lowercase 64-hex value`);

  // GM-06 (R2)
  const exp = tagsNamed(ev.tags, "expiration");
  if (j.applies("MIP03-GM-06")) {
    const others = ev.tags.filter((t) => t[0] !== "h" && t[0] !== "expiration").map((t) => t[0]);
    const expOk = exp.length <= 1 && exp.every((t) => t.length === 2 && isUnsignedIntString(t[1]));
    j.check("MIP03-GM-06", others.length === 0 && expOk, id, others.length ? `445 carries forbidden tag(s) ${JSON.stringify(others)}` : "expiration tag repeated or not an unsigned integer");
  }

  // GM-03 (R1/R2) and content shape
  let raw: Uint8Array | undefined;
  if (profile !== "R0") {
    raw = decodeBase64Memo(ev.content, ctx.b64);
    if (raw === undefined) j.fail("MIP03-GM-03", id, "445 content is not standard padded base64");
    else if (raw.length < MIN_CONTENT) j.fail("MIP03-GM-03", id, `445 content decodes to ${raw.length} bytes (< ${MIN_CONTENT})`);
    else j.pass("MIP03-GM-03");
  }

  // White-box: decrypt with the group's keys.
  const gkeys = hOk && h !== undefined ? keys.get(h) : undefined;
  let decoded: Decoded445 | undefined;
  const decryptRule = profile === "R0" ? "MIP03-GM-05" : "MIP03-GM-04";
  if (!gkeys || gkeys.length === 0) {
    j.needKeys(decryptRule, id, "no group-event key for this h");
    j.needKeys("MIP03-GM-11", id, "no group-event key for this h");
  } else if (profile === "R0") {
    let plain: Uint8Array | undefined;
    let epoch = -1;
    let malformed: string | undefined;
    for (const k of gkeys) {
      if (!k.conv) continue;
      try {
        plain = tryDecryptContentR0(k.conv, ev.content);
      } catch (e) {
        malformed = (e as Error).message;
        break;
      }
      if (plain) {
        epoch = k.epoch;
        break;
      }
    }
    if (plain) {
      j.pass("MIP03-GM-05");
      tally(ctx, h as string).opened++;
      decoded = decodeMls(ctx, id, plain, epoch);
    } else if (malformed !== undefined) j.fail("MIP03-GM-05", id, malformed);
    else tally(ctx, h as string).failed.push({ id, rule: "MIP03-GM-05", message: `NIP-44 payload does not authenticate under any of ${gkeys.length} epoch key(s)` });
  } else if (raw !== undefined && raw.length >= MIN_CONTENT) {
    const nonce = raw.subarray(0, 12);
    const body = raw.subarray(12);
    let plain: Uint8Array | undefined;
    let epoch = -1;
    for (let i = 0; i < gkeys.length; i++) {
      const k = gkeys[i] as PreparedKey;
      try {
        plain = chacha20poly1305(k.key, nonce).decrypt(body);
        epoch = k.epoch;
        // Move to front: consecutive 445s of a group are mostly of the same epoch.
        if (i > 0) gkeys.unshift(...gkeys.splice(i, 1));
        break;
      } catch {
        plain = undefined;
      }
    }
    if (plain) {
      j.pass("MIP03-GM-04");
      tally(ctx, h as string).opened++;
      decoded = decodeMls(ctx, id, plain, epoch);
    } else tally(ctx, h as string).failed.push({ id, rule: "MIP03-GM-04", message: `content does not decrypt under any of ${gkeys.length} retained epoch key(s) of this group` });
  }

  if (decoded) {
    ctx.decoded445.set(id, decoded);
    const handshake = decoded.contentType === CONTENT_COMMIT || decoded.contentType === CONTENT_PROPOSAL;
    // GM-12 (R2)
    if (handshake) j.check("MIP03-GM-12", decoded.wireformat === WF_PUBLIC, id, "handshake message is not a PublicMessage");
    else j.check("MIP03-GM-12", decoded.wireformat === WF_PRIVATE, id, "application message is not a PrivateMessage");
    // GM-07 (R2)
    if (handshake) j.check("MIP03-GM-07", exp.length === 0, id, "a commit/proposal 445 carries an expiration tag");
    // CM-05: SelfRemove proposals as PublicMessage (visible only when PublicMessage; a PrivateMessage proposal is judged from observations)
    if (decoded.proposalType === 0x000a) j.check("MIP03-CM-05", decoded.wireformat === WF_PUBLIC, id, "SelfRemove proposal is not a PublicMessage");
  } else if (!gkeys || gkeys.length === 0) {
    j.needKeys("MIP03-GM-12", id, "no group-event key for this h");
    if (exp.length > 0) j.needKeys("MIP03-GM-07", id, "content type unknown without keys");
  }

  // GM-08 / GM-09: expiration against the group's retention state
  if (hOk && h !== undefined && (j.applies("MIP03-GM-08") || j.applies("MIP03-GM-09"))) {
    const epoch = decoded?.mlsEpoch !== undefined ? Number(decoded.mlsEpoch) : undefined;
    const secs = retentionSecs(groupStateAt(ctx, h, epoch));
    if (exp.length === 0) {
      j.pass("MIP03-GM-09");
      if (secs !== undefined && secs !== null && secs > 0n && decoded?.contentType === CONTENT_APPLICATION) {
        j.fail("MIP03-GM-08", id, `group retention is ${secs} s but the application 445 has no expiration`);
      } else if (secs !== undefined && decoded) j.pass("MIP03-GM-08");
    } else if (secs === undefined) {
      j.needKeys("MIP03-GM-09", id, "group retention state unknown (no group-state observation)");
    } else if (secs === null) {
      j.fail("MIP03-GM-09", id, "445 carries expiration though the group has no disappearing duration");
    } else {
      j.pass("MIP03-GM-09");
      const v = Number(exp[0]?.[1]);
      if (decoded?.contentType === CONTENT_APPLICATION) {
        if (ctx.profile === "R2") {
          // R2: exactly the inner payload's created_at + secs.
          const inner = innerCreatedAt(ctx, id);
          if (inner === undefined) j.needKeys("MIP03-GM-08", id, "the inner rumor's created_at is unknown (no application observation)");
          else j.check("MIP03-GM-08", v === inner + Number(secs), id, `expiration ${v} is not inner created_at + ${secs} (${inner + Number(secs)})`);
        } else {
          // R1 (MDK): about the outer created_at + secs.
          const target = ev.created_at + Number(secs);
          j.check("MIP03-GM-08", Math.abs(v - target) <= 300, id, `expiration ${v} is not created_at + ${secs} (${target})`);
        }
      }
    }
  }
}

const innerTimes = new WeakMap<readonly unknown[], Map<string, number>>();

function innerCreatedAt(ctx: CheckContext, eventId: string): number | undefined {
  let m = innerTimes.get(ctx.observations);
  if (!m) {
    m = new Map();
    for (const o of ctx.observations) {
      if (o.kind !== "application" || typeof o.rumor !== "object" || o.rumor === null) continue;
      const c = (o.rumor as { created_at?: unknown }).created_at;
      if (typeof c === "number" && Number.isSafeInteger(c)) m.set(o.eventId, c);
    }
    innerTimes.set(ctx.observations, m);
  }
  return m.get(eventId);
}

function tally(ctx: CheckContext, h: string): { opened: number; failed: { id: string; rule: string; message: string }[] } {
  let t = ctx.decryptTally.get(h);
  if (!t) {
    t = { opened: 0, failed: [] };
    ctx.decryptTally.set(h, t);
  }
  return t;
}

/** Cross-event rules over all 445s and related events. */
export function checkGroupEventSequences(ctx: CheckContext): void {
  const { j } = ctx;

  // GM-04 / GM-05: a 445 that no key opens fails only when the keyring opens other 445s of the same
  // group; when it opens none, the keys do not fit (another profile's exporter, another group) and
  // the events are reported as needing keys instead.
  for (const t of ctx.decryptTally.values()) {
    for (const f of t.failed) {
      if (t.opened > 0) j.fail(f.rule, f.id, f.message);
      else j.needKeys(f.rule, f.id, `no keyring key opens any 445 of this group (${ctx.profile === "R0" ? "R0 needs the legacy exporter secret MLS-Exporter(nostr, nostr, 32)" : "keys of another group or profile?"})`);
    }
  }
  const groupEvents = ctx.events.filter((r) => r.event.kind === KIND_GROUP_EVENT);

  // GM-02: fresh keys
  if (groupEvents.length > 0) {
    const innerAuthors = new Set<string>();
    for (const o of ctx.observations) if (o.kind === "application" && typeof o.sender === "string") innerAuthors.add(o.sender);
    const byKey = new Map<string, string[]>();
    for (const r of groupEvents) {
      const l = byKey.get(r.event.pubkey) ?? [];
      l.push(r.event.id);
      byKey.set(r.event.pubkey, l);
    }
    for (const [pk, ids] of byKey) {
      if (ids.length > 1) j.fail("MIP03-GM-02", ids, `signing key ${pk.slice(0, 12)}… reused by ${ids.length} kind-445 events`);
      else if (ctx.accountKeys.has(pk) || innerAuthors.has(pk)) j.fail("MIP03-GM-02", ids, `445 signed with account key ${pk.slice(0, 12)}…`);
      else j.pass("MIP03-GM-02");
    }
  }

  // CM-09: publish before apply. For each decoded commit with a known source: no 445 from that
  // source in the commit's new epoch before the first relay OK.
  const hasAcks = ctx.events.some((r) => r.acks !== undefined && r.acks.length > 0);
  const bySource = new Map<string, CaptureRecord[]>();
  for (const r of ctx.events) {
    if (r.source === undefined) continue;
    const l = bySource.get(r.source) ?? [];
    l.push(r);
    bySource.set(r.source, l);
  }
  const commitIds = new Set<string>();
  for (const [id, d] of ctx.decoded445) if (d.contentType === CONTENT_COMMIT) commitIds.add(id);
  for (const o of ctx.observations) if (o.kind === "commit") commitIds.add(o.eventId);
  const firstOk = (r: CaptureRecord): number | undefined => {
    const oks = (r.acks ?? []).filter((a) => a.ok).map((a) => a.at);
    return oks.length ? Math.min(...oks) : undefined;
  };
  for (const r of groupEvents) {
    if (!commitIds.has(r.event.id)) continue;
    if (r.source === undefined || r.seenAt === undefined || !hasAcks) {
      j.needKeys("MIP03-CM-09", r.event.id, "capture lacks the publisher or relay acknowledgements of this commit");
      continue;
    }
    const okAt = firstOk(r);
    const dc = ctx.decoded445.get(r.event.id);
    const newEpoch = dc?.mlsEpoch !== undefined ? dc.mlsEpoch + 1n : undefined;
    const early = (bySource.get(r.source) ?? []).filter((o) => {
      if (o === r || o.seenAt === undefined || o.seenAt < (r.seenAt as number)) return false;
      if (okAt !== undefined && o.seenAt >= okAt) return false;
      if (o.event.kind !== KIND_GROUP_EVENT) return false; // gift wraps are judged by MIP02-WL-07
      const od = ctx.decoded445.get(o.event.id);
      return newEpoch !== undefined && od?.mlsEpoch === newEpoch && od.mlsGroupId === dc?.mlsGroupId;
    });
    j.check("MIP03-CM-09", early.length === 0, [r.event.id, ...early.map((o) => o.event.id)], okAt === undefined ? "the sender used the new epoch of a commit no relay acknowledged" : "the sender used the new epoch before the first relay OK of its commit");
  }

  // WL-07: a gift wrap goes out after its commit's relay OK.
  const welcomeLinks = new Map<string, string>();
  for (const o of ctx.observations) if (o.kind === "welcome" && o.commitEventId) welcomeLinks.set(o.eventId, o.commitEventId);
  const byId = new Map(ctx.events.map((r) => [r.event.id, r]));
  for (const w of ctx.events) {
    if (w.event.kind !== 1059) continue;
    const un = ctx.welcomes.get(w.event.id);
    if (un && un.rumor.kind !== 444) continue;
    if (w.seenAt === undefined || !hasAcks) {
      j.needKeys("MIP02-WL-07", w.event.id, "capture lacks publish times or relay acknowledgements");
      continue;
    }
    let commit: CaptureRecord | undefined;
    const linked = welcomeLinks.get(w.event.id);
    if (linked) commit = byId.get(linked);
    else if (w.source !== undefined) {
      const prior = (bySource.get(w.source) ?? []).filter((o) => o.event.kind === KIND_GROUP_EVENT && commitIds.has(o.event.id) && (o.seenAt ?? Infinity) <= (w.seenAt as number));
      commit = prior[prior.length - 1];
    }
    if (!commit) {
      j.needKeys("MIP02-WL-07", w.event.id, "the Add commit of this Welcome cannot be identified");
      continue;
    }
    const okAt = firstOk(commit);
    j.check("MIP02-WL-07", okAt !== undefined && okAt <= (w.seenAt as number), [w.event.id, commit.event.id], okAt === undefined ? "Welcome sent for a commit no relay acknowledged" : `Welcome sent ${(okAt - (w.seenAt as number)).toFixed(0)} ms before its commit's first relay OK`);
  }

  // CM-10 (R0/R1): race winner = earliest created_at, then lowest id.
  const races = new Map<string, CaptureRecord[]>();
  for (const r of groupEvents) {
    const d = ctx.decoded445.get(r.event.id);
    if (!d || d.contentType !== CONTENT_COMMIT || d.mlsEpoch === undefined) continue;
    const k = `${d.mlsGroupId}:${d.mlsEpoch}`;
    const l = races.get(k) ?? [];
    l.push(r); // groupEvents holds each event id once
    races.set(k, l);
  }
  for (const list of races.values()) {
    if (list.length < 2) continue;
    const sorted = [...list].sort((a, b) => a.event.created_at - b.event.created_at || (a.event.id < b.event.id ? -1 : a.event.id > b.event.id ? 1 : 0));
    const winner = (sorted[0] as CaptureRecord).event.id;
    const ids = new Set(list.map((r) => r.event.id));
    let judged = false;
    for (const o of ctx.observations) {
      if (o.kind !== "commit" || !ids.has(o.eventId) || o.decision === undefined || o.decision === "rejected") continue;
      judged = true;
      const applied = o.decision === "applied";
      const ok = o.eventId === winner ? applied : !applied;
      j.check("MIP03-CM-10", ok, [o.eventId, winner], `${o.agent ?? "an agent"} ${applied ? "kept" : "rolled back"} commit ${o.eventId.slice(0, 12)}… but the race winner is ${winner.slice(0, 12)}…`);
    }
    if (!judged) j.needKeys("MIP03-CM-10", winner, "no agent observation of which competing commit was kept");
  }

  // CORE-DUP-01 (R2): the same MLS bytes in two 445s must not be applied twice by one agent.
  if (j.applies("CORE-DUP-01")) {
    const byDigest = new Map<string, string[]>();
    for (const [id, d] of ctx.decoded445) {
      if (!d.mlsDigest) continue;
      const l = byDigest.get(d.mlsDigest) ?? [];
      l.push(id);
      byDigest.set(d.mlsDigest, l);
    }
    for (const ids of byDigest.values()) {
      if (ids.length < 2) continue;
      const set = new Set(ids);
      const perAgent = new Map<string, number>();
      let observed = false;
      for (const o of ctx.observations) {
        if ((o.kind === "application" || (o.kind === "commit" && o.decision !== "rejected")) && set.has(o.eventId)) {
          observed = true;
          const a = o.agent ?? "?";
          perAgent.set(a, (perAgent.get(a) ?? 0) + 1);
        }
      }
      if (!observed) j.needKeys("CORE-DUP-01", ids[0] as string, "no agent observation of the duplicated MLS message");
      else j.check("CORE-DUP-01", [...perAgent.values()].every((n) => n <= 1), ids, "an agent applied the same MLS message delivered in two 445 events twice");
    }
  }

  // GD-14: the MLS group id never appears in published events.
  const mlsIds = new Set<string>();
  for (const d of ctx.decoded445.values()) if (d.mlsGroupId) mlsIds.add(d.mlsGroupId);
  for (const o of ctx.observations) if (o.kind === "group-state" && typeof o.mlsGroupId === "string") mlsIds.add(o.mlsGroupId.toLowerCase());
  if (mlsIds.size === 0) {
    if (groupEvents.length > 0) j.needKeys("MIP01-GD-14", (groupEvents[0] as CaptureRecord).event.id, "the MLS group id is only known with keys");
  } else {
    const needles: { id: string; forms: string[] }[] = [...mlsIds].map((x) => ({ id: x, forms: [x, toBase64(hexToBytes(x)).replace(/=+$/, "")] }));
    for (const r of ctx.events) {
      const hay = `${r.event.content}\u0000${r.event.tags.map((t) => t.join("\u0000")).join("\u0001")}`;
      const lower = hay.toLowerCase();
      const hit = needles.find((n) => lower.includes(n.forms[0] as string) || hay.includes(n.forms[1] as string));
      if (hit) j.fail("MIP01-GD-14", r.event.id, `MLS group id ${hit.id.slice(0, 12)}… appears in a published kind-${r.event.kind} event`);
    }
    j.pass("MIP01-GD-14");
  }
}

export function idProblemFor(ctx: CheckContext, rec: CaptureRecord): string | undefined {
  return idAndSignatureProblem(rec.event, ctx.verifySignatures ? ctx.verifier : undefined);
}
