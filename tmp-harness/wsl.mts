import { buildCatalogueScenario } from "../src/scenarios/catalogue/index.ts";
import { runScenario } from "../src/scenarios/runner.ts";
const t0 = Date.now();
const { result } = await runScenario(buildCatalogueScenario("welcome-size-limit", { params: JSON.parse(process.argv[2] ?? "{}") }), { catalogueName: "welcome-size-limit" });
console.log(result.verdict, Date.now() - t0, "ms");
console.log(result.failures.slice(0, 3), result.notes);
console.log(JSON.stringify(result.metrics.welcomeSizes));
