/**
 * `marmot-harness capture --relay URL -o file.jsonl [--duration S] [--kinds ...]`: record relay
 * traffic as JSONL capture records for later judgement with `check`.
 */
import { createWriteStream } from "node:fs";
import { rm } from "node:fs/promises";
import type { Command } from "commander";
import { captureFromRelay } from "../checkers/compliance/index.ts";
import { CheckCliError, parseKindsOption, parseSecondsOption } from "./check.ts";

interface CaptureOptions {
  relay?: string;
  output?: string;
  kinds?: string;
  since?: string;
  until?: string;
  duration?: string;
}

export function register(program: Command): void {
  program
    .command("capture")
    .description("Record Marmot traffic from a relay into a JSONL capture")
    .requiredOption("--relay <url>", "relay to subscribe to")
    .requiredOption("-o, --output <file>", "JSONL file to write")
    .option("--kinds <list>", "kinds to subscribe to (default: Marmot kinds)")
    .option("--since <unix>", "only events since this time")
    .option("--until <unix>", "only events until this time")
    .option("--duration <seconds>", "keep listening this long (default: stop at EOSE)")
    .action(async (opts: CaptureOptions) => {
      if (opts.relay === undefined || opts.output === undefined) throw new CheckCliError("CLI_USAGE", "--relay and -o are required");
      const out = createWriteStream(opts.output, { flags: "w" });
      const ac = new AbortController();
      const onSigint = (): void => ac.abort();
      process.once("SIGINT", onSigint);
      try {
        const res = await captureFromRelay({
          relay: opts.relay,
          signal: ac.signal,
          onRecord: (r) => out.write(JSON.stringify(r) + "\n"),
          ...(opts.kinds !== undefined ? { kinds: parseKindsOption(opts.kinds) as number[] } : {}),
          ...(opts.since !== undefined ? { since: parseSecondsOption("--since", opts.since) as number } : {}),
          ...(opts.until !== undefined ? { until: parseSecondsOption("--until", opts.until) as number } : {}),
          ...(opts.duration !== undefined ? { durationSecs: parseSecondsOption("--duration", opts.duration) as number } : {}),
        });
        process.stdout.write(`captured ${res.records.length} events from ${opts.relay} (${res.closedReason ?? "done"})\n`);
      } catch (e) {
        // Nothing was captured: do not leave an empty file behind.
        await new Promise<void>((resolve) => out.end(() => resolve()));
        await rm(opts.output, { force: true });
        throw e;
      } finally {
        process.removeListener("SIGINT", onSigint);
        if (!out.writableEnded) await new Promise<void>((resolve) => out.end(() => resolve()));
      }
    });
}
