/**
 * Engine storage: a small byte-valued key/value interface. The engine writes everything it
 * needs to restart through it (identity-independent state, groups, retained epochs, KeyPackage
 * private keys). Implementations: in-memory, and a durable directory store.
 */
export interface EngineStorage {
  get(key: string): Promise<Uint8Array | undefined>;
  put(key: string, value: Uint8Array): Promise<void>;
  delete(key: string): Promise<void>;
  /** Keys starting with `prefix`, sorted. */
  list(prefix: string): Promise<string[]>;
}
