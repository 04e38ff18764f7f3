import { scenario } from "../builder.ts";
import { names, param, type CatalogueEntry } from "./types.ts";
import { TSMLS_UNMERGED_LEAVES } from "./bugs.ts";

/**
 * Grow a group to `members` in batches, with interleaved removes, re-adds and self-updates and a
 * message in every epoch; every member is a simulated agent. Invites beyond `compliantLimit`
 * members are made by a second admin whose engine uses the labelled, non-MIP out-of-band ratchet
 * tree option, because spec-compliant Welcomes stop fitting a gift wrap (see welcome-size-limit).
 */
export const epochChurn: CatalogueEntry = {
  name: "epoch-churn-150",
  description:
    "Grow to 150 members in batches with interleaved removes, re-adds and self-updates, a message in every epoch, all members simulated. Expected to fail on ts-mls 2.0.0-rc.10's unmerged-leaves bug unless readds=0 and memberUpdates=0.",
  defaults: { members: 150, batch: 25, compliantLimit: 100, readds: 1, memberUpdates: 1 },
  small: { members: 12, batch: 4, compliantLimit: 8, readds: 1, memberUpdates: 1 },
  tags: ["core", "slow"],
  build: (p, seed = "1") => {
    const total = param(p, epochChurn.defaults, "members");
    const batch = Math.max(1, param(p, epochChurn.defaults, "batch"));
    const limit = param(p, epochChurn.defaults, "compliantLimit");
    const readds = param(p, epochChurn.defaults, "readds");
    // 0: only the admins self-update (avoids the ts-mls re-add/unmerged-leaves bug, see the docs)
    const memberUpdates = param(p, epochChurn.defaults, "memberUpdates");
    const updater = (m: string | undefined): string => (memberUpdates > 0 && m ? m : "admin");
    if (total < 6) throw new RangeError("epoch-churn needs at least 6 members");
    const ms = names("m", total - 2);
    const b = scenario("epoch-churn-150", epochChurn.description)
      .seed(seed)
      .params({ members: total, batch, compliantLimit: limit, readds, memberUpdates })
      .relay("r1")
      .agent("admin", { relays: ["r1"] })
      // Joiners do not self-update on joining here: 150 extra commits, each processed by up to 150
      // members, would multiply the run time; the scenario schedules its own self-updates.
      .agent("big", { relays: ["r1"], outOfBandRatchetTree: true, selfUpdateAfterJoin: false })
      .agents(ms, { relays: ["r1"], selfUpdateAfterJoin: false })
      .createGroup("admin", "g", { admins: ["big"] })
      .invite("admin", "g", ["big"]);
    let size = 2;
    let epochMsg = 0;
    const say = (who: string): void => {
      b.send(who, "g", `epoch message ${++epochMsg}`);
    };
    say("admin");
    const inviter = (): string => (size + batch > limit ? "big" : "admin");
    for (let i = 0; i < ms.length; i += batch) {
      const group = ms.slice(i, i + batch);
      b.invite(inviter(), "g", group, { description: `${inviter()} adds ${group.length} (group of ${size + group.length})` });
      size += group.length;
      say(group[0] as string);
      // interleave a self-update every other batch
      if ((i / batch) % 2 === 1) {
        b.selfUpdate(updater(ms[i]), "g");
        say(ms[i + 1] ?? "admin");
      }
    }
    // removes, re-adds, self-updates, each epoch with a message
    const leavers = [ms[1], ms[2], ms[3]].filter((x): x is string => x !== undefined);
    b.remove("admin", "g", leavers);
    size -= leavers.length;
    say("admin");
    b.selfUpdate(updater(ms[4]), "g");
    say(ms[4] as string);
    if (readds > 0) {
      b.invite(inviter(), "g", leavers, { description: `re-add ${leavers.length}` });
      size += leavers.length;
      say(leavers[0] as string);
    }
    b.remove("admin", "g", [ms[ms.length - 1] as string]);
    size -= 1;
    say(ms[0] as string);
    b.selfUpdate("big", "g");
    say("big");
    b.selfUpdate(updater(ms[0]), "g");
    say(ms[5] ?? "admin");
    if (readds > 0 || memberUpdates > 0) {
      // Known dependency bug (ts-mls 2.0.0-rc.10): some joins into this tree shape are refused
      // ("non-blank intermediate node must list leaf node in its unmerged_leaves"). The faithful
      // story is expected to fail on it, visibly; readds: 0 and memberUpdates: 0 avoid both triggers.
      b.expect(
        "fail",
        ["convergence", "delivery", "step:send", "step:self-update", "step:wait-for-convergence", "step:assert"],
        `${TSMLS_UNMERGED_LEAVES} (readds=${readds}, memberUpdates=${memberUpdates}; readds=0 memberUpdates=0 avoids both triggers)`,
      );
    }
    return b.waitForConvergence("g", 300_000).assert("g", { members: size }).build();
  },
};
