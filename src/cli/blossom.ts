/**
 * `marmot-harness blossom`: run the harness's Blossom server on loopback until interrupted.
 */
import type { Command } from "commander";
import { startBlossomServer, type BlossomFaults } from "../blossom/server.ts";
import { DiskBlobStore } from "../blossom/store.ts";
import { intOption } from "./options.ts";

export function register(program: Command): void {
  program
    .command("blossom")
    .description("run a Blossom media server (BUD-01/02, kind 24242 auth) on 127.0.0.1")
    .option("--port <n>", "port to listen on (0 = any free port)", intOption("port"), 3000)
    .option("--host <addr>", "address to bind (loopback only is recommended)", "127.0.0.1")
    .option("--dir <path>", "store blobs in this directory (default: in memory)")
    .option("--public-url <url>", "base of the URLs in blob descriptors")
    .option("--max-size <bytes>", "refuse uploads larger than this with 413", intOption("max-size"))
    .option("--delay-ms <ms>", "delay every response by this many milliseconds", intOption("delay-ms"))
    .option("--require-auth-get", "require a kind 24242 'get' authorization to download")
    .option("--require-auth-list", "require a kind 24242 'list' authorization to list")
    .option("--admin", "serve PUT /_harness/faults and GET /_harness/stats to change faults at runtime")
    .action(async (o: {
      port: number;
      host: string;
      dir?: string;
      publicUrl?: string;
      maxSize?: number;
      delayMs?: number;
      requireAuthGet?: boolean;
      requireAuthList?: boolean;
      admin?: boolean;
    }) => {
      const faults: Partial<BlossomFaults> = {};
      if (o.maxSize !== undefined) faults.maxUploadBytes = o.maxSize;
      if (o.delayMs !== undefined) faults.delayMs = o.delayMs;
      const server = await startBlossomServer({
        host: o.host,
        port: o.port,
        ...(o.dir ? { store: await DiskBlobStore.open(o.dir) } : {}),
        ...(o.publicUrl ? { publicUrl: o.publicUrl } : {}),
        requireAuth: { get: !!o.requireAuthGet, list: !!o.requireAuthList },
        faults,
        adminApi: !!o.admin,
      });
      console.log(`blossom server listening on ${server.url}${o.dir ? ` (blobs in ${o.dir})` : " (memory store)"}`);
      await new Promise<void>((resolve) => {
        const stop = () => {
          process.off("SIGINT", stop);
          process.off("SIGTERM", stop);
          void server.stop().then(resolve);
        };
        process.on("SIGINT", stop);
        process.on("SIGTERM", stop);
      });
      console.log("blossom server stopped");
    });
}
