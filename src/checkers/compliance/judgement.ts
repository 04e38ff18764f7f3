/**
 * The judgement model. Checks record, per rule, passes, failures (with the offending event ids)
 * and "needs keys" notes; `finish` folds them into one Finding per rule of the judged profile.
 */
import type { ProtocolProfile } from "../../profile.ts";
import { type Rule, type RuleLevel, rulesForProfile } from "./rules.ts";

export type RuleVerdict = "pass" | "fail" | "not-applicable" | "not-checkable-without-keys" | "not-implemented";

export interface Finding {
  ruleId: string;
  level: RuleLevel;
  verdict: RuleVerdict;
  /** Offending events (fail) or the events that could not be judged without keys. */
  eventIds: string[];
  message: string;
  /** How many events/subjects passed this rule. */
  passed: number;
}

export interface MalformedInput {
  eventId?: string;
  line?: number;
  reason: string;
}

interface RuleState {
  passed: number;
  failIds: string[];
  failIdSet: Set<string>;
  messages: string[];
  needKeys: string[];
  needKeysReason?: string;
}

const MAX_MESSAGES = 5;
const MAX_IDS = 10_000;

export class Judgement {
  readonly profile: ProtocolProfile;
  private readonly active: Set<string>;
  private readonly states = new Map<string, RuleState>();
  readonly malformed: MalformedInput[] = [];
  readonly notes: string[] = [];

  constructor(profile: ProtocolProfile) {
    this.profile = profile;
    this.active = new Set(rulesForProfile(profile).map((r) => r.id));
  }

  /** True when the rule belongs to the judged profile (checks may skip work otherwise). */
  applies(ruleId: string): boolean {
    return this.active.has(ruleId);
  }

  private state(ruleId: string): RuleState | undefined {
    if (!this.active.has(ruleId)) return undefined;
    let s = this.states.get(ruleId);
    if (!s) {
      s = { passed: 0, failIds: [], failIdSet: new Set(), messages: [], needKeys: [] };
      this.states.set(ruleId, s);
    }
    return s;
  }

  pass(ruleId: string): void {
    const s = this.state(ruleId);
    if (s) s.passed++;
  }

  fail(ruleId: string, eventIds: string | readonly string[], message: string): void {
    const s = this.state(ruleId);
    if (!s) return;
    const ids = typeof eventIds === "string" ? [eventIds] : eventIds;
    for (const id of ids) {
      if (!s.failIdSet.has(id) && s.failIds.length < MAX_IDS) {
        s.failIdSet.add(id);
        s.failIds.push(id);
      }
    }
    if (s.messages.length < MAX_MESSAGES && !s.messages.includes(message)) s.messages.push(message);
  }

  /** The rule applies to this event but judging it needs keys the checker does not have. */
  needKeys(ruleId: string, eventId: string, reason: string): void {
    const s = this.state(ruleId);
    if (!s) return;
    if (s.needKeys.length < MAX_IDS) s.needKeys.push(eventId);
    s.needKeysReason ??= reason;
  }

  /** Record pass or fail from a boolean. */
  check(ruleId: string, ok: boolean, eventIds: string | readonly string[], failMessage: string): void {
    if (ok) this.pass(ruleId);
    else this.fail(ruleId, eventIds, failMessage);
  }

  malformedInput(m: MalformedInput): void {
    this.malformed.push(m);
  }

  finish(implemented: ReadonlySet<string>, partial: ReadonlyMap<string, string>, reasons: ReadonlyMap<string, string> = new Map()): Finding[] {
    const out: Finding[] = [];
    for (const rule of rulesForProfile(this.profile)) out.push(this.findingFor(rule, implemented, partial, reasons));
    return out;
  }

  private findingFor(rule: Rule, implemented: ReadonlySet<string>, partial: ReadonlyMap<string, string>, reasons: ReadonlyMap<string, string>): Finding {
    const base = { ruleId: rule.id, level: rule.level };
    const s = this.states.get(rule.id);
    if (!implemented.has(rule.id)) {
      const why = reasons.get(rule.id);
      return { ...base, verdict: "not-implemented", eventIds: [], message: why !== undefined ? `no check: ${why}` : "no check exists for this rule yet", passed: 0 };
    }
    if (s && s.failIds.length > 0) {
      const more = s.failIds.length > 1 ? ` (${s.failIds.length} events)` : "";
      return { ...base, verdict: "fail", eventIds: [...s.failIds], message: s.messages.join("; ") + more, passed: s.passed };
    }
    if (s && s.needKeys.length > 0) {
      return {
        ...base,
        verdict: "not-checkable-without-keys",
        eventIds: [...s.needKeys],
        message: `${s.needKeys.length} event(s) need keys: ${s.needKeysReason ?? ""}`,
        passed: s.passed,
      };
    }
    const partialNote = partial.get(rule.id);
    if (s && s.passed > 0) {
      if (partialNote !== undefined) {
        return { ...base, verdict: "not-implemented", eventIds: [], message: `partial check found no violation in ${s.passed} subject(s); not verified: ${partialNote}`, passed: s.passed };
      }
      return { ...base, verdict: "pass", eventIds: [], message: `${s.passed} subject(s) checked`, passed: s.passed };
    }
    if (partialNote !== undefined) {
      return { ...base, verdict: "not-implemented", eventIds: [], message: `partial check only; not verified: ${partialNote}`, passed: 0 };
    }
    return { ...base, verdict: "not-applicable", eventIds: [], message: "no input this rule applies to", passed: 0 };
  }
}
