/**
 * marmot-ts as a peer, in process. The library is not a dependency of this project (it is not on
 * the registry this project installs from): it is loaded with a dynamic import of
 * `@internet-privacy/marmot-ts` when installed, or of the path in MARMOT_HARNESS_MARMOT_TS (a
 * built checkout's entry file, e.g. `<checkout>/dist/index.js`). Without either the adapter is
 * skipped with that reason.
 *
 * The driver gives a MarmotClient what it asks for: an event signer (nostr-tools), in-memory
 * key-value stores, and a network interface over this project's relay connections; then maps
 * peer commands onto the client (groups.create, keyPackages.create, inviteByKeyPackageEvent,
 * selfUpdate, leave, sendChatMessage, ingest, invites.* + joinGroupFromWelcome). The library's
 * API is alpha; calls are made defensively and a missing method fails with PEER_UNSUPPORTED.
 * Measured against a marmot-ts 0.5.1 build (see the README, "Measured interop with
 * marmot-ts 0.5.1").
 */
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { pathToFileURL } from "node:url";
import { sha256 } from "@noble/hashes/sha2.js";
import { bytesToHex, utf8ToBytes } from "@noble/hashes/utils.js";
import type { Event as NostrEvent, Filter } from "nostr-tools";
import { finalizeEvent, generateSecretKey, getPublicKey, type EventTemplate } from "nostr-tools/pure";
import { v2 as nip44 } from "nostr-tools/nip44";
import { openRelay } from "../../relays/open.ts";
import type { RelayConnection } from "../../relays/types.ts";
import { unsupportedCommand } from "../child-process.ts";
import { PeerCommandError } from "../process.ts";
import type { PeerCommand, PeerGroupView, PeerMessageView, PeerObservation, PeerResponseBody } from "../protocol.ts";
import type { PeerTransport } from "../peer-agent.ts";
import type { PeerAdapter, PeerOpenOptions } from "./types.ts";
import { NO_EPOCH_COMMITMENT } from "../../agents/types.ts";

export const MARMOT_TS_ENV = "MARMOT_HARNESS_MARMOT_TS";
export const MARMOT_TS_PACKAGE = "@internet-privacy/marmot-ts";

/** Where the library would be loaded from, or undefined with the reason. */
export function locateMarmotTs(env: NodeJS.ProcessEnv = process.env): { specifier: string } | { reason: string } {
  const p = env[MARMOT_TS_ENV];
  if (p) return existsSync(p) ? { specifier: pathToFileURL(p).href } : { reason: `${MARMOT_TS_ENV}=${p} does not exist` };
  try {
    createRequire(import.meta.url).resolve(MARMOT_TS_PACKAGE);
    return { specifier: MARMOT_TS_PACKAGE };
  } catch {
    return { reason: `${MARMOT_TS_PACKAGE} is not installed and ${MARMOT_TS_ENV} is not set (path to a built marmot-ts entry file)` };
  }
}

/* eslint-disable @typescript-eslint/no-explicit-any -- the library is loaded at run time and typed by duck typing */
type Lib = Record<string, any>;

function unsupported(what: string): PeerCommandError {
  return unsupportedCommand("marmot-ts", what, `marmot-ts driver: ${what} is not available`);
}

class MapStore<T> {
  private readonly m = new Map<string, T>();
  async getItem(k: string): Promise<T | null> {
    return this.m.get(k) ?? null;
  }
  async setItem(k: string, v: T): Promise<T> {
    this.m.set(k, v);
    return v;
  }
  async removeItem(k: string): Promise<void> {
    this.m.delete(k);
  }
  async clear(): Promise<void> {
    this.m.clear();
  }
  async keys(): Promise<string[]> {
    return [...this.m.keys()];
  }
}

/**
 * The KeyPackage slot (`d` tag). marmot-ts writes whatever `clientId` the application gives it
 * (its docs suggest a label such as "my-app-desktop"); R1 requires 64 hex characters, and a
 * label makes strict clients refuse the KeyPackage (KP_BAD_D). The driver derives 32 bytes from
 * the participant label so runs stay reproducible.
 */
export function slotId(participant: string): string {
  return bytesToHex(sha256(utf8ToBytes(`marmot-harness marmot-ts slot ${participant}`)));
}

export class MarmotTsTransport implements PeerTransport {
  private client: any;
  private readonly sk = generateSecretKey();
  private readonly pk = getPublicKey(this.sk);
  private readonly conns = new Map<string, RelayConnection>();
  private relays: string[] = [];
  private readonly inbox: NostrEvent[] = [];
  private readonly messages: PeerMessageView[] = [];
  private readonly groups = new Map<string, any>();

  constructor(private readonly lib: Lib) {}

  private conn(url: string): RelayConnection {
    let c = this.conns.get(url);
    if (!c) {
      c = openRelay(url);
      this.conns.set(url, c);
      void c.connect().catch(() => undefined);
    }
    return c;
  }

  private network(): Record<string, unknown> {
    return {
      publish: async (relays: string[], event: NostrEvent) => {
        const out: Record<string, { from: string; ok: boolean; message?: string }> = {};
        await Promise.all(
          relays.map(async (r) => {
            const a = await this.conn(r).publish(event).catch((e: Error) => ({ ok: false, message: e.message }));
            out[r] = { from: r, ok: a.ok, message: a.message };
          }),
        );
        return out;
      },
      request: async (relays: string[], filters: Filter | Filter[]) => {
        const fs = Array.isArray(filters) ? filters : [filters];
        const seen = new Map<string, NostrEvent>();
        await Promise.all(
          relays.map(
            (r) =>
              new Promise<void>((resolve) => {
                const sub = this.conn(r).subscribe(fs, { onEvent: (e) => seen.set(e.id, e), onEose: () => (sub.close(), resolve()), onClosed: () => resolve() });
                setTimeout(() => (sub.close(), resolve()), 5000).unref?.();
              }),
          ),
        );
        return [...seen.values()];
      },
      subscription: (relays: string[], filters: Filter | Filter[]) => ({
        subscribe: (observer: { next?: (e: NostrEvent) => void }) => {
          const fs = Array.isArray(filters) ? filters : [filters];
          const subs = relays.map((r) => this.conn(r).subscribe(fs, { onEvent: (e) => observer.next?.(e) }));
          return { unsubscribe: () => subs.forEach((s) => s.close()) };
        },
      }),
      getUserInboxRelays: async () => this.relays,
    };
  }

  private signer(): Record<string, unknown> {
    const sk = this.sk;
    return {
      getPublicKey: async () => this.pk,
      signEvent: async (t: EventTemplate) => finalizeEvent(t, sk),
      nip44: {
        encrypt: async (pubkey: string, plaintext: string) => nip44.encrypt(plaintext, nip44.utils.getConversationKey(sk, pubkey)),
        decrypt: async (pubkey: string, ciphertext: string) => nip44.decrypt(ciphertext, nip44.utils.getConversationKey(sk, pubkey)),
      },
    };
  }

  private group(id: string | undefined): any {
    const g = id ? this.groups.get(id) : undefined;
    if (!g) throw new PeerCommandError("marmot-ts", "group", { code: "AGENT_NO_GROUP", category: "protocol", retryable: false, message: `not in group ${id}` });
    return g;
  }

  private async invite(g: any, accounts: string[]): Promise<void> {
    if (typeof g.inviteByKeyPackageEvent !== "function") throw unsupported("inviteByKeyPackageEvent");
    for (const a of accounts) {
      const evs = (await (this.network().request as (r: string[], f: Filter[]) => Promise<NostrEvent[]>)(this.relays, [{ kinds: [30443, 443], authors: [a] }])).sort((x, y) => y.created_at - x.created_at);
      if (!evs[0]) throw new PeerCommandError("marmot-ts", "invite", { code: "NO_KEYPACKAGE", category: "protocol", retryable: false, message: `no KeyPackage for ${a}` });
      await g.inviteByKeyPackageEvent(evs[0]);
    }
  }

  private track(g: any): string {
    const id = bytesToHex(g.id as Uint8Array);
    if (!this.groups.has(id)) {
      this.groups.set(id, g);
      const h = bytesToHex(g.groupData?.nostrGroupId ?? new Uint8Array());
      for (const r of this.relays) this.conn(r).subscribe([{ kinds: [445], "#h": [h] }], { onEvent: (e) => this.inbox.push(e) });
    }
    return id;
  }

  async request(c: PeerCommand): Promise<PeerResponseBody> {
    const ack = (action_id: string, extra: Record<string, unknown> = {}): PeerResponseBody => ({ type: "ack", action_id, published: 0, ...extra });
    switch (c.type) {
      case "initialize": {
        const Client = this.lib.MarmotClient;
        if (typeof Client !== "function") throw unsupported("MarmotClient");
        this.relays = [...c.relay_urls];
        this.client = new Client({ signer: this.signer(), groupStateStore: new MapStore(), keyPackageStore: new MapStore(), network: this.network(), clientId: slotId(c.participant) });
        for (const r of this.relays) this.conn(r).subscribe([{ kinds: [1059], "#p": [this.pk] }], { onEvent: (e) => this.inbox.push(e) });
        if ((c.key_packages ?? 1) > 0) await this.client.keyPackages.create({ relays: this.relays });
        return { type: "initialized", account_id: this.pk, implementation: "marmot-ts", profile: "R1" };
      }
      case "publish_key_package":
        for (let i = 0; i < (c.count ?? 1); i++) await this.client.keyPackages.create({ relays: this.relays });
        return ack(c.action_id);
      case "create_group": {
        const g = await this.client.groups.create(c.name, { relays: c.relay_urls ?? this.relays, adminPubkeys: [...new Set([this.pk, ...c.initial_admin_accounts])], ...(c.description ? { description: c.description } : {}) });
        const id = this.track(g);
        await this.invite(g, c.member_accounts);
        return ack(c.action_id, { group_id_hex: id });
      }
      case "invite_members":
        await this.invite(this.group(c.group), c.member_accounts);
        return ack(c.action_id);
      case "remove_members": {
        const g = this.group(c.group);
        const propose = this.lib.Proposals?.proposeRemoveUser ?? this.lib.proposeRemoveUser;
        if (typeof propose !== "function" || typeof g.commit !== "function") throw unsupported("remove");
        // commit() does not flatten the array a proposeRemoveUser action returns (it crashes on
        // it), so the driver resolves the actions itself and passes plain Remove proposals
        const ctx = { state: g.state, ciphersuite: g.ciphersuite, groupData: g.groupData };
        const proposals: unknown[] = [];
        for (const a of c.member_accounts) proposals.push(...((await propose(a)(ctx)) as unknown[]));
        await g.commit({ extraProposals: proposals });
        return ack(c.action_id);
      }
      case "self_update":
        await this.group(c.group).selfUpdate();
        return ack(c.action_id);
      case "leave":
        await this.group(c.group).leave();
        return ack(c.action_id);
      case "send_application":
        await this.group(c.group).sendChatMessage(c.payload, c.tags ?? []);
        return ack(c.action_id);
      case "catch_up":
        return ack(c.action_id, { result: { processed: await this.processInbox() } });
      case "observe":
        return { type: "observation", action_id: c.action_id, observation: this.observe() };
      case "configure_peers":
        return ack("configure_peers");
      case "select_group":
        return ack("select_group");
      case "ping":
      case "clear_events":
      case "pause_maintenance":
      case "resume_maintenance":
        return { ...ack(c.action_id), pending_events: this.inbox.length } as PeerResponseBody;
      case "barrier":
        return { type: "barrier_ready", action_id: c.action_id, barrier: c.barrier };
      case "shutdown":
        return { type: "shutdown" };
      default:
        throw unsupported(c.type);
    }
  }

  private async processInbox(): Promise<number> {
    const events = this.inbox.splice(0);
    const wraps = events.filter((e) => e.kind === 1059);
    if (wraps.length && this.client.invites) {
      await this.client.invites.ingestEvents(wraps);
      await this.client.invites.decryptGiftWraps();
      for (const rumor of (await this.client.invites.getUnread()) as { id: string }[]) {
        const { group } = await this.client.joinGroupFromWelcome({ welcomeRumor: rumor });
        this.track(group);
        await this.client.invites.markAsRead(rumor.id);
      }
    }
    const byGroup = events.filter((e) => e.kind === 445);
    for (const [id, g] of this.groups) {
      const h = bytesToHex(g.groupData?.nostrGroupId ?? new Uint8Array());
      const mine = byGroup.filter((e) => e.tags.some((t) => t[0] === "h" && t[1] === h));
      if (!mine.length) continue;
      for await (const outcome of g.ingest(mine)) {
        const o = outcome as any;
        if (o.kind === "processed" && o.result?.kind === "applicationMessage" && typeof this.lib.deserializeApplicationRumor === "function") {
          const r = this.lib.deserializeApplicationRumor(o.result.message);
          this.messages.push({ group_id_hex: id, event_id: o.event?.id ?? r.id, rumor_id: r.id, sender: r.pubkey, kind: r.kind, content: r.content, epoch: Number(g.state?.groupContext?.epoch ?? 0) });
        }
      }
    }
    return events.length;
  }

  private observe(): PeerObservation {
    const groups: PeerGroupView[] = [];
    for (const [id, g] of this.groups) {
      const members: string[] = typeof this.lib.getGroupMembers === "function" ? this.lib.getGroupMembers(g.state) : [];
      groups.push({
        group: null,
        group_id_hex: id,
        nostr_group_id_hex: bytesToHex(g.groupData?.nostrGroupId ?? new Uint8Array()),
        epoch: Number(g.state?.groupContext?.epoch ?? 0),
        members: [...new Set(members)].sort(),
        admins: [...(g.groupData?.adminPubkeys ?? [])].sort(),
        name: String(g.groupData?.name ?? ""),
        description: String(g.groupData?.description ?? ""),
        active: true,
        epoch_commitment: null,
      });
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
      account_id: this.pk,
      groups,
      messages: [...this.messages],
    };
  }

  async close(): Promise<unknown> {
    for (const c of this.conns.values()) await c.close().catch(() => undefined);
    this.conns.clear();
    return undefined;
  }
}
/* eslint-enable @typescript-eslint/no-explicit-any */

export const marmotTsAdapter: PeerAdapter = {
  id: "marmot-ts",
  title: "marmot-ts (in process, loaded at run time)",
  skipReason(env = process.env) {
    const where = locateMarmotTs(env);
    return "reason" in where ? where.reason : undefined;
  },
  // observe() has no epoch commitment (the driver exports none): convergence must fall back to epoch+members
  capabilities: ["profile:R1", NO_EPOCH_COMMITMENT],
  steps: ["create-group", "invite", "remove", "self-update", "leave", "send", "wait-for-convergence", "assert", "publish-key-package", "advance-time", "fault"],
  expectedProfile: "R1",
  pinnedIdentity: false,
  async open(o: PeerOpenOptions) {
    const where = locateMarmotTs(o.env ?? process.env);
    if ("reason" in where) throw unsupported(where.reason);
    const lib = (await import(where.specifier)) as Record<string, unknown>;
    return new MarmotTsTransport(lib);
  },
};
