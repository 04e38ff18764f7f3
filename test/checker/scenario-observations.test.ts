/**
 * Harness runs feed the compliance checker media, group-image and leaf observations
 * (src/history.ts `historyToKeyring`): a media scenario's compliance section judges MIP04-MD-03/05/06,
 * a group-image scenario MIP01-IMG-01/02, every run MIP00-CR-01; a mutated record makes exactly the
 * named rule fail.
 */
import { describe, expect, it } from "vitest";
import { judge, parseKeyring, type ComplianceReport } from "../../src/checkers/compliance/index.ts";
import { historyToCapture, historyToKeyring, type HistoryEntry } from "../../src/history.ts";
import { runScenario, type RunOutcome } from "../../src/scenarios/runner.ts";
import { buildCatalogueScenario } from "../../src/scenarios/catalogue/index.ts";
import { clone, newFailures, verdictOf } from "./helpers.ts";

async function judgeEntries(entries: readonly HistoryEntry[]): Promise<ComplianceReport> {
  return judge(historyToCapture(entries), { profile: "R1", keyring: parseKeyring(historyToKeyring(entries)), verifySignatures: false });
}

/** Flip one base64 character of a recorded blob (keeps it valid base64 of the same length). */
function flipB64(b64: string): string {
  const i = Math.floor(b64.length / 2);
  return b64.slice(0, i) + (b64[i] === "A" ? "B" : "A") + b64.slice(i + 1);
}

describe("scenario runs give the checker media, image and leaf observations", () => {
  let media: RunOutcome;
  let mediaBase: ComplianceReport;

  it("media-basic: the run's compliance section passes MIP04-MD-03/05/06 and MIP00-CR-01", async () => {
    media = await runScenario(buildCatalogueScenario("media-basic", { size: "small", seed: "1" }));
    const c = media.result.compliance;
    expect(c?.failures.filter((f) => f.level !== "SHOULD")).toEqual([]);
    for (const r of ["MIP04-MD-03", "MIP04-MD-05", "MIP04-MD-06", "MIP00-CR-01"]) expect(c?.passed).toContain(r);
    const kr = historyToKeyring(media.history.entries);
    // every fetched attachment is an observation with its bytes
    const obs = kr.observations.filter((o) => o.kind === "media");
    expect(obs.length).toBeGreaterThanOrEqual(4);
    expect(obs.every((o) => o.kind === "media" && typeof o.blob === "string")).toBe(true);
    mediaBase = await judgeEntries(media.history.entries);
    expect(verdictOf(mediaBase, "MIP04-MD-03")).toBe("pass");
  });

  it("a media record with a wrong blob hash (bytes not kept) fails exactly MIP04-MD-06", async () => {
    const entries = clone(media.history.entries);
    const rec = entries.find((e) => e.op === "media" && e.type === "ok");
    if (!rec) throw new Error("no media record");
    rec.data.blobSha256 = "ab".repeat(32);
    delete rec.data.blobB64;
    expect(newFailures(mediaBase, await judgeEntries(entries))).toEqual(["MIP04-MD-06"]);
  });

  it("a media record whose kept blob bytes were changed fails MIP04-MD-03 (no file key opens it) and MD-06", async () => {
    const entries = clone(media.history.entries);
    const rec = entries.find((e) => e.op === "media" && e.type === "ok" && typeof e.data.blobB64 === "string");
    if (!rec) throw new Error("no media record with bytes");
    rec.data.blobB64 = flipB64(String(rec.data.blobB64));
    expect(newFailures(mediaBase, await judgeEntries(entries))).toEqual(["MIP04-MD-03", "MIP04-MD-06"]);
  });

  it("a member whose leaf changed identity without a removal fails exactly MIP00-CR-01", async () => {
    const entries = clone(media.history.entries);
    // the last epoch snapshot of one agent with at least two members: swap two members' leaves
    const rec = [...entries].reverse().find((e) => e.op === "epoch" && Array.isArray(e.data.leaves) && (e.data.leaves as number[]).length >= 2);
    if (!rec) throw new Error("no epoch record with leaves");
    const leaves = rec.data.leaves as number[];
    rec.data.leaves = [leaves[1], leaves[0], ...leaves.slice(2)];
    expect(newFailures(mediaBase, await judgeEntries(entries))).toEqual(["MIP00-CR-01"]);
  });

  it("without leaves in the epoch records MIP00-CR-01 is not judged (nothing invented)", async () => {
    const entries = clone(media.history.entries);
    for (const e of entries) if (e.op === "epoch") delete e.data.leaves;
    expect(verdictOf(await judgeEntries(entries), "MIP00-CR-01")).toBe("not-applicable");
  });

  let image: RunOutcome;
  let imageBase: ComplianceReport;

  it("group-image-lifecycle: the compliance section passes MIP01-IMG-01 and IMG-02", async () => {
    image = await runScenario(buildCatalogueScenario("group-image-lifecycle", { size: "small", seed: "1" }));
    const c = image.result.compliance;
    for (const r of ["MIP01-IMG-01", "MIP01-IMG-02"]) expect(c?.passed).toContain(r);
    imageBase = await judgeEntries(image.history.entries);
    expect(imageBase.findings.filter((f) => f.ruleId.startsWith("MIP01-IMG") && f.verdict === "fail")).toEqual([]);
  });

  it("an image uploaded under another identity fails exactly MIP01-IMG-02", async () => {
    const entries = clone(image.history.entries);
    const rec = entries.find((e) => e.op === "group-image" && e.type === "ok" && e.data.role === "setter" && Number(e.data.groupDataVersion) >= 2);
    if (!rec) throw new Error("no v2 setter record");
    rec.data.uploadPubkey = String(rec.data.uploadPubkey).replace(/^./, (c) => (c === "0" ? "1" : "0"));
    expect(newFailures(imageBase, await judgeEntries(entries))).toEqual(["MIP01-IMG-02"]);
  });

  it("a changed image blob fails exactly MIP01-IMG-01", async () => {
    const entries = clone(image.history.entries);
    const rec = entries.find((e) => e.op === "group-image" && e.type === "ok" && typeof e.data.blobB64 === "string");
    if (!rec) throw new Error("no group-image record with bytes");
    rec.data.blobB64 = flipB64(String(rec.data.blobB64));
    expect(newFailures(imageBase, await judgeEntries(entries))).toEqual(["MIP01-IMG-01"]);
  });
});
