import { validateKey } from '../../store/blob-store.js';
import { createFeaturizer, featurizerIdentity, shardContentHash, type Featurizer } from '../../features/featurizer.js';
import { featureCacheKey, isShardOf, shardResultKey } from '../../run/keys.js';
import { memoized, type StageContext } from '../context.js';
import { readManifest } from '../../run/manifest.js';
import { pinnedModelStore } from '../pinned-models.js';
import type { FeaturizeInput, FeaturizeOutput } from '../stage-io.js';
import { readSplit, splitMemoKey } from '../split-files.js';
import type { ShardTask, ShardResult } from '../../run/records.js';
import { InvalidDataError, InvalidInputError } from '../../errors/index.js';

// The key lives with the run layout (artifacts.ts), so readers of shard results need not load the encoders.

/**
 * Featurize one shard: its texts go through the encoder of its pass into `cache/features/<hash>.<ext>`, keyed by
 * the texts and the encoder identity (with its feature code version). A BERT-family entry holds every pooling of each
 * text, so every family of the pass reads this one shard. A cache hit does no encoder work and marks the entry used;
 * the cache entry is written atomically, so a crash mid-shard leaves no partial entry and a retry starts clean.
 */
export async function featurize(ctx: StageContext, input: FeaturizeInput): Promise<FeaturizeOutput> {
  const { store } = ctx;
  const t0 = Date.now();
  const shardKey = validateKey(input.shardKey);
  if (!isShardOf(shardKey, input.runId)) {
    throw new InvalidInputError(`featurize: shard key ${shardKey} does not belong to run ${input.runId}`);
  }
  const task = JSON.parse((await store.getOrThrow(shardKey)).toString('utf8')) as ShardTask;
  const manifest = await memoized(ctx, `manifest:${input.runId}`, () => readManifest(store, input.runId));
  const spec = manifest.config.features[task.feature];
  if (!spec) throw new InvalidDataError(`featurize: ${shardKey} names feature "${task.feature}", which the run's experiment does not define`);

  const texts = task.texts === undefined ? await splitTexts(ctx, task, shardKey) : taskTexts(task, shardKey);
  // The encoder reads its model at the versions the run pinned: one encoder per run, whatever was uploaded since.
  const models = pinnedModelStore(store, manifest.pinnedModels ?? {}, input.runId);
  const { identity, ext, blocks } = await memoized(ctx, `identity:${input.runId}:${task.feature}`, () =>
    featurizerIdentity(task.feature, spec, models, input.runId),
  );
  const cacheKey = featureCacheKey(shardContentHash(identity, texts), ext);
  // A hit is touched: an entry in use restarts the age its expiry counts (the bucket's cache lifecycle rule), so one
  // made weeks ago cannot expire between this shard and the Train that reads it. One gone since the HEAD is a miss.
  const cached = (await store.head(cacheKey)) !== undefined && (await store.touch(cacheKey));
  if (!cached) {
    const featurizer = await memoized<Featurizer>(ctx, `featurizer:${input.runId}:${task.feature}`, () =>
      createFeaturizer(task.feature, spec, models, input.runId),
    );
    await store.put(cacheKey, await featurizer.encode(texts));
  }
  const result: ShardResult = {
    shardKey,
    cacheKey,
    encoder: identity,
    ...(blocks ? { blocks: [...blocks] } : {}),
    cached,
    rows: texts.length,
    seconds: (Date.now() - t0) / 1000,
  };
  await store.put(shardResultKey(shardKey), JSON.stringify(result));
  return { shardKey, cacheKey, cached };
}

/** A shard's texts from its split, which a local run's Prepare left in the memo (or, in an old run, read whole). */
async function splitTexts(ctx: StageContext, task: ShardTask, shardKey: string): Promise<string[]> {
  const split = await memoized(ctx, splitMemoKey(task.splitKey), () => readSplit(ctx.store, task.splitKey));
  return task.rows.map((i) => {
    const e = split[i];
    if (!e) throw new InvalidDataError(`featurize: ${shardKey} row ${i} is outside ${task.splitKey} (${split.length} rows)`);
    return e.text;
  });
}

/** The texts a shard task carries (Prepare took them from the split): one string per row. */
function taskTexts(task: ShardTask, shardKey: string): string[] {
  const { texts } = task;
  if (!Array.isArray(texts) || texts.length !== task.rows.length || !texts.every((t) => typeof t === 'string')) {
    throw new InvalidDataError(`featurize: ${shardKey}: expected "texts" to be ${task.rows.length} strings, one per row`);
  }
  return texts;
}
