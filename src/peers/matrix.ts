/**
 * The interop matrix: run chosen scenarios with each role (creator, invitee, sender, remover,
 * offline member) assigned to each available implementation in turn, everyone else being the
 * in-process engine, and tabulate who works with whom (as the IETF MLS interop runner does
 * across MLS libraries).
 *
 * Every cell is one scenario run on real WebSocket relays (the harness relay started on
 * 127.0.0.1 for the run, faults included, unless URLs are given). A cell is "refused" before
 * step 0 when the implementation cannot do what the role needs, "skipped" when the
 * implementation is not available here, and otherwise carries the run's verdict (a failed cell
 * starts with the events agents refused). After each run the assigned peer's published events
 * go through profile detection; a profile other than the scenario's makes the cell "refused" with the
 * detector's message ("peer X speaks R2, engine agents speak R1").
 */
import type { HistoryEntry } from "../history.ts";
import type { ProtocolProfile } from "../profile.ts";
import type { Verdict } from "../report/types.ts";
import type { RelayBackendFactory } from "../scenarios/backends.ts";
import type { Scenario } from "../scenarios/types.ts";
import { IN_PROCESS, findAdapter, implementationStatus, peerAgentFactory, refusals, type AgentFactoryHook } from "./implementations.ts";
import { assertProfilesCompatible, detectProfile, ProfileMismatchError } from "./profile-detect.ts";

export const ROLES = ["creator", "invitee", "sender", "remover", "offline-member"] as const;
export type Role = (typeof ROLES)[number];

export type CellVerdict = Verdict | "skipped";

export interface MatrixCell {
  scenario: string;
  role: Role | "baseline";
  agent: string | null;
  implementation: string;
  verdict: CellVerdict;
  message: string;
  ms: number;
}

export interface MatrixResult {
  startedAt: string;
  implementations: { id: string; available: boolean; skipReason?: string }[];
  cells: MatrixCell[];
}

/** Which agent plays each role in a scenario (the first one that does it). */
export function roleAgents(s: Scenario): Partial<Record<Role, string>> {
  const out: Partial<Record<Role, string>> = {};
  for (const st of s.steps) {
    if (st.type === "create-group") out.creator ??= st.agent;
    if (st.type === "invite") out.invitee ??= st.members[0];
    if (st.type === "send") out.sender ??= st.agent;
    if (st.type === "remove") out.remover ??= st.agent;
    if (st.type === "offline") out["offline-member"] ??= st.agent;
  }
  return out;
}

/** What runs one scenario: the project's runner, given relay URLs (and a backend factory for them) and the agent factory hook. */
export type ScenarioRunnerFn = (
  scenario: Scenario,
  opts: { relayUrls: string[]; relayFactory?: RelayBackendFactory; agentFactory: AgentFactoryHook; workDir: string },
) => Promise<{ verdict: Verdict; ok: boolean; failures: string[]; history: readonly HistoryEntry[] }>;

/** Relays started for one cell: URLs, optionally a backend factory that can inject faults into them. */
export interface CellRelays {
  urls: string[];
  relayFactory?: RelayBackendFactory;
  close(): Promise<void>;
}

export interface MatrixOptions {
  scenarios: Scenario[];
  /** Implementations to try in each role (default: every known one; unavailable ones are "skipped"). */
  implementations?: string[];
  roles?: Role[];
  /** One URL per scenario relay; when absent, `startRelays` is called per run. */
  relayUrls?: string[];
  /** Start the scenario's relays for one run (e.g. startLocalRelays: the harness relay over WebSocket, faults included). */
  startRelays?: (scenario: Scenario) => Promise<CellRelays>;
  run: ScenarioRunnerFn;
  workDir: string;
  env?: NodeJS.ProcessEnv;
  onCell?: (cell: MatrixCell) => void;
}

function profileOf(s: Scenario): ProtocolProfile {
  return s.profile ?? "R1";
}

/** The events agents refused in a run, by agent and code ("rejected: bob WELCOME_REQUIRED_CAPABILITIES ×1"): the cause behind a failed step. */
export function rejections(history: readonly HistoryEntry[]): string | undefined {
  const counts = new Map<string, number>();
  for (const e of history) {
    if (e.op !== "reject" || e.type !== "fail" || typeof e.data.code !== "string") continue;
    const key = `${e.actor} ${e.data.code}`;
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  if (counts.size === 0) return undefined;
  return `rejected: ${[...counts].map(([k, n]) => `${k} ×${n}`).join(", ")}`;
}

async function runCell(o: MatrixOptions, s: Scenario, role: MatrixCell["role"], agent: string | null, implementation: string): Promise<MatrixCell> {
  const base = { scenario: s.name, role, agent, implementation };
  const t0 = Date.now();
  const assignments = agent && implementation !== IN_PROCESS ? { [agent]: implementation } : {};
  const relays: CellRelays = o.relayUrls ? { urls: o.relayUrls, close: async () => undefined } : await (o.startRelays as NonNullable<MatrixOptions["startRelays"]>)(s);
  // On shared relays (--relay), earlier runs left KeyPackages of the same seeded identities behind:
  // give each cell its own identities so nobody is invited through a stale KeyPackage.
  const scenario = o.relayUrls ? { ...s, seed: `${s.seed}/${role}/${implementation}` } : s;
  try {
    const out = await o.run(scenario, { relayUrls: relays.urls, ...(relays.relayFactory ? { relayFactory: relays.relayFactory } : {}), agentFactory: peerAgentFactory({ workDir: o.workDir, assignments, ...(o.env ? { env: o.env } : {}) }), workDir: o.workDir });
    if (out.verdict === "refused") return { ...base, verdict: "refused", message: out.failures.slice(0, 3).join("; ") || "refused before step 0", ms: Date.now() - t0 };
    if (agent && implementation !== IN_PROCESS && !out.history.some((e) => e.op === "peer" && e.actor === agent)) {
      return { ...base, verdict: "error", message: `the runner built ${agent} in process: it does not call the agent factory hook (RunOptions.agentFactory)`, ms: Date.now() - t0 };
    }
    if (agent && implementation !== IN_PROCESS) {
      const published = new Set(out.history.filter((e) => e.op === "publish" && e.type === "invoke" && e.actor === agent).map((e) => String(e.data.eventId)));
      const events = out.history.filter((e) => e.op === "event" && published.has(String((e.data.event as { id?: string } | undefined)?.id))).map((e) => e.data.event as never);
      try {
        assertProfilesCompatible([detectProfile(`${agent} (${implementation})`, events)], profileOf(s));
      } catch (e) {
        if (e instanceof ProfileMismatchError) return { ...base, verdict: "refused", message: e.message, ms: Date.now() - t0 };
        throw e;
      }
    }
    const verdict: CellVerdict = out.ok ? "pass" : out.verdict === "error" ? "error" : "fail";
    const why = out.failures.slice(0, 3).join("; ") || `verdict ${out.verdict}`;
    const rejected = rejections(out.history);
    return { ...base, verdict, message: out.ok ? `${out.verdict} as expected` : rejected ? `${rejected}; ${why}` : why, ms: Date.now() - t0 };
  } catch (e) {
    const code = (e as { code?: string }).code;
    const verdict: CellVerdict = code === "SCENARIO_REFUSED" || code === "PROFILE_MISMATCH" ? "refused" : "error";
    return { ...base, verdict, message: (e as Error).message, ms: Date.now() - t0 };
  } finally {
    await relays.close();
  }
}

export async function runMatrix(o: MatrixOptions): Promise<MatrixResult> {
  const status = implementationStatus(o.env ?? process.env);
  const impls = o.implementations ?? status.map((s) => s.id);
  for (const id of impls) if (id !== IN_PROCESS) findAdapter(id);
  const roles = o.roles ?? [...ROLES];
  const cells: MatrixCell[] = [];
  const push = (c: MatrixCell): void => {
    cells.push(c);
    o.onCell?.(c);
  };
  for (const s of o.scenarios) {
    push(await runCell(o, s, "baseline", null, IN_PROCESS));
    const who = roleAgents(s);
    for (const role of roles) {
      const agent = who[role];
      if (!agent) continue;
      for (const impl of impls) {
        if (impl === IN_PROCESS) continue;
        const st = status.find((x) => x.id === impl);
        if (st && !st.available) {
          push({ scenario: s.name, role, agent, implementation: impl, verdict: "skipped", message: st.skipReason ?? "not available", ms: 0 });
          continue;
        }
        const refused = refusals(s, agent, impl);
        if (refused.length > 0) {
          push({ scenario: s.name, role, agent, implementation: impl, verdict: "refused", message: refused.join("; "), ms: 0 });
          continue;
        }
        push(await runCell(o, s, role, agent, impl));
      }
    }
  }
  return { startedAt: new Date().toISOString(), implementations: status.filter((x) => impls.includes(x.id)).map((x) => ({ id: x.id, available: x.available, ...(x.skipReason ? { skipReason: x.skipReason } : {}) })), cells };
}

const MARK: Record<CellVerdict, string> = { pass: "✅ pass", fail: "❌ fail", error: "💥 error", refused: "⛔ refused", "not-applicable": "– n/a", skipped: "⏭ skipped" };

function esc(s: string): string {
  return s.replace(/\|/g, "\\|").replace(/\n/g, " ");
}

/** The who-works-with-whom table: one row per scenario × role, one column per implementation. */
export function matrixMarkdown(r: MatrixResult): string {
  const impls = [...new Set(r.cells.filter((c) => c.role !== "baseline").map((c) => c.implementation))];
  const lines: string[] = ["# Interop matrix", "", `Run ${r.startedAt}. Each cell: the role played by that implementation, every other agent by the in-process engine.`, ""];
  lines.push(`| scenario | role (agent) | baseline (all in process) | ${impls.join(" | ")} |`);
  lines.push(`|---|---|---|${impls.map(() => "---").join("|")}|`);
  const scenarios = [...new Set(r.cells.map((c) => c.scenario))];
  for (const s of scenarios) {
    const baseline = r.cells.find((c) => c.scenario === s && c.role === "baseline");
    const roles = [...new Set(r.cells.filter((c) => c.scenario === s && c.role !== "baseline").map((c) => c.role))];
    for (const role of roles) {
      const agent = r.cells.find((c) => c.scenario === s && c.role === role)?.agent ?? "";
      const row = impls.map((i) => {
        const c = r.cells.find((x) => x.scenario === s && x.role === role && x.implementation === i);
        return c ? MARK[c.verdict] : "";
      });
      lines.push(`| ${s} | ${role} (${agent}) | ${baseline ? MARK[baseline.verdict] : ""} | ${row.join(" | ")} |`);
    }
  }
  const notes = r.cells.filter((c) => c.verdict !== "pass" && c.verdict !== "skipped");
  if (notes.length) {
    lines.push("", "## Why not pass", "");
    for (const c of notes) lines.push(`- ${c.scenario} / ${c.role}${c.agent ? ` (${c.agent})` : ""} / ${c.implementation}: ${c.verdict} — ${esc(c.message)}`);
  }
  const skipped = r.implementations.filter((i) => !i.available);
  if (skipped.length) {
    lines.push("", "## Skipped implementations", "");
    for (const i of skipped) lines.push(`- ${i.id}: ${i.skipReason}`);
  }
  return lines.join("\n") + "\n";
}
