import { beforeEach, afterEach } from "vitest";
import { BlossomServer } from "../../src/blossom/server.ts";

/** Starts a fresh Blossom server on 127.0.0.1 before each test of the calling describe, and stops it after; returns the current one. */
export function blossomServerPerTest(): () => BlossomServer {
  let server: BlossomServer | undefined;
  beforeEach(async () => {
    server = new BlossomServer();
    await server.start();
  });
  afterEach(async () => {
    await server?.stop();
  });
  return () => {
    if (!server) throw new Error("the Blossom server is only available inside a test");
    return server;
  };
}
