/**
 * The CLI. Each verb lives in its own module under src/cli/ and registers itself here.
 */
import { Command, CommanderError } from "commander";
import { register as registerRun } from "./run.ts";
import { register as registerBlossom } from "./blossom.ts";
import { register as registerPeer } from "./peer.ts";
import { register as registerMatrix } from "./matrix.ts";
import { register as registerCheck } from "./check.ts";
import { register as registerCapture } from "./capture.ts";
import { register as registerRules } from "./rules.ts";
import { register as registerRelay } from "./relay.ts";

export type VerbRegistrar = (program: Command) => void;

/** Verb modules add themselves to this list (imported below). */
const registrars: VerbRegistrar[] = [registerBlossom, registerPeer, registerMatrix, registerCheck, registerCapture, registerRules, registerRun, registerRelay];

export function buildProgram(): Command {
  const program = new Command();
  program
    .name("marmot-harness")
    .description("Interop test harness and simulator for Marmot (MLS over Nostr)")
    .version("0.1.0")
    .exitOverride();
  for (const register of registrars) register(program);
  return program;
}

/** Runs the CLI and returns the process exit code (0 ok, 1 failures found, 2 usage or input error). */
export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
    return typeof process.exitCode === "number" ? process.exitCode : 0;
  } catch (e) {
    if (e instanceof CommanderError) {
      return e.exitCode === 0 ? 0 : 2;
    }
    console.error(e instanceof Error ? e.message : String(e));
    return 2;
  }
}
