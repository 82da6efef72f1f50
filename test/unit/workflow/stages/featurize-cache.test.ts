// Featurize's use of the feature cache: a hit marks its entry used (the age the bucket's expiry counts restarts, so
// an entry a run relies on cannot expire under it), and a bump of the feature code version re-encodes into a new
// entry with the same bytes (results stay identical; only the key moved).
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { readFile, stat, utimes } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FEATURE_CODE_VERSIONS } from '../../../../src/features/featurizer.js';
import { silentReporter } from '../../../../src/run/reporter.js';
import { FsBlobStore } from '../../../../src/store/fs-store.js';
import { featurize } from '../../../../src/workflow/stages/featurize.js';
import { prepare } from '../../../../src/workflow/stages/prepare.js';
import { dataRoot } from '../../../support/data.js';
import { testDeployment } from '../../../support/deployment.js';

const dir = mkdtempSync(join(tmpdir(), 'textshift-featurize-cache-'));
const store = new FsBlobStore(dir);
const context = () => ({ store, data: new FsBlobStore(dataRoot()), reporter: silentReporter, memo: new Map() });
let runId: string;
let shardKey: string;

beforeAll(async () => {
  await store.put('experiments/tiny.json', readFileSync(new URL('../../../fixtures/experiments/tiny.json', import.meta.url)));
  runId = (await prepare(context(), { experimentKey: 'experiments/tiny.json', quick: true }, { deployment: await testDeployment() })).runId;
  shardKey = (await store.list(`runs/${runId}/shards/bow/`))[0]!.key;
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const DAY_MS = 86_400_000;

describe('featurize and the feature cache', () => {
  it('a cache hit marks an old entry used now, keeping its bytes', async () => {
    const first = await featurize(context(), { runId, shardKey });
    expect(first.cached).toBe(false);
    const path = store.pathOf(first.cacheKey);
    const bytes = await readFile(path);
    // As if made 29 days ago: the bucket's rule (30 days by default) would remove it during this run.
    const old = new Date(Date.now() - 29 * DAY_MS);
    await utimes(path, old, old);

    const again = await featurize(context(), { runId, shardKey });
    expect(again).toEqual({ shardKey, cacheKey: first.cacheKey, cached: true });
    expect(Date.now() - (await stat(path)).mtimeMs).toBeLessThan(DAY_MS);
    expect(await readFile(path)).toEqual(bytes);
  });

  it('a bumped feature code version misses the old entry and writes the same bytes under a new key', async () => {
    const before = await featurize(context(), { runId, shardKey });
    expect(before.cached).toBe(true);
    const versions = FEATURE_CODE_VERSIONS as Record<string, number>;
    const was = versions.bow!;
    versions.bow = was + 1;
    try {
      const after = await featurize(context(), { runId, shardKey });
      expect(after.cached).toBe(false);
      expect(after.cacheKey).not.toBe(before.cacheKey);
      expect(await store.getOrThrow(after.cacheKey)).toEqual(await store.getOrThrow(before.cacheKey));
      const result = JSON.parse((await store.getOrThrow(shardKey.replace('/shards/', '/featurized/'))).toString('utf8')) as { encoder: string };
      expect(result.encoder).toMatch(new RegExp(`^bow:[0-9a-f]{16}@code-v${was + 1}$`));
    } finally {
      versions.bow = was;
    }
  });
});
