import { scenario } from "../builder.ts";
import { names, param, type CatalogueEntry } from "./types.ts";

/**
 * Find the largest group whose spec-compliant Welcome (ratchet tree inline) still fits a NIP-59
 * gift wrap: grow to `start` in batches (joiners go offline once joined, so only the admin and the
 * newest joiner compute), then add one member at a time up to `max`. Adds refused with
 * WELCOME_TOO_LARGE are allowed; the runner reports the wall (members and bytes).
 */
export const welcomeSizeLimit: CatalogueEntry = {
  name: "welcome-size-limit",
  description: "Largest group whose Welcome still fits a gift wrap: member count and bytes.",
  defaults: { start: 120, max: 150, batch: 20 },
  small: { start: 4, max: 7, batch: 2 },
  tags: ["core", "slow"],
  build: (p, seed = "1") => {
    const start = param(p, welcomeSizeLimit.defaults, "start");
    const max = param(p, welcomeSizeLimit.defaults, "max");
    const batch = Math.max(1, param(p, welcomeSizeLimit.defaults, "batch"));
    const ms = names("m", max - 1);
    const b = scenario("welcome-size-limit", welcomeSizeLimit.description)
      .seed(seed)
      .params({ start, max, batch })
      .relay("r1")
      .agent("admin", { relays: ["r1"] })
      // measures Welcome sizes only: joiners' self-updates would just add commits
      .agents(ms, { relays: ["r1"], selfUpdateAfterJoin: false })
      .createGroup("admin", "g")
      .checks({ delivery: false });
    let size = 1;
    for (let i = 0; i < start - 1; i += batch) {
      const group = ms.slice(i, Math.min(i + batch, start - 1));
      b.invite("admin", "g", group);
      for (const m of group) b.offline(m, { description: `${m} parks offline (only the admin and the newest joiner compute)` });
      size += group.length;
    }
    for (let i = start - 1; i < max - 1; i++) {
      const m = ms[i] as string;
      b.invite("admin", "g", [m], { allowError: "WELCOME_TOO_LARGE", description: `admin adds ${m} (group of ${++size})` });
      b.offline(m);
    }
    return b.build();
  },
};
