/**
 * Which protocol profile a stream of events speaks. Signals come from the outer events only:
 * KeyPackage kind and tag set, 10051 presence, and the 445 content shape (NIP-44 v2 vs
 * nonce‖ChaCha20-Poly1305). Several profiles at once give "mixed", none gives "unknown".
 */
import type { CaptureRecord } from "../../capture.ts";
import type { ProtocolProfile } from "../../profile.ts";
import { type Base64Memo, decodeBase64Memo, decodeBase64Strict, tagsNamed } from "./util.ts";

export type DetectedProfile = ProtocolProfile | "mixed" | "unknown";

export interface ProfileDetection {
  profile: DetectedProfile;
  /** Evidence per profile: how many events pointed at it. */
  votes: Record<ProtocolProfile, number>;
  reasons: string[];
}

function nip44PaddedLen(len: number): number {
  if (len <= 32) return 32;
  const nextPower = 2 ** (Math.floor(Math.log2(len - 1)) + 1);
  const chunk = nextPower <= 256 ? 32 : nextPower / 8;
  return chunk * (Math.floor((len - 1) / chunk) + 1);
}

/** True when base64 content has the exact shape of a NIP-44 v2 payload (version byte 2, valid padded length). */
export function looksLikeNip44(content: string): boolean {
  return looksLikeNip44Bytes(decodeBase64Strict(content));
}

function looksLikeNip44Bytes(raw: Uint8Array | undefined): boolean {
  if (!raw || raw.length < 99 || raw[0] !== 2) return false;
  const padded = raw.length - 1 - 32 - 32 - 2;
  if (padded < 32) return false;
  // Any plaintext length L with nip44PaddedLen(L) === padded makes it a plausible payload.
  return nip44PaddedLen(padded) === padded;
}

export function detectProfile(records: readonly CaptureRecord[], memo?: Base64Memo): ProfileDetection {
  const votes: Record<ProtocolProfile, number> = { R0: 0, R1: 0, R2: 0 };
  const reasons = new Set<string>();
  const authors30443 = new Set<string>();
  const groups = new Map<string, { total: number; nip44: number; encoding: number }>();
  for (const r of records) if (r.event?.kind === 30443) authors30443.add(r.event.pubkey);
  for (const r of records) {
    const ev = r.event;
    if (!ev || typeof ev.kind !== "number" || !Array.isArray(ev.tags)) continue;
    const tags = ev.tags.filter((t): t is string[] => Array.isArray(t));
    if (ev.kind === 443) {
      if (authors30443.has(ev.pubkey)) {
        votes.R1++;
        reasons.add("kind 443 next to the author's 30443 (R1 dual publication)");
      } else {
        votes.R0++;
        reasons.add("kind 443 KeyPackage (R0)");
      }
    } else if (ev.kind === 30443) {
      const hasEncoding = tagsNamed(tags, "encoding").length > 0;
      const hasAppComponents = tagsNamed(tags, "app_components").length > 0;
      if (!hasEncoding && hasAppComponents) {
        votes.R2++;
        reasons.add("30443 with app_components and no encoding tag (R2)");
      } else {
        votes.R1++;
        reasons.add("kind 30443 KeyPackage with the MIP-era tag set (R1)");
      }
    } else if (ev.kind === 10051) {
      votes.R1 += 0; // R0 and R1 both use 10051: no vote
      reasons.add("kind 10051 relay list (R0/R1)");
    } else if (ev.kind === 445 && typeof ev.content === "string") {
      const h = tagsNamed(tags, "h")[0]?.[1] ?? "";
      const g = groups.get(h) ?? { total: 0, nip44: 0, encoding: 0 };
      g.total++;
      const raw = decodeBase64Memo(ev.content, memo);
      if (looksLikeNip44Bytes(raw)) g.nip44++;
      else if (raw !== undefined && tagsNamed(tags, "encoding").length > 0) g.encoding++;
      groups.set(h, g);
    }
  }
  // A random ChaCha20 payload looks like NIP-44 about once in thousands of events: judge 445
  // shape per group (h), by majority.
  for (const g of groups.values()) {
    if (g.nip44 * 2 > g.total) {
      votes.R0++;
      reasons.add("445 content shaped as NIP-44 v2 (R0)");
    } else if (g.encoding * 2 > g.total) {
      votes.R1++;
      reasons.add("445 with an encoding tag (R1, MDK)");
    }
  }
  const present = (Object.keys(votes) as ProtocolProfile[]).filter((p) => votes[p] > 0);
  let profile: DetectedProfile;
  if (present.length === 0) profile = "unknown";
  else if (present.length === 1) profile = present[0] as ProtocolProfile;
  else profile = "mixed";
  return { profile, votes, reasons: [...reasons] };
}
