/**
 * What a scenario run produces, as reports read it. The runner fills it; the report writers
 * (JSON, Markdown, JUnit XML, HTML) and the capsule writer only read it.
 */
import type { ProtocolProfile } from "../profile.ts";

export type Verdict = "pass" | "fail" | "error" | "refused" | "not-applicable";

export interface StepResult {
  index: number;
  /** Step type, e.g. "invite", "send", "offline". */
  type: string;
  /** Short human description. */
  description: string;
  verdict: Verdict;
  /** Virtual time (ms since epoch) when the step started and ended. */
  startedAt: number;
  endedAt: number;
  message?: string;
}

export interface CheckResult {
  /** e.g. "convergence", "delivery", "secrecy", "metadata", "assert:epoch", "mdk:expectation". */
  name: string;
  verdict: Verdict;
  message: string;
  /** Offending ids (events, agents) for drill-down. */
  subjects?: string[];
}

export interface ComplianceSummary {
  profile: ProtocolProfile | "mixed" | "unknown";
  counts: Record<string, number>;
  /** Failed rules: id, level, offending event ids, message. */
  failures: { ruleId: string; level: string; eventIds: string[]; message: string }[];
  /** Ids of the rules that passed (judged on at least one subject and never failed). */
  passed?: string[];
}

export interface RunMetrics {
  /** Epoch of each group (by agent-observed majority) over virtual time. */
  epochsOverTime: { t: number; group: string; epoch: number }[];
  /** Publish-to-decrypt latency per delivered application message, virtual ms. */
  deliveryLatencyMs: number[];
  /** Real CPU cost of commits against the group size at the time. */
  commitCost: { members: number; createMs: number; processMsPerMember?: number }[];
  /** Largest Welcome rumor/gift wrap seen, bytes, with the member count. */
  welcomeSizes?: { members: number; rumorBytes: number; wrapBytes?: number }[];
  wallMs: number;
  cpuMs: number;
  peakRssBytes: number;
}

export interface ScenarioResult {
  scenario: string;
  description: string;
  seed: string;
  profile: ProtocolProfile;
  relayBackend: string;
  verdict: Verdict;
  /** Quirk runs are expected to fail; `verdict` is the raw result and `expected` what the catalogue wants. */
  expected: "pass" | "fail";
  /** True when verdict matches expected. */
  ok: boolean;
  steps: StepResult[];
  checks: CheckResult[];
  compliance?: ComplianceSummary;
  metrics: RunMetrics;
  failures: string[];
  /** Folder with scenario, seed, schedule and event trace (JSONL) when the run failed. */
  capsuleDir?: string;
  /** One line that reproduces this run. */
  replayCommand: string;
  /** Extra findings a scenario reports (e.g. welcome-size-limit's wall). */
  notes: string[];
}

export interface RunReport {
  tool: "marmot-harness";
  version: string;
  startedAt: string;
  finishedAt: string;
  profile: ProtocolProfile;
  results: ScenarioResult[];
}
