/**
 * Schnorr signature checks on worker threads, so that the WebSocket server can verify incoming
 * events on other cores while its event loop goes on. The result only pre-fills the relay's
 * SignatureCache; the relay core still checks every id and decides everything itself.
 */
import { availableParallelism } from "node:os";
import { Worker } from "node:worker_threads";

const WORKER_SOURCE = (curvesUrl: string): string => `
import { parentPort } from "node:worker_threads";
import { schnorr } from ${JSON.stringify(curvesUrl)};
parentPort.on("message", (batch) => {
  const out = batch.map(([id, pubkey, sig]) => {
    try {
      return schnorr.verify(Buffer.from(sig, "hex"), Buffer.from(id, "hex"), Buffer.from(pubkey, "hex"));
    } catch {
      return false;
    }
  });
  parentPort.postMessage(out);
});
`;

interface Job {
  id: string;
  pubkey: string;
  sig: string;
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

  constructor(size: number) {
    const url = import.meta.resolve("@noble/curves/secp256k1.js");
    const code = new URL(`data:text/javascript,${encodeURIComponent(WORKER_SOURCE(url))}`);
    for (let i = 0; i < size; i++) {
      const w = new Worker(code);
      const slot = { w, inflight: [] as Job[][] };
      w.on("message", (results: boolean[]) => {
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

  verify(id: string, pubkey: string, sig: string): Promise<boolean> {
    if (this.closed || this.workers.length === 0) return Promise.resolve(false);
    return new Promise((resolve) => {
      this.queue.push({ id, pubkey, sig, resolve });
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
      slot.w.postMessage(batch.map((j) => [j.id, j.pubkey, j.sig]));
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
