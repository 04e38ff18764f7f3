/**
 * BIP-340 verification of many events on worker threads, each running the WASM libsecp256k1 build
 * (nostr-wasm). Used by `judge` for large captures; the checker has already recomputed every id, and
 * the workers re-derive it (nostr-wasm checks id and signature together). Any worker problem makes the
 * whole call resolve to `undefined`, and the caller verifies on the main thread instead.
 */
import { availableParallelism } from "node:os";
import { Worker } from "node:worker_threads";
import { nostrWasmUrl } from "../../nostr/verify.ts";
import type { EventFields } from "./signature-verifier.ts";

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

/** Worker count for `judge`'s default: one per core, at most 4; 0 on a single core. */
export function defaultVerifyWorkers(): number {
  const n = availableParallelism();
  return n < 2 ? 0 : Math.min(4, n);
}

/** Below this many signatures the worker start-up (WASM compile per worker) is not worth it. */
export const MIN_EVENTS_FOR_WORKERS = 2_000;

export type VerifyItem = EventFields & { id: string };

/** Verdicts in input order, or undefined when the workers could not be used. */
export async function verifyOnWorkers(items: readonly VerifyItem[], workers: number): Promise<boolean[] | undefined> {
  if (workers < 1 || items.length === 0) return undefined;
  if (process.env.MARMOT_CHECKER_NO_WASM === "1") return undefined;
  const url = nostrWasmUrl();
  if (url === undefined) return undefined;
  const code = new URL(`data:text/javascript,${encodeURIComponent(WORKER_SOURCE(url))}`);
  const pool: Worker[] = [];
  try {
    const chunk = Math.ceil(items.length / workers);
    const parts: Promise<boolean[]>[] = [];
    for (let i = 0; i < workers && i * chunk < items.length; i++) {
      const slice = items.slice(i * chunk, (i + 1) * chunk).map((e) => ({ id: e.id, pubkey: e.pubkey, created_at: e.created_at, kind: e.kind, tags: e.tags, content: e.content, sig: e.sig }));
      const w = new Worker(code);
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
