/**
 * Importer for MDK's conformance vectors (MDK "adapter-neutral scenario IR", spec_version 2 and 3).
 *
 * A vector file holds `scenario` (the IR: clients and steps) and its expectations, either as
 * `expected_outcomes` (a list) or as `expected_trace` (pending resolutions and per-client
 * observations). This module:
 *
 *  1. converts the IR into our Scenario (one simulated relay, one engine agent per client), keeping a
 *     map from each MDK step index to the step(s) it became;
 *  2. turns every expectation into either a protocol-level expectation we judge from the recorded
 *     history (epoch, member count, payloads received, members added/removed, group name,
 *     convergence, decryptability), or a `not-applicable` check for MDK-internal state (pending-work
 *     ledgers, error strings, event-stream counters, resource gauges), never a pass;
 *  3. judges the protocol-level ones after the run (`judgeMdkVector`).
 *
 * IR steps we cannot act out faithfully (message selectors, storage faults, process topology,
 * publication acknowledgements that reach no relay) make the vector `refused`, naming them.
 *
 * The vectors are not copied into the repository; their folder is configurable (default
 * `../shared/vectors/mdk-scenario-ir/` relative to the repository root, or MARMOT_MDK_VECTORS).
 */
import { readdir, readFile } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { HarnessError } from "../errors.ts";
import type { HistoryEntry } from "../history.ts";
import type { CheckResult } from "../report/types.ts";
import type { AgentSpec, Scenario, Step } from "./types.ts";

export class MdkVectorError extends HarnessError {}

/** Default vector folder, relative to the repository root. */
export const DEFAULT_MDK_VECTOR_DIR = "../shared/vectors/mdk-scenario-ir";
const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");

/** The vector folder: the argument, else $MARMOT_MDK_VECTORS, else the default beside the repository. */
export function resolveMdkVectorDir(dir?: string, env: NodeJS.ProcessEnv = process.env): string {
  if (dir) return resolve(dir);
  if (env.MARMOT_MDK_VECTORS) return resolve(env.MARMOT_MDK_VECTORS);
  return resolve(REPO_ROOT, DEFAULT_MDK_VECTOR_DIR);
}

/** Vector files in a folder: `*.json` except the schemas, sorted. */
export async function listMdkVectorFiles(dir: string): Promise<string[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (e) {
    throw new MdkVectorError("MDK_VECTORS_READ", `cannot read the MDK vector folder ${dir}: ${(e as Error).message} (pass --mdk-vectors DIR or set MARMOT_MDK_VECTORS)`, { dir });
  }
  const files = names.filter((n) => n.endsWith(".json") && !n.endsWith(".schema.json")).sort();
  if (files.length === 0) throw new MdkVectorError("MDK_VECTORS_EMPTY", `no vector files (*.json other than *.schema.json) in ${dir}`, { dir });
  return files.map((n) => join(dir, n));
}

// ---------------------------------------------------------------------------------------------
// Expectations

/** Where in the run an expectation is judged: after our step `afterStep` settled, or at the end. */
export type JudgePoint = { afterStep: number } | "end";

export type MdkExpectation =
  | {
      kind: "client-state";
      origin: string;
      client: string;
      group: string;
      at: JudgePoint;
      epoch?: number;
      memberCount?: number;
      /** Compared as a multiset, or as a sequence when the vector reorders messages. */
      receivedPayloads?: string[];
      addedMembers?: string[];
      removedMembers?: string[];
      groupName?: string;
      groupDescription?: string;
      messagesReceived?: number;
    }
  | { kind: "payload-count"; origin: string; client: string; group: string; at: JudgePoint; payload: string; count: number; never?: boolean }
  | { kind: "converged"; origin: string; clients: string[]; group: string; at: JudgePoint; epoch?: number; memberCount?: number }
  | { kind: "decryptable"; origin: string; group: string; probes: { sender: string; payload: string }[]; clients: string[]; at: JudgePoint }
  | { kind: "step-fails"; origin: string; ourStep: number; mdkError: string }
  | { kind: "not-applicable"; origin: string; reason: string };

export interface ImportedStepMap {
  mdkIndex: number;
  mdkType: string;
  /** Our step indexes this IR step became (empty when it has no counterpart in our model). */
  ourSteps: number[];
  how: "mapped" | "marker" | "implicit";
  note?: string;
}

export interface ImportedVector {
  source: string;
  name: string;
  specVersion: string;
  scenario: Scenario;
  steps: ImportedStepMap[];
  expectations: MdkExpectation[];
  /** IR steps we cannot act out; a non-empty list makes the vector `refused`. */
  unsupported: { mdkIndex: number; type: string; reason: string }[];
  /** True when the vector reorders messages (payloads are then compared in order). */
  ordered: boolean;
  /** MDK `clear_events`: from after our step `afterStep`, the client's observed events start afresh. */
  observationWindows: { client: string; afterStep: number }[];
}

// ---------------------------------------------------------------------------------------------
// Conversion

type Json = Record<string, unknown>;

const DEFAULT_GROUP = "g";
const RELAY = "r1";

function isObj(v: unknown): v is Json {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function strList(v: unknown): string[] {
  return Array.isArray(v) ? v.filter((x): x is string => typeof x === "string") : [];
}

function need(cond: unknown, source: string, path: string, message: string): asserts cond {
  if (!cond) throw new MdkVectorError("MDK_VECTOR_INVALID", `${source}: ${path}: ${message}`, { source, path });
}

const UNSUPPORTED_STEPS: Record<string, string> = {
  configure_relay: "relay delivery order and duplicate copies per relay are not expressible as our faults with the same meaning",
  set_relay_event_visibility: "per-client event visibility by message selector is not modelled",
  reconcile_relay_histories: "relay-to-relay reconciliation is not modelled",
  crash_process: "MDK process topology (several devices per process) is not modelled",
  restart_process: "MDK process topology (several devices per process) is not modelled",
  inject_storage_fault: "storage faults target MDK's storage layer",
  clear_storage_fault: "storage faults target MDK's storage layer",
  omit_message: "dropping one message chosen by selector is not modelled",
  duplicate_message: "duplicating one message chosen by selector is not modelled",
  withhold_message: "withholding one message chosen by selector is not modelled",
  release_withheld: "withholding one message chosen by selector is not modelled",
  reorder_messages: "reordering messages chosen by selector is not modelled",
  set_partition: "MDK's client partition semantics are not mapped",
  clear_partition: "MDK's client partition semantics are not mapped",
};

const RESOURCE_NOTE = "MDK-internal resource gauge (work queues, outbound ledger), no protocol-level counterpart";

/** Convert one vector file's JSON. Throws MdkVectorError naming the first thing that is not IR. */
export function importMdkVector(doc: unknown, source = "vector", seed = "mdk"): ImportedVector {
  need(isObj(doc), source, "$", "expected a JSON object");
  const ir = isObj(doc.scenario) ? doc.scenario : doc;
  need(typeof ir.name === "string" && ir.name.length > 0, source, "scenario.name", "is required");
  const specVersion = String(ir.spec_version ?? "");
  need(specVersion === "2" || specVersion === "3", source, "scenario.spec_version", `unsupported IR version ${JSON.stringify(ir.spec_version)} (expected "2" or "3")`);
  need(Array.isArray(ir.clients) && ir.clients.every((c) => typeof c === "string" && c.length > 0), source, "scenario.clients", "expected a list of client names");
  need(Array.isArray(ir.steps), source, "scenario.steps", "expected a list");
  const clients = ir.clients as string[];
  need(new Set(clients).size === clients.length, source, "scenario.clients", "client names must be unique");
  const clientSet = new Set(clients);

  const steps: Step[] = [];
  const stepMap: ImportedStepMap[] = [];
  const expectations: MdkExpectation[] = [];
  const unsupported: ImportedVector["unsupported"] = [];
  const groups = new Set<string>();
  const observationWindows: ImportedVector["observationWindows"] = [];
  let ordered = false;
  const admins = new Map<string, string[]>();
  const keyPackagesNeeded = new Map<string, number>();

  const checkClient = (c: unknown, path: string): string => {
    need(typeof c === "string" && clientSet.has(c), source, path, `unknown client ${JSON.stringify(c)}`);
    return c;
  };
  const checkClients = (v: unknown, path: string): string[] => {
    need(Array.isArray(v), source, path, "expected a list of clients");
    return v.map((c, i) => checkClient(c, `${path}[${i}]`));
  };
  const push = (s: Step): number => steps.push(s) - 1;
  const marker = (description: string): number => push({ type: "advance-time", ms: 0, description });

  const convert = (raw: unknown, mdkIndex: number, group: string, path: string): void => {
    need(isObj(raw) && typeof raw.type === "string", source, path, "expected a step object with a type");
    const s = raw;
    const type = s.type as string;
    const label = `mdk[${mdkIndex}] ${type}`;
    const entry: ImportedStepMap = { mdkIndex, mdkType: type, ourSteps: [], how: "mapped" };
    stepMap.push(entry);
    const add = (st: Step): void => void entry.ourSteps.push(push({ ...st, description: st.description ?? label }));
    const asMarker = (note: string, how: ImportedStepMap["how"] = "marker"): void => {
      entry.how = how;
      entry.note = note;
      entry.ourSteps.push(marker(`${label}: ${note}`));
    };
    const requireGroup = (): void => need(groups.has(group), source, path, `group "${group}" is used before create_group`);
    switch (type) {
      case "in_group": {
        need(typeof s.group === "string" && s.group.length > 0, source, `${path}.group`, "is required");
        stepMap.pop();
        convert(s.action, mdkIndex, s.group, `${path}.action`);
        return;
      }
      case "create_group": {
        const creator = checkClient(s.creator, `${path}.creator`);
        const invitees = checkClients(s.invitees ?? [], `${path}.invitees`);
        const initialAdmins = checkClients(s.initial_admins ?? [], `${path}.initial_admins`);
        need(!groups.has(group), source, path, `group "${group}" created twice`);
        groups.add(group);
        admins.set(group, [creator, ...initialAdmins.filter((a) => a !== creator)]);
        const features = strList(s.required_features);
        add({ type: "create-group", agent: creator, group, name: typeof s.name === "string" ? s.name : group, ...(initialAdmins.length ? { admins: initialAdmins } : {}) });
        if (invitees.length) add({ type: "invite", agent: creator, group, members: invitees, description: `${label}: initial members` });
        for (const i of invitees) keyPackagesNeeded.set(i, (keyPackagesNeeded.get(i) ?? 0) + 1);
        if (features.length) entry.note = `required_features ${features.join(", ")}: our engine's defaults apply`;
        return;
      }
      case "invite_members": {
        requireGroup();
        const inviter = checkClient(s.inviter, `${path}.inviter`);
        const invitees = checkClients(s.invitees, `${path}.invitees`);
        for (const i of invitees) keyPackagesNeeded.set(i, (keyPackagesNeeded.get(i) ?? 0) + 1);
        add({ type: "invite", agent: inviter, group, members: invitees });
        return;
      }
      case "remove_members":
        requireGroup();
        add({ type: "remove", agent: checkClient(s.remover, `${path}.remover`), group, members: checkClients(s.members, `${path}.members`) });
        return;
      case "self_update":
        requireGroup();
        add({ type: "self-update", agent: checkClient(s.client, `${path}.client`), group });
        return;
      case "update_group_data":
      case "update_group_profile": {
        requireGroup();
        const patch: { name?: string; groupDescription?: string } = {};
        if (typeof s.name === "string") patch.name = s.name;
        if (typeof s.description === "string") patch.groupDescription = s.description;
        add({ type: "update-group-data", agent: checkClient(s.client, `${path}.client`), group, ...patch });
        return;
      }
      case "update_admin_policy": {
        requireGroup();
        const list = checkClients(s.admins, `${path}.admins`);
        admins.set(group, list);
        add({ type: "update-group-data", agent: checkClient(s.client, `${path}.client`), group, admins: list });
        return;
      }
      case "expect_update_admin_policy_error": {
        requireGroup();
        const list = checkClients(s.admins, `${path}.admins`);
        add({ type: "update-group-data", agent: checkClient(s.client, `${path}.client`), group, admins: list, expectError: "*" });
        expectations.push({ kind: "step-fails", origin: label, ourStep: entry.ourSteps[0] as number, mdkError: String(s.error ?? "") });
        expectations.push({ kind: "not-applicable", origin: `${label} error string`, reason: `MDK error string ${JSON.stringify(s.error)} is implementation-specific; only the refusal itself is judged` });
        return;
      }
      case "send_app_message":
        requireGroup();
        need(typeof s.payload === "string", source, `${path}.payload`, "is required");
        add({ type: "send", agent: checkClient(s.sender, `${path}.sender`), group, text: s.payload });
        return;
      case "leave": {
        requireGroup();
        const leaver = checkClient(s.client, `${path}.client`);
        const committer = (admins.get(group) ?? []).find((a) => a !== leaver);
        add({ type: "leave", agent: leaver, group, ...(committer ? { committer } : {}) });
        entry.note = "our leave step includes the SelfRemove auto-commit (MDK's later tick/acknowledge steps become markers)";
        return;
      }
      case "set_client_offline":
        add({ type: "offline", agent: checkClient(s.client, `${path}.client`) });
        return;
      case "reconnect_client":
        add({ type: "online", agent: checkClient(s.client, `${path}.client`) });
        return;
      case "restart_client":
        add({ type: "restart", agent: checkClient(s.client, `${path}.client`) });
        return;
      case "advance_time":
        need(Number.isInteger(s.delta_ms) && (s.delta_ms as number) >= 0, source, `${path}.delta_ms`, "expected a non-negative integer");
        add({ type: "advance-time", ms: s.delta_ms as number });
        return;
      case "sync_relay_history": {
        const mode = isObj(s.sync) ? String(s.sync.mode) : "";
        const cs = checkClients(s.clients, `${path}.clients`);
        if (mode === "full_history" || mode === "incremental") {
          // Our agents are subscribed all along; a sync is a catch-up cycle (offline → online).
          for (const c of cs) {
            add({ type: "offline", agent: c, description: `${label}: catch-up cycle` });
            add({ type: "online", agent: c, catchUp: mode === "full_history" ? "full-history" : "since-cursor", description: `${label}: ${mode}` });
          }
        } else {
          unsupported.push({ mdkIndex, type, reason: `sync mode ${JSON.stringify(mode)} is not modelled` });
        }
        return;
      }
      case "acknowledge_outbound":
        checkClient(s.client, `${path}.client`);
        if (s.outcome === "reached_no_endpoint") {
          unsupported.push({ mdkIndex, type, reason: "a publication that reaches no relay is not modelled per publication" });
          return;
        }
        asMarker("implicit: our agents confirm a commit after a relay acknowledges it", "implicit");
        return;
      case "deliver_all":
      case "tick":
      case "await_quiescence":
        asMarker("implicit: every step settles (delivers and processes everything in flight)", "implicit");
        return;
      case "barrier":
        asMarker(`barrier ${String(s.name ?? "")}`);
        return;
      case "clear_events": {
        const cs = checkClients(s.clients, `${path}.clients`);
        asMarker(`observation window starts for ${cs.join(", ")}`);
        for (const c of cs) observationWindows.push({ client: c, afterStep: entry.ourSteps[0] as number });
        return;
      }
      case "observe":
      case "observe_exact":
      case "observe_admin_policy":
        asMarker(`observation point for ${checkClients(s.clients, `${path}.clients`).join(", ")}`);
        if (type === "observe_admin_policy") {
          expectations.push({ kind: "not-applicable", origin: label, reason: "admin-policy observation has no expected value in the vector" });
        }
        return;
      case "probe_bidirectional_decryptability": {
        requireGroup();
        const cs = checkClients(s.clients, `${path}.clients`);
        const probes = cs.map((c) => ({ sender: c, payload: `mdk-probe:${mdkIndex}:${c}` }));
        for (const p of probes) add({ type: "send", agent: p.sender, group, text: p.payload, description: `${label}: probe from ${p.sender}` });
        expectations.push({ kind: "decryptable", origin: label, group, probes, clients: cs, at: { afterStep: entry.ourSteps[entry.ourSteps.length - 1] as number } });
        return;
      }
      case "assert": {
        need(isObj(s.assertion), source, `${path}.assertion`, "is required");
        const a = s.assertion;
        const at: JudgePoint = { afterStep: marker(`${label} (${String(a.mode)})`) };
        entry.ourSteps.push((at as { afterStep: number }).afterStep);
        entry.how = "marker";
        convertAssertion(a, group, at, label, `${path}.assertion`);
        return;
      }
      default:
        if (type in UNSUPPORTED_STEPS) {
          unsupported.push({ mdkIndex, type, reason: UNSUPPORTED_STEPS[type] as string });
          if (type === "reorder_messages") ordered = true;
          return;
        }
        throw new MdkVectorError("MDK_VECTOR_INVALID", `${source}: ${path}.type: unknown IR step type ${JSON.stringify(type)}`, { source, path });
    }
  };

  const convertAssertion = (a: Json, group: string, at: JudgePoint, label: string, path: string): void => {
    const mode = String(a.mode);
    if (mode === "resource") {
      expectations.push({ kind: "not-applicable", origin: `${label} resource ${String(a.metric)}`, reason: RESOURCE_NOTE });
      return;
    }
    need(isObj(a.predicate) && typeof a.predicate.type === "string", source, `${path}.predicate`, "is required");
    const p = a.predicate;
    const origin = `${label} ${mode} ${String(p.type)}`;
    switch (p.type) {
      case "client_state":
        expectations.push({
          kind: "client-state", origin, group, at, client: checkClient(p.client, `${path}.predicate.client`),
          ...(typeof p.epoch === "number" ? { epoch: p.epoch } : {}),
          ...(typeof p.member_count === "number" ? { memberCount: p.member_count } : {}),
        });
        return;
      case "payload_count":
        need(typeof p.payload === "string" && Number.isInteger(p.count), source, `${path}.predicate`, "payload_count needs payload and count");
        expectations.push({ kind: "payload-count", origin, group, at, client: checkClient(p.client, `${path}.predicate.client`), payload: p.payload as string, count: p.count as number, ...(mode === "never" ? { never: true } : {}) });
        return;
      case "clients_exactly_equivalent":
        expectations.push({ kind: "converged", origin, group, at, clients: checkClients(p.clients, `${path}.predicate.clients`) });
        return;
      case "no_pending_work":
        expectations.push({ kind: "not-applicable", origin, reason: "MDK-internal pending-work ledger" });
        return;
      default:
        throw new MdkVectorError("MDK_VECTOR_INVALID", `${source}: ${path}.predicate.type: unknown predicate ${JSON.stringify(p.type)}`, { source, path });
    }
  };

  (ir.steps as unknown[]).forEach((raw, i) => convert(raw, i, DEFAULT_GROUP, `scenario.steps[${i}]`));
  const onlyGroup = groups.size === 1 ? [...groups][0] as string : DEFAULT_GROUP;

  // Expectations from the vector's outcome lists.
  const outcomeState = (o: Json, origin: string): MdkExpectation => {
    const exp: MdkExpectation = { kind: "client-state", origin, group: onlyGroup, at: "end", client: checkClient(o.client, `${origin}.client`) };
    if (typeof o.epoch === "number") exp.epoch = o.epoch;
    if (typeof o.member_count === "number") exp.memberCount = o.member_count;
    if (Array.isArray(o.received_payloads)) exp.receivedPayloads = strList(o.received_payloads);
    if (Array.isArray(o.added_members)) exp.addedMembers = checkClients(o.added_members, `${origin}.added_members`);
    if (Array.isArray(o.removed_members)) exp.removedMembers = checkClients(o.removed_members, `${origin}.removed_members`);
    if (typeof o.group_name === "string") exp.groupName = o.group_name;
    return exp;
  };
  if (Array.isArray(doc.expected_outcomes)) {
    doc.expected_outcomes.forEach((o, i) => {
      const origin = `expected_outcomes[${i}]`;
      need(isObj(o) && typeof o.type === "string", source, origin, "expected an outcome object with a type");
      switch (o.type) {
        case "pending_resolution":
          expectations.push({ kind: "not-applicable", origin: `${origin} pending_resolution ${String(o.pending)}`, reason: `MDK-internal pending-work ledger (resolution "${String(o.resolution)}"); the commit's effect is judged through client state` });
          break;
        case "client_state":
          expectations.push(outcomeState(o, `${origin} client_state ${String(o.client)}`));
          break;
        case "group_profile": {
          const e: MdkExpectation = { kind: "client-state", origin: `${origin} group_profile ${String(o.client)}`, group: onlyGroup, at: "end", client: checkClient(o.client, `${origin}.client`) };
          if (typeof o.name === "string") e.groupName = o.name;
          if (typeof o.description === "string") e.groupDescription = o.description;
          expectations.push(e);
          break;
        }
        case "clients_converged":
          expectations.push({
            kind: "converged", origin: `${origin} clients_converged`, group: onlyGroup, at: "end", clients: checkClients(o.clients, `${origin}.clients`),
            ...(typeof o.epoch === "number" ? { epoch: o.epoch } : {}),
            ...(typeof o.member_count === "number" ? { memberCount: o.member_count } : {}),
          });
          break;
        case "no_pending_work":
          expectations.push({ kind: "not-applicable", origin: `${origin} no_pending_work`, reason: "MDK-internal pending-work ledger" });
          break;
        default:
          expectations.push({ kind: "not-applicable", origin: `${origin} ${o.type}`, reason: "outcome type unknown to this importer; not judged" });
      }
    });
  }
  if (isObj(doc.expected_trace)) {
    const tr = doc.expected_trace;
    for (const [i, pr] of (Array.isArray(tr.pending_resolutions) ? tr.pending_resolutions : []).entries()) {
      expectations.push({ kind: "not-applicable", origin: `expected_trace.pending_resolutions[${i}] ${isObj(pr) ? String(pr.pending) : ""}`, reason: "MDK-internal pending-work ledger; the commit's effect is judged through client state" });
    }
    for (const [i, ob] of (Array.isArray(tr.observations) ? tr.observations : []).entries()) {
      need(isObj(ob), source, `expected_trace.observations[${i}]`, "expected an object");
      const origin = `expected_trace.observations[${i}] ${String(ob.client)}`;
      const e = outcomeState(ob, origin);
      if (e.kind === "client-state" && isObj(ob.event_counts)) {
        const counts = ob.event_counts;
        if (typeof counts.message_received === "number") e.messagesReceived = counts.message_received;
        const others = Object.keys(counts).filter((k) => k !== "message_received");
        if (others.length) expectations.push({ kind: "not-applicable", origin: `${origin} event_counts (${others.join(", ")})`, reason: "MDK event-stream counters (decision trace) follow MDK's own event semantics" });
      }
      expectations.push(e);
    }
  }

  // The vectors' epochs count only the commits they script: joiners do not add their own self-update.
  const agents: AgentSpec[] = clients.map((name) => ({ name, relays: [RELAY], keyPackages: Math.max(1, keyPackagesNeeded.get(name) ?? 1), selfUpdateAfterJoin: false }));
  const name = `mdk:${ir.name as string}`;
  const scenario: Scenario = {
    name,
    description: `MDK conformance vector ${ir.name as string} (IR v${specVersion}${typeof doc.conformance_version === "string" ? `, MDK conformance ${doc.conformance_version}` : ""})`,
    seed: typeof doc.seed === "string" || typeof doc.seed === "number" ? String(doc.seed) : seed,
    relays: [{ name: RELAY }],
    agents,
    steps,
    params: { mdkVector: source, irVersion: specVersion },
  };
  return { source, name, specVersion, scenario, steps: stepMap, expectations, unsupported, ordered, observationWindows };
}

export async function loadMdkVector(path: string, seed?: string): Promise<ImportedVector> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (e) {
    throw new MdkVectorError("MDK_VECTOR_READ", `cannot read ${path}: ${(e as Error).message}`, { path });
  }
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    throw new MdkVectorError("MDK_VECTOR_INVALID", `${path}: not JSON (${(e as Error).message})`, { path });
  }
  return importMdkVector(doc, path, seed);
}

// ---------------------------------------------------------------------------------------------
// Judging

/** Facts about one client's group, reconstructed from the history at a point in time. */
export interface ClientFacts {
  epoch?: number;
  members?: string[];
  epochCommitment?: string;
  name?: string;
  description?: string;
  /** Payloads decrypted since the client's observation window opened (in order). */
  payloads: string[];
  added: string[];
  removed: string[];
}

export interface MdkJudgeInput {
  vector: ImportedVector;
  history: readonly HistoryEntry[];
  /** Final group view per agent, when the runner has it (name, description, epoch, members). */
  finalViews?: Record<string, { name?: string; description?: string; epoch?: number; members?: string[]; epochCommitment?: string }[]>;
}

function sortedCopy(xs: readonly string[]): string[] {
  return [...xs].sort();
}

/** Multiset difference: what `expected` has that `actual` lacks, and the other way round. */
export function multisetDiff(expected: readonly string[], actual: readonly string[]): { missing: string[]; unexpected: string[] } {
  const counts = new Map<string, number>();
  for (const x of actual) counts.set(x, (counts.get(x) ?? 0) + 1);
  const missing: string[] = [];
  for (const x of expected) {
    const n = counts.get(x) ?? 0;
    if (n > 0) counts.set(x, n - 1);
    else missing.push(x);
  }
  const unexpected: string[] = [];
  for (const [x, n] of counts) for (let i = 0; i < n; i++) unexpected.push(x);
  return { missing, unexpected };
}

/** Reads a client's view of one group out of the history. */
class HistoryIndex {
  readonly nameOf = new Map<string, string>();
  private readonly stepEnd = new Map<number, number>();
  private readonly windowStarts = new Map<string, number[]>();
  /** Group label → MLS group id, from the creator's `create-group` entry inside the create step. */
  private readonly groupIds = new Map<string, string>();

  constructor(
    readonly entries: readonly HistoryEntry[],
    vector: ImportedVector,
  ) {
    for (const e of entries) {
      if (e.op === "identity" && typeof e.data.pubkey === "string") this.nameOf.set(e.data.pubkey, e.actor);
      if (e.op === "step" && typeof e.data.index === "number") this.stepEnd.set(e.data.index, e.seq);
    }
    for (const w of vector.observationWindows) {
      this.windowStarts.set(w.client, [...(this.windowStarts.get(w.client) ?? []), this.position({ afterStep: w.afterStep })]);
    }
    vector.scenario.steps.forEach((st, i) => {
      if (st.type !== "create-group") return;
      const end = this.stepEnd.get(i);
      const made = entries.find((e) => e.op === "create-group" && e.type === "ok" && e.actor === st.agent && (end === undefined || e.seq < end) && typeof e.data.groupId === "string" && ![...this.groupIds.values()].includes(e.data.groupId));
      if (made) this.groupIds.set(st.group, made.data.groupId as string);
    });
  }

  /** History position (exclusive upper bound) for a judge point. */
  position(at: JudgePoint): number {
    if (at === "end") return this.entries.length;
    const seq = this.stepEnd.get(at.afterStep);
    return seq === undefined ? this.entries.length : seq + 1;
  }

  private name(pubkey: unknown): string {
    const k = String(pubkey);
    return this.nameOf.get(k) ?? k;
  }

  /**
   * The client's state just before history position `until`. Members added and removed are the
   * differences between the client's consecutive epoch snapshots inside its observation window
   * (what its group state shows, whoever committed and however the commit was reported).
   */
  facts(client: string, group: string, until: number): ClientFacts {
    const gid = this.groupIds.get(group);
    const inGroup = (d: Record<string, unknown>): boolean => gid === undefined || d.groupId === undefined || d.groupId === gid;
    const starts = (this.windowStarts.get(client) ?? []).filter((p) => p <= until);
    const from = starts.length ? Math.max(...starts) : 0;
    const f: ClientFacts = { payloads: [], added: [], removed: [] };
    let previous: Set<string> | undefined;
    for (let i = 0; i < until && i < this.entries.length; i++) {
      const e = this.entries[i] as HistoryEntry;
      if (e.actor !== client || !inGroup(e.data)) continue;
      const d = e.data;
      // "epoch": the agent's snapshot after each change; "state": the runner's snapshot at checkpoints.
      if (e.op === "epoch" || (e.op === "state" && d.active !== false)) {
        const members = Array.isArray(d.members) ? d.members.map((m) => this.name(m)) : undefined;
        if (typeof d.epoch === "number") f.epoch = d.epoch;
        if (members) {
          if (previous && i >= from) {
            const now = new Set(members);
            for (const m of members) if (!previous.has(m)) f.added.push(m);
            for (const m of previous) if (!now.has(m)) f.removed.push(m);
          }
          previous = new Set(members);
          f.members = members;
        }
        if (typeof d.epochCommitment === "string") f.epochCommitment = d.epochCommitment;
        if (typeof d.name === "string") f.name = d.name;
        if (typeof d.description === "string") f.description = d.description;
      } else if (i >= from && e.op === "decrypt" && e.type === "ok" && typeof d.content === "string") {
        f.payloads.push(d.content);
      }
    }
    return f;
  }
}

/** Judge a vector's expectations against the recorded history of its run. */
export function judgeMdkVector(input: MdkJudgeInput): CheckResult[] {
  const { vector } = input;
  const idx = new HistoryIndex(input.history, vector);
  const out: CheckResult[] = [];
  const factsAt = (client: string, at: JudgePoint, group: string): ClientFacts => {
    const f = idx.facts(client, group, idx.position(at));
    if (at === "end") {
      const view = input.finalViews?.[client]?.[0];
      if (view) {
        if (f.name === undefined && view.name !== undefined) f.name = view.name;
        if (f.description === undefined && view.description !== undefined) f.description = view.description;
        if (f.epoch === undefined && view.epoch !== undefined) f.epoch = view.epoch;
        if (f.members === undefined && view.members) f.members = view.members.map((m) => idx.nameOf.get(m) ?? m);
      }
    }
    return f;
  };
  for (const exp of vector.expectations) {
    const name = `mdk:${exp.kind}`;
    switch (exp.kind) {
      case "not-applicable":
        out.push({ name, verdict: "not-applicable", message: `${exp.origin}: ${exp.reason}` });
        break;
      case "client-state": {
        const f = factsAt(exp.client, exp.at, exp.group);
        const problems: string[] = [];
        const notJudged: string[] = [];
        let judged = 0;
        const judge = (bad: boolean, problem: () => string): void => {
          judged++;
          if (bad) problems.push(problem());
        };
        if (exp.epoch !== undefined) judge(f.epoch !== exp.epoch, () => `epoch ${f.epoch ?? "unknown"}, expected ${exp.epoch}`);
        if (exp.memberCount !== undefined) judge(f.members?.length !== exp.memberCount, () => `member count ${f.members?.length ?? "unknown"}, expected ${exp.memberCount}`);
        if (exp.receivedPayloads) {
          const want = exp.receivedPayloads;
          if (vector.ordered) {
            judge(JSON.stringify(f.payloads) !== JSON.stringify(want), () => `payloads ${JSON.stringify(f.payloads)}, expected in order ${JSON.stringify(want)}`);
          } else {
            const d = multisetDiff(want, f.payloads);
            judge(d.missing.length + d.unexpected.length > 0, () =>
              [d.missing.length ? `missing payloads ${JSON.stringify(d.missing)}` : "", d.unexpected.length ? `unexpected payloads ${JSON.stringify(d.unexpected)}` : ""].filter(Boolean).join("; "),
            );
          }
        }
        if (exp.messagesReceived !== undefined) judge(f.payloads.length !== exp.messagesReceived, () => `${f.payloads.length} messages received, expected ${exp.messagesReceived}`);
        const sameSet = (a: string[], b: string[]): boolean => JSON.stringify(sortedCopy(a)) === JSON.stringify(sortedCopy(b));
        if (exp.addedMembers) judge(!sameSet(f.added, exp.addedMembers), () => `saw added ${JSON.stringify(f.added)}, expected ${JSON.stringify(exp.addedMembers)}`);
        if (exp.removedMembers) judge(!sameSet(f.removed, exp.removedMembers), () => `saw removed ${JSON.stringify(f.removed)}, expected ${JSON.stringify(exp.removedMembers)}`);
        for (const [field, want, got] of [["name", exp.groupName, f.name], ["description", exp.groupDescription, f.description]] as const) {
          if (want === undefined) continue;
          if (got === undefined) notJudged.push(`group ${field} (not recorded by this run)`);
          else judge(got !== want, () => `group ${field} ${JSON.stringify(got)}, expected ${JSON.stringify(want)}`);
        }
        if (problems.length) out.push({ name, verdict: "fail", message: `${exp.origin}: ${exp.client}: ${problems.join("; ")}`, subjects: [exp.client] });
        else if (judged) out.push({ name, verdict: "pass", message: `${exp.origin}: ${exp.client} as expected (${judged} field${judged === 1 ? "" : "s"} judged)` });
        if (notJudged.length) out.push({ name, verdict: "not-applicable", message: `${exp.origin}: not judged: ${notJudged.join(", ")}` });
        break;
      }
      case "payload-count": {
        const f = factsAt(exp.client, exp.at, exp.group);
        const n = f.payloads.filter((p) => p === exp.payload).length;
        const ok = n === exp.count;
        out.push({ name, verdict: ok ? "pass" : "fail", message: `${exp.origin}: ${exp.client} decrypted ${JSON.stringify(exp.payload)} ${n} time(s), expected ${exp.count}`, subjects: [exp.client] });
        break;
      }
      case "converged": {
        const facts = exp.clients.map((c) => ({ c, f: factsAt(c, exp.at, exp.group) }));
        const problems: string[] = [];
        const epochs = new Set(facts.map((x) => x.f.epoch));
        const memberSets = new Set(facts.map((x) => JSON.stringify(sortedCopy(x.f.members ?? []))));
        const commitments = new Set(facts.map((x) => x.f.epochCommitment).filter((x) => x !== undefined));
        if (facts.some((x) => x.f.epoch === undefined)) problems.push(`no recorded state for ${facts.filter((x) => x.f.epoch === undefined).map((x) => x.c).join(", ")}`);
        if (epochs.size > 1) problems.push(`epochs differ: ${facts.map((x) => `${x.c}=${x.f.epoch}`).join(", ")}`);
        if (memberSets.size > 1) problems.push("member lists differ");
        if (commitments.size > 1) problems.push("epoch commitments differ");
        const first = facts[0]?.f;
        if (exp.epoch !== undefined && first?.epoch !== exp.epoch) problems.push(`epoch ${first?.epoch ?? "unknown"}, expected ${exp.epoch}`);
        if (exp.memberCount !== undefined && first?.members?.length !== exp.memberCount) problems.push(`member count ${first?.members?.length ?? "unknown"}, expected ${exp.memberCount}`);
        out.push({
          name,
          verdict: problems.length ? "fail" : "pass",
          message: `${exp.origin}: ${exp.clients.join(", ")} ${problems.length ? problems.join("; ") : `agree (epoch ${first?.epoch}, ${first?.members?.length} members${commitments.size ? ", same epoch commitment" : ""})`}`,
          subjects: exp.clients,
        });
        break;
      }
      case "decryptable": {
        const problems: string[] = [];
        for (const c of exp.clients) {
          const f = factsAt(c, exp.at, exp.group);
          for (const p of exp.probes) {
            if (p.sender === c) continue;
            if (!f.payloads.includes(p.payload)) problems.push(`${c} could not read ${p.sender}'s probe`);
          }
        }
        out.push({ name, verdict: problems.length ? "fail" : "pass", message: `${exp.origin}: ${problems.length ? problems.join("; ") : `${exp.clients.join(", ")} read each other's probes`}`, subjects: exp.clients });
        break;
      }
      case "step-fails": {
        const st = input.history.filter((e) => e.op === "step" && e.data.index === exp.ourStep && e.type !== "invoke").at(-1);
        // Our runner fails an `expectError` step that succeeded; an ok entry means it was refused as expected.
        const verdict = st === undefined ? "error" : st.type === "ok" ? "pass" : "fail";
        out.push({ name, verdict, message: `${exp.origin}: ${st === undefined ? "the step did not run" : verdict === "pass" ? "refused as expected" : `not refused: ${String(st.data.message ?? "")}`}` });
        break;
      }
    }
  }
  return out;
}

/** Summary line of what an imported vector will and will not judge. */
export function describeImport(v: ImportedVector): string {
  const counts = new Map<string, number>();
  for (const e of v.expectations) counts.set(e.kind, (counts.get(e.kind) ?? 0) + 1);
  const parts = [...counts].map(([k, n]) => `${n} ${k}`);
  return `IR v${v.specVersion}: ${v.scenario.steps.length} steps from ${v.steps.length} IR steps; expectations: ${parts.join(", ") || "none"}${v.unsupported.length ? `; unsupported: ${v.unsupported.map((u) => u.type).join(", ")}` : ""}`;
}
