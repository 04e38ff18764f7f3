/**
 * Captured traffic: the input of the compliance checker. One JSON object per line (JSONL).
 * Produced by `marmot-harness capture`, by every scenario run (from the recorded history),
 * and by anyone who can dump Nostr events.
 */
import { readFile, writeFile } from "node:fs/promises";
import type { Event as NostrEvent } from "nostr-tools";
import { HarnessError } from "./errors.ts";

export interface CaptureAck {
  relay: string;
  ok: boolean;
  message: string;
  /** Milliseconds since the Unix epoch. */
  at: number;
}

export interface CaptureRecord {
  event: NostrEvent;
  /** Relay the event was seen on or published to. */
  relay?: string;
  /** Milliseconds since the Unix epoch when it was seen (publish time for published events). */
  seenAt?: number;
  /** Who published it, when known (agent name). */
  source?: string;
  /** Relay acknowledgements of its publication, when known. */
  acks?: CaptureAck[];
}

export class CaptureFormatError extends HarnessError {
  constructor(line: number, message: string) {
    super("CAPTURE_FORMAT", `line ${line}: ${message}`, { line });
  }
}

export interface ParsedCapture {
  records: CaptureRecord[];
  /** Lines that could not be read; reading goes on past them. */
  errors: CaptureFormatError[];
}

/** Parse JSONL. A line may be a CaptureRecord or a bare Nostr event. Bad lines are reported, not fatal. */
export function parseCapture(text: string): ParsedCapture {
  const records: CaptureRecord[] = [];
  const errors: CaptureFormatError[] = [];
  const lines = text.split(/\r?\n/);
  lines.forEach((raw, i) => {
    const line = raw.trim();
    if (line === "") return;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch (e) {
      errors.push(new CaptureFormatError(i + 1, `not JSON (${(e as Error).message})`));
      return;
    }
    if (typeof value !== "object" || value === null || Array.isArray(value)) {
      errors.push(new CaptureFormatError(i + 1, "expected a JSON object"));
      return;
    }
    const obj = value as Record<string, unknown>;
    const ev = (typeof obj.event === "object" && obj.event !== null ? obj.event : obj) as Record<string, unknown>;
    if (typeof ev.kind !== "number" || typeof ev.id !== "string") {
      errors.push(new CaptureFormatError(i + 1, "no Nostr event (needs at least id and kind)"));
      return;
    }
    if (obj.event !== undefined) records.push(obj as unknown as CaptureRecord);
    else records.push({ event: obj as unknown as NostrEvent });
  });
  return { records, errors };
}

export function serializeCapture(records: CaptureRecord[]): string {
  return records.map((r) => JSON.stringify(r)).join("\n") + (records.length ? "\n" : "");
}

export async function readCaptureFile(path: string): Promise<ParsedCapture> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (e) {
    throw new HarnessError("CAPTURE_READ", `cannot read capture file ${path}: ${(e as Error).message}`, { path });
  }
  return parseCapture(text);
}

export async function writeCaptureFile(path: string, records: CaptureRecord[]): Promise<void> {
  await writeFile(path, serializeCapture(records));
}
