/**
 * Durable EngineStorage in a directory: one file per key. Keys are hex-encoded into file names
 * (so any key string is safe), writes go to a temporary file that is fsynced and then renamed
 * over the target, so a crash leaves either the old or the new value, never a torn one.
 */
import { promises as fs } from "node:fs";
import * as path from "node:path";
import { HarnessError } from "../errors.ts";
import type { EngineStorage } from "./storage.ts";

export class StorageError extends HarnessError {}

const SUFFIX = ".bin";

function encodeKey(key: string): string {
  return Buffer.from(key, "utf8").toString("hex") + SUFFIX;
}

function decodeKey(file: string): string | undefined {
  if (!file.endsWith(SUFFIX)) return undefined;
  const hex = file.slice(0, -SUFFIX.length);
  if (!/^(?:[0-9a-f]{2})*$/.test(hex)) return undefined;
  return Buffer.from(hex, "hex").toString("utf8");
}

export class FileStorage implements EngineStorage {
  readonly dir: string;
  private ready: Promise<void> | undefined;
  private tmpCounter = 0;

  constructor(dir: string) {
    if (typeof dir !== "string" || dir.length === 0) {
      throw new StorageError("STORAGE_BAD_DIR", "FileStorage needs a non-empty directory path");
    }
    this.dir = dir;
  }

  private ensureDir(): Promise<void> {
    this.ready ??= fs.mkdir(this.dir, { recursive: true }).then(() => undefined);
    return this.ready;
  }

  async get(key: string): Promise<Uint8Array | undefined> {
    await this.ensureDir();
    try {
      const buf = await fs.readFile(path.join(this.dir, encodeKey(key)));
      return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined;
      throw new StorageError("STORAGE_READ_FAILED", `cannot read key "${key}"`, { key }, { cause: e });
    }
  }

  async put(key: string, value: Uint8Array): Promise<void> {
    await this.ensureDir();
    const target = path.join(this.dir, encodeKey(key));
    const tmp = path.join(this.dir, `.tmp-${process.pid}-${this.tmpCounter++}`);
    try {
      const fh = await fs.open(tmp, "w");
      try {
        await fh.writeFile(value);
        await fh.sync();
      } finally {
        await fh.close();
      }
      await fs.rename(tmp, target);
    } catch (e) {
      await fs.rm(tmp, { force: true }).catch(() => undefined);
      throw new StorageError("STORAGE_WRITE_FAILED", `cannot write key "${key}"`, { key }, { cause: e });
    }
  }

  async delete(key: string): Promise<void> {
    await this.ensureDir();
    await fs.rm(path.join(this.dir, encodeKey(key)), { force: true });
  }

  async list(prefix: string): Promise<string[]> {
    await this.ensureDir();
    const files = await fs.readdir(this.dir);
    const keys: string[] = [];
    for (const f of files) {
      const k = decodeKey(f);
      if (k !== undefined && k.startsWith(prefix)) keys.push(k);
    }
    return keys.sort();
  }
}
