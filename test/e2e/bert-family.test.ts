// The BERT feature family end to end through the CLI: a tiny random-weight BERT (our generator, real
// bert-base-uncased vocabulary) in the run store's models/ folder, sharded featurize into the content-addressed
// cache, four result rows; a second run with another run id finds every shard in the cache (no encoder work).
import { cpSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureTestModel } from '../../scripts/onnx/test-model.js';
import type { Manifest } from '../../src/run/manifest.js';
import { runCli } from '../support/cli.js';

const out = mkdtempSync(join(tmpdir(), 'textshift-bert-'));
afterAll(() => rmSync(out, { recursive: true, force: true }));
beforeAll(async () => {
  cpSync(await ensureTestModel('tiny'), join(out, 'models', 'tiny-bert'), { recursive: true });
});

const manifestOf = (runId: string) => JSON.parse(readFileSync(join(out, 'runs', runId, 'manifest.json'), 'utf8')) as Manifest;

describe('bert feature family (tiny test model)', () => {
  it('trains bow and bert families and prints four rows', async () => {
    const r = await runCli(['run', 'test/fixtures/experiments/tiny-bert.json', '--quick', '--out', out, '--run-id', 'first']);
    expect(r.code, r.stderr).toBe(0);
    for (const row of ['bow_1', 'bow_2', 'bert_1', 'bert_2']) expect(r.stdout).toMatch(new RegExp(`^${row}\\s+0\\.\\d{4}\\s+0\\.\\d{4}$`, 'm'));
    const m = manifestOf('first');
    // quick caps: sst2 800/200/300, imdb 1200/300/300 -> 3100 texts in 9 shards of <= 500, each embedded once.
    expect(m.encoded!.bert).toEqual({ texts: 3100, cachedShards: 0, computedShards: 9 });
    expect(readdirSync(join(out, 'cache', 'features')).filter((f) => f.endsWith('.npy'))).toHaveLength(9);
  });

  it('a second run reuses every cached shard and gets the same results', async () => {
    const r = await runCli(['run', 'test/fixtures/experiments/tiny-bert.json', '--quick', '--out', out, '--run-id', 'second']);
    expect(r.code, r.stderr).toBe(0);
    expect(manifestOf('second').encoded!.bert).toEqual({ texts: 0, cachedShards: 9, computedShards: 0 });
    const results = (id: string) => JSON.parse(readFileSync(join(out, 'runs', id, 'report', 'results.json'), 'utf8')).evaluations;
    expect(results('second')).toEqual(results('first'));
  });
});
