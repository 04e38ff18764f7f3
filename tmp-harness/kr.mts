import { buildCatalogueScenario } from "../src/scenarios/catalogue/index.ts";
import { runScenario } from "../src/scenarios/runner.ts";
import { historyToKeyring } from "../src/history.ts";
const { history } = await runScenario(buildCatalogueScenario("concurrent-commits", { size: "small" }));
for (const o of historyToKeyring(history.entries).observations) if (o.kind === "commit") console.log(JSON.stringify(o).slice(0, 200));
