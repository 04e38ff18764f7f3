/**
 * The media parts of scenario runs, called by the runner: faults on the run's Blossom server
 * (`blossom-fault` steps) and the media assertions of `assert` steps (attachments received,
 * bad attachments detected, removed members unable to open later attachments, group image fetched
 * and old image blobs cleaned up). Everything is read from the history the agents recorded (see
 * agent-media.ts for the entry shapes) and from the server's store.
 */
import type { Agent } from "../agents/types.ts";
import { HarnessError } from "../errors.ts";
import type { History, HistoryEntry } from "../history.ts";
import type { AssertStep, BlossomFaultStep, Scenario, Step } from "../scenarios/types.ts";
import { BlossomClient } from "./client.ts";
import type { BlossomServer } from "./server.ts";

export class MediaScenarioError extends HarnessError {}

/** True when a run of this scenario needs the harness's Blossom server. */
export function needsBlossom(s: Scenario): boolean {
  const caps = s.requires?.agents ?? [];
  return caps.includes("media") || caps.includes("group-image") || s.steps.some((st) => (st.type === "send" && st.media !== undefined) || st.type === "set-group-image" || st.type === "blossom-fault");
}

/**
 * Agent capabilities one step needs for media: everyone fetches attachments and images ("media"),
 * the image setter needs "group-image" (and "group-image-v2" for a v2 image), a tampering sender
 * "media-tamper", a probed agent "media-probe".
 */
export function mediaCapabilities(s: Scenario, st: Step): [string, string][] {
  const out: [string, string][] = [];
  const everyone = (): void => {
    for (const a of s.agents) out.push([a.name, "media"]);
  };
  if (st.type === "send" && st.media) {
    everyone();
    if (st.media.wrongBlob) out.push([st.agent, "media-tamper"]);
  } else if (st.type === "set-group-image") {
    everyone();
    out.push([st.agent, "group-image"]);
    // a v2 image needs group data v2+ (image_upload_key): not in R0 groups
    if (!st.clear && (st.version ?? 2) === 2) out.push([st.agent, "group-image-v2"]);
  } else if (st.type === "assert") {
    for (const n of st.cannotDecryptMedia ?? []) out.push([n, "media-probe"]);
    for (const n of [...Object.keys(st.mediaReceived ?? {}), ...Object.keys(st.mediaFailed ?? {}), ...(st.groupImageFetchedBy ?? [])]) out.push([n, "media"]);
  }
  return out;
}

/** The blob addresses of attachment uploads, oldest first. */
function uploads(entries: readonly HistoryEntry[]): string[] {
  const out: string[] = [];
  for (const e of entries) if (e.op === "media-upload" && e.type === "ok" && typeof e.data.blob === "string" && !out.includes(e.data.blob)) out.push(e.data.blob);
  return out;
}

function addTo(list: "all" | string[], sha: string): "all" | string[] {
  return list === "all" ? "all" : [...list.filter((x) => x !== sha), sha];
}

/** Apply a `blossom-fault` step to the run's server; returns the step's report text. */
export function applyBlossomFault(server: BlossomServer, history: History, st: BlossomFaultStep): string {
  const target = st.target ?? "latest";
  const ups = uploads(history.entries);
  const latest = ups[ups.length - 1];
  const needLatest = (): string => {
    if (!latest) throw new MediaScenarioError("BLOSSOM_FAULT_NO_TARGET", `blossom-fault ${st.fault}: no attachment was uploaded yet`);
    return latest;
  };
  let text: string;
  switch (st.fault) {
    case "corrupt":
      server.setFaults({ corrupt: target === "all" ? "all" : addTo(server.faults.corrupt, needLatest()) });
      text = target === "all" ? "every blob is served corrupted" : `blob ${needLatest().slice(0, 12)}… is served corrupted`;
      break;
    case "missing":
      server.setFaults({ missing: target === "all" ? "all" : addTo(server.faults.missing, needLatest()) });
      text = target === "all" ? "every blob answers 404" : `blob ${needLatest().slice(0, 12)}… answers 404`;
      break;
    case "swap": {
      if (target === "all") throw new MediaScenarioError("BLOSSOM_FAULT_BAD_TARGET", "blossom-fault swap works on the latest blob only");
      const to = ups[ups.length - 2];
      if (!to) throw new MediaScenarioError("BLOSSOM_FAULT_NO_TARGET", "blossom-fault swap needs two uploaded attachments (the latest is served as the previous one)");
      server.setFaults({ swap: { ...server.faults.swap, [needLatest()]: to } });
      text = `blob ${needLatest().slice(0, 12)}… is served with the bytes of ${to.slice(0, 12)}…`;
      break;
    }
    case "delay":
      server.setFaults({ delayMs: st.ms ?? 200 });
      text = `every answer waits ${st.ms ?? 200} ms`;
      break;
    case "heal":
      server.clearFaults();
      text = "faults cleared";
      break;
  }
  // swap as [from, to] pairs: hashes as values, so the history's structural digest can normalise them
  history.record("runner", "info", "blossom-fault", { fault: st.fault, target, faults: { ...server.faults, swap: Object.entries(server.faults.swap) } });
  return text;
}

export interface MediaAssertContext {
  history: History;
  /** The run's Blossom server URL (the harness's own or an external one). */
  blossomUrl: string | undefined;
  groupId: string;
  agent(name: string): Agent;
  /** Run an agent promise (the runner's driver). */
  drive<T>(p: Promise<T>): Promise<T>;
}

/** True when the assert step asks about media. */
export function hasMediaAssertions(st: AssertStep): boolean {
  return st.mediaReceived !== undefined || st.mediaFailed !== undefined || (st.cannotDecryptMedia?.length ?? 0) > 0 || st.groupImageFetchedBy !== undefined || st.groupImageCleanedUp !== undefined;
}

function imetasOf(rumor: unknown): string[][] {
  const tags = (rumor as { tags?: unknown } | undefined)?.tags;
  return Array.isArray(tags) ? tags.filter((t): t is string[] => Array.isArray(t) && t[0] === "imeta" && t.every((x) => typeof x === "string")) : [];
}

/** Check the media assertions of an assert step; returns the problems (empty when they hold). */
export async function checkMediaAssertions(st: AssertStep, c: MediaAssertContext): Promise<string[]> {
  const problems: string[] = [];
  const entries = c.history.entries;
  const gid = c.groupId;
  for (const [n, want] of Object.entries(st.mediaReceived ?? {})) {
    const got = entries.filter((e) => e.actor === n && e.op === "media" && e.type === "ok" && e.data.groupId === gid).length;
    if (got < want) problems.push(`${n} decrypted ${got} attachment(s) in ${st.group}, expected at least ${want}`);
  }
  for (const [n, code] of Object.entries(st.mediaFailed ?? {})) {
    const last = entries.filter((e) => e.actor === n && e.op === "media" && e.data.groupId === gid).pop();
    if (!last) problems.push(`${n} fetched no attachment in ${st.group}`);
    else if (last.type === "ok") problems.push(`${n} opened its latest attachment (${String(last.data.filename)}): the bad blob went undetected`);
    else if (code !== "*" && last.data.code !== code) problems.push(`${n} failed with ${String(last.data.code)}, expected ${code}`);
    else c.history.record("runner", "info", "media-expected-failure", { agent: n, eventId: last.data.eventId, groupId: gid, code: last.data.code });
  }
  for (const n of st.cannotDecryptMedia ?? []) {
    const a = c.agent(n);
    if (!a.probeMedia) {
      problems.push(`${n} cannot be probed for media`);
      continue;
    }
    let gone = -1;
    for (const e of entries) if (e.actor === n && e.op === "removed" && e.data.groupId === gid) gone = e.seq;
    if (gone < 0) {
      problems.push(`${n} was never removed from ${st.group}: nothing to probe`);
      continue;
    }
    const after = new Set(entries.filter((e) => e.op === "send" && e.type === "ok" && e.data.media && e.data.groupId === gid && e.seq > gone).map((e) => String(e.data.eventId)));
    const attachments: { eventId: string; imeta: string[] }[] = [];
    const seen = new Set<string>();
    for (const e of entries) {
      if (e.op !== "decrypt" || e.type !== "ok" || !after.has(String(e.data.eventId)) || seen.has(String(e.data.eventId))) continue;
      seen.add(String(e.data.eventId));
      for (const imeta of imetasOf(e.data.rumor)) attachments.push({ eventId: String(e.data.eventId), imeta });
    }
    if (attachments.length === 0) {
      problems.push(`no attachment sent after ${n}'s removal to probe with`);
      continue;
    }
    const res = await c.drive(a.probeMedia(gid, attachments));
    const leaked = res.filter((r) => r.outcome === "decrypted");
    if (leaked.length > 0) problems.push(`${n} opened ${leaked.length} of ${res.length} attachment(s) sent after its removal`);
  }
  const setters = entries.filter((e) => e.op === "group-image" && e.type === "ok" && e.data.role === "setter" && e.data.groupId === gid);
  const current = setters[setters.length - 1];
  for (const n of st.groupImageFetchedBy ?? []) {
    if (!current || current.data.imageHash === null) {
      problems.push(`no group image is set in ${st.group}`);
      break;
    }
    const last = entries.filter((e) => e.actor === n && e.op === "group-image" && e.data.groupId === gid).pop();
    if (!last) problems.push(`${n} never fetched the group image`);
    else if (last.type !== "ok") problems.push(`${n} could not open the group image: ${String(last.data.code)} ${String(last.data.message)}`);
    else if (last.data.imageHash !== current.data.imageHash) problems.push(`${n} holds image ${String(last.data.imageHash).slice(0, 12)}…, not the current ${String(current.data.imageHash).slice(0, 12)}…`);
  }
  if (st.groupImageCleanedUp) {
    if (!c.blossomUrl) problems.push("no Blossom server to inspect");
    else {
      const ups = [...new Set(entries.filter((e) => e.op === "group-image-upload" && e.type === "ok" && e.data.groupId === gid).map((e) => String(e.data.sha256)))];
      const old = ups.filter((h) => h !== current?.data.imageHash);
      if (old.length === 0) problems.push(`no earlier group image in ${st.group} to clean up`);
      // BUD-01 HEAD, so that any Blossom server can be asked
      const client = new BlossomClient(c.blossomUrl);
      const left: string[] = [];
      for (const h of old) if (await c.drive(client.has(h))) left.push(h);
      if (left.length > 0) problems.push(`${left.length} earlier image blob(s) still on the Blossom server (${left.map((h) => `${h.slice(0, 12)}…`).join(", ")})`);
    }
  }
  return problems;
}
