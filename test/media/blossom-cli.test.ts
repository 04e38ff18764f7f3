import { describe, it, expect } from "vitest";
import { spawn, spawnSync } from "node:child_process";
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { generateSecretKey } from "nostr-tools/pure";
import { BlossomClient } from "../../src/blossom/client.ts";
import { createRng } from "../../src/sim/random.ts";

describe("marmot-harness blossom (CLI)", () => {
  it("starts on a free loopback port with a disk store, serves uploads, and stops on SIGTERM", async () => {
    const dir = await mkdtemp(join(tmpdir(), "blossom-cli-"));
    const child = spawn(process.execPath, ["bin/marmot-harness.js", "blossom", "--port", "0", "--dir", dir, "--max-size", "4096"], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    try {
      let out = "";
      const url = await new Promise<string>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no listening line; output: ${out}`)), 60_000);
        child.stdout.on("data", (b: Buffer) => {
          out += b.toString();
          const m = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(out);
          if (m) {
            clearTimeout(timer);
            resolve(m[1]!);
          }
        });
        child.stderr.on("data", (b: Buffer) => (out += b.toString()));
        child.once("exit", (code) => reject(new Error(`exited with ${code}: ${out}`)));
      });
      const c = new BlossomClient(url, { secretKey: generateSecretKey() });
      const data = createRng("cli").bytes(1000);
      const d = await c.upload(data);
      expect(Buffer.from(await c.download(d.sha256)).equals(Buffer.from(data))).toBe(true);
      expect(await readdir(dir)).toContain(d.sha256);
      await expect(c.upload(new Uint8Array(5000))).rejects.toMatchObject({ status: 413 });
    } finally {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
        child.kill("SIGTERM");
        expect(await exited).toBe(0);
      }
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("refuses a bad integer option with a typed error naming it, exit 2, before listening", () => {
    for (const [flag, value] of [["--port", "-1"], ["--max-size", "1.5"], ["--delay-ms", " "]] as const) {
      const r = spawnSync(process.execPath, ["bin/marmot-harness.js", "blossom", flag, value], { encoding: "utf8", timeout: 30_000 });
      expect(r.status).toBe(2);
      expect(r.stderr).toContain(`CLI_BAD_OPTION: ${flag} must be an integer >= 0, got ${JSON.stringify(value)}`);
      expect(r.stdout).not.toMatch(/listening/i);
    }
  });
});
