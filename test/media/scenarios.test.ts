import { describe, it, expect } from "vitest";
import { spawn, spawnSync } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Agent } from "../../src/agents/types.ts";
import { buildCatalogueScenario } from "../../src/scenarios/catalogue/index.ts";
import { scenario } from "../../src/scenarios/builder.ts";
import { runScenario } from "../../src/scenarios/runner.ts";
import { validateScenario } from "../../src/scenarios/validate.ts";
import { EngineAgent } from "../../src/agents/engine-agent.ts";
import type { HistoryEntry } from "../../src/history.ts";
import { createEngine } from "../../src/engine/engine.ts";
import { MemoryStorage } from "../../src/engine/storage-memory.ts";
import { BlossomServer } from "../../src/blossom/server.ts";
import { historyDigest, historyToCapture, historyToKeyring } from "../../src/history.ts";
import { judge, parseKeyring } from "../../src/checkers/compliance/index.ts";

/** The verdicts of the media rules when the run's history is judged white-box (as the runner does). */
async function mediaRuleVerdicts(h: { entries: readonly HistoryEntry[] }): Promise<Record<string, string>> {
  const keyring = parseKeyring(historyToKeyring(h.entries), "run keyring");
  const report = await judge(historyToCapture(h.entries), { profile: "R1", keyring, verifySignatures: false });
  return Object.fromEntries(report.findings.filter((f) => /^MIP04-MD|^MIP01-IMG/.test(f.ruleId)).map((f) => [f.ruleId, f.verdict]));
}

function entries(h: { entries: readonly HistoryEntry[] }, op: string, actor?: string): HistoryEntry[] {
  return h.entries.filter((e) => e.op === op && (actor === undefined || e.actor === actor));
}

describe("media scenarios in the catalogue", () => {
  it("media-offline-fetch: carol fetches the earlier epoch's file after catching up, with the retained exporter", async () => {
    const { result, history } = await runScenario(buildCatalogueScenario("media-offline-fetch", { size: "small" }), { catalogueName: "media-offline-fetch" });
    expect(result.failures).toEqual([]);
    expect(result.ok).toBe(true);
    const carol = entries(history, "media", "carol");
    expect(carol.map((e) => e.type)).toEqual(["ok", "ok"]);
    const before = carol.find((e) => e.data.filename === "before.jpg") as HistoryEntry;
    // fetched after catch-up, several epochs after the message's epoch
    expect(Number(before.data.fetchedAtEpoch)).toBeGreaterThanOrEqual(Number(before.data.epoch) + 2);
    // the blob bytes are kept once for the compliance checker
    expect(entries(history, "media").filter((e) => typeof e.data.blobB64 === "string").length).toBe(2);
    expect(result.checks.find((c) => c.name === "media")?.verdict).toBe("pass");
    // digest §6 rules are judged on the run, with the recorded blobs and media exporters
    const v = await mediaRuleVerdicts(history);
    for (const r of ["MIP04-MD-01", "MIP04-MD-02", "MIP04-MD-03", "MIP04-MD-05", "MIP04-MD-06", "MIP04-MD-08"]) expect(v[r], r).toBe("pass");
  }, 60_000);

  it("media-offline-fetch beyond the engine's 5 retained epochs: the agent kept every media exporter it passed through", async () => {
    const { result, history } = await runScenario(buildCatalogueScenario("media-offline-fetch", { size: "small", params: { epochs: 7 } }));
    expect(result.failures).toEqual([]);
    const before = entries(history, "media", "carol").find((e) => e.data.filename === "before.jpg") as HistoryEntry;
    expect(before.type).toBe("ok");
    expect(Number(before.data.fetchedAtEpoch) - Number(before.data.epoch)).toBeGreaterThanOrEqual(7);
  }, 60_000);

  it("media-corrupt-blob: corrupted, swapped and wrong blobs are detected with typed errors by every receiver", async () => {
    const { result, history } = await runScenario(buildCatalogueScenario("media-corrupt-blob", { size: "small" }), { catalogueName: "media-corrupt-blob" });
    expect(result.failures).toEqual([]);
    const codes = (who: string): string[] => entries(history, "media", who).map((e) => (e.type === "ok" ? "ok" : String(e.data.code)));
    for (const who of ["bob", "carol"]) {
      expect(codes(who).slice(0, 4)).toEqual(["ok", "MEDIA_CIPHERTEXT_HASH_MISMATCH", "MEDIA_CIPHERTEXT_HASH_MISMATCH", "MEDIA_DECRYPT_FAILED"]);
    }
    // every failure names its digest rule
    expect(entries(history, "media").filter((e) => e.type === "fail").every((e) => typeof e.data.rule === "string")).toBe(true);
    expect(entries(history, "media-expected-failure")).toHaveLength(6);
    expect(result.checks.find((c) => c.name === "media")?.message).toMatch(/6 bad attachment\(s\) detected/);
  }, 60_000);

  it("media runs are reproducible: the same seed gives the same structural history digest", async () => {
    const a = await runScenario(buildCatalogueScenario("media-corrupt-blob", { size: "small" }));
    const b = await runScenario(buildCatalogueScenario("media-corrupt-blob", { size: "small" }));
    expect(historyDigest(a.history.entries)).toBe(historyDigest(b.history.entries));
  }, 60_000);

  it("the detection assertion fails when nothing was wrong with the blob", async () => {
    const s = scenario("no-fault", "a good file asserted as bad")
      .relay("r1")
      .agents(["alice", "bob"], { relays: ["r1"] })
      .createGroup("alice", "g")
      .invite("alice", "g", ["bob"])
      .sendMedia("alice", "g", { filename: "fine.jpg", mimeType: "image/jpeg", bytes: 500 })
      .assert("g", { agents: ["alice"], mediaFailed: { bob: "*" } })
      .build();
    const { result } = await runScenario(s);
    expect(result.verdict).toBe("fail");
    expect(result.failures.join("\n")).toMatch(/bob opened its latest attachment/);
  }, 60_000);

  it("clearing the group image deletes its blob, and the cleanup assertion checks it", async () => {
    const s = scenario("clear-image", "")
      .relay("r1")
      .agents(["alice", "bob"], { relays: ["r1"] })
      .createGroup("alice", "g")
      .invite("alice", "g", ["bob"])
      .setGroupImage("alice", "g", { bytes: 700 })
      .assert("g", { agents: ["alice"], groupImageFetchedBy: ["bob"] })
      .setGroupImage("alice", "g", { clear: true })
      .assert("g", { agents: ["alice"], groupImageCleanedUp: true })
      .build();
    const { result, history } = await runScenario(s);
    expect(result.failures).toEqual([]);
    expect(entries(history, "group-image-cleanup", "alice").map((e) => e.type)).toEqual(["ok"]);
    expect(result.steps[4]?.message).toMatch(/image cleared; old blob deleted/);
  }, 60_000);

  it("a wrong-blob imeta on a sender's first upload names a decoy blob, and receivers detect it", async () => {
    const s = scenario("decoy", "")
      .relay("r1")
      .agents(["alice", "bob"], { relays: ["r1"] })
      .createGroup("alice", "g")
      .invite("alice", "g", ["bob"])
      .sendMedia("alice", "g", { filename: "x.jpg", mimeType: "image/jpeg", bytes: 300, wrongBlob: true })
      .assert("g", { agents: ["alice"], mediaFailed: { bob: "MEDIA_DECRYPT_FAILED" } })
      .build();
    const { result, history } = await runScenario(s);
    expect(result.failures).toEqual([]);
    const up = entries(history, "media-upload", "alice")[0] as HistoryEntry;
    expect(String(up.data.url)).not.toContain(String(up.data.blob));
  }, 60_000);

  it("an unexpected media failure fails the media invariant", async () => {
    const s = scenario("unexpected", "the server corrupts a blob and nobody expects it")
      .relay("r1")
      .agents(["alice", "bob"], { relays: ["r1"] })
      .createGroup("alice", "g")
      .invite("alice", "g", ["bob"])
      .blossomFault("corrupt", { target: "all" })
      .sendMedia("alice", "g", { filename: "x.jpg", mimeType: "image/jpeg", bytes: 500 })
      .build();
    const { result } = await runScenario(s);
    expect(result.checks.find((c) => c.name === "media")?.verdict).toBe("fail");
    expect(result.ok).toBe(false);
  }, 60_000);

  it("media-removed-member: the removed member's every media exporter fails on later attachments", async () => {
    const { result, history } = await runScenario(buildCatalogueScenario("media-removed-member", { size: "small" }), { catalogueName: "media-removed-member" });
    expect(result.failures).toEqual([]);
    const probes = entries(history, "media-probe", "carol");
    expect(probes.length).toBe(2);
    for (const p of probes) {
      expect(p.data.outcome).toBe("failed");
      expect(p.data.code).toBe("MEDIA_DECRYPT_FAILED");
      expect(Number(p.data.exportersTried)).toBeGreaterThan(0);
    }
  }, 60_000);

  it("group-image-lifecycle: set (v2), changed to v1 and back, fetched by members, old blobs deleted by their upload identities", async () => {
    const { result, history } = await runScenario(buildCatalogueScenario("group-image-lifecycle", { size: "small" }), { catalogueName: "group-image-lifecycle" });
    expect(result.failures).toEqual([]);
    const bob = entries(history, "group-image", "bob").filter((e) => e.type === "ok");
    expect(bob.map((e) => e.data.scheme)).toEqual(["v2-extract-expand", "v1-direct", "v2-extract-expand"]);
    // carol was offline during the v1 image: after catch-up she fetched only the current one
    expect(entries(history, "group-image", "carol").map((e) => `${e.type}:${String(e.data.scheme)}`)).toEqual(["ok:v2-extract-expand", "ok:v2-extract-expand"]);
    // dave, invited last, fetched the current image when he joined
    expect(entries(history, "group-image", "dave").map((e) => `${e.type}:${String(e.data.imageHash)}`)).toEqual([`ok:${String(entries(history, "group-image", "alice").pop()?.data.imageHash)}`]);
    const cleanups = entries(history, "group-image-cleanup", "alice");
    expect(cleanups.map((e) => e.type)).toEqual(["ok", "ok"]);
    const uploads = entries(history, "group-image-upload", "alice");
    // each old blob was deleted by the identity that uploaded it (v2 upload seed, then v1 image key)
    expect(cleanups.map((e) => e.data.deletedBy)).toEqual([uploads[0]?.data.uploadPubkey, uploads[1]?.data.uploadPubkey]);
    const setter = entries(history, "group-image", "alice");
    expect(setter.every((e) => typeof e.data.uploadPubkey === "string" && typeof e.data.groupData === "string")).toBe(true);
    const v = await mediaRuleVerdicts(history);
    expect(v["MIP01-IMG-01"]).toBe("pass");
    expect(v["MIP01-IMG-02"]).toBe("pass");
  }, 60_000);
});

describe("media steps in a scenario file", () => {
  it("runs a JSON scenario with set-group-image, blossom-fault and media assertions through the CLI", async () => {
    const dir = await mkdtemp(join(tmpdir(), "media-file-"));
    try {
      const file = join(dir, "media.json");
      const steps = [
        { type: "create-group", agent: "alice", group: "g" },
        { type: "invite", agent: "alice", group: "g", members: ["bob"] },
        { type: "set-group-image", agent: "alice", group: "g", bytes: 800 },
        { type: "send", agent: "alice", group: "g", media: { filename: "a.png", mimeType: "image/png", bytes: 600 } },
        { type: "blossom-fault", fault: "missing", target: "all" },
        { type: "send", agent: "alice", group: "g", media: { filename: "b.png", mimeType: "image/png", bytes: 600 } },
        { type: "assert", group: "g", agents: ["alice"], mediaReceived: { bob: 1 }, mediaFailed: { bob: "CLIENT_HTTP_ERROR" }, groupImageFetchedBy: ["bob"] },
        { type: "blossom-fault", fault: "heal" },
      ];
      await writeFile(file, JSON.stringify({ name: "media-file", description: "media steps from a file", seed: "3", relays: [{ name: "r1" }], agents: [{ name: "alice", relays: ["r1"] }, { name: "bob", relays: ["r1"] }], steps }));
      const res = spawnSync(process.execPath, ["bin/marmot-harness.js", "run", "--file", file, "--report", join(dir, "report"), "--no-progress"], { encoding: "utf8", timeout: 90_000 });
      expect(res.stdout + res.stderr).toMatch(/1\/1 scenarios as expected/);
      expect(res.status).toBe(0);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }, 120_000);
});

describe("media scenarios against an external Blossom server", () => {
  it("uses the given server instead of starting one; a scenario with Blossom faults is refused before step 0", async () => {
    const external = new BlossomServer({ host: "127.0.0.1", port: 0 });
    await external.start();
    try {
      const { result } = await runScenario(buildCatalogueScenario("group-image-lifecycle", { size: "small" }), { blossomUrl: external.url });
      expect(result.failures).toEqual([]);
      // the current image is on the external server, the replaced ones were deleted from it
      expect(external.blobs()).toHaveLength(1);
      expect(external.stats.uploads).toBe(3);
      const refused = await runScenario(buildCatalogueScenario("media-corrupt-blob", { size: "small" }), { blossomUrl: external.url });
      expect(refused.result.verdict).toBe("refused");
      expect(refused.result.failures.join("\n")).toMatch(/cannot take faults/);
    } finally {
      await external.stop();
    }
  }, 60_000);
});

describe("run --blossom <url> (CLI)", () => {
  it("sends the media of a catalogue scenario to the given server; a non-http URL is a typed option error", async () => {
    const external = new BlossomServer({ host: "127.0.0.1", port: 0 });
    await external.start();
    const dir = await mkdtemp(join(tmpdir(), "mh-blossom-cli-"));
    try {
      const run = (args: string[]) =>
        new Promise<{ status: number | null; out: string }>((resolve) => {
          const child = spawn(process.execPath, ["bin/marmot-harness.js", "run", ...args, "--report", join(dir, "report"), "--no-progress"], { stdio: ["ignore", "pipe", "pipe"] });
          let out = "";
          child.stdout.on("data", (d: Buffer) => (out += d.toString()));
          child.stderr.on("data", (d: Buffer) => (out += d.toString()));
          child.on("close", (status) => resolve({ status, out }));
        });
      const ok = await run(["media-basic", "--size", "small", "--blossom", external.url]);
      expect(ok.out).toMatch(/1\/1 scenarios as expected/);
      expect(ok.status).toBe(0);
      expect(external.stats.uploads).toBe(2);
      const bad = await run(["media-basic", "--blossom", "ftp://127.0.0.1:1"]);
      expect(bad.status).toBe(2);
      expect(bad.out).toMatch(/--blossom "ftp:\/\/127\.0\.0\.1:1" must be an http:\/\/ or https:\/\/ URL/);
    } finally {
      await external.stop();
      await rm(dir, { recursive: true, force: true });
    }
  }, 120_000);
});

describe("media steps: validation and capabilities", () => {
  const base = {
    name: "v",
    description: "",
    seed: "1",
    relays: [{ name: "r1" }],
    agents: [
      { name: "alice", relays: ["r1"] },
      { name: "bob", relays: ["r1"] },
    ],
  };
  const withSteps = (steps: unknown[]): unknown => ({ ...base, steps: [{ type: "create-group", agent: "alice", group: "g" }, ...steps] });

  it("rejects bad media step fields, naming the step and field", () => {
    expect(() => validateScenario(withSteps([{ type: "blossom-fault", fault: "explode" }]))).toThrow(/steps\[1\]\.fault/);
    expect(() => validateScenario(withSteps([{ type: "blossom-fault", fault: "swap", target: "some" }]))).toThrow(/steps\[1\]\.target/);
    expect(() => validateScenario(withSteps([{ type: "set-group-image", agent: "alice", group: "g", version: 3 }]))).toThrow(/steps\[1\]\.version/);
    expect(() => validateScenario(withSteps([{ type: "set-group-image", agent: "zoe", group: "g" }]))).toThrow(/unknown agent "zoe"/);
    expect(() => validateScenario(withSteps([{ type: "assert", group: "g", mediaFailed: { zoe: "*" } }]))).toThrow(/mediaFailed\.zoe/);
    expect(() => validateScenario(withSteps([{ type: "assert", group: "g", mediaFailed: { bob: 3 } }]))).toThrow(/mediaFailed\.bob/);
    expect(() => validateScenario(withSteps([{ type: "assert", group: "g", cannotDecryptMedia: ["zoe"] }]))).toThrow(/unknown agent "zoe"/);
    expect(() => validateScenario(withSteps([{ type: "send", agent: "alice", group: "g", media: { filename: "a", mimeType: "a/b", bytes: 1, wrongBlob: "yes" } }]))).toThrow(/media\.wrongBlob/);
    expect(() => validateScenario(withSteps([{ type: "send", agent: "alice", group: "g", media: { filename: "a", mimeType: "a/b", bytes: 1, extra: 1 } }]))).toThrow(/media\.extra/);
  });

  it("a blossom fault before any upload fails the step with a typed error", async () => {
    const s = scenario("early-fault", "")
      .relay("r1")
      .agents(["alice"], { relays: ["r1"] })
      .createGroup("alice", "g")
      .blossomFault("swap", { expectError: "BLOSSOM_FAULT_NO_TARGET" })
      .build();
    const { result } = await runScenario(s);
    expect(result.failures).toEqual([]);
    expect(result.steps[1]?.message).toMatch(/failed as expected: BLOSSOM_FAULT_NO_TARGET: .*needs two uploaded attachments/);
  }, 30_000);

  it("is not applicable under R0, and a v2 image story forced onto R0 is refused before step 0", async () => {
    const entry = { ...buildCatalogueScenario("group-image-lifecycle", { size: "small" }), profile: "R0" as const };
    const na = (await runScenario(entry)).result;
    expect(na.verdict).toBe("not-applicable");
    expect(JSON.stringify(na)).toMatch(/cannot hold a v2 group image/);
    // without the profile declaration, the capability check refuses it before step 0
    const { profiles: _p, profileReason: _r, ...forced } = entry;
    const { result } = await runScenario(forced);
    expect(result.verdict).toBe("refused");
    expect(result.failures.join("\n")).toMatch(/agent alice cannot do "group-image-v2"/);
  }, 30_000);

  it("refuses before step 0 when an agent cannot do media", async () => {
    const s = buildCatalogueScenario("group-image-lifecycle", { size: "small" });
    const { result, history } = await runScenario(s, {
      agentFactory: (spec, ctx, d) => {
        if (spec.name !== "bob") return undefined;
        // an engine agent that declares no media capabilities (as a foreign peer without Blossom would)
        const a = new EngineAgent(ctx, { name: spec.name, secretKey: d.secretKey as Uint8Array, relays: d.relays, engineFactory: createEngine, storage: new MemoryStorage(), durable: true });
        const caps = a.capabilities().filter((c) => !["media", "group-image", "media-probe", "media-tamper"].includes(c));
        return Object.assign(Object.create(a) as Agent, { capabilities: () => caps });
      },
    });
    expect(result.verdict).toBe("refused");
    expect(result.failures.join("\n")).toMatch(/agent bob cannot do "media"/);
    expect(history.entries.some((e) => e.op === "step")).toBe(false);
  }, 30_000);
});
