/**
 * Test helpers: load the committed engine fixtures, mutate and re-sign events, and compare the
 * failing rule sets of two judgements.
 */
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import * as path from "node:path";
import { finalizeEvent, generateSecretKey, getPublicKey, type Event as NostrEvent } from "nostr-tools/pure";
import { parseCapture, type CaptureRecord } from "../../src/capture.ts";
import { judge, parseKeyring, type ComplianceReport, type JudgeOptions, type Keyring } from "../../src/checkers/compliance/index.ts";

const here = path.dirname(fileURLToPath(import.meta.url));
export const FIXTURES = path.resolve(here, "../../fixtures");

export interface Fixture {
  records: CaptureRecord[];
  keyring: Keyring;
  /** Secret key (bytes) by account pubkey. */
  secretByPubkey: Map<string, Uint8Array>;
}

export function loadFixture(name: string): Fixture {
  const { records, errors } = parseCapture(readFileSync(path.join(FIXTURES, `${name}.jsonl`), "utf8"));
  if (errors.length > 0) throw new Error(`fixture ${name} has unreadable lines`);
  const keyring = parseKeyring(JSON.parse(readFileSync(path.join(FIXTURES, `${name}.keyring.json`), "utf8")));
  const secretByPubkey = new Map<string, Uint8Array>();
  for (const sk of keyring.recipientSecretKeys) {
    const b = new Uint8Array(Buffer.from(sk, "hex"));
    secretByPubkey.set(getPublicKey(b), b);
  }
  return { records, keyring, secretByPubkey };
}

export function clone<T>(v: T): T {
  return JSON.parse(JSON.stringify(v)) as T;
}

/** Re-sign an edited event with `sk` (a fresh key when omitted). */
export function resign(ev: Pick<NostrEvent, "kind" | "tags" | "content" | "created_at">, sk: Uint8Array = generateSecretKey()): NostrEvent {
  return finalizeEvent({ kind: ev.kind, tags: ev.tags, content: ev.content, created_at: ev.created_at }, sk);
}

export function failing(r: ComplianceReport): Set<string> {
  return new Set(r.findings.filter((f) => f.verdict === "fail").map((f) => f.ruleId));
}

export function verdictOf(r: ComplianceReport, ruleId: string): string | undefined {
  return r.findings.find((f) => f.ruleId === ruleId)?.verdict;
}

export function findingOf(r: ComplianceReport, ruleId: string): ComplianceReport["findings"][number] | undefined {
  return r.findings.find((f) => f.ruleId === ruleId);
}

/** Rules failing in `after` but not in `before`. */
export function newFailures(before: ComplianceReport, after: ComplianceReport): string[] {
  const b = failing(before);
  return [...failing(after)].filter((x) => !b.has(x)).sort();
}

/** Baseline judgements are shared between tests (same records array, keyring object and options). */
const baselines = new WeakMap<object, Map<string, Promise<ComplianceReport>>>();
function baseline(base: { records: CaptureRecord[]; keyring?: Keyring }, opts: Omit<JudgeOptions, "keyring">): Promise<ComplianceReport> {
  let byOpts = baselines.get(base.records);
  if (!byOpts) {
    byOpts = new Map();
    baselines.set(base.records, byOpts);
  }
  const keyringId = base.keyring ? (keyringIds.get(base.keyring) ?? keyringIds.set(base.keyring, keyringIds.size + 1).get(base.keyring)) : 0;
  const k = `${String(keyringId)}:${JSON.stringify(opts)}`;
  let p = byOpts.get(k);
  if (!p) {
    p = judge(base.records, { ...opts, ...(base.keyring ? { keyring: base.keyring } : {}) });
    byOpts.set(k, p);
  }
  return p;
}
const keyringIds = new Map<Keyring, number>();

export async function judgeBoth(
  base: { records: CaptureRecord[]; keyring?: Keyring },
  mutated: { records: CaptureRecord[]; keyring?: Keyring },
  opts: Omit<JudgeOptions, "keyring"> = {},
): Promise<{ before: ComplianceReport; after: ComplianceReport; added: string[] }> {
  const before = await baseline(base, opts);
  const after = await judge(mutated.records, { ...opts, ...(mutated.keyring ? { keyring: mutated.keyring } : {}) });
  return { before, after, added: newFailures(before, after) };
}

/** Replace the record of event `id` by `next` (same publisher, times and acks). */
export function replaceEvent(records: CaptureRecord[], id: string, next: NostrEvent): CaptureRecord[] {
  return records.map((r) => (r.event.id === id ? { ...r, event: next } : r));
}

export function findRecord(records: CaptureRecord[], pred: (r: CaptureRecord) => boolean): CaptureRecord {
  const r = records.find(pred);
  if (!r) throw new Error("no record matches");
  return r;
}
