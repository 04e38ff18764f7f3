/**
 * Inline SVG charts for the HTML report, drawn by hand (no external assets): a step chart of epochs
 * over virtual time, a histogram of delivery latency, and a scatter of commit cost against group size.
 * Every label passes through escapeXml; numbers are rounded so the markup stays small.
 */
import { escapeXml } from "./escape.ts";
import { extent } from "./stats.ts";
import type { RunMetrics } from "./types.ts";

const W = 520, H = 260;
const M = { left: 56, right: 16, top: 28, bottom: 44 };
const PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2"];

export interface Series {
  label: string;
  points: { x: number; y: number }[];
}

/** "Nice" tick values (1, 2 or 5 times a power of ten apart) from at or below `lo` to at or above `hi`. */
export function niceTicks(lo: number, hi: number, count = 5): number[] {
  if (!Number.isFinite(lo) || !Number.isFinite(hi)) return [];
  if (hi === lo) { hi = lo + 1; }
  const span = hi - lo;
  const raw = span / Math.max(1, count);
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((k) => k * mag).find((s) => span / s <= count) ?? 10 * mag;
  const out: number[] = [];
  const first = Math.floor(lo / step + 1e-9) * step;
  for (let v = first; v < hi + step * (1 - 1e-9); v += step) out.push(Number(v.toPrecision(12)));
  const last = out[out.length - 1];
  if (last === undefined || last < hi - step * 1e-9) out.push(Number(((last ?? first) + step).toPrecision(12)));
  return out;
}

function r1(n: number): string {
  return String(Math.round(n * 10) / 10);
}

function fmtTick(n: number): string {
  if (Math.abs(n) >= 10_000) return `${r1(n / 1000)}k`;
  return String(Number(n.toPrecision(6)));
}

interface Frame {
  sx(x: number): number;
  sy(y: number): number;
  parts: string[];
}

function frame(title: string, xLabel: string, yLabel: string, xs: number[], ys: number[], yFromZero = true): Frame {
  const [x0, x1] = extent(xs);
  const [ymin, y1] = extent(ys);
  const y0 = yFromZero ? Math.min(0, ymin) : ymin;
  const xt = niceTicks(x0, x1), yt = niceTicks(y0, y1);
  const xlo = Math.min(x0, xt[0] ?? x0), xhi = Math.max(x1 === x0 ? x0 + 1 : x1, xt[xt.length - 1] ?? x1);
  const ylo = Math.min(y0, yt[0] ?? y0), yhi = Math.max(y1 === y0 ? y0 + 1 : y1, yt[yt.length - 1] ?? y1);
  const pw = W - M.left - M.right, ph = H - M.top - M.bottom;
  const sx = (x: number): number => M.left + ((x - xlo) / (xhi - xlo || 1)) * pw;
  const sy = (y: number): number => M.top + ph - ((y - ylo) / (yhi - ylo || 1)) * ph;
  const parts: string[] = [];
  parts.push(`<text x="${W / 2}" y="16" text-anchor="middle" class="t">${escapeXml(title)}</text>`);
  parts.push(`<line x1="${M.left}" y1="${M.top + ph}" x2="${M.left + pw}" y2="${M.top + ph}" class="ax"/>`);
  parts.push(`<line x1="${M.left}" y1="${M.top}" x2="${M.left}" y2="${M.top + ph}" class="ax"/>`);
  for (const t of xt) {
    const x = r1(sx(t));
    parts.push(`<line x1="${x}" y1="${M.top + ph}" x2="${x}" y2="${M.top + ph + 4}" class="ax"/><text x="${x}" y="${M.top + ph + 16}" text-anchor="middle">${escapeXml(fmtTick(t))}</text>`);
  }
  for (const t of yt) {
    const y = r1(sy(t));
    parts.push(`<line x1="${M.left - 4}" y1="${y}" x2="${M.left + pw}" y2="${y}" class="grid"/><text x="${M.left - 6}" y="${y}" text-anchor="end" dominant-baseline="middle">${escapeXml(fmtTick(t))}</text>`);
  }
  parts.push(`<text x="${M.left + pw / 2}" y="${H - 6}" text-anchor="middle">${escapeXml(xLabel)}</text>`);
  parts.push(`<text transform="translate(14 ${M.top + ph / 2}) rotate(-90)" text-anchor="middle">${escapeXml(yLabel)}</text>`);
  return { sx, sy, parts };
}

function svg(kind: string, title: string, body: string[]): string {
  return `<svg xmlns="http://www.w3.org/2000/svg" class="chart" data-chart="${escapeXml(kind)}" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="${escapeXml(title)}"><title>${escapeXml(title)}</title>${body.join("")}</svg>`;
}

function empty(kind: string, title: string): string {
  return svg(kind, title, [
    `<text x="${W / 2}" y="16" text-anchor="middle" class="t">${escapeXml(title)}</text>`,
    `<text x="${W / 2}" y="${H / 2}" text-anchor="middle" class="muted">no data in this run</text>`,
  ]);
}

function legend(series: { label: string }[]): string[] {
  const shown = series.slice(0, PALETTE.length);
  const labels = shown.map((s) => (s.label.length > 24 ? `${s.label.slice(0, 23)}…` : s.label));
  const width = 22 + 6.5 * Math.max(...labels.map((l) => l.length));
  const x = M.left + 8, y0 = M.top + 2;
  const out = [`<rect x="${x - 4}" y="${y0 - 2}" width="${r1(width)}" height="${shown.length * 14 + 4}" fill="#fff" fill-opacity="0.85" stroke="#ddd"/>`];
  labels.forEach((label, i) => {
    const y = y0 + i * 14;
    out.push(`<rect x="${x}" y="${y + 1}" width="10" height="10" fill="${PALETTE[i % PALETTE.length]}"/><text x="${x + 14}" y="${y + 10}">${escapeXml(label)}</text>`);
  });
  return out;
}

/** Epoch of each group over virtual time, as step lines (time relative to the first sample). */
export function epochsChart(metrics: Pick<RunMetrics, "epochsOverTime">, title = "Epochs over virtual time"): string {
  const data = metrics.epochsOverTime;
  if (data.length === 0) return empty("epochs", title);
  const t0 = extent(data.map((d) => d.t))[0];
  const groups = new Map<string, { x: number; y: number }[]>();
  for (const d of [...data].sort((a, b) => a.t - b.t)) {
    const list = groups.get(d.group) ?? [];
    list.push({ x: (d.t - t0) / 1000, y: d.epoch });
    groups.set(d.group, list);
  }
  const series = [...groups].map(([label, points]) => ({ label, points }));
  const f = frame(title, "virtual time (s)", "epoch", data.map((d) => (d.t - t0) / 1000), data.map((d) => d.epoch));
  series.forEach((s, i) => {
    let path = "";
    s.points.forEach((p, j) => {
      const x = r1(f.sx(p.x)), y = r1(f.sy(p.y));
      path += j === 0 ? `M${x} ${y}` : `H${x}V${y}`;
    });
    const last = s.points[s.points.length - 1];
    if (last) path += `H${r1(f.sx(last.x))}`;
    f.parts.push(`<path d="${path}" fill="none" stroke="${PALETTE[i % PALETTE.length]}" stroke-width="2"/>`);
  });
  if (series.length > 1) f.parts.push(...legend(series));
  return svg("epochs", title, f.parts);
}

/** Histogram of delivery latency (virtual ms), `bins` equal-width bins. */
export function latencyHistogram(metrics: Pick<RunMetrics, "deliveryLatencyMs">, title = "Delivery latency (publish to decrypt)", bins = 20): string {
  const v = metrics.deliveryLatencyMs.filter((x) => Number.isFinite(x));
  if (v.length === 0) return empty("latency", title);
  const [lo, hi] = extent(v);
  const n = hi === lo ? 1 : Math.min(bins, Math.max(1, v.length));
  const width = hi === lo ? 1 : (hi - lo) / n;
  const counts = new Array<number>(n).fill(0);
  for (const x of v) counts[Math.min(n - 1, Math.floor((x - lo) / width))]! += 1;
  const f = frame(title, "latency (virtual ms)", "messages", [lo, lo + width * n], [0, ...counts]);
  counts.forEach((c, i) => {
    const x0 = f.sx(lo + i * width), x1 = f.sx(lo + (i + 1) * width);
    const y = f.sy(c), base = f.sy(0);
    f.parts.push(`<rect x="${r1(x0 + 1)}" y="${r1(y)}" width="${r1(Math.max(1, x1 - x0 - 2))}" height="${r1(base - y)}" fill="${PALETTE[0]}"><title>${escapeXml(`${fmtTick(lo + i * width)}–${fmtTick(lo + (i + 1) * width)} ms: ${c}`)}</title></rect>`);
  });
  return svg("latency", title, f.parts);
}

/** Commit creation time (and processing time per member, when known) against group size. */
export function commitCostChart(metrics: Pick<RunMetrics, "commitCost">, title = "Commit cost against group size"): string {
  const data = metrics.commitCost;
  if (data.length === 0) return empty("commit-cost", title);
  const series: Series[] = [{ label: "create (ms)", points: data.map((d) => ({ x: d.members, y: d.createMs })) }];
  const proc = data.filter((d) => d.processMsPerMember !== undefined);
  if (proc.length) series.push({ label: "process/member (ms)", points: proc.map((d) => ({ x: d.members, y: d.processMsPerMember as number })) });
  const all = series.flatMap((s) => s.points);
  const f = frame(title, "members", "real ms", all.map((p) => p.x), all.map((p) => p.y));
  series.forEach((s, i) => {
    for (const p of s.points) {
      f.parts.push(`<circle cx="${r1(f.sx(p.x))}" cy="${r1(f.sy(p.y))}" r="3" fill="${PALETTE[i % PALETTE.length]}"><title>${escapeXml(`${s.label} at ${p.x} members: ${r1(p.y)}`)}</title></circle>`);
    }
  });
  f.parts.push(...legend(series));
  return svg("commit-cost", title, f.parts);
}
