import { CATALOGUE, buildCatalogueScenario } from "../src/scenarios/catalogue/index.ts";
import { runScenario } from "../src/scenarios/runner.ts";
const only = process.argv.slice(2);
for (const e of CATALOGUE) {
  if (only.length && !only.includes(e.name)) continue;
  if (!only.length && e.tags.includes("slow")) continue;
  const t0 = Date.now();
  const s = buildCatalogueScenario(e.name, { size: "small" });
  const { result } = await runScenario(s, { catalogueName: e.name });
  console.log(`${result.ok ? "OK  " : "BAD "} ${e.name} verdict=${result.verdict} expected=${result.expected} ${Date.now() - t0}ms`);
  if (!result.ok || process.env.V) { for (const f of result.failures) console.log("    - " + f.slice(0, 400)); for (const n of result.notes) console.log("    note: " + n.slice(0, 300)); }
}
