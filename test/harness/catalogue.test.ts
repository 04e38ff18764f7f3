import { describe, expect, it } from "vitest";
import { CATALOGUE, buildCatalogueScenario } from "../../src/scenarios/catalogue/index.ts";
import { runScenario } from "../../src/scenarios/runner.ts";

// Every catalogue scenario at its small size gives the verdict it expects: passes, or fails as it
// should (quirk runs, with the failure the reproduction names; the faithful epoch-churn, on the
// known ts-mls bug).
describe("catalogue (small sizes)", () => {
  for (const entry of CATALOGUE) {
    const expectsFailure = buildCatalogueScenario(entry.name, { size: "small" }).expect === "fail";
    it(`${entry.name} ${expectsFailure ? "fails as it should" : "passes"}`, async () => {
      const s = buildCatalogueScenario(entry.name, { size: "small" });
      const { result } = await runScenario(s, { catalogueName: entry.name });
      expect({ ok: result.ok, verdict: result.verdict, failures: result.failures, notes: result.notes }).toMatchObject({ ok: true, verdict: s.expect ?? "pass" });
      // an expected failure always says why in the notes when the scenario gives a reason
      if (s.expectReason) expect(result.notes).toContain(`expected to fail: ${s.expectReason}`);
    }, 90_000);
  }

  it("bug-tsmls-readd-unmerged-leaves fails on convergence, naming the three re-added members", async () => {
    const { result } = await runScenario(buildCatalogueScenario("bug-tsmls-readd-unmerged-leaves"));
    expect(result.verdict).toBe("fail");
    expect(result.failures.join("\n")).toMatch(/convergence: .*m3, m4, m5 are listed as member\(s\) but do not hold the group/);
    expect(result.notes.join("\n")).toMatch(/expected to fail: ts-mls 2\.0\.0-rc\.10 .*unmerged_leaves/);
  }, 90_000);

  // The faithful epoch-churn is expected to fail on a ts-mls 2.0.0-rc.10 bug (re-adds into blank
  // leaves are refused by the joiners); without its two triggers it must pass.
  it("epoch-churn without re-adds or member self-updates passes", async () => {
    const { result } = await runScenario(buildCatalogueScenario("epoch-churn-150", { size: "small", params: { readds: 0, memberUpdates: 0 } }));
    expect({ verdict: result.verdict, failures: result.failures }).toEqual({ verdict: "pass", failures: [] });
  }, 90_000);

  it("the faithful epoch-churn fails on the re-add bug, and the harness names the members that never joined", async () => {
    const { result } = await runScenario(buildCatalogueScenario("epoch-churn-150", { size: "small" }));
    expect(result.verdict).toBe("fail");
    expect(result.failures.join("\n")).toMatch(/m002, m003, m004 are listed as member\(s\) but do not hold the group|m00[234].* do not hold the group/);
  }, 90_000);
});
