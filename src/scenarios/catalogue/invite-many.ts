import { scenario } from "../builder.ts";
import { names, param, type CatalogueEntry } from "./types.ts";

export const inviteMany: CatalogueEntry = {
  name: "invite-many",
  description: "One commit adds many members at once (20 by default); several of them talk; all converge.",
  defaults: { members: 20 },
  small: { members: 6 },
  tags: ["core"],
  build: (p, seed = "1") => {
    const n = param(p, inviteMany.defaults, "members");
    const ms = names("m", n);
    const b = scenario("invite-many", inviteMany.description)
      .seed(seed)
      .params({ members: n })
      .relay("r1")
      .agent("admin", { relays: ["r1"] })
      .agents(ms, { relays: ["r1"] })
      .createGroup("admin", "g")
      .invite("admin", "g", ms);
    for (const m of [ms[0], ms[Math.floor(n / 2)], ms[n - 1]]) if (m) b.send(m, "g", `hello from ${m}`);
    // the invite, then each joiner's self-update (MIP02-WL-14)
    return b.waitForConvergence("g").assert("g", { epoch: 1 + n, members: n + 1 }).build();
  },
};
