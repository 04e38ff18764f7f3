/**
 * Authenticity: every decrypted application message's inner author (rumor pubkey) is the MLS
 * sender, and a message whose inner author was forged on purpose is decrypted by nobody.
 */
import type { CheckResult } from "../../report/types.ts";
import type { HistoryEntry } from "../../history.ts";
import { short } from "./common.ts";

export function checkAuthenticity(history: readonly HistoryEntry[]): CheckResult {
  const forged = new Set(history.filter((e) => e.op === "send" && e.type === "ok" && e.data.spoofedAuthor).map((e) => String(e.data.eventId)));
  const problems: string[] = [];
  const subjects = new Set<string>();
  let n = 0;
  for (const e of history) {
    if (e.op !== "decrypt" || e.type !== "ok") continue;
    n++;
    const id = String(e.data.eventId);
    if (typeof e.data.rumorPubkey === "string" && e.data.rumorPubkey !== e.data.sender) {
      problems.push(`${e.actor} accepted ${short(id)} whose inner author ${short(e.data.rumorPubkey)} is not its MLS sender ${short(String(e.data.sender))}`);
      subjects.add(id);
    } else if (forged.has(id)) {
      problems.push(`${e.actor} accepted the forged message ${short(id)}`);
      subjects.add(id);
    }
  }
  if (n === 0 && forged.size === 0) return { name: "authenticity", verdict: "not-applicable", message: "no application messages decrypted" };
  if (problems.length > 0) return { name: "authenticity", verdict: "fail", message: problems.slice(0, 5).join("; ") + (problems.length > 5 ? `; … ${problems.length - 5} more` : ""), subjects: [...subjects] };
  return { name: "authenticity", verdict: "pass", message: `${n} decrypted message(s) carry their MLS sender as inner author${forged.size ? `; ${forged.size} forged message(s) rejected by everyone` : ""}` };
}
