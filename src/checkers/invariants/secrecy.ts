/**
 * Secrecy: removed members cannot read what follows their removal, and joiners cannot read what
 * came before they joined. Two sources in the history: what agents decrypted in the normal course
 * (`decrypt` entries judged against `removed` / `welcome` epochs), and the runner's active probes
 * (`probe` entries: the events fed to a removed member or a joiner, and what it made of them).
 */
import type { CheckResult } from "../../report/types.ts";
import type { HistoryEntry } from "../../history.ts";
import { short } from "./common.ts";

export function checkSecrecy(history: readonly HistoryEntry[]): CheckResult {
  const removedAt = new Map<string, number>(); // agent|groupId → epoch of removal
  const joinedAt = new Map<string, number>(); // agent|groupId → first epoch as member
  const createdBy = new Set<string>();
  const violations: string[] = [];
  const subjects = new Set<string>();
  let probes = 0;
  for (const e of history) {
    const k = `${e.actor}|${String(e.data.groupId)}`;
    if (e.op === "create-group" && e.type === "ok") createdBy.add(k);
    if (e.op === "welcome" && e.type === "ok") {
      // re-joining after a removal starts a new membership
      joinedAt.set(k, Number(e.data.epoch));
      removedAt.delete(k);
    }
    if (e.op === "removed") removedAt.set(k, Number(e.data.epoch));
    if (e.op === "decrypt" && e.type === "ok") {
      const epoch = Number(e.data.epoch);
      const r = removedAt.get(k);
      if (r !== undefined && epoch >= r) {
        violations.push(`${e.actor} decrypted ${short(String(e.data.eventId))} of epoch ${epoch} after being removed at epoch ${r}`);
        subjects.add(String(e.data.eventId));
      }
      const j = joinedAt.get(k);
      if (j !== undefined && !createdBy.has(k) && epoch < j) {
        violations.push(`${e.actor} decrypted ${short(String(e.data.eventId))} of epoch ${epoch}, before it joined at epoch ${j}`);
        subjects.add(String(e.data.eventId));
      }
    }
    if (e.op === "probe") {
      probes++;
      if (e.data.outcome === "application") {
        violations.push(`probe: ${e.actor} (${String(e.data.probe)}) decrypted ${short(String(e.data.eventId))}`);
        subjects.add(String(e.data.eventId));
        subjects.add(e.actor);
      }
    }
  }
  if (violations.length > 0) return { name: "secrecy", verdict: "fail", message: violations.slice(0, 5).join("; ") + (violations.length > 5 ? `; … ${violations.length - 5} more` : ""), subjects: [...subjects] };
  if (removedAt.size === 0 && joinedAt.size === 0 && probes === 0) return { name: "secrecy", verdict: "not-applicable", message: "nobody joined late or was removed" };
  return { name: "secrecy", verdict: "pass", message: `no decryption across membership boundaries; ${probes} active probe(s) all refused` };
}
