/**
 * MIP-05 push tokens inside delivered 447/448/449 rumors (application observations):
 *
 * - MIP05-PN-07 (R1/R2): an encrypted token `eph_pub(32) ‖ nonce(12) ‖ ciphertext` opens with
 *   ChaCha20-Poly1305 (empty AAD) under HKDF-SHA256(salt, IKM = x of ECDH(server key, eph_pub)),
 *   expanded with the revision's info: R1 `mip05-v1` / `mip05-token-encryption`, R2
 *   `marmot-push-token-v1` / `marmot-push-token-encryption`; the plaintext is 1024 bytes
 *   `platform(1: APNs, 2: FCM) ‖ length(u16 BE) ‖ token ‖ padding`. Judged when the keyring's
 *   `recipientSecretKeys` hold the notification server's key (the token's `server_pubkey_hex`).
 * - MIP05-PN-05 (R2, partial): the JSON content has `v` "marmot-push-v1", at most 32 entries and
 *   well-formed entry fields. `owner_sig` is checked for shape only (the kind-451 template's content
 *   is not pinned in the digest), so the rule can fail but never pass.
 */
import { chacha20poly1305 } from "@noble/ciphers/chacha.js";
import { schnorr, secp256k1 } from "@noble/curves/secp256k1.js";
import { extract, expand } from "@noble/hashes/hkdf.js";
import { sha256 } from "@noble/hashes/sha2.js";
import type { CheckContext } from "./context.ts";
import type { ApplicationObservation } from "./keyring.ts";
import { decodeBase64Strict, hexToBytes, isHex64, isPlainObject, safeTags, utf8 } from "./util.ts";

const TOKEN_BYTES = 1084;
const PLAIN_BYTES = 1024;
const LABELS = {
  R1: { salt: "mip05-v1", info: "mip05-token-encryption" },
  R2: { salt: "marmot-push-token-v1", info: "marmot-push-token-encryption" },
} as const;

/** The plaintext of a token under one revision's labels, or undefined when it does not open. */
export function openPushToken(serverSecret: Uint8Array, token: Uint8Array, labels: { salt: string; info: string }): Uint8Array | undefined {
  if (token.length < 32 + 12 + 16) return undefined;
  try {
    const eph = new Uint8Array(33);
    eph[0] = 0x02; // x-only key: either lift gives the same shared x
    eph.set(token.subarray(0, 32), 1);
    const sharedX = secp256k1.getSharedSecret(serverSecret, eph, true).subarray(1);
    if (sharedX.every((b) => b === 0)) return undefined;
    const key = expand(sha256, extract(sha256, sharedX, utf8(labels.salt)), utf8(labels.info), 32);
    return chacha20poly1305(key, token.subarray(32, 44)).decrypt(token.subarray(44));
  } catch {
    return undefined;
  }
}

function plaintextProblem(p: Uint8Array): string | undefined {
  if (p.length !== PLAIN_BYTES) return `token plaintext is ${p.length} bytes, not ${PLAIN_BYTES}`;
  const platform = p[0] as number;
  const len = ((p[1] as number) << 8) | (p[2] as number);
  if (platform !== 1 && platform !== 2) return `token platform byte is ${platform} (expected 1 APNs or 2 FCM)`;
  if (len < 1 || len > PLAIN_BYTES - 3) return `token length ${len} is outside 1..${PLAIN_BYTES - 3}`;
  return undefined;
}

/** (encrypted token base64, server pubkey hex) pairs of one push rumor, by revision. */
function tokensOf(r: Record<string, unknown>, profile: "R1" | "R2"): { b64: unknown; server: unknown }[] {
  if (profile === "R1") return safeTags(r.tags).filter((t) => t[0] === "token").map((t) => ({ b64: t[1], server: t[2] }));
  let body: unknown;
  try {
    body = typeof r.content === "string" ? JSON.parse(r.content) : undefined;
  } catch {
    return [];
  }
  if (!isPlainObject(body) || !Array.isArray(body.tokens)) return [];
  return body.tokens.filter(isPlainObject).map((e) => ({ b64: e.encrypted_token, server: e.server_pubkey_hex }));
}

function checkTokens(ctx: CheckContext, o: ApplicationObservation, r: Record<string, unknown>, servers: Map<string, Uint8Array>): void {
  const { j } = ctx;
  const profile = ctx.profile === "R2" ? "R2" : "R1";
  const other = profile === "R2" ? "R1" : "R2";
  for (const t of tokensOf(r, profile)) {
    const bytes = decodeBase64Strict(t.b64);
    if (!bytes || bytes.length !== TOKEN_BYTES) continue; // a wrong size is MIP05-PN-02's finding
    const sk = typeof t.server === "string" ? servers.get(t.server.toLowerCase()) : undefined;
    if (!sk) {
      j.needKeys("MIP05-PN-07", o.eventId, "the notification server's secret key is not in the keyring");
      continue;
    }
    const plain = openPushToken(sk, bytes, LABELS[profile]);
    if (plain) {
      const p = plaintextProblem(plain);
      j.check("MIP05-PN-07", p === undefined, o.eventId, p ?? "");
    } else if (openPushToken(sk, bytes, LABELS[other])) {
      j.fail("MIP05-PN-07", o.eventId, `the token opens only with the ${other} salt/info (${LABELS[other].salt}), not ${profile}'s (${LABELS[profile].salt})`);
    } else j.fail("MIP05-PN-07", o.eventId, `the token does not open with the server's key under ${profile}'s ECDH+HKDF labels`);
  }
}

const ENTRY_FIELDS = ["member_id_hex", "leaf_index", "platform", "token_fingerprint", "server_pubkey_hex", "encrypted_token", "owner_ts", "owner_sig"];

/** PN-05 (R2): JSON shape of 447/448/449 content; owner_sig only by shape (partial rule). */
function checkPushJson(ctx: CheckContext, o: ApplicationObservation, r: Record<string, unknown>): void {
  const problems: string[] = [];
  let body: unknown;
  try {
    body = typeof r.content === "string" ? JSON.parse(r.content) : undefined;
  } catch {
    body = undefined;
  }
  if (!isPlainObject(body)) problems.push("content is not a JSON object");
  else {
    if (body.v !== "marmot-push-v1") problems.push(`v is ${JSON.stringify(body.v)}, not "marmot-push-v1"`);
    const list = r.kind === 449 ? body.removals : body.tokens;
    if (!Array.isArray(list)) problems.push(`no ${r.kind === 449 ? "removals" : "tokens"} array`);
    else {
      if (list.length > 32) problems.push(`${list.length} entries (at most 32)`);
      if (r.kind !== 449) {
        list.forEach((e, i) => {
          if (!isPlainObject(e)) {
            problems.push(`entry ${i} is not an object`);
            return;
          }
          const missing = ENTRY_FIELDS.filter((f) => !(f in e));
          if (missing.length > 0) problems.push(`entry ${i} lacks ${missing.join(", ")}`);
          if ("member_id_hex" in e && !isHex64(e.member_id_hex)) problems.push(`entry ${i} member_id_hex is not 64 hex`);
          if ("token_fingerprint" in e && !(typeof e.token_fingerprint === "string" && /^sha256:[0-9a-f]{24}$/.test(e.token_fingerprint))) problems.push(`entry ${i} token_fingerprint is not sha256: + 24 hex`);
          if ("owner_sig" in e && !(typeof e.owner_sig === "string" && /^[0-9a-f]{128}$/.test(e.owner_sig))) problems.push(`entry ${i} owner_sig is not a 64-byte hex signature`);
        });
      }
    }
  }
  // a partial rule: passes are reported as "no violation found", never as a pass
  ctx.j.check("MIP05-PN-05", problems.length === 0, o.eventId, `push record: ${problems.join("; ")}`);
}

export function checkPushTokens(ctx: CheckContext): void {
  const { j } = ctx;
  const judge07 = j.applies("MIP05-PN-07");
  const judge05 = j.applies("MIP05-PN-05");
  if (!judge07 && !judge05) return;
  const servers = new Map<string, Uint8Array>();
  for (const sk of ctx.keyring?.recipientSecretKeys ?? []) {
    try {
      const b = hexToBytes(sk);
      servers.set(Buffer.from(schnorr.getPublicKey(b)).toString("hex"), b);
    } catch {
      // not a valid scalar
    }
  }
  const seen = new Set<string>();
  for (const o of ctx.observations) {
    if (o.kind !== "application" || !isPlainObject(o.rumor) || seen.has(o.eventId)) continue;
    const r = o.rumor;
    if (r.kind !== 447 && r.kind !== 448 && r.kind !== 449) continue;
    seen.add(o.eventId);
    try {
      if (judge05) checkPushJson(ctx, o, r);
      if (judge07 && r.kind !== 449) checkTokens(ctx, o, r, servers);
    } catch (e) {
      j.notes.push(`push rumor of ${o.eventId} not judged: ${(e as Error).message}`);
    }
  }
}
