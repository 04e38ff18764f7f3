/**
 * The recorded history of a run, Jepsen style: an append-only list of entries, each saying who
 * (an agent, a relay, the nemesis, the runner) did what (an operation) and how it went
 * (invoke / ok / fail / info), at which virtual millisecond. Checkers read it after the run and
 * nothing else; reports, capsules and the capture export are derived from it.
 *
 * Full Nostr events appear once, in an `event` entry the first time anyone sees or publishes them;
 * every later entry names events by id. Everything in an entry is plain JSON (bigints become
 * numbers) so that a history serialises to JSONL and digests the same way every time.
 */
import { sha256 } from "@noble/hashes/sha2.js";
import { bytesToHex, utf8ToBytes } from "@noble/hashes/utils.js";
import type { Event as NostrEvent } from "nostr-tools";
import type { CaptureAck, CaptureRecord } from "./capture.ts";
import { HarnessError } from "./errors.ts";

export type HistoryEntryType = "invoke" | "ok" | "fail" | "info";

/** "runner", "nemesis", an agent name, or a relay URL. */
export type Actor = string;

/**
 * The operations the harness records. Data shapes are in `HistoryData`; the op list is open
 * (a string) so later producers can add their own, but these are the ones checkers rely on.
 */
export type KnownOp =
  | "event" // info: first sighting of a full Nostr event { event, relay?, source? }
  | "publish" // invoke { eventId, kind, purpose, relays, groupId?, epoch? } → ok|fail { eventId, acks }
  | "receive" // info { eventId, relay, kind }: an agent got an event from a relay
  | "process" // ok|fail { eventId, outcome, ... } one engine outcome
  | "decrypt" // ok { eventId, groupId, nostrGroupId, epoch, sender, rumorId, rumorKind, content }
  | "reject" // fail { eventId, code, message, groupId? }
  | "commit" // invoke { action, groupId, epoch } → ok { eventId, epoch, added, removed } | fail { code, message }
  | "commit-applied" // ok { eventId, groupId, epoch, committer, added, removed, rolledBack, selfRemoved }
  | "welcome" // ok { eventId, groupId, nostrGroupId, epoch, inviter }
  | "epoch" // info { groupId, nostrGroupId, epoch, members, epochCommitment }
  | "epoch-keys" // info { nostrGroupId, epoch, key, mediaExporter } (white-box, hex)
  | "send" // invoke { groupId, nostrGroupId, epoch, content, expectedRecipients } → ok { eventId } | fail
  | "keypackage" // ok { eventId, d, action: "publish"|"rotate"|"delete"|"consume" }
  | "online" | "offline" | "restart" // info { mode? }
  | "catch-up" // ok { mode, relays, events, complete, lost? }
  | "fault" // info { relay?, fault, params }
  | "probe" // ok|fail { probe: "removed"|"joiner", eventId, expect, outcome }
  | "step" // invoke|ok|fail { index, type, description, message? }
  | "check" // info { name, verdict, message }
  | "identity" // info { pubkey, secretKey } (white-box: simulated agents only)
  | "note"; // info { text }

export interface HistoryEntry {
  seq: number;
  /** Virtual milliseconds since the Unix epoch. */
  t: number;
  actor: Actor;
  type: HistoryEntryType;
  op: KnownOp | (string & {});
  data: Record<string, unknown>;
}

export class HistoryError extends HarnessError {}

/** Make a value plain JSON: bigint → number (or string when unsafe), Uint8Array → hex, drop undefined. */
export function toJsonSafe(value: unknown): unknown {
  if (typeof value === "bigint") {
    return value <= BigInt(Number.MAX_SAFE_INTEGER) && value >= -BigInt(Number.MAX_SAFE_INTEGER) ? Number(value) : value.toString();
  }
  if (value instanceof Uint8Array) return bytesToHex(value);
  if (Array.isArray(value)) return value.map(toJsonSafe);
  if (value !== null && typeof value === "object") {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
      if (v === undefined || typeof v === "function") continue;
      out[k] = toJsonSafe(v);
    }
    return out;
  }
  return value;
}

export interface HistoryClock {
  now(): number;
}

export class History {
  private readonly list: HistoryEntry[] = [];
  private readonly seen = new Map<string, NostrEvent>();
  private readonly seenOrder = new Map<string, number>();
  private readonly listeners: ((e: HistoryEntry) => void)[] = [];

  constructor(private readonly clock: HistoryClock) {}

  get entries(): readonly HistoryEntry[] {
    return this.list;
  }

  get length(): number {
    return this.list.length;
  }

  /** Append one entry. Data is copied into plain JSON. */
  record(actor: Actor, type: HistoryEntryType, op: HistoryEntry["op"], data: Record<string, unknown> = {}): HistoryEntry {
    const entry: HistoryEntry = {
      seq: this.list.length,
      t: this.clock.now(),
      actor,
      type,
      op,
      data: toJsonSafe(data) as Record<string, unknown>,
    };
    this.list.push(entry);
    for (const l of this.listeners) l(entry);
    return entry;
  }

  /** Record the full event the first time it is seen; returns its id either way. */
  noteEvent(event: NostrEvent, actor: Actor, extra: { relay?: string; source?: string } = {}): string {
    if (!this.seen.has(event.id)) {
      this.seen.set(event.id, event);
      this.seenOrder.set(event.id, this.seenOrder.size);
      this.record(actor, "info", "event", { event: { ...event, tags: event.tags.map((t) => [...t]) }, ...extra });
    }
    return event.id;
  }

  event(id: string): NostrEvent | undefined {
    return this.seen.get(id);
  }

  /** Ordinal of the event's first appearance in this history (undefined: never seen). */
  firstSeen(id: string): number | undefined {
    return this.seenOrder.get(id);
  }

  /** Every full event recorded, in first-seen order. */
  events(): NostrEvent[] {
    return [...this.seen.values()];
  }

  onEntry(listener: (e: HistoryEntry) => void): void {
    this.listeners.push(listener);
  }

  filter(pred: (e: HistoryEntry) => boolean): HistoryEntry[] {
    return this.list.filter(pred);
  }

  byOp(op: HistoryEntry["op"]): HistoryEntry[] {
    return this.list.filter((e) => e.op === op);
  }

  toJSONL(): string {
    return serializeHistory(this.list);
  }

  /** Structural SHA-256 digest (see historyDigest): same seed and scenario ⇒ same digest. */
  digest(mode: "structural" | "exact" = "structural"): string {
    return historyDigest(this.list, mode);
  }

  /** Rebuild from entries (e.g. a capsule's trace). */
  static fromEntries(entries: HistoryEntry[]): History {
    const h = new History({ now: () => entries.at(-1)?.t ?? 0 });
    for (const e of entries) {
      h.list.push(e);
      if (e.op === "event" && e.data.event && typeof e.data.event === "object") {
        const ev = e.data.event as NostrEvent;
        if (!h.seen.has(ev.id)) h.seen.set(ev.id, ev);
      }
    }
    return h;
  }
}

/** Stable JSON: keys sorted, so digests do not depend on insertion order. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  if (value !== null && typeof value === "object") {
    const obj = value as Record<string, unknown>;
    const keys = Object.keys(obj).filter((k) => obj[k] !== undefined).sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(obj[k])}`).join(",")}}`;
  }
  return JSON.stringify(value) ?? "null";
}

export function serializeHistory(entries: readonly HistoryEntry[]): string {
  return entries.map((e) => canonicalJson(e)).join("\n") + (entries.length ? "\n" : "");
}

/**
 * Digest of a history. "exact" hashes the canonical JSONL byte for byte: seeded engines draw every
 * random byte from the seed (MLS's rng and HPKE encapsulation included), so the same seed gives the
 * same exact digest, except where a real loopback server's port enters the traffic (a Blossom URL in
 * a media message) or a foreign peer draws its own randomness. "structural" (default) first replaces
 * every long hex value (event ids, keys, signatures, commitments) by the order in which it first
 * appears, every event content by its length and loopback ports by a placeholder: the same structure
 * (who did what, when, in which order, with what outcome, with what sizes) whatever the bytes.
 */
export function historyDigest(entries: readonly HistoryEntry[], mode: "structural" | "exact" = "structural"): string {
  const text = mode === "exact" ? serializeHistory(entries) : serializeHistory(normalizeHistory(entries));
  return bytesToHex(sha256(utf8ToBytes(text)));
}

/** Where two histories first differ (`mode` as for historyDigest); undefined when they do not. */
export interface HistoryDivergence {
  /** Index into both lists of the first entry that differs (or where one list ends). */
  index: number;
  mode: "structural" | "exact";
  /** The entries at that index (absent on the side that ended). */
  recorded?: HistoryEntry;
  replayed?: HistoryEntry;
}

export function firstDivergence(recorded: readonly HistoryEntry[], replayed: readonly HistoryEntry[], mode: "structural" | "exact" = "structural"): HistoryDivergence | undefined {
  const a = mode === "exact" ? recorded : normalizeHistory(recorded);
  const b = mode === "exact" ? replayed : normalizeHistory(replayed);
  const n = Math.max(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a[i];
    const y = b[i];
    if (x !== undefined && y !== undefined && canonicalJson(x) === canonicalJson(y)) continue;
    const d: HistoryDivergence = { index: i, mode };
    if (recorded[i] !== undefined) d.recorded = recorded[i];
    if (replayed[i] !== undefined) d.replayed = replayed[i];
    return d;
  }
  return undefined;
}

/**
 * How a second history stands to a first: the same in structure (normalised as for the structural
 * digest), the same byte for byte, and where it first departs: in structure if it does, else in
 * bytes (undefined when they are the same byte for byte).
 */
export function compareHistories(first: readonly HistoryEntry[], second: readonly HistoryEntry[]): { sameStructure: boolean; sameBytes: boolean; divergence?: HistoryDivergence } {
  const structural = firstDivergence(first, second, "structural");
  if (structural) return { sameStructure: false, sameBytes: false, divergence: structural };
  const bytes = firstDivergence(first, second, "exact");
  return bytes ? { sameStructure: true, sameBytes: false, divergence: bytes } : { sameStructure: true, sameBytes: true };
}

/** One line naming an entry: `#seq actor op/type`. */
export function describeEntry(e: HistoryEntry | undefined): string {
  return e === undefined ? "(end of history)" : `#${e.seq} ${e.actor} ${e.op}/${e.type}`;
}

const LONG_HEX = /^[0-9a-f]{32,}$/;

/** The history with random-looking values replaced by first-appearance ordinals (see historyDigest). */
export function normalizeHistory(entries: readonly HistoryEntry[]): HistoryEntry[] {
  const ids = new Map<string, string>();
  const norm = (v: unknown, key?: string): unknown => {
    if (typeof v === "string") {
      if (LONG_HEX.test(v)) {
        let o = ids.get(v);
        if (!o) {
          o = `#${ids.size + 1}`;
          ids.set(v, o);
        }
        return o;
      }
      // long text and recorded blob bytes (base64, media runs): their length is the structure
      if ((key === "content" || key === "blobB64") && v.length > 64) return `<${v.length} chars>`;
      // messages quoting ids (whole or shortened, e.g. "OK 10ad0a10 true"): replace embedded hex runs;
      // loopback servers (Blossom, WebSocket relays) listen on whatever port was free
      return v.replace(/(\/\/(?:127\.0\.0\.1|localhost)):\d+/g, "$1:<port>").replace(/\b[0-9a-f]{8,}\b/g, (m) => {
        let o = ids.get(m);
        if (!o) {
          o = `#${ids.size + 1}`;
          ids.set(m, o);
        }
        return o;
      });
    }
    if (Array.isArray(v)) return v.map((x) => norm(x));
    if (v !== null && typeof v === "object") {
      const out: Record<string, unknown> = {};
      // keys in sorted order: the ordinals (and the serialised text) must not depend on insertion order
      for (const k of Object.keys(v as Record<string, unknown>).sort()) out[k] = norm((v as Record<string, unknown>)[k], k);
      return out;
    }
    return v;
  };
  return entries.map((e) => norm(e) as HistoryEntry);
}

/** Parse a JSONL history; errors name the line. */
export function parseHistory(text: string): HistoryEntry[] {
  const out: HistoryEntry[] = [];
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.trim();
    if (!line) return;
    let v: unknown;
    try {
      v = JSON.parse(line);
    } catch (e) {
      throw new HistoryError("HISTORY_FORMAT", `line ${i + 1}: not JSON (${(e as Error).message})`, { line: i + 1 });
    }
    const o = v as Partial<HistoryEntry>;
    if (typeof o !== "object" || o === null || typeof o.seq !== "number" || typeof o.t !== "number" || typeof o.actor !== "string" || typeof o.op !== "string" || !["invoke", "ok", "fail", "info"].includes(String(o.type))) {
      throw new HistoryError("HISTORY_FORMAT", `line ${i + 1}: not a history entry (needs seq, t, actor, type, op)`, { line: i + 1 });
    }
    out.push({ ...(o as HistoryEntry), data: (o.data ?? {}) as Record<string, unknown> });
  });
  return out;
}

/**
 * The Nostr traffic of a run as capture records (the compliance checker's input): every event
 * with where it was first seen, who published it and the relays' acknowledgements.
 */
export function historyToCapture(entries: readonly HistoryEntry[]): CaptureRecord[] {
  const records = new Map<string, CaptureRecord>();
  const order: string[] = [];
  for (const e of entries) {
    if (e.op === "event") {
      const ev = e.data.event as NostrEvent;
      if (!records.has(ev.id)) {
        records.set(ev.id, {
          event: ev,
          relay: typeof e.data.relay === "string" ? e.data.relay : undefined,
          seenAt: e.t,
          source: typeof e.data.source === "string" ? e.data.source : undefined,
        });
        order.push(ev.id);
      }
    } else if (e.op === "publish" && (e.type === "ok" || e.type === "fail")) {
      const rec = records.get(String(e.data.eventId));
      const acks = (e.data.acks ?? []) as CaptureAck[];
      if (rec) {
        rec.acks = [...(rec.acks ?? []), ...acks.map((a) => ({ relay: a.relay, ok: a.ok, message: a.message, at: a.at }))];
        if (!rec.source) rec.source = e.actor;
        if (!rec.relay && acks[0]) rec.relay = acks[0].relay;
      }
    }
  }
  return order.map((id) => {
    const r = records.get(id) as CaptureRecord;
    const out: CaptureRecord = { event: r.event };
    if (r.relay !== undefined) out.relay = r.relay;
    if (r.seenAt !== undefined) out.seenAt = r.seenAt;
    if (r.source !== undefined) out.source = r.source;
    if (r.acks !== undefined) out.acks = r.acks;
    return out;
  });
}

/** The white-box keyring the compliance checker uses to open 445s, gift wraps and check outcomes. */
export interface HistoryKeyring {
  groupEventKeys: { nostrGroupId: string; epoch: number; key: string; mediaExporter?: string }[];
  /** Secret keys (hex) of the simulated agents, so gift wraps addressed to them can be opened. */
  recipientSecretKeys: string[];
  /** What the agents concluded: decrypted rumors and commit decisions, by event id. */
  observations: HistoryObservation[];
}

/** Shapes follow the compliance checker's keyring (src/checkers/compliance/keyring.ts). */
export type HistoryObservation =
  | { kind: "application"; agent: string; eventId: string; nostrGroupId?: string; epoch: number; sender: string; rumor?: unknown }
  | { kind: "commit"; agent: string; eventId: string; nostrGroupId?: string; epoch: number; committer?: string; decision: "applied" | "rolled-back" | "rejected"; removed?: string[] }
  | { kind: "proposal"; agent: string; eventId: string; nostrGroupId?: string; epoch: number; sender: string; proposal: string }
  | { kind: "welcome"; eventId: string; recipient: string; joined: boolean; nostrGroupId?: string }
  | { kind: "rejected"; agent: string; eventId: string; code: string; message: string }
  | { kind: "media"; agent: string; eventId: string; url: string; nostrGroupId?: string; epoch?: number; blobSha256?: string; blob?: string }
  | { kind: "group-image"; agent: string; nostrGroupId: string; epoch?: number; groupData: string; blob?: string; uploadPubkey?: string }
  | { kind: "group-state"; nostrGroupId: string; epoch: number; leaves: Record<string, string> };

/**
 * Build the keyring from the history: every `epoch-keys` entry (one per agent per epoch change,
 * so every epoch's key is kept), the agents' secret keys (recorded at start as `identity` info
 * entries with `secretKey`), and observations from decrypt / commit-applied / reject entries, plus
 * what the checker's media, group-image and credential rules need: `media` (ok: a member accepted a
 * fetched blob), `group-image` (the setter's upload, members' fetches) and `epoch` entries with
 * `leaves` (leaf index of each member).
 */
export function historyToKeyring(entries: readonly HistoryEntry[]): HistoryKeyring {
  const keys = new Map<string, HistoryKeyring["groupEventKeys"][number]>();
  const secrets = new Set<string>();
  const observations: HistoryObservation[] = [];
  const seenObs = new Set<string>();
  const once = (k: string): boolean => (seenObs.has(k) ? false : (seenObs.add(k), true));
  const appliedAt = new Map<string, string>();
  const commitObs = new Map<string, Extract<HistoryObservation, { kind: "commit" }>>();
  const processed = new Set<string>();
  const media: Extract<HistoryObservation, { kind: "media" }>[] = [];
  const blobs = new Map<string, string>();
  for (const e of entries) {
    const d = e.data;
    if (e.op === "epoch-keys") {
      // competing commits fork an epoch: keep every distinct key
      const k = `${String(d.nostrGroupId)}:${String(d.epoch)}:${String(d.key)}`;
      if (!keys.has(k)) {
        const rec: HistoryKeyring["groupEventKeys"][number] = { nostrGroupId: String(d.nostrGroupId), epoch: Number(d.epoch), key: String(d.key) };
        if (typeof d.mediaExporter === "string") rec.mediaExporter = d.mediaExporter;
        keys.set(k, rec);
      }
    } else if (e.op === "identity" && typeof d.secretKey === "string") {
      secrets.add(d.secretKey);
    } else if (e.op === "decrypt" && e.type === "ok") {
      processed.add(`${e.actor}|${String(d.eventId)}`);
      // one observation per event is enough: every member decrypts the same rumor
      if (once(`a:${String(d.eventId)}`)) {
        observations.push({ kind: "application", agent: e.actor, eventId: String(d.eventId), nostrGroupId: d.nostrGroupId as string | undefined, epoch: Number(d.epoch), sender: String(d.sender), rumor: d.rumor });
      }
    } else if (e.op === "commit-applied" || (e.op === "commit" && e.type === "ok")) {
      // per agent: what it applied (its own commits once a relay acknowledged them, and others');
      // a commit that replaced another (race resolution) means the agent rolled the other back
      const epoch = Number(d.epoch);
      const key = `${e.actor}|${String(d.groupId)}|${epoch}`;
      if (e.op === "commit-applied" && d.rolledBack) {
        const previous = appliedAt.get(key);
        const prevObs = previous ? commitObs.get(`${e.actor}|${previous}`) : undefined;
        // the final decision counts: the earlier commit of this epoch was rolled back
        if (prevObs && previous !== String(d.eventId)) prevObs.decision = "rolled-back";
      }
      appliedAt.set(key, String(d.eventId));
      const obsKey = `${e.actor}|${String(d.eventId)}`;
      const existing = commitObs.get(obsKey);
      if (existing) existing.decision = "applied";
      else {
        const removed = Array.isArray(d.removed) ? d.removed.filter((x): x is string => typeof x === "string") : [];
        const o: Extract<HistoryObservation, { kind: "commit" }> = { kind: "commit", agent: e.actor, eventId: String(d.eventId), nostrGroupId: d.nostrGroupId as string | undefined, epoch, ...(d.committer ? { committer: String(d.committer) } : {}), decision: "applied", ...(removed.length > 0 ? { removed } : {}) };
        commitObs.set(obsKey, o);
        observations.push(o);
      }
      processed.add(`${e.actor}|${String(d.eventId)}`);
    } else if (e.op === "process" && d.outcome === "proposal") {
      if (once(`p:${String(d.eventId)}`)) {
        observations.push({ kind: "proposal", agent: e.actor, eventId: String(d.eventId), nostrGroupId: d.nostrGroupId as string | undefined, epoch: Number(d.epoch), sender: String(d.sender), proposal: String(d.proposal) });
      }
    } else if (e.op === "welcome" && e.type === "ok") {
      processed.add(`${e.actor}|${String(d.eventId)}`);
      observations.push({ kind: "welcome", eventId: String(d.eventId), recipient: String(d.recipient ?? ""), joined: true, nostrGroupId: d.nostrGroupId as string | undefined });
    } else if (e.op === "media" && e.type === "ok" && typeof d.eventId === "string" && typeof d.url === "string") {
      // what a member accepted: the blob it fetched and decrypted (its bytes travel once per run, on
      // whichever record fetched them first, keyed by their measured SHA-256)
      if (once(`m:${e.actor}|${d.eventId}|${d.url}`)) {
        const o: Extract<HistoryObservation, { kind: "media" }> = { kind: "media", agent: e.actor, eventId: d.eventId, url: d.url };
        if (typeof d.nostrGroupId === "string") o.nostrGroupId = d.nostrGroupId;
        if (d.epoch !== undefined) o.epoch = Number(d.epoch);
        if (typeof d.blobSha256 === "string") o.blobSha256 = d.blobSha256;
        media.push(o);
        observations.push(o);
      }
      if (typeof d.blobSha256 === "string" && typeof d.blobB64 === "string") blobs.set(d.blobSha256, d.blobB64);
    } else if (e.op === "group-image" && e.type === "ok" && typeof d.nostrGroupId === "string" && typeof d.groupData === "string") {
      // the setter's upload (its bytes and upload identity) and members' fetches that kept the bytes
      const blob = typeof d.blobB64 === "string" ? d.blobB64 : undefined;
      const uploadPubkey = typeof d.uploadPubkey === "string" ? d.uploadPubkey : undefined;
      if ((blob !== undefined || uploadPubkey !== undefined) && once(`gi:${e.actor}|${d.nostrGroupId}|${d.groupData}`)) {
        observations.push({ kind: "group-image", agent: e.actor, nostrGroupId: d.nostrGroupId, ...(d.epoch !== undefined ? { epoch: Number(d.epoch) } : {}), groupData: d.groupData, ...(blob !== undefined ? { blob } : {}), ...(uploadPubkey !== undefined ? { uploadPubkey } : {}) });
      }
    } else if (e.op === "epoch" && Array.isArray(d.leaves) && Array.isArray(d.members) && typeof d.nostrGroupId === "string") {
      // leaf index → credential identity per epoch (MIP00-CR-01); members agreeing on an epoch's
      // leaves give one observation (150-member runs would otherwise carry one per member)
      const leaves: Record<string, string> = {};
      (d.members as unknown[]).forEach((m, i) => {
        const leaf = (d.leaves as unknown[])[i];
        if (typeof m === "string" && typeof leaf === "number" && leaf >= 0) leaves[String(leaf)] = m;
      });
      if (once(`gs:${d.nostrGroupId}|${String(d.epoch)}|${JSON.stringify(leaves)}`)) observations.push({ kind: "group-state", nostrGroupId: d.nostrGroupId, epoch: Number(d.epoch), leaves });
    } else if (e.op === "reject") {
      // a replay of an event this agent already processed (e.g. its own Welcome fetched again after a restart) is not a new decision
      if (processed.has(`${e.actor}|${String(d.eventId)}`)) continue;
      observations.push({ kind: "rejected", agent: e.actor, eventId: String(d.eventId), code: String(d.code), message: String(d.message ?? "") });
    }
  }
  for (const o of media) {
    const b = o.blobSha256 !== undefined ? blobs.get(o.blobSha256) : undefined;
    if (b !== undefined) o.blob = b;
  }
  return {
    groupEventKeys: [...keys.values()].sort((a, b) => (a.nostrGroupId < b.nostrGroupId ? -1 : a.nostrGroupId > b.nostrGroupId ? 1 : a.epoch - b.epoch)),
    recipientSecretKeys: [...secrets].sort(),
    observations,
  };
}
