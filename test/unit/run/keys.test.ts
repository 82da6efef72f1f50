import { describe, expect, it } from 'vitest';
import { featureCacheKey, isShardOf, parseShardKey, PREFIXES, runKeys, shardResultKey } from '../../../src/run/keys.js';

describe('run keys', () => {
  it('builds the layout of DESIGN.md under runs/<runId>/', () => {
    const k = runKeys('sst2-imdb-abc');
    expect(k.manifest).toBe('runs/sst2-imdb-abc/manifest.json');
    expect(k.split('imdb', 'test')).toBe('runs/sst2-imdb-abc/splits/imdb/test.jsonl.gz');
    expect(k.best('bow_1')).toBe('runs/sst2-imdb-abc/models/bow_1/best');
    expect(k.report('cost.json')).toBe('runs/sst2-imdb-abc/report/cost.json');
    expect(k.lock).toBe('runs/sst2-imdb-abc/lock.json');
    expect(featureCacheKey('ab12', 'csr')).toBe('cache/features/ab12.csr');
    expect(Object.values(PREFIXES).every((p) => p.endsWith('/'))).toBe(true);
  });

  it('reads a shard key back into the parts it was built from', () => {
    const key = runKeys('r1').shard('bow', 'imdb', 'train', 7);
    expect(key).toBe('runs/r1/shards/bow/imdb/train/00007.json');
    expect(parseShardKey(key)).toEqual({ runId: 'r1', feature: 'bow', dataset: 'imdb', part: 'train', index: 7 });
    expect(shardResultKey(key)).toBe('runs/r1/featurized/bow/imdb/train/00007.json');
  });

  it('tells a shard of this run from anything else', () => {
    const key = runKeys('r1').shard('use', 'sst2', 'val', 0);
    expect(isShardOf(key, 'r1')).toBe(true);
    expect(isShardOf(key, 'r2')).toBe(false);
    expect(isShardOf('runs/r1/shards/../manifest.json', 'r1')).toBe(false);
    expect(isShardOf('runs/r1/manifest.json', 'r1')).toBe(false);
    expect(parseShardKey('runs/r1/shards/bow/imdb/train/x.json')).toBeUndefined();
  });
});
