/**
 * One relay's stored events, with the NIP-01 storage rules: replaceable and addressable events
 * (same-timestamp lowest-id rule), NIP-09 deletions (author only, by `e` and `a`), NIP-40
 * expiration, and an optional retention limit (oldest created_at evicted first).
 * Indexes (kind, author, every single-letter tag) are kept sorted newest first.
 */
import { compareNewestFirst, compileFilter, matchCompiled } from "./filter.ts";
import type { Filter, NostrEvent } from "./messages.ts";

export type KindClass = "regular" | "replaceable" | "ephemeral" | "addressable";

export function kindClass(kind: number): KindClass {
  if (kind === 0 || kind === 3 || (kind >= 10000 && kind < 20000)) return "replaceable";
  if (kind >= 20000 && kind < 30000) return "ephemeral";
  if (kind >= 30000 && kind < 40000) return "addressable";
  return "regular";
}

export function dTag(e: NostrEvent): string {
  const t = e.tags.find((x) => x[0] === "d");
  return t?.[1] ?? "";
}

/** `kind:pubkey:d` for addressable, `kind:pubkey` for replaceable, undefined otherwise. */
export function addressOf(e: NostrEvent): string | undefined {
  const c = kindClass(e.kind);
  if (c === "replaceable") return `${e.kind}:${e.pubkey}`;
  if (c === "addressable") return `${e.kind}:${e.pubkey}:${dTag(e)}`;
  return undefined;
}

/** NIP-40: the expiration timestamp in seconds, when the event has a valid one. */
export function expirationOf(e: NostrEvent): number | undefined {
  const t = e.tags.find((x) => x[0] === "expiration");
  if (!t || t[1] === undefined || !/^\d+$/.test(t[1])) return undefined;
  return Number(t[1]);
}

export function isProtected(e: NostrEvent): boolean {
  return e.tags.some((t) => t.length === 1 && t[0] === "-");
}

function findIndex(arr: NostrEvent[], e: NostrEvent): number {
  let lo = 0, hi = arr.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (compareNewestFirst(arr[mid] as NostrEvent, e) < 0) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

function sortedInsert(arr: NostrEvent[], e: NostrEvent): void {
  const i = findIndex(arr, e);
  if (i === arr.length) arr.push(e);
  else arr.splice(i, 0, e);
}

function sortedRemove(arr: NostrEvent[], e: NostrEvent): void {
  const i = findIndex(arr, e);
  if (arr[i]?.id === e.id) arr.splice(i, 1);
}

export type StoreResult =
  | { stored: true; replaced?: NostrEvent; evicted: NostrEvent[] }
  | { stored: false; reason: string };

export interface StoreOptions {
  /** Keep at most this many events; the oldest (by created_at) are evicted. */
  maxEvents?: number;
}

export class EventStore {
  private readonly all: NostrEvent[] = [];
  private readonly byId = new Map<string, NostrEvent>();
  private readonly byKind = new Map<number, NostrEvent[]>();
  private readonly byAuthor = new Map<string, NostrEvent[]>();
  private readonly byTag = new Map<string, NostrEvent[]>();
  private readonly byAddress = new Map<string, NostrEvent>();
  /** Deleted ids with the author who deleted them (NIP-09: only the author's own events go). */
  private readonly deletedIds = new Map<string, string>();
  /** Address → newest deletion created_at (events at or before it are deleted). */
  private readonly deletedAddresses = new Map<string, number>();
  maxEvents: number | undefined;

  constructor(opts: StoreOptions = {}) {
    this.maxEvents = opts.maxEvents;
  }

  get size(): number {
    return this.all.length;
  }

  has(id: string): boolean {
    return this.byId.has(id);
  }

  get(id: string): NostrEvent | undefined {
    return this.byId.get(id);
  }

  /** Every stored event, newest first. */
  events(): readonly NostrEvent[] {
    return this.all;
  }

  /** Was this id deleted by this author (so it must not be accepted again)? */
  isDeleted(e: NostrEvent): boolean {
    if (this.deletedIds.get(e.id) === e.pubkey) return true;
    const addr = addressOf(e);
    if (addr !== undefined) {
      const until = this.deletedAddresses.get(addr);
      if (until !== undefined && e.created_at <= until) return true;
    }
    return false;
  }

  /** Store a non-ephemeral event that has already been validated. */
  put(e: NostrEvent): StoreResult {
    if (this.byId.has(e.id)) return { stored: false, reason: "duplicate: already have this event" };
    if (this.isDeleted(e)) return { stored: false, reason: "blocked: this event was deleted by its author" };
    let replaced: NostrEvent | undefined;
    const addr = addressOf(e);
    if (addr !== undefined) {
      const old = this.byAddress.get(addr);
      if (old) {
        // Keep the newer one; on equal created_at the lowest id wins.
        if (compareNewestFirst(old, e) < 0) {
          return { stored: false, reason: "duplicate: a newer version of this replaceable event is stored" };
        }
        this.remove(old);
        replaced = old;
      }
      this.byAddress.set(addr, e);
    }
    if (e.kind === 5) this.applyDeletion(e);
    this.index(e);
    const evicted: NostrEvent[] = [];
    if (this.maxEvents !== undefined) {
      while (this.all.length > this.maxEvents) {
        const oldest = this.all[this.all.length - 1] as NostrEvent;
        this.remove(oldest);
        evicted.push(oldest);
      }
    }
    return { stored: true, replaced, evicted };
  }

  /** Evict oldest events beyond `maxEvents` now (used when a retention limit is lowered). */
  enforceRetention(): NostrEvent[] {
    const evicted: NostrEvent[] = [];
    if (this.maxEvents === undefined) return evicted;
    while (this.all.length > this.maxEvents) {
      const oldest = this.all[this.all.length - 1] as NostrEvent;
      this.remove(oldest);
      evicted.push(oldest);
    }
    return evicted;
  }

  private applyDeletion(del: NostrEvent): void {
    for (const t of del.tags) {
      if (t[0] === "e" && t[1]) {
        const target = this.byId.get(t[1]);
        if (target && target.pubkey !== del.pubkey) continue;
        if (target && target.kind === 5) continue;
        this.deletedIds.set(t[1], del.pubkey);
        if (target) this.remove(target);
      } else if (t[0] === "a" && t[1]) {
        const parts = t[1].split(":");
        if (parts.length < 2 || parts[1] !== del.pubkey) continue;
        const kind = Number(parts[0]);
        if (!Number.isInteger(kind)) continue;
        const cls = kindClass(kind);
        if (cls !== "replaceable" && cls !== "addressable") continue;
        // Replaceable events are addressed `kind:pubkey:` (empty d); addressable ones `kind:pubkey:d`.
        const addr = cls === "replaceable" ? `${kind}:${parts[1]}` : `${kind}:${parts[1]}:${parts.slice(2).join(":")}`;
        const prev = this.deletedAddresses.get(addr) ?? -1;
        this.deletedAddresses.set(addr, Math.max(prev, del.created_at));
        const target = this.byAddress.get(addr);
        if (target && target.created_at <= del.created_at) this.remove(target);
      }
    }
  }

  private index(e: NostrEvent): void {
    this.byId.set(e.id, e);
    sortedInsertLast(this.all, e);
    sortedInsertLast(this.listFor(this.byKind, e.kind), e);
    sortedInsertLast(this.listFor(this.byAuthor, e.pubkey), e);
    const seen = new Set<string>();
    for (const t of e.tags) {
      if (t.length < 2 || t[0] === undefined) continue;
      const key = `${t[0]}\u0000${t[1]}`;
      if (seen.has(key)) continue;
      seen.add(key);
      sortedInsertLast(this.listFor(this.byTag, key), e);
    }
  }

  private listFor<K>(map: Map<K, NostrEvent[]>, key: K): NostrEvent[] {
    let l = map.get(key);
    if (!l) {
      l = [];
      map.set(key, l);
    }
    return l;
  }

  /** Remove one stored event from every index. */
  remove(e: NostrEvent): void {
    if (!this.byId.has(e.id)) return;
    this.byId.delete(e.id);
    sortedRemove(this.all, e);
    const k = this.byKind.get(e.kind);
    if (k) sortedRemove(k, e);
    const a = this.byAuthor.get(e.pubkey);
    if (a) sortedRemove(a, e);
    for (const t of e.tags) {
      if (t.length < 2) continue;
      const l = this.byTag.get(`${t[0]}\u0000${t[1]}`);
      if (l) sortedRemove(l, e);
    }
    const addr = addressOf(e);
    if (addr !== undefined && this.byAddress.get(addr)?.id === e.id) this.byAddress.delete(addr);
  }

  /** Drop events whose NIP-40 expiration has passed. Returns how many went. */
  purgeExpired(nowSec: number): number {
    const gone = this.all.filter((e) => {
      const x = expirationOf(e);
      return x !== undefined && x <= nowSec;
    });
    for (const e of gone) this.remove(e);
    return gone.length;
  }

  /**
   * Events matching any of `filters`, newest first, each filter's `limit` applied to its own
   * matches (NIP-01), expired events left out.
   */
  query(filters: readonly Filter[], nowSec: number, maxLimit = Infinity): NostrEvent[] {
    if (filters.length === 1) return this.queryOne(filters[0] as Filter, nowSec, maxLimit);
    const seen = new Map<string, NostrEvent>();
    for (const f of filters) for (const e of this.queryOne(f, nowSec, maxLimit)) seen.set(e.id, e);
    return [...seen.values()].sort(compareNewestFirst);
  }

  private queryOne(f: Filter, nowSec: number, maxLimit: number): NostrEvent[] {
    const limit = Math.min(f.limit ?? Infinity, maxLimit);
    if (limit <= 0) return [];
    const cf = compileFilter(f);
    const out: NostrEvent[] = [];
    for (const e of this.candidates(f)) {
      if (!matchCompiled(cf, e)) continue;
      const x = expirationOf(e);
      if (x !== undefined && x <= nowSec) continue;
      out.push(e);
      if (out.length >= limit) break;
    }
    return out;
  }

  /** The smallest sorted candidate list an index gives for this filter. */
  private candidates(f: Filter): readonly NostrEvent[] {
    if (f.ids) {
      const l: NostrEvent[] = [];
      for (const id of f.ids) {
        const e = this.byId.get(id);
        if (e) l.push(e);
      }
      return l.sort(compareNewestFirst);
    }
    const options: (readonly NostrEvent[])[] = [];
    const union = (lists: (NostrEvent[] | undefined)[]): readonly NostrEvent[] => {
      const present = lists.filter((x): x is NostrEvent[] => x !== undefined && x.length > 0);
      if (present.length === 0) return [];
      if (present.length === 1) return present[0] as NostrEvent[];
      const m = new Map<string, NostrEvent>();
      for (const l of present) for (const e of l) m.set(e.id, e);
      return [...m.values()].sort(compareNewestFirst);
    };
    for (const [key, values] of Object.entries(f)) {
      if (key.startsWith("#") && Array.isArray(values)) {
        options.push(union((values as string[]).map((v) => this.byTag.get(`${key.slice(1)}\u0000${v}`))));
      }
    }
    if (f.authors) options.push(union(f.authors.map((a) => this.byAuthor.get(a))));
    if (f.kinds) options.push(union(f.kinds.map((k) => this.byKind.get(k))));
    if (options.length === 0) return this.all;
    let best = options[0] as readonly NostrEvent[];
    for (const o of options) if (o.length < best.length) best = o;
    return best;
  }
}

/** Insert keeping newest-first order; fast paths for the newest and the oldest so far. */
function sortedInsertLast(arr: NostrEvent[], e: NostrEvent): void {
  const last = arr[arr.length - 1];
  if (last === undefined || compareNewestFirst(last, e) < 0) arr.push(e);
  else if (compareNewestFirst(e, arr[0] as NostrEvent) < 0) arr.unshift(e);
  else sortedInsert(arr, e);
}
