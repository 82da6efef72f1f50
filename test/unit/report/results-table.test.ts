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

  it('shows a pooling study stage by stage, every pooling of a stage together, each row naming its pooling', () => {
    // A family with a pooling list trains bert_mean, bert_max, … one after the other: bert_mean_1, bert_mean_2, bert_max_1, …
    const poolings = ['mean', 'max', 'cls', 'sep'];
    const bow = results.models.filter((m) => m.feature === 'bow');
    const models = poolings.flatMap((p, i) =>
      ['1', '2'].map((stage) => ({ ...bow[stage === '1' ? 0 : 1]!, model: `bert_${p}_${stage}`, feature: `bert_${p}`, stage, pooling: p, bestValAccuracy: i })),
    );
    const evaluations = models.flatMap((m, i) => ['sst2', 'imdb'].map((dataset, j) => ({ ...results.evaluations[0]!, model: m.model, dataset, accuracy: (i * 2 + j) / 100 })));
    const study = resultsTable({ ...results, models: [...bow, ...models], evaluations: [...results.evaluations.filter((e) => e.model.startsWith('bow_')), ...evaluations] });
    expect(study.models).toEqual(['bow_1', 'bow_2', 'bert_mean_1', 'bert_max_1', 'bert_cls_1', 'bert_sep_1', 'bert_mean_2', 'bert_max_2', 'bert_cls_2', 'bert_sep_2']);
    expect(resultsText(study).split('\n').slice(2, -1)).toEqual([
      'bow_1          0.8012  0.7633',
      'bow_2          0.7963  0.8826',
      'bert_1 (mean)  0.0000  0.0100',
      'bert_1 (max)   0.0400  0.0500',
      'bert_1 (cls)   0.0800  0.0900',
      'bert_1 (sep)   0.1200  0.1300',
      'bert_2 (mean)  0.0200  0.0300',
      'bert_2 (max)   0.0600  0.0700',
      'bert_2 (cls)   0.1000  0.1100',
      'bert_2 (sep)   0.1400  0.1500',
    ]);
    expect(resultsCsv(study)).toContain('bert_2 (cls),0.1000,0.1100\n');
    // A single-pooling family names its pooling too; a label two rows would share falls back to the model names.
    const single = { ...models[0]!, model: 'bert_1', feature: 'bert' };
    expect(resultsTable({ ...results, models: [single], evaluations: [] }).labels).toEqual(['bert_1 (mean)']);
    expect(resultsTable({ ...results, models: [single, models[0]!], evaluations: [] }).labels).toEqual(['bert_1', 'bert_mean_1']);
  });

  it('rejects a model evaluated twice on one dataset and mixed splits', () => {
    const dup: Results = { ...results, evaluations: [...results.evaluations, results.evaluations[0]!] };
    expect(() => resultsTable(dup)).toThrow('model bow_1 evaluated twice on sst2');
    const mixed: Results = { ...results, evaluations: [...results.evaluations.slice(1), { ...results.evaluations[0]!, split: 'val' }] };
    expect(() => resultsTable(mixed)).toThrow('evaluations mix splits');
  });
});
