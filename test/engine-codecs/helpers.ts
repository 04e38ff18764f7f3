import { hexToBytes } from "@noble/hashes/utils.js";
import { finalizeEvent, getPublicKey } from "nostr-tools/pure";
import type { KeyPackage, PrivateKeyPackage } from "ts-mls";
import type { NostrEvent } from "../../src/engine/api.ts";
import { generateMarmotKeyPackage } from "../../src/engine/identity.ts";
import { buildKeyPackageEvent, type BuildKeyPackageEventParams } from "../../src/engine/mip00-keypackages.ts";
import { createRng } from "../../src/sim/random.ts";

export const NOW = 1_780_000_000;
export const SK_A = hexToBytes("01".repeat(32));
export const SK_B = hexToBytes("02".repeat(32));
export const PK_A = getPublicKey(SK_A);
export const PK_B = getPublicKey(SK_B);
export const D_A = "d0".repeat(32);
export const RELAYS = ["wss://relay.one", "ws://127.0.0.1:7777"];

/** Deterministic KeyPackage for `pubkey` from a seed. */
export async function fixedKeyPackage(
  pubkey: string,
  seed: string,
  extra: { lastResort?: boolean; grease?: boolean } = {},
): Promise<{ publicPackage: KeyPackage; privatePackage: PrivateKeyPackage }> {
  const rng = createRng(seed);
  return generateMarmotKeyPackage({ pubkey, now: NOW, randomBytes: (n) => rng.bytes(n), ...extra });
}

export async function builtEvent(
  overrides: Partial<BuildKeyPackageEventParams> & { seed?: string } = {},
): Promise<{ event: NostrEvent; keyPackage: KeyPackage }> {
  const { seed, ...rest } = overrides;
  const keyPackage = rest.keyPackage ?? (await fixedKeyPackage(PK_A, seed ?? "kp-a")).publicPackage;
  const event = await buildKeyPackageEvent({ keyPackage, secretKey: SK_A, relays: RELAYS, d: D_A, now: NOW, client: "marmot-harness/test", ...rest });
  return { event, keyPackage };
}

/** A copy of `ev` with new fields, re-signed so that only the intended rule is broken. */
export function resign(ev: NostrEvent, sk: Uint8Array, patch: Partial<Pick<NostrEvent, "kind" | "tags" | "content" | "created_at">>): NostrEvent {
  return finalizeEvent(
    { kind: patch.kind ?? ev.kind, created_at: patch.created_at ?? ev.created_at, tags: patch.tags ?? ev.tags.map((t) => [...t]), content: patch.content ?? ev.content },
    sk,
  );
}

export function setTag(tags: string[][], name: string, value: string[] | undefined): string[][] {
  const out: string[][] = [];
  let done = false;
  for (const t of tags) {
    if (t[0] === name) {
      if (!done && value !== undefined) out.push([name, ...value]);
      done = true;
    } else out.push([...t]);
  }
  if (!done && value !== undefined) out.push([name, ...value]);
  return out;
}
