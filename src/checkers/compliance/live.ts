/**
 * Live input: subscribe to a relay (NIP-01 REQ over WebSocket) and collect capture records for a
 * time window, or until EOSE when no window is given. Used by `check --relay` and `capture --relay`.
 */
import WebSocket from "ws";
import type { CaptureRecord } from "../../capture.ts";
import { HarnessError } from "../../errors.ts";

export class LiveCaptureError extends HarnessError {}

export interface LiveCaptureOptions {
  relay: string;
  kinds?: number[];
  since?: number;
  until?: number;
  /** Keep the subscription open this many seconds. Without it, stop at EOSE. */
  durationSecs?: number;
  /** Give up connecting after this many milliseconds (default 10 s). */
  connectTimeoutMs?: number;
  /** Called for each new event (e.g. to stream to a file). */
  onRecord?: (r: CaptureRecord) => void;
  /** Stop early (e.g. on SIGINT). */
  signal?: AbortSignal;
}

export interface LiveCaptureResult {
  records: CaptureRecord[];
  eose: boolean;
  notices: string[];
  closedReason?: string;
}

export const DEFAULT_MARMOT_KINDS = [443, 30443, 10051, 445, 1059, 5, 10050, 10002];

export function captureFromRelay(opts: LiveCaptureOptions): Promise<LiveCaptureResult> {
  let url: URL;
  try {
    url = new URL(opts.relay);
  } catch {
    return Promise.reject(new LiveCaptureError("LIVE_BAD_URL", `relay URL ${JSON.stringify(opts.relay)} is not a URL`, { relay: opts.relay }));
  }
  if (url.protocol !== "ws:" && url.protocol !== "wss:") {
    return Promise.reject(new LiveCaptureError("LIVE_BAD_URL", `relay URL ${opts.relay} must use ws:// or wss://`, { relay: opts.relay }));
  }
  const filter: Record<string, unknown> = { kinds: opts.kinds ?? DEFAULT_MARMOT_KINDS };
  if (opts.since !== undefined) filter.since = opts.since;
  if (opts.until !== undefined) filter.until = opts.until;
  const subId = `mh-capture-${Math.random().toString(36).slice(2, 10)}`;

  return new Promise((resolve, reject) => {
    const records: CaptureRecord[] = [];
    const seen = new Set<string>();
    const notices: string[] = [];
    let eose = false;
    let settled = false;
    let opened = false;
    let windowTimer: NodeJS.Timeout | undefined;
    const ws = new WebSocket(opts.relay, { perMessageDeflate: false });
    const connectTimer = setTimeout(() => finish(new LiveCaptureError("LIVE_CONNECT_TIMEOUT", `no connection to ${opts.relay} within ${opts.connectTimeoutMs ?? 10_000} ms`)), opts.connectTimeoutMs ?? 10_000);

    function finish(err?: Error, closedReason?: string): void {
      if (settled) return;
      settled = true;
      clearTimeout(connectTimer);
      if (windowTimer) clearTimeout(windowTimer);
      opts.signal?.removeEventListener("abort", onAbort);
      try {
        if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(["CLOSE", subId]));
        ws.close();
      } catch {
        // already closed
      }
      if (err && !opened) reject(err);
      else {
        const res: LiveCaptureResult = { records, eose, notices };
        if (closedReason !== undefined) res.closedReason = closedReason;
        else if (err) res.closedReason = err.message;
        resolve(res);
      }
    }
    function onAbort(): void {
      finish(undefined, "aborted");
    }
    opts.signal?.addEventListener("abort", onAbort);

    ws.on("open", () => {
      opened = true;
      clearTimeout(connectTimer);
      ws.send(JSON.stringify(["REQ", subId, filter]));
      if (opts.durationSecs !== undefined) windowTimer = setTimeout(() => finish(undefined, "time window elapsed"), opts.durationSecs * 1000);
    });
    ws.on("message", (data) => {
      let msg: unknown;
      try {
        msg = JSON.parse(data.toString());
      } catch {
        notices.push("relay sent a non-JSON frame");
        return;
      }
      if (!Array.isArray(msg)) return;
      if (msg[0] === "EVENT" && msg[1] === subId && typeof msg[2] === "object" && msg[2] !== null) {
        const ev = msg[2] as CaptureRecord["event"];
        if (typeof ev.id === "string" && seen.has(ev.id)) return;
        if (typeof ev.id === "string") seen.add(ev.id);
        const rec: CaptureRecord = { event: ev, relay: opts.relay, seenAt: Date.now() };
        records.push(rec);
        opts.onRecord?.(rec);
      } else if (msg[0] === "EOSE" && msg[1] === subId) {
        eose = true;
        if (opts.durationSecs === undefined) finish(undefined, "EOSE");
      } else if (msg[0] === "CLOSED" && msg[1] === subId) {
        finish(undefined, `relay closed the subscription: ${String(msg[2] ?? "")}`);
      } else if (msg[0] === "NOTICE") {
        notices.push(String(msg[1]));
      }
    });
    ws.on("error", (e) => finish(new LiveCaptureError("LIVE_CONNECT", `relay ${opts.relay}: ${e.message}`, { relay: opts.relay })));
    ws.on("close", () => finish(undefined, "connection closed"));
  });
}
