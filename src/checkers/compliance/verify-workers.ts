/**
 * BIP-340 verification of many events on worker threads, with the backend the main thread uses:
 * the native libsecp256k1 binding (each worker loads the addon and verifies chunks of packed
 * [id|pubkey|sig] bytes with `verifyMany`; nothing but bytes crosses threads, and the calling thread
 * takes chunks too when it calls `finish()`), or the WASM build (nostr-wasm, which re-derives each id).
 * Used by `judge` for large captures; the checker has already recomputed every id. On the WASM path
 * any worker problem makes the whole call resolve to `undefined`, and the caller verifies on the
 * main thread instead; the native path finishes a failed worker's share on the main thread.
 */
import { availableParallelism } from "node:os";
import { Worker } from "node:worker_threads";
import { nativeAddonPath, nativeAvailable, packVerifyItems, VERIFY_ITEM_BYTES, verifyMany } from "../../nostr/secp256k1-native.ts";
import { nostrWasmUrl } from "../../nostr/verify.ts";
import type { EventFields, VerifierName } from "./signature-verifier.ts";

const WORKER_SOURCE = (wasmUrl: string): string => `
import { parentPort } from "node:worker_threads";
import { initNostrWasm } from ${JSON.stringify(wasmUrl)};
const nw = await initNostrWasm();
parentPort.on("message", (batch) => {
  parentPort.postMessage(batch.map((e) => {
    try {
      nw.verifyEvent(e);
      return true;
    } catch {
      return false;
    }
  }));
});
`;

/**
 * Native workers and the main thread share the packed items, the verdicts and two counters
 * (SharedArrayBuffers): each claims the next chunk with an atomic add, verifies it in one
 * `verifyMany` call and marks it done, until none is left. A worker that is starved of CPU
 * (shared cores) just claims fewer chunks.
 */
const NATIVE_WORKER_SOURCE = (addonPath: string): string => `
import { parentPort, workerData } from "node:worker_threads";
import { createRequire } from "node:module";
const addon = createRequire(${JSON.stringify(addonPath)})(${JSON.stringify(addonPath)});
const { items, results, state, chunk, n } = workerData;
const src = new Uint8Array(items), out = new Uint8Array(results), st = new Int32Array(state);
for (;;) {
  const c = Atomics.add(st, 0, 1);
  if (c * chunk >= n) break;
  const end = Math.min(n, (c + 1) * chunk);
  out.set(addon.verifyMany(src.subarray(c * chunk * 128, end * 128)), c * chunk);
  Atomics.add(st, 1, 1);
}
parentPort.postMessage("done");
`;

/** Items per claimed chunk on the native path (about 12 ms of verification at ~48 µs each). */
const NATIVE_CHUNK = 256;

/**
 * The workers run plain JavaScript: they do not inherit the parent's loader flags (`--import tsx`
 * would cost ~40 ms of start-up per worker here).
 */
const WORKER_OPTIONS = { execArgv: [] as string[] };

/** Whether `verifyOnWorkers` can run the backend `name` (the main thread's verifier) on workers. */
export function workersCanVerify(name: VerifierName | undefined): boolean {
  return name === "wasm-libsecp256k1" || (name === "native-libsecp256k1" && nativeAvailable());
}

/**
 * Worker count for `judge`'s default: one per core, at most 4; 0 on a single core. On the native
 * path the main thread verifies too, so one core is left to it (at least one worker).
 */
export function defaultVerifyWorkers(backend?: VerifierName): number {
  const n = availableParallelism();
  if (n < 2) return 0;
  return backend === "native-libsecp256k1" ? Math.min(4, n - 1) : Math.min(4, n);
}

/** Below this many signatures the worker start-up (WASM compile per worker) is not worth it. */
export const MIN_EVENTS_FOR_WORKERS = 2_000;

export type VerifyItem = EventFields & { id: string };

/** A verification started on worker threads; `finish()` resolves to what `verifyOnWorkers` would. */
export interface WorkerVerification {
  /**
   * The verdicts in input order, or undefined when the workers could not be used. On the native
   * path the calling thread verifies the chunks no worker has claimed yet, so call it when the
   * caller has nothing else to do.
   */
  finish(): Promise<boolean[] | undefined>;
}

/**
 * Starts verifying `items` on worker threads while the caller goes on (judging rules); see
 * `verifyOnWorkers` for the backends.
 */
export function startVerifyOnWorkers(items: readonly VerifyItem[], workers: number, backend: VerifierName = "wasm-libsecp256k1"): WorkerVerification {
  if (backend === "native-libsecp256k1" && workers >= 1 && items.length > 0 && process.env.MARMOT_CHECKER_NO_WASM !== "1" && nativeAvailable()) return startNative(items, workers);
  const p = backend === "native-libsecp256k1" ? Promise.resolve(undefined) : verifyOnWorkers(items, workers, backend);
  return { finish: () => p };
}

/**
 * Verdicts in input order, or undefined when the workers could not be used. `backend` is the main
 * thread's verifier (default WASM, as before the native one existed).
 */
export async function verifyOnWorkers(items: readonly VerifyItem[], workers: number, backend: VerifierName = "wasm-libsecp256k1"): Promise<boolean[] | undefined> {
  if (workers < 1 || items.length === 0) return undefined;
  if (process.env.MARMOT_CHECKER_NO_WASM === "1") return undefined;
  if (backend === "native-libsecp256k1") return startVerifyOnWorkers(items, workers, backend).finish();
  if (backend !== "wasm-libsecp256k1") return undefined;
  const url = nostrWasmUrl();
  if (url === undefined) return undefined;
  const code = new URL(`data:text/javascript,${encodeURIComponent(WORKER_SOURCE(url))}`);
  const pool: Worker[] = [];
  try {
    const chunk = Math.ceil(items.length / workers);
    const parts: Promise<boolean[]>[] = [];
    for (let i = 0; i < workers && i * chunk < items.length; i++) {
      const slice = items.slice(i * chunk, (i + 1) * chunk).map((e) => ({ id: e.id, pubkey: e.pubkey, created_at: e.created_at, kind: e.kind, tags: e.tags, content: e.content, sig: e.sig }));
      const w = new Worker(code, WORKER_OPTIONS);
      pool.push(w);
      parts.push(
        new Promise<boolean[]>((resolve, reject) => {
          w.once("message", (out: boolean[]) => (out.length === slice.length ? resolve(out) : reject(new Error("short answer from a verify worker"))));
          w.once("error", reject);
          w.once("exit", (c) => reject(new Error(`verify worker exited with ${c}`)));
          w.postMessage(slice);
        }),
      );
    }
    return (await Promise.all(parts)).flat();
  } catch {
    return undefined;
  } finally {
    await Promise.all(pool.map((w) => w.terminate()));
  }
}

/**
 * The native path: the workers start claiming chunks at once; `finish()` makes the calling thread
 * claim the rest too, then waits for the workers. Chunks that no thread finished (a worker that
 * failed mid-chunk) are verified again on the calling thread, so the answer is always complete.
 */
function startNative(items: readonly VerifyItem[], workers: number): WorkerVerification {
  const n = items.length;
  const { packed, wellFormed } = packVerifyItems(items);
  const shared = new SharedArrayBuffer(packed.length);
  const src = new Uint8Array(shared);
  src.set(packed);
  const results = new SharedArrayBuffer(n);
  const out = new Uint8Array(results);
  const chunks = Math.ceil(n / NATIVE_CHUNK);
  const state = new SharedArrayBuffer(8);
  const st = new Int32Array(state);
  const code = new URL(`data:text/javascript,${encodeURIComponent(NATIVE_WORKER_SOURCE(nativeAddonPath()))}`);
  const pool: Worker[] = [];
  const finished: Promise<boolean>[] = [];
  for (let i = 0; i < Math.min(workers, chunks); i++) {
    try {
      const w = new Worker(code, { ...WORKER_OPTIONS, workerData: { items: shared, results, state, chunk: NATIVE_CHUNK, n } });
      pool.push(w);
      finished.push(
        new Promise<boolean>((resolve) => {
          w.once("message", () => resolve(true));
          w.once("error", () => resolve(false));
          w.once("exit", () => resolve(false));
        }),
      );
    } catch {
      break;
    }
  }
  return {
    async finish() {
      try {
        let mine = 0;
        for (;;) {
          const c = Atomics.add(st, 0, 1);
          if (c * NATIVE_CHUNK >= n) break;
          const end = Math.min(n, (c + 1) * NATIVE_CHUNK);
          out.set(verifyMany(src.subarray(c * NATIVE_CHUNK * VERIFY_ITEM_BYTES, end * VERIFY_ITEM_BYTES)), c * NATIVE_CHUNK);
          mine++;
        }
        const allOk = (await Promise.all(finished)).every(Boolean);
        // A worker died, possibly mid-chunk: verify everything here rather than trust a partial answer.
        if (!allOk || Atomics.load(st, 1) + mine !== chunks) out.set(verifyMany(src));
        return Array.from(out, (b, i) => b === 1 && wellFormed[i] === true);
      } finally {
        await Promise.all(pool.map((w) => w.terminate()));
      }
    },
  };
}
