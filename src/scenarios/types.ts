/**
 * The scenario data model. A scenario is data: who takes part (agents), over which relays, and
 * the steps they act out. It is written with the typed builder (`builder.ts`) or as a JSON/YAML
 * file validated against `schema.json` (`loader.ts`). The runner (`runner.ts`) acts it out.
 *
 * Names: agents, relays and groups are referred to by scenario-local names (e.g. "alice",
 * "r1", "g"). Group names are labels for groups created by a `create-group` step.
 */
import type { ProtocolProfile } from "../profile.ts";

export type RelayBackend = "sim" | "ws";

export interface RelaySpec {
  /** Scenario-local name, used by agents and faults. */
  name: string;
  /** "sim" (default): the embedded simulated relay; "ws": a real relay at `url`. */
  backend?: RelayBackend;
  /** Required for "ws". */
  url?: string;
  /** Backend options, e.g. for "sim": { rejectProtected, retentionMs, maxEventBytes, queueLimit, latencyMs }. */
  options?: Record<string, unknown>;
}

/** The named bad behaviours an engine agent can reproduce on purpose. */
export const QUIRKS = [
  "trustFirstEose",
  "noPersistAfterSend",
  "skipInnerAuthorCheck",
  "only443KeyPackages",
  "omitMlsProposals",
  "protectedKeyPackages",
  "noHistoryAfterJoin",
  "skipRekeyAfterRemove",
] as const;
export type QuirkName = (typeof QUIRKS)[number];

export type CatchUpMode = "since-cursor" | "full-history";

export interface AgentSpec {
  name: string;
  /** Relay names this agent reads from and writes to. */
  relays: string[];
  quirks?: QuirkName[];
  storage?: "memory" | "file";
  /** Per-agent protocol profile (default: the scenario's). */
  profile?: ProtocolProfile;
  /** How it catches up after being offline (default "since-cursor"). */
  catchUp?: CatchUpMode;
  /** Number of KeyPackages published at start (default 1, last resort). 0 publishes none. */
  keyPackages?: number;
  /** Publish the KeyPackages as last-resort (default true). */
  lastResort?: boolean;
  /** Engine option: labelled non-MIP out-of-band ratchet tree delivery. */
  outOfBandRatchetTree?: boolean;
  /** Commit a self-update right after joining, before the first message (default true; MIP02-WL-14). */
  selfUpdateAfterJoin?: boolean;
  /** Which kind of agent runs it (default "engine"); other kinds are out-of-process peers. */
  implementation?: string;
}

/** Fields shared by every step. */
export interface StepBase {
  /** Free text shown in reports. */
  description?: string;
  /** The step must fail with this error code (or any code when "*"); it fails if it succeeds. */
  expectError?: string;
  /** The step may fail with this error code ('*' for any): recorded as a note, the run goes on. */
  allowError?: string;
  /**
   * Default true: after the step, deliver and process everything in flight before the next step.
   * false leaves it in flight, e.g. so that two admins commit in the same epoch.
   */
  settle?: boolean;
}

export interface CreateGroupStep extends StepBase {
  type: "create-group";
  agent: string;
  group: string;
  name?: string;
  /** Admin agent names; the creator is always one. */
  admins?: string[];
  /** Relay names for the group (default: the creator's relays). */
  relays?: string[];
}
export interface InviteStep extends StepBase {
  type: "invite";
  agent: string;
  group: string;
  /** Agent names to add, in one commit. */
  members: string[];
}
export interface RemoveStep extends StepBase {
  type: "remove";
  agent: string;
  group: string;
  members: string[];
}
export interface SelfUpdateStep extends StepBase {
  type: "self-update";
  agent: string;
  group: string;
}
export interface UpdateGroupDataStep extends StepBase {
  type: "update-group-data";
  agent: string;
  group: string;
  name?: string;
  /** The group's new description (MIP-01 group data); `description` is the step's report text. */
  groupDescription?: string;
  /** Admin agent names (replaces the list). */
  admins?: string[];
}
export interface LeaveStep extends StepBase {
  type: "leave";
  agent: string;
  group: string;
  /** Member that auto-commits the SelfRemove (default: the first online admin other than the leaver). */
  committer?: string;
}
export interface SendStep extends StepBase {
  type: "send";
  agent: string;
  group: string;
  text?: string;
  /**
   * Send an encrypted file instead of text (needs capability "media"). `wrongBlob` (adversarial,
   * capability "media-tamper"): the imeta names another valid blob, the sender's previous upload.
   */
  media?: { filename: string; mimeType: string; bytes: number; wrongBlob?: boolean };
  /** Send this many messages (default 1). */
  count?: number;
  /** Inner rumor kind (default 9). */
  kind?: number;
  /** Forge the inner rumor's author as this agent (interop-bug reproduction; needs the sender to be able to forge). */
  spoofAuthor?: string;
}
export interface OfflineStep extends StepBase {
  type: "offline";
  agent: string;
}
export interface OnlineStep extends StepBase {
  type: "online";
  agent: string;
  catchUp?: CatchUpMode;
}
export interface RestartStep extends StepBase {
  type: "restart";
  agent: string;
}
export interface AdvanceTimeStep extends StepBase {
  type: "advance-time";
  ms: number;
}
export type FaultKind =
  | "drop"
  | "duplicate"
  | "reorder"
  | "delay"
  | "partition"
  | "crash"
  | "restart"
  | "early-eose"
  | "slow-eose"
  | "retention"
  | "queue-limit"
  | "refuse-publish"
  | "no-answer"
  | "heal";

export const FAULT_KINDS: readonly FaultKind[] = ["drop", "duplicate", "reorder", "delay", "partition", "crash", "restart", "early-eose", "slow-eose", "retention", "queue-limit", "refuse-publish", "no-answer", "heal"];
export interface FaultStep extends StepBase {
  type: "fault";
  /** Relay name (all relays when omitted). */
  relay?: string;
  fault: FaultKind;
  /** e.g. { probability: 0.3 } for drop, { agents: ["bob"] } for partition, { ms } for delay. */
  params?: Record<string, unknown>;
}
export interface WaitForConvergenceStep extends StepBase {
  type: "wait-for-convergence";
  group?: string;
  /** Virtual ms to let pass at most (default 60 000). */
  timeoutMs?: number;
}
export interface AssertStep extends StepBase {
  type: "assert";
  group: string;
  /** Agents the assertion is about (default: every online member of the group). */
  agents?: string[];
  epoch?: number;
  /** Exact member set (agent names) or count. */
  members?: string[] | number;
  /** Each listed agent has decrypted at least this many application messages in the group. */
  messagesReceived?: Record<string, number>;
  /** These agents cannot decrypt the group's latest application messages. */
  cannotDecrypt?: string[];
  /** These agents are not (or no longer) members. */
  notMembers?: string[];
  /** Each listed agent has fetched and decrypted at least this many attachments (MIP-04) in the group. */
  mediaReceived?: Record<string, number>;
  /**
   * Each listed agent detected a bad attachment in the group: its latest fetch failed with this
   * error code ("*": any). The failures matched are excused in the media invariant.
   */
  mediaFailed?: Record<string, string>;
  /** Media secrecy probe: these agents cannot open the group's attachments sent after they left it. */
  cannotDecryptMedia?: string[];
  /** These agents fetched and decrypted the group's current image (MIP-01). */
  groupImageFetchedBy?: string[];
  /** No earlier image blob of the group is left on the Blossom server (cleanup after a change). */
  groupImageCleanedUp?: boolean;
}
/** MIP-01: set, change or clear the group image (needs capability "group-image"). */
export interface SetGroupImageStep extends StepBase {
  type: "set-group-image";
  agent: string;
  group: string;
  /** Size of the seeded image, bytes (default 2048). */
  bytes?: number;
  /** 2 (default, R1: image seed + upload seed) or 1 (the key used directly, as older clients write). */
  version?: 1 | 2;
  /** Remove the image instead (the old blob is cleaned up). */
  clear?: boolean;
}
export const BLOSSOM_FAULTS = ["corrupt", "missing", "swap", "delay", "heal"] as const;
export type BlossomFaultKind = (typeof BLOSSOM_FAULTS)[number];
/**
 * A fault on the run's Blossom server. `target` "latest" (default) is the most recently uploaded
 * attachment blob, "all" every blob. swap: GET of the latest blob serves the previous blob's bytes.
 */
export interface BlossomFaultStep extends StepBase {
  type: "blossom-fault";
  fault: BlossomFaultKind;
  target?: "latest" | "all";
  /** For delay. */
  ms?: number;
}
export interface PublishKeyPackageStep extends StepBase {
  type: "publish-key-package";
  agent: string;
  count?: number;
  lastResort?: boolean;
}
export interface RotateKeyPackageStep extends StepBase {
  type: "rotate-key-package";
  agent: string;
}
export interface DeleteKeyPackageStep extends StepBase {
  type: "delete-key-package";
  agent: string;
}

export type Step =
  | CreateGroupStep
  | InviteStep
  | RemoveStep
  | SelfUpdateStep
  | UpdateGroupDataStep
  | LeaveStep
  | SendStep
  | OfflineStep
  | OnlineStep
  | RestartStep
  | AdvanceTimeStep
  | FaultStep
  | WaitForConvergenceStep
  | AssertStep
  | PublishKeyPackageStep
  | RotateKeyPackageStep
  | DeleteKeyPackageStep
  | SetGroupImageStep
  | BlossomFaultStep;

export type StepType = Step["type"];

export const STEP_TYPES: readonly StepType[] = [
  "create-group",
  "invite",
  "remove",
  "self-update",
  "update-group-data",
  "leave",
  "send",
  "offline",
  "online",
  "restart",
  "advance-time",
  "fault",
  "wait-for-convergence",
  "assert",
  "publish-key-package",
  "rotate-key-package",
  "delete-key-package",
  "set-group-image",
  "blossom-fault",
];

/**
 * Capabilities a scenario needs. Agent capabilities: "media", "group-image", "group-image-v2", "media-probe",
 * "media-tamper", "restart", "out-of-band-tree",
 * "quirk:<name>", "profile:<R0|R1>", "spoof-author". Relay capabilities: "faults", "retention",
 * "reject-protected", "delivery-queue".
 */
export interface Requirements {
  agents?: string[];
  relays?: string[];
}

/** Which checkers to run (default all) and their settings. */
export interface CheckSettings {
  convergence?: boolean;
  delivery?: boolean;
  secrecy?: boolean;
  metadata?: boolean;
  compliance?: boolean;
  /** Delivery: agents allowed to miss messages, with the reason (e.g. "offline beyond retention"). */
  excusedDelivery?: { agent: string; reason: string }[];
}

export interface Scenario {
  name: string;
  description: string;
  seed: string;
  profile?: ProtocolProfile;
  relays: RelaySpec[];
  agents: AgentSpec[];
  steps: Step[];
  /** "fail" for interop-bug reproductions with a quirk on. Default "pass". */
  expect?: "pass" | "fail";
  requires?: Requirements;
  checks?: CheckSettings;
  /** Free-form parameters the scenario was built with (e.g. { members: 40 }), for reports. */
  params?: Record<string, unknown>;
  /** Names of the checks that must fail for an expect:"fail" scenario to count as a correct reproduction. */
  expectFailureOf?: string[];
  /** Why the expected failure is expected (e.g. a known dependency bug); written into the result's notes. */
  expectReason?: string;
  /**
   * Profiles the story applies to (default: all). A run under another profile (e.g. `--profile R0`
   * for a story about SelfRemove) is reported "not-applicable" with `profileReason`, not run.
   */
  profiles?: ProtocolProfile[];
  /** Why the story needs `profiles`. */
  profileReason?: string;
}
