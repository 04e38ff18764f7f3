/**
 * A catalogue entry: a named scenario, built from numeric parameters (e.g. `members`), with the
 * small parameters tests and quick runs use.
 */
import type { Scenario } from "../types.ts";

export type CatalogueParams = Record<string, number>;

export interface CatalogueEntry {
  name: string;
  description: string;
  /** Parameters and their defaults (the full form). */
  defaults: CatalogueParams;
  /** Parameters for quick runs (tests). */
  small: CatalogueParams;
  /** "bug" for interop-bug reproductions, "quirk" for the quirk-on half of a pair, "slow" for long runs. */
  tags: string[];
  build(params?: CatalogueParams, seed?: string): Scenario;
}

/** m001, m002, ... */
export function names(prefix: string, n: number, from = 1): string[] {
  return Array.from({ length: n }, (_, i) => `${prefix}${String(i + from).padStart(3, "0")}`);
}

export function param(p: CatalogueParams | undefined, defaults: CatalogueParams, key: string): number {
  const v = p?.[key] ?? defaults[key];
  if (typeof v !== "number" || !Number.isFinite(v)) throw new RangeError(`parameter ${key} must be a number`);
  return v;
}
