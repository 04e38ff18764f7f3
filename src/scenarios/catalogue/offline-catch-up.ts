import { scenario } from "../builder.ts";
import { param, type CatalogueEntry } from "./types.ts";

/**
 * Bob misses `short` epochs with messages and catches up (since-cursor), then misses `long`
 * epochs and catches up from the full history. Then Carol misses `lost` epochs while the relay
 * keeps only `retention` events: she cannot catch up, the run reports what she lost, and she
 * stays offline (excused from delivery).
 */
/** Epoch once bob and carol have joined: the invite, then each joiner's self-update (MIP02-WL-14). */
const JOINED = 3;

export const offlineCatchUp: CatalogueEntry = {
  name: "offline-catch-up",
  description: "A member misses 5, then 20 epochs with messages, then returns; beyond the retention window the run reports what was lost.",
  defaults: { short: 5, long: 20, lost: 8, retention: 6 },
  small: { short: 2, long: 4, lost: 4, retention: 3 },
  tags: ["core"],
  build: (p, seed = "1") => {
    const short = param(p, offlineCatchUp.defaults, "short");
    const long = param(p, offlineCatchUp.defaults, "long");
    const lost = param(p, offlineCatchUp.defaults, "lost");
    const retention = param(p, offlineCatchUp.defaults, "retention");
    const b = scenario("offline-catch-up", offlineCatchUp.description)
      .seed(seed)
      .params({ short, long, lost, retention })
      .relay("r1")
      .agents(["alice", "bob", "carol"], { relays: ["r1"] })
      .createGroup("alice", "g")
      .invite("alice", "g", ["bob", "carol"])
      .send("bob", "g", "before going offline");
    const epochs = (n: number, label: string): void => {
      for (let i = 0; i < n; i++) {
        const who = i % 2 === 0 ? "alice" : "carol";
        b.selfUpdate(who, "g", { description: `${label}: epoch ${i + 1} of ${n} (${who} self-updates)` });
        b.send(who, "g", `${label} message ${i + 1}`);
      }
    };
    b.offline("bob");
    epochs(short, "short absence");
    b.online("bob", "since-cursor").assert("g", { agents: ["bob"], epoch: JOINED + short, members: 3 });
    b.offline("bob");
    epochs(long, "long absence");
    b.online("bob", "full-history").assert("g", { agents: ["alice", "bob"], epoch: JOINED + short + long, members: 3 });
    b.send("bob", "g", "back and caught up").waitForConvergence("g");
    // beyond the retention window
    b.offline("carol")
      .fault("retention", { relay: "r1", params: { maxEvents: retention }, description: `relay keeps only ${retention} events` });
    for (let i = 0; i < lost; i++) {
      b.selfUpdate(i % 2 === 0 ? "alice" : "bob", "g");
      b.send("alice", "g", `while carol is away ${i + 1}`);
    }
    b.online("carol", "full-history", { description: "carol returns after the retention window" })
      .offline("carol", { description: "carol cannot rebuild the group from what the relay kept (reported as lost)" })
      .send("alice", "g", "the rest of us carry on")
      .waitForConvergence("g")
      .checks({ excusedDelivery: [{ agent: "carol", reason: "offline beyond the relay's retention window" }] });
    return b.build();
  },
};
