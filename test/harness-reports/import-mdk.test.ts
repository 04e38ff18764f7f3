import { describe, expect, it } from "vitest";
import { History } from "../../src/history.ts";
import { importMdkVector, judgeMdkVector, listMdkVectorFiles, loadMdkVector, multisetDiff, resolveMdkVectorDir, type ImportedVector } from "../../src/scenarios/import-mdk.ts";
import { validateScenario } from "../../src/scenarios/validate.ts";

const twoClientVector = {
  scenario_name: "t/v1",
  scenario: {
    name: "t/v1",
    spec_version: "2",
    clients: ["alice", "bob"],
    steps: [
      { type: "create_group", creator: "alice", name: "n", invitees: ["bob"], required_features: [], pending: "create" },
      { type: "acknowledge_outbound", client: "alice", publication: "create", outcome: "accepted" },
      { type: "deliver_all" },
      { type: "clear_events", clients: ["alice", "bob"] },
      { type: "send_app_message", sender: "alice", payload: "hi" },
      { type: "send_app_message", sender: "alice", payload: "hi" },
      { type: "deliver_all" },
      { type: "assert", assertion: { mode: "exactly", predicate: { type: "payload_count", client: "bob", payload: "hi", count: 2 } } },
      { type: "assert", assertion: { mode: "resource", metric: "runnable_work", comparison: "equal", value: 0 } },
      { type: "observe", clients: ["alice", "bob"] },
    ],
  },
  expected_outcomes: [
    { type: "pending_resolution", step_index: 1, client: "alice", pending: "create", resolution: "confirmed" },
    { type: "client_state", client: "bob", epoch: 1, member_count: 2, received_payloads: ["hi", "hi"] },
    { type: "group_profile", client: "bob", name: "n", description: "" },
    { type: "clients_converged", clients: ["alice", "bob"], epoch: 1, member_count: 2 },
    { type: "no_pending_work", clients: ["alice", "bob"] },
  ],
};

/** A history shaped like the engine agent's, for the imported scenario's steps. */
function fakeHistory(v: ImportedVector, bobPayloads: string[], bobEpoch = 1): History {
  let t = 0;
  const h = new History({ now: () => t++ });
  h.record("alice", "info", "identity", { pubkey: "pa" });
  h.record("bob", "info", "identity", { pubkey: "pb" });
  v.scenario.steps.forEach((s, i) => {
    h.record("runner", "invoke", "step", { index: i, type: s.type });
    if (s.type === "invite") {
      for (const [who, epoch] of [["alice", 1], ["bob", bobEpoch]] as const) {
        h.record(who, "info", "epoch", { groupId: "G", epoch, members: ["pa", "pb"], epochCommitment: `c${epoch}` });
      }
      h.record("bob", "ok", "decrypt", { eventId: "early", content: "before-window" });
    }
    if (s.type === "send" && s === v.scenario.steps.filter((x) => x.type === "send").at(-1)) {
      for (const p of bobPayloads) h.record("bob", "ok", "decrypt", { eventId: `e${t}`, content: p });
    }
    h.record("runner", "ok", "step", { index: i, type: s.type });
  });
  return h;
}

describe("MDK vector import", () => {
  it("converts IR steps into a valid scenario with a step map", () => {
    const v = importMdkVector(twoClientVector, "t.json", "seed-1");
    expect(() => validateScenario(v.scenario)).not.toThrow();
    expect(v.scenario.name).toBe("mdk:t/v1");
    expect(v.scenario.seed).toBe("seed-1");
    expect(v.scenario.steps.slice(0, 2).map((s) => s.type)).toEqual(["create-group", "invite"]);
    expect(v.steps[0]).toMatchObject({ mdkIndex: 0, mdkType: "create_group", ourSteps: [0, 1] });
    expect(v.steps[1]).toMatchObject({ mdkType: "acknowledge_outbound", how: "implicit" });
    expect(v.unsupported).toEqual([]);
    expect(v.observationWindows).toEqual([{ client: "alice", afterStep: 4 }, { client: "bob", afterStep: 4 }]);
  });

  it("reports MDK-internal expectations as not-applicable, never as passed", () => {
    const v = importMdkVector(twoClientVector, "t.json");
    const checks = judgeMdkVector({ vector: v, history: fakeHistory(v, ["hi", "hi"]).entries });
    const na = checks.filter((c) => c.verdict === "not-applicable").map((c) => c.message);
    expect(na.some((m) => m.includes("pending_resolution"))).toBe(true);
    expect(na.some((m) => m.includes("no_pending_work"))).toBe(true);
    expect(na.some((m) => m.includes("resource runnable_work"))).toBe(true);
    expect(na.some((m) => m.includes("group name"))).toBe(true); // not recorded in this history
    expect(checks.filter((c) => c.verdict === "pass").every((c) => !/pending|resource/.test(c.message))).toBe(true);
  });

  it("passes when the history matches and fails naming the difference when it does not", () => {
    const v = importMdkVector(twoClientVector, "t.json");
    const good = judgeMdkVector({ vector: v, history: fakeHistory(v, ["hi", "hi"]).entries, finalViews: { bob: [{ name: "n" }] } });
    expect(good.filter((c) => c.verdict === "fail")).toEqual([]);
    expect(good.filter((c) => c.verdict === "pass").length).toBe(4);

    const bad = judgeMdkVector({ vector: v, history: fakeHistory(v, ["hi"], 2).entries, finalViews: { bob: [{ name: "m" }] } });
    const msgs = bad.filter((c) => c.verdict === "fail").map((c) => c.message).join("\n");
    expect(msgs).toMatch(/bob decrypted "hi" 1 time\(s\), expected 2/);
    expect(msgs).toMatch(/missing payloads \["hi"\]/);
    expect(msgs).toMatch(/epoch 2, expected 1/);
    expect(msgs).toMatch(/group name "m", expected "n"/);
    expect(msgs).toMatch(/epochs differ/);
  });

  it("judges each group on its own when a vector drives several (in_group)", () => {
    const doc = {
      scenario: {
        name: "two-groups",
        spec_version: "2",
        clients: ["alice", "bob"],
        steps: [
          { type: "in_group", group: "a", action: { type: "create_group", creator: "alice", name: "a", invitees: ["bob"], pending: "ca" } },
          { type: "in_group", group: "b", action: { type: "create_group", creator: "alice", name: "b", invitees: ["bob"], pending: "cb" } },
          { type: "in_group", group: "b", action: { type: "send_app_message", sender: "alice", payload: "x" } },
          { type: "assert", assertion: { mode: "exactly", predicate: { type: "payload_count", client: "bob", payload: "x", count: 0 } } },
        ],
      },
    };
    const v = importMdkVector(doc, "two.json");
    let t = 0;
    const h = new History({ now: () => t++ });
    v.scenario.steps.forEach((s, i) => {
      h.record("runner", "invoke", "step", { index: i });
      if (s.type === "create-group") h.record("alice", "ok", "create-group", { groupId: `G-${s.group}` });
      if (s.type === "send") h.record("bob", "ok", "decrypt", { groupId: "G-b", content: "x" });
      h.record("runner", "ok", "step", { index: i });
    });
    // The assertion sits at the top level, so it is about group "g"... which does not exist: no filter.
    expect(judgeMdkVector({ vector: v, history: h.entries })[0]?.verdict).toBe("fail");
    // Inside group "a", bob decrypted nothing.
    const inA = { ...v, expectations: [{ ...(v.expectations[0] as Extract<(typeof v.expectations)[number], { kind: "payload-count" }>), group: "a" }] };
    expect(judgeMdkVector({ vector: inA, history: h.entries })[0]?.verdict).toBe("pass");
    const inB = { ...v, expectations: [{ ...(v.expectations[0] as Extract<(typeof v.expectations)[number], { kind: "payload-count" }>), group: "b" }] };
    expect(judgeMdkVector({ vector: inB, history: h.entries })[0]?.verdict).toBe("fail");
  });

  it("compares payloads as a multiset", () => {
    expect(multisetDiff(["a", "b", "a"], ["b", "a", "a"])).toEqual({ missing: [], unexpected: [] });
    expect(multisetDiff(["a", "a"], ["a", "c"])).toEqual({ missing: ["a"], unexpected: ["c"] });
  });

  it("refuses steps it cannot act out, naming them, and rejects what is not IR", () => {
    const withFault = structuredClone(twoClientVector);
    withFault.scenario.steps.splice(4, 0, { type: "omit_message", selector: { sender: "alice" } } as never);
    const v = importMdkVector(withFault, "f.json");
    expect(v.unsupported).toEqual([expect.objectContaining({ mdkIndex: 4, type: "omit_message" })]);
    expect(() => importMdkVector({ scenario: { ...twoClientVector.scenario, spec_version: "9" } }, "x.json")).toThrow(/x\.json: scenario\.spec_version: unsupported IR version "9"/);
    const badClient = structuredClone(twoClientVector);
    badClient.scenario.steps[4] = { type: "send_app_message", sender: "mallory", payload: "x" } as never;
    expect(() => importMdkVector(badClient, "y.json")).toThrow(/scenario\.steps\[4\]\.sender: unknown client "mallory"/);
    const unknown = structuredClone(twoClientVector);
    unknown.scenario.steps[2] = { type: "teleport" } as never;
    expect(() => importMdkVector(unknown, "z.json")).toThrow(/unknown IR step type "teleport"/);
  });

  it("imports every vector shipped beside the repository", async () => {
    const dir = resolveMdkVectorDir();
    let files: string[];
    try {
      files = await listMdkVectorFiles(dir);
    } catch {
      return; // the shared vectors are not present in this checkout (a fresh clone elsewhere)
    }
    expect(files.length).toBeGreaterThan(0);
    for (const f of files) {
      const v = await loadMdkVector(f);
      expect(() => validateScenario(v.scenario, f)).not.toThrow();
      expect(v.expectations.length).toBeGreaterThan(0);
    }
  });

  it("reads IR v3: update_group_profile and in_group actions", () => {
    const v3 = {
      scenario: {
        name: "v3/x",
        spec_version: "3",
        clients: ["alice", "bob"],
        steps: [
          { type: "in_group", group: "team", action: { type: "create_group", creator: "alice", name: "t", invitees: ["bob"], pending: "c" } },
          { type: "in_group", group: "team", action: { type: "update_group_profile", client: "alice", description: "about", pending: "p" } },
          { type: "update_admin_policy", client: "alice", admins: ["alice", "bob"], pending: "a" },
          { type: "probe_bidirectional_decryptability", clients: ["alice", "bob"] },
        ],
      },
    };
    expect(() => importMdkVector(v3, "v3.json")).toThrow(/group "g" is used before create_group/);
    v3.scenario.steps[2] = { type: "in_group", group: "team", action: { type: "update_admin_policy", client: "alice", admins: ["alice", "bob"], pending: "a" } } as never;
    v3.scenario.steps[3] = { type: "in_group", group: "team", action: { type: "probe_bidirectional_decryptability", clients: ["alice", "bob"] } } as never;
    const v = importMdkVector(v3, "v3.json");
    expect(v.specVersion).toBe("3");
    expect(v.scenario.steps.map((s) => [s.type, "group" in s ? s.group : undefined])).toEqual([
      ["create-group", "team"], ["invite", "team"], ["update-group-data", "team"], ["update-group-data", "team"], ["send", "team"], ["send", "team"],
    ]);
    expect(v.scenario.steps[2]).toMatchObject({ type: "update-group-data", groupDescription: "about", description: "mdk[1] update_group_profile" }); // the group's new description, and the report text
    expect(v.scenario.steps[3]).not.toHaveProperty("groupDescription"); // the admin-policy step leaves the description alone
    expect(v.expectations).toEqual([expect.objectContaining({ kind: "decryptable", clients: ["alice", "bob"] })]);
    expect(() => validateScenario(v.scenario)).not.toThrow();
  });

  it("takes its folder from the argument, then MARMOT_MDK_VECTORS, then the default", () => {
    expect(resolveMdkVectorDir("/x/y")).toBe("/x/y");
    expect(resolveMdkVectorDir(undefined, { MARMOT_MDK_VECTORS: "/a/b" })).toBe("/a/b");
    expect(resolveMdkVectorDir(undefined, {})).toMatch(/shared\/vectors\/mdk-scenario-ir$/);
  });
});
