import { readFile } from "node:fs/promises";
import { describe, expect, it } from "vitest";
import { scenario } from "../../src/scenarios/builder.ts";
import { parseScenario } from "../../src/scenarios/loader.ts";
import { ScenarioValidationError, scenarioJsonSchema, validateScenario } from "../../src/scenarios/validate.ts";
import { CATALOGUE } from "../../src/scenarios/catalogue/index.ts";

const GOOD_YAML = `
name: yaml-basic
description: loaded from YAML
seed: "7"
relays:
  - name: r1
agents:
  - { name: alice, relays: [r1] }
  - { name: bob, relays: [r1], quirks: [trustFirstEose] }
steps:
  - { type: create-group, agent: alice, group: g }
  - { type: invite, agent: alice, group: g, members: [bob] }
  - { type: send, agent: bob, group: g, text: hi }
  - { type: assert, group: g, epoch: 1, members: [alice, bob] }
`;

function errorOf(f: () => unknown): ScenarioValidationError {
  try {
    f();
  } catch (e) {
    if (e instanceof ScenarioValidationError) return e;
    throw e;
  }
  throw new Error("expected a ScenarioValidationError");
}

describe("scenario files", () => {
  it("loads a valid YAML scenario", () => {
    const s = parseScenario(GOOD_YAML, "basic.yaml");
    expect(s.steps).toHaveLength(4);
    expect(s.agents[1]?.quirks).toEqual(["trustFirstEose"]);
  });

  it("reads an unquoted integer seed as the same string seed", () => {
    const s = parseScenario(GOOD_YAML.replace('seed: "7"', "seed: 7"), "numeric-seed.yaml");
    expect(s.seed).toBe("7");
    expect(() => parseScenario(GOOD_YAML.replace('seed: "7"', "seed: 7.5"), "fraction.yaml")).toThrow(/seed/);
  });

  it("names the step index and field of a bad member reference", () => {
    const e = errorOf(() => parseScenario(GOOD_YAML.replace("members: [bob] }", "members: [bobb] }"), "bad.yaml"));
    expect(e.code).toBe("SCENARIO_INVALID");
    expect(e.path).toBe("steps[1].members[0]");
    expect(e.message).toContain('unknown agent "bobb"');
    expect(e.message).toContain("bad.yaml");
  });

  it("names the field of a wrongly typed value and an unknown step type", () => {
    const bad = JSON.parse(JSON.stringify(parseScenario(GOOD_YAML, "x.yaml"))) as Record<string, unknown> & { steps: Record<string, unknown>[] };
    (bad.steps[3] as Record<string, unknown>).epoch = "one";
    (bad.steps[2] as Record<string, unknown>).type = "shout";
    const e = errorOf(() => validateScenario(bad, "x.json"));
    const paths = e.problems.map((p) => p.path);
    expect(paths).toContain("steps[3].epoch");
    expect(paths).toContain("steps[2].type");
    expect(e.problems.find((p) => p.path === "steps[3].epoch")?.message).toMatch(/integer/);
  });

  it("rejects a group used before it is created, unknown fields, unknown quirks and missing fields", () => {
    const e = errorOf(() =>
      validateScenario({
        name: "x",
        description: "",
        seed: "1",
        relays: [{ name: "r1" }],
        agents: [{ name: "a", relays: ["r1"], quirks: ["nope"] }],
        steps: [{ type: "send", agent: "a", group: "g", text: "hi", colour: "red" }, { type: "invite", agent: "a", group: "g" }],
      }),
    );
    const paths = e.problems.map((p) => p.path);
    expect(paths).toEqual(expect.arrayContaining(["agents[0].quirks[0]", "steps[0].group", "steps[0].colour", "steps[1].members"]));
  });

  it("rejects JSON that does not parse with a clear error", () => {
    expect(() => parseScenario("{ nope", "broken.json")).toThrow(/SCENARIO_PARSE: broken.json: not valid JSON/);
  });

  it("the builder validates with the same rules", () => {
    expect(() => scenario("b", "d").relay("r1").agent("a", { relays: ["r1"] }).invite("a", "g", ["a"]).build()).toThrow(/steps\[0\]\.group/);
  });

  it("the published schema.json is the generated schema", async () => {
    const text = await readFile(new URL("../../src/scenarios/schema.json", import.meta.url), "utf8");
    expect(JSON.parse(text)).toEqual(scenarioJsonSchema());
  });

  it("every catalogue scenario validates at both sizes", () => {
    for (const e of CATALOGUE) {
      expect(() => e.build(e.small)).not.toThrow();
      expect(() => e.build(e.defaults)).not.toThrow();
    }
  });
});
