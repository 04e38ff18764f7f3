/**
 * One reproduction per known interop bug. Each comes as a pair: `<name>` with the quirk on
 * (expect: fail, and the named check must be what fails) and `<name>-fixed` with it off (expect: pass).
 */
import { scenario, type ScenarioBuilder } from "../builder.ts";
import type { QuirkName, Scenario } from "../types.ts";
import type { CatalogueEntry } from "./types.ts";

interface BugSpec {
  name: string;
  description: string;
  quirk: QuirkName;
  /** Checks (or "step:<type>") one of which must fail with the quirk on. */
  fails: string[];
  /** The story exists only under R1 (why): under R0 both halves are reported not applicable. */
  r1Only?: string;
  build(b: ScenarioBuilder, quirks: QuirkName[]): ScenarioBuilder;
}

function pair(spec: BugSpec): CatalogueEntry[] {
  const make = (on: boolean) => (_p?: Record<string, number>, seed = "1"): Scenario => {
    const b = scenario(on ? spec.name : `${spec.name}-fixed`, `${spec.description} ${on ? `(quirk ${spec.quirk} on: must fail)` : `(quirk ${spec.quirk} off: must pass)`}`).seed(seed);
    spec.build(b, on ? [spec.quirk] : []);
    if (on) b.expect("fail", spec.fails);
    if (spec.r1Only) b.onlyProfiles(["R1"], spec.r1Only);
    return b.build();
  };
  return [
    { name: spec.name, description: `${spec.description} (quirk ${spec.quirk} on: must fail)`, defaults: {}, small: {}, tags: ["bug", "quirk"], build: make(true) },
    { name: `${spec.name}-fixed`, description: `${spec.description} (quirk ${spec.quirk} off: must pass)`, defaults: {}, small: {}, tags: ["bug"], build: make(false) },
  ];
}

/** The cause named in the notes of every scenario expected to fail on ts-mls 2.0.0-rc.10's unmerged-leaves bug. */
export const TSMLS_UNMERGED_LEAVES =
  'ts-mls 2.0.0-rc.10 builds Welcomes that joiners refuse ("non-blank intermediate node must list leaf node in its unmerged_leaves") after removed members are re-added and after members self-updated; the members that never joined make convergence fail (raw ts-mls reproduction: test/harness/tsmls-unmerged-leaves.test.ts)';

/**
 * A dependency bug, not a quirk: the minimal shape in which ts-mls 2.0.0-rc.10 produces a Welcome its
 * joiners refuse. Expected to fail on convergence; a fixed ts-mls shows up as an unexpected pass.
 */
export const tsmlsReaddUnmergedLeaves: CatalogueEntry = {
  name: "bug-tsmls-readd-unmerged-leaves",
  description: "Re-adding removed members: a creator adds 1, then 4, then 4 members, removes leaves 3–5 and re-adds them in one commit; with ts-mls 2.0.0-rc.10 all three joins fail (expected to fail on convergence).",
  defaults: {},
  small: {},
  tags: ["bug", "dependency"],
  build: (_p, seed = "1") => {
    const ms = ["m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8", "m9"];
    return scenario("bug-tsmls-readd-unmerged-leaves", tsmlsReaddUnmergedLeaves.description)
      .seed(seed)
      .relay("r1")
      .agent("admin", { relays: ["r1"] })
      .agents(ms, { relays: ["r1"], selfUpdateAfterJoin: false })
      .createGroup("admin", "g")
      .invite("admin", "g", ["m1"])
      .invite("admin", "g", ["m2", "m3", "m4", "m5"])
      .invite("admin", "g", ["m6", "m7", "m8", "m9"])
      .remove("admin", "g", ["m3", "m4", "m5"], { description: "remove leaves 3–5" })
      .invite("admin", "g", ["m3", "m4", "m5"], { description: "re-add them in one commit" })
      .send("admin", "g", "welcome back")
      .waitForConvergence("g")
      .assert("g", { members: 10 })
      .expect("fail", ["convergence"], TSMLS_UNMERGED_LEAVES)
      .build();
  },
};

export const bugScenarios: CatalogueEntry[] = [
  ...pair({
    name: "bug-protected-keypackages",
    description: "KeyPackages published with the NIP-70 `-` tag are refused by relays that refuse protected events, so nobody can invite their author.",
    quirk: "protectedKeyPackages",
    fails: ["step:invite"],
    build: (b, q) =>
      b
        .relay("r1", { options: { refuseProtected: true } })
        .agent("alice", { relays: ["r1"] })
        .agent("bob", { relays: ["r1"], quirks: q })
        .createGroup("alice", "g")
        .invite("alice", "g", ["bob"])
        .send("bob", "g", "I made it in")
        .waitForConvergence("g"),
  }),
  ...pair({
    name: "bug-eose-hides-history",
    description: "Catching up over two relays, the first relay's EOSE is taken as proof that history is complete, hiding what only the second relay holds.",
    quirk: "trustFirstEose",
    fails: ["delivery", "convergence", "step:assert"],
    build: (b, q) =>
      b
        .relay("fast")
        .relay("slow")
        .agent("alice", { relays: ["slow"] })
        .agent("bob", { relays: ["fast", "slow"], quirks: q })
        .createGroup("alice", "g")
        .invite("alice", "g", ["bob"])
        .offline("bob")
        .send("alice", "g", "only the slow relay has this")
        .selfUpdate("alice", "g")
        .send("alice", "g", "and this")
        .advanceTime(120_000)
        .fault("slow-eose", { relay: "slow", params: { delayMs: 3000, agents: ["bob"] } })
        .online("bob", "since-cursor")
        .advanceTime(10_000)
        .assert("g", { agents: ["bob"], epoch: 3, messagesReceived: { bob: 2 } }),
  }),
  ...pair({
    name: "bug-queue-overflow",
    description: "A relay's bounded delivery queue silently skips stored events; a client that trusts EOSE loses history, one that pages back with `until` recovers it.",
    quirk: "trustFirstEose",
    fails: ["delivery", "step:assert"],
    build: (b, q) => {
      b.relay("r1")
        .agent("alice", { relays: ["r1"] })
        .agent("bob", { relays: ["r1"], quirks: q })
        .createGroup("alice", "g")
        .invite("alice", "g", ["bob"])
        .offline("bob");
      for (let i = 1; i <= 12; i++) b.send("alice", "g", `queued ${i}`);
      return b
        .advanceTime(120_000)
        .fault("queue-limit", { relay: "r1", params: { perSubscription: 4, agents: ["bob"] } })
        .online("bob", "since-cursor")
        .fault("queue-limit", { relay: "r1", params: { agents: ["bob"] }, description: "queue limit lifted" })
        .assert("g", { agents: ["bob"], messagesReceived: { bob: 12 } });
    },
  }),
  ...pair({
    name: "bug-selfremove-capability-mismatch",
    description: "An older client's KeyPackage lacks the `mls_proposals` SelfRemove advertisement (marmot-ts 0.5.1); strict clients refuse to invite it, so a mixed group cannot form or cannot use SelfRemove.",
    quirk: "omitMlsProposals",
    fails: ["step:invite", "step:leave"],
    r1Only: "SelfRemove and the KeyPackage's mls_proposals advertisement are R1; R0 has no SelfRemove",
    build: (b, q) =>
      b
        .relay("r1")
        .agents(["alice", "bob"], { relays: ["r1"] })
        .agent("old", { relays: ["r1"], quirks: q })
        .createGroup("alice", "g")
        .invite("alice", "g", ["bob", "old"])
        .send("old", "g", "hello from the old client")
        .leave("bob", "g")
        .waitForConvergence("g")
        .assert("g", { members: ["alice", "old"] }),
  }),
  ...pair({
    name: "bug-only-443-keypackages",
    description: "A client that only looks for legacy kind-443 KeyPackages cannot find people who publish kind 30443.",
    quirk: "only443KeyPackages",
    fails: ["step:invite"],
    r1Only: "R1 KeyPackages are kind 30443; under R0 everyone publishes kind 443, so the quirk changes nothing",
    build: (b, q) =>
      b
        .relay("r1")
        .agent("alice", { relays: ["r1"], quirks: q })
        .agent("bob", { relays: ["r1"] })
        .createGroup("alice", "g")
        .invite("alice", "g", ["bob"])
        .send("bob", "g", "found me")
        .waitForConvergence("g"),
  }),
  ...pair({
    name: "bug-welcome-after-commits",
    description: "A Welcome arrives after later commits were published; a joiner that does not fetch the group's history since its Welcome stays behind.",
    quirk: "noHistoryAfterJoin",
    fails: ["convergence", "delivery", "step:assert", "step:wait-for-convergence"],
    build: (b, q) =>
      b
        .relay("r1")
        .agents(["alice", "carol"], { relays: ["r1"] })
        .agent("bob", { relays: ["r1"], quirks: q })
        .createGroup("alice", "g")
        .invite("alice", "g", ["carol"])
        .fault("partition", { relay: "r1", params: { agents: ["bob"] }, description: "bob is unreachable while he is invited" })
        .invite("alice", "g", ["bob"])
        .selfUpdate("carol", "g")
        .send("alice", "g", "bob will need the commits after his Welcome")
        .selfUpdate("alice", "g")
        .advanceTime(120_000)
        .fault("heal", { relay: "r1", params: { agents: ["bob"] } })
        .online("bob", "since-cursor", { description: "bob reconnects and finds his Welcome" })
        .advanceTime(5_000)
        .send("carol", "g", "can bob read this?")
        .waitForConvergence("g", 10_000)
        .assert("g", { agents: ["bob"], epoch: 5 }),
  }),
  ...pair({
    name: "bug-state-lost-after-send",
    description: "A client that does not persist its group state after sending loses it on restart: what it sends afterwards reuses spent ratchet state and is unreadable.",
    quirk: "noPersistAfterSend",
    fails: ["delivery", "convergence", "step:send"],
    build: (b, q) =>
      b
        .relay("r1")
        .agent("alice", { relays: ["r1"] })
        .agent("bob", { relays: ["r1"], quirks: q, storage: "file", catchUp: "since-cursor" })
        .createGroup("alice", "g")
        .invite("alice", "g", ["bob"])
        .send("bob", "g", "sent just before the restart")
        .send("bob", "g", "and another one")
        .advanceTime(120_000)
        .restart("bob")
        .send("bob", "g", "after the restart")
        .send("alice", "g", "did you keep your state, bob?")
        .waitForConvergence("g")
        .assert("g", { messagesReceived: { alice: 3, bob: 1 } }),
  }),
  ...pair({
    name: "bug-pathless-remove",
    description:
      "ts-mls 2.0.0-rc.10 commits a single Remove without an UpdatePath, so the removed member can derive the next epoch's keys; an admin that does not publish the engine's re-keying follow-up commit lets the removed member read what follows.",
    quirk: "skipRekeyAfterRemove",
    fails: ["secrecy"],
    build: (b, q) =>
      b
        .relay("r1")
        .agent("alice", { relays: ["r1"], quirks: q })
        .agents(["bob", "eve"], { relays: ["r1"] })
        .createGroup("alice", "g")
        .invite("alice", "g", ["bob", "eve"])
        .remove("alice", "g", ["eve"])
        .send("bob", "g", "eve must not read this")
        .waitForConvergence("g")
        .assert("g", { members: ["alice", "bob"], notMembers: ["eve"] }),
  }),
  ...pair({
    name: "bug-spoofed-inner-author",
    description: "Mallory sends a message whose inner rumor claims to be Alice's; a receiver that skips the inner-author check (marmot-ts 0.5.1) accepts it.",
    quirk: "skipInnerAuthorCheck",
    fails: ["authenticity"],
    build: (b, q) =>
      b
        .relay("r1")
        .agents(["alice", "mallory"], { relays: ["r1"] })
        .agent("bob", { relays: ["r1"], quirks: q })
        .createGroup("alice", "g")
        .invite("alice", "g", ["bob", "mallory"])
        .send("alice", "g", "the real alice")
        .send("mallory", "g", "I am alice, trust me", { spoofAuthor: "alice" })
        .waitForConvergence("g"),
  }),
  tsmlsReaddUnmergedLeaves,
];
