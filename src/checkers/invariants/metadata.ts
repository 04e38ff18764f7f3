/**
 * Metadata: every kind-445 group event is signed by a fresh key (never reused, never an account
 * identity), and no account identity appears in a 445's outer tags.
 */
import type { Event as NostrEvent } from "nostr-tools";
import type { CheckResult } from "../../report/types.ts";
import type { HistoryEntry } from "../../history.ts";
import { identities, short } from "./common.ts";

export function checkMetadata(history: readonly HistoryEntry[]): CheckResult {
  const { byPubkey } = identities(history);
  const signers = new Map<string, string>(); // signing key → first event id
  const problems: string[] = [];
  const subjects = new Set<string>();
  let n = 0;
  for (const e of history) {
    if (e.op !== "event") continue;
    const ev = e.data.event as NostrEvent;
    if (ev.kind !== 445) continue;
    n++;
    const first = signers.get(ev.pubkey);
    if (first !== undefined && first !== ev.id) {
      problems.push(`445 signing key ${short(ev.pubkey)} reused by ${short(first)} and ${short(ev.id)}`);
      subjects.add(ev.id);
    } else signers.set(ev.pubkey, ev.id);
    const owner = byPubkey.get(ev.pubkey);
    if (owner) {
      problems.push(`445 ${short(ev.id)} is signed by ${owner}'s identity key`);
      subjects.add(ev.id);
    }
    for (const tag of ev.tags) {
      for (const v of tag.slice(1)) {
        const who = byPubkey.get(v.toLowerCase());
        if (who) {
          problems.push(`445 ${short(ev.id)} carries ${who}'s identity in its outer "${tag[0]}" tag`);
          subjects.add(ev.id);
        }
      }
    }
  }
  if (n === 0) return { name: "metadata", verdict: "not-applicable", message: "no kind-445 events" };
  if (problems.length > 0) return { name: "metadata", verdict: "fail", message: problems.slice(0, 5).join("; ") + (problems.length > 5 ? `; … ${problems.length - 5} more` : ""), subjects: [...subjects] };
  return { name: "metadata", verdict: "pass", message: `${n} group events: fresh signing keys, no identity in outer tags` };
}
