/**
 * Stories that exist only under R1 are reported not applicable under R0 (neither passed nor failed),
 * with the reason, in the result, the JUnit XML and the exit code.
 */
import { describe, expect, it } from "vitest";
import { CATALOGUE, buildCatalogueScenario } from "../../src/scenarios/catalogue/index.ts";
import { renderJunitXml } from "../../src/report/junit.ts";
import { exitCodeFor } from "../../src/report/run-set.ts";
import type { RunReport } from "../../src/report/types.ts";
import { scenario } from "../../src/scenarios/builder.ts";
import { runScenario } from "../../src/scenarios/runner.ts";
import { validateScenario } from "../../src/scenarios/validate.ts";

const R1_ONLY = ["bug-selfremove-capability-mismatch", "bug-selfremove-capability-mismatch-fixed", "bug-only-443-keypackages", "bug-only-443-keypackages-fixed"];

describe("R1-only stories under R0", () => {
  it("the catalogue declares its R1-only stories in their data, with a reason", () => {
    for (const e of CATALOGUE) {
      const s = e.build(e.small);
      if (R1_ONLY.includes(e.name)) {
        expect(s.profiles, e.name).toEqual(["R1"]);
        expect(s.profileReason, e.name).toMatch(/R0/);
      }
    }
    // the ones that work under both say nothing
    expect(buildCatalogueScenario("invite-basic").profiles).toBeUndefined();
  });

  it("a run under R0 is not-applicable with the reason, runs nothing, and counts as expected", async () => {
    for (const name of ["bug-selfremove-capability-mismatch", "bug-only-443-keypackages-fixed"]) {
      const s = { ...buildCatalogueScenario(name), profile: "R0" as const };
      const { result, history } = await runScenario(s);
      expect(result.verdict, name).toBe("not-applicable");
      expect(result.ok, name).toBe(true);
      expect(result.steps).toEqual([]);
      expect(result.notes.join(" ")).toMatch(/not applicable under R0: the story applies to R1 only \(.*R0/);
      expect(history.entries.some((e) => e.op === "not-applicable")).toBe(true);
      expect(history.entries.some((e) => e.op === "commit" || e.op === "publish")).toBe(false);
      const report: RunReport = { tool: "marmot-harness", version: "0", startedAt: "x", finishedAt: "y", profile: "R0", results: [result] };
      expect(exitCodeFor(report)).toBe(0);
      const xml = renderJunitXml(report);
      expect(xml).toMatch(/<skipped message="not applicable: not applicable under R0/);
      expect(xml).not.toMatch(/<failure/);
    }
  }, 60_000);

  it("under R1 the same stories run as before", async () => {
    const { result } = await runScenario(buildCatalogueScenario("bug-only-443-keypackages"));
    expect(result.verdict).toBe("fail");
    expect(result.ok).toBe(true);
  }, 60_000);

  it("scenario files take profiles/profileReason, and bad values are refused naming the field", () => {
    const ok = scenario("x", "y").relay("r1").agent("a", { relays: ["r1"] }).createGroup("a", "g").onlyProfiles(["R1"], "SelfRemove").build();
    expect(ok.profiles).toEqual(["R1"]);
    expect(() => validateScenario({ ...ok, profiles: ["R9"] })).toThrow(/profiles/);
    expect(() => validateScenario({ ...ok, profiles: [] })).toThrow(/profiles/);
  });
});
