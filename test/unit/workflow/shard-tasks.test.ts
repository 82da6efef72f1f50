// Prepare's shard tasks. A shard featurized in another process (a Lambda) carries its rows' texts, so Featurize reads
// its own task and never a whole split (which stops at V8's string limit for the README's 1 GB CSV); Prepare takes
// those texts from the split streaming, a window of shards per read when they do not fit its text budget. The tasks
// are written in parallel, and a retried Prepare keeps the batches a failed attempt stored.
import { describe, expect, it } from 'vitest';
import { tempStore } from '../../fixtures/data/temp-store.js';
import type { FsBlobStore } from '../../../src/store/fs-store.js';
import { silentReporter } from '../../../src/run/reporter.js';
import { runKeys } from '../../../src/run/keys.js';
import type { FeatureIndex, ShardTask } from '../../../src/run/records.js';
import { readShardPlan } from '../../../src/run/shard-plan.js';
import { readManifest } from '../../../src/run/manifest.js';
import { TransientError } from '../../../src/errors/index.js';
import { readSplit } from '../../../src/workflow/split-files.js';
import { featurize } from '../../../src/workflow/stages/featurize.js';
import { prepare } from '../../../src/workflow/stages/prepare.js';
import { SHARD_TASK_BATCH, SHARD_WRITES_IN_FLIGHT, writeShardTasks } from '../../../src/workflow/shard-tasks.js';
import { testDeployment } from '../../support/deployment.js';
import { smallExperiment } from '../../fixtures/experiments/small-experiment.js';

const deployment = await testDeployment();

const experiment = (rows: number) => smallExperiment(`small${rows}`, 50);
const tsv = (rows: number) =>
  Array.from({ length: rows }, (_, i) => `${i % 2 ? 'good fine great' : 'bad awful poor'} text ${'number '.repeat(i % 7)}${i}\t${i % 2}`).join('\n') + '\n';

async function setup(rows: number) {
  const store = await tempStore({ [`experiments/small${rows}.json`]: JSON.stringify(experiment(rows)) });
  const data = await tempStore({ 'a.tsv': tsv(rows) });
  return { store, data, input: { experimentKey: `experiments/small${rows}.json` } };
}

/** The store with every key read recorded (whole objects and streams). */
function recordingReads(store: FsBlobStore): { store: FsBlobStore; read: string[] } {
  const read: string[] = [];
  const wrapped = Object.assign(Object.create(store) as FsBlobStore, {
    get: (key: string, o?: object) => (read.push(key), store.get(key, o)),
    getOrThrow: (key: string, o?: object) => (read.push(key), store.getOrThrow(key, o)),
    getStream: (key: string, o?: object) => (read.push(key), store.getStream(key, o)),
    getWithInfo: (key: string, o?: object) => (read.push(key), store.getWithInfo(key, o)),
  });
  return { store: wrapped, read };
}

/** Every shard task of a run, by key, as stored. */
async function storedTasks(store: FsBlobStore, runId: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const o of await store.list(runKeys(runId).shardsPrefix)) out.set(o.key, (await store.getOrThrow(o.key)).toString('utf8'));
  return out;
}

describe('shard tasks', () => {
  it("a shard featurized in another process reads its own task, never the split, and gets the memo path's texts in the same order", async () => {
    // As a Lambda's Prepare: no keepSplits, so Featurize (elsewhere) has no split in memory.
    const remote = await setup(200);
    const plan = await prepare({ store: remote.store, data: remote.data, reporter: silentReporter }, remote.input, { deployment });
    // As a local run: the split rows stay in the memo for a Featurize in the same process.
    const local = await setup(200);
    const memo = new Map<string, unknown>();
    const localCtx = { store: local.store, data: local.data, reporter: silentReporter, memo };
    const localPlan = await prepare(localCtx, local.input, { deployment, keepSplits: true });
    expect(localPlan.runId).toBe(plan.runId);

    const shardKeys = await readShardPlan(remote.store, plan.runId, plan.shardPlan);
    // 200 rows: train 112 in 12 shards of 10, val 38 in 4, test 50 in 5.
    expect(shardKeys).toHaveLength(12 + 4 + 5);
    const keys = runKeys(plan.runId);
    const splits = Object.fromEntries(await Promise.all(['train', 'val', 'test'].map(async (p) => [keys.split('a', p), await readSplit(remote.store, keys.split('a', p))] as const)));
    for (const shardKey of shardKeys) {
      const task = JSON.parse((await remote.store.getOrThrow(shardKey)).toString('utf8')) as ShardTask;
      expect(task.texts).toEqual(task.rows.map((line) => splits[task.splitKey]![line]!.text));
      const localTask = JSON.parse((await local.store.getOrThrow(shardKey)).toString('utf8')) as ShardTask;
      expect(localTask.texts).toBeUndefined();
      expect(localTask.rows).toEqual(task.rows);

      const { store, read } = recordingReads(remote.store);
      // A fresh memo per shard, as a cold Lambda container has.
      const out = await featurize({ store, data: remote.data, reporter: silentReporter, memo: new Map() }, { runId: plan.runId, shardKey });
      expect(read.filter((k) => k.includes('/splits/'))).toEqual([]);
      // The same texts in the same order: the same content-addressed cache entry as the local run's.
      expect(out.cacheKey).toBe((await featurize(localCtx, { runId: plan.runId, shardKey })).cacheKey);
    }
  });

  it('takes the texts a window of shards per read of the split when they pass the text budget: the same tasks as one read', async () => {
    const { store, data, input } = await setup(400);
    const plan = await prepare({ store, data, reporter: silentReporter }, input, { deployment });
    const keys = runKeys(plan.runId);
    const index = JSON.parse((await store.getOrThrow(keys.featureIndex('bow'))).toString('utf8')) as FeatureIndex;
    const stored = await Promise.all(index.parts['a/train']!.shards.map(async (k) => JSON.parse((await store.getOrThrow(k)).toString('utf8')) as ShardTask));
    const tasks = stored.map(({ texts: _, ...task }) => task);
    const chars = stored.reduce((n, t) => n + t.texts!.reduce((m, s) => m + s.length, 0), 0);
    const again = runKeys('again');
    const { store: recorded, read } = recordingReads(store);
    const windowed = await writeShardTasks({ store: recorded, data, reporter: silentReporter }, again, tasks, { textChars: Math.ceil(chars / 4) });
    // A quarter of the texts at a time: four reads at least (a window ends on a shard), never the whole split at once.
    expect(windowed.splitReads).toBeGreaterThanOrEqual(4);
    expect(read.filter((k) => k === keys.split('a', 'train'))).toHaveLength(windowed.splitReads);
    expect(windowed).toMatchObject({ written: tasks.length, kept: 0 });
    for (const [i, key] of windowed.keys.entries()) expect(JSON.parse((await store.getOrThrow(key)).toString('utf8'))).toEqual(stored[i]);
    // A budget below one shard still makes progress: one shard per read.
    const tiny = await writeShardTasks({ store, data, reporter: silentReporter }, runKeys('tiny'), tasks.slice(0, 3), { textChars: 1 });
    expect(tiny.splitReads).toBe(3);
  });

  it('writes shard tasks in parallel, and a Prepare retried after a failure keeps the stored batches and writes only the rest', async () => {
    const rows = 25_000;
    const { store, data, input } = await setup(rows);
    let inFlight = 0;
    let most = 0;
    let shardPuts = 0;
    let failAt = 1200;
    const flaky = Object.assign(Object.create(store) as FsBlobStore, {
      async put(key: string, body: string | Buffer) {
        if (!/\/shards\/.*\d+\.json$/.test(key)) return store.put(key, body);
        if (++shardPuts === failAt) throw new TransientError(`S3 timed out writing ${key}`);
        most = Math.max(most, ++inFlight);
        try {
          await new Promise((resolve) => setTimeout(resolve, 1));
          await store.put(key, body);
        } finally {
          inFlight--;
        }
      },
    });
    const ctx = { store: flaky, data, reporter: silentReporter };
    await expect(prepare(ctx, input, { deployment })).rejects.toThrow(/S3 timed out writing runs\/.*\/shards\/bow\/a\/train\/01199\.json/);
    expect(most).toBeGreaterThan(1);
    expect(most).toBeLessThanOrEqual(SHARD_WRITES_IN_FLIGHT);
    const runId = (await store.list('runs/'))[0]!.key.split('/')[1]!;
    expect((await readManifest(store, runId)).stages.prepare).toMatchObject({ status: 'failed', errorName: 'TransientError' });

    // Train: 14,063 rows in 1,407 shards of 10; val 4,687 in 469; test 6,250 in 625.
    shardPuts = 0;
    failAt = 0;
    const plan = await prepare(ctx, input, { deployment });
    const total = 1407 + 469 + 625;
    expect(plan.shardPlan.count).toBe(total);
    // The first 1,000 train tasks were stored as one batch before the failure: only the rest are written again.
    expect(SHARD_TASK_BATCH).toBe(1000);
    expect(shardPuts).toBe(total - SHARD_TASK_BATCH);

    // What the retry leaves is what one uninterrupted Prepare stores.
    const clean = await setup(rows);
    const cleanPlan = await prepare({ store: clean.store, data: clean.data, reporter: silentReporter }, clean.input, { deployment });
    expect(cleanPlan.runId).toBe(plan.runId);
    expect(await storedTasks(store, runId)).toEqual(await storedTasks(clean.store, runId));
  }, 120_000);
});
