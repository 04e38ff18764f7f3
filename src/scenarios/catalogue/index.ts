/**
 * The scenario catalogue: every scenario runnable by name.
 */
import { HarnessError } from "../../errors.ts";
import { bugScenarios } from "./bugs.ts";
import { concurrentCommits } from "./concurrent-commits.ts";
import { epochChurn } from "./epoch-churn.ts";
import { inviteBasic } from "./invite-basic.ts";
import { inviteMany } from "./invite-many.ts";
import { keyPackageLifecycle } from "./keypackage-lifecycle.ts";
import { mediaBasic } from "./media-basic.ts";
import { mediaCorruptBlob } from "./media-corrupt-blob.ts";
import { groupImageLifecycle } from "./media-group-image.ts";
import { mediaOfflineFetch } from "./media-offline-fetch.ts";
import { mediaRemovedMember } from "./media-removed-member.ts";
import { offlineCatchUp } from "./offline-catch-up.ts";
import { relayFaults } from "./relay-faults.ts";
import { lateJoinerSecrecy, removalSecrecy } from "./secrecy.ts";
import type { CatalogueEntry, CatalogueParams } from "./types.ts";
import { welcomeSizeLimit } from "./welcome-size-limit.ts";

export type { CatalogueEntry, CatalogueParams };

export const CATALOGUE: readonly CatalogueEntry[] = [
  inviteBasic,
  inviteMany,
  epochChurn,
  welcomeSizeLimit,
  offlineCatchUp,
  concurrentCommits,
  removalSecrecy,
  lateJoinerSecrecy,
  relayFaults,
  keyPackageLifecycle,
  mediaBasic,
  mediaOfflineFetch,
  mediaCorruptBlob,
  mediaRemovedMember,
  groupImageLifecycle,
  ...bugScenarios,
];

export function catalogueEntry(name: string): CatalogueEntry {
  const e = CATALOGUE.find((x) => x.name === name);
  if (!e) throw new HarnessError("UNKNOWN_SCENARIO", `no scenario named "${name}" (known: ${CATALOGUE.map((x) => x.name).join(", ")})`, { name });
  return e;
}

/** Build a catalogue scenario by name; `size: "small"` uses its quick parameters. */
export function buildCatalogueScenario(name: string, opts: { params?: CatalogueParams; seed?: string; size?: "small" | "full" } = {}) {
  const e = catalogueEntry(name);
  const params = { ...(opts.size === "small" ? e.small : e.defaults), ...(opts.params ?? {}) };
  return e.build(params, opts.seed ?? "1");
}
