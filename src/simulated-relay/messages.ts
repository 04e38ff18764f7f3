/**
 * NIP-01 frames as the relay core sees them: what clients send and what the relay answers.
 * Knows nothing of MLS or of any transport.
 */
import type { Event as NostrEvent, Filter } from "nostr-tools";
import { HarnessError } from "../errors.ts";

export type { NostrEvent, Filter };

export type ClientMessage =
  | ["EVENT", NostrEvent]
  | ["REQ", string, ...Filter[]]
  | ["CLOSE", string]
  | ["AUTH", NostrEvent];

export type RelayMessage =
  | ["EVENT", string, NostrEvent]
  | ["OK", string, boolean, string]
  | ["EOSE", string]
  | ["CLOSED", string, string]
  | ["NOTICE", string]
  | ["AUTH", string];

/** The machine-readable prefixes NIP-01 defines for OK and CLOSED messages. */
export type ReasonPrefix = "duplicate" | "pow" | "blocked" | "rate-limited" | "invalid" | "restricted" | "mute" | "error" | "auth-required";

export function reason(prefix: ReasonPrefix, text: string): string {
  return `${prefix}: ${text}`;
}

/** Raised by the relay layer for misuse by the harness itself (not for bad client frames, which get NIP-01 answers). */
export class RelayError extends HarnessError {}

/** A short, stable description of a frame for logs: `EVENT sub 1a2b3c4d`, `OK 1a2b3c4d true`. */
export function describeFrame(msg: RelayMessage | ClientMessage | unknown[]): string {
  const type = String(msg[0]);
  const short = (v: unknown): string => (typeof v === "string" ? v.slice(0, 8) : String(v));
  switch (type) {
    case "EVENT":
      return msg.length === 3
        ? `EVENT ${String(msg[1])} ${short((msg[2] as NostrEvent | undefined)?.id)}`
        : `EVENT ${short((msg[1] as NostrEvent | undefined)?.id)}`;
    case "OK":
      return `OK ${short(msg[1])} ${String(msg[2])} ${String(msg[3] ?? "")}`.trimEnd();
    case "REQ":
      return `REQ ${String(msg[1])} ${JSON.stringify(msg.slice(2))}`;
    case "CLOSED":
      return `CLOSED ${String(msg[1])} ${String(msg[2] ?? "")}`;
    default:
      return msg.map((v) => (typeof v === "string" ? v : JSON.stringify(v))).join(" ");
  }
}
