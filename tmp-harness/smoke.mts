import { scenario } from "../src/scenarios/builder.ts";
import { runScenario } from "../src/scenarios/runner.ts";
const s = scenario("invite-basic", "Alice invites Bob; they chat")
  .relay("r1").agents(["alice", "bob"], { relays: ["r1"] })
  .createGroup("alice", "g").invite("alice", "g", ["bob"])
  .send("bob", "g", "hi").send("alice", "g", "hello")
  .waitForConvergence("g").assert("g", { epoch: 1, members: ["alice", "bob"] }).build();
const t0 = Date.now();
const { result, history } = await runScenario(s);
console.log(JSON.stringify({ ...result, metrics: { ...result.metrics } }, null, 1).slice(0, 4000));
console.log("entries", history.length, "digest", history.digest(), Date.now() - t0, "ms");
