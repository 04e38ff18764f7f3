/** Writes a RunReport into its folder: report.json, summary.md, junit.xml and index.html. */
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { HarnessError } from "../errors.ts";
import { toJsonSafe } from "../history.ts";
import { renderHtml } from "./html.ts";
import { renderJunitXml } from "./junit.ts";
import { renderSummaryMarkdown } from "./markdown.ts";
import type { RunReport } from "./types.ts";

export interface WrittenReport {
  dir: string;
  json: string;
  markdown: string;
  junit: string;
  html: string;
}

/** Pretty JSON of plain data (bigints and byte arrays made JSON-safe as the history does). */
export function toJson(value: unknown, indent = 2): string {
  return JSON.stringify(toJsonSafe(value), null, indent);
}

export async function writeRunReport(dir: string, report: RunReport): Promise<WrittenReport> {
  const out: WrittenReport = {
    dir,
    json: join(dir, "report.json"),
    markdown: join(dir, "summary.md"),
    junit: join(dir, "junit.xml"),
    html: join(dir, "index.html"),
  };
  try {
    await mkdir(dir, { recursive: true });
    await writeFile(out.json, toJson(report) + "\n");
    await writeFile(out.markdown, renderSummaryMarkdown(report));
    await writeFile(out.junit, renderJunitXml(report));
    await writeFile(out.html, renderHtml(report));
  } catch (e) {
    throw new HarnessError("REPORT_WRITE", `cannot write the report into ${dir}: ${(e as Error).message}`, { dir }, { cause: e });
  }
  return out;
}
