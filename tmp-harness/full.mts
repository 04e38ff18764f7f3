import { buildCatalogueScenario } from "../src/scenarios/catalogue/index.ts";
import { runScenario } from "../src/scenarios/runner.ts";
for (const name of process.argv.slice(2)) {
  const t0 = Date.now();
  const { result } = await runScenario(buildCatalogueScenario(name), { catalogueName: name });
  console.log(result.ok ? "OK " : "BAD", name, result.verdict, Date.now() - t0, "ms", result.failures.slice(0, 3), result.notes.slice(0, 3));
}
