/**
 * The invariant checkers, each reading the recorded history only.
 */
import type { HistoryEntry } from "../../history.ts";
import type { CheckResult } from "../../report/types.ts";
import { checkAuthenticity } from "./authenticity.ts";
import { checkConvergence } from "./convergence.ts";
import { checkDelivery } from "./delivery.ts";
import { checkMedia } from "./media.ts";
import { checkMetadata } from "./metadata.ts";
import { checkSecrecy } from "./secrecy.ts";

export { checkAuthenticity, checkConvergence, checkDelivery, checkMedia, checkMetadata, checkSecrecy };

export interface InvariantOptions {
  convergence?: boolean;
  delivery?: boolean;
  secrecy?: boolean;
  metadata?: boolean;
  authenticity?: boolean;
  excusedDelivery?: { agent: string; reason: string }[];
}

export function runInvariants(history: readonly HistoryEntry[], opts: InvariantOptions = {}): CheckResult[] {
  const out: CheckResult[] = [];
  if (opts.convergence !== false) out.push(checkConvergence(history));
  if (opts.delivery !== false) out.push(checkDelivery(history, { excused: opts.excusedDelivery ?? [] }));
  if (opts.secrecy !== false) out.push(checkSecrecy(history));
  if (opts.metadata !== false) out.push(checkMetadata(history));
  if (opts.authenticity !== false) out.push(checkAuthenticity(history));
  const media = checkMedia(history);
  if (media.verdict !== "not-applicable") out.push(media);
  return out;
}
