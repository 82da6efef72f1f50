import type { BlobStore } from '../store/blob-store.js';
import { runKeys } from '../run/keys.js';
import type { Results } from '../run/records.js';
import { formatMoney, type CostReport } from '../cost/cost.js';
import { formatDuration, alignColumns } from '../format/text.js';
import { failureLine, runSeconds, toManifestView } from './manifest-view.js';
import { formatAccuracy, resultsTable } from './results-table.js';
import { InvalidDataError, MissingInputError } from '../errors/index.js';

/** One line of `textshift runs`. */
export interface RunSummary {
  runId: string;
  experiment: string;
  status: string;
  startedAt?: string;
  seconds?: number;
  /** Best test accuracy per evaluated dataset and the model that reached it. */
  headline: { dataset: string; model: string; accuracy: number }[];
  cost?: { total: number; currency: string; label: string };
  /** Why the run failed, in one line (stage, cause, the time limit it hit if it was one), when it did. */
  failure?: string;
  /** Why part of the run could not be read (a broken manifest or report), if so. */
  problem?: string;
}

const MANIFEST_KEY = /^runs\/([^/]+)\/manifest\.json$/;

/** Every run in the store that has a manifest, newest first (runs without a start time last). */
export async function listRuns(store: BlobStore): Promise<RunSummary[]> {
  const ids = (await store.list('runs/')).flatMap((b) => MANIFEST_KEY.exec(b.key)?.[1] ?? []);
  const runs = await Promise.all(ids.map((id) => summarizeRun(store, id)));
  return runs.sort((a, b) => (b.startedAt ?? '').localeCompare(a.startedAt ?? '') || a.runId.localeCompare(b.runId));
}

/** The summary of one run; unreadable parts become `problem` instead of failing the whole listing. */
export async function summarizeRun(store: BlobStore, runId: string): Promise<RunSummary> {
  const keys = runKeys(runId);
  let summary: RunSummary = { runId, experiment: '?', status: 'unknown', headline: [] };
  try {
    const m = toManifestView(await readJson<unknown>(store, keys.manifest), keys.manifest);
    summary = { ...summary, experiment: m.experiment, status: m.status, startedAt: m.startedAt, seconds: runSeconds(m) };
    if (m.failure && m.status === 'failed') summary.failure = failureLine(m.failure);
    const results = await readJson<Results>(store, keys.report('results.json'));
    if (results !== undefined) summary.headline = headline(results);
    const cost = await readJson<CostReport>(store, keys.report('cost.json'));
    if (cost !== undefined) summary.cost = { total: cost.total, currency: cost.currency, label: cost.label };
  } catch (err) {
    summary.problem = (err as Error).message;
  }
  return summary;
}

/** Best accuracy per dataset, e.g. [{dataset: "imdb", model: "bow_2", accuracy: 0.8826}, ...]. */
export function headline(results: Results): RunSummary['headline'] {
  const table = resultsTable(results);
  return table.datasets.flatMap((dataset, j) => {
    let best: RunSummary['headline'][number] | undefined;
    table.models.forEach((model, i) => {
      const a = table.accuracy[i]?.[j];
      if (a !== undefined && (best === undefined || a > best.accuracy)) best = { dataset, model, accuracy: a };
    });
    return best === undefined ? [] : [best];
  });
}

/** `textshift runs` as an aligned table. */
export function runsText(runs: RunSummary[]): string {
  if (runs.length === 0) return 'No runs found.\n';
  const rows = runs.map((r) => [
    r.runId,
    r.experiment,
    r.status,
    formatDuration(r.seconds),
    r.headline.map((h) => `${h.dataset} ${h.accuracy.toFixed(4)} (${h.model})`).join(', ') || '–',
    r.cost === undefined ? '–' : `${formatMoney(r.cost.total, r.cost.currency)}${r.cost.label.startsWith('estimate') ? ' est.' : ''}`,
    [r.failure, r.problem].filter(Boolean).join('; '),
  ]);
  return alignColumns(
    [['run', 'experiment', 'status', 'duration', 'best test accuracy', 'cost', 'failure or problem'], ...rows],
    ['left', 'left', 'left', 'right', 'left', 'right', 'left'],
  );
}

/** Two runs' results side by side: per model and dataset, A, B and B − A. */
export interface Comparison {
  runA: string;
  runB: string;
  datasets: string[];
  rows: { model: string; cells: { dataset: string; a?: number; b?: number; delta?: number }[] }[];
}

/** Compares two results documents over the union of their models and datasets (A's order first). */
export function compareResults(a: Results, b: Results): Comparison {
  const ta = resultsTable(a);
  const tb = resultsTable(b);
  const datasets = [...new Set([...ta.datasets, ...tb.datasets])];
  const models = [...new Set([...ta.models, ...tb.models])];
  const value = (t: typeof ta, m: string, d: string) => {
    const i = t.models.indexOf(m);
    const j = t.datasets.indexOf(d);
    return i < 0 || j < 0 ? undefined : t.accuracy[i]?.[j];
  };
  return {
    runA: a.runId,
    runB: b.runId,
    datasets,
    rows: models.map((model) => ({
      model,
      cells: datasets.map((dataset) => {
        const va = value(ta, model, dataset);
        const vb = value(tb, model, dataset);
        return { dataset, a: va, b: vb, delta: va === undefined || vb === undefined ? undefined : vb - va };
      }),
    })),
  };
}

/** The comparison as an aligned table: per dataset the columns A, B and Δ (B − A, signed, 4 decimals). */
export function comparisonText(c: Comparison): string {
  const header = ['model', ...c.datasets.flatMap((d) => [`${d} A`, `${d} B`, `${d} Δ`])];
  const rows = c.rows.map((r) => [r.model, ...r.cells.flatMap((x) => [formatAccuracy(x.a), formatAccuracy(x.b), formatDelta(x.delta)])]);
  return `A = ${c.runA}\nB = ${c.runB}\n${alignColumns([header, ...rows])}`;
}

/** A signed accuracy difference: "+0.0123", "-0.0040", "0.0000", or "–" when one side is missing. */
export function formatDelta(delta: number | undefined): string {
  if (delta === undefined) return '–';
  const rounded = Number(delta.toFixed(4));
  return rounded > 0 ? `+${rounded.toFixed(4)}` : rounded < 0 ? rounded.toFixed(4) : '0.0000';
}

/** Reads `runs/<id>/report/results.json`, or throws naming the run and what is missing. */
export async function loadRunResults(store: BlobStore, runId: string): Promise<Results> {
  const key = runKeys(runId).report('results.json');
  const results = await readJson<Results>(store, key);
  if (results === undefined) {
    const hasManifest = (await store.head(runKeys(runId).manifest)) !== undefined;
    throw new MissingInputError(
      hasManifest
        ? `run ${runId} has no results yet (${key} is missing): it is still running, failed, or was not reported`
        : `no run "${runId}" in ${store.url} (no ${runKeys(runId).manifest}); \`textshift runs\` lists the runs there`,
    );
  }
  return results;
}

async function readJson<T>(store: BlobStore, key: string): Promise<T | undefined> {
  const body = await store.get(key);
  if (body === undefined) return undefined;
  try {
    return JSON.parse(body.toString('utf8')) as T;
  } catch (err) {
    throw new InvalidDataError(`${key}: not valid JSON: ${(err as Error).message}`);
  }
}

