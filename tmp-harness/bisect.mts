import { buildCatalogueScenario } from "../src/scenarios/catalogue/index.ts";
import { runScenario } from "../src/scenarios/runner.ts";
const s = buildCatalogueScenario("epoch-churn-150", { size: "small", params: { members: 10, batch: 4, compliantLimit: 100 } });
const drop = new Set((process.argv[2] ?? "").split(",").filter(Boolean).map(Number));
if (process.argv[3] === "list") { s.steps.forEach((st, i) => console.log(i, JSON.stringify(st))); process.exit(0); }
s.steps = s.steps.filter((_, i) => !drop.has(i));
s.steps = s.steps.filter((st) => st.type !== "send" || process.env.SENDS);
const { result, history } = await runScenario(s);
console.log(result.verdict, result.failures.slice(0, 2));
for (const e of history.entries) if (e.op === "reject") console.log(e.actor, JSON.stringify(e.data).slice(0, 200));
