/**
 * `marmot-harness matrix`: run scenarios with each role played by each available implementation
 * in turn (the rest by the in-process engine) and write a who-works-with-whom table
 * (matrix.md + matrix.json).
 */
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Command } from "commander";
import { HarnessError } from "../errors.ts";
import { implementationStatus } from "../peers/implementations.ts";
import { ROLES, matrixMarkdown, runMatrix, type Role, type ScenarioRunnerFn } from "../peers/matrix.ts";
import { loadScenarioFile } from "../scenarios/loader.ts";
import { startLocalRelays } from "../scenarios/relay-backends.ts";
import { runScenario, type RunOptions } from "../scenarios/runner.ts";
import type { Scenario } from "../scenarios/types.ts";

export class MatrixCliError extends HarnessError {}

const runWithRunner: ScenarioRunnerFn = async (scenario, o) => {
  // The agent factory hook lets the runner build out-of-process agents.
  const opts: RunOptions = { relayUrls: o.relayUrls, workDir: o.workDir, agentFactory: o.agentFactory, ...(o.relayFactory ? { relayFactory: o.relayFactory } : {}) };
  const out = await runScenario(scenario, opts);
  return { verdict: out.result.verdict, ok: out.result.ok, failures: out.result.failures, history: out.history.entries };
};

export function register(program: Command): void {
  program
    .command("matrix")
    .description("interop matrix: each role (creator, invitee, sender, remover, offline member) played by each implementation in turn")
    .option("--scenario <names...>", "catalogue scenarios (small parameters)", ["invite-basic"])
    .option("--file <paths...>", "scenario files (JSON/YAML) instead of catalogue names")
    .option("--impl <ids...>", "implementations to try (default: all known; unavailable ones are listed as skipped)")
    .option("--roles <roles...>", `roles to assign (${ROLES.join(", ")})`)
    .option("--relay <urls...>", "use these relays (one per scenario relay) instead of starting local ones")
    .option("--out <dir>", "where to write matrix.md and matrix.json", "reports/matrix")
    .option("--list", "list implementations and whether they are available here, then exit")
    .action(async (o: { scenario: string[]; file?: string[]; impl?: string[]; roles?: string[]; relay?: string[]; out: string; list?: boolean }) => {
      if (o.list) {
        for (const s of implementationStatus()) console.log(`${s.available ? "available  " : "skipped    "} ${s.id.padEnd(12)} ${s.title}${s.skipReason ? ` — ${s.skipReason}` : ""}`);
        return;
      }
      const roles = (o.roles ?? [...ROLES]).map((r) => {
        if (!(ROLES as readonly string[]).includes(r)) throw new MatrixCliError("CLI_BAD_OPTION", `unknown role "${r}" (known: ${ROLES.join(", ")})`);
        return r as Role;
      });
      let scenarios: Scenario[];
      if (o.file?.length) scenarios = await Promise.all(o.file.map((f) => loadScenarioFile(f)));
      else {
        const { buildCatalogueScenario } = await import("../scenarios/catalogue/index.ts");
        scenarios = o.scenario.map((n) => buildCatalogueScenario(n, { size: "small" }));
      }
      const workDir = await mkdtemp(join(tmpdir(), "marmot-harness-matrix-"));
      try {
        const result = await runMatrix({
          scenarios,
          roles,
          run: runWithRunner,
          workDir,
          ...(o.impl ? { implementations: o.impl } : {}),
          // Without --relay, each cell gets the harness relay over WebSocket on 127.0.0.1 (faults included).
          ...(o.relay ? { relayUrls: o.relay } : { startRelays: (s: Scenario) => startLocalRelays(s) }),
          onCell: (c) => console.error(`${c.scenario} ${c.role}${c.agent ? `(${c.agent})` : ""} ${c.implementation}: ${c.verdict}${c.verdict === "pass" ? "" : ` — ${c.message}`}`),
        });
        await mkdir(o.out, { recursive: true });
        await writeFile(join(o.out, "matrix.json"), JSON.stringify(result, null, 2) + "\n");
        const md = matrixMarkdown(result);
        await writeFile(join(o.out, "matrix.md"), md);
        console.log(md);
        process.exitCode = result.cells.some((c) => c.verdict === "fail" || c.verdict === "error") ? 1 : 0;
      } finally {
        await rm(workDir, { recursive: true, force: true });
      }
    });
}
