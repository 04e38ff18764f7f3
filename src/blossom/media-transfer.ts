/**
 * MIP-04 attachments end to end for whoever drives an engine (agents, scenarios, tools): encrypt with
 * the group's media exporter, upload to Blossom, send the kind-9 rumor with the `imeta` tag; and on
 * the receiving side, pick the exporter of the message's epoch, fetch the blob and decrypt it.
 * Uses only the engine contract (engine/api.ts), never the engine's internals.
 */
import { bytesToHex } from "@noble/hashes/utils.js";
import type { MarmotEngine, NostrEvent, Rumor } from "../engine/api.ts";
import {
  MediaError,
  decryptMedia,
  encryptMedia,
  mediaExporterLabel,
  parseImetaTag,
  type DecryptedMedia,
  type ParseImetaOptions,
  type ParsedImeta,
} from "../engine/mip04-media.ts";
import { BlossomClient, type BlobDescriptor } from "./client.ts";

export interface MediaAttachment {
  data: Uint8Array;
  mime: string;
  filename: string;
  dim?: { width: number; height: number };
}

/**
 * The media exporter secret of `epoch` for this engine's profile. R1 reads the retained epoch keys
 * (`inspect().epochKeys`); R0 derives `("nostr","nostr",32)` through `inspect().exporter`, which the
 * engine offers for the current epoch only.
 */
export async function mediaSecretForEpoch(engine: MarmotEngine, groupId: string, epoch: bigint): Promise<Uint8Array> {
  const ins = await engine.inspect(groupId);
  if (engine.profile === "R0") {
    if (ins.epoch !== epoch) {
      throw new MediaError("MEDIA_EPOCH_UNAVAILABLE", `R0 media secret is only derivable for the current epoch ${ins.epoch}, not ${epoch}`, {
        epoch: epoch.toString(),
        current: ins.epoch.toString(),
      });
    }
    const { label, context, length } = mediaExporterLabel("R0");
    return ins.exporter(label, new TextEncoder().encode(context), length);
  }
  const keys = ins.epochKeys.find((k) => k.epoch === epoch);
  if (!keys) {
    throw new MediaError("MEDIA_EPOCH_UNAVAILABLE", `no media exporter retained for epoch ${epoch}`, {
      epoch: epoch.toString(),
      retained: ins.epochKeys.map((k) => k.epoch.toString()),
    });
  }
  return keys.mediaExporter;
}

export interface SentMedia {
  /** The kind 445 to publish. */
  event: NostrEvent;
  imeta: string[];
  descriptor: BlobDescriptor;
  epoch: bigint;
}

/** Encrypt `files` for the group's current epoch, upload them, and build the kind-9 message carrying their imeta tags. */
export async function sendMedia(opts: {
  engine: MarmotEngine;
  groupId: string;
  blossom: BlossomClient;
  files: MediaAttachment[];
  content?: string;
  now: number;
  randomBytes?: (n: number) => Uint8Array;
}): Promise<{ event: NostrEvent; attachments: Omit<SentMedia, "event">[] }> {
  const epoch = (await opts.engine.inspect(opts.groupId)).epoch;
  const secret = await mediaSecretForEpoch(opts.engine, opts.groupId, epoch);
  const attachments: Omit<SentMedia, "event">[] = [];
  for (const f of opts.files) {
    const enc = encryptMedia({
      exporterSecret: secret,
      data: f.data,
      mime: f.mime,
      filename: f.filename,
      ...(f.dim ? { dim: f.dim } : {}),
      ...(opts.randomBytes ? { randomBytes: opts.randomBytes } : {}),
    });
    const descriptor = await opts.blossom.upload(enc.ciphertext, { sha256: bytesToHex(enc.sha256Cipher) });
    attachments.push({ imeta: enc.imeta(descriptor.url), descriptor, epoch });
  }
  const event = await opts.engine.sendMessage(opts.groupId, { kind: 9, content: opts.content ?? "", tags: attachments.map((a) => a.imeta) }, opts.now);
  return { event, attachments };
}

/** The imeta attachments of a rumor: the valid ones parsed, the others with their MediaError. */
export function attachmentsOf(rumor: Pick<Rumor, "tags">, opts: ParseImetaOptions = {}): { ok: ParsedImeta[]; rejected: { tag: string[]; error: MediaError }[] } {
  const ok: ParsedImeta[] = [];
  const rejected: { tag: string[]; error: MediaError }[] = [];
  for (const tag of rumor.tags) {
    if (tag[0] !== "imeta") continue;
    try {
      ok.push(parseImetaTag(tag, opts));
    } catch (e) {
      if (!(e instanceof MediaError)) throw e;
      rejected.push({ tag, error: e });
    }
  }
  return { ok, rejected };
}

/**
 * Fetch and decrypt one attachment of a message received at `epoch`. The blob is fetched by its
 * address from the imeta URL's server, then from `fallbackServers` in order (BUD-01 lets any server
 * holding the hash serve it); bytes that do not hash to the address send it on to the next server.
 * When every server fails, a corrupted or swapped blob ends as `MEDIA_CIPHERTEXT_HASH_MISMATCH`,
 * an unreachable one as `MEDIA_FETCH_FAILED`; a wrong epoch key is `MEDIA_DECRYPT_FAILED` at once.
 */
export async function fetchMedia(opts: {
  engine: MarmotEngine;
  groupId: string;
  epoch: bigint;
  imeta: ParsedImeta;
  fallbackServers?: string[];
  timeoutMs?: number;
}): Promise<DecryptedMedia & { server: string }> {
  const address = opts.imeta.blobSha256;
  if (!address) throw new MediaError("MEDIA_NO_BLOB_ADDRESS", "the imeta url has no <sha256> segment", { url: opts.imeta.url });
  const secret = await mediaSecretForEpoch(opts.engine, opts.groupId, opts.epoch);
  const servers = [new URL(opts.imeta.url).origin, ...(opts.fallbackServers ?? [])];
  let lastErr: unknown;
  for (const server of servers) {
    let blob: Uint8Array;
    try {
      blob = await new BlossomClient(server, opts.timeoutMs ? { timeoutMs: opts.timeoutMs } : {}).download(address, { verify: false });
    } catch (e) {
      lastErr = e;
      continue;
    }
    try {
      return { ...decryptMedia({ exporterSecret: secret, blob, imeta: opts.imeta }), server };
    } catch (e) {
      // Bytes that are not the addressed blob may be right on another server; any other failure is final.
      if (!(e instanceof MediaError) || e.code !== "MEDIA_CIPHERTEXT_HASH_MISMATCH") throw e;
      lastErr = e;
    }
  }
  if (lastErr instanceof MediaError) throw lastErr;
  throw new MediaError("MEDIA_FETCH_FAILED", `blob ${address} could not be fetched from ${servers.join(", ")}`, { servers }, { cause: lastErr });
}
