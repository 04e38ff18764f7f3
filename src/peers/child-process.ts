/**
 * Process plumbing shared by the peer adapters: where a foreign program comes from (an
 * environment variable naming an executable, with the reason when it cannot be used), one-shot
 * commands with a timeout whose output is collected (White Noise's `wn --json`), and the typed
 * refusal for a command an implementation has no equivalent of. Long-lived peers that speak
 * the JSON-line protocol go through PeerProcess (process.ts).
 */
import { spawn } from "node:child_process";
import { accessSync, constants } from "node:fs";
import { PeerCommandError } from "./process.ts";

export function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * Why the program named by `variable` cannot be used (undefined when it can): the variable is
 * unset, or does not name an executable file. `what` says what it should point at.
 */
export function executableSkipReason(env: NodeJS.ProcessEnv, variable: string, what: string): string | undefined {
  const p = env[variable];
  if (!p) return `${variable} is not set (path to ${what})`;
  if (!isExecutable(p)) return `${variable}=${p} is not an executable file`;
  return undefined;
}

export interface CommandResult {
  /** Exit code (null when killed by a signal or when it could not start). */
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
  /** Set when the program could not be started (ENOENT, EACCES...). */
  spawnError?: string;
}

/** Run a program to completion (stdin closed), collecting its output; SIGKILL after `timeoutMs`. */
export function runCommand(command: string, args: readonly string[], o: { env?: NodeJS.ProcessEnv; timeoutMs: number; cwd?: string }): Promise<CommandResult> {
  return new Promise((resolve) => {
    const child = spawn(command, args, { env: o.env ?? process.env, stdio: ["ignore", "pipe", "pipe"], ...(o.cwd ? { cwd: o.cwd } : {}) });
    let stdout = "";
    let stderr = "";
    let timedOut = false;
    let spawnError: string | undefined;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill("SIGKILL");
    }, o.timeoutMs);
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.on("error", (e) => (spawnError = e.message));
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, timedOut, ...(spawnError ? { spawnError } : {}) });
    });
  });
}

/** The typed refusal of a command an implementation has no equivalent of (PEER_UNSUPPORTED). */
export function unsupportedCommand(peer: string, command: string, message: string): PeerCommandError {
  return new PeerCommandError(peer, command, { code: "PEER_UNSUPPORTED", category: "expected_refusal", retryable: false, message });
}
