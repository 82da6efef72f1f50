/**
 * The shard plan of a run: every featurize shard key, in batches (a JSON array of JSON arrays of shard keys; see
 * `inBatches` in graph.ts), stored at `runs/<id>/shards.json`. Prepare writes it; the Featurize Distributed Map reads
 * it (ItemReader, one child execution per batch) on AWS, the local runner reads it here. Only its key and counts
 * travel in the state, so the payload does not grow with the number of shards.
 */
import type { BlobStore } from '../store/blob-store.js';
import { InvalidDataError } from '../errors/index.js';
import { inBatches, type ItemPlan } from './graph.js';
import { isShardOf, runKeys } from './keys.js';

/** Writes the run's shard plan (a single PUT, so it is whole or absent) and returns what Prepare hands on. */
export async function writeShardPlan(store: BlobStore, runId: string, shardKeys: readonly string[]): Promise<ItemPlan> {
  const keys = runKeys(runId);
  const batches = inBatches(shardKeys);
  await store.put(keys.shardPlan, JSON.stringify(batches));
  return { key: keys.shardPlan, count: shardKeys.length, batches: batches.length, resultsPrefix: keys.shardMapResultsPrefix };
}

/**
 * Reads a shard plan back as the list of shard keys: it must be an array of batches of shard keys of `runId`, as
 * many batches and keys as the plan says.
 */
export async function readShardPlan(store: BlobStore, runId: string, plan: ItemPlan): Promise<string[]> {
  const text = (await store.getOrThrow(plan.key)).toString('utf8');
  let batches: unknown;
  try {
    batches = JSON.parse(text);
  } catch (err) {
    throw new InvalidDataError(`${plan.key}: not valid JSON: ${(err as Error).message}`);
  }
  if (!Array.isArray(batches) || !batches.every(Array.isArray)) throw new InvalidDataError(`${plan.key}: expected a JSON array of batches (arrays) of shard keys`);
  const keys = (batches as unknown[][]).flat();
  const bad = keys.findIndex((k) => typeof k !== 'string' || !isShardOf(k, runId));
  if (bad >= 0) throw new InvalidDataError(`${plan.key}: shard ${bad} (${JSON.stringify(keys[bad])}) is not a shard key of run ${runId}`);
  if (keys.length !== plan.count || batches.length !== plan.batches) {
    throw new InvalidDataError(`${plan.key}: holds ${keys.length} shard keys in ${batches.length} batches, the plan says ${plan.count} in ${plan.batches}`);
  }
  return keys as string[];
}
