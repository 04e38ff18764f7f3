/**
 * NIP-01 filters: validation of what a client sent, and matching against events.
 */
import type { Filter, NostrEvent } from "./messages.ts";

export interface FilterLimits {
  /** Largest `limit` honoured; larger values are clamped. */
  maxLimit: number;
  /** Most values in one ids/authors/kinds/#x list. */
  maxValues: number;
}

const HEX64 = /^[0-9a-f]{64}$/;

function isStringArray(v: unknown): v is string[] {
  return Array.isArray(v) && v.every((x) => typeof x === "string");
}

/** Returns an error text (without prefix) when `f` is not a valid NIP-01 filter, else undefined. */
export function validateFilter(f: unknown, limits: FilterLimits): string | undefined {
  if (typeof f !== "object" || f === null || Array.isArray(f)) return "filter must be a JSON object";
  for (const [key, value] of Object.entries(f)) {
    switch (key) {
      case "ids":
      case "authors":
        if (!isStringArray(value)) return `filter.${key} must be an array of strings`;
        if (value.length > limits.maxValues) return `filter.${key} has more than ${limits.maxValues} values`;
        if (!value.every((x) => HEX64.test(x))) return `filter.${key} values must be 64 lowercase hex characters`;
        break;
      case "kinds":
        if (!Array.isArray(value) || !value.every((x) => Number.isInteger(x) && x >= 0 && x <= 65535)) {
          return "filter.kinds must be an array of integers between 0 and 65535";
        }
        if (value.length > limits.maxValues) return `filter.kinds has more than ${limits.maxValues} values`;
        break;
      case "since":
      case "until":
      case "limit":
        if (!Number.isInteger(value) || (value as number) < 0) return `filter.${key} must be a non-negative integer`;
        break;
      case "search":
        if (typeof value !== "string") return "filter.search must be a string";
        break;
      default:
        if (key.startsWith("#")) {
          if (key.length < 2) return "filter tag key '#' needs a tag name";
          if (!isStringArray(value)) return `filter.${key} must be an array of strings`;
          if (value.length > limits.maxValues) return `filter.${key} has more than ${limits.maxValues} values`;
        }
      // Other keys are unknown extensions: ignored, as most relays do.
    }
  }
  return undefined;
}

/** A filter compiled for fast repeated matching (live delivery). */
export interface CompiledFilter {
  readonly raw: Filter;
  readonly ids?: Set<string>;
  readonly authors?: Set<string>;
  readonly kinds?: Set<number>;
  readonly tags: [string, Set<string>][];
  readonly since?: number;
  readonly until?: number;
  readonly limit?: number;
}

export function compileFilter(f: Filter): CompiledFilter {
  const tags: [string, Set<string>][] = [];
  for (const [key, value] of Object.entries(f)) {
    if (key.startsWith("#") && Array.isArray(value)) tags.push([key.slice(1), new Set(value as string[])]);
  }
  return {
    raw: f,
    ids: f.ids ? new Set(f.ids) : undefined,
    authors: f.authors ? new Set(f.authors) : undefined,
    kinds: f.kinds ? new Set(f.kinds) : undefined,
    tags,
    since: f.since,
    until: f.until,
    limit: f.limit,
  };
}

export function matchCompiled(f: CompiledFilter, e: NostrEvent): boolean {
  if (f.ids && !f.ids.has(e.id)) return false;
  if (f.kinds && !f.kinds.has(e.kind)) return false;
  if (f.authors && !f.authors.has(e.pubkey)) return false;
  if (f.since !== undefined && e.created_at < f.since) return false;
  if (f.until !== undefined && e.created_at > f.until) return false;
  for (const [name, values] of f.tags) {
    let found = false;
    for (const t of e.tags) {
      if (t[0] === name && t.length > 1 && values.has(t[1] as string)) {
        found = true;
        break;
      }
    }
    if (!found) return false;
  }
  return true;
}

export function matchFilter(f: Filter, e: NostrEvent): boolean {
  return matchCompiled(compileFilter(f), e);
}

/** NIP-01 order of results: newest first, and for equal created_at the lowest id first. */
export function compareNewestFirst(a: NostrEvent, b: NostrEvent): number {
  if (a.created_at !== b.created_at) return b.created_at - a.created_at;
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}
