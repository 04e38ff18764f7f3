import { buildCatalogueScenario } from "../src/scenarios/catalogue/index.ts";
import { runScenario } from "../src/scenarios/runner.ts";
const t0 = Date.now();
const { result } = await runScenario(buildCatalogueScenario("epoch-churn-150", { params: { members: 24, batch: 6, compliantLimit: 24, readds: 0 } }));
console.log(result.verdict, Date.now() - t0, "ms", result.metrics.cpuMs);
