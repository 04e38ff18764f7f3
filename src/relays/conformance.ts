/**
 * Relay conformance: the NIP-01 behaviours Marmot depends on, checked against any
 * RelayConnection backend (in-memory, our WebSocket server, a local or remote third-party
 * relay). The result is a table (Markdown and JSON) of what each relay does.
 *
 * Checks marked "info" describe a relay policy (protected events, size limits, ...) where
 * either answer is legitimate; they never fail the suite.
 */
import { bytesToHex } from "@noble/hashes/utils.js";
import { finalizeEvent, getPublicKey } from "nostr-tools/pure";
import { createRng, type Rng } from "../sim/random.ts";
import { describeError } from "../errors.ts";
import type { Nip01ClientOptions } from "./nip01-client.ts";
import type { Filter, NostrEvent, PublishAck, RelayConnection } from "./types.ts";

export type CheckStatus = "pass" | "fail" | "info" | "skip";

export interface CheckResult {
  id: string;
  title: string;
  status: CheckStatus;
  detail: string;
  ms: number;
}

export interface ConformanceReport {
  relay: string;
  url: string;
  startedAt: string;
  results: CheckResult[];
  passed: number;
  failed: number;
}

export interface ConformanceTarget {
  /** Column name in the table. */
  name: string;
  url: string;
  /** A new, not yet connected connection for a named client. */
  open(client: string, opts?: { authSigner?: Nip01ClientOptions["authSigner"] }): RelayConnection;
}

export interface ConformanceOptions {
  /** Seed for keys and tag values; default random, so that runs against persistent relays do not collide. */
  seed?: string;
  /** Wait this long for EOSE, OK or a live event (default 5,000 ms). */
  timeoutMs?: number;
  /** Run only these check ids. */
  only?: string[];
}

interface Ctx {
  rng: Rng;
  timeoutMs: number;
  now(): number;
  key(label: string): { sk: Uint8Array; pk: string };
  hex(): string;
  sign(kind: number, tags: string[][], content: string, opts?: { key?: string; createdAt?: number }): NostrEvent;
  /** With `authAs`, the connection answers NIP-42 challenges with that key. */
  connect(client: string, opts?: { authAs?: string }): Promise<RelayConnection>;
  publish(c: RelayConnection, e: NostrEvent): Promise<PublishAck>;
  query(c: RelayConnection, filters: Filter[]): Promise<NostrEvent[]>;
}

type Outcome = { status: CheckStatus; detail: string };
const pass = (detail = ""): Outcome => ({ status: "pass", detail });
const fail = (detail: string): Outcome => ({ status: "fail", detail });
const info = (detail: string): Outcome => ({ status: "info", detail });

function ackText(a: PublishAck): string {
  if (!a.ok && a.message === "timeout") return "no OK within the timeout";
  return a.ok ? `OK true${a.message ? ` "${a.message}"` : ""}` : `OK false "${a.message}"`;
}

function same(a: string[], b: string[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

export interface CheckDef {
  id: string;
  title: string;
  /** Why Marmot cares. */
  why: string;
  run(ctx: Ctx): Promise<Outcome>;
}

export const CHECKS: CheckDef[] = [
  {
    id: "publish-ok",
    title: "EVENT is answered with OK true",
    why: "publish-before-apply needs a relay OK for every commit",
    async run(ctx) {
      const c = await ctx.connect("a");
      const a = await ctx.publish(c, ctx.sign(1, [], "hello"));
      return a.ok ? pass(ackText(a)) : fail(ackText(a));
    },
  },
  {
    id: "req-ids-eose",
    title: "stored event found by ids, followed by EOSE",
    why: "fetching a KeyPackage or commit by id",
    async run(ctx) {
      const c = await ctx.connect("a");
      const e = ctx.sign(1, [], "by id");
      await ctx.publish(c, e);
      const got = await ctx.query(c, [{ ids: [e.id] }]);
      return got.length === 1 && got[0]?.id === e.id && got[0].content === e.content ? pass() : fail(`got ${got.length} events`);
    },
  },
  {
    id: "duplicate",
    title: "publishing the same event twice is not an error",
    why: "retries after a lost OK must not look like failures",
    async run(ctx) {
      const c = await ctx.connect("a");
      const e = ctx.sign(1, [], "twice");
      await ctx.publish(c, e);
      const a = await ctx.publish(c, e);
      return a.ok || a.message.startsWith("duplicate:") ? pass(ackText(a)) : fail(ackText(a));
    },
  },
  {
    id: "bad-signature",
    title: "an event with a bad signature is refused",
    why: "relays must not store forged KeyPackages or commits",
    async run(ctx) {
      const c = await ctx.connect("a");
      const e = ctx.sign(1, [], "forged");
      const other = ctx.sign(1, [], "other", { key: "b" });
      const a = await ctx.publish(c, { ...e, sig: other.sig });
      const stored = await ctx.query(c, [{ ids: [e.id] }]);
      return !a.ok && stored.length === 0 ? pass(ackText(a)) : fail(`${ackText(a)}, stored ${stored.length}`);
    },
  },
  {
    id: "bad-id",
    title: "an event whose id does not match is refused",
    why: "ids are how Marmot references KeyPackages (Welcome e tag)",
    async run(ctx) {
      const c = await ctx.connect("a");
      const e = ctx.sign(1, [], "original");
      const a = await ctx.publish(c, { ...e, content: "changed" });
      return !a.ok ? pass(ackText(a)) : fail(ackText(a));
    },
  },
  {
    id: "giftwrap-p-backdated",
    title: "kind 1059 with created_at 2 days back is found by #p",
    why: "NIP-59 back-dates gift wraps; Welcomes must still be found",
    async run(ctx) {
      const c = await ctx.connect("a");
      const rcpt = ctx.key("rcpt").pk;
      const e = ctx.sign(1059, [["p", rcpt]], "wrapped", { key: "ephemeral", createdAt: ctx.now() - 2 * 86400 + 17 });
      const a = await ctx.publish(c, e);
      if (!a.ok) return fail(ackText(a));
      // Read as the recipient, who can answer a NIP-42 challenge (relays may restrict kind 1059).
      const r = await ctx.connect("rcpt", { authAs: "rcpt" });
      const got = await ctx.query(r, [{ kinds: [1059], "#p": [rcpt] }]);
      const since = await ctx.query(r, [{ kinds: [1059], "#p": [rcpt], since: ctx.now() - 7 * 86400 }]);
      return got.some((x) => x.id === e.id) && since.some((x) => x.id === e.id) ? pass() : fail(`found ${got.length} (no since), ${since.length} (since 7 days)`);
    },
  },
  {
    id: "h-query-445",
    title: "#h query on kind 445 returns exactly the group's events, newest first, limit honoured",
    why: "group messages are fetched by #h",
    async run(ctx) {
      const c = await ctx.connect("a");
      const g1 = ctx.hex(), g2 = ctx.hex();
      const t = ctx.now();
      const evs = [0, 1, 2].map((i) => ctx.sign(445, [["h", g1]], `m${i}`, { createdAt: t - 30 + i }));
      const noise = ctx.sign(445, [["h", g2]], "other group", { createdAt: t });
      for (const e of [...evs, noise]) await ctx.publish(c, e);
      const got = (await ctx.query(c, [{ kinds: [445], "#h": [g1] }])).map((e) => e.id);
      const want = evs.map((e) => e.id).reverse();
      if (!same(got, want)) return fail(`expected ${want.length} newest first, got ${got.length}${got.length === want.length ? " in another order" : ""}`);
      const lim = (await ctx.query(c, [{ kinds: [445], "#h": [g1], limit: 2 }])).map((e) => e.id);
      return same(lim, want.slice(0, 2)) ? pass() : fail(`limit 2 gave ${lim.length} events`);
    },
  },
  {
    id: "filters-or-since-until",
    title: "several filters are ORed; since/until bound created_at",
    why: "clients combine group and Welcome queries in one REQ",
    async run(ctx) {
      const c = await ctx.connect("a");
      const g = ctx.hex();
      const t = ctx.now();
      const old = ctx.sign(445, [["h", g]], "old", { createdAt: t - 100 });
      const mid = ctx.sign(445, [["h", g]], "mid", { createdAt: t - 50 });
      const other = ctx.sign(1, [["t", g]], "tagged");
      for (const e of [old, mid, other]) await ctx.publish(c, e);
      const both = await ctx.query(c, [{ kinds: [445], "#h": [g] }, { kinds: [1], "#t": [g] }]);
      const window = await ctx.query(c, [{ kinds: [445], "#h": [g], since: t - 60, until: t - 40 }]);
      const okOr = both.length === 3;
      const okWin = window.length === 1 && window[0]?.id === mid.id;
      return okOr && okWin ? pass() : fail(`OR gave ${both.length}/3, since/until gave ${window.length}/1`);
    },
  },
  {
    id: "three-tag-filter",
    title: "a filter with three tag conditions (#h, #p, #e) ANDs them",
    why: "clients narrow group queries by several tags",
    async run(ctx) {
      const c = await ctx.connect("a");
      const g = ctx.hex(), p = ctx.hex(), e = ctx.hex();
      const all = ctx.sign(445, [["h", g], ["p", p], ["e", e]], "all three");
      const two = ctx.sign(445, [["h", g], ["p", p]], "two of three");
      for (const x of [all, two]) await ctx.publish(c, x);
      const got = (await ctx.query(c, [{ kinds: [445], "#h": [g], "#p": [p], "#e": [e] }])).map((x) => x.id);
      return same(got, [all.id]) ? pass() : fail(`got ${got.length} events, expected 1`);
    },
  },
  {
    id: "replace-30443-d",
    title: "kind 30443 is replaced per d tag (newest kept, other d kept)",
    why: "KeyPackage rotation (R1 addressable KeyPackages)",
    async run(ctx) {
      const c = await ctx.connect("a");
      const d1 = ctx.hex(), d2 = ctx.hex();
      const t = ctx.now();
      const v1 = ctx.sign(30443, [["d", d1]], "kp v1", { createdAt: t - 20 });
      const v2 = ctx.sign(30443, [["d", d1]], "kp v2", { createdAt: t - 10 });
      const o = ctx.sign(30443, [["d", d2]], "kp other", { createdAt: t - 15 });
      for (const e of [v1, v2, o]) await ctx.publish(c, e);
      const got = (await ctx.query(c, [{ kinds: [30443], authors: [v1.pubkey] }])).map((e) => e.id);
      return same(got, [v2.id, o.id]) ? pass() : fail(`got ${got.length} events: ${got.includes(v1.id) ? "old version still served" : "missing versions"}`);
    },
  },
  {
    id: "replace-10051",
    title: "kind 10051 is replaceable (newest kept; an older one does not win)",
    why: "KeyPackage relay list lookup",
    async run(ctx) {
      const c = await ctx.connect("a");
      const t = ctx.now();
      const k = "relaylist";
      const v1 = ctx.sign(10051, [["relay", "wss://one.example"]], "", { key: k, createdAt: t - 20 });
      const v2 = ctx.sign(10051, [["relay", "wss://two.example"]], "", { key: k, createdAt: t - 10 });
      const stale = ctx.sign(10051, [["relay", "wss://stale.example"]], "", { key: k, createdAt: t - 30 });
      for (const e of [v1, v2, stale]) await ctx.publish(c, e);
      const got = (await ctx.query(c, [{ kinds: [10051], authors: [v1.pubkey] }])).map((e) => e.id);
      return same(got, [v2.id]) ? pass() : fail(`got ${got.length} events${got.includes(stale.id) ? " (older version served)" : ""}`);
    },
  },
  {
    id: "delete-e",
    title: "NIP-09 deletion by e removes the author's event",
    why: "consumed KeyPackages are deleted",
    async run(ctx) {
      const c = await ctx.connect("a");
      const e = ctx.sign(1, [], "delete me", { createdAt: ctx.now() - 5 });
      await ctx.publish(c, e);
      const del = await ctx.publish(c, ctx.sign(5, [["e", e.id]], ""));
      const got = await ctx.query(c, [{ ids: [e.id] }]);
      return got.length === 0 ? pass(`deletion ${ackText(del)}`) : fail("event still served after deletion");
    },
  },
  {
    id: "delete-a",
    title: "NIP-09 deletion by a removes an addressable event (30443)",
    why: "KeyPackages are addressed by kind:pubkey:d",
    async run(ctx) {
      const c = await ctx.connect("a");
      const d = ctx.hex();
      const kp = ctx.sign(30443, [["d", d]], "kp", { createdAt: ctx.now() - 5 });
      await ctx.publish(c, kp);
      await ctx.publish(c, ctx.sign(5, [["a", `30443:${kp.pubkey}:${d}`]], ""));
      const got = await ctx.query(c, [{ kinds: [30443], authors: [kp.pubkey], "#d": [d] }]);
      return got.length === 0 ? pass() : fail("addressable event still served after deletion");
    },
  },
  {
    id: "delete-foreign",
    title: "a deletion by someone else deletes nothing",
    why: "nobody may delete another member's KeyPackage",
    async run(ctx) {
      const c = await ctx.connect("a");
      const e = ctx.sign(1, [], "keep me", { createdAt: ctx.now() - 5 });
      await ctx.publish(c, e);
      await ctx.publish(c, ctx.sign(5, [["e", e.id]], "", { key: "mallory" }));
      const got = await ctx.query(c, [{ ids: [e.id] }]);
      return got.length === 1 ? pass() : fail("another author's deletion removed the event");
    },
  },
  {
    id: "delete-republish",
    title: "re-publishing a deleted event; is the kind 5 deletion itself stored",
    why: "informational: a deleted (consumed) KeyPackage that comes back can be used twice",
    async run(ctx) {
      const c = await ctx.connect("a");
      const e = ctx.sign(1, [], "deleted then republished", { createdAt: ctx.now() - 5 });
      await ctx.publish(c, e);
      const del = ctx.sign(5, [["e", e.id]], "");
      await ctx.publish(c, del);
      const again = await ctx.publish(c, e);
      const served = await ctx.query(c, [{ ids: [e.id] }]);
      const delStored = await ctx.query(c, [{ ids: [del.id] }]);
      return info(`re-publish ${ackText(again)}, ${served.length > 0 ? "served again" : "not served"}; deletion event ${delStored.length > 0 ? "stored" : "not stored"}`);
    },
  },
  {
    id: "live-delivery",
    title: "an event published on one connection reaches a live subscription on another",
    why: "members receive commits and messages as they happen",
    async run(ctx) {
      const sub = await ctx.connect("b");
      const pubc = await ctx.connect("a");
      const g = ctx.hex();
      let seen: NostrEvent | undefined;
      let eose = false;
      const got = new Promise<void>((resolve) => {
        sub.subscribe([{ kinds: [445], "#h": [g] }], {
          onEvent: (e) => {
            seen = e;
            resolve();
          },
          onEose: () => (eose = true),
        });
        setTimeout(resolve, ctx.timeoutMs);
      });
      await waitUntil(() => eose, ctx.timeoutMs);
      const e = ctx.sign(445, [["h", g]], "live");
      await ctx.publish(pubc, e);
      await got;
      return seen?.id === e.id ? pass() : fail(eose ? "no live event within the timeout" : "no EOSE and no event");
    },
  },
  {
    id: "req-replaces",
    title: "a REQ with an open subscription's id replaces its filters",
    why: "clients re-issue their group subscription when they join or leave a group",
    async run(ctx) {
      const sub = await ctx.connect("b");
      const pubc = await ctx.connect("a");
      const g1 = ctx.hex(), g2 = ctx.hex();
      const seen: string[] = [];
      let eose = 0;
      const handlers = { onEvent: (e: NostrEvent) => seen.push(e.id), onEose: () => eose++ };
      sub.subscribe([{ kinds: [445], "#h": [g1] }], handlers, { id: "groups" });
      await waitUntil(() => eose >= 1, ctx.timeoutMs);
      sub.subscribe([{ kinds: [445], "#h": [g2] }], handlers, { id: "groups" });
      await waitUntil(() => eose >= 2, ctx.timeoutMs);
      const old = ctx.sign(445, [["h", g1]], "old group");
      const neu = ctx.sign(445, [["h", g2]], "new group");
      await ctx.publish(pubc, old);
      await ctx.publish(pubc, neu);
      await waitUntil(() => seen.includes(neu.id), ctx.timeoutMs);
      await new Promise((r) => setTimeout(r, 100));
      if (!seen.includes(neu.id)) return fail("no event for the new filter");
      return seen.includes(old.id) ? fail("the replaced filter still delivers") : pass();
    },
  },
  {
    id: "limit-0-live",
    title: "limit 0: no stored events, EOSE, then live events",
    why: "clients that already caught up subscribe to new group events only",
    async run(ctx) {
      const c = await ctx.connect("a");
      const g = ctx.hex();
      const stored = ctx.sign(445, [["h", g]], "stored", { createdAt: ctx.now() - 10 });
      await ctx.publish(c, stored);
      const sub = await ctx.connect("b");
      const seen: string[] = [];
      let eose = false;
      sub.subscribe([{ kinds: [445], "#h": [g], limit: 0 }], { onEvent: (e) => seen.push(e.id), onEose: () => (eose = true) });
      await waitUntil(() => eose, ctx.timeoutMs);
      if (!eose) return fail("no EOSE");
      if (seen.length > 0) return fail(`${seen.length} stored events sent despite limit 0`);
      const live = ctx.sign(445, [["h", g]], "live");
      await ctx.publish(c, live);
      await waitUntil(() => seen.includes(live.id), ctx.timeoutMs);
      return seen.includes(live.id) ? pass() : fail("no live event after EOSE");
    },
  },
  {
    id: "large-60k",
    title: "a 60 KiB event (Welcome-sized gift wrap) is stored and returned intact",
    why: "Welcomes with inline ratchet trees reach ~60 KiB near 150 members",
    async run(ctx) {
      const c = await ctx.connect("a");
      const rcpt = ctx.key("big-rcpt").pk;
      const content = Buffer.from(ctx.rng.bytes(45 * 1024)).toString("base64").slice(0, 60 * 1024);
      const e = ctx.sign(1059, [["p", rcpt]], content, { key: "ephemeral2" });
      const a = await ctx.publish(c, e);
      if (!a.ok) return fail(ackText(a));
      const r = await ctx.connect("big-rcpt", { authAs: "big-rcpt" });
      const got = await ctx.query(r, [{ kinds: [1059], "#p": [rcpt] }]);
      return got[0]?.content === content ? pass(`${JSON.stringify(e).length} bytes`) : fail(`returned ${got.length} events${got[0] ? " with different content" : ""}`);
    },
  },
  {
    id: "malformed-survives",
    title: "malformed frames get an answer and the connection keeps working",
    why: "one buggy client must not take the connection down",
    async run(ctx) {
      const c = await ctx.connect("a");
      const raw = (c as unknown as { sendRaw?: (t: string) => boolean }).sendRaw;
      if (typeof raw !== "function") return { status: "skip", detail: "backend cannot send raw frames" };
      for (const f of ["{not json", "[]", '["NOPE"]', '["EVENT", 1]', '["REQ", 5]']) raw.call(c, f);
      const a = await ctx.publish(c, ctx.sign(1, [], "after garbage"));
      return a.ok && c.status === "open" ? pass() : fail(`after garbage: ${ackText(a)}, status ${c.status}`);
    },
  },
  {
    id: "expiration",
    title: "NIP-40: an already expired event is refused or not served",
    why: "disappearing messages (R1) use NIP-40 expiration",
    async run(ctx) {
      const c = await ctx.connect("a");
      const e = ctx.sign(1, [["expiration", String(ctx.now() - 10)]], "expired");
      const a = await ctx.publish(c, e);
      const got = await ctx.query(c, [{ ids: [e.id] }]);
      if (got.length === 0) return pass(a.ok ? "accepted but not served" : `refused: ${a.message}`);
      return fail(`expired event served (${ackText(a)})`);
    },
  },
  {
    id: "ephemeral",
    title: "ephemeral kinds (20000-29999) are relayed live and not stored",
    why: "informational: Marmot does not rely on ephemeral events",
    async run(ctx) {
      const sub = await ctx.connect("b");
      const c = await ctx.connect("a");
      const tag = ctx.hex();
      let live = false;
      let eose = false;
      sub.subscribe([{ kinds: [20444], "#t": [tag] }], { onEvent: () => (live = true), onEose: () => (eose = true) });
      await waitUntil(() => eose, ctx.timeoutMs);
      const a = await ctx.publish(c, ctx.sign(20444, [["t", tag]], "ephemeral"));
      await waitUntil(() => live, Math.min(2000, ctx.timeoutMs));
      const stored = await ctx.query(c, [{ kinds: [20444], "#t": [tag] }]);
      return info(`${ackText(a)}; live ${live ? "yes" : "no"}; stored ${stored.length > 0 ? "yes" : "no"}`);
    },
  },
  {
    id: "auth-1059",
    title: "reading kind 1059 without NIP-42 AUTH",
    why: "informational: relays that require AUTH for gift wraps need clients that authenticate to fetch Welcomes",
    async run(ctx) {
      const c = await ctx.connect("a");
      const rcpt = ctx.key("auth-rcpt").pk;
      await ctx.publish(c, ctx.sign(1059, [["p", rcpt]], "wrap", { key: "ephemeral3" }));
      const anon = await ctx.connect("anon");
      let closed = "";
      const got = await new Promise<number>((resolve) => {
        let n = 0;
        anon.subscribe([{ kinds: [1059], "#p": [rcpt] }], {
          onEvent: () => n++,
          onEose: () => resolve(n),
          onClosed: (why) => {
            closed = why;
            resolve(n);
          },
        });
        setTimeout(() => resolve(n), ctx.timeoutMs);
      });
      const authed = await ctx.connect("auth-rcpt", { authAs: "auth-rcpt" });
      const mine = await ctx.query(authed, [{ kinds: [1059], "#p": [rcpt] }]);
      return info(`${closed ? `without AUTH: CLOSED "${closed}"` : `without AUTH: ${got} served`}; as the recipient: ${mine.length} served`);
    },
  },
  {
    id: "protected",
    title: "NIP-70 protected event (['-'] tag) without AUTH",
    why: "relays that refuse it never publish KeyPackages carrying '-'",
    async run(ctx) {
      const c = await ctx.connect("a");
      const a = await ctx.publish(c, ctx.sign(30443, [["d", ctx.hex()], ["-"]], "protected kp"));
      return info(a.ok ? "accepted" : `refused: ${a.message}`);
    },
  },
  {
    id: "oversized-200k",
    title: "a 200 KiB event",
    why: "informational: the relay's size limit (Welcome size headroom)",
    async run(ctx) {
      const c = await ctx.connect("a");
      const e = ctx.sign(1, [], "x".repeat(200 * 1024));
      const a = await ctx.publish(c, e);
      const after = await ctx.publish(c, ctx.sign(1, [], "small after big"));
      return info(`${a.ok ? "accepted" : `refused (${ackText(a)})`}; connection ${after.ok ? "survived" : `after: ${ackText(after)}`}`);
    },
  },
  {
    id: "subscription-limit",
    title: "opening 100 subscriptions on one connection",
    why: "informational: a client in many groups opens many subscriptions",
    async run(ctx) {
      const c = await ctx.connect("a");
      let eose = 0;
      const closed: string[] = [];
      for (let i = 0; i < 100; i++) {
        c.subscribe([{ kinds: [445], "#h": [ctx.hex()] }], { onEvent: () => {}, onEose: () => eose++, onClosed: (r) => closed.push(r) });
      }
      await waitUntil(() => eose + closed.length >= 100, ctx.timeoutMs);
      return info(`${eose} answered with EOSE, ${closed.length} CLOSED${closed[0] ? ` ("${closed[0]}")` : ""}`);
    },
  },
];

function waitUntil(cond: () => boolean, ms: number): Promise<boolean> {
  return new Promise((resolve) => {
    const start = Date.now();
    const tick = (): void => {
      if (cond()) resolve(true);
      else if (Date.now() - start > ms) resolve(false);
      else setTimeout(tick, 5);
    };
    tick();
  });
}

/** Run every check against one relay. Each check uses fresh connections, closed afterwards. */
export async function runConformance(target: ConformanceTarget, opts: ConformanceOptions = {}): Promise<ConformanceReport> {
  const seed = opts.seed ?? bytesToHex(crypto.getRandomValues(new Uint8Array(8)));
  const timeoutMs = opts.timeoutMs ?? 5000;
  const results: CheckResult[] = [];
  const startedAt = new Date().toISOString();
  for (const check of CHECKS) {
    if (opts.only && !opts.only.includes(check.id)) continue;
    const rng = createRng(`${seed}/${check.id}`);
    const keys = new Map<string, { sk: Uint8Array; pk: string }>();
    const conns: RelayConnection[] = [];
    const key = (label: string): { sk: Uint8Array; pk: string } => {
      let k = keys.get(label);
      if (!k) {
        const sk = rng.fork(`key:${label}`).bytes(32);
        sk[0] = 1;
        k = { sk, pk: getPublicKey(sk) };
        keys.set(label, k);
      }
      return k;
    };
    const ctx: Ctx = {
      rng,
      timeoutMs,
      now: () => Math.floor(Date.now() / 1000),
      key,
      hex: () => bytesToHex(rng.bytes(32)),
      sign: (kind, tags, content, o = {}) =>
        finalizeEvent({ kind, tags, content, created_at: o.createdAt ?? Math.floor(Date.now() / 1000) }, key(o.key ?? "a").sk) as NostrEvent,
      connect: async (client, o = {}) => {
        const signer = o.authAs === undefined ? undefined : (t: Parameters<NonNullable<Nip01ClientOptions["authSigner"]>>[0]) => finalizeEvent(t, key(o.authAs as string).sk) as NostrEvent;
        const c = target.open(client, signer ? { authSigner: signer } : {});
        conns.push(c);
        await c.connect();
        return c;
      },
      publish: (c, e) => c.publish(e, { timeoutMs }),
      query: (c, filters) =>
        new Promise((resolve) => {
          const got: NostrEvent[] = [];
          let done = false;
          const finish = (): void => {
            if (done) return;
            done = true;
            // EOSE may arrive before subscribe() returns (synchronous backends).
            queueMicrotask(() => sub.close());
            resolve(got);
          };
          const sub = c.subscribe(filters, { onEvent: (e) => got.push(e), onEose: finish, onClosed: finish });
          setTimeout(finish, timeoutMs);
        }),
    };
    const t0 = performance.now();
    let outcome: Outcome;
    try {
      outcome = await check.run(ctx);
    } catch (e) {
      outcome = fail(`error: ${describeError(e)}`);
    }
    for (const c of conns) await c.close().catch(() => {});
    results.push({ id: check.id, title: check.title, status: outcome.status, detail: outcome.detail, ms: Math.round(performance.now() - t0) });
  }
  return {
    relay: target.name,
    url: target.url,
    startedAt,
    results,
    passed: results.filter((r) => r.status === "pass").length,
    failed: results.filter((r) => r.status === "fail").length,
  };
}

const MARK: Record<CheckStatus, string> = { pass: "pass", fail: "**FAIL**", info: "", skip: "skip" };

function cell(r: CheckResult | undefined): string {
  if (!r) return "";
  const text = r.status === "info" ? r.detail : r.detail && r.status === "fail" ? `${MARK[r.status]}: ${r.detail}` : MARK[r.status];
  return text.replace(/\|/g, "\\|").replace(/\n/g, " ");
}

/** One table: a row per check, a column per relay. */
export function conformanceMarkdown(reports: ConformanceReport[]): string {
  const head = `| Check | ${reports.map((r) => r.relay).join(" | ")} |`;
  const sep = `|---|${reports.map(() => "---").join("|")}|`;
  const ids = [...new Set(reports.flatMap((r) => r.results.map((x) => x.id)))];
  const rows = ids.map((id) => {
    const title = reports.flatMap((r) => r.results).find((x) => x.id === id)?.title ?? id;
    return `| \`${id}\` ${title} | ${reports.map((r) => cell(r.results.find((x) => x.id === id))).join(" | ")} |`;
  });
  const totals = `| **passed / failed** | ${reports.map((r) => `${r.passed} / ${r.failed}`).join(" | ")} |`;
  return [head, sep, ...rows, totals].join("\n") + "\n";
}

export function conformanceJson(reports: ConformanceReport[]): string {
  return JSON.stringify({ checks: CHECKS.map((c) => ({ id: c.id, title: c.title, why: c.why })), relays: reports }, null, 2) + "\n";
}

function xml(v: unknown): string {
  return String(v).replace(/[<>&"']/g, (c) => ({ "<": "&lt;", ">": "&gt;", "&": "&amp;", '"': "&quot;", "'": "&apos;" })[c] as string);
}

/** JUnit XML for CI: a testsuite per relay, a testcase per check (info rows pass, skips are skipped). */
export function conformanceJunit(reports: ConformanceReport[]): string {
  const suites = reports.map((r) => {
    const cases = r.results.map((c) => {
      const head = `    <testcase classname="${xml(`relay-conformance.${r.relay}`)}" name="${xml(`${c.id}: ${c.title}`)}" time="${(c.ms / 1000).toFixed(3)}"`;
      if (c.status === "fail") return `${head}>\n      <failure message="${xml(c.detail)}" type="fail">${xml(c.detail)}</failure>\n    </testcase>`;
      if (c.status === "skip") return `${head}>\n      <skipped message="${xml(c.detail)}"/>\n    </testcase>`;
      if (c.status === "info") return `${head}>\n      <system-out>${xml(c.detail)}</system-out>\n    </testcase>`;
      return `${head}/>`;
    });
    const skipped = r.results.filter((c) => c.status === "skip").length;
    const time = r.results.reduce((t, c) => t + c.ms, 0) / 1000;
    return `  <testsuite name="${xml(`relay-conformance ${r.relay}`)}" tests="${r.results.length}" failures="${r.failed}" errors="0" skipped="${skipped}" time="${time.toFixed(3)}" timestamp="${xml(r.startedAt)}">\n${cases.join("\n")}\n  </testsuite>`;
  });
  return `<?xml version="1.0" encoding="UTF-8"?>\n<testsuites>\n${suites.join("\n")}\n</testsuites>\n`;
}

