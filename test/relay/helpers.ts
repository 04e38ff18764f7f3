import WebSocket from "ws";
import { finalizeEvent, getPublicKey } from "nostr-tools/pure";
import { bytesToHex } from "@noble/hashes/utils.js";
import type { NostrEvent, RelayMessage } from "../../src/simulated-relay/messages.ts";
import { createRng } from "../../src/sim/random.ts";

export function key(label: string): { sk: Uint8Array; pk: string } {
  const sk = createRng(`key:${label}`).bytes(32);
  sk[0] = 1; // keep it a valid scalar
  return { sk, pk: getPublicKey(sk) };
}

export function sign(sk: Uint8Array, kind: number, created_at: number, tags: string[][] = [], content = ""): NostrEvent {
  return finalizeEvent({ kind, created_at, tags, content }, sk) as NostrEvent;
}

export function hex32(label: string): string {
  return bytesToHex(createRng(label).bytes(32));
}

/** A JSON copy (no nostr-tools verified mark). */
export function plain<T>(v: T): T {
  return JSON.parse(JSON.stringify(v)) as T;
}

/** A raw WebSocket client that records every frame. */
export class RawClient {
  readonly frames: RelayMessage[] = [];
  private constructor(readonly ws: WebSocket) {
    ws.on("message", (d) => this.frames.push(JSON.parse(d.toString()) as RelayMessage));
  }
  static open(url: string): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url, { perMessageDeflate: false });
      ws.once("open", () => resolve(new RawClient(ws)));
      ws.once("error", reject);
    });
  }
  send(data: string | object): void {
    this.ws.send(typeof data === "string" ? data : JSON.stringify(data));
  }
  /** Wait until a frame satisfying pred arrives (after `from`). */
  async next(pred: (m: RelayMessage) => boolean, from = 0, ms = 3000): Promise<RelayMessage> {
    const start = Date.now();
    for (;;) {
      const found = this.frames.slice(from).find(pred);
      if (found) return found;
      if (Date.now() - start > ms) throw new Error(`no matching frame within ${ms} ms; got ${JSON.stringify(this.frames.slice(from)).slice(0, 300)}`);
      await new Promise((r) => setTimeout(r, 5));
    }
  }
  get open(): boolean {
    return this.ws.readyState === WebSocket.OPEN;
  }
  /** Publish and wait for the answer (OK, or NOTICE when the id is unreadable). */
  async publish(e: object): Promise<RelayMessage> {
    const from = this.frames.length;
    this.send(["EVENT", e]);
    return this.next((m) => m[0] === "OK" || m[0] === "NOTICE", from);
  }
  async query(filter: object): Promise<NostrEvent[]> {
    const id = `q${this.frames.length}`;
    const from = this.frames.length;
    this.send(["REQ", id, filter]);
    await this.next((m) => m[0] === "EOSE" && m[1] === id, from);
    this.send(["CLOSE", id]);
    return this.frames.slice(from).filter((m) => m[0] === "EVENT" && m[1] === id).map((m) => m[2] as NostrEvent);
  }
  close(): void {
    this.ws.close();
  }
}
