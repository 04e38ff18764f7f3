/**
 * Progress output for long runs. On a terminal: one bar redrawn in place (scenario count, the
 * running scenario and its current step), with a permanent line per finished scenario. Otherwise
 * (CI logs, pipes): plain lines, one per finished scenario.
 */
import { formatMs } from "./stats.ts";
import type { RunSetProgress } from "./run-set.ts";
import type { ScenarioResult } from "./types.ts";

export interface ProgressStream {
  write(chunk: string): boolean;
  isTTY?: boolean;
  columns?: number;
}

export function resultLine(r: ScenarioResult, index: number, total: number): string {
  const mark = r.ok ? "ok  " : "FAIL";
  const expect = r.expected === "fail" ? ` (expected ${r.expected})` : "";
  return `${mark} [${index + 1}/${total}] ${r.scenario}: ${r.verdict}${expect}, seed ${r.seed}, ${formatMs(r.metrics.wallMs)}${!r.ok && r.failures[0] ? ` — ${r.failures[0]}` : ""}`;
}

export function bar(done: number, total: number, width = 20): string {
  const filled = total > 0 ? Math.round((done / total) * width) : 0;
  return `[${"#".repeat(filled)}${"-".repeat(width - filled)}]`;
}

export function createProgress(stream: ProgressStream, opts: { tty?: boolean } = {}): RunSetProgress & { finish(): void } {
  const tty = opts.tty ?? Boolean(stream.isTTY);
  let live = false;
  const clear = (): void => {
    if (tty && live) stream.write("\r\x1b[2K");
    live = false;
  };
  const draw = (text: string): void => {
    const cols = Math.max(40, (stream.columns ?? 100) - 1);
    stream.write(`\r\x1b[2K${text.length > cols ? `${text.slice(0, cols - 1)}…` : text}`);
    live = true;
  };
  return {
    scenarioStart(index, total, name) {
      if (tty) draw(`${bar(index, total)} ${index}/${total} ${name}`);
    },
    step(index, total, name, step, steps, description) {
      if (tty) draw(`${bar(index + step / Math.max(1, steps), total)} ${index}/${total} ${name} · step ${step + 1}/${steps} ${description}`);
    },
    scenarioEnd(index, total, result) {
      clear();
      stream.write(resultLine(result, index, total) + "\n");
    },
    finish() {
      clear();
    },
  };
}
