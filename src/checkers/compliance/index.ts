/** The MIP compliance checker: rule catalogue, judge, keyring, live capture and renderers. */
export { RULES, getRule, rulesForProfile, isMandatory, type Rule, type RuleLevel, type RuleInput } from "./rules.ts";
export { judge, exitCodeFor, chooseProfile, IMPLEMENTED_RULES, NOT_IMPLEMENTED_REASONS, PARTIAL_RULES, type ComplianceReport, type JudgeOptions } from "./judge.ts";
export type { Finding, MalformedInput, RuleVerdict } from "./judgement.ts";
export { parseKeyring, readKeyringFile, KeyringError, type Keyring, type Observation } from "./keyring.ts";
export { detectProfile, type DetectedProfile, type ProfileDetection } from "./profile-detect.ts";
export { renderComplianceMarkdown, renderComplianceJson, renderComplianceJunit, toComplianceSummary } from "./output.ts";
export { captureFromRelay, DEFAULT_MARMOT_KINDS, LiveCaptureError, type LiveCaptureOptions } from "./live.ts";
export { getSignatureVerifier, type SignatureVerifier, type VerifierChoice, type VerifierName } from "./signature-verifier.ts";
