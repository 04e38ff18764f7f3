import { buildCatalogueScenario } from "../src/scenarios/catalogue/index.ts";
import { runScenario } from "../src/scenarios/runner.ts";
const params = JSON.parse(process.argv[2] ?? "{}");
const t0 = Date.now();
const { result } = await runScenario(buildCatalogueScenario("epoch-churn-150", { size: "small", params }), { catalogueName: "epoch-churn-150" });
console.log(result.verdict, Date.now() - t0, "ms", result.failures.slice(0, 5), result.notes, JSON.stringify(result.metrics).slice(0, 300));
