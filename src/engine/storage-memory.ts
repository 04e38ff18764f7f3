/**
 * In-memory EngineStorage: the default store. Values are copied on the way in and out so that a
 * caller mutating a buffer never changes what was stored.
 */
import type { EngineStorage } from "./storage.ts";

export class MemoryStorage implements EngineStorage {
  private readonly map = new Map<string, Uint8Array>();

  async get(key: string): Promise<Uint8Array | undefined> {
    const v = this.map.get(key);
    return v === undefined ? undefined : v.slice();
  }

  async put(key: string, value: Uint8Array): Promise<void> {
    this.map.set(key, value.slice());
  }

  async delete(key: string): Promise<void> {
    this.map.delete(key);
  }

  async list(prefix: string): Promise<string[]> {
    return [...this.map.keys()].filter((k) => k.startsWith(prefix)).sort();
  }

  /** Number of keys held (for tests and reports). */
  get size(): number {
    return this.map.size;
  }
}
