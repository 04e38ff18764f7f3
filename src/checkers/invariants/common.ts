/**
 * Helpers shared by the invariant checkers. Checkers read the recorded history only.
 */
import type { HistoryEntry } from "../../history.ts";

/** agent name → pubkey, and back, from the `identity` entries. */
export function identities(history: readonly HistoryEntry[]): { byName: Map<string, string>; byPubkey: Map<string, string> } {
  const byName = new Map<string, string>();
  const byPubkey = new Map<string, string>();
  for (const e of history) {
    if (e.op === "identity" && typeof e.data.pubkey === "string") {
      byName.set(e.actor, e.data.pubkey);
      byPubkey.set(e.data.pubkey, e.actor);
    }
  }
  return { byName, byPubkey };
}

/** Whether each agent was online at the end of the run (last online/offline entry). */
export function onlineAtEnd(history: readonly HistoryEntry[]): Map<string, boolean> {
  const m = new Map<string, boolean>();
  for (const e of history) {
    if (e.op === "online" || e.op === "restart") m.set(e.actor, true);
    else if (e.op === "offline") m.set(e.actor, false);
  }
  return m;
}

export function short(id: string): string {
  return id.length > 12 ? id.slice(0, 12) : id;
}
