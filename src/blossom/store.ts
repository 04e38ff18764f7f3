/**
 * Blob stores for the harness's Blossom server: in memory, or on disk (one file per blob named by its
 * sha256, plus `<sha256>.json` holding type and owners, reloaded on start).
 */
import { mkdir, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";

export interface BlobMeta {
  sha256: string;
  size: number;
  type: string;
  /** Uploader pubkey → unix seconds of that owner's upload. */
  owners: Record<string, number>;
}

export interface BlobStore {
  get(sha256: string): Promise<Uint8Array | undefined>;
  meta(sha256: string): BlobMeta | undefined;
  put(data: Uint8Array, meta: BlobMeta): Promise<void>;
  updateMeta(meta: BlobMeta): Promise<void>;
  remove(sha256: string): Promise<void>;
  all(): BlobMeta[];
}

export class MemoryBlobStore implements BlobStore {
  private readonly blobs = new Map<string, Uint8Array>();
  private readonly metas = new Map<string, BlobMeta>();
  async get(sha256: string): Promise<Uint8Array | undefined> {
    return this.blobs.get(sha256);
  }
  meta(sha256: string): BlobMeta | undefined {
    return this.metas.get(sha256);
  }
  async put(data: Uint8Array, meta: BlobMeta): Promise<void> {
    this.blobs.set(meta.sha256, data);
    this.metas.set(meta.sha256, meta);
  }
  async updateMeta(meta: BlobMeta): Promise<void> {
    this.metas.set(meta.sha256, meta);
  }
  async remove(sha256: string): Promise<void> {
    this.blobs.delete(sha256);
    this.metas.delete(sha256);
  }
  all(): BlobMeta[] {
    return [...this.metas.values()];
  }
}

const SHA_RE = /^[0-9a-f]{64}$/;

export class DiskBlobStore implements BlobStore {
  private readonly metas = new Map<string, BlobMeta>();
  private constructor(private readonly dir: string) {}

  /** Open (and create) a directory store, loading the metadata of blobs already there. */
  static async open(dir: string): Promise<DiskBlobStore> {
    await mkdir(dir, { recursive: true });
    const store = new DiskBlobStore(dir);
    for (const name of await readdir(dir)) {
      if (!name.endsWith(".json") || !SHA_RE.test(name.slice(0, -5))) continue;
      try {
        const meta = JSON.parse(await readFile(join(dir, name), "utf8")) as BlobMeta;
        if (meta && SHA_RE.test(meta.sha256)) store.metas.set(meta.sha256, meta);
      } catch {
        // an unreadable sidecar is skipped; the blob stays on disk untouched
      }
    }
    return store;
  }

  async get(sha256: string): Promise<Uint8Array | undefined> {
    if (!SHA_RE.test(sha256) || !this.metas.has(sha256)) return undefined;
    try {
      return new Uint8Array(await readFile(join(this.dir, sha256)));
    } catch {
      return undefined;
    }
  }
  meta(sha256: string): BlobMeta | undefined {
    return this.metas.get(sha256);
  }
  async put(data: Uint8Array, meta: BlobMeta): Promise<void> {
    if (!SHA_RE.test(meta.sha256)) throw new RangeError("bad sha256");
    await writeFile(join(this.dir, meta.sha256), data);
    await this.updateMeta(meta);
  }
  async updateMeta(meta: BlobMeta): Promise<void> {
    this.metas.set(meta.sha256, meta);
    await writeFile(join(this.dir, `${meta.sha256}.json`), JSON.stringify(meta));
  }
  async remove(sha256: string): Promise<void> {
    if (!SHA_RE.test(sha256)) return;
    this.metas.delete(sha256);
    await rm(join(this.dir, sha256), { force: true });
    await rm(join(this.dir, `${sha256}.json`), { force: true });
  }
  all(): BlobMeta[] {
    return [...this.metas.values()];
  }
}
