/**
 * Media (MIP-04): every attachment a member decrypted a message for was fetched from Blossom,
 * decrypted with the message epoch's media key and matched its hash. A failure an assert step
 * expected (`media-expected-failure`: a corrupted or swapped blob detected) is detection, not a
 * problem; a removed member opening a later attachment (`media-probe` decrypted) and a group image
 * a member could not open (MIP-01) are problems.
 */
import type { CheckResult } from "../../report/types.ts";
import type { HistoryEntry } from "../../history.ts";
import { short } from "./common.ts";

export function checkMedia(history: readonly HistoryEntry[]): CheckResult {
  const mediaSends = new Set(history.filter((e) => e.op === "send" && e.type === "ok" && e.data.media).map((e) => String(e.data.eventId)));
  if (mediaSends.size === 0 && !history.some((e) => e.op === "group-image")) return { name: "media", verdict: "not-applicable", message: "no attachments were sent" };
  const opened = new Set(history.filter((e) => e.op === "media" && e.type === "ok").map((e) => `${e.actor}|${String(e.data.eventId)}`));
  const problems: string[] = [];
  // failures an assert step expected (a corrupted or swapped blob detected): detection, not a bug
  const expected = new Set(history.filter((e) => e.op === "media-expected-failure").map((e) => `${String(e.data.agent)}|${String(e.data.eventId)}`));
  for (const e of history) {
    if (e.op === "media-probe" && e.data.outcome === "decrypted") problems.push(`${e.actor} opened the attachment of ${short(String(e.data.eventId))} sent after it left`);
    if (e.op === "group-image" && e.type === "fail") problems.push(`${e.actor} could not open the group image: ${String(e.data.message)}`);
    if (e.op === "media" && e.type === "fail" && !expected.has(`${e.actor}|${String(e.data.eventId)}`)) problems.push(`${e.actor} could not open the attachment of ${short(String(e.data.eventId))}: ${String(e.data.message)}`);
    if (e.op === "decrypt" && e.type === "ok" && mediaSends.has(String(e.data.eventId)) && !opened.has(`${e.actor}|${String(e.data.eventId)}`) && !history.some((x) => x.op === "media" && x.actor === e.actor && x.data.eventId === e.data.eventId)) {
      problems.push(`${e.actor} decrypted ${short(String(e.data.eventId))} but never fetched its attachment`);
    }
  }
  if (problems.length > 0) return { name: "media", verdict: "fail", message: problems.slice(0, 5).join("; "), subjects: [...mediaSends] };
  const detected = history.filter((e) => e.op === "media" && e.type === "fail").length;
  const images = history.filter((e) => e.op === "group-image" && e.type === "ok" && e.data.role === "member").length;
  return { name: "media", verdict: "pass", message: `${opened.size} attachment download(s) decrypted and matched their hashes${detected ? `; ${detected} bad attachment(s) detected as expected` : ""}${images ? `; ${images} group image fetch(es) decrypted` : ""}` };
}
