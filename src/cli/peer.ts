/**
 * `marmot-harness peer`: run one engine agent behind the peer protocol on stdin/stdout, against
 * WebSocket relays. stdout carries protocol lines only; every log goes to stderr.
 */
import type { Command } from "commander";
import { serveEnginePeerOnStdio } from "../peers/stdio-peer.ts";
import { intOption } from "./options.ts";

export function register(program: Command): void {
  program
    .command("peer")
    .description("serve the peer protocol (marmot-harness-peer-v1, marmot-convergence-node-v1) on stdio with one engine agent")
    .option("--publish-timeout <ms>", "how long to wait for relay OKs", intOption("publish-timeout", 1), 5000)
    .option("--eose-timeout <ms>", "how long catch-up waits for EOSE", intOption("eose-timeout", 1), 5000)
    .action(async (o: { publishTimeout: number; eoseTimeout: number }) => {
      await serveEnginePeerOnStdio({ publishTimeoutMs: o.publishTimeout, eoseTimeoutMs: o.eoseTimeout });
      process.exitCode = 0;
    });
}
