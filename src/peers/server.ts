/**
 * The peer side of the protocol: read request lines, hand each command to a handler, write one
 * response line per request, in order. Bad lines get an error response (the session goes on),
 * exactly like MDK's node: `request_id` "unparseable" when the line is not JSON, "oversized" when
 * it is too long. Works for both protocol names; the response carries the request's protocol.
 */
import { createInterface } from "node:readline";
import type { Readable, Writable } from "node:stream";
import { HarnessError } from "../errors.ts";
import {
  MAX_LINE_BYTES,
  MDK_NODE_PROTOCOL_VERSION,
  PEER_PROTOCOL_VERSION,
  PEER_PROTOCOLS,
  PeerProtocolError,
  decodeRequest,
  encodeResponse,
  errorBody,
  type PeerCommand,
  type PeerProtocolName,
  type PeerResponseBody,
} from "./protocol.ts";

export interface PeerHandler {
  /** The participant label once initialized (null before). */
  readonly participant: string | null;
  handle(command: PeerCommand, protocol: PeerProtocolName): Promise<PeerResponseBody>;
  /** Release everything (connections, timers). Called once, at shutdown or end of input. */
  close(): Promise<void>;
}

/** Turn anything a handler throws into an error body. HarnessError codes pass through unchanged. */
export function toErrorBody(e: unknown): PeerResponseBody {
  if (e instanceof PeerProtocolError) return errorBody(e.code, e.message, "protocol");
  if (e instanceof HarnessError) {
    const retryable = e.code === "AGENT_OFFLINE" || e.code === "COMMIT_NOT_ACKED";
    return errorBody(e.code, e.message, retryable ? "resource" : "protocol", retryable);
  }
  return errorBody("PEER_INTERNAL", e instanceof Error ? e.message : String(e), "environment");
}

function bestEffortEnvelope(line: string): { protocol: PeerProtocolName; requestId: string } {
  try {
    const v = JSON.parse(line) as Record<string, unknown>;
    const protocol = PEER_PROTOCOLS.includes(v.protocol as PeerProtocolName) ? (v.protocol as PeerProtocolName) : PEER_PROTOCOL_VERSION;
    const requestId = typeof v.request_id === "string" && v.request_id.length > 0 ? v.request_id : "unparseable";
    return { protocol, requestId };
  } catch {
    return { protocol: PEER_PROTOCOL_VERSION, requestId: "unparseable" };
  }
}

/**
 * Serve requests from `input` until a shutdown command or the end of input. Resolves after the
 * handler is closed.
 */
export async function servePeer(handler: PeerHandler, input: Readable, output: Writable): Promise<void> {
  const write = (protocol: PeerProtocolName, request_id: string, body: PeerResponseBody): Promise<void> =>
    new Promise((resolve) => {
      output.write(encodeResponse({ protocol, request_id, participant: handler.participant, body }), () => resolve());
    });
  const rl = createInterface({ input, crlfDelay: Infinity });
  let closed = false;
  try {
    for await (const line of rl) {
      if (line.trim() === "") continue;
      if (Buffer.byteLength(line, "utf8") > MAX_LINE_BYTES) {
        await write(PEER_PROTOCOL_VERSION, "oversized", errorBody("frame_too_large", `request exceeds the ${MAX_LINE_BYTES}-byte line limit`));
        continue;
      }
      let request;
      try {
        request = decodeRequest(line);
      } catch (e) {
        const { protocol, requestId } = bestEffortEnvelope(line);
        const pcode = (e as PeerProtocolError).code;
        if (protocol === MDK_NODE_PROTOCOL_VERSION) {
          // MDK's node answers any undecodable request as "unparseable"/invalid_json.
          await write(protocol, "unparseable", errorBody("invalid_json", (e as Error).message, "protocol"));
        } else if (pcode === "PEER_PROTOCOL_WRONG_VERSION") {
          await write(protocol, requestId, errorBody("wrong_protocol", (e as Error).message, "environment"));
        } else {
          await write(protocol, requestId, errorBody(pcode === "PEER_PROTOCOL_NOT_JSON" ? "invalid_json" : pcode, (e as Error).message, "protocol"));
        }
        continue;
      }
      let body: PeerResponseBody;
      try {
        body = await handler.handle(request.command, request.protocol);
      } catch (e) {
        body = toErrorBody(e);
      }
      if (request.command.type === "shutdown" && body.type === "shutdown") {
        closed = true;
        await handler.close().catch(() => undefined);
        await write(request.protocol, request.request_id, body);
        break;
      }
      await write(request.protocol, request.request_id, body);
    }
  } finally {
    rl.close();
    if (!closed) await handler.close().catch(() => undefined);
  }
}
