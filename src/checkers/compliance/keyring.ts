/**
 * The white-box keyring: keys of participants the harness controls (or that a user supplies), plus
 * what those participants observed inside MLS. With it the checker opens 445s and gift wraps and
 * judges rules that need group state. The harness writes one per scenario run
 * (src/history.ts `historyToKeyring`, whose shape this accepts).
 *
 * JSON file format:
 * {
 *   "groupEventKeys": [{ "nostrGroupId": hex64, "epoch": n, "key": hex64, "mediaExporter"?: hex64 }],
 *   "recipientSecretKeys": [hex64],
 *   "observations"?: [Observation]
 * }
 * For R0 groups `key` is the legacy exporter secret (MLS-Exporter("nostr","nostr",32)); the checker
 * derives the NIP-44 self-conversation key from it. For R1/R2 it is MLS-Exporter("marmot","group-event",32).
 *
 * Observation shapes (discriminated by `kind`; `type` is accepted as an alias):
 * - application: { kind, eventId, sender (MLS credential identity, hex), rumor (the decrypted JSON
 *   object, exactly as decoded), nostrGroupId?, epoch?, agent? }
 * - commit: { kind, eventId, committer?, committerIsAdmin?, proposals?: [{ type, sender?, target?,
 *   senderIsAdmin? }], groupDataBefore?: hex, groupDataAfter?: hex, adminsAfter?: hex[],
 *   decision?: "applied"|"rolled-back"|"rejected", removed?: hex[] (identities it removed),
 *   nostrGroupId?, epoch?, agent? }
 *   proposal `type` is one of add, remove, update, self_remove, group_context_extensions, other;
 *   `target` is the account affected (remove/update).
 * - proposal: { kind, eventId, sender, senderIsAdmin?, proposal: type, nostrGroupId?, epoch? }
 * - group-state: { kind, nostrGroupId, epoch, mlsGroupId?: hex, groupData?: hex (0xF2EE bytes),
 *   extensionTypes?: number[] (GroupContext), requiredCapabilities?: { extensions, proposals },
 *   leafExtensions?: number[][], admins?: hex[], epochCommitment?: hex, conformanceExporter?: hex
 *   (MLS-Exporter("marmot","convergence-conformance-v1",32) of that epoch), agent? }
 * - welcome: { kind, eventId (gift wrap id), commitEventId?, recipient?, joined?: boolean,
 *   nostrGroupId? }
 * - rejected: { kind, eventId, code, message, agent? }  (informational)
 * - media: { kind, eventId (the 445 whose rumor carries the imeta), url (the imeta's url), blob?: base64
 *   of the fetched blob, blobSha256?: hex, plainSha256?: hex (hashes an agent measured, when the
 *   bytes are not kept), nostrGroupId?, epoch?, agent? }
 * - group-image: { kind, nostrGroupId, epoch?, groupData: hex (0xF2EE bytes naming the image),
 *   blob?: base64 of the fetched image blob, uploadAuthEventId?: the Blossom upload auth event (in
 *   the capture), uploadPubkey?: hex (its author, when the event is not captured), agent? }
 * group-state may also carry `leaves`: { "<leaf index>": credential identity hex } (MIP00-CR-01), and
 * welcome `duplicateGroup: true` when the recipient already retained that MLS group (MIP02-WL-15).
 * R2 state (src/checkers/compliance/check-r2-state.ts): group-state `components` { "0x8003": hex, … }
 * and `requiredComponents` (CORE-AP-01/RT-01/AC-01); welcome `groupInfoExtensions`, `groupInfoSigner`,
 * `adminsAfter` (MIP02-WL-09/10); commit `sourceEpoch`, `tipEpoch`, `lifecycleBefore`/`lifecycleAfter`,
 * `membersAfter` and application `tipEpoch` (MIP03-CM-13/14).
 */
import { readFile } from "node:fs/promises";
import { HarnessError } from "../../errors.ts";
import { isHex, isHex64, isPlainObject } from "./util.ts";

export class KeyringError extends HarnessError {}

export interface GroupEventKeyEntry {
  nostrGroupId: string;
  epoch: number;
  key: string;
  mediaExporter?: string;
}

export interface ApplicationObservation {
  kind: "application";
  eventId: string;
  sender: string;
  rumor: unknown;
  nostrGroupId?: string;
  epoch?: number;
  agent?: string;
  /** The receiver's epoch when it delivered the message (MIP03-CM-13, R2). */
  tipEpoch?: number;
}

export type ProposalTypeName = "add" | "remove" | "update" | "self_remove" | "group_context_extensions" | "other";

export interface ObservedProposal {
  type: ProposalTypeName;
  sender?: string;
  senderIsAdmin?: boolean;
  target?: string;
}

export interface CommitObservation {
  kind: "commit";
  eventId: string;
  committer?: string;
  committerIsAdmin?: boolean;
  proposals?: ObservedProposal[];
  /** True when the commit carries an UpdatePath (a self-update without proposals). */
  hasPath?: boolean;
  groupDataBefore?: string;
  groupDataAfter?: string;
  adminsAfter?: string[];
  decision?: "applied" | "rolled-back" | "rejected";
  /** Credential identities the commit removed (as the applying member saw them). */
  removed?: string[];
  /** R2: the commit's source epoch and the receiver's epoch when it processed it (MIP03-CM-13). */
  sourceEpoch?: number;
  tipEpoch?: number;
  /** R2: the lifecycle component (0x800c) state byte before and after (MIP03-CM-14 disband). */
  lifecycleBefore?: number;
  lifecycleAfter?: number;
  /** Credential identities of the members after the commit. */
  membersAfter?: string[];
  nostrGroupId?: string;
  epoch?: number;
  agent?: string;
}

export interface ProposalObservation {
  kind: "proposal";
  eventId: string;
  sender: string;
  senderIsAdmin?: boolean;
  proposal: ProposalTypeName;
  nostrGroupId?: string;
  epoch?: number;
  agent?: string;
}

export interface GroupStateObservation {
  kind: "group-state";
  nostrGroupId: string;
  epoch: number;
  mlsGroupId?: string;
  groupData?: string;
  extensionTypes?: number[];
  requiredCapabilities?: { extensions: number[]; proposals: number[] };
  leafExtensions?: number[][];
  admins?: string[];
  /** The member's reported conformance commitment (hex) and the exporter value it hashes. */
  epochCommitment?: string;
  conformanceExporter?: string;
  /** Occupied leaves: leaf index (decimal string) → credential identity (hex). */
  leaves?: Record<string, string>;
  /** R2 app_data_dictionary entries: component id ("0x8003") → state bytes (hex). */
  components?: Record<string, string>;
  /** R2 component ids the group requires. */
  requiredComponents?: number[];
  agent?: string;
}

export interface WelcomeObservation {
  kind: "welcome";
  eventId: string;
  commitEventId?: string;
  recipient?: string;
  joined?: boolean;
  nostrGroupId?: string;
  /** The recipient already retained the Welcome's MLS group id. */
  duplicateGroup?: boolean;
  /** R2: extension types of the Welcome's GroupInfo (MIP02-WL-09), its signer's credential identity and the joined group's admins (WL-10). */
  groupInfoExtensions?: number[];
  groupInfoSigner?: string;
  adminsAfter?: string[];
}

export interface MediaObservation {
  kind: "media";
  eventId: string;
  url: string;
  blob?: string;
  blobSha256?: string;
  plainSha256?: string;
  nostrGroupId?: string;
  epoch?: number;
  agent?: string;
}

export interface GroupImageObservation {
  kind: "group-image";
  nostrGroupId: string;
  epoch?: number;
  groupData: string;
  blob?: string;
  uploadAuthEventId?: string;
  uploadPubkey?: string;
  agent?: string;
}

export interface RejectedObservation {
  kind: "rejected";
  eventId: string;
  code: string;
  message?: string;
  agent?: string;
}

export type Observation =
  | ApplicationObservation
  | CommitObservation
  | ProposalObservation
  | GroupStateObservation
  | WelcomeObservation
  | RejectedObservation
  | MediaObservation
  | GroupImageObservation;

export interface Keyring {
  groupEventKeys: GroupEventKeyEntry[];
  recipientSecretKeys: string[];
  observations: Observation[];
}

const KINDS = new Set(["application", "commit", "proposal", "group-state", "welcome", "rejected", "media", "group-image"]);

/** Validate a parsed keyring object; throws KeyringError naming the first bad field. */
export function parseKeyring(value: unknown, source = "keyring"): Keyring {
  if (!isPlainObject(value)) throw new KeyringError("KEYRING_FORMAT", `${source}: expected a JSON object`);
  const gk = value.groupEventKeys ?? [];
  const rs = value.recipientSecretKeys ?? [];
  const obs = value.observations ?? [];
  if (!Array.isArray(gk)) throw new KeyringError("KEYRING_FORMAT", `${source}: groupEventKeys must be an array`);
  if (!Array.isArray(rs)) throw new KeyringError("KEYRING_FORMAT", `${source}: recipientSecretKeys must be an array`);
  if (!Array.isArray(obs)) throw new KeyringError("KEYRING_FORMAT", `${source}: observations must be an array`);
  const groupEventKeys: GroupEventKeyEntry[] = gk.map((e, i) => {
    if (!isPlainObject(e)) throw new KeyringError("KEYRING_FORMAT", `${source}: groupEventKeys[${i}] is not an object`, { index: i });
    if (!isHex64(e.nostrGroupId)) throw new KeyringError("KEYRING_FORMAT", `${source}: groupEventKeys[${i}].nostrGroupId must be 64 hex`, { index: i });
    if (typeof e.epoch !== "number" || !Number.isInteger(e.epoch) || e.epoch < 0) {
      throw new KeyringError("KEYRING_FORMAT", `${source}: groupEventKeys[${i}].epoch must be a non-negative integer`, { index: i });
    }
    if (!isHex64(e.key)) throw new KeyringError("KEYRING_FORMAT", `${source}: groupEventKeys[${i}].key must be 64 hex`, { index: i });
    if (e.mediaExporter !== undefined && !isHex64(e.mediaExporter)) {
      throw new KeyringError("KEYRING_FORMAT", `${source}: groupEventKeys[${i}].mediaExporter must be 64 hex`, { index: i });
    }
    const out: GroupEventKeyEntry = { nostrGroupId: e.nostrGroupId.toLowerCase(), epoch: e.epoch, key: e.key.toLowerCase() };
    if (typeof e.mediaExporter === "string") out.mediaExporter = e.mediaExporter.toLowerCase();
    return out;
  });
  const recipientSecretKeys = rs.map((k, i) => {
    if (!isHex64(k)) throw new KeyringError("KEYRING_FORMAT", `${source}: recipientSecretKeys[${i}] must be 64 hex`, { index: i });
    return k.toLowerCase();
  });
  const observations: Observation[] = obs.map((o, i) => {
    if (!isPlainObject(o)) throw new KeyringError("KEYRING_FORMAT", `${source}: observations[${i}] is not an object`, { index: i });
    const kind = o.kind ?? o.type;
    if (typeof kind !== "string" || !KINDS.has(kind)) {
      throw new KeyringError("KEYRING_FORMAT", `${source}: observations[${i}] has unknown kind ${JSON.stringify(kind)}`, { index: i });
    }
    if (kind === "group-image") {
      if (!isHex64(o.nostrGroupId)) throw new KeyringError("KEYRING_FORMAT", `${source}: observations[${i}].nostrGroupId must be 64 hex`, { index: i });
      if (typeof o.groupData !== "string" || !isHex(o.groupData)) throw new KeyringError("KEYRING_FORMAT", `${source}: observations[${i}].groupData must be hex`, { index: i });
      if (o.blob !== undefined && typeof o.blob !== "string") throw new KeyringError("KEYRING_FORMAT", `${source}: observations[${i}].blob must be base64`, { index: i });
    } else if (kind === "group-state") {
      if (!isHex64(o.nostrGroupId)) throw new KeyringError("KEYRING_FORMAT", `${source}: observations[${i}].nostrGroupId must be 64 hex`, { index: i });
      if (o.groupData !== undefined && o.groupData !== "" && !isHex(o.groupData)) {
        throw new KeyringError("KEYRING_FORMAT", `${source}: observations[${i}].groupData must be hex`, { index: i });
      }
    } else if (typeof o.eventId !== "string") {
      throw new KeyringError("KEYRING_FORMAT", `${source}: observations[${i}].eventId must be a string`, { index: i });
    } else if (kind === "media") {
      if (typeof o.url !== "string") throw new KeyringError("KEYRING_FORMAT", `${source}: observations[${i}].url must be a string`, { index: i });
      if (o.blob !== undefined && typeof o.blob !== "string") throw new KeyringError("KEYRING_FORMAT", `${source}: observations[${i}].blob must be base64`, { index: i });
    }
    return { ...o, kind } as Observation;
  });
  return { groupEventKeys, recipientSecretKeys, observations };
}

export async function readKeyringFile(path: string): Promise<Keyring> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (e) {
    throw new KeyringError("KEYRING_READ", `cannot read keyring ${path}: ${(e as Error).message}`, { path });
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new KeyringError("KEYRING_FORMAT", `${path}: not JSON (${(e as Error).message})`, { path });
  }
  return parseKeyring(value, path);
}
