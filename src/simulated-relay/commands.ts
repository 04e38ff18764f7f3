/**
 * Faults as data: `{ fault, client?, direction?, ...params }` applied to a Nemesis. Used by the
 * WebSocket server's control endpoint so that a process outside the harness (or a test driving
 * external peers) can inject faults while a run is going on. Bad commands get a typed error.
 */
import type { LatencyDist, LinkScope } from "./faults.ts";
import { RelayError } from "./messages.ts";
import type { Nemesis } from "./simulated-relay.ts";

export const FAULT_COMMANDS = [
  "latency", "drop", "duplicate", "reorder", "partition", "heal", "disconnect", "crash", "restart",
  "retention", "queue-limit", "refuse-publish", "no-answer", "early-eose", "slow-eose", "clear",
] as const;
export type FaultCommandName = (typeof FAULT_COMMANDS)[number];

export interface FaultCommand {
  fault: FaultCommandName;
  client?: string;
  direction?: "up" | "down" | "both";
  [param: string]: unknown;
}

function bad(message: string, cmd: unknown): never {
  throw new RelayError("BAD_FAULT_COMMAND", message, { command: cmd });
}

export function applyFaultCommand(n: Nemesis, raw: unknown): void {
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) bad("a fault command is a JSON object", raw);
  const cmd = raw as Record<string, unknown>;
  const fault = cmd.fault;
  if (typeof fault !== "string" || !(FAULT_COMMANDS as readonly string[]).includes(fault)) bad(`fault must be one of ${FAULT_COMMANDS.join(", ")}`, raw);
  const client = cmd.client === undefined ? undefined : typeof cmd.client === "string" ? cmd.client : bad("client must be a string", raw);
  const direction = cmd.direction === undefined ? undefined : cmd.direction === "up" || cmd.direction === "down" || cmd.direction === "both" ? cmd.direction : bad("direction must be up, down or both", raw);
  const scope: LinkScope = { ...(client !== undefined && { client }), ...(direction !== undefined && { direction }) };
  const num = (k: string, dflt?: number): number => {
    const v = cmd[k] ?? dflt;
    return typeof v === "number" && Number.isFinite(v) ? v : bad(`${k} must be a number`, raw);
  };
  const opt = (k: string): number | undefined => (cmd[k] === undefined ? undefined : num(k));
  const kinds = cmd.kinds === undefined ? undefined : Array.isArray(cmd.kinds) && cmd.kinds.every((k) => Number.isInteger(k)) ? (cmd.kinds as number[]) : bad("kinds must be an array of integers", raw);
  const needClient = (): string => client ?? bad(`${fault} needs a client`, raw);
  switch (fault as FaultCommandName) {
    case "latency":
      n.setLatency((cmd.dist as LatencyDist | undefined) ?? bad("latency needs dist, e.g. {\"kind\":\"fixed\",\"ms\":50}", raw), scope);
      return;
    case "drop":
      n.setDrop(num("p"), scope);
      return;
    case "duplicate":
      n.setDuplicate(num("p"), scope);
      return;
    case "reorder":
      n.setReorder(num("p"), num("maxExtraMs", 500), scope);
      return;
    case "partition":
      n.partition(needClient());
      return;
    case "heal":
      n.heal(needClient());
      return;
    case "disconnect":
      n.disconnect(needClient());
      return;
    case "crash":
      n.crash();
      return;
    case "restart":
      n.restart({ keepStore: cmd.keepStore !== false });
      return;
    case "retention":
      n.setRetention(opt("maxEvents"));
      return;
    case "queue-limit":
      n.setQueueLimit(opt("perSubscription"), scope);
      return;
    case "refuse-publish":
      n.refusePublish({ p: num("p", 1), ...(kinds && { kinds }), ...(typeof cmd.message === "string" && { message: cmd.message }) }, scope);
      return;
    case "no-answer":
      n.neverAnswer({ p: num("p", 1), ...(kinds && { kinds }), store: cmd.store !== false }, scope);
      return;
    case "early-eose":
      n.setEarlyEose({ p: num("p", 1), ...(cmd.after !== undefined && { after: num("after") }), ...(cmd.fraction !== undefined && { fraction: num("fraction") }), withholdRest: cmd.withholdRest === true }, scope);
      return;
    case "slow-eose":
      n.setSlowEose(num("delayMs"), scope);
      return;
    case "clear":
      n.clearAll();
      return;
  }
}
