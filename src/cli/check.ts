/**
 * `marmot-harness check <capture.jsonl> | --relay URL [...]`: judge Marmot traffic rule by rule.
 * Exit code 0 when every MUST rule holds, 1 when one failed, 2 on bad input.
 */
import { writeFile } from "node:fs/promises";
import type { Command } from "commander";
import { readCaptureFile, type CaptureFormatError, type CaptureRecord } from "../capture.ts";
import { HarnessError } from "../errors.ts";
import { parseProfile, type ProtocolProfile } from "../profile.ts";
import {
  captureFromRelay,
  exitCodeFor,
  judge,
  readKeyringFile,
  renderComplianceJson,
  renderComplianceJunit,
  renderComplianceMarkdown,
  type Keyring,
} from "../checkers/compliance/index.ts";

export class CheckCliError extends HarnessError {}

export function parseProfileOption(v: string | undefined): ProtocolProfile | "auto" {
  if (v === undefined || v.toLowerCase() === "auto") return "auto";
  try {
    return parseProfile(v);
  } catch (e) {
    throw new CheckCliError("CLI_BAD_PROFILE", `--profile: ${(e as Error).message} or auto`, { profile: v });
  }
}

export function parseKindsOption(v: string | undefined): number[] | undefined {
  if (v === undefined) return undefined;
  const kinds = v.split(",").map((s) => s.trim()).filter(Boolean).map(Number);
  if (kinds.length === 0 || kinds.some((k) => !Number.isInteger(k) || k < 0 || k > 65535)) {
    throw new CheckCliError("CLI_BAD_KINDS", `--kinds must be a comma-separated list of integers 0..65535, got ${JSON.stringify(v)}`);
  }
  return kinds;
}

export function parseSecondsOption(name: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new CheckCliError("CLI_BAD_NUMBER", `${name} must be a non-negative number, got ${JSON.stringify(v)}`);
  return n;
}

interface CheckOptions {
  keys?: string;
  profile?: string;
  json?: string;
  junit?: string;
  md?: string;
  relay?: string;
  kinds?: string;
  since?: string;
  until?: string;
  duration?: string;
  verifySignatures?: boolean;
  verifier?: string;
  verifyWorkers?: string;
  quiet?: boolean;
}

export function register(program: Command): void {
  program
    .command("check")
    .description("Judge Marmot traffic against the MIP rules (capture file or live relay)")
    .argument("[capture]", "JSONL capture file")
    .option("--keys <keyring.json>", "white-box keyring (group-event keys, recipient secret keys, observations)")
    .option("--profile <profile>", "R0, R1, R2 or auto", "auto")
    .option("--json <file>", "write the JSON report")
    .option("--junit <file>", "write JUnit XML (one testcase per rule)")
    .option("--md <file>", "write the Markdown report")
    .option("--relay <url>", "judge live traffic from this relay instead of a file")
    .option("--kinds <list>", "live: kinds to subscribe to (comma-separated)")
    .option("--since <unix>", "live: only events since this time")
    .option("--until <unix>", "live: only events until this time")
    .option("--duration <seconds>", "live: keep listening this long (default: stop at EOSE)")
    .option("--no-verify-signatures", "skip Schnorr signature checks (ids are still checked)")
    .option("--verifier <kind>", "Schnorr verifier: auto (native libsecp256k1 if built, else WASM, else pure JS), native, wasm or js", "auto")
    .option("--verify-workers <n>", "worker threads for WASM signature checks of captures of 2,000+ events (default: one per core, at most 4; 0 = main thread)")
    .option("-q, --quiet", "print only the summary line")
    .action(async (capture: string | undefined, opts: CheckOptions) => {
      const profile = parseProfileOption(opts.profile);
      const verifier = opts.verifier ?? "auto";
      let verifyWorkers: number | undefined;
      if (opts.verifyWorkers !== undefined) {
        verifyWorkers = Number(opts.verifyWorkers);
        if (!Number.isInteger(verifyWorkers) || verifyWorkers < 0 || verifyWorkers > 64) throw new CheckCliError("CLI_BAD_WORKERS", `--verify-workers must be an integer 0..64 (got ${JSON.stringify(opts.verifyWorkers)})`);
      }
      if (verifier !== "auto" && verifier !== "native" && verifier !== "wasm" && verifier !== "js") throw new CheckCliError("CLI_BAD_VERIFIER", `--verifier must be auto, native, wasm or js (got ${JSON.stringify(verifier)})`);
      let keyring: Keyring | undefined;
      if (opts.keys !== undefined) keyring = await readKeyringFile(opts.keys);
      let records: CaptureRecord[];
      let errors: CaptureFormatError[] = [];
      if (opts.relay !== undefined) {
        if (capture !== undefined) throw new CheckCliError("CLI_USAGE", "give either a capture file or --relay, not both");
        const live = await captureFromRelay({
          relay: opts.relay,
          ...(opts.kinds !== undefined ? { kinds: parseKindsOption(opts.kinds) as number[] } : {}),
          ...(opts.since !== undefined ? { since: parseSecondsOption("--since", opts.since) as number } : {}),
          ...(opts.until !== undefined ? { until: parseSecondsOption("--until", opts.until) as number } : {}),
          ...(opts.duration !== undefined ? { durationSecs: parseSecondsOption("--duration", opts.duration) as number } : {}),
        });
        records = live.records;
      } else {
        if (capture === undefined) throw new CheckCliError("CLI_USAGE", "a capture file or --relay URL is required");
        const parsed = await readCaptureFile(capture);
        records = parsed.records;
        errors = parsed.errors;
      }
      const report = await judge(records, { profile, ...(keyring ? { keyring } : {}), verifySignatures: opts.verifySignatures !== false, signatureVerifier: verifier, ...(verifyWorkers !== undefined ? { verifyWorkers } : {}), captureErrors: errors });
      const md = renderComplianceMarkdown(report);
      if (opts.md !== undefined) await writeFile(opts.md, md);
      if (opts.json !== undefined) await writeFile(opts.json, renderComplianceJson(report) + "\n");
      if (opts.junit !== undefined) await writeFile(opts.junit, renderComplianceJunit(report));
      const c = report.counts;
      const summary = `profile ${report.profile} (detected ${report.detection.profile}); ${report.uniqueEvents} events; ${c.pass} pass, ${c.fail} fail (${report.mandatoryFailures} MUST), ${c["not-applicable"]} n/a, ${c["not-checkable-without-keys"]} need keys, ${c["not-implemented"]} not implemented; ${report.malformed.length} malformed; signatures: ${report.signatureVerifier}${report.verifyWorkers > 0 ? ` on ${report.verifyWorkers} worker threads` : ""}`;
      process.stdout.write(opts.quiet ? summary + "\n" : md + "\n" + summary + "\n");
      let code = exitCodeFor(report);
      if (records.length === 0 && errors.length > 0) code = 2;
      process.exitCode = code;
    });
}
