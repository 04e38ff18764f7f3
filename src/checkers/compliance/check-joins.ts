/**
 * Sequence rules around joins and discovery: which KeyPackage an inviter picked (KP-20, KP-22),
 * the joiner's self-update timing (WL-13, WL-14), and where KeyPackages and Welcomes were published
 * relative to the author's / recipient's relay lists (KR-03, WL-16, R2).
 */
import type { CaptureRecord } from "../../capture.ts";
import type { CheckContext, KeyPackageInfo } from "./context.ts";
import { KIND_KP, KIND_KP_LEGACY } from "./check-keypackages.ts";
import { tagValues } from "./util.ts";

const DAY_MS = 86_400_000;

function normRelay(u: string): string {
  return u.replace(/\/+$/, "");
}

/** Latest replaceable event of `kind` by `author` in the capture. */
function latestOf(ctx: CheckContext, kind: number, author: string): CaptureRecord | undefined {
  let best: CaptureRecord | undefined;
  for (const r of ctx.events) {
    if (r.event.kind !== kind || r.event.pubkey !== author) continue;
    if (!best || r.event.created_at > best.event.created_at) best = r;
  }
  return best;
}

export function checkJoinSequences(ctx: CheckContext): void {
  const { j } = ctx;
  const recordById = new Map(ctx.events.map((r) => [r.event.id, r]));

  // KP-20 (SHOULD) and KP-22: the KeyPackage a Welcome consumed, against the recipient's others.
  for (const [wrapId, w] of ctx.welcomes) {
    if (w.rumor.kind !== 444 || w.kpEventId === undefined) continue;
    const used = ctx.keyPackages.get(w.kpEventId);
    if (!used) continue;
    const wrapAt = recordById.get(wrapId)?.seenAt;
    const candidates = [...ctx.keyPackages.values()].filter((k) => {
      if (k.event.pubkey !== used.event.pubkey) return false;
      const at = recordById.get(k.event.id)?.seenAt;
      return wrapAt === undefined || at === undefined || at <= wrapAt;
    });
    // KP-22: 443 readable during migration, 30443 preferred when both exist.
    if (used.event.kind === KIND_KP_LEGACY) {
      const has30443 = candidates.some((k) => k.event.kind === KIND_KP);
      j.check("MIP00-KP-22", !has30443, [wrapId, used.event.id], "the inviter used a kind 443 although the invitee had a 30443");
    } else if (candidates.some((k) => k.event.kind === KIND_KP_LEGACY)) {
      j.pass("MIP00-KP-22");
    }
    // KP-20: non-last-resort first, then newest created_at, then lowest id (R1).
    const addressable = candidates.filter((k) => k.event.kind === used.event.kind);
    if (addressable.length > 1 && addressable.every((k) => k.lastResort !== undefined)) {
      const rank = (a: KeyPackageInfo, b: KeyPackageInfo): number =>
        Number(a.lastResort) - Number(b.lastResort) || b.event.created_at - a.event.created_at || (a.event.id < b.event.id ? -1 : a.event.id > b.event.id ? 1 : 0);
      const best = [...addressable].sort(rank)[0] as KeyPackageInfo;
      j.check("MIP00-KP-20", rank(used, best) === 0, [wrapId, used.event.id], `the inviter used KeyPackage ${used.event.id.slice(0, 12)}… where ${best.event.id.slice(0, 12)}… ranks first`);
    }
  }

  // WL-13 / WL-14: the joiner's first self-update (from agent commit observations).
  const selfUpdates = new Map<string, number[]>();
  const commitAt = (id: string): number | undefined => recordById.get(id)?.seenAt;
  for (const o of ctx.observations) {
    if (o.kind !== "commit" || o.committer === undefined || o.decision === "rejected") continue;
    const pure = (o.proposals ?? []).every((p) => p.type === "update" && (p.sender === undefined || p.sender === o.committer));
    const at = commitAt(o.eventId);
    if (!pure || at === undefined) continue;
    const l = selfUpdates.get(o.committer) ?? [];
    l.push(at);
    selfUpdates.set(o.committer, l);
  }
  const appsBy = new Map<string, number[]>();
  for (const o of ctx.observations) {
    if (o.kind !== "application") continue;
    const at = commitAt(o.eventId);
    if (at === undefined) continue;
    const l = appsBy.get(o.sender) ?? [];
    l.push(at);
    appsBy.set(o.sender, l);
  }
  const captureEnd = Math.max(0, ...ctx.events.map((r) => r.seenAt ?? 0));
  const joinedWelcomes = new Set<string>();
  for (const o of ctx.observations) if (o.kind === "welcome" && o.joined !== false) joinedWelcomes.add(o.eventId);
  // Without commit observations that name the committer, self-updates are invisible: do not judge.
  const committersKnown = ctx.observations.some((o) => o.kind === "commit" && o.committer !== undefined);
  for (const [wrapId, w] of ctx.welcomes) {
    if (w.rumor.kind !== 444 || !joinedWelcomes.has(wrapId)) continue;
    const joinAt = recordById.get(wrapId)?.seenAt;
    if (joinAt === undefined) continue;
    if (!committersKnown) {
      j.needKeys("MIP02-WL-13", wrapId, "no commit observations naming committers");
      continue;
    }
    const ups = (selfUpdates.get(w.recipient) ?? []).filter((t) => t >= joinAt).sort((a, b) => a - b);
    const first = ups[0];
    if (first !== undefined) j.check("MIP02-WL-13", first - joinAt <= DAY_MS, wrapId, `the joiner's first self-update came ${((first - joinAt) / 3_600_000).toFixed(1)} h after joining`);
    else if (captureEnd - joinAt > DAY_MS) j.fail("MIP02-WL-13", wrapId, "no self-update by the joiner within 24 h of joining");
    const apps = (appsBy.get(w.recipient) ?? []).filter((t) => t >= joinAt).sort((a, b) => a - b);
    const firstApp = apps[0];
    if (firstApp !== undefined) j.check("MIP02-WL-14", first !== undefined && first < firstApp, wrapId, "the joiner sent an application message before its first self-update");
  }

  // R2 discovery: KR-03 (30443 only on 10002 write relays), WL-16 (wraps on the recipient's 10050).
  if (j.applies("MIP00-KR-03") || j.applies("MIP02-WL-16")) {
    for (const r of ctx.events) {
      const seen = ctx.seenRelays.get(r.event.id);
      if (!seen || seen.size === 0) continue;
      if (r.event.kind === KIND_KP) {
        const rl = latestOf(ctx, 10002, r.event.pubkey);
        if (!rl) continue;
        const write = new Set(rl.event.tags.filter((t) => t[0] === "r" && typeof t[1] === "string" && (t[2] === undefined || t[2] === "write")).map((t) => normRelay(t[1] as string)));
        const outside = [...seen].filter((u) => !write.has(normRelay(u)));
        j.check("MIP00-KR-03", outside.length === 0, r.event.id, `KeyPackage seen on relay(s) outside the author's 10002 write set: ${outside.join(", ")}`);
      } else if (r.event.kind === 1059) {
        const p = tagValues(r.event.tags, "p")[0];
        const inbox = p ? latestOf(ctx, 10050, p) : undefined;
        if (!inbox) continue;
        const relays = new Set(tagValues(inbox.event.tags, "relay").map(normRelay));
        const outside = [...seen].filter((u) => !relays.has(normRelay(u)));
        j.check("MIP02-WL-16", outside.length === 0, r.event.id, `gift wrap seen on relay(s) outside the recipient's 10050: ${outside.join(", ")}`);
      }
    }
  }
}
