/**
 * `marmot-harness rules [--profile R1] [--json]`: list the compliance rule catalogue.
 */
import type { Command } from "commander";
import { parseProfile } from "../profile.ts";
import { HarnessError } from "../errors.ts";
import { IMPLEMENTED_RULES, NOT_IMPLEMENTED_REASONS, PARTIAL_RULES, RULES, rulesForProfile } from "../checkers/compliance/index.ts";

export function register(program: Command): void {
  program
    .command("rules")
    .description("List the MIP compliance rules the checker knows (digest §9)")
    .option("--profile <profile>", "only rules of this profile (R0, R1, R2)")
    .option("--json", "print JSON instead of a table")
    .action((opts: { profile?: string; json?: boolean }) => {
      let list = [...RULES];
      if (opts.profile !== undefined) {
        try {
          list = rulesForProfile(parseProfile(opts.profile));
        } catch (e) {
          throw new HarnessError("CLI_BAD_PROFILE", (e as Error).message, { profile: opts.profile });
        }
      }
      const status = (id: string): string => (PARTIAL_RULES.has(id) ? "partial" : IMPLEMENTED_RULES.has(id) ? "checked" : "not-implemented");
      if (opts.json) {
        process.stdout.write(JSON.stringify(list.map((r) => ({ ...r, check: status(r.id), ...(NOT_IMPLEMENTED_REASONS.has(r.id) ? { reason: NOT_IMPLEMENTED_REASONS.get(r.id) } : {}), ...(PARTIAL_RULES.has(r.id) ? { notChecked: PARTIAL_RULES.get(r.id) } : {}) })), null, 2) + "\n");
        return;
      }
      const lines = list.map((r) => `${r.id.padEnd(13)} ${r.level.padEnd(8)} ${r.profiles.join("/").padEnd(8)} ${r.input.padEnd(11)} ${status(r.id).padEnd(15)} ${r.section.padEnd(5)} ${r.description}${NOT_IMPLEMENTED_REASONS.has(r.id) ? ` [unchecked: ${NOT_IMPLEMENTED_REASONS.get(r.id) ?? ""}]` : ""}${PARTIAL_RULES.has(r.id) ? ` [partial, not checked: ${PARTIAL_RULES.get(r.id) ?? ""}]` : ""}`);
      process.stdout.write(`${"id".padEnd(13)} ${"level".padEnd(8)} ${"profiles".padEnd(8)} ${"input".padEnd(11)} ${"check".padEnd(15)} ${"sect".padEnd(5)} description\n${lines.join("\n")}\n${list.length} rules\n`);
    });
}
