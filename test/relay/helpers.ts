import { finalizeEvent, getPublicKey } from "nostr-tools/pure";
import { bytesToHex } from "@noble/hashes/utils.js";
import type { NostrEvent } from "../../src/simulated-relay/messages.ts";
import { createRng } from "../../src/sim/random.ts";

export function key(label: string): { sk: Uint8Array; pk: string } {
  const sk = createRng(`key:${label}`).bytes(32);
  sk[0] = 1; // keep it a valid scalar
  return { sk, pk: getPublicKey(sk) };
}

export function sign(sk: Uint8Array, kind: number, created_at: number, tags: string[][] = [], content = ""): NostrEvent {
  return finalizeEvent({ kind, created_at, tags, content }, sk) as NostrEvent;
}

export function hex32(label: string): string {
  return bytesToHex(createRng(label).bytes(32));
}

/** A JSON copy (no nostr-tools verified mark). */
export function plain<T>(v: T): T {
  return JSON.parse(JSON.stringify(v)) as T;
}
