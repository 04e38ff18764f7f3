/**
 * `marmot-harness relay`: serve the simulated relay over WebSocket on 127.0.0.1 (faults included).
 * `marmot-harness relay-check <url>`: run the relay conformance suite against any relay.
 */
import { appendFile, mkdir, writeFile } from "node:fs/promises";
import { dirname } from "node:path";
import type { Command } from "commander";
import { readCaptureFile, writeCaptureFile } from "../capture.ts";
import { HarnessError } from "../errors.ts";
import { conformanceJson, conformanceJunit, conformanceMarkdown, runConformance, type ConformanceTarget } from "../relays/conformance.ts";
import { jsSignatureVerifier } from "../nostr/verify.ts";
import { LocalNostrRelay } from "../relays/nostr-relay-core.ts";
import { openRelay } from "../relays/open.ts";
import type { LatencyDist } from "../simulated-relay/faults.ts";
import { RealtimeScheduler } from "../simulated-relay/realtime.ts";
import { SimulatedRelay } from "../simulated-relay/simulated-relay.ts";
import { startRelayServer, type RelayServer } from "../simulated-relay/ws-server.ts";
import { intOption } from "./options.ts";

export class RelayCliError extends HarnessError {}

function prob(name: string) {
  return (v: string): number => {
    const n = Number(v);
    if (!(v.trim() !== "" && n >= 0 && n <= 1)) throw new RelayCliError("CLI_BAD_OPTION", `${name} must be a probability between 0 and 1, got ${JSON.stringify(v)}`, { option: name, value: v });
    return n;
  };
}

function kindList(v: string): number[] {
  const kinds = v.split(",").map((x) => x.trim()).filter(Boolean).map(Number);
  if (kinds.length === 0 || kinds.some((k) => !Number.isInteger(k) || k < 0 || k > 65535)) {
    throw new RelayCliError("CLI_BAD_OPTION", `--auth-kinds must be comma-separated kinds 0..65535, got ${JSON.stringify(v)}`, { option: "--auth-kinds", value: v });
  }
  return kinds;
}

/** `50` (fixed), `20-200` (uniform), `exp:80` (exponential mean), `lognormal:40:0.8` (median, sigma). */
export function parseLatency(v: string): LatencyDist {
  const bad = (): never => {
    throw new RelayCliError("CLI_BAD_OPTION", `--latency must be MS, MIN-MAX, exp:MEAN or lognormal:MEDIAN:SIGMA, got ${JSON.stringify(v)}`, { option: "--latency", value: v });
  };
  const num = (s: string | undefined): number => {
    const n = Number(s);
    return s !== undefined && s.trim() !== "" && Number.isFinite(n) && n >= 0 ? n : bad();
  };
  if (/^\d+(\.\d+)?$/.test(v)) return { kind: "fixed", ms: num(v) };
  const range = /^(\d+)-(\d+)$/.exec(v);
  if (range) {
    const lo = num(range[1]), hi = num(range[2]);
    return hi >= lo ? { kind: "uniform", minMs: lo, maxMs: hi } : bad();
  }
  const parts = v.split(":");
  if (parts[0] === "exp" && parts.length === 2) return { kind: "exponential", meanMs: num(parts[1]) };
  if (parts[0] === "lognormal" && parts.length === 3) return { kind: "lognormal", medianMs: num(parts[1]), sigma: num(parts[2]) };
  return bad();
}

export interface RelayOpts {
  port: number;
  host: string;
  seed: string;
  name: string;
  refuseProtected?: boolean;
  maxEventBytes?: number;
  maxMessageBytes?: number;
  maxSubscriptions?: number;
  maxFilters?: number;
  maxLimit?: number;
  rateLimit?: number;
  reqRateLimit?: number;
  retention?: number;
  latency?: LatencyDist;
  drop?: number;
  duplicate?: number;
  reorder?: number;
  refusePublish?: number;
  neverAnswer?: number;
  earlyEose?: number;
  slowEose?: number;
  queueLimit?: number;
  faultLog?: string;
  control?: boolean;
  authKinds?: number[];
  authToPublish?: boolean;
  verifyWorkers?: number;
  /** Pure-JS signature checks (@noble/curves) instead of WASM libsecp256k1. */
  jsVerifier?: boolean;
  maxBufferedBytes?: number;
  load?: string;
  dump?: string;
}

/** Start a relay server from CLI options (also used by tests). */
export async function startFromOptions(o: RelayOpts): Promise<RelayServer> {
  if (o.host !== "127.0.0.1" && o.host !== "localhost" && o.host !== "::1") {
    process.stderr.write(`warning: listening on ${o.host}, not only on loopback\n`);
  }
  const server = await startRelayServer({
    port: o.port,
    host: o.host,
    seed: o.seed,
    name: o.name,
    refuseProtected: o.refuseProtected,
    control: o.control,
    authRequiredForKinds: o.authKinds,
    authRequiredToPublish: o.authToPublish,
    ...(o.verifyWorkers !== undefined && { verifyWorkers: o.verifyWorkers }),
    ...(o.jsVerifier && { signatureVerifier: jsSignatureVerifier }),
    ...(o.maxBufferedBytes !== undefined && { maxBufferedBytes: o.maxBufferedBytes }),
    maxStoredEvents: o.retention,
    limits: {
      ...(o.maxEventBytes !== undefined && { maxEventBytes: o.maxEventBytes }),
      ...(o.maxMessageBytes !== undefined && { maxMessageBytes: o.maxMessageBytes }),
      ...(o.maxSubscriptions !== undefined && { maxSubscriptions: o.maxSubscriptions }),
      ...(o.maxFilters !== undefined && { maxFilters: o.maxFilters }),
      ...(o.maxLimit !== undefined && { maxLimit: o.maxLimit }),
      ...(o.rateLimit !== undefined && { maxEventsPerSecond: o.rateLimit }),
      ...(o.reqRateLimit !== undefined && { maxReqsPerSecond: o.reqRateLimit }),
    },
  });
  if (o.load) {
    const parsed = await readCaptureFile(o.load);
    const r = server.relay.core.load(parsed.records.map((x) => x.event));
    const bad = parsed.errors.length + r.refused.length;
    process.stderr.write(`loaded ${r.accepted} events from ${o.load}${bad ? `; ${parsed.errors.length} unreadable lines, ${r.refused.length} refused${r.refused[0] ? ` (first: ${r.refused[0].reason})` : ""}` : ""}\n`);
  }
  const n = server.nemesis;
  if (o.faultLog) {
    const path = o.faultLog;
    await mkdir(dirname(path), { recursive: true });
    await writeFile(path, "");
    server.relay.faultLog.onRecord((r) => void appendFile(path, JSON.stringify(r) + "\n"));
  }
  if (o.retention !== undefined) n.setRetention(o.retention);
  if (o.latency) n.setLatency(o.latency);
  if (o.drop !== undefined) n.setDrop(o.drop);
  if (o.duplicate !== undefined) n.setDuplicate(o.duplicate);
  if (o.reorder !== undefined) n.setReorder(o.reorder, 500);
  if (o.refusePublish !== undefined) n.refusePublish({ p: o.refusePublish });
  if (o.neverAnswer !== undefined) n.neverAnswer({ p: o.neverAnswer });
  if (o.earlyEose !== undefined) n.setEarlyEose({ fraction: o.earlyEose });
  if (o.slowEose !== undefined) n.setSlowEose(o.slowEose);
  if (o.queueLimit !== undefined) n.setQueueLimit(o.queueLimit);
  return server;
}

export function register(program: Command): void {
  program
    .command("relay")
    .description("serve the simulated relay (NIP-01, NIP-09, NIP-11, NIP-40, NIP-42, NIP-70) over WebSocket, with optional faults")
    .option("--port <n>", "TCP port (0 = any free port)", intOption("port"), 7777)
    .option("--host <addr>", "interface to listen on", "127.0.0.1")
    .option("--seed <s>", "seed of the fault draws", "relay")
    .option("--name <name>", "relay name (NIP-11)", "marmot-harness-relay")
    .option("--refuse-protected", "refuse NIP-70 protected events (as many public relays do)")
    .option("--auth-to-publish", "refuse EVENTs until the connection authenticated (NIP-42)")
    .option("--auth-kinds <kinds>", "serve these kinds only to their NIP-42-authenticated p-tagged recipient (strfry does this for 1059)", kindList)
    .option("--max-event-bytes <n>", "largest event accepted", intOption("max-event-bytes", 1))
    .option("--max-message-bytes <n>", "largest client frame accepted", intOption("max-message-bytes", 1))
    .option("--max-subscriptions <n>", "subscriptions per connection", intOption("max-subscriptions", 1))
    .option("--max-filters <n>", "filters per REQ", intOption("max-filters", 1))
    .option("--max-limit <n>", "largest limit honoured", intOption("max-limit", 1))
    .option("--rate-limit <n>", "EVENTs per second per connection", intOption("rate-limit", 1))
    .option("--req-rate-limit <n>", "REQs per second per connection", intOption("req-rate-limit", 1))
    .option("--retention <n>", "keep at most N events (oldest evicted)", intOption("retention"))
    .option("--latency <dist>", "latency per frame: MS, MIN-MAX, exp:MEAN, lognormal:MEDIAN:SIGMA", parseLatency)
    .option("--drop <p>", "drop each frame with probability p", prob("--drop"))
    .option("--duplicate <p>", "duplicate each frame with probability p", prob("--duplicate"))
    .option("--reorder <p>", "reorder each frame (up to 500 ms) with probability p", prob("--reorder"))
    .option("--refuse-publish <p>", "answer EVENT with OK false with probability p", prob("--refuse-publish"))
    .option("--never-answer <p>", "never answer EVENT with probability p (event still stored)", prob("--never-answer"))
    .option("--early-eose <fraction>", "send EOSE after this fraction of the stored events", prob("--early-eose"))
    .option("--slow-eose <ms>", "delay every EOSE", intOption("slow-eose"))
    .option("--queue-limit <n>", "per-subscription in-flight limit; excess events silently skipped", intOption("queue-limit"))
    .option("--fault-log <file>", "write every fault record (JSONL) to this file")
    .option("--load <capture.jsonl>", "store the events of a capture (JSONL) before serving; they go through the relay's checks")
    .option("--dump <file>", "on stop, write the stored events as a capture (JSONL)")
    .option("--max-buffered-bytes <n>", "skip EVENTs for a client whose socket has more than this waiting (default 16 MiB)", intOption("max-buffered-bytes", 1))
    .option("--verify-workers <n>", "worker threads for signature checks (default: cores - 1, at most 4)", intOption("verify-workers"))
    .option("--js-verifier", "check signatures with pure-JS @noble/curves instead of WASM libsecp256k1 (nostr-wasm), e.g. to compare")
    .option("--control", "accept fault commands at POST /nemesis and serve GET /faults (loopback clients only)")
    .action(async (o: RelayOpts) => {
      const server = await startFromOptions(o);
      const info = server.info();
      const workers = info.verify_workers.count > 0 ? ` on the event loop and ${info.verify_workers.count} worker thread(s)` : "";
      console.log(`relay listening on ${server.url} (NIP-11: ${info.supported_nips.join(", ")}; signatures: ${info.signature_verifier}${workers})`);
      if (o.control) console.log(`fault control: POST ${server.url.replace("ws:", "http:")}/nemesis`);
      await new Promise<void>((resolve) => {
        const stop = (): void => {
          process.off("SIGINT", stop);
          process.off("SIGTERM", stop);
          resolve();
        };
        process.on("SIGINT", stop);
        process.on("SIGTERM", stop);
      });
      await server.close();
      if (o.dump) {
        await mkdir(dirname(o.dump), { recursive: true });
        await writeCaptureFile(o.dump, server.relay.core.store.events().map((event) => ({ event, relay: server.url })));
      }
      const s = server.relay.core.stats;
      console.log(`relay stopped: ${s.eventsAccepted} events accepted, ${server.relay.core.store.size} stored, ${server.relay.faultLog.records.length} fault records`);
    });

  program
    .command("relay-check")
    .description("run the relay conformance suite (the NIP-01 behaviours Marmot depends on) against one or more relays, side by side; `memory` = the in-memory relay, `local` = a local @nostr-relay/core")
    .argument("<urls...>", "ws:// or wss:// URLs, `memory`, `local`")
    .option("--json <file>", "write the results as JSON")
    .option("--md <file>", "write the results table as Markdown")
    .option("--junit <file>", "write the results as JUnit XML (one testsuite per relay)")
    .option("--timeout <ms>", "wait this long for OK / EOSE / live events", intOption("timeout", 1), 5000)
    .option("--only <ids>", "comma-separated check ids")
    .option("--seed <s>", "seed for keys and tags (default random)")
    .action(async (urls: string[], o: { json?: string; md?: string; junit?: string; timeout: number; only?: string; seed?: string }) => {
      // Validate every URL before starting anything (typed error on bad input).
      for (const url of urls) if (url !== "memory" && url !== "local") openRelay(url);
      const stops: (() => Promise<void>)[] = [];
      try {
        const reports = [];
        for (const url of urls) {
          let target: ConformanceTarget;
          if (url === "memory") {
            const sim = new SimulatedRelay({ name: "in-memory", scheduler: new RealtimeScheduler() });
            target = { name: "in-memory", url: sim.url, open: (client, co) => openRelay({ sim }, { client, ...co }) };
          } else if (url === "local") {
            const local = await LocalNostrRelay.start();
            stops.push(() => local.close());
            target = { name: "@nostr-relay/core (local)", url: local.url, open: (_c, co) => openRelay(local.url, { ...co }) };
          } else {
            target = { name: url, url, open: (_c, co) => openRelay(url, { reconnect: false, ...co }) };
          }
          reports.push(await runConformance(target, { timeoutMs: o.timeout, seed: o.seed, only: o.only?.split(",").map((x) => x.trim()) }));
        }
        const md = conformanceMarkdown(reports);
        console.log(md);
        for (const r of reports) console.log(`${r.relay}: ${r.passed} passed, ${r.failed} failed`);
        if (o.json) {
          await mkdir(dirname(o.json), { recursive: true });
          await writeFile(o.json, conformanceJson(reports));
        }
        if (o.md) {
          await mkdir(dirname(o.md), { recursive: true });
          await writeFile(o.md, md);
        }
        if (o.junit) {
          await mkdir(dirname(o.junit), { recursive: true });
          await writeFile(o.junit, conformanceJunit(reports));
        }
        if (reports.some((r) => r.failed > 0)) process.exitCode = 1;
      } finally {
        for (const stop of stops) await stop();
      }
    });
}
