import { escapeXml } from './escape.js';
import { slug } from '../format/text.js';
import { FONT } from './palette.js';
import { InvalidDataError, InvalidInputError } from '../errors/index.js';

/** One line of a chart. */
export interface Series {
  name: string;
  color: string;
  points: { x: number; y: number }[];
  dashed?: boolean;
}

/** A line chart to render as inline SVG. */
export interface LineChart {
  id: string;
  title: string;
  xLabel: string;
  yLabel: string;
  series: Series[];
  /** A vertical marker, e.g. the best epoch. */
  marker?: { x: number; label: string };
  width?: number;
  height?: number;
}

const M = { left: 56, right: 16, top: 52, bottom: 44 };

/** Renders a line chart as SVG: nice axis ticks, one path and one circle per point per series, legend on top. */
export function lineChartSvg(chart: LineChart): string {
  const width = chart.width ?? 420;
  const height = chart.height ?? 260;
  const all = chart.series.flatMap((s) => s.points);
  if (all.length === 0) throw new InvalidInputError(`chart ${chart.id}: no points to draw`);
  for (const p of all) {
    if (!Number.isFinite(p.x) || !Number.isFinite(p.y)) throw new InvalidDataError(`chart ${chart.id}: non-finite point (${p.x}, ${p.y})`);
  }
  const xTicks = niceTicks(Math.min(...all.map((p) => p.x)), Math.max(...all.map((p) => p.x)), 10, true);
  const yTicks = niceTicks(Math.min(...all.map((p) => p.y)), Math.max(...all.map((p) => p.y)), 5, false);
  const [x0, x1] = [xTicks[0]!, xTicks.at(-1)!];
  const [y0, y1] = [yTicks[0]!, yTicks.at(-1)!];
  const plotW = width - M.left - M.right;
  const plotH = height - M.top - M.bottom;
  const sx = (x: number) => M.left + (x1 === x0 ? plotW / 2 : ((x - x0) / (x1 - x0)) * plotW);
  const sy = (y: number) => M.top + plotH - (y1 === y0 ? plotH / 2 : ((y - y0) / (y1 - y0)) * plotH);
  const r = (v: number) => Math.round(v * 10) / 10;
  const decimals = Math.max(0, -Math.floor(Math.log10(Math.max(1e-12, (yTicks[1] ?? y1) - y0))));
  const id = slug(chart.id);

  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" id="${id}" class="chart" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" role="img" aria-labelledby="${id}-title" font-family="${escapeXml(FONT)}">`,
    `<title id="${id}-title">${escapeXml(chart.title)}</title>`,
    `<rect width="${width}" height="${height}" fill="#ffffff"/>`,
    `<text x="${M.left}" y="18" font-size="14" font-weight="600" fill="#1f2933">${escapeXml(chart.title)}</text>`,
  ];
  for (const t of yTicks) {
    parts.push(
      `<line x1="${M.left}" x2="${width - M.right}" y1="${r(sy(t))}" y2="${r(sy(t))}" stroke="#e4e7eb"/>`,
      `<text x="${M.left - 6}" y="${r(sy(t)) + 4}" text-anchor="end" font-size="11" fill="#52606d">${t.toFixed(decimals)}</text>`,
    );
  }
  for (const t of xTicks) {
    parts.push(
      `<line x1="${r(sx(t))}" x2="${r(sx(t))}" y1="${M.top + plotH}" y2="${M.top + plotH + 4}" stroke="#9aa5b1"/>`,
      `<text x="${r(sx(t))}" y="${M.top + plotH + 17}" text-anchor="middle" font-size="11" fill="#52606d">${t}</text>`,
    );
  }
  parts.push(
    `<line x1="${M.left}" x2="${width - M.right}" y1="${M.top + plotH}" y2="${M.top + plotH}" stroke="#9aa5b1"/>`,
    `<text x="${M.left + plotW / 2}" y="${height - 6}" text-anchor="middle" font-size="12" fill="#52606d">${escapeXml(chart.xLabel)}</text>`,
    `<text x="14" y="${M.top + plotH / 2}" text-anchor="middle" font-size="12" fill="#52606d" transform="rotate(-90 14 ${M.top + plotH / 2})">${escapeXml(chart.yLabel)}</text>`,
  );
  if (chart.marker !== undefined) {
    const mx = r(sx(chart.marker.x));
    parts.push(
      `<g class="marker"><line x1="${mx}" x2="${mx}" y1="${M.top}" y2="${M.top + plotH}" stroke="#7b8794" stroke-dasharray="3 3"/>`,
      // Label on the side with room: right of the line, or left of it in the right third of the plot.
      mx > M.left + (plotW * 2) / 3
        ? `<text x="${mx - 4}" y="${M.top + 11}" text-anchor="end" font-size="11" fill="#52606d">${escapeXml(chart.marker.label)}</text></g>`
        : `<text x="${mx + 4}" y="${M.top + 11}" font-size="11" fill="#52606d">${escapeXml(chart.marker.label)}</text></g>`,
    );
  }
  let legendX = M.left;
  for (const s of chart.series) {
    const d = s.points.map((p, i) => `${i === 0 ? 'M' : 'L'}${r(sx(p.x))},${r(sy(p.y))}`).join(' ');
    parts.push(
      `<g class="series" data-series="${escapeXml(s.name)}">`,
      `<path d="${d}" fill="none" stroke="${s.color}" stroke-width="2"${s.dashed ? ' stroke-dasharray="6 4"' : ''}/>`,
      ...s.points.map(
        (p) =>
          `<circle class="pt" cx="${r(sx(p.x))}" cy="${r(sy(p.y))}" r="3" fill="${s.color}"><title>${escapeXml(`${s.name} at ${chart.xLabel} ${p.x}: ${p.y}`)}</title></circle>`,
      ),
      '</g>',
      `<line x1="${legendX}" x2="${legendX + 18}" y1="36" y2="36" stroke="${s.color}" stroke-width="2"${s.dashed ? ' stroke-dasharray="6 4"' : ''}/>`,
      `<text x="${legendX + 22}" y="40" font-size="11" fill="#1f2933">${escapeXml(s.name)}</text>`,
    );
    legendX += 30 + s.name.length * 6.5;
  }
  parts.push('</svg>');
  return parts.join('\n');
}

/** Evenly spaced round tick values covering [min, max]; integer steps only when `integer`. */
export function niceTicks(min: number, max: number, maxTicks: number, integer: boolean): number[] {
  if (min === max) {
    const pad = integer ? 1 : Math.abs(min) * 0.1 || 0.1;
    return niceTicks(min - pad, max + pad, maxTicks, integer);
  }
  const rough = (max - min) / Math.max(1, maxTicks - 1);
  const magnitude = 10 ** Math.floor(Math.log10(rough));
  let step = [1, 2, 2.5, 5, 10].map((m) => m * magnitude).find((s) => s >= rough) ?? 10 * magnitude;
  if (integer) step = Math.max(1, Math.ceil(step));
  const start = Math.floor(min / step) * step;
  const ticks: number[] = [];
  for (let t = start; t < max + step * 1e-9; t += step) ticks.push(Number(t.toPrecision(12)));
  if (ticks.at(-1)! < max) ticks.push(Number((ticks.at(-1)! + step).toPrecision(12)));
  return ticks;
}
