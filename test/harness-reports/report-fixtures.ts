/** Hand-made RunReports for the writer tests: one passing run, one failing run, one quirk run. */
import type { RunReport, ScenarioResult } from "../../src/report/types.ts";

export const HOSTILE = `<script>alert("x")</script> & 'quote' | pipe \`tick\` ]]> \u0001`;

export function scenarioResult(over: Partial<ScenarioResult> = {}): ScenarioResult {
  const t0 = Date.UTC(2026, 0, 1);
  return {
    scenario: "invite-basic",
    description: "Alice invites Bob",
    seed: "s1",
    profile: "R1",
    relayBackend: "sim",
    verdict: "pass",
    expected: "pass",
    ok: true,
    steps: [
      { index: 0, type: "create-group", description: "alice creates g", verdict: "pass", startedAt: t0, endedAt: t0 + 10 },
      { index: 1, type: "invite", description: "alice invites bob", verdict: "pass", startedAt: t0 + 10, endedAt: t0 + 250 },
    ],
    checks: [
      { name: "convergence", verdict: "pass", message: "2 members agree on epoch 1" },
      { name: "delivery", verdict: "pass", message: "all delivered" },
    ],
    metrics: {
      epochsOverTime: [
        { t: t0, group: "g", epoch: 0 },
        { t: t0 + 250, group: "g", epoch: 1 },
        { t: t0 + 900, group: "g", epoch: 2 },
      ],
      deliveryLatencyMs: [12, 15, 15, 40, 120],
      commitCost: [
        { members: 2, createMs: 8, processMsPerMember: 3 },
        { members: 20, createMs: 40, processMsPerMember: 9 },
      ],
      wallMs: 1234,
      cpuMs: 1100,
      peakRssBytes: 150 * 1024 * 1024,
    },
    failures: [],
    replayCommand: "marmot-harness run invite-basic --seed s1",
    notes: [],
    ...over,
  };
}

export function sampleReport(): RunReport {
  return {
    tool: "marmot-harness",
    version: "0.1.0",
    startedAt: "2026-01-01T00:00:00.000Z",
    finishedAt: "2026-01-01T00:00:05.000Z",
    profile: "R1",
    results: [
      scenarioResult(),
      scenarioResult({
        scenario: `bad ${HOSTILE}`,
        description: HOSTILE,
        seed: "s|2",
        verdict: "fail",
        ok: false,
        steps: [{ index: 0, type: "send", description: "bob sends", verdict: "fail", startedAt: 0, endedAt: 5, message: HOSTILE }],
        checks: [
          { name: "delivery", verdict: "fail", message: `carol missed 1 message: ${HOSTILE}`, subjects: ["ev1"] },
          { name: "mdk:no_pending_work", verdict: "not-applicable", message: "MDK-internal ledger" },
        ],
        failures: [HOSTILE],
        capsuleDir: "reports/x/capsules/bad-s_2",
        replayCommand: "marmot-harness replay reports/x/capsules/bad-s_2",
        notes: [HOSTILE],
      }),
      scenarioResult({
        scenario: "repro-spoofed-author",
        expected: "fail",
        verdict: "fail",
        ok: true,
        checks: [{ name: "metadata", verdict: "fail", message: "inner author spoofed" }],
      }),
    ],
  };
}

/**
 * A tiny XML well-formedness check: tags nest and close, attributes are quoted, entities are known.
 * Returns the elements with their decoded attributes and text, in document order.
 */
export interface XmlElement {
  name: string;
  attrs: Record<string, string>;
  parent?: XmlElement;
  children: XmlElement[];
  text: string;
}

function decode(s: string): string {
  return s.replace(/&(#\d+|#x[0-9a-fA-F]+|amp|lt|gt|quot|apos);/g, (_m, e: string) => {
    if (e === "amp") return "&";
    if (e === "lt") return "<";
    if (e === "gt") return ">";
    if (e === "quot") return '"';
    if (e === "apos") return "'";
    return String.fromCodePoint(e.startsWith("#x") ? parseInt(e.slice(2), 16) : parseInt(e.slice(1), 10));
  });
}

export function parseXml(xml: string): XmlElement[] {
  const all: XmlElement[] = [];
  const stack: XmlElement[] = [];
  let i = 0;
  const body = xml.replace(/^<\?xml[^?]*\?>\s*/, "");
  if (/&(?!(#\d+|#x[0-9a-fA-F]+|amp|lt|gt|quot|apos);)/.test(body)) throw new Error("bare & or unknown entity");
  while (i < body.length) {
    const lt = body.indexOf("<", i);
    const text = body.slice(i, lt === -1 ? body.length : lt);
    if (text.includes(">")) throw new Error(`stray > in text near ${i}`);
    const top = stack[stack.length - 1];
    if (top) top.text += decode(text);
    else if (text.trim()) throw new Error("text outside the root element");
    if (lt === -1) break;
    const gt = body.indexOf(">", lt);
    if (gt === -1) throw new Error("unterminated tag");
    const tag = body.slice(lt + 1, gt);
    i = gt + 1;
    if (tag.startsWith("/")) {
      const open = stack.pop();
      if (!open || open.name !== tag.slice(1).trim()) throw new Error(`mismatched </${tag.slice(1)}>`);
      continue;
    }
    const selfClose = tag.endsWith("/");
    const m = /^([A-Za-z_][\w.-]*)((?:\s+[A-Za-z_][\w.:-]*="[^"<]*")*)\s*\/?$/.exec(tag);
    if (!m) throw new Error(`malformed tag <${tag}>`);
    const attrs: Record<string, string> = {};
    for (const a of (m[2] ?? "").matchAll(/([A-Za-z_][\w.:-]*)="([^"]*)"/g)) {
      if (a[1]! in attrs) throw new Error(`duplicate attribute ${a[1]}`);
      attrs[a[1]!] = decode(a[2]!);
    }
    const el: XmlElement = { name: m[1]!, attrs, parent: stack[stack.length - 1], children: [], text: "" };
    stack[stack.length - 1]?.children.push(el);
    if (!el.parent && all.length) throw new Error("more than one root element");
    all.push(el);
    if (!selfClose) stack.push(el);
  }
  if (stack.length) throw new Error(`unclosed <${stack[stack.length - 1]!.name}>`);
  return all;
}
