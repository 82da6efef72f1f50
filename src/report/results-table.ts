import { stringify } from 'csv-stringify/sync';
import type { Evaluation, Results } from '../run/records.js';
import { alignColumns } from '../format/text.js';
import { InvalidDataError } from '../errors/index.js';

/** The results table: one row per model (`<feature>_<stage>`), one column per evaluated dataset. */
export interface ResultsTable {
  models: string[];
  datasets: string[];
  /** accuracy[modelIndex][datasetIndex], undefined when that pair was not evaluated. */
  accuracy: (number | undefined)[][];
  /** The split the accuracies were measured on (e.g. "test"). */
  split: string;
}

/** Builds the table of test accuracies from a results document; models keep the training order. */
export function resultsTable(results: Results): ResultsTable {
  const splits = new Set(results.evaluations.map((e) => e.split));
  if (splits.size > 1) {
    throw new InvalidDataError(`results of run ${results.runId}: evaluations mix splits ${[...splits].join(', ')}; expected one split`);
  }
  const models = uniqueInOrder([...results.models.map((m) => m.model), ...results.evaluations.map((e) => e.model)]);
  const datasets = uniqueInOrder([...results.datasets, ...results.evaluations.map((e) => e.dataset)]);
  const byPair = new Map<string, Evaluation>();
  for (const e of results.evaluations) {
    const key = `${e.model}\u0000${e.dataset}`;
    if (byPair.has(key)) throw new InvalidDataError(`results of run ${results.runId}: model ${e.model} evaluated twice on ${e.dataset}`);
    byPair.set(key, e);
  }
  return {
    models,
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
    ...table.models.map((m, i) => `| ${[m, ...(table.accuracy[i] ?? []).map(formatAccuracy)].join(' | ')} |`),
  ];
  return `${lines.join('\n')}\n`;
}

/** `results.csv`: header `model,<dataset>...`, accuracies with 4 decimals, empty cell when missing. */
export function resultsCsv(table: ResultsTable): string {
  return stringify([
    ['model', ...table.datasets],
    ...table.models.map((m, i) => [m, ...(table.accuracy[i] ?? []).map((a) => (a === undefined ? '' : a.toFixed(4)))]),
  ]);
}

/** Plain-text table for the terminal: aligned columns, no colour codes. */
export function resultsText(table: ResultsTable): string {
  return alignColumns([
    ['model', ...table.datasets],
    ...table.models.map((m, i) => [m, ...(table.accuracy[i] ?? []).map(formatAccuracy)]),
  ]);
}

function uniqueInOrder(values: string[]): string[] {
  return [...new Set(values)];
}
