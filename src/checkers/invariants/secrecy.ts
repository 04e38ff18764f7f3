/**
 * Secrecy: removed members cannot read what follows their removal, and joiners cannot read what
 * came before they joined. Two sources in the history: what agents decrypted in the normal course
 * (`decrypt` entries judged against `removed` / `welcome` epochs), and the runner's active probes
 * (`probe` entries: the events fed to a removed member or a joiner, and what it made of them).
 * A third, for a gap the active probe cannot show (the removed member's engine drops the group, so it
 * never tries to read on): a commit the engine flagged `rekeyNeeded` (it removed someone without an
 * UpdatePath, as ts-mls 2.0.0-rc.10 does for a single Remove) leaves the following epochs derivable by
 * the removed member until a commit with a path (self-update, re-keying follow-up); any message sent
 * in between is a violation.
 *
 * Commit races: a commit its committer confirmed can still lose to a competing commit for the same
 * epoch (members record `commit-applied` with `rolledBack`, naming the winner). When the path-less
 * Remove itself lost, nobody was removed and the exposure it armed is dropped (else every later message
 * would be a false failure); when the re-keying commit lost, the exposure it cleared comes back unless
 * the winner re-keyed (a commit with a path), so a message sent before the next re-key is still caught.
 */
import type { CheckResult } from "../../report/types.ts";
import type { HistoryEntry } from "../../history.ts";
import { short } from "./common.ts";

interface Exposure {
  /** First epoch whose secrets the removed members can derive. */
  epoch: number;
  removed: string[];
  /** The path-less commit that removed them. */
  commit: string;
}

/** Commit actions whose commits carry an UpdatePath (they re-key the group). */
const PATH_ACTIONS = ["rekey-after-remove", "self-update", "self-update-after-join"];

export function checkSecrecy(history: readonly HistoryEntry[]): CheckResult {
  const removedAt = new Map<string, number>(); // agent|groupId → epoch of removal
  const joinedAt = new Map<string, number>(); // agent|groupId → first epoch as member
  const createdBy = new Set<string>();
  const violations: string[] = [];
  const subjects = new Set<string>();
  let probes = 0;
  // groupId → who was removed by a path-less commit, and from which epoch, until a re-keying commit
  const exposed = new Map<string, Exposure>();
  // groupId → the last re-keying commit that cleared an exposure (restored if that commit loses a race)
  const cleared = new Map<string, { commit: string; epoch: number; exposure: Exposure }>();
  // commits known to carry an UpdatePath (from their committers' records)
  const withPath = new Set<string>();
  for (const e of history) {
    if (e.op === "commit" && e.type === "ok") {
      const gid = String(e.data.groupId);
      if (e.data.rekeyNeeded === true) {
        const removed = Array.isArray(e.data.removed) ? (e.data.removed as string[]) : [];
        const prev = exposed.get(gid);
        exposed.set(gid, { epoch: prev?.epoch ?? Number(e.data.epoch), removed: [...(prev?.removed ?? []), ...removed], commit: prev?.commit ?? String(e.data.eventId) });
      } else if (PATH_ACTIONS.includes(String(e.data.action))) {
        withPath.add(String(e.data.eventId));
        const x = exposed.get(gid);
        if (x) cleared.set(gid, { commit: String(e.data.eventId), epoch: Number(e.data.epoch), exposure: x });
        exposed.delete(gid);
      }
    }
    if (e.op === "commit-applied" && e.data.rolledBack === true) {
      // the commit `eventId` won epoch `epoch`: whatever its committer's branch held from that epoch on is gone
      const gid = String(e.data.groupId);
      const epoch = Number(e.data.epoch);
      const winner = String(e.data.eventId);
      const x = exposed.get(gid);
      if (x && x.epoch >= epoch && x.commit !== winner) exposed.delete(gid);
      const c = cleared.get(gid);
      if (c && c.epoch >= epoch && c.commit !== winner) {
        cleared.delete(gid);
        if (c.exposure.epoch < epoch && !withPath.has(winner) && !exposed.has(gid)) exposed.set(gid, c.exposure);
      }
    }
    if (e.op === "send" && e.type === "ok") {
      const x = exposed.get(String(e.data.groupId));
      if (x && Number(e.data.epoch) >= x.epoch) {
        violations.push(
          `${e.actor} sent ${short(String(e.data.eventId))} in epoch ${Number(e.data.epoch)}, whose secrets the removed ${x.removed.map(short).join(", ") || "member"} can derive: commit ${short(x.commit)} removed them without an UpdatePath and nothing re-keyed the group before this message`,
        );
        subjects.add(String(e.data.eventId));
      }
    }
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
