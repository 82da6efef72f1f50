// The prepare stage on small files: a bad data file fails with file:line and writes no split; a good one
// writes sklearn-exact splits, the vocabulary and the shard plan, and re-running returns the same plan; a run over
// its cost limit is refused before anything of it is written; a prepared run keeps the inputs it pinned. Prepare
// streams: split files list rows in source order and the shard plan carries the split order.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { tempStore } from '../../../fixtures/data/temp-store.js';
import { parseExperiment, FileSpec } from '../../../../src/config/experiment.js';
import { planExperiment, readingProfiler } from '../../../../src/cost/plan.js';
import { fileProfiles, readData, writeData } from '../../../../src/workflow/prepare-data.js';
import { runKeys } from '../../../../src/run/keys.js';
import { bundledPriceTable } from '../../../../src/cost/prices.js';
import { BudgetExceededError, ConfigError } from '../../../../src/errors/index.js';
import { readManifest } from '../../../../src/run/manifest.js';
import { InputChangedError } from '../../../../src/workflow/pinned-inputs.js';
import { silentReporter } from '../../../../src/run/reporter.js';
import { readSplit, splitMemoKey } from '../../../../src/workflow/split-files.js';
import { prepare } from '../../../../src/workflow/stages/prepare.js';
import { testDeployment } from '../../../support/deployment.js';
import { DataError, displayName } from '../../../../src/data/errors.js';
import type { Example } from '../../../../src/data/read-table.js';
import { splitPositions, subsample } from '../../../../src/data/split.js';
import { readTable } from '../../../fixtures/data/read-table.js';
import { fitBow, vocabularyToJson } from '../../../../src/features/bow.js';
import type { FeatureIndex, ShardTask } from '../../../../src/run/records.js';
import { readShardPlan } from '../../../../src/run/shard-plan.js';
import { smallExperiment } from '../../../fixtures/experiments/small-experiment.js';

const experiment = smallExperiment();
const rows = Array.from({ length: 40 }, (_, i) => `${i % 2 ? 'good fine great' : 'bad awful poor'} text number${i}\t${i % 2}`);

const deployment = await testDeployment();

async function setup(tsv: string, exp: object = experiment) {
  const store = await tempStore({ 'experiments/small.json': JSON.stringify(exp) });
  const data = await tempStore({ 'a.tsv': tsv });
  return { store, data, ctx: { store, data, reporter: silentReporter } };
}

describe('prepare', () => {
  it('fails on a bad row with file and line, records the failure, and writes no split', async () => {
    const { store, ctx } = await setup([...rows.slice(0, 5), 'oops\t7', ...rows.slice(5)].join('\n') + '\n');
    await expect(prepare(ctx, { experimentKey: 'experiments/small.json' }, { deployment })).rejects.toThrow(/a\.tsv:6: unknown label "7" in column 1; expected one of "0", "1"/);
    const runs = (await store.list('runs/')).map((o) => o.key);
    expect(runs.filter((k) => k.includes('/splits/') || k.includes('/shards/'))).toEqual([]);
    const runId = runs[0]!.split('/')[1]!;
    const m = await readManifest(store, runId);
    expect(m.stages.prepare!.status).toBe('failed');
    expect(m.stages.prepare!.error).toMatch(/a\.tsv:6/);
  });

  it('writes splits, vocabulary and shard plan; a re-run returns the stored plan', async () => {
    const { store, ctx } = await setup(rows.join('\n') + '\n');
    const plan = await prepare(ctx, { experimentKey: 'experiments/small.json' }, { deployment });
    expect(plan.runId).toMatch(/^small-[0-9a-f]{12}$/);
    expect(plan.features).toEqual(['bow']);
    const train = await readSplit(store, `runs/${plan.runId}/splits/a/train.jsonl.gz`);
    const val = await readSplit(store, `runs/${plan.runId}/splits/a/val.jsonl.gz`);
    const test = await readSplit(store, `runs/${plan.runId}/splits/a/test.jsonl.gz`);
    // sklearn: 40 -> 30 rest / 10 test; 30 -> 22 train / 8 val.
    expect([train.length, val.length, test.length]).toEqual([22, 8, 10]);
    expect(new Set([...train, ...val, ...test].map((e) => e.text)).size).toBe(40);
    const vocab = JSON.parse((await store.getOrThrow(`runs/${plan.runId}/features/bow/vocabulary.json`)).toString()) as { terms: string[] };
    expect(vocab.terms).toHaveLength(5);
    // Shards of 10 rows: train 22 -> 3, val 8 -> 1, test 10 -> 1.
    expect(plan.shardPlan).toEqual({ key: `runs/${plan.runId}/shards.json`, count: 5, batches: 5, resultsPrefix: `runs/${plan.runId}/featurize-map` });
    expect(await readShardPlan(store, plan.runId, plan.shardPlan)).toEqual(
      ['train/00000', 'train/00001', 'train/00002', 'val/00000', 'test/00000'].map((s) => `runs/${plan.runId}/shards/bow/a/${s}.json`),
    );
    const again = await prepare(ctx, { experimentKey: 'experiments/small.json' }, { deployment });
    expect(again).toEqual(plan);
    const m = await readManifest(store, plan.runId);
    expect(m.inputs.a![0]!.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(m.splits.bow).toEqual({ 'a/train': 22, 'a/val': 8, 'a/test': 10 });
    expect(JSON.parse(readFileSync(join(store.root, 'runs', plan.runId, 'manifest.json'), 'utf8')).stages.prepare.status).toBe('succeeded');
  });

  it('refuses a run over its cost limit before writing any split, shard or vocabulary, naming the estimate and the limit', async () => {
    const { store, ctx } = await setup(rows.join('\n') + '\n');
    const tiny = await testDeployment({ maxRunCostUsd: '0.000001' });
    const refused = prepare(ctx, { experimentKey: 'experiments/small.json' }, { deployment: tiny });
    await expect(refused).rejects.toThrow(BudgetExceededError);
    await expect(refused).rejects.toThrow(
      /experiments\/small\.json: the run's estimated cost \$0\.\d{4} is above its limit \$0\.000001 \(maxRunCostUsd in cdk\.json\)\. To run it, set "budgetUsd" in the experiment \(at most \$250, /,
    );
    const runs = (await store.list('runs/')).map((o) => o.key);
    const runId = runs[0]!.split('/')[1]!;
    // Only the run's record: the manifest (which holds the failed stage record).
    expect(runs.sort()).toEqual([`runs/${runId}/manifest.json`]);
    const m = await readManifest(store, runId);
    expect(m.stages.prepare).toMatchObject({ status: 'failed', errorName: 'BudgetExceededError', retryable: false });
    expect(m.stages.prepare!.error).toMatch(/above its limit \$0\.000001/);

    // The experiment may raise its own limit within the deployment's ceiling: with budgetUsd it runs.
    await store.put('experiments/small.json', JSON.stringify({ ...experiment, budgetUsd: 1 }));
    const plan = await prepare(ctx, { experimentKey: 'experiments/small.json' }, { deployment: tiny });
    expect(plan.runId).not.toBe(runId);
    expect(plan.shardPlan.count).toBe(5);
  });

  it('refuses a run whose checkpoints.zip could not stream within the Report timeout (439 M parameters), before writing any split', async () => {
    const huge = {
      ...experiment,
      features: { bow: { kind: 'bow', maxFeatures: 200_000, fitOn: { dataset: 'a', split: 'train' } } },
      model: { hidden: Array(8).fill(2048) },
      training: { epochs: 22, checkpointEvery: 2 },
    };
    const { store, ctx } = await setup(rows.join('\n') + '\n', huge);
    const refused = prepare(ctx, { experimentKey: 'experiments/small.json' }, { deployment });
    await expect(refused).rejects.toThrow(ConfigError);
    await expect(refused).rejects.toThrow(
      /experiments\/small\.json: Report plans at 1,284 s: it streams checkpoints\.zip \(58\.9 GiB, 39 files\) in 1,264 s at an assumed 50 MB\/s, plus 20 s for the report, above the Report function's timeout of 900 s \(reportTimeoutSeconds in cdk\.json; /,
    );
    const runs = (await store.list('runs/')).map((o) => o.key);
    expect(runs).toEqual([`runs/${runs[0]!.split('/')[1]!}/manifest.json`]);
    const m = await readManifest(store, runs[0]!.split('/')[1]!);
    expect(m.stages.prepare).toMatchObject({ status: 'failed', errorName: 'ConfigError', retryable: false });
  });

  it('refuses a budgetUsd above the deployment ceiling, however cheap the run', async () => {
    const { ctx } = await setup(rows.join('\n') + '\n', { ...experiment, budgetUsd: 1000 });
    await expect(prepare(ctx, { experimentKey: 'experiments/small.json' }, { deployment })).rejects.toThrow(
      "experiments/small.json: budgetUsd $1000 is above this deployment's ceiling $250 (maxRunCostCeilingUsd in cdk.json)",
    );
  });

  it("the guard's plan counts the shards Prepare writes, under every cap (quick, quickSubsample, subsample, --full)", async () => {
    const capped = {
      ...experiment,
      quick: { a: { train: 20 } },
      subsample: { bow: { a: { test: 7 } } },
      quickSubsample: { bow: { a: { val: 5, train: 12 } } },
    };
    for (const mode of [{}, { quick: true }, { full: true }, { quick: true, full: true }]) {
      const { ctx, data } = await setup(rows.join('\n') + '\n', capped);
      const written = await prepare(ctx, { experimentKey: 'experiments/small.json', ...mode }, { deployment });
      const planned = await planExperiment(parseExperiment(JSON.stringify(capped), 'small.json'), readingProfiler(data), bundledPriceTable(), { deployment, ...mode });
      expect(planned.parts.reduce((a, p) => a + p.shards, 0), JSON.stringify(mode)).toBe(written.shardPlan.count);
      const manifest = await readManifest(ctx.store, written.runId);
      expect(Object.fromEntries(planned.parts.map((p) => [`${p.dataset}/${p.part}`, p.rows])), JSON.stringify(mode)).toEqual(manifest.splits.bow);
    }
  });
});

describe("the guard's sizes come from Prepare's first read", () => {
  it('rows and mean text length per file equal what textshift plan reads (readingProfiler)', async () => {
    const { ctx, data } = await setup(rows.join('\n') + '\n');
    const exp = parseExperiment(JSON.stringify(experiment), 'small.json');
    const read = await readData(ctx, exp, 'experiments/small.json', false);
    const reading = readingProfiler(data);
    for (const [dataset, spec] of Object.entries(exp.datasets)) {
      for (const [part, file] of Object.entries(spec.files)) {
        const sizes = fileProfiles(read)(dataset, part);
        expect(sizes.rows).toBeGreaterThan(0);
        expect(sizes).toEqual(await reading(dataset, part, file, spec));
      }
    }
    expect(() => fileProfiles(read)('a', 'nope')).toThrow('dataset "a" has no file part "nope"');
    // The first read writes nothing: the guard runs before anything of the run is stored.
    expect(await ctx.store.list('runs/')).toEqual([]);
  });
});

describe('prepare pins its inputs (a folder store: by sha256)', () => {
  const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');
  const tsv = rows.join('\n') + '\n';

  it('records the experiment\'s and each dataset file\'s sha256 and etag, no version (a folder keeps none)', async () => {
    const { store, data, ctx } = await setup(tsv);
    const plan = await prepare(ctx, { experimentKey: 'experiments/small.json' }, { deployment });
    const m = await readManifest(store, plan.runId);
    expect(m.experiment).toEqual({ key: 'experiments/small.json', name: 'small', sha256: sha256(JSON.stringify(experiment)), etag: (await store.head('experiments/small.json'))!.etag });
    const etag = (await data.head('a.tsv'))!.etag;
    expect(m.pinned).toEqual({ 'a.tsv': { bytes: Buffer.byteLength(tsv), etag, sha256: sha256(tsv) } });
    expect(m.inputs.a).toEqual([{ part: 'full', key: 'a.tsv', sha256: sha256(tsv), bytes: Buffer.byteLength(tsv), rows: 40, etag }]);
  });

  it('a prepared run whose dataset file was edited since refuses to go on, naming the file and both sha256s', async () => {
    const { data, ctx } = await setup(tsv);
    const plan = await prepare(ctx, { experimentKey: 'experiments/small.json' }, { deployment });
    const edited = rows.slice(0, 12).join('\n') + '\n';
    await data.put('a.tsv', edited);
    const err = await prepare(ctx, { experimentKey: 'experiments/small.json', runId: plan.runId }, { deployment }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(InputChangedError);
    expect((err as Error).message).toContain(`a.tsv changed after run ${plan.runId} pinned it (sha256 ${sha256(tsv)} then, ${sha256(edited)} now)`);
    expect((err as Error).message).toContain('start a new run');
  });

  it('the same bytes written again (a new file, a new etag) are still the pinned input', async () => {
    const { data, ctx } = await setup(tsv);
    const plan = await prepare(ctx, { experimentKey: 'experiments/small.json' }, { deployment });
    const before = (await data.head('a.tsv'))!.etag;
    await data.put('a.tsv', tsv);
    expect((await data.head('a.tsv'))!.etag).not.toBe(before);
    expect(await prepare(ctx, { experimentKey: 'experiments/small.json', runId: plan.runId }, { deployment })).toEqual(plan);
  });

  it('resuming a run whose experiment file was edited since is refused, naming the file: the run keeps its config', async () => {
    const { store, ctx } = await setup(tsv);
    const plan = await prepare(ctx, { experimentKey: 'experiments/small.json' }, { deployment });
    const edited = JSON.stringify({ ...experiment, stages: [{ name: 'other', dataset: 'a' }] });
    await store.put('experiments/small.json', edited);
    await expect(prepare(ctx, { experimentKey: 'experiments/small.json', runId: plan.runId }, { deployment })).rejects.toThrow(
      `experiments/small.json changed after run ${plan.runId} started (sha256 ${sha256(JSON.stringify(experiment))} then, ${sha256(edited)} now)`,
    );
    expect((await readManifest(store, plan.runId)).config.stages).toEqual([{ name: '1', dataset: 'a', train: 'train', val: 'val' }]);
  });

  it('a Prepare retried after a dataset edit (it failed after pinning) reads nothing new: it is refused', async () => {
    // The first attempt stops at a bad row, after pinning; the file is then "fixed" under the same run id.
    const bad = [...rows.slice(0, 5), 'oops\t7', ...rows.slice(5)].join('\n') + '\n';
    const { store, data, ctx } = await setup(bad);
    await expect(prepare(ctx, { experimentKey: 'experiments/small.json', runId: 'small-pinned' }, { deployment })).rejects.toThrow(/a\.tsv:6/);
    expect((await readManifest(store, 'small-pinned')).pinned?.['a.tsv']?.sha256).toBe(sha256(bad));
    await data.put('a.tsv', tsv);
    await expect(prepare(ctx, { experimentKey: 'experiments/small.json', runId: 'small-pinned' }, { deployment })).rejects.toBeInstanceOf(InputChangedError);
    expect(await store.list('runs/small-pinned/splits/')).toEqual([]);
  });
});

describe('prepare streams', () => {
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

    const plan = await prepare(ctx, { experimentKey: 'experiments/small.json' }, { deployment });
    for (const part of ['train', 'val', 'test'] as const) {
      const split = await readSplit(store, `runs/${plan.runId}/splits/a/${part}.jsonl.gz`);
      expect(split).toEqual(source.filter((e) => expected[part].includes(e)));
      expect(await byFamily(plan.runId, part)).toEqual(expected[part]);
    }
    const vocab = (await store.getOrThrow(`runs/${plan.runId}/features/bow/vocabulary.json`)).toString();
    expect(vocab).toBe(vocabularyToJson(fitBow(expected.train.map((e) => e.text), 5)));

    await store.put('experiments/quick.json', JSON.stringify({ ...experiment, name: 'quick', quick: { a: { train: 4 } } }));
    const quick = await prepare(ctx, { experimentKey: 'experiments/quick.json', quick: true }, { deployment });
    expect(await byFamily(quick.runId, 'train')).toEqual(subsample(expected.train, 4, 42));
    expect(await readSplit(store, `runs/${quick.runId}/splits/a/train.jsonl.gz`)).toHaveLength(4);
  });

  it('a gzip bomb fails Prepare naming the file in the recorded cause; nothing of the run is split', async () => {
    const member = gzipSync(Buffer.alloc(10 * 2 ** 20, 'a'), { level: 9 });
    const store = await tempStore({ 'experiments/bomb.json': JSON.stringify({ ...experiment, name: 'bomb', datasets: { a: { ...experiment.datasets.a, files: { full: { path: 'a.tsv.gz', format: 'tsv', text: 0, label: 1 } } } } }) });
    const data = await tempStore({ 'a.tsv.gz': Buffer.concat([gzipSync(rows.slice(0, 3).join('\n') + '\n'), ...Array.from({ length: 300 }, () => member)]) });
    const err = await prepare({ store, data, reporter: silentReporter }, { experimentKey: 'experiments/bomb.json' }, { deployment }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DataError);
    const message = `${displayName(data, 'a.tsv.gz')}:4: the record starting on this line is longer than maxRecordBytes (1048576 bytes)`;
    expect((err as Error).message).toContain(message);
    const runId = (await store.list('runs/'))[0]!.key.split('/')[1]!;
    expect((await readManifest(store, runId)).stages.prepare).toMatchObject({ status: 'failed', errorName: 'DataError', error: expect.stringContaining(message) });
    expect((await store.list(`runs/${runId}/splits/`)).map((o) => o.key)).toEqual([]);
  });

  it('a data file that changes after the first read does not reach the splits: a small file is held, not read again', async () => {
    const { store, data, ctx } = await setup(rows.join('\n') + '\n');
    const exp = parseExperiment(JSON.stringify(experiment), 'small.json');
    const read = await readData(ctx, exp, 'experiments/small.json', false);
    await data.put('a.tsv', rows.slice(0, 15).join('\n') + '\n');
    const keys = runKeys('r1');
    await writeData(ctx, exp, keys, read);
    const texts = (await Promise.all(['train', 'val', 'test'].map((part) => readSplit(store, keys.split('a', part))))).flat().map((e) => e.text);
    expect(texts.sort()).toEqual(rows.map((r) => r.split('\t')[0]!).sort());
    // A file too large to hold is read again, and a change in between fails naming it (test/unit/data/load-dataset.test.ts).
  });

  it("keepSplits leaves the rows it held in the process memo exactly as Featurize's readSplit would read them; a streamed file's rows are not kept", async () => {
    const { store, ctx } = await setup(rows.join('\n') + '\n');
    const exp = parseExperiment(JSON.stringify(experiment), 'small.json');
    const held = { ...ctx, memo: new Map<string, unknown>() };
    const keys = runKeys('r1');
    await writeData(held, exp, keys, await readData(held, exp, 'experiments/small.json', false), true);
    for (const part of ['train', 'val', 'test']) {
      const memo = (await held.memo.get(splitMemoKey(keys.split('a', part)))) as Example[];
      expect(memo.length).toBeGreaterThan(0);
      expect(memo).toEqual(await readSplit(store, keys.split('a', part)));
    }
    const streamed = { ...ctx, memo: new Map<string, unknown>() };
    const read = await readData(streamed, exp, 'experiments/small.json', false);
    // As planDataset leaves a file over holdTextChars(): streamParts reads it again.
    read.plans.get('a')!.plan.texts.full = undefined;
    await writeData(streamed, exp, runKeys('r2'), read, true);
    expect([...streamed.memo.keys()]).toEqual([]);
    expect(await readSplit(store, runKeys('r2').split('a', 'train'))).toEqual(await readSplit(store, keys.split('a', 'train')));
    // Without keepSplits (a Lambda's Prepare: its Featurize runs elsewhere) nothing is kept.
    const lambda = { ...ctx, memo: new Map<string, unknown>() };
    await writeData(lambda, exp, runKeys('r3'), await readData(lambda, exp, 'experiments/small.json', false));
    expect([...lambda.memo.keys()]).toEqual([]);
  });
});
