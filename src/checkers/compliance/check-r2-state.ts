/**
 * R2 rules judged from the state a participant reports (white-box observations) and from KeyPackage
 * tags: app components (CORE-AP-01 admin policy, CORE-RT-01 routing, CORE-AC-01 advertisement and
 * required set), the Welcome GroupInfo (MIP02-WL-09 ratchet_tree, WL-10 signer is an admin), the
 * stale window (MIP03-CM-13) and the disband commit (MIP03-CM-14).
 *
 * Observation fields read here (all optional; a rule without its fields is not judged):
 * - group-state: `components` { "0x8003": hex state bytes, … } (app_data_dictionary entries),
 *   `requiredComponents` (component ids the group requires), `leaves`, `requiredCapabilities`,
 *   `leafExtensions`.
 * - welcome: `groupInfoExtensions` (extension types of the Welcome's GroupInfo), `groupInfoSigner`
 *   (credential identity of its signer), `adminsAfter` (admins of the joined group).
 * - commit: `sourceEpoch`, `tipEpoch` (the receiver's epoch when it processed it), `decision`,
 *   `lifecycleBefore` / `lifecycleAfter` (0x800c state byte), `adminsAfter`, `membersAfter`, `proposals`.
 * - application: `tipEpoch` (the receiver's epoch when it delivered the message).
 *
 * Component state layouts (digest §3.5, `<V>` = QUIC varint length): admin policy 0x8003 is
 * `admins<V>` of 32-byte keys; routing 0x8004 is `nostr_group_id[32] ‖ relays<V>` of `url<V>`.
 */
import type { CheckContext } from "./context.ts";
import type { CommitObservation, GroupStateObservation, WelcomeObservation } from "./keyring.ts";
import { hexToBytes, isHex, isHex64, isPlainObject, isValidRelayUrl, normId, tagsNamed } from "./util.ts";

const EXT_RATCHET_TREE = 0x0002;
const EXT_APP_DATA_DICTIONARY = 0x0006;
const EXT_APP_COMPONENTS = 0x0008;
const COMP_ADMIN_POLICY = 0x8003;
const COMP_ROUTING = 0x8004;
const COMP_ACCOUNT_PROOF = 0x8009;
/** Past-epoch window of the R2 retained history (digest §5.5 / §8.1). */
const STALE_WINDOW = 5;

/** A QUIC variable-length integer at `at`: [value, next offset], or undefined when truncated. */
function readVarint(b: Uint8Array, at: number): [number, number] | undefined {
  if (at >= b.length) return undefined;
  const first = b[at] as number;
  const len = 1 << (first >> 6);
  if (at + len > b.length) return undefined;
  let v = first & 0x3f;
  for (let i = 1; i < len; i++) v = v * 256 + (b[at + i] as number);
  return [v, at + len];
}

/** An opaque `<V>` vector at `at`: [bytes, next offset], or undefined. */
function readVector(b: Uint8Array, at: number): [Uint8Array, number] | undefined {
  const n = readVarint(b, at);
  if (!n) return undefined;
  const [len, start] = n;
  if (start + len > b.length) return undefined;
  return [b.subarray(start, start + len), start + len];
}

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return (a[i] as number) - (b[i] as number);
  return a.length - b.length;
}

/** Problems of a list that must be sorted by bytes, unique and non-empty. */
function sortedUniqueProblems(items: Uint8Array[], what: string): string[] {
  if (items.length === 0) return [`${what} list is empty`];
  const out: string[] = [];
  for (let i = 1; i < items.length; i++) {
    const c = compareBytes(items[i - 1] as Uint8Array, items[i] as Uint8Array);
    if (c === 0) out.push(`${what} ${i} repeats ${i - 1}`);
    else if (c > 0) out.push(`${what} ${i} is out of byte order`);
  }
  return out;
}

/** Component state bytes by numeric id, from an observation's `components` map. */
function componentsOf(o: GroupStateObservation): Map<number, Uint8Array> | undefined {
  if (!isPlainObject(o.components)) return undefined;
  const out = new Map<number, Uint8Array>();
  for (const [k, v] of Object.entries(o.components)) {
    const id = /^0x[0-9a-f]{1,4}$/i.test(k) ? parseInt(k.slice(2), 16) : /^[0-9]+$/.test(k) ? Number(k) : NaN;
    if (Number.isInteger(id) && typeof v === "string" && (v === "" || isHex(v))) out.set(id, hexToBytes(v));
  }
  return out;
}

/** Admin keys of an admin-policy state, or a problem. */
export function decodeAdminPolicy(b: Uint8Array): { admins: Uint8Array[] } | { problem: string } {
  const v = readVector(b, 0);
  if (!v) return { problem: "admin-policy state is not one admins<V> vector" };
  if (v[1] !== b.length) return { problem: `admin-policy state has ${b.length - v[1]} trailing byte(s)` };
  if (v[0].length % 32 !== 0) return { problem: `admins<V> is ${v[0].length} bytes, not a whole number of 32-byte keys` };
  const admins: Uint8Array[] = [];
  for (let i = 0; i < v[0].length; i += 32) admins.push(v[0].subarray(i, i + 32));
  return { admins };
}

/** Routing state: nostr_group_id[32] ‖ relays<V> of url<V>; problems with it. */
export function routingProblems(b: Uint8Array): string[] {
  if (b.length < 32) return [`routing state is ${b.length} bytes, shorter than its 32-byte nostr_group_id`];
  const v = readVector(b, 32);
  if (!v) return ["routing relays<V> is truncated"];
  const out: string[] = [];
  if (v[1] !== b.length) out.push(`routing state has ${b.length - v[1]} trailing byte(s)`);
  const urls: Uint8Array[] = [];
  let at = 0;
  while (at < v[0].length) {
    const u = readVector(v[0], at);
    if (!u) {
      out.push("a relay url<V> is truncated");
      break;
    }
    urls.push(u[0]);
    at = u[1];
  }
  for (const u of urls) {
    const s = Buffer.from(u).toString("utf8");
    if (u.length < 1 || u.length > 512 || !Buffer.from(s, "utf8").equals(Buffer.from(u)) || !isValidRelayUrl(s)) out.push(`relay ${JSON.stringify(s.slice(0, 80))} is not a valid relay URL`);
  }
  out.push(...sortedUniqueProblems(urls, "relay"));
  return out;
}

const hex = (b: Uint8Array): string => Buffer.from(b).toString("hex");

function checkGroupStateR2(ctx: CheckContext, o: GroupStateObservation, subject: string): void {
  const { j } = ctx;
  const comps = componentsOf(o);
  const required = Array.isArray(o.requiredComponents) ? o.requiredComponents : undefined;
  const leaves = isPlainObject(o.leaves) ? new Set(Object.values(o.leaves).filter((x): x is string => typeof x === "string").map((x) => x.toLowerCase())) : undefined;
  if (comps) {
    // CORE-AP-01: present, required, sorted, unique, non-empty, every admin has a leaf
    const ap = comps.get(COMP_ADMIN_POLICY);
    const problems: string[] = [];
    if (ap === undefined) problems.push("no admin-policy (0x8003) component");
    else {
      const d = decodeAdminPolicy(ap);
      if ("problem" in d) problems.push(d.problem);
      else {
        problems.push(...sortedUniqueProblems(d.admins, "admin"));
        if (leaves) for (const a of d.admins) if (!leaves.has(hex(a))) problems.push(`admin ${hex(a).slice(0, 12)}… has no leaf`);
      }
    }
    if (required !== undefined && !required.includes(COMP_ADMIN_POLICY)) problems.push("0x8003 is not a required component");
    j.check("CORE-AP-01", problems.length === 0, subject, problems.join("; "));
    // CORE-RT-01: the routing component's layout and relay list
    const rt = comps.get(COMP_ROUTING);
    if (rt !== undefined) {
      const p = routingProblems(rt);
      j.check("CORE-RT-01", p.length === 0, subject, p.join("; "));
    }
  }
  // CORE-AC-01 (group side): leaves advertise 0x0008; the group requires 0x0006/0x0008 and 0x8003/0x8009
  if (comps || required !== undefined) {
    const problems: string[] = [];
    for (const [i, l] of (o.leafExtensions ?? []).entries()) if (!l.includes(EXT_APP_COMPONENTS)) problems.push(`leaf ${i} does not advertise 0x0008`);
    if (o.requiredCapabilities) {
      for (const e of [EXT_APP_DATA_DICTIONARY, EXT_APP_COMPONENTS]) if (!o.requiredCapabilities.extensions.includes(e)) problems.push(`required_capabilities lacks 0x${e.toString(16).padStart(4, "0")}`);
    }
    if (required !== undefined) for (const c of [COMP_ADMIN_POLICY, COMP_ACCOUNT_PROOF]) if (!required.includes(c)) problems.push(`component 0x${c.toString(16)} is not required`);
    if (o.requiredCapabilities || required !== undefined || (o.leafExtensions ?? []).length > 0) j.check("CORE-AC-01", problems.length === 0, subject, problems.join("; "));
  }
}

/** CORE-AC-01 (KeyPackage side, black-box): an R2 KeyPackage advertises 0x0008 and has app_components. */
function checkKeyPackageAdvertisement(ctx: CheckContext): void {
  for (const kp of ctx.keyPackages.values()) {
    const ev = kp.event;
    const exts = tagsNamed(ev.tags, "mls_extensions").flatMap((t) => t.slice(1).map(normId));
    const problems: string[] = [];
    if (!exts.includes("0x0008")) problems.push("mls_extensions does not list 0x0008");
    if (tagsNamed(ev.tags, "app_components").length === 0) problems.push("no app_components tag");
    ctx.j.check("CORE-AC-01", problems.length === 0, ev.id, `KeyPackage: ${problems.join("; ")}`);
  }
}

function checkWelcomeR2(ctx: CheckContext, o: WelcomeObservation): void {
  const { j } = ctx;
  if (o.joined === false) return; // a refused Welcome: nothing was joined
  if (Array.isArray(o.groupInfoExtensions)) {
    j.check("MIP02-WL-09", o.groupInfoExtensions.includes(EXT_RATCHET_TREE), o.eventId, "the Welcome's GroupInfo has no ratchet_tree extension");
  }
  if (isHex64(o.groupInfoSigner) && Array.isArray(o.adminsAfter)) {
    const admins = o.adminsAfter.map((a) => a.toLowerCase());
    j.check("MIP02-WL-10", admins.includes(o.groupInfoSigner.toLowerCase()), o.eventId, `the GroupInfo signer ${o.groupInfoSigner.slice(0, 12)}… is not an admin of the joined group`);
  }
}

function checkCommitR2(ctx: CheckContext, o: CommitObservation): void {
  const { j } = ctx;
  // CM-13: a commit more than 5 epochs behind the receiver's tip is stale (never applied)
  const source = o.sourceEpoch ?? (ctx.decoded445.get(o.eventId)?.mlsEpoch !== undefined ? Number(ctx.decoded445.get(o.eventId)?.mlsEpoch) : undefined);
  if (typeof o.tipEpoch === "number" && source !== undefined) {
    const stale = o.tipEpoch - source > STALE_WINDOW;
    j.check("MIP03-CM-13", !(stale && o.decision === "applied"), o.eventId, `a commit from epoch ${source} was applied at tip ${o.tipEpoch} (more than ${STALE_WINDOW} behind: stale)`);
  }
  // CM-14: the disband commit (lifecycle 0x00 → 0x01)
  if (o.lifecycleBefore === 0 && o.lifecycleAfter === 1) {
    if (o.committer === undefined || o.adminsAfter === undefined || o.proposals === undefined) {
      j.needKeys("MIP03-CM-14", o.eventId, "the disband commit's committer, resulting admins or proposals are not observed");
      return;
    }
    const c = o.committer.toLowerCase();
    const problems: string[] = [];
    const admins = o.adminsAfter.map((a) => a.toLowerCase());
    if (admins.length !== 1 || admins[0] !== c) problems.push(`resulting admins are [${admins.map((a) => a.slice(0, 8)).join(", ")}], not {committer}`);
    if (o.membersAfter !== undefined) {
      const others = o.membersAfter.map((m) => m.toLowerCase()).filter((m) => m !== c);
      if (others.length > 0) problems.push(`${others.length} other member(s) remain`);
    }
    const nonRemove = o.proposals.filter((p) => p.type !== "remove");
    const update = nonRemove.filter((p) => p.type === "group_context_extensions" || p.type === "other");
    if (nonRemove.length > update.length || update.length > 1) problems.push(`other proposals: ${nonRemove.map((p) => p.type).join(", ")}`);
    if (o.proposals.some((p) => p.type === "remove" && p.target?.toLowerCase() === c)) problems.push("the committer removes itself");
    j.check("MIP03-CM-14", problems.length === 0, o.eventId, `disband commit: ${problems.join("; ")}`);
  }
}

export function checkR2State(ctx: CheckContext): void {
  if (!ctx.j.applies("CORE-AP-01")) return; // every rule here is R2
  checkKeyPackageAdvertisement(ctx);
  for (const o of ctx.observations) {
    if (o.kind === "group-state") checkGroupStateR2(ctx, o, `group ${o.nostrGroupId.slice(0, 12)}… epoch ${o.epoch}`);
    else if (o.kind === "welcome") checkWelcomeR2(ctx, o);
    else if (o.kind === "commit") checkCommitR2(ctx, o);
    else if (o.kind === "application" && typeof o.tipEpoch === "number") {
      // CM-13: an application message more than 5 epochs behind the tip is stale_epoch (never delivered)
      const d = ctx.decoded445.get(o.eventId);
      const epoch = d?.mlsEpoch !== undefined ? Number(d.mlsEpoch) : o.epoch;
      if (epoch !== undefined) ctx.j.check("MIP03-CM-13", o.tipEpoch - epoch <= STALE_WINDOW, o.eventId, `an application message of epoch ${epoch} was delivered at tip ${o.tipEpoch} (stale_epoch)`);
    }
  }
}
