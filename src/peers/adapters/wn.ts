/**
 * White Noise as a peer, driven through its `wn` CLI (`--json`). One home directory per peer;
 * the daemon (`wnd`, next to `wn` or at MARMOT_HARNESS_WND) owns that peer's database, keys and
 * relay connections. Environment: WN_SECRET_STORE=file (no system keyring), WN_ALLOW_LOOPBACK_RELAYS=1
 * (relays on 127.0.0.1). Path to `wn` from MARMOT_HARNESS_WN.
 *
 * Commands map onto wn subcommands; where White Noise versions differ, each action lists the
 * spellings tried in order (the first that succeeds is remembered):
 *   identity      account create | create-identity
 *   KeyPackage    keys publish
 *   create group  groups create <name> <members...>
 *   invite        groups add-members <group> <members...>
 *   remove        groups remove-members <group> <members...>
 *   leave         groups leave <group>
 *   rename        groups rename <group> <name>
 *   send          messages send <group> <text>
 *   catch up      sync (when the CLI has it; otherwise the daemon syncs on its own)
 *   observe       groups list, groups show, groups members, groups admins, messages list
 * White Noise picks its own identity and does not expose epochs or exporter commitments, so
 * convergence is judged on members and messages only.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import { dirname, join } from "node:path";
import { executableSkipReason, isExecutable, runCommand, unsupportedCommand, type CommandResult } from "../child-process.ts";
import { PeerCommandError } from "../process.ts";
import type { PeerCommand, PeerGroupView, PeerMessageView, PeerObservation, PeerResponseBody } from "../protocol.ts";
import type { PeerTransport } from "../peer-agent.ts";
import type { PeerAdapter, PeerOpenOptions } from "./types.ts";

export const WN_ENV = "MARMOT_HARNESS_WN";
export const WND_ENV = "MARMOT_HARNESS_WND";

export interface WnResult {
  ok: boolean;
  result: unknown;
  error?: string;
}

function fail(command: string, code: string, message: string): PeerCommandError {
  if (code === "PEER_UNSUPPORTED") return unsupportedCommand("wn", command, message);
  return new PeerCommandError("wn", command, { code, category: "environment", retryable: false, message });
}

/** Hex from the shapes wn uses for ids: hex string, byte array, or { value: { vec: [...] } }. */
export function wnHex(v: unknown): string | undefined {
  if (typeof v === "string" && /^[0-9a-f]+$/i.test(v)) return v.toLowerCase();
  if (Array.isArray(v) && v.every((b) => typeof b === "number")) return Buffer.from(v as number[]).toString("hex");
  if (v && typeof v === "object") {
    const o = v as Record<string, unknown>;
    const inner = (o.value as Record<string, unknown> | undefined)?.vec ?? o.vec ?? o.value;
    if (inner !== undefined && inner !== v) return wnHex(inner);
  }
  return undefined;
}

/** The argument list of one `wn` call: JSON output, the daemon's socket, the account when known, then the subcommand. */
export function wnCommandLine(socket: string, account: string, args: readonly string[]): string[] {
  return ["--json", "--socket", socket, ...(account ? ["--account", account] : []), ...args];
}

/**
 * One `wn --json` answer: success is exit code 0 with a JSON object on stdout and no `error`
 * field; its `result` is the payload. Otherwise the error is the JSON `error`, else stderr,
 * else stdout, else the exit status.
 */
export function parseWnOutput(r: CommandResult): WnResult {
  if (r.spawnError) return { ok: false, result: null, error: r.spawnError };
  let parsed: Record<string, unknown> | undefined;
  try {
    const v: unknown = JSON.parse(r.stdout);
    parsed = v && typeof v === "object" && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
  } catch {
    parsed = undefined;
  }
  if (r.code !== 0 || !parsed || parsed.error) {
    const status = r.timedOut ? "timed out" : r.signal ? `killed by ${r.signal}` : `exit ${r.code}`;
    const error = parsed?.error;
    return { ok: false, result: null, error: error !== undefined && error !== null && error !== false ? (typeof error === "string" ? error : JSON.stringify(error)) : r.stderr.trim() || r.stdout.trim() || status };
  }
  return { ok: true, result: parsed.result ?? null };
}

export class WnTransport implements PeerTransport {
  private daemon: ChildProcess | undefined;
  private account = "";
  private readonly spelling = new Map<string, string[]>();
  /** Debug builds of wnd listen at {data}/dev/wnd.sock, release builds at {data}/release/wnd.sock. */
  private socket: string;

  constructor(
    private readonly wn: string,
    private readonly wnd: string,
    private readonly home: string,
    private readonly env: NodeJS.ProcessEnv,
    private readonly timeoutMs: number,
  ) {
    this.socket = join(home, "data", "dev", "wnd.sock");
  }

  /** Run `wn --json --socket S [--account A] args...` and parse its JSON answer. */
  private async run(args: string[], withAccount = true): Promise<WnResult> {
    const r = await runCommand(this.wn, wnCommandLine(this.socket, withAccount ? this.account : "", args), { env: this.env, timeoutMs: this.timeoutMs });
    return parseWnOutput(r);
  }

  /** Try each spelling of an action until one works; remember it. */
  private async action(name: string, spellings: string[][], tail: string[] = []): Promise<unknown> {
    const known = this.spelling.get(name);
    const tries = known ? [known] : spellings;
    let last = "";
    for (const s of tries) {
      const r = await this.run([...s, ...tail], name !== "identity");
      if (r.ok) {
        this.spelling.set(name, s);
        return r.result;
      }
      last = r.error ?? "";
    }
    throw fail(name, "WN_COMMAND_FAILED", `wn ${name} failed: ${last}`);
  }

  private async startDaemon(relays: string[]): Promise<void> {
    await mkdir(join(this.home, "data"), { recursive: true });
    await mkdir(join(this.home, "logs"), { recursive: true });
    const list = relays.join(",");
    this.daemon = spawn(this.wnd, ["--data-dir", join(this.home, "data"), "--logs-dir", join(this.home, "logs"), "--discovery-relays", list, "--default-account-relays", list], {
      env: this.env,
      stdio: "ignore",
      detached: true,
    });
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline) {
      if (this.daemon.exitCode !== null) throw fail("initialize", "WN_DAEMON_EXITED", `wnd exited with code ${this.daemon.exitCode}`);
      for (const flavour of ["dev", "release"]) {
        const candidate = join(this.home, "data", flavour, "wnd.sock");
        if (!existsSync(candidate)) continue;
        this.socket = candidate;
        if ((await this.run(["whoami"], false)).ok) return;
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    throw fail("initialize", "WN_DAEMON_TIMEOUT", "wnd did not answer within 30 s");
  }

  async request(c: PeerCommand): Promise<PeerResponseBody> {
    const ack = (action_id: string, extra: Record<string, unknown> = {}): PeerResponseBody => ({ type: "ack", action_id, published: 0, ...extra });
    switch (c.type) {
      case "initialize": {
        await this.startDaemon(c.relay_urls);
        const r = (await this.action("identity", [["account", "create"], ["create-identity"]])) as Record<string, unknown> | null;
        const pk = wnHex(r?.pubkey);
        if (!pk || pk.length !== 64) throw fail("initialize", "WN_BAD_ANSWER", "identity creation returned no hex pubkey");
        this.account = pk;
        return { type: "initialized", account_id: pk, implementation: "white-noise" };
      }
      case "publish_key_package":
        await this.action("keys-publish", [["keys", "publish"]]);
        return ack(c.action_id);
      case "create_group": {
        const r = (await this.action("groups-create", [["groups", "create"]], [c.name, ...c.member_accounts])) as Record<string, unknown> | null;
        const gid = wnHex(r?.mls_group_id ?? r?.group_id);
        if (!gid) throw fail("create_group", "WN_BAD_ANSWER", "groups create returned no group id");
        return ack(c.action_id, { group_id_hex: gid });
      }
      case "invite_members":
        await this.action("groups-add", [["groups", "add-members"]], [this.gid(c.group), ...c.member_accounts]);
        return ack(c.action_id);
      case "remove_members":
        await this.action("groups-remove", [["groups", "remove-members"]], [this.gid(c.group), ...c.member_accounts]);
        return ack(c.action_id);
      case "leave":
        await this.action("groups-leave", [["groups", "leave"]], [this.gid(c.group)]);
        return ack(c.action_id);
      case "update_group_data":
        await this.action("groups-rename", [["groups", "rename"]], [this.gid(c.group), c.name]);
        return ack(c.action_id);
      case "update_group_profile":
        if (typeof c.name !== "string" || c.description) throw fail("update_group_profile", "PEER_UNSUPPORTED", "wn can only rename a group");
        await this.action("groups-rename", [["groups", "rename"]], [this.gid(c.group), c.name]);
        return ack(c.action_id);
      case "send_application":
        if (c.kind !== undefined && c.kind !== 9) throw fail("send_application", "PEER_UNSUPPORTED", "wn sends chat messages (kind 9) only");
        await this.action("messages-send", [["messages", "send"]], [this.gid(c.group), c.payload]);
        return ack(c.action_id);
      case "catch_up":
        await this.action("sync", [["sync"], ["whoami"]]).catch(() => undefined);
        return ack(c.action_id, { result: { processed: 0 } });
      case "observe":
        return { type: "observation", action_id: c.action_id, observation: await this.observe() };
      case "ping":
      case "barrier":
      case "clear_events":
      case "pause_maintenance":
      case "resume_maintenance":
        return c.type === "barrier" ? { type: "barrier_ready", action_id: c.action_id, barrier: c.barrier } : ack(c.action_id);
      case "shutdown":
        return { type: "shutdown" };
      default:
        throw fail(c.type, "PEER_UNSUPPORTED", `wn has no equivalent of ${c.type}`);
    }
  }

  private gid(group: string | undefined): string {
    if (!group) throw fail("group", "group_not_selected", "wn commands need an explicit group id");
    return group;
  }

  private async observe(): Promise<PeerObservation> {
    const list = ((await this.action("groups-list", [["groups", "list"]])) as unknown[] | null) ?? [];
    const groups: PeerGroupView[] = [];
    const messages: PeerMessageView[] = [];
    for (const item of list) {
      const g = item as Record<string, unknown>;
      const gid = wnHex(g.mls_group_id ?? g.group_id);
      if (!gid) continue;
      const show = ((await this.action("groups-show", [["groups", "show"]], [gid]).catch(() => g)) as Record<string, unknown>) ?? g;
      const members = (((await this.action("groups-members", [["groups", "members"]], [gid]).catch(() => [])) as unknown[]) ?? []).map((m) => wnHex((m as Record<string, unknown>)?.pubkey ?? m)).filter((x): x is string => !!x && x.length === 64);
      const admins = (((await this.action("groups-admins", [["groups", "admins"]], [gid]).catch(() => [])) as unknown[]) ?? []).map((m) => wnHex((m as Record<string, unknown>)?.pubkey ?? m)).filter((x): x is string => !!x && x.length === 64);
      groups.push({
        group: null,
        group_id_hex: gid,
        nostr_group_id_hex: wnHex(show.nostr_group_id) ?? gid,
        epoch: typeof show.epoch === "number" ? show.epoch : 0,
        members: members.sort(),
        admins: admins.sort(),
        name: typeof show.name === "string" ? show.name : "",
        description: typeof show.description === "string" ? show.description : "",
        active: show.state === undefined || show.state === "active" || show.state === "Active",
        epoch_commitment: null,
      });
      const msgs = ((await this.action("messages-list", [["messages", "list"]], [gid]).catch(() => [])) as unknown[]) ?? [];
      for (const m of msgs) {
        const o = m as Record<string, unknown>;
        const id = wnHex(o.id ?? o.message_id);
        const sender = wnHex(o.author ?? o.pubkey ?? o.sender);
        if (!id || id.length !== 64 || !sender || sender.length !== 64) continue;
        messages.push({ group_id_hex: gid, event_id: wnHex(o.event_id) ?? id, rumor_id: id, sender, kind: typeof o.kind === "number" ? o.kind : 9, content: String(o.content ?? ""), epoch: 0 });
      }
    }
    return {
      schema_version: "1",
      participant: "",
      protocol: null,
      application: null,
      progress: {
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
      groups,
      messages,
    };
  }

  async close(): Promise<unknown> {
    const d = this.daemon;
    this.daemon = undefined;
    if (!d || d.exitCode !== null || d.pid === undefined) return undefined;
    await this.run(["daemon", "stop"], false).catch(() => undefined);
    const exited = new Promise<void>((r) => d.once("exit", () => r()));
    const t = setTimeout(() => {
      try {
        process.kill(-(d.pid as number), "SIGKILL");
      } catch {
        // already gone
      }
    }, 3000);
    try {
      process.kill(-(d.pid as number), "SIGTERM");
    } catch {
      // already gone
    }
    await exited;
    clearTimeout(t);
    return undefined;
  }
}

function wndPath(env: NodeJS.ProcessEnv): string | undefined {
  const explicit = env[WND_ENV];
  if (explicit) return explicit;
  const wn = env[WN_ENV];
  return wn ? join(dirname(wn), "wnd") : undefined;
}

export const wnAdapter: PeerAdapter = {
  id: "wn",
  title: "White Noise (wn CLI + wnd daemon)",
  skipReason(env = process.env) {
    const why = executableSkipReason(env, WN_ENV, "White Noise's wn binary");
    if (why) return why;
    const wn = env[WN_ENV] as string;
    const wnd = wndPath(env);
    if (!wnd || !isExecutable(wnd)) return `no executable wnd daemon next to ${wn} (set ${WND_ENV})`;
    return undefined;
  },
  capabilities: ["profile:R1"],
  steps: ["create-group", "invite", "remove", "leave", "send", "update-group-data", "wait-for-convergence", "assert", "publish-key-package", "advance-time", "fault"],
  expectedProfile: "R1",
  pinnedIdentity: false,
  async open(o: PeerOpenOptions) {
    const env = { ...process.env, ...(o.env ?? {}) };
    const wn = env[WN_ENV] as string;
    const wnd = wndPath(env) as string;
    return new WnTransport(wn, wnd, o.home, { ...env, WN_SECRET_STORE: "file", WN_ALLOW_LOOPBACK_RELAYS: "1", HOME: o.home }, o.timeoutMs ?? 60_000);
  },
};
