/**
 * Schnorr signature checks on worker threads, so that the WebSocket server can verify incoming
 * events on other cores while its event loop goes on. Each worker loads what the main thread uses:
 * the project's native libsecp256k1 addon (`addonPath`), else the WASM build of libsecp256k1
 * (nostr-wasm, `wasmUrl`), falling back down that list to @noble/curves when one cannot load; it
 * reports which one runs. The native and WASM paths check the event id too. The result only pre-fills
 * the relay's SignatureCache; the relay core still recomputes every id and decides everything itself.
 */
import { availableParallelism } from "node:os";
import { Worker } from "node:worker_threads";
import type { SignatureVerifierName, SignedEventFields } from "../nostr/verify.ts";

const WORKER_SOURCE = (curvesUrl: string, wasmUrl: string | undefined, addonPath: string | undefined): string => `
import { parentPort } from "node:worker_threads";
import { createRequire } from "node:module";
import { createHash } from "node:crypto";
import { schnorr } from ${JSON.stringify(curvesUrl)};
let nw;
let addon;
let name = "js-noble";
let reason;
${
  addonPath
    ? `try {
  addon = createRequire(${JSON.stringify(addonPath)})(${JSON.stringify(addonPath)});
  name = "native-libsecp256k1";
} catch (e) {
  reason = String(e && e.message || e);
}`
    : ""
}
${
  wasmUrl
    ? `if (!addon) try {
  const mod = await import(${JSON.stringify(wasmUrl)});
  nw = await mod.initNostrWasm();
  name = "wasm-libsecp256k1";
} catch (e) {
  reason = String(e && e.message || e);
}`
    : ""
}
const HEX64 = /^[0-9a-f]{64}$/, HEX128 = /^[0-9a-f]{128}$/;
function verify(e) {
  try {
    if (!HEX64.test(e.id) || !HEX64.test(e.pubkey) || !HEX128.test(e.sig)) return false;
    if (addon) {
      const id = createHash("sha256").update(JSON.stringify([0, e.pubkey, e.created_at, e.kind, e.tags, e.content]), "utf8").digest("hex");
      return id === e.id && addon.verifySchnorr(Buffer.from(e.id, "hex"), Buffer.from(e.pubkey, "hex"), Buffer.from(e.sig, "hex"));
    }
    if (nw) {
      nw.verifyEvent({ id: e.id, pubkey: e.pubkey, created_at: e.created_at, kind: e.kind, tags: e.tags, content: e.content, sig: e.sig });
      return true;
    }
    return schnorr.verify(Buffer.from(e.sig, "hex"), Buffer.from(e.id, "hex"), Buffer.from(e.pubkey, "hex"));
  } catch {
    return false;
  }
}
parentPort.postMessage({ ready: name, reason });
parentPort.on("message", (batch) => parentPort.postMessage(batch.map(verify)));
`;

interface Job {
  event: SignedEventFields;
  resolve(ok: boolean): void;
}

/** Default size: one worker per core beyond the first, at most 4 (0 on a single core). */
export function defaultVerifyWorkers(): number {
  return Math.max(0, Math.min(4, availableParallelism() - 1));
}

export class VerifyPool {
  private readonly workers: { w: Worker; inflight: Job[][] }[] = [];
  private queue: Job[] = [];
  private flushScheduled = false;
  private next = 0;
  private closed = false;
  /** What each worker said it runs (filled as they start). */
  readonly verifiers: SignatureVerifierName[] = [];
  /** Why a worker is not running WASM although it was asked to (first reason seen). */
  fallbackReason: string | undefined;

  /**
   * `wasmUrl`: the module URL of nostr-wasm (from `nostrWasmUrl()`) for workers to load;
   * `addonPath`: the native addon (from `nativeAddonPath()`), tried first; with neither they use
   * @noble/curves.
   */
  constructor(size: number, wasmUrl?: string, addonPath?: string) {
    const url = import.meta.resolve("@noble/curves/secp256k1.js");
    const code = new URL(`data:text/javascript,${encodeURIComponent(WORKER_SOURCE(url, wasmUrl, addonPath))}`);
    for (let i = 0; i < size; i++) {
      const w = new Worker(code);
      const slot = { w, inflight: [] as Job[][] };
      w.on("message", (results: boolean[] | { ready: SignatureVerifierName; reason?: string }) => {
        if (!Array.isArray(results)) {
          this.verifiers.push(results.ready);
          if (results.reason !== undefined) this.fallbackReason ??= results.reason;
          return;
        }
        const batch = slot.inflight.shift() ?? [];
        batch.forEach((job, k) => job.resolve(results[k] === true));
      });
      w.on("error", () => {
        // A broken worker answers "not verified": the core then verifies on the main thread.
        for (const b of slot.inflight.splice(0)) for (const job of b) job.resolve(false);
      });
      w.unref();
      this.workers.push(slot);
    }
  }

  get size(): number {
    return this.workers.length;
  }

  /** Resolves true when the worker verified the event's id and signature (false on any doubt). */
  verify(event: SignedEventFields): Promise<boolean> {
    if (this.closed || this.workers.length === 0) return Promise.resolve(false);
    return new Promise((resolve) => {
      this.queue.push({ event, resolve });
      if (!this.flushScheduled) {
        this.flushScheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  private flush(): void {
    this.flushScheduled = false;
    const jobs = this.queue;
    this.queue = [];
    if (jobs.length === 0) return;
    // Spread the batch over the workers.
    const n = this.workers.length;
    const per = Math.ceil(jobs.length / n);
    for (let i = 0; i < jobs.length; i += per) {
      const batch = jobs.slice(i, i + per);
      const slot = this.workers[this.next++ % n] as { w: Worker; inflight: Job[][] };
      slot.inflight.push(batch);
      slot.w.postMessage(batch.map((j) => j.event));
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const job of this.queue.splice(0)) job.resolve(false);
    for (const s of this.workers) {
      for (const b of s.inflight.splice(0)) for (const job of b) job.resolve(false);
      await s.w.terminate();
    }
  }
}
