/**
 * Convergence: the online, active members of a group agree on the epoch, the member set and the
 * exporter-derived epoch commitment. Reads the `state` entries the runner records (one per agent
 * per group) at the end of the run, or at the snapshot named by `label`.
 */
import type { CheckResult } from "../../report/types.ts";
import type { HistoryEntry } from "../../history.ts";
import { NO_EPOCH_COMMITMENT } from "../../agents/types.ts";
import { identities, onlineAtEnd, short } from "./common.ts";

export interface StateEntryData {
  label: string;
  groupId: string;
  nostrGroupId?: string;
  epoch: number;
  members: string[];
  epochCommitment?: string;
  active: boolean;
  online: boolean;
}

export function checkConvergence(history: readonly HistoryEntry[], opts: { label?: string } = {}): CheckResult {
  const states = history.filter((e) => e.op === "state" && (opts.label === undefined ? true : e.data.label === opts.label));
  // the last snapshot label when none is given
  const label = opts.label ?? (states.at(-1)?.data.label as string | undefined);
  // A label can be recorded more than once (a wait that polls): each agent's latest view of a group counts.
  const latest = new Map<string, { agent: string; d: StateEntryData }>();
  for (const e of states) {
    const d = e.data as unknown as StateEntryData;
    if (d.label !== label) continue;
    latest.set(`${e.actor}|${d.groupId}`, { agent: e.actor, d });
  }
  const byGroup = new Map<string, { agent: string; d: StateEntryData }[]>();
  for (const { agent, d } of latest.values()) {
    if (!d.active || !d.online) continue;
    const list = byGroup.get(d.groupId) ?? [];
    list.push({ agent, d });
    byGroup.set(d.groupId, list);
  }
  if (byGroup.size === 0) return { name: "convergence", verdict: "not-applicable", message: "no online group members to compare" };
  const problems: string[] = [];
  const subjects: string[] = [];
  // members that others list but that do not hold the group themselves (e.g. a failed join)
  const { byPubkey } = identities(history);
  const lastSeq = states.filter((e) => e.data.label === label).reduce((m, e) => Math.max(m, e.seq), 0);
  const online = onlineAtEnd(history.filter((e) => e.seq <= lastSeq));
  for (const e of states) if (e.data.label === label && e.data.online === false) online.set(e.actor, false);
  // Agents that declared they cannot give an epoch commitment (foreign peers): their groups are compared
  // on epoch and members only, and the result says so.
  const noCommitment = new Set(
    history.filter((e) => e.op === "peer" && Array.isArray(e.data.capabilities) && (e.data.capabilities as unknown[]).includes(NO_EPOCH_COMMITMENT)).map((e) => e.actor),
  );
  const weakGroups: string[] = [];
  for (const [groupId, list] of byGroup) {
    const weak = list.some((x) => noCommitment.has(x.agent));
    if (weak) weakGroups.push(`${short(groupId)} (${list.filter((x) => noCommitment.has(x.agent)).map((x) => x.agent).join(", ")} gives no epoch commitment)`);
    const key = (d: StateEntryData): string => `${d.epoch}|${[...d.members].sort().join(",")}|${weak ? "-" : (d.epochCommitment ?? "?")}`;
    const variants = new Map<string, string[]>();
    for (const { agent, d } of list) {
      const k = key(d);
      variants.set(k, [...(variants.get(k) ?? []), agent]);
    }
    const holders = new Set(list.map((x) => x.agent));
    const listed = new Set(list.flatMap((x) => x.d.members));
    const missing = [...listed].map((pk) => byPubkey.get(pk)).filter((n): n is string => n !== undefined && !holders.has(n) && online.get(n) !== false);
    if (missing.length > 0) {
      problems.push(`group ${short(groupId)}: ${missing.join(", ")} ${missing.length === 1 ? "is" : "are"} listed as member(s) but do not hold the group (failed or missing join)`);
      subjects.push(groupId, ...missing);
    }
    if (variants.size > 1) {
      const parts = [...variants.entries()].map(([k, agents]) => {
        const [epoch, members, commitment] = k.split("|");
        return `${agents.length > 3 ? `${agents.slice(0, 3).join(", ")} +${agents.length - 3}` : agents.join(", ")} at epoch ${epoch} with ${members ? members.split(",").length : 0} members, commitment ${short(commitment ?? "?")}`;
      });
      problems.push(`group ${short(groupId)} diverged: ${parts.join(" / ")}`);
      subjects.push(groupId, ...[...variants.values()].flat());
    }
  }
  if (problems.length > 0) return { name: "convergence", verdict: "fail", message: problems.join("; "), subjects };
  const n = [...byGroup.values()].reduce((a, l) => a + l.length, 0);
  const scope = weakGroups.length === 0 ? "epoch, members and epoch commitment" : `epoch, members and epoch commitment; epoch and members only for group ${weakGroups.join(", ")}`;
  return { name: "convergence", verdict: "pass", message: `${byGroup.size} group(s), ${n} online member view(s) agree on ${scope}` };
}
