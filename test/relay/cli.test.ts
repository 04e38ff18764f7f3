import { describe, it, expect, vi } from "vitest";
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseLatency } from "../../src/cli/relay.ts";
import { main } from "../../src/cli/main.ts";
import { startRelayServer } from "../../src/simulated-relay/ws-server.ts";
import { openRelay } from "../../src/relays/open.ts";
import { key, plain, sign } from "./helpers.ts";

/** Run the CLI in this process (for verbs that finish), capturing stdout and stderr. */
async function inProcess(args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = "", err = "";
  const log = vi.spyOn(console, "log").mockImplementation((...a: unknown[]) => void (out += a.join(" ") + "\n"));
  const error = vi.spyOn(console, "error").mockImplementation((...a: unknown[]) => void (err += a.join(" ") + "\n"));
  const write = vi.spyOn(process.stderr, "write").mockImplementation((chunk: string | Uint8Array) => ((err += String(chunk)), true));
  try {
    const code = await main(["node", "marmot-harness", ...args]);
    return { code, out, err };
  } finally {
    log.mockRestore();
    error.mockRestore();
    write.mockRestore();
  }
}

function run(args: string[]): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, ["bin/marmot-harness.js", ...args], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "", err = "";
    p.stdout.on("data", (d) => (out += d));
    p.stderr.on("data", (d) => (err += d));
    p.on("close", (code) => resolve({ code, out, err }));
  });
}

function startRelayVerb(args: string[]): Promise<{ proc: ChildProcess; url: string; output: () => string }> {
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, ["bin/marmot-harness.js", "relay", "--port", "0", ...args], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    const t = setTimeout(() => reject(new Error(`relay did not start: ${out}`)), 20_000);
    proc.stdout!.on("data", (d) => {
      out += d;
      const m = /relay listening on (ws:\/\/127\.0\.0\.1:\d+)/.exec(out);
      if (m) {
        clearTimeout(t);
        resolve({ proc, url: m[1] as string, output: () => out });
      }
    });
    proc.stderr!.on("data", (d) => (out += d));
  });
}

function stop(proc: ChildProcess): Promise<number | null> {
  return new Promise((resolve) => {
    proc.on("close", (code) => resolve(code));
    proc.kill("SIGTERM");
  });
}

describe("CLI: relay and relay-check", () => {
  it("`relay` serves on 127.0.0.1; `relay-check <url>` passes against it and writes JSON; SIGTERM stops it", async () => {
    const dir = await mkdtemp(join(tmpdir(), "relay-cli-"));
    const good = sign(key("cli").sk, 445, Math.floor(Date.now() / 1000) - 60, [["h", "cli"]], "from a capture");
    const tampered = { ...plain(sign(key("cli").sk, 1, 1000, [], "x")), content: "tampered" };
    await writeFile(join(dir, "in.jsonl"), [JSON.stringify({ event: good }), JSON.stringify(tampered), "not json"].join("\n") + "\n");
    const { proc, url, output } = await startRelayVerb(["--seed", "cli", "--fault-log", join(dir, "faults.jsonl"), "--latency", "5", "--load", join(dir, "in.jsonl"), "--dump", join(dir, "out.jsonl")]);
    try {
      const r = await inProcess(["relay-check", url, "--json", join(dir, "conf.json"), "--junit", join(dir, "conf.xml"), "--timeout", "3000"]);
      expect(r.code, r.out + r.err).toBe(0);
      expect(r.out).toMatch(/: \d+ passed, 0 failed/);
      const json = JSON.parse(await readFile(join(dir, "conf.json"), "utf8")) as { relays: { failed: number; results: unknown[] }[] };
      expect(json.relays[0]?.failed).toBe(0);
      const junit = await readFile(join(dir, "conf.xml"), "utf8");
      expect(junit).toMatch(new RegExp(`<testsuite name="relay-conformance ws://127\\.0\\.0\\.1:\\d+" tests="${json.relays[0]?.results.length}" failures="0"`));
      expect(junit.match(/<testcase /g)).toHaveLength(json.relays[0]?.results.length ?? -1);
      const faults = (await readFile(join(dir, "faults.jsonl"), "utf8")).trim().split("\n").map((l) => JSON.parse(l) as { fault: string });
      expect(faults[0]?.fault).toBe("latency");
      const q = openRelay(url);
      await q.connect();
      const found: string[] = [];
      await new Promise<void>((resolve) => q.subscribe([{ "#h": ["cli"] }], { onEvent: (e) => found.push(e.id), onEose: resolve }));
      expect(found).toEqual([good.id]);
      await q.close();
    } finally {
      expect(await stop(proc)).toBe(0);
    }
    expect(output()).toMatch(/loaded 1 events from .*in\.jsonl; 1 unreadable lines, 1 refused \(first: invalid: event id does not match/);
    expect(output()).toMatch(/relay stopped: \d+ events accepted/);
    const dumped = (await readFile(join(dir, "out.jsonl"), "utf8")).trim().split("\n").map((l) => (JSON.parse(l) as { event: { id: string } }).event.id);
    expect(dumped).toContain(good.id);
    expect(dumped).not.toContain(tampered.id);
    expect(dumped.length).toBeGreaterThan(10); // relay-check's events too
    await rm(dir, { recursive: true, force: true });
  });

  it("`relay-check` exits 1 when the relay fails checks (a relay refusing every publish)", async () => {
    const server = await startRelayServer();
    server.nemesis.refusePublish({ message: "blocked: no" });
    try {
      // Two relays side by side: the in-memory one passes, the refusing one fails.
      const r = await run(["relay-check", "memory", server.url, "--only", "publish-ok,h-query-445", "--timeout", "1000"]);
      expect(r.code).toBe(1);
      expect(r.out).toMatch(/\| Check \| in-memory \| ws:\/\/127\.0\.0\.1:\d+ \|/);
      expect(r.out).toMatch(/\| pass \| \*\*FAIL\*\*: OK false "blocked: no" \|/);
      expect(r.out).toMatch(/in-memory: 2 passed, 0 failed/);
    } finally {
      await server.close();
    }
  });

  it("bad options and URLs are usage errors (exit 2) naming what was wrong", async () => {
    const a = await inProcess(["relay", "--port", "-3"]);
    expect(a.code).toBe(2);
    expect(a.err).toMatch(/--port must be an integer/);
    const b = await inProcess(["relay", "--drop", "1.5"]);
    expect(b.code).toBe(2);
    expect(b.err).toMatch(/--drop must be a probability/);
    const c = await inProcess(["relay-check", "http://example.invalid"]);
    expect(c.code).toBe(2);
    expect(c.err).toMatch(/BAD_RELAY_URL/);
  });

  it("parses latency distributions", () => {
    expect(parseLatency("40")).toEqual({ kind: "fixed", ms: 40 });
    expect(parseLatency("20-200")).toEqual({ kind: "uniform", minMs: 20, maxMs: 200 });
    expect(parseLatency("exp:80")).toEqual({ kind: "exponential", meanMs: 80 });
    expect(parseLatency("lognormal:40:0.8")).toEqual({ kind: "lognormal", medianMs: 40, sigma: 0.8 });
    expect(() => parseLatency("200-20")).toThrow(/--latency/);
    expect(() => parseLatency("fast")).toThrow(/--latency/);
  });
});
