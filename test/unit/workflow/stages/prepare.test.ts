// The prepare stage on small files: a bad data file fails with file:line and writes no split; a good one
// writes sklearn-exact splits, the vocabulary and the shard plan, and re-running returns the same plan. Prepare
// streams: split files list rows in source order and the shard plan carries the split order.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { tempStore } from '../../../fixtures/data/temp-store.js';
import { readManifest } from '../../../../src/run/manifest.js';
import { silentReporter } from '../../../../src/run/reporter.js';
import { readSplit } from '../../../../src/workflow/split-files.js';
import { prepare } from '../../../../src/workflow/stages/prepare.js';
import { FileSpec } from '../../../../src/config/experiment.js';
import { DataError, displayName } from '../../../../src/data/errors.js';
import type { Example } from '../../../../src/data/read-table.js';
import { splitPositions, subsample } from '../../../../src/data/split.js';
import { readTable } from '../../../fixtures/data/read-table.js';
import { fitBow, vocabularyToJson } from '../../../../src/features/bow.js';
import type { FeatureIndex, ShardTask } from '../../../../src/run/records.js';

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
    expect(plan.shardKeys).toHaveLength(5);
    const again = await prepare(ctx, { experimentKey: 'experiments/small.json' });
    expect(again).toEqual(plan);
    const m = await readManifest(store, plan.runId);
    expect(m.inputs.a![0]!.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(m.splits.bow).toEqual({ 'a/train': 9, 'a/val': 3, 'a/test': 4 });
    expect(JSON.parse(readFileSync(join(store.root, 'runs', plan.runId, 'manifest.json'), 'utf8')).stages.prepare.status).toBe('succeeded');
  });

  it('split files list rows in source order; the shard plan gives every family the scikit-learn order (also under --quick)', async () => {
    const tsv = rows.join('\n') + '\n';
    const { store, data, ctx } = await setup(tsv);
    const source = (await readTable(data, FileSpec.parse(experiment.datasets.a.files.full), { labels: { '0': 0, '1': 1 }, onBadRow: 'error' })).examples;
    const split = <T>(items: T[]) => {
      const { train, test } = splitPositions(items.length, 0.25, 42);
      return { train: Array.from(train, (i) => items[i]!), test: Array.from(test, (i) => items[i]!) };
    };
    const outer = split(source);
    const inner = split(outer.train);
    const expected = { train: inner.train, val: inner.test, test: outer.test };
    const byFamily = async (runId: string, part: string): Promise<Example[]> => {
      const index = JSON.parse((await store.getOrThrow(`runs/${runId}/features/bow/index.json`)).toString()) as FeatureIndex;
      const split = await readSplit(store, `runs/${runId}/splits/a/${part}.jsonl.gz`);
      const out: Example[] = [];
      for (const key of index.parts[`a/${part}`]!.shards) {
        const task = JSON.parse((await store.getOrThrow(key)).toString()) as ShardTask;
        out.push(...task.rows.map((line) => split[line]!));
      }
      expect(out.map((e) => e.label)).toEqual(index.parts[`a/${part}`]!.labels);
      return out;
    };

    const plan = await prepare(ctx, { experimentKey: 'experiments/small.json' });
    for (const part of ['train', 'val', 'test'] as const) {
      const split = await readSplit(store, `runs/${plan.runId}/splits/a/${part}.jsonl.gz`);
      expect(split).toEqual(source.filter((e) => expected[part].includes(e)));
      expect(await byFamily(plan.runId, part)).toEqual(expected[part]);
    }
    const vocab = (await store.getOrThrow(`runs/${plan.runId}/features/bow/vocabulary.json`)).toString();
    expect(vocab).toBe(vocabularyToJson(fitBow(expected.train.map((e) => e.text), 5)));

    await store.put('experiments/quick.json', JSON.stringify({ ...experiment, name: 'quick', quick: { a: { train: 4 } } }));
    const quick = await prepare(ctx, { experimentKey: 'experiments/quick.json', quick: true });
    expect(await byFamily(quick.runId, 'train')).toEqual(subsample(expected.train, 4, 42));
    expect(await readSplit(store, `runs/${quick.runId}/splits/a/train.jsonl.gz`)).toHaveLength(4);
  });

  it('a gzip bomb fails Prepare naming the file in the recorded cause; nothing of the run is split', async () => {
    const member = gzipSync(Buffer.alloc(10 * 2 ** 20, 'a'), { level: 9 });
    const store = await tempStore({ 'experiments/bomb.json': JSON.stringify({ ...experiment, name: 'bomb', datasets: { a: { ...experiment.datasets.a, files: { full: { path: 'a.tsv.gz', format: 'tsv', text: 0, label: 1 } } } } }) });
    const data = await tempStore({ 'a.tsv.gz': Buffer.concat([gzipSync(rows.slice(0, 3).join('\n') + '\n'), ...Array.from({ length: 300 }, () => member)]) });
    const err = await prepare({ store, data, reporter: silentReporter }, { experimentKey: 'experiments/bomb.json' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DataError);
    const message = `${displayName(data, 'a.tsv.gz')}:4: the record starting on this line is longer than maxRecordBytes (1048576 bytes)`;
    expect((err as Error).message).toContain(message);
    const runId = (await store.list('runs/'))[0]!.key.split('/')[1]!;
    expect((await readManifest(store, runId)).stages.prepare).toMatchObject({ status: 'failed', errorName: 'DataError', error: expect.stringContaining(message) });
    expect((await store.list(`runs/${runId}/splits/`)).map((o) => o.key)).toEqual([]);
  });

  it('a data file that changes between the two reads fails naming it, and no split file is stored', async () => {
    const { store, data } = await setup(rows.join('\n') + '\n');
    let reads = 0;
    const changing = Object.assign(Object.create(data) as typeof data, {
      async getStream(key: string) {
        if (++reads === 2) await data.put(key, rows.slice(0, 15).join('\n') + '\n');
        return data.getStream(key);
      },
    });
    const err = await prepare({ store, data: changing, reporter: silentReporter }, { experimentKey: 'experiments/small.json' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DataError);
    expect((err as Error).message).toMatch(/a\.tsv: changed while being read: sha256 [0-9a-f]{64} on the first read, [0-9a-f]{64} on the second; run again to read the new file$/);
    const runId = (await store.list('runs/'))[0]!.key.split('/')[1]!;
    expect((await store.list(`runs/${runId}/`)).map((o) => o.key).filter((k) => !k.endsWith('manifest.json') && !k.includes('/stages/'))).toEqual([]);
  });
});
