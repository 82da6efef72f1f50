import { stringify } from 'csv-stringify/sync';
import type { Evaluation, ModelSummary, Results } from '../run/records.js';
import { alignColumns } from '../format/text.js';
import { InvalidDataError } from '../errors/index.js';

/** The results table: one row per model (`<feature>_<stage>`), one column per evaluated dataset. */
export interface ResultsTable {
  models: string[];
  /** What each row shows: the model, or for a BERT-family model `<family>_<stage> (<pooling>)` (the pooling study). */
  labels: string[];
  datasets: string[];
  /** accuracy[modelIndex][datasetIndex], undefined when that pair was not evaluated. */
  accuracy: (number | undefined)[][];
  /** The split the accuracies were measured on (e.g. "test"). */
  split: string;
}

/**
 * Builds the table of test accuracies from a results document. Models keep the training order, except that the
 * families of a pooling study (`bert_mean`, `bert_max`, …: one family with a pooling list) are shown stage by stage,
 * every pooling of stage 1, then of stage 2, as the seed compared its poolings.
 */
export function resultsTable(results: Results): ResultsTable {
  const splits = new Set(results.evaluations.map((e) => e.split));
  if (splits.size > 1) {
    throw new InvalidDataError(`results of run ${results.runId}: evaluations mix splits ${[...splits].join(', ')}; expected one split`);
  }
  const models = poolingStudyOrder(results.models, uniqueInOrder([...results.models.map((m) => m.model), ...results.evaluations.map((e) => e.model)]));
  const datasets = uniqueInOrder([...results.datasets, ...results.evaluations.map((e) => e.dataset)]);
  const byPair = new Map<string, Evaluation>();
  for (const e of results.evaluations) {
    const key = `${e.model}\u0000${e.dataset}`;
    if (byPair.has(key)) throw new InvalidDataError(`results of run ${results.runId}: model ${e.model} evaluated twice on ${e.dataset}`);
    byPair.set(key, e);
  }
  return {
    models,
    labels: rowLabels(results.models, models),
    datasets,
    accuracy: models.map((m) => datasets.map((d) => byPair.get(`${m}\u0000${d}`)?.accuracy)),
    split: [...splits][0] ?? 'test',
  };
}

/** Accuracy as the table shows it: 4 decimals, or "–" when missing. */
export function formatAccuracy(value: number | undefined): string {
  return value === undefined ? '–' : value.toFixed(4);
}

/** `results.md`: a GitHub-flavoured Markdown table. */
export function resultsMarkdown(table: ResultsTable): string {
  const header = ['model', ...table.datasets.map((d) => `${d} (${table.split} accuracy)`)];
  const lines = [
    `| ${header.join(' | ')} |`,
    `|${header.map((_, i) => (i === 0 ? '---' : '---:')).join('|')}|`,
    ...table.labels.map((m, i) => `| ${[m, ...(table.accuracy[i] ?? []).map(formatAccuracy)].join(' | ')} |`),
  ];
  return `${lines.join('\n')}\n`;
}

/** `results.csv`: header `model,<dataset>...`, accuracies with 4 decimals, empty cell when missing. */
export function resultsCsv(table: ResultsTable): string {
  return stringify([
    ['model', ...table.datasets],
    ...table.labels.map((m, i) => [m, ...(table.accuracy[i] ?? []).map((a) => (a === undefined ? '' : a.toFixed(4)))]),
  ]);
}

/** Plain-text table for the terminal: aligned columns, no colour codes. */
export function resultsText(table: ResultsTable): string {
  return alignColumns([
    ['model', ...table.datasets],
    ...table.labels.map((m, i) => [m, ...(table.accuracy[i] ?? []).map(formatAccuracy)]),
  ]);
}

function uniqueInOrder(values: string[]): string[] {
  return [...new Set(values)];
}

/** The study a model belongs to: for a BERT-family family `<study>_<pooling>` (a pooling list's family), `<study>`. */
function studyOf(m: ModelSummary): string {
  return m.pooling !== undefined && m.feature.endsWith(`_${m.pooling}`) ? m.feature.slice(0, -m.pooling.length - 1) : m.feature;
}

/** Orders models by study (first appearance), then stage (first appearance within the study), then training order. */
function poolingStudyOrder(summaries: readonly ModelSummary[], models: string[]): string[] {
  const byModel = new Map(summaries.map((m) => [m.model, m]));
  const studies: string[] = [];
  const stages = new Map<string, string[]>();
  const rank = (model: string): [number, number] => {
    const m = byModel.get(model);
    const study = m ? studyOf(m) : model;
    if (!studies.includes(study)) studies.push(study);
    const order = stages.get(study) ?? [];
    stages.set(study, order);
    const stage = m?.stage ?? '';
    if (!order.includes(stage)) order.push(stage);
    return [studies.indexOf(study), order.indexOf(stage)];
  };
  const ranks = new Map(models.map((model) => [model, rank(model)]));
  return [...models].sort((a, b) => {
    const [sa, ta] = ranks.get(a)!;
    const [sb, tb] = ranks.get(b)!;
    return sa - sb || ta - tb;
  });
}

/** Row labels: the model, or `<study>_<stage> (<pooling>)` for a BERT-family model; a label two rows would share stays the model. */
function rowLabels(summaries: readonly ModelSummary[], models: string[]): string[] {
  const byModel = new Map(summaries.map((m) => [m.model, m]));
  const wanted = models.map((model) => {
    const m = byModel.get(model);
    return m?.pooling === undefined ? model : `${studyOf(m)}_${m.stage} (${m.pooling})`;
  });
  return wanted.map((label, i) => (wanted.indexOf(label) === wanted.lastIndexOf(label) ? label : models[i]!));
}
