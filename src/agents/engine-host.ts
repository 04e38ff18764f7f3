/**
 * The worker side of `WorkerEngine` (see worker-engine.ts): hosts several agents' engines (and
 * their stores) inside one worker thread and answers calls posted by the main thread.
 *
 * Calls run one at a time per worker, in arrival order: the work is CPU-bound, so interleaving
 * would only blur the per-call timings, and one queue keeps every engine's calls in the order the
 * agent made them. Every reply carries the engine's group summaries, which the main-thread proxy
 * keeps as the mirror its synchronous `group()`/`groups()` answer from.
 */
import { parentPort } from "node:worker_threads";
import { hexToBytes } from "@noble/hashes/utils.js";
import type { CommitConfirmation, EngineOptions, GroupSummary, MarmotEngine, ProcessOutcome } from "../engine/api.ts";
import { FileStorage } from "../engine/storage-file.ts";
import { MemoryStorage } from "../engine/storage-memory.ts";
import type { EngineStorage } from "../engine/storage.ts";
import { createRng, type Rng } from "../sim/random.ts";
import type { HostReply, HostRequest, PlainInspection, RemoteError } from "./engine-host-protocol.ts";

interface Hosted {
  storage: EngineStorage;
  rng: Rng | undefined;
  engine: MarmotEngine | undefined;
}

const hosted = new Map<string, Hosted>();

function toRemoteError(e: unknown): RemoteError {
  if (e instanceof Error) {
    const rawCode = (e as unknown as { code?: unknown }).code;
    const code = typeof rawCode === "string" ? rawCode : undefined;
    const details = (e as { details?: unknown }).details;
    let safeDetails: Record<string, unknown> | undefined;
    try {
      safeDetails = details && typeof details === "object" ? (JSON.parse(JSON.stringify(details, (_k, v: unknown) => (typeof v === "bigint" ? v.toString() : v))) as Record<string, unknown>) : undefined;
    } catch {
      safeDetails = undefined;
    }
    return { name: e.name, message: e.message, ...(code ? { code } : {}), ...(safeDetails ? { details: safeDetails } : {}) };
  }
  return { name: "Error", message: String(e) };
}

function summaries(h: Hosted | undefined): GroupSummary[] {
  return h?.engine ? h.engine.groups() : [];
}

/** Groups a call moved to a new epoch (or joined): the agent snapshots them next. */
function changedGroups(method: string, value: unknown): string[] {
  if (method === "confirmCommit") return [(value as CommitConfirmation).groupId];
  if (method === "createGroup") return [(value as GroupSummary).groupId];
  if (method === "processEvent" || method === "provideRatchetTree") {
    const out = new Set<string>();
    for (const o of value as ProcessOutcome[]) if ((o.kind === "commit" && !o.selfRemoved) || o.kind === "welcome") out.add(o.groupId);
    return [...out];
  }
  return [];
}

async function inspectChanged(engine: MarmotEngine, method: string, value: unknown): Promise<PlainInspection[]> {
  const out: PlainInspection[] = [];
  for (const gid of changedGroups(method, value)) {
    if (!engine.group(gid)?.active) continue;
    try {
      const { exporter: _exporter, ...plain } = await engine.inspect(gid);
      out.push(plain);
    } catch {
      // the agent's own inspect will report it
    }
  }
  return out;
}

async function handle(req: HostRequest): Promise<HostReply> {
  if (req.op === "create") {
    let h = hosted.get(req.agent);
    if (!h) {
      h = {
        storage: req.storage.kind === "file" ? new FileStorage(req.storage.dir) : new MemoryStorage(),
        rng: req.rngSeed !== undefined ? createRng(req.rngSeed) : undefined,
        engine: undefined,
      };
      hosted.set(req.agent, h);
    }
    const { createEngine } = await import("../engine/engine.ts");
    const rng = h.rng;
    const options: EngineOptions = {
      secretKey: hexToBytes(req.options.secretKeyHex),
      storage: h.storage,
      ...(req.options.profile ? { profile: req.options.profile } : {}),
      ...(req.options.quirks ? { quirks: req.options.quirks } : {}),
      ...(req.options.clientName !== undefined ? { clientName: req.options.clientName } : {}),
      ...(req.options.maxPastEpochs !== undefined ? { maxPastEpochs: req.options.maxPastEpochs } : {}),
      ...(req.options.outOfBandRatchetTree ? { outOfBandRatchetTree: true } : {}),
      ...(rng ? { randomBytes: (n: number) => rng.bytes(n) } : {}),
    };
    h.engine = await createEngine(options);
    return { id: req.id, ok: true, value: undefined, groups: summaries(h), ms: 0 };
  }
  if (req.op === "crash") {
    // test hook: end this worker abruptly, as an out-of-memory or a native fault would
    process.exit(70);
  }
  if (req.op === "hang") {
    // test hook: never answer again, as an engine stuck in a loop would (only terminate() ends it)
    const spin = new Int32Array(1);
    for (;;) spin[0]!++;
  }
  const h = hosted.get(req.agent);
  const engine = h?.engine;
  if (!engine) return { id: req.id, ok: false, error: { name: "Error", code: "ENGINE_NOT_HOSTED", message: `no engine for agent ${req.agent} in this worker` }, groups: [], ms: 0 };
  const t0 = performance.now();
  try {
    let value: unknown;
    if (req.op === "inspect") {
      const ins = await engine.inspect(req.groupId);
      const { exporter: _exporter, ...plain } = ins;
      value = plain;
    } else if (req.op === "exporter") {
      const ins = await engine.inspect(req.groupId);
      value = await ins.exporter(req.label, req.context, req.length);
    } else {
      const fn = (engine as unknown as Record<string, unknown>)[req.method];
      if (typeof fn !== "function") throw new Error(`the engine has no method ${req.method}`);
      const eng = engine as unknown as { pubkey: string };
      const own = eng.pubkey;
      try {
        // adversarial sends (spoofed inner author): the agent's proxy passes the claimed author
        if (req.pubkeyOverride) eng.pubkey = req.pubkeyOverride;
        value = await (fn as (...a: unknown[]) => unknown).apply(engine, req.args);
      } finally {
        eng.pubkey = own;
      }
    }
    const ms = performance.now() - t0;
    const inspections = req.op === "call" ? await inspectChanged(engine, req.method, value) : [];
    return { id: req.id, ok: true, value, groups: summaries(h), ms, ...(inspections.length ? { inspections } : {}) };
  } catch (e) {
    return { id: req.id, ok: false, error: toRemoteError(e), groups: summaries(h), ms: performance.now() - t0 };
  }
}

const port = parentPort;
if (!port) throw new Error("engine-host runs only inside a worker thread");

let chain: Promise<void> = Promise.resolve();
port.on("message", (req: HostRequest) => {
  chain = chain.then(async () => {
    const reply = await handle(req);
    try {
      port.postMessage(reply);
    } catch (e) {
      // a value that cannot cross threads: report it instead of going silent
      port.postMessage({ id: req.id, ok: false, error: toRemoteError(e), groups: summaries(hosted.get(req.agent)), ms: reply.ms } satisfies HostReply);
    }
  });
});
port.postMessage({ ready: true });
