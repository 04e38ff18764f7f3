import { buildCatalogueScenario } from "../src/scenarios/catalogue/index.ts";
import { runScenario } from "../src/scenarios/runner.ts";
const name = process.argv[2] as string;
const { result, history } = await runScenario(buildCatalogueScenario(name, { size: "small" }), { catalogueName: name });
const ops = (process.argv[3] ?? "").split(",").filter(Boolean);
for (const e of history.entries) {
  if (ops.length && !ops.includes(e.op)) continue;
  const d = { ...e.data } as Record<string, unknown>;
  if (e.op === "event") { const ev = d.event as { kind: number; id: string }; console.log(e.seq, e.t, e.actor, "event", ev.kind, ev.id.slice(0, 8)); continue; }
  console.log(e.seq, e.t % 1e6, e.actor, e.type, e.op, JSON.stringify(d).slice(0, Number(process.env.W ?? 260)));
}
console.log(result.verdict, result.failures, result.notes);
