// The prepare stage on small files: a bad data file fails with file:line and writes no split; a good one
// writes sklearn-exact splits, the vocabulary and the shard plan, and re-running returns the same plan.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { tempStore } from '../../../fixtures/data/temp-store.js';
import { readManifest } from '../../../../src/run/manifest.js';
import { silentReporter } from '../../../../src/run/reporter.js';
import { readSplit } from '../../../../src/workflow/split-files.js';
import { prepare } from '../../../../src/workflow/stages/prepare.js';
import { readShardPlan } from '../../../../src/run/shard-plan.js';

const experiment = {
  name: 'small',
  datasets: {
    a: {
      files: { full: { path: 'a.tsv', format: 'tsv', text: 0, label: 1 } },
      labels: { '0': 0, '1': 1 },
      classNames: ['neg', 'pos'],
      splits: [
        { from: 'full', testSize: 0.25, train: 'rest', test: 'test' },
        { from: 'rest', testSize: 0.25, train: 'train', test: 'val' },
      ],
    },
  },
  features: { bow: { kind: 'bow', maxFeatures: 5, fitOn: { dataset: 'a', split: 'train' }, shardSize: 4 } },
  stages: [{ name: '1', dataset: 'a' }],
  evaluation: { datasets: ['a'] },
};
const rows = Array.from({ length: 16 }, (_, i) => `${i % 2 ? 'good fine great' : 'bad awful poor'} text number${i}\t${i % 2}`);

async function setup(tsv: string) {
  const store = await tempStore({ 'experiments/small.json': JSON.stringify(experiment) });
  const data = await tempStore({ 'a.tsv': tsv });
  return { store, data, ctx: { store, data, reporter: silentReporter } };
}

describe('prepare', () => {
  it('fails on a bad row with file and line, records the failure, and writes no split', async () => {
    const { store, ctx } = await setup([...rows.slice(0, 5), 'oops\t7', ...rows.slice(5)].join('\n') + '\n');
    await expect(prepare(ctx, { experimentKey: 'experiments/small.json' })).rejects.toThrow(/a\.tsv:6: unknown label "7" in column 1; expected one of "0", "1"/);
    const runs = (await store.list('runs/')).map((o) => o.key);
    expect(runs.filter((k) => k.includes('/splits/') || k.includes('/shards/'))).toEqual([]);
    const runId = runs[0]!.split('/')[1]!;
    const m = await readManifest(store, runId);
    expect(m.stages.prepare!.status).toBe('failed');
    expect(m.stages.prepare!.error).toMatch(/a\.tsv:6/);
  });

  it('writes splits, vocabulary and shard plan; a re-run returns the stored plan', async () => {
    const { store, ctx } = await setup(rows.join('\n') + '\n');
    const plan = await prepare(ctx, { experimentKey: 'experiments/small.json' });
    expect(plan.runId).toMatch(/^small-[0-9a-f]{12}$/);
    expect(plan.features).toEqual(['bow']);
    const train = await readSplit(store, `runs/${plan.runId}/splits/a/train.jsonl.gz`);
    const val = await readSplit(store, `runs/${plan.runId}/splits/a/val.jsonl.gz`);
    const test = await readSplit(store, `runs/${plan.runId}/splits/a/test.jsonl.gz`);
    // sklearn: 16 -> 12 rest / 4 test; 12 -> 9 train / 3 val.
    expect([train.length, val.length, test.length]).toEqual([9, 3, 4]);
    expect(new Set([...train, ...val, ...test].map((e) => e.text)).size).toBe(16);
    const vocab = JSON.parse((await store.getOrThrow(`runs/${plan.runId}/features/bow/vocabulary.json`)).toString()) as { terms: string[] };
    expect(vocab.terms).toHaveLength(5);
    // Shards of 4 rows: train 9 -> 3, val 3 -> 1, test 4 -> 1.
    expect(plan.shardPlan).toEqual({ key: `runs/${plan.runId}/shards.json`, count: 5, batches: 5, resultsPrefix: `runs/${plan.runId}/featurize-map` });
    expect(await readShardPlan(store, plan.runId, plan.shardPlan)).toEqual(
      ['train/00000', 'train/00001', 'train/00002', 'val/00000', 'test/00000'].map((s) => `runs/${plan.runId}/shards/bow/a/${s}.json`),
    );
    const again = await prepare(ctx, { experimentKey: 'experiments/small.json' });
    expect(again).toEqual(plan);
    const m = await readManifest(store, plan.runId);
    expect(m.inputs.a![0]!.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(m.splits.bow).toEqual({ 'a/train': 9, 'a/val': 3, 'a/test': 4 });
    expect(JSON.parse(readFileSync(join(store.root, 'runs', plan.runId, 'manifest.json'), 'utf8')).stages.prepare.status).toBe('succeeded');
  });
});
