// The feature cache key: what makes two shards share an entry. Different texts must never share one (texts may hold
// NUL, so a separator cannot delimit them), and entries made by other feature code must never be reused.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { FeatureConfig } from '../../../src/config/experiment.js';
import { bowIdentity, FEATURE_CODE_VERSIONS, featurizerIdentity, shardContentHash } from '../../../src/features/featurizer.js';
import { featureCacheKey, runKeys } from '../../../src/run/keys.js';
import { FsBlobStore } from '../../../src/store/fs-store.js';

const dir = mkdtempSync(join(tmpdir(), 'textshift-featurizer-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('shardContentHash', () => {
  it('keeps shards apart that a NUL-joined hash confused: a text holding NUL against the same text split in two', () => {
    const id = 'bow:0123456789abcdef@code-v1';
    expect(shardContentHash(id, ['a\0b'])).not.toBe(shardContentHash(id, ['a', 'b']));
    expect(shardContentHash(id, ['a', '\0b'])).not.toBe(shardContentHash(id, ['a\0', 'b']));
    expect(shardContentHash(id, ['x', ''])).not.toBe(shardContentHash(id, ['x']));
    // Where the identity ends and the texts begin is not ambiguous either.
    expect(shardContentHash(`${id}\0a`, ['b'])).not.toBe(shardContentHash(id, ['a', 'b']));
  });

  it('is a pure function of identity and texts (a cache key shared across runs)', () => {
    const texts = ['a good film', 'Ünïcödé ✓', ''];
    expect(shardContentHash('id', texts)).toBe(shardContentHash('id', [...texts]));
    expect(shardContentHash('id', texts)).toMatch(/^[0-9a-f]{64}$/);
    expect(shardContentHash('id2', texts)).not.toBe(shardContentHash('id', texts));
  });
});

describe('featurizer identity', () => {
  const store = new FsBlobStore(dir);
  const spec = { kind: 'bow' } as FeatureConfig;
  const vocabulary = JSON.stringify({ vocabulary: { good: 0, film: 1 } });

  it('carries the feature kind\'s code version, so a bump gives every shard a new cache key', async () => {
    await store.put(runKeys('r1').vocabulary('bow'), vocabulary);
    const texts = ['a good film'];
    const { identity } = await featurizerIdentity('bow', spec, store, 'r1');
    expect(identity).toBe(`${bowIdentity(vocabulary)}@code-v${FEATURE_CODE_VERSIONS.bow}`);
    // Not the key the unversioned identity gave (entries made before versions were recorded are not reused).
    expect(shardContentHash(identity, texts)).not.toBe(shardContentHash(bowIdentity(vocabulary), texts));

    const versions = FEATURE_CODE_VERSIONS as Record<string, number>;
    const was = versions.bow!;
    versions.bow = was + 1;
    try {
      const bumped = (await featurizerIdentity('bow', spec, store, 'r1')).identity;
      expect(bumped).toBe(`${bowIdentity(vocabulary)}@code-v${was + 1}`);
      expect(featureCacheKey(shardContentHash(bumped, texts), 'csr')).not.toBe(featureCacheKey(shardContentHash(identity, texts), 'csr'));
    } finally {
      versions.bow = was;
    }
  });
});
