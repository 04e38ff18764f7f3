import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdtempSync, readFileSync, writeFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import WebSocket from "ws";
import { main } from "../../src/cli/main.ts";
import { startRelayServer, type RelayServer } from "../../src/simulated-relay/ws-server.ts";
import { readCaptureFile } from "../../src/capture.ts";
import { FIXTURES, loadFixture } from "./helpers.ts";

const dir = mkdtempSync(path.join(tmpdir(), "mh-checker-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function run(args: string[]): Promise<{ code: number; out: string }> {
  const chunks: string[] = [];
  const orig = process.stdout.write.bind(process.stdout);
  const origErr = console.error;
  (process.stdout as unknown as { write: (s: string) => boolean }).write = (s: string) => {
    chunks.push(String(s));
    return true;
  };
  console.error = (...a: unknown[]) => chunks.push(a.map(String).join(" "));
  process.exitCode = undefined;
  try {
    const code = await main(["node", "marmot-harness", ...args]);
    return { code, out: chunks.join("") };
  } finally {
    (process.stdout as unknown as { write: typeof orig }).write = orig;
    console.error = origErr;
    process.exitCode = undefined;
  }
}

describe("CLI: rules, check, capture", () => {
  it("rules lists the catalogue, filtered by profile, as text or JSON", async () => {
    const all = await run(["rules", "--json"]);
    expect(all.code).toBe(0);
    expect((JSON.parse(all.out) as unknown[]).length).toBe(114);
    const r0 = await run(["rules", "--profile", "R0", "--json"]);
    const ids = (JSON.parse(r0.out) as { id: string; profiles: string[] }[]);
    expect(ids.every((r) => r.profiles.includes("R0"))).toBe(true);
    expect(ids.some((r) => r.id === "MIP03-GM-05")).toBe(true);
    expect((await run(["rules", "--profile", "R9"])).code).toBe(2);
  });

  it("check exits 0 on the engine fixture and writes JSON, JUnit and Markdown", async () => {
    const json = path.join(dir, "r.json");
    const junit = path.join(dir, "r.xml");
    const md = path.join(dir, "r.md");
    const res = await run(["check", path.join(FIXTURES, "engine-r1.jsonl"), "--keys", path.join(FIXTURES, "engine-r1.keyring.json"), "--json", json, "--junit", junit, "--md", md, "-q"]);
    expect(res.code).toBe(0);
    const report = JSON.parse(readFileSync(json, "utf8")) as { profile: string; findings: { ruleId: string; verdict: string; description: string }[] };
    expect(report.profile).toBe("R1");
    expect(report.findings.find((f) => f.ruleId === "MIP03-GM-04")?.verdict).toBe("pass");
    const xml = readFileSync(junit, "utf8");
    expect((xml.match(/<testcase /g) ?? []).length).toBe(report.findings.length);
    expect(xml).not.toContain("<failure");
    expect(readFileSync(md, "utf8")).toContain("| MIP03-GM-04 | MUST | pass |");
  });

  it("check exits 1 on the marmot-ts capture (MUST failures) and the JUnit carries failures", async () => {
    const junit = path.join(dir, "mts.xml");
    const res = await run(["check", path.join(FIXTURES, "marmot-ts-0.5.1.jsonl"), "--keys", path.join(FIXTURES, "marmot-ts-0.5.1.keyring.json"), "--profile", "R1", "--junit", junit]);
    expect(res.code).toBe(1);
    expect(res.out).toContain("MIP00-KP-07");
    expect(readFileSync(junit, "utf8")).toMatch(/<failure type="mandatory"/);
  });

  it("check exits 2 on bad input: missing file, bad keyring, bad profile, only garbage lines", async () => {
    expect((await run(["check", path.join(dir, "nope.jsonl")])).code).toBe(2);
    const badKeys = path.join(dir, "bad-keys.json");
    writeFileSync(badKeys, JSON.stringify({ groupEventKeys: [{ nostrGroupId: "zz", epoch: 0, key: "00" }] }));
    const r = await run(["check", path.join(FIXTURES, "engine-r1.jsonl"), "--keys", badKeys]);
    expect(r.code).toBe(2);
    expect(r.out).toContain("KEYRING_FORMAT");
    expect((await run(["check", path.join(FIXTURES, "engine-r1.jsonl"), "--profile", "R7"])).code).toBe(2);
    const garbage = path.join(dir, "garbage.jsonl");
    writeFileSync(garbage, "{not json\n[1,2]\n");
    expect((await run(["check", garbage, "-q"])).code).toBe(2);
    expect((await run(["check"])).code).toBe(2);
  });
});

describe("live relay input (real relay on 127.0.0.1)", () => {
  let server: RelayServer;
  const fx = loadFixture("engine-r1");
  beforeAll(async () => {
    server = await startRelayServer({});
    const ws = new WebSocket(server.url, { perMessageDeflate: false });
    await new Promise<void>((resolve, reject) => {
      ws.once("open", () => resolve());
      ws.once("error", reject);
    });
    let oks = 0;
    const done = new Promise<void>((resolve) => {
      ws.on("message", (d) => {
        const m = JSON.parse(d.toString()) as unknown[];
        if (m[0] === "OK" && ++oks === fx.records.length) resolve();
      });
    });
    for (const r of fx.records) ws.send(JSON.stringify(["EVENT", r.event]));
    await done;
    ws.close();
  });
  afterAll(async () => {
    await server.close();
  });

  it("capture --relay records the relay's events; check --relay judges them", async () => {
    const out = path.join(dir, "live.jsonl");
    const cap = await run(["capture", "--relay", server.url, "-o", out]);
    expect(cap.code).toBe(0);
    const parsed = await readCaptureFile(out);
    expect(parsed.errors).toEqual([]);
    // The relay keeps only the newest 30443 per (author, d): rotated KeyPackages replace the consumed ones.
    const ids = new Set(parsed.records.map((r) => r.event.id));
    const all = new Set(fx.records.map((r) => r.event.id));
    expect([...ids].every((id) => all.has(id))).toBe(true);
    for (const r of fx.records) if (r.event.kind === 445 || r.event.kind === 1059) expect(ids.has(r.event.id)).toBe(true);
    expect(parsed.records.every((r) => r.relay === server.url && typeof r.seenAt === "number")).toBe(true);
    const json = path.join(dir, "live.json");
    const res = await run(["check", "--relay", server.url, "--kinds", "445,30443,10051,1059", "--json", json, "-q"]);
    expect(res.code).toBe(0);
    const report = JSON.parse(readFileSync(json, "utf8")) as { uniqueEvents: number; findings: { ruleId: string; verdict: string }[] };
    expect(report.uniqueEvents).toBe(parsed.records.length);
    expect(report.findings.find((f) => f.ruleId === "MIP03-GM-02")?.verdict).toBe("pass");
  });

  it("capture --duration keeps the subscription open for the window and records what arrives", async () => {
    const out = path.join(dir, "window.jsonl");
    const t0 = Date.now();
    const cap = await run(["capture", "--relay", server.url, "-o", out, "--duration", "0.4", "--kinds", "445"]);
    expect(cap.code).toBe(0);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(350);
    const parsed = await readCaptureFile(out);
    expect(parsed.records.length).toBe(fx.records.filter((r) => r.event.kind === 445).length);
    expect(parsed.records.every((r) => r.event.kind === 445)).toBe(true);
  });

  it("a relay that is not listening is bad input (exit 2)", async () => {
    expect((await run(["check", "--relay", "ws://127.0.0.1:9", "-q"])).code).toBe(2);
  });
});
