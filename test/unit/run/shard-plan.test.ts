import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_CHILD_EXECUTIONS, batchCount, inBatches } from '../../../src/run/graph.js';
import { runKeys } from '../../../src/run/keys.js';
import { readShardPlan, writeShardPlan } from '../../../src/run/shard-plan.js';
import { FsBlobStore } from '../../../src/store/fs-store.js';

const keys = (runId: string, n: number) => Array.from({ length: n }, (_, i) => runKeys(runId).shard('bow', 'imdb', 'train', i));

describe('shard plan: every shard key in S3, in at most 1,000 batches (one child execution each)', () => {
  let dir: string;
  let store: FsBlobStore;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'textshift-plan-'));
    store = new FsBlobStore(dir);
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('batches: one shard each up to 1,000 shards, then equal batches of ceil(n / 1,000)', () => {
    expect(inBatches(['a', 'b', 'c'])).toEqual([['a'], ['b'], ['c']]);
    expect(inBatches(Array.from({ length: 1000 }, (_, i) => i))).toHaveLength(1000);
    const b = inBatches(Array.from({ length: 1001 }, (_, i) => i));
    expect([b.length, b[0]!.length, b.at(-1)!.length]).toEqual([501, 2, 1]);
    const big = inBatches(Array.from({ length: 100_000 }, (_, i) => i));
    expect([big.length, big[0]!.length]).toEqual([MAX_CHILD_EXECUTIONS, 100]);
    for (const n of [0, 1, 999, 1000, 1001, 2500, 100_000, 123_457]) expect(batchCount(n), String(n)).toBe(inBatches(Array.from({ length: n })).length);
  });

  it('writes the plan under the run and reads the same keys back, in order', async () => {
    const shardKeys = keys('r1', 2500);
    const plan = await writeShardPlan(store, 'r1', shardKeys);
    expect(plan).toEqual({ key: 'runs/r1/shards.json', count: 2500, batches: 834, resultsPrefix: 'runs/r1/featurize-map' });
    expect(await readShardPlan(store, 'r1', plan)).toEqual(shardKeys);
  });

  it('refuses a plan that is not what Prepare wrote, naming the key and what is wrong', async () => {
    const plan = await writeShardPlan(store, 'r2', keys('r2', 3));
    await expect(readShardPlan(store, 'r2', { ...plan, count: 4 })).rejects.toThrow(/runs\/r2\/shards\.json: holds 3 shard keys in 3 batches, the plan says 4 in 3/);
    await expect(readShardPlan(store, 'r3', plan)).rejects.toThrow(/runs\/r2\/shards\.json: shard 0 \(".*"\) is not a shard key of run r3/);
    await store.put(plan.key, JSON.stringify(keys('r2', 3)));
    await expect(readShardPlan(store, 'r2', plan)).rejects.toThrow(/expected a JSON array of batches/);
    await store.put(plan.key, '[[');
    await expect(readShardPlan(store, 'r2', plan)).rejects.toThrow(/runs\/r2\/shards\.json: not valid JSON/);
  });
});
