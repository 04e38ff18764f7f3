/**
 * Protocol profiles. R1 (MIP revision 21a67b2) is the default everywhere; R0 (Jan 2026) is the
 * legacy profile; R2 (newest reorganised spec) is recognised by detection and by the checker only.
 */
export type ProtocolProfile = "R0" | "R1" | "R2";

export const DEFAULT_PROFILE: ProtocolProfile = "R1";

export const PROFILE_DESCRIPTIONS: Record<ProtocolProfile, string> = {
  R0: "MIP snapshot c0b5b74 (Jan 2026): KeyPackage 443, NIP-44 group events, group data v1",
  R1: "MIP revision 21a67b2 (pinned): KeyPackage 30443 + 10051, ChaCha20-Poly1305 group events, group data v2/v3, SelfRemove",
  R2: "Newest reorganised spec: app components, 10002 discovery, convergence policy v1",
};

export function parseProfile(value: string): ProtocolProfile {
  const v = value.trim().toUpperCase();
  if (v === "R0" || v === "R1" || v === "R2") return v;
  throw new RangeError(`unknown protocol profile "${value}" (expected R0, R1 or R2)`);
}
