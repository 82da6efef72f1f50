import type { ModelSummary, Results } from '../run/records.js';
import { confusionSvg } from './confusion-svg.js';
import { formatAmount, formatMoney, formatUnitPrice, type CostReport } from '../cost/cost.js';
import { escapeXml as esc } from './escape.js';
import { slug, formatDuration } from '../format/text.js';
import { lineChartSvg } from './line-chart.js';
import { runSeconds, type RunFailure, type RunManifestView } from './manifest-view.js';
import { SERIES_COLORS } from './palette.js';
import { formatAccuracy, resultsTable } from './results-table.js';

/** Everything `report.html` shows. */
export interface HtmlReportInputs {
  results: Results;
  manifest: RunManifestView;
  cost?: CostReport;
  /** ISO time the report was generated. */
  generatedAt: string;
}

/**
 * `report.html`: one self-contained page (inline CSS and SVG, no scripts, a CSP that forbids any fetch) with the
 * results table, learning curves, confusion matrices, cost breakdown and run metadata.
 */
export function renderReportHtml(inputs: HtmlReportInputs): string {
  const { results, manifest } = inputs;
  return page({
    experiment: results.experiment,
    runId: results.runId,
    manifest,
    generatedAt: inputs.generatedAt,
    nav: [['results', 'Results'], ['curves', 'Learning curves'], ['confusion', 'Confusion matrices'], ['cost', 'Cost'], ['metadata', 'Run metadata']],
    sections: [
      manifest.failure ? failureSection(manifest.failure) : '',
      resultsSection(results),
      curvesSection(results),
      confusionSection(results),
      costSection(inputs.cost),
      metadataSection(manifest),
    ],
  });
}

/**
 * `report.html` of a failed run (MarkFailed writes it): why and where the run failed, and the run metadata; there
 * are no results. A later successful redrive or re-run replaces it with the full report.
 */
export function renderFailureHtml(inputs: { manifest: RunManifestView; generatedAt: string }): string {
  const { manifest } = inputs;
  return page({
    experiment: manifest.experiment,
    runId: manifest.runId,
    manifest,
    generatedAt: inputs.generatedAt,
    nav: [['failure', 'Failure'], ['metadata', 'Run metadata']],
    sections: [manifest.failure ? failureSection(manifest.failure) : '', metadataSection(manifest)],
  });
}

/** The page both reports share: head (CSP, CSS), the run's header with status and times, a nav, then the sections. */
function page(o: {
  experiment: string;
  runId: string;
  manifest: RunManifestView;
  generatedAt: string;
  nav: [string, string][];
  sections: string[];
}): string {
  const { manifest } = o;
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(`textshift report: ${o.runId}`)}</title>
<style>${CSS}</style>
</head>
<body>
<header>
<h1>${esc(o.experiment)} <span class="run-id" data-testid="run-id">${esc(o.runId)}</span></h1>
<p class="meta"><span class="status status-${slug(manifest.status)}" data-testid="run-status">${esc(manifest.status)}</span>
 duration ${esc(formatDuration(runSeconds(manifest)))} · started ${esc(formatTime(manifest.startedAt))} · report generated ${esc(formatTime(o.generatedAt))}</p>
<nav>${o.nav.map(([id, label]) => `<a href="#${id}">${label}</a>`).join('')}</nav>
</header>
<main>
${o.sections.join('\n')}
</main>
</body>
</html>
`;
}

/** Where and why the run failed, with the time limit it hit (if it was one) and whether a redrive alone may help. */
function failureSection(f: RunFailure): string {
  const rows: [string, string, string][] = [
    ['stage', 'failure-stage', f.stage],
    ['cause', 'failure-error', f.error],
    ...(f.errorName === undefined ? [] : [['error class', 'failure-class', f.errorName] as [string, string, string]]),
    ...(f.timeLimit === undefined ? [] : [['time limit', 'failure-time-limit', `${f.timeLimit.limit}: ${f.timeLimit.reason}`] as [string, string, string]]),
    ...(f.retryable === undefined
      ? []
      : [['retryable', 'failure-retryable', f.retryable ? 'yes: a redrive alone may get past it' : 'no: fix the cause, then redrive'] as [string, string, string]]),
  ];
  return `<section id="failure">
<h2>Failure</h2>
<table data-testid="failure-table"><tbody>
${rows.map(([label, id, value]) => `<tr><th scope="row">${esc(label)}</th><td data-testid="${id}">${esc(value)}</td></tr>`).join('\n')}
</tbody></table>
</section>`;
}

function resultsSection(results: Results): string {
  const table = resultsTable(results);
  const best = table.datasets.map((_, j) => Math.max(...table.accuracy.map((row) => row[j] ?? -Infinity)));
  const rows = table.models.map((m, i) => {
    const cells = table.datasets.map((d, j) => {
      const a = table.accuracy[i]?.[j];
      const cls = a !== undefined && a === best[j] ? ' class="best"' : '';
      return `<td${cls} data-testid="acc-${slug(m)}-${slug(d)}"${a === undefined ? '' : ` data-value="${a}"`}>${formatAccuracy(a)}</td>`;
    });
    return `<tr data-model="${esc(m)}"><th scope="row">${esc(table.labels[i]!)}</th>${cells.join('')}</tr>`;
  });
  const modelRows = results.models.map(
    (m) =>
      `<tr><th scope="row">${esc(m.model)}</th><td>${esc(m.feature)}</td><td>${esc(m.dataset)}</td><td>${esc(m.from ?? '–')}</td>` +
      `<td class="num">${m.trainExamples}</td><td class="num">${m.valExamples}</td><td class="num">${m.parameters.toLocaleString('en-US')}</td>` +
      `<td class="num">${m.bestEpoch}</td><td class="num">${m.bestValAccuracy.toFixed(4)}</td><td class="num">${esc(formatDuration(m.seconds))}</td><td>${esc(m.engine)}</td></tr>`,
  );
  return `<section id="results">
<h2>Results</h2>
<p class="note">Accuracy on the ${esc(table.split)} split of every model on every dataset; the best per dataset is bold. Model <code>&lt;feature&gt;_&lt;stage&gt;</code>; a BERT-family model names its pooling, e.g. <code>bert_1 (mean)</code> for <code>bert_mean_1</code>, each stage's poolings side by side.</p>
<table data-testid="results-table" class="results">
<thead><tr><th scope="col">model</th>${table.datasets.map((d) => `<th scope="col" class="num">${esc(d)}</th>`).join('')}</tr></thead>
<tbody>
${rows.join('\n')}
</tbody>
</table>
<h3>Models</h3>
<table data-testid="models-table">
<thead><tr><th scope="col">model</th><th scope="col">feature</th><th scope="col">trained on</th><th scope="col">fine-tuned from</th><th scope="col" class="num">train</th><th scope="col" class="num">val</th><th scope="col" class="num">parameters</th><th scope="col" class="num">best epoch</th><th scope="col" class="num">best val acc</th><th scope="col" class="num">time</th><th scope="col">engine</th></tr></thead>
<tbody>
${modelRows.join('\n')}
</tbody>
</table>
</section>`;
}

// Drawn near the size they are shown at (two per card, two cards per row) so the text stays legible.
const CURVE_SIZE = { width: 340, height: 240 };

/** Learning-curve charts of one model: loss (train and validation) and validation accuracy. */
export function modelCurveSvgs(m: ModelSummary): { loss: string; accuracy: string } {
  const pts = (f: (e: ModelSummary['epochs'][number]) => number) => m.epochs.map((e) => ({ x: e.epoch, y: f(e) }));
  const marker = { x: m.bestEpoch, label: `best epoch ${m.bestEpoch}` };
  return {
    loss: lineChartSvg({
      id: `curve-${m.model}-loss`,
      title: `${m.model}: loss (trained on ${m.dataset})`,
      xLabel: 'epoch',
      yLabel: 'cross-entropy',
      series: [
        { name: 'train loss', color: SERIES_COLORS[0]!, points: pts((e) => e.trainLoss) },
        { name: 'val loss', color: SERIES_COLORS[1]!, points: pts((e) => e.valLoss), dashed: true },
      ],
      marker,
      ...CURVE_SIZE,
    }),
    accuracy: lineChartSvg({
      id: `curve-${m.model}-accuracy`,
      title: `${m.model}: validation accuracy`,
      xLabel: 'epoch',
      yLabel: 'accuracy',
      series: [{ name: 'val accuracy', color: SERIES_COLORS[2]!, points: pts((e) => e.valAccuracy) }],
      marker,
      ...CURVE_SIZE,
    }),
  };
}

function curvesSection(results: Results): string {
  const families = [...new Set(results.models.map((m) => m.feature))];
  const blocks = families.map((f) => {
    const cards = results.models
      .filter((m) => m.feature === f)
      .map((m) => {
        const svgs = modelCurveSvgs(m);
        return `<figure class="card" data-testid="curves-${slug(m.model)}">
<figcaption>${esc(m.model)} · stage ${esc(m.stage)} on ${esc(m.dataset)}${m.from ? ` · from ${esc(m.from)}` : ''}</figcaption>
<div class="chart" data-testid="curve-${slug(m.model)}-loss">${svgs.loss}</div>
<div class="chart" data-testid="curve-${slug(m.model)}-accuracy">${svgs.accuracy}</div>
</figure>`;
      });
    return `<h3>${esc(f)}</h3>\n<div class="grid">\n${cards.join('\n')}\n</div>`;
  });
  return `<section id="curves">
<h2>Learning curves</h2>
<p class="note">Per epoch: training loss, validation loss and validation accuracy; the dashed line marks the epoch kept as best.</p>
${blocks.join('\n')}
</section>`;
}

function confusionSection(results: Results): string {
  const table = resultsTable(results);
  const familyOf = new Map(results.models.map((m) => [m.model, m.feature]));
  const families = [...new Set(table.models.map((m) => familyOf.get(m) ?? m))];
  const rows = families.map((f) => {
    const pairs = table.models.filter((m) => (familyOf.get(m) ?? m) === f).flatMap((m) => table.datasets.map((d) => [m, d] as const));
    const cells = pairs.map(([m, d]) => {
      const e = results.evaluations.find((x) => x.model === m && x.dataset === d);
      if (e === undefined) return `<div class="card empty">${esc(m)} was not evaluated on ${esc(d)}</div>`;
      return `<div class="card" data-testid="confusion-${slug(m)}-${slug(d)}">${confusionSvg(e, results.classNames[d] ?? [])}</div>`;
    });
    return `<h3>${esc(f)}</h3>\n<div class="grid">\n${cells.join('\n')}\n</div>`;
  });
  return `<section id="confusion">
<h2>Confusion matrices</h2>
<p class="note">Rows are true classes, columns predicted classes; the colour shows each cell's share of its row.</p>
${rows.join('\n')}
</section>`;
}

function costSection(cost: CostReport | undefined): string {
  if (cost === undefined) return `<section id="cost"><h2>Cost</h2><p class="note">No usage was recorded for this run.</p></section>`;
  const rows = cost.lines.map(
    (l) =>
      `<tr><td class="nowrap">${esc(l.service)}</td><td>${esc(l.item)}</td><td>${esc(l.stage ?? '')}</td><td class="num nowrap">${esc(formatAmount(l))}</td>` +
      `<td class="num nowrap">${esc(formatUnitPrice(l, cost.currency))}</td><td class="num">${esc(formatMoney(l.cost, cost.currency))}</td><td class="basis">${esc(l.basis)}</td></tr>`,
  );
  return `<section id="cost">
<h2>Cost <span class="label" data-testid="cost-label">${esc(cost.label)}</span></h2>
<table data-testid="cost-table">
<thead><tr><th scope="col">service</th><th scope="col">item</th><th scope="col">stage</th><th scope="col" class="num">amount</th><th scope="col" class="num">unit price</th><th scope="col" class="num">cost</th><th scope="col">how</th></tr></thead>
<tbody>
${rows.join('\n')}
</tbody>
<tfoot><tr><th scope="row" colspan="5">total</th><td class="num" data-testid="cost-total">${esc(formatMoney(cost.total, cost.currency))}</td><td></td></tr></tfoot>
</table>
<p class="note">Prices: region ${esc(cost.regions.join(', '))}, recorded ${esc(cost.priceDates.join(', '))}, price table ${esc(cost.priceVersions.join(' + '))}.
Batch ${esc(cost.options.batchInstanceType)} ${esc(cost.options.batchMarket)} with ${cost.options.batchStartupSeconds} s start-up per job; S3 objects kept ${cost.options.s3RetentionDays} days; free tiers not subtracted.</p>
<ul class="sources">${Object.entries(cost.sources)
    .map(([k, url]) => `<li><code>${esc(k)}</code> ${esc(url)}</li>`)
    .join('')}</ul>${
    (cost.notes ?? []).length > 0 ? `\n<ul class="notes" data-testid="cost-notes">${cost.notes.map((n) => `<li>${esc(n)}</li>`).join('')}</ul>` : ''
  }
</section>`;
}

/** ISO time shortened for tables: "2026-11-26 05:19:00Z" (UTC, seconds). */
function formatTime(iso: string | undefined): string {
  if (iso === undefined) return '–';
  const t = Date.parse(iso);
  return Number.isFinite(t) ? `${new Date(t).toISOString().slice(0, 19).replace('T', ' ')}Z` : iso;
}

function metadataSection(m: RunManifestView): string {
  const stageRows = Object.entries(m.stages).map(
    ([name, s]) =>
      `<tr><th scope="row">${esc(name)}</th><td><span class="status status-${slug(s.status)}">${esc(s.status)}</span></td><td class="nowrap">${esc(formatTime(s.startedAt))}</td>` +
      `<td class="nowrap">${esc(formatTime(s.endedAt))}</td><td class="num nowrap">${esc(formatDuration(s.seconds))}</td><td>${esc(s.error ?? '')}</td></tr>`,
  );
  const count = (n: number | undefined) => (n === undefined ? '–' : n.toLocaleString('en-US'));
  const inputRows = m.inputs.map(
    (i) =>
      `<tr><td>${esc(i.dataset ?? '')}</td><td>${esc(i.name)}</td><td class="num">${count(i.rows)}</td><td class="num">${count(i.bytes)}</td><td><code>${esc(i.sha256)}</code></td></tr>`,
  );
  const versionRows = Object.entries(m.versions).map(([k, v]) => `<tr><th scope="row">${esc(k)}</th><td>${esc(v)}</td></tr>`);
  return `<section id="metadata">
<h2>Run metadata</h2>
<div class="grid meta-grid">
<div><h3>Stages</h3>
<table data-testid="timings-table"><thead><tr><th scope="col">stage</th><th scope="col">status</th><th scope="col">started</th><th scope="col">ended</th><th scope="col" class="num">time</th><th scope="col">error</th></tr></thead>
<tbody>
${stageRows.join('\n')}
</tbody></table></div>
<div><h3>Versions</h3>
<table data-testid="versions-table"><tbody>
${versionRows.join('\n')}
</tbody></table></div>
</div>
<h3>Input data</h3>
<table data-testid="inputs-table"><thead><tr><th scope="col">dataset</th><th scope="col">file</th><th scope="col" class="num">rows</th><th scope="col" class="num">bytes</th><th scope="col">sha256</th></tr></thead>
<tbody>
${inputRows.join('\n')}
</tbody></table>
<h3>Configuration</h3>
<pre data-testid="config-json">${esc(JSON.stringify(m.config ?? null, null, 2))}</pre>
</section>`;
}

const CSS = `
:root { --ink: #1f2933; --muted: #52606d; --line: #e4e7eb; --bg: #f5f7fa; --accent: #0072b2; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.5 system-ui, -apple-system, 'Segoe UI', Roboto, 'DejaVu Sans', sans-serif; color: var(--ink); background: var(--bg); }
header { background: #ffffff; border-bottom: 1px solid var(--line); padding: 20px 32px 0; }
h1 { margin: 0; font-size: 22px; }
.run-id { font-weight: 400; color: var(--muted); font-size: 15px; margin-left: 8px; }
.meta { margin: 6px 0 12px; color: var(--muted); }
nav { display: flex; gap: 20px; }
nav a { color: var(--accent); text-decoration: none; padding: 8px 0; border-bottom: 2px solid transparent; }
nav a:hover { border-bottom-color: var(--accent); }
main { padding: 8px 32px 40px; max-width: 1400px; }
section { background: #ffffff; border: 1px solid var(--line); border-radius: 8px; padding: 16px 24px 20px; margin-top: 20px; }
h2 { font-size: 18px; margin: 0 0 8px; }
h3 { font-size: 15px; margin: 18px 0 8px; }
.note { color: var(--muted); margin: 0 0 12px; }
table { border-collapse: collapse; margin-bottom: 8px; }
th, td { padding: 6px 12px; border-bottom: 1px solid var(--line); text-align: left; vertical-align: top; }
thead th { color: var(--muted); font-weight: 600; border-bottom: 2px solid var(--line); }
.num { text-align: right; font-variant-numeric: tabular-nums; }
table.results td { text-align: right; font-variant-numeric: tabular-nums; min-width: 90px; font-size: 15px; }
table.results td.best { font-weight: 700; color: var(--accent); }
td.basis { color: var(--muted); font-size: 12px; }
tfoot th, tfoot td { font-weight: 700; border-top: 2px solid var(--line); }
.grid { display: flex; flex-wrap: wrap; gap: 16px; margin-bottom: 16px; }
.meta-grid > div { flex: 1 1 420px; }
.card { margin: 0; border: 1px solid var(--line); border-radius: 6px; padding: 8px; background: #ffffff; }
figure.card { flex: 1 1 560px; max-width: 760px; }
figure.card .chart { flex: 1 1 260px; }
figure.card .chart svg { width: 100%; }
.nowrap { white-space: nowrap; }
ul.sources { color: var(--muted); font-size: 12px; margin: 0; padding-left: 18px; }
.card.empty { color: var(--muted); padding: 24px; }
figure.card { display: flex; flex-wrap: wrap; gap: 4px; }
figcaption { flex-basis: 100%; font-weight: 600; padding: 0 4px 4px; }
svg { display: block; max-width: 100%; height: auto; }
.status { display: inline-block; padding: 0 8px; border-radius: 10px; background: var(--line); color: var(--ink); font-size: 12px; }
.status-succeeded { background: #e3f9e5; color: #0e5814; }
.status-failed { background: #ffe3e3; color: #8a041a; }
.status-running { background: #e6f6ff; color: #035388; }
.label { font-size: 12px; font-weight: 400; color: #8d2b0b; background: #fffbea; border: 1px solid #f7d070; border-radius: 10px; padding: 1px 8px; margin-left: 8px; vertical-align: middle; }
pre { background: var(--bg); border: 1px solid var(--line); border-radius: 6px; padding: 12px; overflow: auto; max-height: 420px; font-size: 12px; }
code { font-size: 12px; }
`;
