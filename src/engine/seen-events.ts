/**
 * The engine's memory of processed events, for deduplication across restarts: event ids and the
 * SHA-256 of event contents (a re-signed copy of a 445 carries the same content under a new id).
 *
 * Entries live in memory (insertion-ordered sets) and in the engine's storage as fixed-size
 * segments under `seen/<sequence>`, each a run of 33-byte records (1 type byte: 0 = event id,
 * 1 = content hash; then the 32 bytes). Only the newest segment is rewritten when entries are
 * added; when more than `maxEntries` are held, the oldest segment is dropped from storage and
 * from memory, so both stay bounded. Strings that are not 64 lowercase hex characters (malformed
 * events) are not remembered: such events are rejected again on sight.
 */
import { bytesToHex, hexToBytes } from "@noble/hashes/utils.js";
import { HarnessError } from "../errors.ts";
import type { EngineStorage } from "./storage.ts";

export class SeenEventsError extends HarnessError {}

const PREFIX = "seen/";
const RECORD = 33;
const HEX64 = /^[0-9a-f]{64}$/;
const TYPE_ID = 0;
const TYPE_CONTENT = 1;

interface Segment {
  seq: number;
  /** `count` records of RECORD bytes, room for segmentSize. */
  bytes: Uint8Array;
  count: number;
}

export interface SeenEventsOptions {
  /** Bound on remembered entries (ids and content hashes together), default 100,000. */
  maxEntries?: number;
  /** Records per stored segment, default 256. */
  segmentSize?: number;
}

export class SeenEvents {
  private readonly ids = new Set<string>();
  private readonly contents = new Set<string>();
  private readonly segments: Segment[] = [];
  private dirty = false;
  private held = 0;
  /** Sequence number after the newest segment already in storage. */
  private firstUnwritten = 1;
  readonly maxEntries: number;
  readonly segmentSize: number;

  constructor(
    private readonly storage: EngineStorage,
    opts: SeenEventsOptions = {},
  ) {
    this.maxEntries = opts.maxEntries ?? 100_000;
    this.segmentSize = opts.segmentSize ?? 256;
    if (!Number.isInteger(this.segmentSize) || this.segmentSize < 1) throw new SeenEventsError("ENGINE_BAD_OPTION", "segmentSize must be a positive integer");
    if (!Number.isInteger(this.maxEntries) || this.maxEntries < this.segmentSize) throw new SeenEventsError("ENGINE_BAD_OPTION", "maxEntries must be an integer of at least segmentSize");
  }

  /** Reads the stored segments (oldest first). A segment that is not a whole number of records is corrupt. */
  async load(): Promise<void> {
    for (const key of await this.storage.list(PREFIX)) {
      const seq = Number(key.slice(PREFIX.length));
      const raw = await this.storage.get(key);
      if (!Number.isSafeInteger(seq) || raw === undefined) continue;
      if (raw.length % RECORD !== 0) throw new SeenEventsError("STORAGE_CORRUPT", `${key} is not a whole number of ${RECORD}-byte records (${raw.length} bytes)`);
      const count = raw.length / RECORD;
      const seg: Segment = { seq, bytes: new Uint8Array(Math.max(count, this.segmentSize) * RECORD), count };
      seg.bytes.set(raw);
      for (let i = 0; i < raw.length; i += RECORD) {
        const type = raw[i] as number;
        if (type !== TYPE_ID && type !== TYPE_CONTENT) throw new SeenEventsError("STORAGE_CORRUPT", `${key} holds a record of unknown type ${type}`);
        (type === TYPE_ID ? this.ids : this.contents).add(bytesToHex(raw.subarray(i + 1, i + RECORD)));
      }
      this.segments.push(seg);
      this.held += count;
    }
    this.firstUnwritten = (this.segments.at(-1)?.seq ?? 0) + 1;
  }

  hasId(id: string): boolean {
    return this.ids.has(id);
  }

  hasContent(sha256Hex: string): boolean {
    return this.contents.has(sha256Hex);
  }

  addId(id: string): void {
    if (this.ids.has(id) || !HEX64.test(id)) return;
    this.ids.add(id);
    this.record(TYPE_ID, id);
  }

  addContent(sha256Hex: string): void {
    if (this.contents.has(sha256Hex) || !HEX64.test(sha256Hex)) return;
    this.contents.add(sha256Hex);
    this.record(TYPE_CONTENT, sha256Hex);
  }

  /** Entries remembered (ids and content hashes). */
  get size(): number {
    return this.ids.size + this.contents.size;
  }

  private record(type: number, hex: string): void {
    let last = this.segments.at(-1);
    if (last === undefined || last.count >= this.segmentSize) {
      last = { seq: (last?.seq ?? 0) + 1, bytes: new Uint8Array(this.segmentSize * RECORD), count: 0 };
      this.segments.push(last);
    }
    last.bytes[last.count * RECORD] = type;
    last.bytes.set(hexToBytes(hex), last.count * RECORD + 1);
    last.count++;
    this.held++;
    this.dirty = true;
  }

  /** Writes the segments that changed since the last flush, and drops the oldest ones beyond the bound. */
  async flush(): Promise<void> {
    if (!this.dirty) return;
    this.dirty = false;
    while (this.held > this.maxEntries && this.segments.length > 1) {
      const old = this.segments.shift() as Segment;
      this.held -= old.count;
      for (let i = 0; i < old.count * RECORD; i += RECORD) (old.bytes[i] === TYPE_ID ? this.ids : this.contents).delete(bytesToHex(old.bytes.subarray(i + 1, i + RECORD)));
      await this.storage.delete(segmentKey(old.seq));
    }
    // The last written segment may have grown; newer ones are new.
    for (const seg of this.segments) {
      if (seg.seq < this.firstUnwritten - 1) continue;
      await this.storage.put(segmentKey(seg.seq), seg.bytes.subarray(0, seg.count * RECORD));
    }
    this.firstUnwritten = (this.segments.at(-1)?.seq ?? 0) + 1;
  }
}

function segmentKey(seq: number): string {
  return `${PREFIX}${seq.toString().padStart(20, "0")}`;
}

/** A set that keeps only its `limit` most recently added members (insertion order; oldest dropped first). */
export class RecentSet<T> {
  private readonly items = new Set<T>();
  constructor(readonly limit: number) {
    if (!Number.isInteger(limit) || limit < 1) throw new RangeError("RecentSet limit must be a positive integer");
  }
  has(x: T): boolean {
    return this.items.has(x);
  }
  add(x: T): void {
    if (this.items.has(x)) return;
    this.items.add(x);
    if (this.items.size > this.limit) this.items.delete(this.items.values().next().value as T);
  }
  get size(): number {
    return this.items.size;
  }
}
