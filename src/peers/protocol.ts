/**
 * The peer protocol: how the harness drives a Marmot client that lives in another process.
 *
 * Line-delimited JSON over stdio. The harness writes one request line; the peer answers with one
 * response line carrying the same `request_id`. Every line is an envelope
 * `{ protocol, request_id, command }` (request) or `{ protocol, request_id, participant, body }`
 * (response); `command` and `body` are tagged by `type` (snake_case).
 *
 * Two protocol names are understood:
 * - `marmot-harness-peer-v1`: ours, a strict superset of MDK's node protocol (extra commands such
 *   as `publish_key_package`, `set_online`, `ping`; optional `group` on group commands; a richer
 *   observation with every group, epoch commitments and received messages). Unknown fields are
 *   rejected.
 * - `marmot-convergence-node-v1`: MDK's `cgka-conformance-node` protocol. Same envelope and command
 *   names; unknown fields are tolerated (as MDK's own decoder does), our extension commands are not
 *   allowed.
 *
 * The mapping between the two is written down in docs/peer-protocol.md.
 */
import { sha256 } from "@noble/hashes/sha2.js";
import { bytesToHex, utf8ToBytes } from "@noble/hashes/utils.js";
import { HarnessError } from "../errors.ts";
import type { ProtocolProfile } from "../profile.ts";

export const PEER_PROTOCOL_VERSION = "marmot-harness-peer-v1";
export const MDK_NODE_PROTOCOL_VERSION = "marmot-convergence-node-v1";
export type PeerProtocolName = typeof PEER_PROTOCOL_VERSION | typeof MDK_NODE_PROTOCOL_VERSION;
export const PEER_PROTOCOLS: readonly PeerProtocolName[] = [PEER_PROTOCOL_VERSION, MDK_NODE_PROTOCOL_VERSION];
/** Largest line either side may write (same limit as MDK's node: 1 MiB). */
export const MAX_LINE_BYTES = 1_048_576;
/** Largest attachment a `send_application` may ask a peer to make (it draws the bytes itself). */
export const MAX_PEER_MEDIA_BYTES = 100 * 1024 * 1024;
export const OBSERVATION_SCHEMA_VERSION = "1";

/** A line that is not a valid protocol message. `code` says how it was wrong. */
export class PeerProtocolError extends HarnessError {
  constructor(
    code:
      | "PEER_PROTOCOL_NOT_JSON"
      | "PEER_PROTOCOL_BAD_SHAPE"
      | "PEER_PROTOCOL_WRONG_VERSION"
      | "PEER_PROTOCOL_FRAME_TOO_LARGE"
      | "PEER_PROTOCOL_UNKNOWN_COMMAND"
      | "PEER_PROTOCOL_UNSUPPORTED",
    message: string,
    details: Record<string, unknown> = {},
  ) {
    super(code, message, details);
  }
}

// ---------------------------------------------------------------------------------------------
// Commands

export interface InitializeCommand {
  type: "initialize";
  /** Scenario label of this participant (e.g. "alice"). */
  participant: string;
  /** Where the peer may keep its state (MDK requires it; ours: optional, file storage when given). */
  root?: string;
  relay_urls: string[];
  /** Ours: the protocol profile the peer should speak (default R1). */
  profile?: ProtocolProfile;
  /** Ours: 64-hex Nostr secret key, for reproducible identities. Never logged. */
  secret_key_hex?: string;
  /** Ours: seed for the peer's own randomness. */
  seed?: string;
  /** Ours: engine quirks to switch on (see src/scenarios/types.ts QUIRKS). */
  quirks?: string[];
  /** Ours: a Blossom server (http:// or https://) for MIP-04 media; without it the peer declares no media capability. */
  blossom_url?: string;
  /** Ours: KeyPackages to publish at start (default 1). */
  key_packages?: number;
  /** Ours: publish them as last-resort (default true). */
  last_resort?: boolean;
  /** Ours: self-update right after joining (MIP-02); default true, false under MDK's node protocol. */
  self_update_after_join?: boolean;
}
export interface ConfigurePeersCommand {
  type: "configure_peers";
  /** Participant label → account id (64 lowercase hex), one to one. */
  accounts_by_participant: Record<string, string>;
}
export interface SelectGroupCommand {
  type: "select_group";
  group: string;
  group_id_hex: string;
}
export interface PublishKeyPackageCommand {
  type: "publish_key_package";
  action_id: string;
  count?: number;
  last_resort?: boolean;
}
export interface RotateKeyPackageCommand {
  type: "rotate_key_package";
  action_id: string;
}
export interface DeleteKeyPackagesCommand {
  type: "delete_key_packages";
  action_id: string;
}
export interface CreateGroupCommand {
  type: "create_group";
  action_id: string;
  /** Scenario label for the new group; it becomes the selected group. */
  group: string;
  name: string;
  member_accounts: string[];
  initial_admin_accounts: string[];
  description?: string;
  relay_urls?: string[];
}
interface GroupAction {
  action_id: string;
  /** Ours: the group label to act on (default: the selected group). */
  group?: string;
}
export interface InviteMembersCommand extends GroupAction {
  type: "invite_members";
  member_accounts: string[];
}
export interface RemoveMembersCommand extends GroupAction {
  type: "remove_members";
  member_accounts: string[];
}
export interface UpdateGroupDataCommand extends GroupAction {
  type: "update_group_data";
  name: string;
}
export interface UpdateGroupProfileCommand extends GroupAction {
  type: "update_group_profile";
  name?: string | null;
  description?: string | null;
}
export interface UpdateAdminPolicyCommand extends GroupAction {
  type: "update_admin_policy";
  admin_accounts: string[];
}
export interface SelfUpdateCommand extends GroupAction {
  type: "self_update";
}
/** Ours: a MIP-04 attachment: `bytes` of content drawn from the peer's seed, encrypted and uploaded to its Blossom server. */
export interface PeerMediaSpec {
  filename: string;
  mime_type: string;
  bytes: number;
  /** Adversarial: the imeta names the blob this peer uploaded before (a valid blob, the wrong one). */
  wrong_blob?: boolean;
}

export interface SendApplicationCommand extends GroupAction {
  type: "send_application";
  payload: string;
  /** Ours: inner rumor kind (default 9). */
  kind?: number;
  /** Ours: inner rumor tags. */
  tags?: string[][];
  /** Ours: attach an encrypted file (needs `blossom_url` at initialize). */
  media?: PeerMediaSpec;
}
export interface LeaveCommand extends GroupAction {
  type: "leave";
}
export interface CommitPendingCommand extends GroupAction {
  type: "commit_pending";
}
export interface CatchUpCommand {
  type: "catch_up";
  action_id: string;
  full_history: boolean;
}
export interface ObserveCommand {
  type: "observe";
  action_id: string;
  /** Ours: the group to project (default: the selected group; none selected → no projection). */
  group?: string;
}
export interface SetOnlineCommand {
  type: "set_online";
  action_id: string;
  online: boolean;
}
/** Ours: feed events to the peer and report what it made of them (secrecy probes). */
export interface ProbeCommand {
  type: "probe";
  action_id: string;
  events: PeerEvent[];
}
/** Ours: set, change (`version` 1 or 2: MIP-01 image fields of group data v1 or v2) or clear the group image (needs `blossom_url`). */
export interface SetGroupImageCommand extends GroupAction {
  type: "set_group_image";
  /** Size of the image content the peer draws from its seed. */
  bytes: number;
  version: 1 | 2;
  clear?: boolean;
}
/** Ours: media secrecy probe: the peer tries every media key it ever held for the group on these attachments. */
export interface ProbeMediaCommand extends GroupAction {
  type: "probe_media";
  attachments: { event_id: string; imeta: string[] }[];
}
/** A Nostr event as JSON. */
export interface PeerEvent {
  id: string;
  pubkey: string;
  created_at: number;
  kind: number;
  tags: string[][];
  content: string;
  sig: string;
}
export interface SimpleActionCommand {
  type: "clear_events" | "pause_maintenance" | "resume_maintenance" | "ping" | "restart";
  action_id: string;
}
export interface BarrierCommand {
  type: "barrier";
  action_id: string;
  barrier: string;
}
export interface ShutdownCommand {
  type: "shutdown";
}

export type PeerCommand =
  | InitializeCommand
  | ConfigurePeersCommand
  | SelectGroupCommand
  | PublishKeyPackageCommand
  | RotateKeyPackageCommand
  | DeleteKeyPackagesCommand
  | CreateGroupCommand
  | InviteMembersCommand
  | RemoveMembersCommand
  | UpdateGroupDataCommand
  | UpdateGroupProfileCommand
  | UpdateAdminPolicyCommand
  | SelfUpdateCommand
  | SendApplicationCommand
  | LeaveCommand
  | CommitPendingCommand
  | CatchUpCommand
  | ObserveCommand
  | SetOnlineCommand
  | ProbeCommand
  | SetGroupImageCommand
  | ProbeMediaCommand
  | SimpleActionCommand
  | BarrierCommand
  | ShutdownCommand;

export type PeerCommandType = PeerCommand["type"];

export interface PeerRequest {
  protocol: PeerProtocolName;
  request_id: string;
  command: PeerCommand;
}

// ---------------------------------------------------------------------------------------------
// Responses

/** MDK's failure categories (snake_case). */
export type PeerFailureCategory = "expected_refusal" | "protocol" | "resource" | "environment";
export const FAILURE_CATEGORIES: readonly PeerFailureCategory[] = ["expected_refusal", "protocol", "resource", "environment"];

export interface PeerErrorBody {
  type: "error";
  code: string;
  category: PeerFailureCategory;
  retryable: boolean;
  message: string;
}

/** MDK's public protocol projection of the selected group. */
export interface ProtocolProjection {
  epoch: number;
  member_identities: string[];
  admin_identities: string[];
  group_name: string;
  group_description: string;
  member_count: number;
  /** SHA-256 over the canonical JSON of the fields above (see `stateCommitment`). */
  state_commitment_sha256: string;
}
export interface ApplicationProjection {
  visible_message_ids: string[];
  visible_plaintexts: string[];
  invalidated_message_ids: string[];
  pending_confirmation: boolean;
  stored_member_count: number | null;
  runtime_events_observed: number;
}
export interface ProgressProjection {
  relay_inbound_events_seen: number;
  relay_inbound_events_delivered: number;
  relay_publish_attempts: number;
  relay_publish_failures: number;
  relay_directory_inflight_fetches: number;
  relay_directory_completed_fetches: number;
  retry_timer_armed: boolean;
  projection_checkpoint_sha256: string;
  stable_checkpoint_observations: number;
}
/** Ours: one group as the peer sees it. Members and admins are account ids (hex). */
export interface PeerGroupView {
  group: string | null;
  group_id_hex: string;
  nostr_group_id_hex: string;
  epoch: number;
  members: string[];
  admins: string[];
  name: string;
  description: string;
  active: boolean;
  /** The conformance exporter commitment of the current epoch (hex), when the peer exposes it. */
  epoch_commitment: string | null;
}
/** Ours: one decrypted application message. */
export interface PeerMessageView {
  group_id_hex: string;
  event_id: string;
  rumor_id: string;
  sender: string;
  kind: number;
  content: string;
  epoch: number;
}
export interface PeerObservation {
  schema_version: string;
  participant: string;
  /** MDK: projection of the selected group. Ours: null when no group is selected. */
  protocol: ProtocolProjection | null;
  application: ApplicationProjection | null;
  progress: ProgressProjection;
  /** Ours. */
  account_id?: string;
  online?: boolean;
  groups?: PeerGroupView[];
  messages?: PeerMessageView[];
}

/**
 * Ours: a history entry the peer recorded while serving the request (op and data as in
 * src/history.ts). The harness appends them to the run's history under the peer's name, so the
 * checkers read an out-of-process agent exactly as they read an in-process one.
 */
export interface PeerRecord {
  /** Who recorded it when not the peer itself (e.g. the relay URL an event came from). */
  actor?: string;
  type: "invoke" | "ok" | "fail" | "info";
  op: string;
  data: Record<string, unknown>;
}

/** Ours: fields any of our non-error bodies may carry. */
export interface PeerBodyExtras {
  records?: PeerRecord[];
  /** Events received and not yet processed, after this request. */
  pending_events?: number;
  /** Command-specific result (a commit report, a group view, a catch-up report, probe outcomes...). */
  result?: Record<string, unknown>;
}

export type PeerResponseBody =
  | ({ type: "initialized"; account_id: string; profile?: ProtocolProfile; implementation?: string; capabilities?: string[] } & PeerBodyExtras)
  | ({
      type: "ack";
      action_id: string;
      published: number;
      message_ids?: string[];
      group_id_hex?: string;
      /** Ours: ids of the Nostr events this action published. */
      event_ids?: string[];
    } & PeerBodyExtras)
  | ({ type: "observation"; action_id: string; observation: PeerObservation } & PeerBodyExtras)
  | { type: "barrier_ready"; action_id: string; barrier: string }
  | PeerErrorBody
  | { type: "shutdown" };

export type PeerResponseType = PeerResponseBody["type"];

export interface PeerResponse {
  protocol: PeerProtocolName;
  request_id: string;
  participant: string | null;
  body: PeerResponseBody;
}

// ---------------------------------------------------------------------------------------------
// Validation

type Spec =
  | "string"
  | "string?"
  | "nullable-string?"
  | "account[]"
  | "url[]"
  | "url[]?"
  | "string[]?"
  | "boolean"
  | "boolean?"
  | "uint"
  | "uint?"
  | "kind?"
  | "tags?"
  | "events"
  | "profile?"
  | "secret?"
  | "hex"
  | "hex?"
  | "http-url?"
  | "media?"
  | "image-version"
  | "attachments"
  | "accounts-map";

const GROUP = { action_id: "string", group: "string?" } as const;

/** Field specs per command; `mdk` marks commands MDK's node knows. */
const COMMANDS: Record<PeerCommandType, { mdk: boolean; fields: Record<string, Spec> }> = {
  initialize: {
    mdk: true,
    fields: {
      participant: "string",
      root: "string?",
      relay_urls: "url[]",
      profile: "profile?",
      secret_key_hex: "secret?",
      seed: "string?",
      quirks: "string[]?",
      key_packages: "uint?",
      last_resort: "boolean?",
      self_update_after_join: "boolean?",
      blossom_url: "http-url?",
    },
  },
  configure_peers: { mdk: true, fields: { accounts_by_participant: "accounts-map" } },
  select_group: { mdk: true, fields: { group: "string", group_id_hex: "hex" } },
  publish_key_package: { mdk: false, fields: { action_id: "string", count: "uint?", last_resort: "boolean?" } },
  rotate_key_package: { mdk: false, fields: { action_id: "string" } },
  delete_key_packages: { mdk: false, fields: { action_id: "string" } },
  create_group: {
    mdk: true,
    fields: {
      action_id: "string",
      group: "string",
      name: "string",
      member_accounts: "account[]",
      initial_admin_accounts: "account[]",
      description: "string?",
      relay_urls: "url[]?",
    },
  },
  invite_members: { mdk: true, fields: { ...GROUP, member_accounts: "account[]" } },
  remove_members: { mdk: true, fields: { ...GROUP, member_accounts: "account[]" } },
  update_group_data: { mdk: true, fields: { ...GROUP, name: "string" } },
  update_group_profile: { mdk: true, fields: { ...GROUP, name: "nullable-string?", description: "nullable-string?" } },
  update_admin_policy: { mdk: true, fields: { ...GROUP, admin_accounts: "account[]" } },
  self_update: { mdk: true, fields: { ...GROUP } },
  send_application: { mdk: true, fields: { ...GROUP, payload: "string", kind: "kind?", tags: "tags?", media: "media?" } },
  leave: { mdk: true, fields: { ...GROUP } },
  commit_pending: { mdk: false, fields: { ...GROUP } },
  catch_up: { mdk: true, fields: { action_id: "string", full_history: "boolean" } },
  observe: { mdk: true, fields: { action_id: "string", group: "string?" } },
  set_online: { mdk: false, fields: { action_id: "string", online: "boolean" } },
  clear_events: { mdk: true, fields: { action_id: "string" } },
  pause_maintenance: { mdk: true, fields: { action_id: "string" } },
  resume_maintenance: { mdk: true, fields: { action_id: "string" } },
  ping: { mdk: false, fields: { action_id: "string" } },
  restart: { mdk: false, fields: { action_id: "string" } },
  probe: { mdk: false, fields: { action_id: "string", events: "events" } },
  set_group_image: { mdk: false, fields: { ...GROUP, bytes: "uint", version: "image-version", clear: "boolean?" } },
  probe_media: { mdk: false, fields: { ...GROUP, attachments: "attachments" } },
  barrier: { mdk: true, fields: { action_id: "string", barrier: "string" } },
  shutdown: { mdk: true, fields: {} },
};

/** Our extension fields per command (MDK's node does not know them; under its protocol they are ignored). */
const EXTENSION_FIELDS: Partial<Record<PeerCommandType, readonly string[]>> = {
  initialize: ["profile", "secret_key_hex", "seed", "quirks", "key_packages", "last_resort", "self_update_after_join", "blossom_url"],
  create_group: ["description", "relay_urls"],
  invite_members: ["group"],
  remove_members: ["group"],
  update_group_data: ["group"],
  update_group_profile: ["group"],
  update_admin_policy: ["group"],
  self_update: ["group"],
  send_application: ["group", "kind", "tags", "media"],
  leave: ["group"],
  observe: ["group"],
};

export const COMMAND_TYPES = Object.keys(COMMANDS) as PeerCommandType[];
/** Commands MDK's `cgka-conformance-node` understands. */
export const MDK_COMMAND_TYPES = COMMAND_TYPES.filter((t) => COMMANDS[t].mdk);

const HEX64 = /^[0-9a-f]{64}$/;
const HEX_EVEN = /^(?:[0-9a-f]{2})+$/;

function isNostrEvent(e: unknown): boolean {
  if (!isObject(e)) return false;
  return (
    typeof e.id === "string" &&
    typeof e.pubkey === "string" &&
    typeof e.sig === "string" &&
    typeof e.content === "string" &&
    typeof e.created_at === "number" &&
    typeof e.kind === "number" &&
    Array.isArray(e.tags) &&
    e.tags.every((t: unknown) => Array.isArray(t) && t.every((x: unknown) => typeof x === "string"))
  );
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function bad(where: string, message: string, details: Record<string, unknown> = {}): PeerProtocolError {
  return new PeerProtocolError("PEER_PROTOCOL_BAD_SHAPE", `${where}: ${message}`, { where, ...details });
}

function isUrl(v: string): boolean {
  if (!/^wss?:\/\//i.test(v)) return false;
  try {
    new URL(v);
    return true;
  } catch {
    return false;
  }
}

function checkField(where: string, name: string, spec: Spec, v: unknown, command: string): void {
  const at = `${where}.${name}`;
  const optional = spec.endsWith("?");
  if (v === undefined) {
    if (optional) return;
    throw bad(at, "is required", { command });
  }
  const base = optional ? spec.slice(0, -1) : spec;
  switch (base) {
    case "string":
      if (typeof v !== "string") throw bad(at, "must be a string", { command });
      return;
    case "nullable-string":
      if (v !== null && typeof v !== "string") throw bad(at, "must be a string or null", { command });
      return;
    case "boolean":
      if (typeof v !== "boolean") throw bad(at, "must be true or false", { command });
      return;
    case "uint":
      if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 0) throw bad(at, "must be a non-negative integer", { command });
      return;
    case "kind":
      if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 0 || v > 65535) throw bad(at, "must be an event kind (0..65535)", { command });
      return;
    case "profile":
      if (v !== "R0" && v !== "R1" && v !== "R2") throw bad(at, 'must be "R0", "R1" or "R2"', { command });
      return;
    case "secret":
      if (typeof v !== "string" || !HEX64.test(v)) throw bad(at, "must be 64 lowercase hex characters", { command });
      return;
    case "hex":
      if (typeof v !== "string" || !HEX_EVEN.test(v)) throw bad(at, "must be non-empty lowercase hex of even length", { command });
      return;
    case "image-version":
      if (v !== 1 && v !== 2) throw bad(at, "must be 1 or 2", { command });
      return;
    case "attachments":
      if (!Array.isArray(v)) throw bad(at, "must be a list of { event_id, imeta }", { command });
      v.forEach((a: unknown, i) => {
        if (!isObject(a)) throw bad(`${at}[${i}]`, "must be an object { event_id, imeta }", { command });
        rejectUnknown(`${at}[${i}]`, a, ["event_id", "imeta"]);
        if (typeof a.event_id !== "string" || !HEX64.test(a.event_id)) throw bad(`${at}[${i}].event_id`, "must be an event id (64 lowercase hex)", { command });
        if (!Array.isArray(a.imeta) || a.imeta.length === 0 || !a.imeta.every((x: unknown) => typeof x === "string")) throw bad(`${at}[${i}].imeta`, "must be the imeta tag (a non-empty list of strings)", { command });
      });
      return;
    case "http-url":
      if (typeof v !== "string" || !/^https?:\/\//i.test(v) || !URL.canParse(v)) throw bad(at, "must be an http:// or https:// URL", { command });
      return;
    case "media": {
      if (!isObject(v)) throw bad(at, "must be an object { filename, mime_type, bytes, wrong_blob? }", { command });
      rejectUnknown(at, v, ["filename", "mime_type", "bytes", "wrong_blob"]);
      if (typeof v.filename !== "string" || v.filename.length === 0) throw bad(`${at}.filename`, "must be a non-empty string", { command });
      if (typeof v.mime_type !== "string" || !/^[\w.+-]+\/[\w.+-]+$/.test(v.mime_type)) throw bad(`${at}.mime_type`, "must be a MIME type (type/subtype)", { command });
      if (typeof v.bytes !== "number" || !Number.isSafeInteger(v.bytes) || v.bytes < 1 || v.bytes > MAX_PEER_MEDIA_BYTES) {
        throw bad(`${at}.bytes`, `must be an integer from 1 to ${MAX_PEER_MEDIA_BYTES}`, { command });
      }
      if (v.wrong_blob !== undefined && typeof v.wrong_blob !== "boolean") throw bad(`${at}.wrong_blob`, "must be true or false", { command });
      return;
    }
    case "tags":
      if (!Array.isArray(v) || !v.every((t) => Array.isArray(t) && t.length > 0 && t.every((x: unknown) => typeof x === "string"))) {
        throw bad(at, "must be a list of tags (non-empty lists of strings)", { command });
      }
      return;
    case "events":
      if (!Array.isArray(v)) throw bad(at, "must be a list of Nostr events", { command });
      v.forEach((e: unknown, i) => {
        if (!isNostrEvent(e)) throw bad(`${at}[${i}]`, "is not a Nostr event (id, pubkey, created_at, kind, tags, content, sig)", { command });
      });
      return;
    case "string[]":
      if (!Array.isArray(v) || !v.every((x) => typeof x === "string")) throw bad(at, "must be a list of strings", { command });
      return;
    case "url[]":
      if (!Array.isArray(v) || !v.every((x) => typeof x === "string")) throw bad(at, "must be a list of relay URLs", { command });
      v.forEach((u: string, i) => {
        if (!isUrl(u)) throw bad(`${at}[${i}]`, `"${u}" is not a ws:// or wss:// URL`, { command });
      });
      return;
    case "account[]":
      if (!Array.isArray(v)) throw bad(at, "must be a list of account ids", { command });
      v.forEach((a: unknown, i) => {
        if (typeof a !== "string" || !HEX64.test(a)) throw bad(`${at}[${i}]`, "must be an account id (64 lowercase hex)", { command });
      });
      if (new Set(v).size !== v.length) throw bad(at, "lists an account twice", { command });
      return;
    case "accounts-map": {
      if (!isObject(v)) throw bad(at, "must be an object of participant → account id", { command });
      const seen = new Set<string>();
      for (const [k, a] of Object.entries(v)) {
        if (typeof a !== "string" || !HEX64.test(a)) throw bad(`${at}.${k}`, "must be an account id (64 lowercase hex)", { command });
        if (seen.has(a)) throw bad(at, `account ${a} is given to two participants`, { command });
        seen.add(a);
      }
      return;
    }
    default:
      throw new Error(`unhandled spec ${spec}`);
  }
}

function checkProtocol(where: string, v: unknown): PeerProtocolName {
  if (typeof v !== "string") throw bad(`${where}.protocol`, "is required and must be a string");
  if (v !== PEER_PROTOCOL_VERSION && v !== MDK_NODE_PROTOCOL_VERSION) {
    throw new PeerProtocolError("PEER_PROTOCOL_WRONG_VERSION", `unsupported protocol "${v}" (expected ${PEER_PROTOCOLS.join(" or ")})`, { protocol: v });
  }
  return v;
}

function checkRequestId(where: string, v: unknown): string {
  if (typeof v !== "string" || v.length === 0) throw bad(`${where}.request_id`, "is required and must be a non-empty string");
  return v;
}

function parseLine(line: string, what: string): unknown {
  if (Buffer.byteLength(line, "utf8") > MAX_LINE_BYTES) {
    throw new PeerProtocolError("PEER_PROTOCOL_FRAME_TOO_LARGE", `${what} line exceeds ${MAX_LINE_BYTES} bytes`, { bytes: Buffer.byteLength(line, "utf8") });
  }
  const trimmed = line.replace(/\r?\n$/, "");
  if (trimmed.includes("\n")) throw bad(what, "a message must be exactly one line");
  try {
    return JSON.parse(trimmed);
  } catch (e) {
    const preview = trimmed.length > 80 ? `${trimmed.slice(0, 80)}…` : trimmed;
    throw new PeerProtocolError("PEER_PROTOCOL_NOT_JSON", `${what} line is not JSON (${(e as Error).message}): ${JSON.stringify(preview)}`, { preview });
  }
}

function rejectUnknown(where: string, obj: Record<string, unknown>, allowed: readonly string[]): void {
  for (const k of Object.keys(obj)) {
    if (!allowed.includes(k)) throw bad(where, `unknown field "${k}"`, { field: k });
  }
}

/** Validate a command object (already parsed) for the given protocol. */
export function validateCommand(value: unknown, protocol: PeerProtocolName = PEER_PROTOCOL_VERSION): PeerCommand {
  if (!isObject(value)) throw bad("command", "must be an object");
  const type = value.type;
  if (typeof type !== "string") throw bad("command.type", "is required and must be a string");
  const spec = COMMANDS[type as PeerCommandType];
  if (!spec || !Object.prototype.hasOwnProperty.call(COMMANDS, type)) {
    throw new PeerProtocolError("PEER_PROTOCOL_UNKNOWN_COMMAND", `unknown command "${type}" (known: ${COMMAND_TYPES.join(", ")})`, { command: type });
  }
  const strict = protocol === PEER_PROTOCOL_VERSION;
  if (!strict && !spec.mdk) {
    throw new PeerProtocolError("PEER_PROTOCOL_UNSUPPORTED", `command "${type}" is a ${PEER_PROTOCOL_VERSION} extension, not part of ${MDK_NODE_PROTOCOL_VERSION}`, { command: type });
  }
  if (strict) rejectUnknown(`command(${type})`, value, ["type", ...Object.keys(spec.fields)]);
  for (const [name, fieldSpec] of Object.entries(spec.fields)) {
    // MDK ignores fields it does not know; so do we under its protocol name.
    if (!strict && EXTENSION_FIELDS[type as PeerCommandType]?.includes(name)) continue;
    checkField(`command(${type})`, name, fieldSpec, value[name], type);
  }
  if (type === "initialize" && (value.relay_urls as unknown[]).length === 0) {
    throw bad("command(initialize).relay_urls", "needs at least one relay", { command: type });
  }
  if (type === "initialize" && !strict && typeof value.root !== "string") {
    throw bad("command(initialize).root", `is required by ${MDK_NODE_PROTOCOL_VERSION}`, { command: type });
  }
  if (!strict) {
    // Under MDK's protocol our extensions are not acted on: keep MDK's fields only.
    const known = Object.keys(spec.fields).filter((f) => !EXTENSION_FIELDS[type as PeerCommandType]?.includes(f));
    return Object.fromEntries(Object.entries(value).filter(([k]) => k === "type" || known.includes(k))) as unknown as PeerCommand;
  }
  return value as unknown as PeerCommand;
}

export function validateRequest(value: unknown): PeerRequest {
  if (!isObject(value)) throw bad("request", "must be a JSON object");
  const protocol = checkProtocol("request", value.protocol);
  const request_id = checkRequestId("request", value.request_id);
  if (protocol === PEER_PROTOCOL_VERSION) rejectUnknown("request", value, ["protocol", "request_id", "command"]);
  const command = validateCommand(value.command, protocol);
  return { protocol, request_id, command };
}

export function decodeRequest(line: string): PeerRequest {
  return validateRequest(parseLine(line, "request"));
}

export function encodeRequest(request: PeerRequest): string {
  const checked = validateRequest(JSON.parse(JSON.stringify(request)));
  return JSON.stringify(checked) + "\n";
}

// Response validation -------------------------------------------------------------------------

function expectFields(where: string, obj: unknown, fields: Record<string, (v: unknown) => boolean>, optional: Record<string, (v: unknown) => boolean> = {}, strict = true): Record<string, unknown> {
  if (!isObject(obj)) throw bad(where, "must be an object");
  for (const [k, ok] of Object.entries(fields)) {
    if (!(k in obj)) throw bad(`${where}.${k}`, "is required");
    if (!ok(obj[k])) throw bad(`${where}.${k}`, "has the wrong type");
  }
  for (const [k, ok] of Object.entries(optional)) {
    if (obj[k] !== undefined && !ok(obj[k])) throw bad(`${where}.${k}`, "has the wrong type");
  }
  if (strict) rejectUnknown(where, obj, [...Object.keys(fields), ...Object.keys(optional)]);
  return obj;
}

const isStr = (v: unknown): boolean => typeof v === "string";
const isBool = (v: unknown): boolean => typeof v === "boolean";
const isUint = (v: unknown): boolean => typeof v === "number" && Number.isSafeInteger(v) && v >= 0;
const isStrArr = (v: unknown): boolean => Array.isArray(v) && v.every((x) => typeof x === "string");
const isHex64 = (v: unknown): boolean => typeof v === "string" && HEX64.test(v);
const isHexEven = (v: unknown): boolean => typeof v === "string" && HEX_EVEN.test(v);
const isProfile = (v: unknown): boolean => v === "R0" || v === "R1" || v === "R2";
const nullable = (f: (v: unknown) => boolean) => (v: unknown): boolean => v === null || f(v);

function validateObservation(where: string, v: unknown, strict: boolean): PeerObservation {
  const o = expectFields(
    where,
    v,
    { schema_version: isStr, participant: isStr, protocol: () => true, application: () => true, progress: () => true },
    { account_id: isHex64, online: isBool, groups: Array.isArray, messages: Array.isArray },
    strict,
  );
  if (o.protocol !== null || !strict) {
    expectFields(
      `${where}.protocol`,
      o.protocol,
      { epoch: isUint, member_identities: isStrArr, admin_identities: isStrArr, group_name: isStr, member_count: isUint, state_commitment_sha256: isStr },
      { group_description: isStr },
      strict,
    );
  }
  if (o.application !== null || !strict) {
    expectFields(
      `${where}.application`,
      o.application,
      {
        visible_message_ids: isStrArr,
        visible_plaintexts: isStrArr,
        invalidated_message_ids: isStrArr,
        pending_confirmation: isBool,
        stored_member_count: nullable(isUint),
        runtime_events_observed: isUint,
      },
      {},
      strict,
    );
  }
  expectFields(
    `${where}.progress`,
    o.progress,
    {
      relay_inbound_events_seen: isUint,
      relay_inbound_events_delivered: isUint,
      relay_publish_attempts: isUint,
      relay_publish_failures: isUint,
      relay_directory_inflight_fetches: isUint,
      relay_directory_completed_fetches: isUint,
      retry_timer_armed: isBool,
      projection_checkpoint_sha256: isStr,
      stable_checkpoint_observations: isUint,
    },
    {},
    strict,
  );
  ((o.groups as unknown[] | undefined) ?? []).forEach((g, i) =>
    expectFields(
      `${where}.groups[${i}]`,
      g,
      {
        group: nullable(isStr),
        group_id_hex: isHexEven,
        nostr_group_id_hex: isHexEven,
        epoch: isUint,
        members: (m) => Array.isArray(m) && m.every(isHex64),
        admins: (m) => Array.isArray(m) && m.every(isHex64),
        name: isStr,
        description: isStr,
        active: isBool,
        epoch_commitment: nullable(isHexEven),
      },
      {},
      strict,
    ),
  );
  ((o.messages as unknown[] | undefined) ?? []).forEach((m, i) =>
    expectFields(
      `${where}.messages[${i}]`,
      m,
      { group_id_hex: isHexEven, event_id: isHex64, rumor_id: isHex64, sender: isHex64, kind: isUint, content: isStr, epoch: isUint },
      {},
      strict,
    ),
  );
  return o as unknown as PeerObservation;
}

const isRecord = (r: unknown): boolean => isObject(r) && (r.actor === undefined || typeof r.actor === "string") && ["invoke", "ok", "fail", "info"].includes(r.type as string) && typeof r.op === "string" && isObject(r.data);
const EXTRAS: Record<string, (v: unknown) => boolean> = {
  records: (r) => Array.isArray(r) && r.every(isRecord),
  pending_events: isUint,
  result: isObject,
};

export function validateResponseBody(v: unknown, protocol: PeerProtocolName = PEER_PROTOCOL_VERSION): PeerResponseBody {
  const strict = protocol === PEER_PROTOCOL_VERSION;
  if (!isObject(v)) throw bad("response.body", "must be an object");
  const where = `response.body(${String(v.type)})`;
  switch (v.type) {
    case "initialized":
      expectFields(where, v, { type: isStr, account_id: isHex64 }, { profile: isProfile, implementation: isStr, capabilities: isStrArr, ...EXTRAS }, strict);
      break;
    case "ack":
      expectFields(
        where,
        v,
        { type: isStr, action_id: isStr, published: isUint },
        { message_ids: isStrArr, group_id_hex: isHexEven, event_ids: (x) => Array.isArray(x) && x.every(isHex64), ...EXTRAS },
        strict,
      );
      break;
    case "observation":
      expectFields(where, v, { type: isStr, action_id: isStr, observation: () => true }, EXTRAS, strict);
      validateObservation(`${where}.observation`, v.observation, strict);
      break;
    case "barrier_ready":
      expectFields(where, v, { type: isStr, action_id: isStr, barrier: isStr }, {}, strict);
      break;
    case "error":
      expectFields(
        where,
        v,
        { type: isStr, code: (c) => typeof c === "string" && c.length > 0, category: (c) => FAILURE_CATEGORIES.includes(c as PeerFailureCategory), retryable: isBool, message: isStr },
        {},
        strict,
      );
      break;
    case "shutdown":
      expectFields(where, v, { type: isStr }, {}, strict);
      break;
    default:
      throw bad("response.body.type", `unknown response type ${JSON.stringify(v.type)}`);
  }
  return v as unknown as PeerResponseBody;
}

export function validateResponse(value: unknown): PeerResponse {
  if (!isObject(value)) throw bad("response", "must be a JSON object");
  const protocol = checkProtocol("response", value.protocol);
  const request_id = checkRequestId("response", value.request_id);
  if (protocol === PEER_PROTOCOL_VERSION) rejectUnknown("response", value, ["protocol", "request_id", "participant", "body"]);
  const participant = value.participant ?? null;
  if (participant !== null && typeof participant !== "string") throw bad("response.participant", "must be a string or null");
  const body = validateResponseBody(value.body, protocol);
  return { protocol, request_id, participant, body };
}

export function decodeResponse(line: string): PeerResponse {
  return validateResponse(parseLine(line, "response"));
}

export function encodeResponse(response: PeerResponse): string {
  return JSON.stringify(response) + "\n";
}

/** Which response types answer which command (anything may also be answered by "error"). */
export function expectedResponseType(command: PeerCommandType): PeerResponseType {
  switch (command) {
    case "initialize":
      return "initialized";
    case "observe":
      return "observation";
    case "barrier":
      return "barrier_ready";
    case "shutdown":
      return "shutdown";
    default:
      return "ack";
  }
}

// ---------------------------------------------------------------------------------------------
// Commitments (the same bytes MDK's node hashes, so observations compare across implementations)

/**
 * MDK's `state_commitment_sha256`: SHA-256 (hex) over the compact JSON of
 * `{epoch, member_identities, admin_identities, group_name, group_description, member_count}` in
 * that key order. Identities are participant labels where known.
 */
export function stateCommitment(p: Omit<ProtocolProjection, "state_commitment_sha256">): string {
  const json = JSON.stringify({
    epoch: p.epoch,
    member_identities: p.member_identities,
    admin_identities: p.admin_identities,
    group_name: p.group_name,
    group_description: p.group_description,
    member_count: p.member_count,
  });
  return bytesToHex(sha256(utf8ToBytes(json)));
}

/** MDK's label for an account with no participant alias: "unknown:" + first 16 hex of SHA-256(account). */
export function opaqueIdentity(account: string): string {
  return `unknown:${bytesToHex(sha256(utf8ToBytes(account))).slice(0, 16)}`;
}

/** Build an error body. */
export function errorBody(code: string, message: string, category: PeerFailureCategory = "protocol", retryable = false): PeerErrorBody {
  return { type: "error", code, category, retryable, message };
}
