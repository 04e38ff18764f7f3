/**
 * A Blossom client on blossom-client-sdk: upload, download, has, delete and list against the
 * harness's server or any external Blossom URL, signing kind 24242 auth events with a secret key.
 */
import { Actions, createDeleteAuth, createDownloadAuth, createListAuth, createUploadAuth, type SignedEvent, type Signer } from "blossom-client-sdk";
import { finalizeEvent, getPublicKey } from "nostr-tools/pure";
import { createHash } from "node:crypto";
import { BlossomError } from "./auth.ts";
import type { BlobDescriptor } from "./server.ts";

export type { BlobDescriptor };

/** A blossom-client-sdk signer from a 32-byte secret key. */
export function secretKeySigner(secretKey: Uint8Array): Signer {
  return async (draft) => finalizeEvent({ ...draft, tags: draft.tags.map((t) => [...t]) }, secretKey) as unknown as SignedEvent;
}

export interface BlossomClientOptions {
  /** Key for authorization events (upload, delete, and get/list when the server asks). */
  secretKey?: Uint8Array;
  /** Per-request timeout in ms (default none). */
  timeoutMs?: number;
  /** Always send auth on get and list (default: only when the server answers 401). */
  alwaysAuth?: boolean;
}

function sha256Hex(data: Uint8Array): string {
  return createHash("sha256").update(data).digest("hex");
}

function wrap(e: unknown, what: string): never {
  if (e instanceof BlossomError) throw e;
  const err = e as { status?: number; message?: string; response?: unknown };
  if (typeof err?.status === "number") {
    const serverCode = /^([A-Z][A-Z_]+): /.exec(err.message ?? "")?.[1];
    throw new BlossomError(
      "CLIENT_HTTP_ERROR",
      err.status,
      `${what} failed with HTTP ${err.status}: ${err.message ?? ""}`,
      { reason: err.message, ...(serverCode ? { serverCode } : {}) },
      { cause: e },
    );
  }
  throw new BlossomError("CLIENT_HTTP_ERROR", 0, `${what} failed: ${e instanceof Error ? e.message : String(e)}`, {}, { cause: e });
}

export class BlossomClient {
  readonly server: string;
  private readonly signer: Signer | undefined;
  readonly pubkey: string | undefined;

  constructor(
    server: string,
    private readonly opts: BlossomClientOptions = {},
  ) {
    this.server = server.replace(/\/+$/, "") + "/";
    this.signer = opts.secretKey ? secretKeySigner(opts.secretKey) : undefined;
    this.pubkey = opts.secretKey ? getPublicKey(opts.secretKey) : undefined;
  }

  private requireSigner(what: string): Signer {
    if (!this.signer) throw new BlossomError("AUTH_MISSING", 401, `${what} needs a secret key`);
    return this.signer;
  }

  private get timeout(): { timeout?: number } {
    return this.opts.timeoutMs ? { timeout: this.opts.timeoutMs } : {};
  }

  /**
   * Upload bytes; checks the returned descriptor's sha256 and size. `sha256` (hex), when the caller
   * already has it (e.g. `EncryptedMedia.sha256Cipher`), saves hashing the blob again here; the
   * server checks the body against it.
   */
  async upload(data: Uint8Array, opts: { type?: string; sha256?: string } = {}): Promise<BlobDescriptor> {
    const signer = this.requireSigner("upload");
    const sha = opts.sha256?.toLowerCase() ?? sha256Hex(data);
    const body = new Blob([data as Uint8Array<ArrayBuffer>], { type: opts.type ?? "application/octet-stream" });
    // blossom-client-sdk reads a Blob's hash from this symbol (its BlobHashSymbol) instead of copying and hashing the blob again
    Reflect.set(body, Symbol.for("sha256"), sha);
    let desc: BlobDescriptor;
    try {
      desc = (await Actions.uploadBlob(this.server, body, {
        auth: true,
        onAuth: async () => createUploadAuth(signer, sha),
        ...this.timeout,
      })) as BlobDescriptor;
    } catch (e) {
      wrap(e, "upload");
    }
    if (!desc || desc.sha256 !== sha || desc.size !== data.length) {
      throw new BlossomError("CLIENT_BAD_RESPONSE", 200, `server returned descriptor ${JSON.stringify(desc)} for blob ${sha} of ${data.length} bytes`);
    }
    return desc;
  }

  /**
   * Download a blob by hash. With `verify` (default true) the bytes must hash to `sha256`
   * (`CLIENT_HASH_MISMATCH`); pass false to hand unverified bytes to a layer that checks them itself.
   */
  async download(sha256: string, opts: { verify?: boolean } = {}): Promise<Uint8Array> {
    const signer = this.signer;
    let res: Response;
    try {
      res = await Actions.downloadBlob(this.server, sha256, {
        ...(this.opts.alwaysAuth && signer ? { auth: true } : {}),
        ...(signer ? { onAuth: async () => createDownloadAuth(signer, sha256) } : {}),
        ...this.timeout,
      });
    } catch (e) {
      wrap(e, "download");
    }
    const data = new Uint8Array(await res.arrayBuffer());
    if (opts.verify !== false) {
      const actual = sha256Hex(data);
      if (actual !== sha256.toLowerCase()) throw new BlossomError("CLIENT_HASH_MISMATCH", 200, `downloaded bytes hash to ${actual}, not ${sha256}`, { expected: sha256, actual });
    }
    return data;
  }

  /** HEAD /<sha256>. */
  async has(sha256: string): Promise<boolean> {
    try {
      return await Actions.hasBlob(this.server, sha256, this.timeout);
    } catch (e) {
      wrap(e, "has");
    }
  }

  /** DELETE /<sha256>, signed by this client's key or by `secretKey` (e.g. a group image upload key). */
  async delete(sha256: string, opts: { secretKey?: Uint8Array } = {}): Promise<boolean> {
    const signer = opts.secretKey ? secretKeySigner(opts.secretKey) : this.requireSigner("delete");
    try {
      return await Actions.deleteBlob(this.server, sha256, {
        auth: true,
        onAuth: async () => createDeleteAuth(signer, sha256),
        ...this.timeout,
      });
    } catch (e) {
      wrap(e, "delete");
    }
  }

  /** GET /list/<pubkey> (default: this client's pubkey). */
  async list(pubkey?: string, opts: { since?: number; until?: number } = {}): Promise<BlobDescriptor[]> {
    const who = pubkey ?? this.pubkey;
    if (!who) throw new BlossomError("BAD_REQUEST", 400, "list needs a pubkey or a secret key");
    const signer = this.signer;
    try {
      return (await Actions.listBlobs(this.server, who, {
        ...opts,
        ...(this.opts.alwaysAuth && signer ? { auth: true } : {}),
        ...(signer ? { onAuth: async () => createListAuth(signer) } : {}),
        ...this.timeout,
      })) as BlobDescriptor[];
    } catch (e) {
      wrap(e, "list");
    }
  }
}

/**
 * Delete an old group image after a change (MIP-01): try each candidate upload identity in order
 * (see `planGroupImageChange(...).cleanup`) until one is allowed. A blob already gone counts as done.
 * Returns the pubkey that deleted it, "absent" when the server no longer had it, or null when no
 * identity was allowed (each refusal is in `refusals`).
 */
export async function cleanupGroupImage(
  server: string,
  cleanup: { sha256: string; identities: { secretKey: Uint8Array; pubkey: string }[] },
  opts: { timeoutMs?: number } = {},
): Promise<{ deletedBy: string | "absent" | null; refusals: { pubkey: string; status: number }[] }> {
  const client = new BlossomClient(server, opts.timeoutMs ? { timeoutMs: opts.timeoutMs } : {});
  const refusals: { pubkey: string; status: number }[] = [];
  for (const id of cleanup.identities) {
    try {
      await client.delete(cleanup.sha256, { secretKey: id.secretKey });
      return { deletedBy: id.pubkey, refusals };
    } catch (e) {
      const status = e instanceof BlossomError ? e.status : 0;
      if (status === 404) return { deletedBy: "absent", refusals };
      if (status !== 401 && status !== 403) throw e;
      refusals.push({ pubkey: id.pubkey, status });
    }
  }
  return { deletedBy: null, refusals };
}
