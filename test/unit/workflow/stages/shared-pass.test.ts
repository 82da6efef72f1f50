// Families that differ only in pooling share one encoder pass: Prepare plans one set of shards for them, Featurize
// encodes each text once into a cache entry holding every pooling, and each family trains on exactly the vectors its
// pooling gives when encoded on its own. A second run finds every entry in the cache and encodes nothing.
// Real ONNX Runtime on the tiny random-weight BERT (scripts/onnx/test-model.ts), real SST-2/IMDB rows, quick caps.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeTestModel, TEST_MODEL_PRESETS } from '../../../../scripts/onnx/test-model.js';
import { BertEncoder } from '../../../../src/features/bert/encoder.js';
import { POOLINGS, type Pooling } from '../../../../src/features/bert/pooling.js';
import { runKeys } from '../../../../src/run/keys.js';
import { readManifest } from '../../../../src/run/manifest.js';
import type { FeatureIndex, ShardTask } from '../../../../src/run/records.js';
import { silentReporter } from '../../../../src/run/reporter.js';
import { FsBlobStore } from '../../../../src/store/fs-store.js';
import type { StageContext } from '../../../../src/workflow/context.js';
import { readSplit } from '../../../../src/workflow/split-files.js';
import { featurize } from '../../../../src/workflow/stages/featurize.js';
import { readShardPlan } from '../../../../src/run/shard-plan.js';
import { prepare } from '../../../../src/workflow/stages/prepare.js';
import { measuredUsage } from '../../../../src/workflow/stages/report.js';
import { loadPart } from '../../../../src/workflow/stages/train.js';
import { dataRoot } from '../../../support/data.js';
import { testDeployment } from '../../../support/deployment.js';

const dir = mkdtempSync(join(tmpdir(), 'textshift-shared-pass-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const store = new FsBlobStore(dir);
const ctx: StageContext = { store, data: new FsBlobStore(dataRoot()), reporter: silentReporter, memo: new Map() };

// tiny-bert.json with a pooling list (four families) and, declared apart, a fifth family that differs only in pooling.
const experiment = JSON.parse(readFileSync(new URL('../../../fixtures/experiments/tiny-bert.json', import.meta.url), 'utf8')) as {
  features: Record<string, Record<string, unknown>>;
};
const bert = experiment.features.bert!;
experiment.features = { bert: { ...bert, pooling: [...POOLINGS] }, solo: { ...bert, pooling: 'max' } };
const FAMILIES = ['bert_mean', 'bert_max', 'bert_cls', 'bert_sep', 'solo'];
const poolingOf = (family: string): Pooling => (family === 'solo' ? 'max' : (family.slice('bert_'.length) as Pooling));

/** Prepare, then Featurize every shard of the run; returns the run id and its shard keys. */
async function run(runId: string): Promise<string[]> {
  const { shardPlan } = await prepare(ctx, { experimentKey: 'experiments/poolings.json', quick: true, runId }, { deployment: await testDeployment() });
  const shardKeys = await readShardPlan(ctx.store, runId, shardPlan);
  for (const shardKey of shardKeys) await featurize(ctx, { runId, shardKey });
  return shardKeys;
}

let shardKeys: string[];
beforeAll(async () => {
  await writeTestModel(join(dir, 'models', 'tiny-bert'), TEST_MODEL_PRESETS.tiny);
  await store.put('experiments/poolings.json', JSON.stringify(experiment));
  shardKeys = await run('first');
}, 120_000);

describe('one encoder pass for families that differ only in pooling', () => {
  it('plans one set of shards for all five families, and the run encodes each text once', async () => {
    // quick caps: sst2 800/200/300, imdb 1200/300/300 -> 3100 texts in 9 shards of <= 500 (as one family had).
    expect(shardKeys).toHaveLength(9);
    expect(new Set(shardKeys.map((k) => k.split('/')[3]))).toEqual(new Set(['bert_mean']));
    const { encoded } = await measuredUsage(ctx, await readManifest(store, 'first'));
    expect(encoded).toEqual({
      bert_mean: { families: FAMILIES, encoder: expect.stringMatching(/^bert-poolings:[0-9a-f]{16}:128@code-v1$/), texts: 3100, cachedShards: 0, computedShards: 9 },
    });
    expect((await store.list('cache/features/')).filter((o) => o.key.endsWith('.npy'))).toHaveLength(9);
  });

  it("gives each family exactly the vectors of its pooling encoded on its own", async () => {
    const encoder = await BertEncoder.load(join(dir, 'models', 'tiny-bert'));
    try {
      for (const family of FAMILIES) {
        const index = JSON.parse((await store.getOrThrow(runKeys('first').featureIndex(family))).toString('utf8')) as FeatureIndex;
        expect(index.pooling).toBe(poolingOf(family));
        for (const part of ['sst2/test', 'imdb/train']) {
          const { x } = await loadPart(ctx, 'first', index, part);
          // The same texts, shard by shard as featurize batched them, encoded with this pooling alone.
          const alone: Float32Array[] = [];
          for (const shardKey of index.parts[part]!.shards) {
            const task = JSON.parse((await store.getOrThrow(shardKey)).toString('utf8')) as ShardTask;
            const split = await readSplit(store, task.splitKey);
            const texts = task.rows.map((i) => split[i]!.text);
            alone.push((await encoder.encode(texts, { poolings: [poolingOf(family)], maxLength: 128, batchSize: 32 })).embeddings[poolingOf(family)]);
          }
          const expected = Buffer.concat(alone.map((a) => Buffer.from(a.buffer, a.byteOffset, a.byteLength)));
          expect(x.kind).toBe('dense');
          expect([x.m.rows, x.m.cols]).toEqual([index.parts[part]!.rows, encoder.hiddenSize]);
          const got = x.m as { data: Float32Array };
          expect(Buffer.from(got.data.buffer, got.data.byteOffset, got.data.byteLength).equals(expected), `${family} ${part}`).toBe(true);
        }
      }
    } finally {
      await encoder.close();
    }
  }, 120_000);

  it('a second run finds every shard in the cache and encodes nothing', async () => {
    const second = await run('second');
    expect(second).toHaveLength(9);
    const { encoded } = await measuredUsage(ctx, await readManifest(store, 'second'));
    expect(encoded.bert_mean).toMatchObject({ families: FAMILIES, texts: 0, cachedShards: 9, computedShards: 0 });
  }, 120_000);
});
