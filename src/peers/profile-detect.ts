/**
 * Profile detection: from the first events a peer publishes, tell which protocol profile it
 * speaks (R0, R1 or R2 of the digest), with the evidence, and stop a mixed run early with a
 * message that says who speaks what.
 *
 * Each event votes for the profiles it is compatible with; the peer's profile is what every vote
 * allows. The signals (digest §1, §5, §10):
 * - KeyPackage kind: 443 (R0; R1 only as MDK's migration copy) vs 30443 (R1, R2).
 * - 30443 tags: `encoding` and `relays` exist in R1 and are forbidden in R2; `app_components`
 *   exists only in R2. Content framing: bare KeyPackage (R1) vs MLSMessage(mls_key_package) (R2).
 * - 443 tags: no `encoding` or `encoding=hex` is R0 only (R1 requires `encoding=base64`);
 *   `mls_proposals` / `i` only appear on MDK's R1 migration copy.
 * - 10051 (KeyPackage relay list) exists in R0/R1, not R2.
 * - 445: an `encoding` tag is MDK's R1 (R0 had only `h`, R2 forbids it); content that has the
 *   shape of a NIP-44 v2 payload is R0, base64(nonce‖ChaCha20-Poly1305) is R1/R2.
 * Gift wraps, seals and relay lists say nothing about the profile and are ignored.
 */
import { v2 as nip44 } from "nostr-tools/nip44";
import type { Event as NostrEvent } from "nostr-tools";
import { HarnessError } from "../errors.ts";
import type { ProtocolProfile } from "../profile.ts";

const ALL: readonly ProtocolProfile[] = ["R0", "R1", "R2"];

export interface ProfileEvidence {
  eventId: string;
  kind: number;
  /** Profiles this event is compatible with. */
  supports: ProtocolProfile[];
  reason: string;
}

export interface ProfileDetection {
  peer: string;
  /** The profile, when the evidence allows exactly one; "unknown" with no evidence; "ambiguous"; "mixed" when events contradict each other. */
  profile: ProtocolProfile | "unknown" | "ambiguous" | "mixed";
  /** Profiles every piece of evidence allows. */
  candidates: ProtocolProfile[];
  evidence: ProfileEvidence[];
  /** One line for reports. */
  summary: string;
}

export class ProfileMismatchError extends HarnessError {
  constructor(message: string, details: Record<string, unknown>) {
    super("PROFILE_MISMATCH", message, details);
  }
}

function tagValues(ev: NostrEvent, name: string): string[][] {
  return ev.tags.filter((t) => t[0] === name).map((t) => t.slice(1));
}

function base64Bytes(s: string): Uint8Array | undefined {
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(s) || s.length % 4 !== 0) return undefined;
  try {
    return new Uint8Array(Buffer.from(s, "base64"));
  } catch {
    return undefined;
  }
}

/** True when `content` has the exact shape of a NIP-44 v2 payload (version byte 2, padded length, MAC). */
export function looksLikeNip44(content: string): boolean {
  const b = base64Bytes(content);
  if (!b || b.length < 99 || b[0] !== 2) return false;
  // 1 version + 32 nonce + (2 length + padded plaintext) + 32 MAC
  const padded = b.length - 1 - 32 - 32 - 2;
  // Achievable padded sizes are exactly the fixed points of the NIP-44 padding function.
  return padded >= 32 && padded <= 65536 && nip44.utils.calcPaddedLen(padded) === padded;
}

/** The evidence one event gives, or undefined when it says nothing about the profile. */
export function classifyEvent(ev: NostrEvent): ProfileEvidence | undefined {
  const base = { eventId: ev.id, kind: ev.kind };
  const has = (name: string): boolean => ev.tags.some((t) => t[0] === name);
  switch (ev.kind) {
    case 443: {
      const enc = tagValues(ev, "encoding")[0]?.[0];
      if (enc === undefined || enc === "hex") {
        return { ...base, supports: ["R0"], reason: `KeyPackage kind 443 with ${enc === undefined ? "no encoding tag" : "encoding=hex"} (R1 requires encoding=base64; R2 has no 443)` };
      }
      if (has("mls_proposals") || has("i")) {
        return { ...base, supports: ["R1"], reason: "kind 443 carrying mls_proposals/i: MDK 0.8's R1 migration copy" };
      }
      return { ...base, supports: ["R0", "R1"], reason: "KeyPackage kind 443 (R0; in R1 only as a migration copy; not in R2)" };
    }
    case 30443: {
      const r1: string[] = [];
      const r2: string[] = [];
      if (has("encoding")) r1.push("an encoding tag");
      if (has("relays")) r1.push("a relays tag");
      if (has("app_components")) r2.push("an app_components tag");
      const b = base64Bytes(ev.content);
      if (b && b.length >= 4 && b[0] === 0 && b[1] === 1) {
        const second = (b[2] as number) * 256 + (b[3] as number);
        if (second === 5) r2.push("content framed as MLSMessage(mls_key_package)");
        else if (second === 1) r1.push("content that is a bare KeyPackage");
      }
      if (r1.length && r2.length) {
        return { ...base, supports: [], reason: `KeyPackage 30443 mixes R1 signs (${r1.join(", ")}) with R2 signs (${r2.join(", ")})` };
      }
      if (r2.length) return { ...base, supports: ["R2"], reason: `KeyPackage 30443 with ${r2.join(" and ")}${has("encoding") ? "" : ", no encoding tag"}` };
      if (r1.length) return { ...base, supports: ["R1"], reason: `KeyPackage 30443 with ${r1.join(" and ")} (forbidden in R2)` };
      return { ...base, supports: ["R1", "R2"], reason: "KeyPackage 30443 without distinguishing tags" };
    }
    case 10051:
      return { ...base, supports: ["R0", "R1"], reason: "KeyPackage relay list 10051 (removed in R2, which uses NIP-65 10002)" };
    case 445: {
      if (has("encoding")) return { ...base, supports: ["R1"], reason: "group event 445 with an encoding tag (MDK 0.8 R1; R0 had only h, R2 forbids it)" };
      if (looksLikeNip44(ev.content)) return { ...base, supports: ["R0"], reason: "group event 445 whose content has the shape of a NIP-44 v2 payload" };
      const b = base64Bytes(ev.content);
      if (b && b.length >= 28) return { ...base, supports: ["R1", "R2"], reason: "group event 445 with base64(nonce‖ChaCha20-Poly1305) content" };
      return undefined;
    }
    default:
      return undefined;
  }
}

/** Detect the profile a peer speaks from events it published (in publication order). */
export function detectProfile(peer: string, events: readonly NostrEvent[], opts: { maxEvents?: number } = {}): ProfileDetection {
  const evidence: ProfileEvidence[] = [];
  for (const ev of events.slice(0, opts.maxEvents ?? 50)) {
    const e = classifyEvent(ev);
    if (e) evidence.push(e);
  }
  if (evidence.length === 0) {
    return { peer, profile: "unknown", candidates: [...ALL], evidence, summary: `peer ${peer}: no profile evidence yet` };
  }
  const candidates = ALL.filter((p) => evidence.every((e) => e.supports.includes(p)));
  let profile: ProfileDetection["profile"];
  if (candidates.length === 1) profile = candidates[0] as ProtocolProfile;
  else if (candidates.length === 0) profile = "mixed";
  else profile = "ambiguous";
  const summary =
    profile === "mixed"
      ? `peer ${peer} publishes events of different profiles: ${evidence.map((e) => `${e.kind}→${e.supports.join("/") || "none"}`).join(", ")}`
      : profile === "ambiguous"
        ? `peer ${peer} speaks ${candidates.join(" or ")} (${evidence.length} event${evidence.length === 1 ? "" : "s"} seen)`
        : `peer ${peer} speaks ${profile} (${evidence[0]?.reason})`;
  return { peer, profile, candidates, evidence, summary };
}

/**
 * Stop a mixed run early: throws ProfileMismatchError when a peer's evidence excludes the profile
 * the engine agents speak, e.g. "peer mdk speaks R2, engine agents speak R1".
 */
export function assertProfilesCompatible(detections: readonly ProfileDetection[], engineProfile: ProtocolProfile): void {
  const bad = detections.filter((d) => !d.candidates.includes(engineProfile));
  if (bad.length === 0) return;
  const parts = bad.map((d) => {
    if (d.profile === "mixed") return `peer ${d.peer} publishes events of different profiles (${d.evidence.map((e) => `${e.kind}: ${e.supports.join("/") || "none"}`).join(", ")})`;
    return `peer ${d.peer} speaks ${d.candidates.join(" or ")}`;
  });
  const first = bad[0]?.evidence.find((e) => !e.supports.includes(engineProfile));
  throw new ProfileMismatchError(`${parts.join("; ")}, engine agents speak ${engineProfile}${first ? ` (evidence: event ${first.eventId.slice(0, 12)}…, ${first.reason})` : ""}`, {
    engineProfile,
    peers: bad.map((d) => ({ peer: d.peer, profile: d.profile, candidates: d.candidates, evidence: d.evidence })),
  });
}
