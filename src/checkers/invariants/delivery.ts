/**
 * Delivery: every application message that a relay acknowledged reaches every member who should
 * get it (the members of the sender's group at send time), unless the member is excused: offline
 * at the end of the run, removed from the group, or named by the scenario (e.g. "offline beyond
 * the retention window").
 */
import type { CheckResult } from "../../report/types.ts";
import type { HistoryEntry } from "../../history.ts";
import { identities, onlineAtEnd, short } from "./common.ts";

export function checkDelivery(history: readonly HistoryEntry[], opts: { excused?: { agent: string; reason: string }[] } = {}): CheckResult {
  const { byPubkey } = identities(history);
  const online = onlineAtEnd(history);
  const excused = new Map((opts.excused ?? []).map((x) => [x.agent, x.reason]));
  const decrypted = new Set<string>();
  const removedFrom = new Set<string>(); // agent|groupId
  for (const e of history) {
    if (e.op === "decrypt" && e.type === "ok") decrypted.add(`${e.actor}|${String(e.data.eventId)}`);
    if (e.op === "removed") removedFrom.add(`${e.actor}|${String(e.data.groupId)}`);
  }
  const sends = history.filter((e) => e.op === "send" && e.type === "ok");
  if (sends.length === 0) return { name: "delivery", verdict: "not-applicable", message: "no application messages were sent" };
  const missing: string[] = [];
  const subjects = new Set<string>();
  let expected = 0;
  let delivered = 0;
  let excusedCount = 0;
  for (const s of sends) {
    if (s.data.spoofedAuthor) continue; // forged on purpose: must be rejected (see authenticity)
    const eventId = String(s.data.eventId);
    for (const pk of (s.data.expectedRecipients as string[] | undefined) ?? []) {
      const agent = byPubkey.get(pk);
      if (!agent) continue; // not one of ours (foreign member)
      expected++;
      if (decrypted.has(`${agent}|${eventId}`)) {
        delivered++;
        continue;
      }
      if (excused.has(agent) || online.get(agent) === false || removedFrom.has(`${agent}|${String(s.data.groupId)}`)) {
        excusedCount++;
        continue;
      }
      missing.push(`${agent} never decrypted ${short(eventId)} from ${s.actor} (epoch ${String(s.data.epoch)})`);
      subjects.add(eventId);
      subjects.add(agent);
    }
  }
  if (missing.length > 0) {
    const shown = missing.slice(0, 5).join("; ") + (missing.length > 5 ? `; … ${missing.length - 5} more` : "");
    return { name: "delivery", verdict: "fail", message: `${missing.length} of ${expected} deliveries missing: ${shown}`, subjects: [...subjects] };
  }
  return { name: "delivery", verdict: "pass", message: `${delivered} of ${expected} deliveries made${excusedCount ? `, ${excusedCount} excused (offline, removed or declared lost)` : ""} for ${sends.length} message(s)` };
}
