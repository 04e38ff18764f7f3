import { scenario } from "../src/scenarios/builder.ts";
import { runScenario } from "../src/scenarios/runner.ts";
const variant = process.argv[2];
const b = scenario("readd", "re-add").relay("r1").agents(["a", "b", "c", "d", "e", "f"], { relays: ["r1"] })
  .createGroup("a", "g").invite("a", "g", ["b", "c"]).invite("a", "g", ["d", "e", "f"]);
if (variant === "1") b.remove("a", "g", ["b", "c", "d"]).invite("a", "g", ["b", "c", "d"]);
if (variant === "2") b.remove("a", "g", ["b", "c", "d"]).selfUpdate("e", "g").invite("a", "g", ["b", "c", "d"]);
if (variant === "3") b.selfUpdate("e", "g").remove("a", "g", ["b"]).invite("a", "g", ["b"]);
if (variant === "4") b.remove("a", "g", ["c"]).selfUpdate("e", "g").invite("a", "g", ["c"]);
if (variant === "5") b.selfUpdate("d", "g").remove("a", "g", ["b", "c"]).selfUpdate("e", "g").invite("a", "g", ["b", "c"]);
if (variant === "6") b.selfUpdate("d", "g").remove("a", "g", ["b", "c"]).invite("a", "g", ["b", "c"]);
if (variant === "7") b.selfUpdate("d", "g").remove("a", "g", ["b"]).invite("a", "g", ["b"]);
const s = b.send("b", "g", "back").waitForConvergence("g").build();
const { result, history } = await runScenario(s);
console.log(variant, result.verdict, result.failures.slice(0, 2));
for (const e of history.entries) if (e.op === "reject") console.log(e.actor, JSON.stringify(e.data).slice(0, 300));
