/**
 * Scenario files: JSON or YAML, validated against the published schema's rules on load.
 * Errors name the file, the step index and the field (`steps[3].members[0]: unknown agent "bobb"`).
 */
import { readFile } from "node:fs/promises";
import { parse as parseYaml } from "yaml";
import { HarnessError } from "../errors.ts";
import type { Scenario } from "./types.ts";
import { validateScenario } from "./validate.ts";

export class ScenarioFileError extends HarnessError {}

/** Parse scenario text. `format` defaults to YAML (a superset of JSON) unless the name ends in .json. */
export function parseScenario(text: string, source = "scenario", format?: "json" | "yaml"): Scenario {
  const fmt = format ?? (source.endsWith(".json") ? "json" : "yaml");
  let value: unknown;
  try {
    value = fmt === "json" ? JSON.parse(text) : parseYaml(text);
  } catch (e) {
    throw new ScenarioFileError("SCENARIO_PARSE", `${source}: not valid ${fmt.toUpperCase()} (${(e as Error).message.split("\n")[0]})`, { source });
  }
  // YAML reads `seed: 7` as a number; a seed is a string everywhere else, so accept integers here.
  if (typeof value === "object" && value !== null && Number.isSafeInteger((value as { seed?: unknown }).seed)) {
    value = { ...(value as Record<string, unknown>), seed: String((value as { seed: number }).seed) };
  }
  return validateScenario(value, source);
}

export async function loadScenarioFile(path: string): Promise<Scenario> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (e) {
    throw new ScenarioFileError("SCENARIO_READ", `cannot read scenario file ${path}: ${(e as Error).message}`, { path });
  }
  return parseScenario(text, path);
}
