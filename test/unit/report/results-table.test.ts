import { parse } from 'csv-parse/sync';
import { describe, expect, it } from 'vitest';
import { resultsCsv, resultsMarkdown, resultsTable, resultsText } from '../../../src/report/results-table.js';
import type { Results } from '../../../src/run/records.js';
import { sampleResults } from '../../fixtures/report/sample-run.js';

describe('results table', () => {
  const results = sampleResults();
  const table = resultsTable(results);

  it('has a row per model in training order and a column per evaluated dataset', () => {
    expect(table.models).toEqual(['bow_1', 'bow_2', 'use_1', 'use_2']);
    expect(table.datasets).toEqual(['sst2', 'imdb']);
    expect(table.split).toBe('test');
    // bow_2 on imdb: (4315 + 4511) / 10000 correct
    expect(table.accuracy[1]![1]).toBe(0.8826);
    expect(table.accuracy[0]![0]).toBe((760 + 699) / 1821);
  });

  it('writes Markdown with 4 decimals', () => {
    expect(resultsMarkdown(table)).toBe(
      [
        '| model | sst2 (test accuracy) | imdb (test accuracy) |',
        '|---|---:|---:|',
        '| bow_1 | 0.8012 | 0.7633 |',
        '| bow_2 | 0.7963 | 0.8826 |',
        '| use_1 | 0.8155 | 0.7921 |',
        '| use_2 | 0.7968 | 0.8514 |',
        '',
      ].join('\n'),
    );
  });

  it('writes CSV that a CSV parser reads back to the same values', () => {
    const rows = parse(resultsCsv(table)) as string[][];
    expect(rows[0]).toEqual(['model', 'sst2', 'imdb']);
    expect(rows.slice(1)).toEqual([
      ['bow_1', '0.8012', '0.7633'],
      ['bow_2', '0.7963', '0.8826'],
      ['use_1', '0.8155', '0.7921'],
      ['use_2', '0.7968', '0.8514'],
    ]);
  });

  it('aligns the terminal rendering', () => {
    expect(resultsText(table)).toBe(
      ['model    sst2    imdb', '-----  ------  ------', 'bow_1  0.8012  0.7633', 'bow_2  0.7963  0.8826', 'use_1  0.8155  0.7921', 'use_2  0.7968  0.8514', ''].join('\n'),
    );
  });

  it('shows a missing evaluation as "–" (Markdown) and an empty cell (CSV)', () => {
    const partial: Results = { ...results, evaluations: results.evaluations.filter((e) => !(e.model === 'use_2' && e.dataset === 'sst2')) };
    const t = resultsTable(partial);
    expect(resultsMarkdown(t)).toContain('| use_2 | – | 0.8514 |');
    expect(resultsCsv(t)).toContain('use_2,,0.8514\n');
  });

  it('quotes a dataset name with a comma in CSV', () => {
    const odd: Results = { ...results, datasets: ['a,b'], evaluations: [{ ...results.evaluations[0]!, dataset: 'a,b' }] };
    expect((parse(resultsCsv(resultsTable(odd))) as string[][])[0]).toEqual(['model', 'a,b']);
  });

  it('rejects a model evaluated twice on one dataset and mixed splits', () => {
    const dup: Results = { ...results, evaluations: [...results.evaluations, results.evaluations[0]!] };
    expect(() => resultsTable(dup)).toThrow('model bow_1 evaluated twice on sst2');
    const mixed: Results = { ...results, evaluations: [...results.evaluations.slice(1), { ...results.evaluations[0]!, split: 'val' }] };
    expect(() => resultsTable(mixed)).toThrow('evaluations mix splits');
  });
});
