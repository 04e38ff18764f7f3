/**
 * Blossom authorization (BUD-01 / BUD-02): `Authorization: Nostr <base64 kind-24242 event>`.
 * The server checks, in order: kind 24242, id and Schnorr signature, `created_at` not in the future,
 * an `expiration` tag in the future, the `t` verb of the endpoint, then the endpoint's own checks
 * (`x` tag holding the blob's hash for upload and delete; `x` or `server` for get).
 */
import { verifyEvent, type Event as NostrEvent } from "nostr-tools/pure";
import { HarnessError } from "../errors.ts";

export const BLOSSOM_AUTH_KIND = 24242;
export type BlossomVerb = "get" | "upload" | "list" | "delete";

export type BlossomErrorCode =
  | "AUTH_MISSING"
  | "AUTH_MALFORMED"
  | "AUTH_BAD_KIND"
  | "AUTH_BAD_SIGNATURE"
  | "AUTH_NOT_YET_VALID"
  | "AUTH_EXPIRED"
  | "AUTH_WRONG_VERB"
  | "AUTH_WRONG_HASH"
  | "AUTH_WRONG_SERVER"
  | "AUTH_REFUSED"
  | "NOT_OWNER"
  | "BLOB_NOT_FOUND"
  | "BLOB_TOO_LARGE"
  | "HASH_MISMATCH"
  | "BAD_REQUEST"
  | "CLIENT_HTTP_ERROR"
  | "CLIENT_HASH_MISMATCH"
  | "CLIENT_BAD_RESPONSE";

/** A refused Blossom request: `status` is the HTTP status the server answers with. */
export class BlossomError extends HarnessError {
  declare readonly code: BlossomErrorCode;
  readonly status: number;
  constructor(code: BlossomErrorCode, status: number, message: string, details: Record<string, unknown> = {}, options?: { cause?: unknown }) {
    super(code, message, { status, ...details }, options);
    this.status = status;
  }
}

export interface AuthCheck {
  verb: BlossomVerb;
  /** Unix seconds. */
  now: number;
  /** For upload/delete (required) and get (x or server): the blob's hash. */
  sha256?: string;
  /** Hostname of this server, for `server` tags on get. */
  serverHost?: string;
  /** Seconds of clock skew tolerated on `created_at` (default 60). */
  skewSeconds?: number;
}

export interface VerifiedAuth {
  pubkey: string;
  event: NostrEvent;
}

function decodeBase64Any(s: string): string {
  // Standard or URL-safe alphabet, padded or not (blossom-client-sdk sends unpadded base64url).
  if (!/^[A-Za-z0-9+/_-]+={0,2}$/.test(s)) throw new Error("not base64");
  const std = s.replace(/-/g, "+").replace(/_/g, "/").replace(/=+$/, "");
  return Buffer.from(std, "base64").toString("utf8");
}

/** Decode the header without verifying anything (for logs and tests). */
export function decodeAuthHeader(header: string): NostrEvent {
  const m = /^Nostr\s+(\S+)\s*$/i.exec(header.trim());
  if (!m) throw new BlossomError("AUTH_MALFORMED", 401, 'Authorization must be "Nostr <base64 event>"');
  let parsed: unknown;
  try {
    parsed = JSON.parse(decodeBase64Any(m[1]!));
  } catch (e) {
    throw new BlossomError("AUTH_MALFORMED", 401, "Authorization is not base64 of a JSON event", {}, { cause: e });
  }
  const ev = parsed as Partial<NostrEvent>;
  if (
    !ev ||
    typeof ev !== "object" ||
    typeof ev.id !== "string" ||
    typeof ev.pubkey !== "string" ||
    typeof ev.sig !== "string" ||
    typeof ev.kind !== "number" ||
    typeof ev.created_at !== "number" ||
    typeof ev.content !== "string" ||
    !Array.isArray(ev.tags) ||
    !ev.tags.every((t) => Array.isArray(t) && t.every((x) => typeof x === "string"))
  ) {
    throw new BlossomError("AUTH_MALFORMED", 401, "Authorization event is missing fields or has wrong types");
  }
  return ev as NostrEvent;
}

/** Verify an Authorization header for an action. Throws `BlossomError` (401 or 403) naming the failed check. */
export function verifyAuthHeader(header: string | undefined, check: AuthCheck): VerifiedAuth {
  if (!header) throw new BlossomError("AUTH_MISSING", 401, `authorization required for ${check.verb}`);
  const ev = decodeAuthHeader(header);
  if (ev.kind !== BLOSSOM_AUTH_KIND) throw new BlossomError("AUTH_BAD_KIND", 401, `auth event kind is ${ev.kind}, expected ${BLOSSOM_AUTH_KIND}`);
  if (!verifyEvent({ ...ev })) throw new BlossomError("AUTH_BAD_SIGNATURE", 401, "auth event id or signature does not verify");
  const skew = check.skewSeconds ?? 60;
  if (ev.created_at > check.now + skew) throw new BlossomError("AUTH_NOT_YET_VALID", 401, `auth event created_at ${ev.created_at} is in the future`);
  const expTag = ev.tags.find((t) => t[0] === "expiration");
  const exp = expTag ? Number(expTag[1]) : NaN;
  if (!Number.isFinite(exp)) throw new BlossomError("AUTH_EXPIRED", 401, "auth event has no valid expiration tag");
  if (exp <= check.now) throw new BlossomError("AUTH_EXPIRED", 401, `auth event expired at ${exp} (now ${check.now})`);
  const verbs = ev.tags.filter((t) => t[0] === "t").map((t) => t[1]);
  if (!verbs.includes(check.verb)) throw new BlossomError("AUTH_WRONG_VERB", 403, `auth event t=${JSON.stringify(verbs)} does not allow "${check.verb}"`);
  const xs = ev.tags.filter((t) => t[0] === "x").map((t) => (t[1] ?? "").toLowerCase());
  if (check.verb === "upload" || check.verb === "delete") {
    if (!check.sha256 || !xs.includes(check.sha256.toLowerCase())) {
      throw new BlossomError("AUTH_WRONG_HASH", 403, `auth event has no x tag for ${check.sha256 ?? "the blob"}`);
    }
  } else if (check.verb === "get" && check.sha256) {
    const servers = ev.tags.filter((t) => t[0] === "server").map((t) => hostOf(t[1] ?? ""));
    const serverOk = check.serverHost !== undefined && servers.includes(check.serverHost.toLowerCase());
    if (!xs.includes(check.sha256.toLowerCase()) && !serverOk) {
      throw new BlossomError("AUTH_WRONG_HASH", 403, `get auth has neither an x tag for ${check.sha256} nor a server tag for this server`);
    }
  }
  return { pubkey: ev.pubkey, event: ev };
}

function hostOf(s: string): string {
  try {
    return new URL(s).hostname.toLowerCase();
  } catch {
    return s.toLowerCase();
  }
}
