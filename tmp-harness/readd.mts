import { scenario } from "../src/scenarios/builder.ts";
import { runScenario } from "../src/scenarios/runner.ts";
const s = scenario("readd", "re-add").relay("r1").agents(["a", "b", "c"], { relays: ["r1"] })
  .createGroup("a", "g").invite("a", "g", ["b", "c"]).remove("a", "g", ["b"]).invite("a", "g", ["b"]).send("b", "g", "back").waitForConvergence("g").build();
const { result, history } = await runScenario(s);
console.log(result.verdict, result.failures);
for (const e of history.entries) if (e.op === "reject") console.log(e.actor, JSON.stringify(e.data).slice(0, 300));
