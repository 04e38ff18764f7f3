import { scenario } from "../src/scenarios/builder.ts";
import { runScenario } from "../src/scenarios/runner.ts";
const n = Number(process.argv[2] ?? 4);
const ms = Array.from({ length: 2 * n }, (_, i) => `m${i + 1}`);
const b = scenario("readd", "re-add").relay("r1").agents(["a", "big", ...ms], { relays: ["r1"] })
  .createGroup("a", "g").invite("a", "g", ["big"]).invite("a", "g", ms.slice(0, n)).invite("a", "g", ms.slice(n))
  .remove("a", "g", ms.slice(1, n)); if (process.argv[3]) b.selfUpdate(process.argv[3], "g"); b.invite("a", "g", ms.slice(1, n)).waitForConvergence("g");
const { result, history } = await runScenario(b.build());
console.log(n, result.verdict, result.failures.slice(0, 2));
for (const e of history.entries) if (e.op === "reject") console.log(e.actor, JSON.stringify(e.data).slice(0, 250));
