/**
 * Catalogue scenarios give the same verdicts in process and out of process. The in-process
 * run is the usual simulated one (virtual clock, in-memory relays). The out-of-process run
 * puts one agent in a child process (`engine-peer`). Its relays are the harness relay served
 * over WebSocket on 127.0.0.1, and its faults go through that server's nemesis.
 */
import { describe, it, expect } from "vitest";
import { runWithPeers } from "../../src/peers/scenario-run.ts";
import { buildCatalogueScenario } from "../../src/scenarios/catalogue/index.ts";
import { runScenario } from "../../src/scenarios/runner.ts";

const CASES: { name: string; agent: string; why: string }[] = [
  { name: "invite-basic", agent: "bob", why: "invitee, sender and self-updater out of process" },
  { name: "offline-catch-up", agent: "bob", why: "the member who goes offline and catches up; retention fault" },
  { name: "concurrent-commits", agent: "bob", why: "one of the two racing admins" },
  { name: "relay-faults", agent: "bob", why: "drop, duplicate, reorder, crash, and partitions scoped to the peer" },
  { name: "bug-protected-keypackages", agent: "bob", why: "the quirky client (NIP-70 KeyPackages) on a relay that refuses them" },
];

// Media cases, in a describe of their own that runs one case at a time: the wall-clock cases above
// already share two cores, and more at once made their timing-sensitive fault case flaky.
const MEDIA_CASES: { name: string; agent: string; why: string }[] = [
  { name: "media-basic", agent: "bob", why: "sends and fetches encrypted files through the run's Blossom server on 127.0.0.1" },
  { name: "media-corrupt-blob", agent: "bob", why: "names the wrong blob on purpose, and must detect the corrupted and swapped ones" },
  { name: "group-image-lifecycle", agent: "alice", why: "sets, changes and clears the group image (upload identities, old blobs deleted)" },
  { name: "media-removed-member", agent: "carol", why: "the removed member whose media probe must fail on everything sent after her removal" },
];

async function sameVerdictOutOfProcess(c: { name: string; agent: string }): Promise<void> {
  const scenario = buildCatalogueScenario(c.name, { size: "small" });
  expect(scenario.agents.map((a) => a.name)).toContain(c.agent);
  const inProcess = await runScenario(scenario, { compliance: false });
  const outOfProcess = await runWithPeers(scenario, { compliance: false }, runScenario, { assignments: { [c.agent]: "engine-peer" }, publishTimeoutMs: 1500 });
  const h = outOfProcess.history.entries;
  // the agent really ran in a child process, over WebSocket
  expect(h.some((e) => e.op === "peer" && e.actor === c.agent)).toBe(true);
  expect(outOfProcess.result.relayBackend).toContain("ws-local");
  expect({ verdict: outOfProcess.result.verdict, ok: outOfProcess.result.ok, failures: outOfProcess.result.ok ? [] : outOfProcess.result.failures }).toEqual({
    verdict: inProcess.result.verdict,
    ok: inProcess.result.ok,
    failures: outOfProcess.result.ok ? [] : outOfProcess.result.failures,
  });
  expect(outOfProcess.result.ok, outOfProcess.result.failures.join("\n")).toBe(true);
  if (c.name === "media-basic" || c.name === "media-corrupt-blob") {
    // the peer uploaded and fetched for itself: its MIP-04 records came back over the protocol
    expect(h.some((e) => e.actor === c.agent && e.op === "media-upload" && e.type === "ok")).toBe(true);
    expect(h.some((e) => e.actor === c.agent && e.op === "media" && e.type === "ok")).toBe(true);
    if (c.name === "media-corrupt-blob") expect(h.filter((e) => e.actor === c.agent && e.op === "media" && e.type === "fail").length).toBeGreaterThanOrEqual(3);
  }
  if (c.name === "group-image-lifecycle") {
    expect(h.filter((e) => e.actor === c.agent && e.op === "group-image" && e.type === "ok" && e.data.role === "setter").length).toBeGreaterThanOrEqual(2);
  }
  if (c.name === "media-removed-member") {
    const probes = h.filter((e) => e.actor === c.agent && e.op === "media-probe" && e.type === "ok");
    expect(probes.length).toBeGreaterThan(0);
    expect(probes.every((e) => e.data.outcome === "failed")).toBe(true);
  }
  if (c.name === "relay-faults") {
    // the partitions scoped to bob reached his out-of-process connections (labelled by name)
    const hits = h.filter((e) => e.op === "fault" && (e.data.fault as string) === "partition.hit");
    expect(hits.some((e) => (e.data.params as { client?: string }).client === c.agent)).toBe(true);
    expect(h.some((e) => e.op === "fault" && e.data.fault === "crash")).toBe(true);
  }
}

describe.concurrent("catalogue scenarios in process and out of process", () => {
  for (const c of CASES) {
    it(`${c.name}: same verdict with ${c.agent} out of process (${c.why})`, () => sameVerdictOutOfProcess(c));
  }
});

describe.sequential("media scenarios in process and out of process", () => {
  for (const c of MEDIA_CASES) {
    it(`${c.name}: same verdict with ${c.agent} out of process (${c.why})`, () => sameVerdictOutOfProcess(c));
  }
});
