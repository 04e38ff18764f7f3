/**
 * MDK's `cgka-conformance-node` as a peer. The binary speaks `marmot-convergence-node-v1`; this
 * adapter maps our commands onto it (docs/peer-protocol.md has the table):
 * - our optional `group` on a command becomes a `select_group` first (MDK acts on the selected group);
 * - observing a group selects it and catches up first: MDK's node accepts a pending invitation
 *   to the selected group only during `catch_up`;
 * - `initialize` gets the `root` MDK requires (the peer's home directory) and loses our extensions;
 * - MDK's observation (one selected group, labels instead of accounts, no senders) becomes our
 *   `groups` view by mapping labels back to the accounts this adapter has seen;
 * - commands MDK has no equivalent for (probe, restart, KeyPackage rotation/deletion, going
 *   offline, committing someone else's SelfRemove) fail with PEER_UNSUPPORTED, and the adapter's
 *   declared capabilities say so in advance.
 * Path from MARMOT_HARNESS_MDK_NODE. MDK's node follows the newest spec (R2), so a mixed run with
 * R1 engine agents is expected to be stopped by profile detection.
 */
import { NO_EPOCH_COMMITMENT } from "../../agents/types.ts";
import { executableSkipReason, unsupportedCommand } from "../child-process.ts";
import { PeerCommandError, PeerProcess } from "../process.ts";
import {
  MDK_NODE_PROTOCOL_VERSION,
  opaqueIdentity,
  type PeerCommand,
  type PeerGroupView,
  type PeerObservation,
  type PeerResponseBody,
} from "../protocol.ts";
import type { PeerTransport } from "../peer-agent.ts";
import type { PeerAdapter, PeerOpenOptions } from "./types.ts";

export const MDK_NODE_ENV = "MARMOT_HARNESS_MDK_NODE";

function unsupported(command: string): PeerCommandError {
  return unsupportedCommand("mdk-node", command, `MDK's node protocol has no equivalent of ${command}`);
}

export class MdkNodeTransport implements PeerTransport {
  private selected: string | undefined;
  private account = "";
  private readonly known = new Set<string>();
  /** Participant label → account, from configure_peers (MDK reports members by label). */
  private labels = new Map<string, string>();
  private readonly groups = new Map<string, { name: string; epoch: number }>();

  constructor(
    private readonly proc: PeerProcess,
    private readonly home: string,
  ) {}

  private async select(group: string | undefined): Promise<void> {
    if (group === undefined || group === this.selected) return;
    await this.proc.request({ type: "select_group", group, group_id_hex: group });
    this.selected = group;
    if (!this.groups.has(group)) {
      this.groups.set(group, { name: "", epoch: 0 });
      // First time this group is named: accept a pending invitation to it (MDK does so in catch_up).
      await this.proc.request({ type: "catch_up", action_id: "select-accept", full_history: false }).catch(() => undefined);
    }
  }

  /** Before acting on a group: select it and catch up, as a client that is current would be. */
  private async prepare(group: string | undefined): Promise<void> {
    await this.select(group);
    await this.proc.request({ type: "catch_up", action_id: "before-action", full_history: false }).catch(() => undefined);
  }

  async request(c: PeerCommand, opts: { timeoutMs?: number } = {}): Promise<PeerResponseBody> {
    const send = (cmd: PeerCommand): Promise<PeerResponseBody> => this.proc.request(cmd, opts);
    switch (c.type) {
      case "initialize": {
        const b = await send({ type: "initialize", participant: c.participant, root: c.root ?? this.home, relay_urls: c.relay_urls });
        if (b.type === "initialized") {
          this.account = b.account_id;
          this.known.add(b.account_id);
        }
        return b;
      }
      case "publish_key_package":
        // The node publishes its KeyPackage when it creates the identity; one is all it offers.
        if ((c.count ?? 1) <= 1) return { type: "ack", action_id: c.action_id, published: 0 };
        throw unsupported("publishing more than one KeyPackage");
      case "create_group": {
        c.member_accounts.forEach((a) => this.known.add(a));
        c.initial_admin_accounts.forEach((a) => this.known.add(a));
        const b = await send({ type: "create_group", action_id: c.action_id, group: c.group, name: c.name, member_accounts: c.member_accounts, initial_admin_accounts: [this.account, ...c.initial_admin_accounts] });
        if (b.type === "ack" && b.group_id_hex) {
          // MDK selects the new group under our label; from now on we address it by id.
          await send({ type: "select_group", group: b.group_id_hex, group_id_hex: b.group_id_hex });
          this.selected = b.group_id_hex;
          this.groups.set(b.group_id_hex, { name: c.name, epoch: 0 });
        }
        return b;
      }
      case "invite_members":
      case "remove_members":
        c.member_accounts.forEach((a) => this.known.add(a));
        await this.prepare(c.group);
        return send({ type: c.type, action_id: c.action_id, member_accounts: c.member_accounts });
      case "update_group_data":
        await this.prepare(c.group);
        return send({ type: "update_group_data", action_id: c.action_id, name: c.name });
      case "update_group_profile":
        await this.prepare(c.group);
        return send({ type: "update_group_profile", action_id: c.action_id, name: c.name ?? null, description: c.description ?? null });
      case "update_admin_policy":
        await this.prepare(c.group);
        return send({ type: "update_admin_policy", action_id: c.action_id, admin_accounts: c.admin_accounts });
      case "self_update":
      case "leave":
        await this.prepare(c.group);
        return send({ type: c.type, action_id: c.action_id });
      case "send_application":
        await this.prepare(c.group);
        if (c.kind !== undefined && c.kind !== 9) throw unsupported(`sending inner kind ${c.kind}`);
        return send({ type: "send_application", action_id: c.action_id, payload: c.payload });
      case "catch_up":
        return send({ type: "catch_up", action_id: c.action_id, full_history: c.full_history });
      case "ping":
        return send({ type: "barrier", action_id: c.action_id, barrier: "ping" }).then(() => ({ type: "ack", action_id: c.action_id, published: 0 }));
      case "observe":
        return { type: "observation", action_id: c.action_id, observation: await this.observe(c.action_id, c.group) };
      case "configure_peers":
        Object.values(c.accounts_by_participant).forEach((a) => this.known.add(a));
        this.labels = new Map(Object.entries(c.accounts_by_participant));
        return send(c);
      case "select_group":
        this.selected = c.group;
        return send(c);
      case "barrier":
      case "clear_events":
      case "pause_maintenance":
      case "resume_maintenance":
      case "shutdown":
        return send(c);
      default:
        throw unsupported(c.type);
    }
  }

  /** MDK projects the selected group only, with labels; turn that into our group views. */
  private async observe(actionId: string, group: string | undefined): Promise<PeerObservation> {
    const targets = group ? [group] : [...this.groups.keys()];
    const views: PeerGroupView[] = [];
    let last: PeerObservation | undefined;
    for (const gid of targets) {
      await this.select(gid);
      // MDK's node accepts a pending invitation to the selected group only during catch_up.
      await this.proc.request({ type: "catch_up", action_id: `${actionId}-accept`, full_history: false }).catch(() => undefined);
      let b: PeerResponseBody;
      try {
        b = await this.proc.request({ type: "observe", action_id: actionId });
      } catch (e) {
        // A group the node does not (yet) have is simply not in the view.
        if (e instanceof PeerCommandError) continue;
        throw e;
      }
      if (b.type !== "observation") continue;
      last = b.observation;
      const p = b.observation.protocol;
      if (!p) continue;
      const byLabel = new Map([...[...this.known].map((a): [string, string] => [opaqueIdentity(a), a]), ...this.labels]);
      const resolve = (labels: string[]): string[] => labels.map((l) => byLabel.get(l) ?? (/^[0-9a-f]{64}$/.test(l) ? l : "")).filter((a) => a !== "");
      views.push({ group: gid, group_id_hex: gid, nostr_group_id_hex: gid, epoch: p.epoch, members: resolve(p.member_identities), admins: resolve(p.admin_identities), name: p.group_name, description: p.group_description ?? "", active: true, epoch_commitment: null });
    }
    return {
      schema_version: last?.schema_version ?? "1",
      participant: last?.participant ?? "",
      protocol: last?.protocol ?? null,
      application: last?.application ?? null,
      progress: last?.progress ?? {
        relay_inbound_events_seen: 0,
        relay_inbound_events_delivered: 0,
        relay_publish_attempts: 0,
        relay_publish_failures: 0,
        relay_directory_inflight_fetches: 0,
        relay_directory_completed_fetches: 0,
        retry_timer_armed: false,
        projection_checkpoint_sha256: "",
        stable_checkpoint_observations: 0,
      },
      account_id: this.account,
      groups: views,
      messages: [],
    };
  }

  close(): Promise<unknown> {
    return this.proc.close();
  }
}

export const mdkNodeAdapter: PeerAdapter = {
  id: "mdk-node",
  title: "MDK cgka-conformance-node (marmot-convergence-node-v1)",
  skipReason(env = process.env) {
    return executableSkipReason(env, MDK_NODE_ENV, "MDK's cgka-conformance-node binary");
  },
  // MDK's projection carries its own state commitment but no exporter epoch commitment:
  // convergence compares this agent on epoch and members only (and says so).
  capabilities: [NO_EPOCH_COMMITMENT],
  steps: ["create-group", "invite", "remove", "self-update", "update-group-data", "leave", "send", "wait-for-convergence", "assert", "publish-key-package", "advance-time", "fault"],
  expectedProfile: "R2",
  pinnedIdentity: false,
  async open(o: PeerOpenOptions) {
    const bin = (o.env ?? process.env)[MDK_NODE_ENV] as string;
    const proc = await PeerProcess.spawn({ name: o.name, command: bin, args: [], env: { ...process.env, ...(o.env ?? {}) }, protocol: MDK_NODE_PROTOCOL_VERSION, timeoutMs: o.timeoutMs ?? 45_000 });
    return new MdkNodeTransport(proc, o.home);
  },
};
