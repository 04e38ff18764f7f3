/**
 * `judge(records, { profile, keyring })`: the compliance checker's entry point. Reads a capture
 * (any traffic; black-box) and, with a keyring, opens 445s and gift wraps (white-box). Returns one
 * finding per rule of the judged profile, the malformed inputs, and the profile evidence.
 */
import type { CaptureFormatError, CaptureRecord } from "../../capture.ts";
import { DEFAULT_PROFILE, type ProtocolProfile } from "../../profile.ts";
import { getPublicKey } from "nostr-tools/pure";
import { checkDeletionEvent, checkKeyPackageEvent, checkKeyPackageSequences, checkRelayListEvent, KIND_DELETION, KIND_KP, KIND_KP_LEGACY, KIND_KP_RELAYS } from "./check-keypackages.ts";
import { checkGroupEvent, checkGroupEventSequences, KIND_GROUP_EVENT, prepareGroupKeys } from "./check-group-events.ts";
import { checkGiftWrap, checkWelcomeSequences, KIND_GIFT_WRAP, recipientKeyMap } from "./check-welcomes.ts";
import { checkObservations } from "./check-observations.ts";
import { checkJoinSequences } from "./check-joins.ts";
import { checkMediaAndIdentity } from "./check-media.ts";
import { checkPushTokens } from "./check-push-tokens.ts";
import { checkR2State } from "./check-r2-state.ts";
import { type CheckContext, eventShapeProblem, idAndSignatureProblem } from "./context.ts";
import { type Finding, Judgement, type MalformedInput, type RuleVerdict } from "./judgement.ts";
import type { Keyring } from "./keyring.ts";
import { type DetectedProfile, detectProfile, type ProfileDetection } from "./profile-detect.ts";
import { getRule, isMandatory } from "./rules.ts";
import { type Base64Memo, hexToBytes } from "./util.ts";
import { getSignatureVerifier, type VerifierChoice, type VerifierName } from "./signature-verifier.ts";
import { defaultVerifyWorkers, MIN_EVENTS_FOR_WORKERS, startVerifyOnWorkers, workersCanVerify } from "./verify-workers.ts";

const HEX128 = /^[0-9a-f]{128}$/;

/** Rules that have a check. Others are reported as "not-implemented", never as passed. */
export const IMPLEMENTED_RULES: ReadonlySet<string> = new Set([
  "MIP00-KP-01", "MIP00-KP-02", "MIP00-KP-03", "MIP00-KP-04", "MIP00-KP-05", "MIP00-KP-06", "MIP00-KP-07",
  "MIP00-KP-08", "MIP00-KP-09", "MIP00-KP-10", "MIP00-KP-11", "MIP00-KP-12", "MIP00-KP-13", "MIP00-KP-14",
  "MIP00-KP-15", "MIP00-KP-16", "MIP00-KP-17", "MIP00-KP-18", "MIP00-KP-19", "MIP00-KP-20", "MIP00-KP-21", "MIP00-KP-22",
  "MIP00-CR-01",
  "MIP00-KR-01", "MIP00-KR-02", "MIP00-KR-03", "MIP00-DEL-01",
  "MIP01-GD-01", "MIP01-GD-02", "MIP01-GD-03", "MIP01-GD-04", "MIP01-GD-05", "MIP01-GD-06", "MIP01-GD-07",
  "MIP01-IMG-01", "MIP01-IMG-02",
  "MIP01-GD-08", "MIP01-GD-09", "MIP01-GD-10", "MIP01-GD-11", "MIP01-GD-12", "MIP01-GD-13", "MIP01-GD-14", "MIP01-GD-15",
  "MIP02-WL-01", "MIP02-WL-02", "MIP02-WL-03", "MIP02-WL-04", "MIP02-WL-05", "MIP02-WL-06", "MIP02-WL-07", "MIP02-WL-08",
  "MIP02-WL-09", "MIP02-WL-10", "MIP02-WL-11", "MIP02-WL-12", "MIP02-WL-13", "MIP02-WL-14", "MIP02-WL-15", "MIP02-WL-16",
  "MIP03-GM-01", "MIP03-GM-02", "MIP03-GM-03", "MIP03-GM-04", "MIP03-GM-05", "MIP03-GM-06", "MIP03-GM-07",
  "MIP03-GM-08", "MIP03-GM-09", "MIP03-GM-10", "MIP03-GM-11", "MIP03-GM-12",
  "MIP03-APP-01", "MIP03-APP-02", "MIP03-APP-03", "MIP03-APP-04", "MIP03-APP-05", "MIP03-APP-06",
  "MIP03-CM-01", "MIP03-CM-02", "MIP03-CM-03", "MIP03-CM-04", "MIP03-CM-05", "MIP03-CM-06", "MIP03-CM-07", "MIP03-CM-09", "MIP03-CM-10",
  "MIP03-CM-13", "MIP03-CM-14",
  "MIP04-MD-01", "MIP04-MD-02", "MIP04-MD-03", "MIP04-MD-04", "MIP04-MD-05", "MIP04-MD-06", "MIP04-MD-07", "MIP04-MD-08",
  "MIP05-PN-01", "MIP05-PN-02", "MIP05-PN-03", "MIP05-PN-04", "MIP05-PN-05", "MIP05-PN-06", "MIP05-PN-07",
  "CORE-RT-01", "CORE-AP-01", "CORE-AC-01", "CORE-DUP-01", "CORE-CONF-01",
]);

/** Rules whose check covers only part of the rule: they can fail but never pass. */
export const PARTIAL_RULES: ReadonlyMap<string, string> = new Map([
  ["MIP00-KP-16", "the 104-byte 0x8009 account proof in the leaf"],
  ["MIP01-GD-04", "the ratchet_tree extension of Welcome GroupInfo"],
  ["MIP05-PN-05", "owner_sig over the kind-451 template (its content is not pinned by the digest; shape only)"],
]);

/** Why each rule without a check stays unchecked (shown by `rules` and in not-implemented findings). */
export const NOT_IMPLEMENTED_REASONS: ReadonlyMap<string, string> = new Map([
  ["MIP03-GM-13", "behavioural: which key a receiver deduplicates and orders on is internal; traffic only shows outcomes, which CORE-DUP-01 judges for duplicates"],
  ["MIP03-CM-08", "deliberate: MLS group creation has no commit on the wire, and the epoch-0 commit that adds the first members is legitimately published, so no published bytes identify a 'creation commit'"],
  ["MIP03-CM-11", "needs the R2 convergence state (branch depth, quorum, witness scores, privileged commits) of every candidate branch, which neither traffic nor the keyring's observations carry"],
  ["MIP03-CM-12", "retained rollback states are client storage; traffic and observations show which commit won (MIP03-CM-10), not how many past states a client keeps"],
  ["CORE-RT-02", "needs the routing component before and after each commit, and a commit published under the wrong h is undecryptable with the keyring's per-h epoch keys, so it cannot be tied to its group"],
]);

export interface JudgeOptions {
  /** Judged profile; "auto" (default) detects it and says so when the capture is mixed or unknown. */
  profile?: ProtocolProfile | "auto";
  keyring?: Keyring;
  /** Verify Schnorr signatures of every event (default true). Ids are always checked. */
  verifySignatures?: boolean;
  /** Which Schnorr verifier: "auto" (default: WASM libsecp256k1, else pure JS), "wasm" or "js". */
  signatureVerifier?: VerifierChoice;
  /**
   * Worker threads for WASM signature checks of large captures (at least 2,000 events). Default: one
   * per core, at most 4; 0 verifies on the main thread.
   */
  verifyWorkers?: number;
  /** Capture lines that could not be read, reported as malformed input. */
  captureErrors?: readonly CaptureFormatError[];
}

export interface ComplianceReport {
  tool: "marmot-harness compliance checker";
  /** The profile the rules were judged under. */
  profile: ProtocolProfile;
  profileRequested: ProtocolProfile | "auto";
  detection: ProfileDetection;
  eventCount: number;
  uniqueEvents: number;
  whiteBox: boolean;
  /** The Schnorr verifier that ran ("none" with verifySignatures: false). */
  signatureVerifier: VerifierName | "none";
  /** Worker threads that verified signatures (0: the main thread did). */
  verifyWorkers: number;
  findings: Finding[];
  malformed: MalformedInput[];
  counts: Record<RuleVerdict, number>;
  /** Failed MUST / MUST NOT rules. */
  mandatoryFailures: number;
  /** Failed SHOULD rules. */
  advisoryFailures: number;
  notes: string[];
}

export function chooseProfile(requested: ProtocolProfile | "auto", detected: DetectedProfile): { profile: ProtocolProfile; note?: string } {
  if (requested !== "auto") {
    if (detected !== "unknown" && detected !== requested) return { profile: requested, note: `judged as ${requested} as asked, but the events look ${detected}` };
    return { profile: requested };
  }
  if (detected === "mixed" || detected === "unknown") {
    return { profile: DEFAULT_PROFILE, note: `profile detection says "${detected}"; rules judged under the default ${DEFAULT_PROFILE} — pass --profile to choose` };
  }
  return { profile: detected };
}

export async function judge(records: readonly CaptureRecord[], opts: JudgeOptions = {}): Promise<ComplianceReport> {
  const requested = opts.profile ?? "auto";
  const b64: Base64Memo = new Map();
  const detection = detectProfile(records, b64);
  const chosen = chooseProfile(requested, detection.profile);
  const j = new Judgement(chosen.profile);
  if (chosen.note) j.notes.push(chosen.note);
  for (const e of opts.captureErrors ?? []) j.malformedInput({ line: (e.details.line as number | undefined) ?? undefined, reason: e.message });

  const ctx: CheckContext = {
    j,
    profile: chosen.profile,
    records: [...records],
    b64,
    events: [],
    byId: new Map(),
    verifySignatures: opts.verifySignatures ?? true,
    accountKeys: new Set(),
    keyPackages: new Map(),
    decoded445: new Map(),
    welcomes: new Map(),
    observations: opts.keyring?.observations ?? [],
    badSignature: new Set(),
    seenRelays: new Map(),
    decryptTally: new Map(),
  };
  if (opts.keyring) ctx.keyring = opts.keyring;
  if (ctx.verifySignatures) {
    ctx.verifier = await getSignatureVerifier(opts.signatureVerifier ?? "auto");
    if (ctx.verifier.fallbackReason !== undefined) j.notes.push(ctx.verifier.fallbackReason);
  }

  // 1. Shape, id and signature; merge duplicates (same event seen on several relays).
  const byId = new Map<string, CaptureRecord>();
  const workerCount = opts.verifyWorkers ?? defaultVerifyWorkers(ctx.verifier?.name);
  const deferSignatures = workersCanVerify(ctx.verifier?.name) && workerCount > 0 && records.length >= MIN_EVENTS_FOR_WORKERS;
  const deferred: CaptureRecord[] = [];
  records.forEach((rec, i) => {
    const ev = typeof rec === "object" && rec !== null ? (rec as { event?: unknown }).event : undefined;
    const problem = eventShapeProblem(ev);
    if (problem !== undefined) {
      const id = typeof (ev as { id?: unknown })?.id === "string" ? ((ev as { id: string }).id) : undefined;
      j.malformedInput(id !== undefined ? { eventId: id, reason: `record ${i + 1}: ${problem}` } : { line: i + 1, reason: `record ${i + 1}: ${problem}` });
      return;
    }
    if (rec.relay !== undefined) {
      const s = ctx.seenRelays.get(rec.event.id) ?? new Set<string>();
      s.add(rec.relay);
      ctx.seenRelays.set(rec.event.id, s);
    }
    const prev = byId.get(rec.event.id);
    if (prev) {
      // A copy of an event already read (another relay): its id is re-hashed (a tampered copy with
      // the same id is caught) and its signature verified only when it differs from the first copy's.
      if (rec.event !== prev.event) {
        const copyProblem = idAndSignatureProblem(rec.event, rec.event.sig !== prev.event.sig ? ctx.verifier : undefined);
        if (copyProblem !== undefined) j.malformedInput({ eventId: rec.event.id, reason: `kind ${rec.event.kind}: a copy (record ${i + 1}) ${copyProblem}` });
      }
      if (rec.acks !== undefined && rec.acks.length > 0) byId.set(rec.event.id, { ...prev, acks: [...(prev.acks ?? []), ...rec.acks] });
      return;
    }
    const sigProblem = idAndSignatureProblem(rec.event, deferSignatures ? undefined : ctx.verifier);
    if (sigProblem !== undefined) {
      ctx.badSignature.add(rec.event.id);
      j.malformedInput({ eventId: rec.event.id, reason: `kind ${rec.event.kind}: ${sigProblem}` });
    } else if (deferSignatures) deferred.push(rec);
    byId.set(rec.event.id, rec);
  });
  ctx.events = [...byId.values()];
  // Signatures of events whose id is right, verified in one batch on worker threads while the main
  // thread judges the rules below; the verdicts are merged before the signature rule (MIP03-GM-10).
  const deferredItems = deferSignatures ? deferred.filter((r) => HEX128.test(r.event.sig)) : [];
  const onWorkers = deferSignatures ? startVerifyOnWorkers(deferredItems.map((r) => r.event), workerCount, ctx.verifier?.name) : undefined;
  ctx.byId = byId;

  // 2. Account keys: authors of everything that is not an ephemeral-key envelope, plus keyring identities.
  for (const r of ctx.events) if (r.event.kind !== KIND_GROUP_EVENT && r.event.kind !== KIND_GIFT_WRAP) ctx.accountKeys.add(r.event.pubkey);
  for (const sk of opts.keyring?.recipientSecretKeys ?? []) {
    try {
      ctx.accountKeys.add(getPublicKey(hexToBytes(sk)));
    } catch {
      // invalid scalar: ignored
    }
  }

  // 3. Per-event checks. KeyPackages first (Welcomes and deletions refer to them).
  for (const r of ctx.events) {
    if (r.event.kind === KIND_KP || r.event.kind === KIND_KP_LEGACY) {
      try {
        await checkKeyPackageEvent(ctx, r);
      } catch (e) {
        j.malformedInput({ eventId: r.event.id, reason: `KeyPackage check aborted: ${(e as Error).message}` });
      }
    }
  }
  const keys = prepareGroupKeys(ctx);
  const recipients = recipientKeyMap(ctx);
  for (const r of ctx.events) {
    try {
      switch (r.event.kind) {
        case KIND_KP_RELAYS:
          checkRelayListEvent(ctx, r);
          break;
        case KIND_DELETION:
          checkDeletionEvent(ctx, r);
          break;
        case KIND_GIFT_WRAP:
          checkGiftWrap(ctx, r, recipients);
          break;
        case KIND_GROUP_EVENT:
          checkGroupEvent(ctx, r, keys);
          break;
        case 447:
        case 448:
        case 449:
          j.fail("MIP05-PN-01", r.event.id, `kind ${r.event.kind} published as an outer event instead of inside a 445`);
          break;
        default:
          break;
      }
    } catch (e) {
      j.malformedInput({ eventId: r.event.id, reason: `check aborted on kind ${r.event.kind}: ${(e as Error).message}` });
    }
  }

  // 3b. Deferred signatures: merge the workers' verdicts (or verify here when they could not run).
  let workersUsed = 0;
  if (deferSignatures && ctx.verifier) {
    const verdicts = await onWorkers?.finish();
    if (verdicts !== undefined) workersUsed = Math.min(workerCount, deferredItems.length);
    else j.notes.push("signature worker threads unavailable; verified on the main thread");
    const ok = new Map<string, boolean>();
    deferredItems.forEach((r, i) => ok.set(r.event.id, verdicts ? verdicts[i] === true : ctx.verifier?.verify(r.event, r.event.id) === true));
    for (const r of deferred) {
      const good = ok.get(r.event.id);
      if (good === true) continue;
      ctx.badSignature.add(r.event.id);
      j.malformedInput({ eventId: r.event.id, reason: `kind ${r.event.kind}: ${good === undefined ? "sig is not 128 lowercase hex" : "signature does not verify"}` });
    }
  }
  // MIP03-GM-10 (R1/R2): each 445's id and signature verify (after every verdict is in).
  if (j.applies("MIP03-GM-10")) {
    for (const r of ctx.events) {
      if (r.event.kind !== KIND_GROUP_EVENT) continue;
      const bad = ctx.badSignature.has(r.event.id);
      j.check("MIP03-GM-10", !bad, r.event.id, "445 id or signature does not verify");
    }
  }

  // 4. Sequence rules and observations.
  for (const step of [checkKeyPackageSequences, checkGroupEventSequences, checkWelcomeSequences, checkObservations, checkJoinSequences, checkMediaAndIdentity, checkR2State, checkPushTokens]) {
    try {
      step(ctx);
    } catch (e) {
      j.notes.push(`${step.name} aborted: ${(e as Error).message}`);
    }
  }

  const findings = j.finish(IMPLEMENTED_RULES, PARTIAL_RULES, NOT_IMPLEMENTED_REASONS);
  const counts: Record<RuleVerdict, number> = { pass: 0, fail: 0, "not-applicable": 0, "not-checkable-without-keys": 0, "not-implemented": 0 };
  let mandatoryFailures = 0;
  let advisoryFailures = 0;
  for (const f of findings) {
    counts[f.verdict]++;
    if (f.verdict === "fail") {
      const rule = getRule(f.ruleId);
      if (rule && isMandatory(rule)) mandatoryFailures++;
      else advisoryFailures++;
    }
  }
  return {
    tool: "marmot-harness compliance checker",
    profile: chosen.profile,
    profileRequested: requested,
    detection,
    eventCount: records.length,
    uniqueEvents: ctx.events.length,
    whiteBox: opts.keyring !== undefined,
    signatureVerifier: ctx.verifier?.name ?? "none",
    verifyWorkers: workersUsed,
    findings,
    malformed: j.malformed,
    counts,
    mandatoryFailures,
    advisoryFailures,
    notes: j.notes,
  };
}

/** CLI exit code: 0 all mandatory rules pass, 1 a MUST failed. (2 = bad input is decided by the caller.) */
export function exitCodeFor(report: ComplianceReport): number {
  return report.mandatoryFailures > 0 ? 1 : 0;
}
