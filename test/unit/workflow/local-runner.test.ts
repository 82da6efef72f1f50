// The local runner on the tiny experiment (real SST-2 and IMDB data, quick caps, one BoW family, a small MLP),
// against a folder store: it runs the stage graph's stages in order over every item of their fan-out, and a stage
// that fails after Prepare is recorded in the manifest under the graph's stage name; an experiment over a bound or
// over its cost limit is refused before anything of the run is computed.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { resolveDataRoot } from '../../../src/data/data-root.js';
import { STAGES } from '../../../src/run/graph.js';
import { readManifest } from '../../../src/run/manifest.js';
import { silentReporter } from '../../../src/run/reporter.js';
import type { PutCondition } from '../../../src/store/blob-store.js';
import { FsBlobStore } from '../../../src/store/fs-store.js';
import { runLocal } from '../../../src/workflow/local-runner.js';
import { testDeployment } from '../../support/deployment.js';

const TINY = fileURLToPath(new URL('../../fixtures/experiments/tiny.json', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'textshift-local-runner-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const data = new FsBlobStore(resolveDataRoot().dir);

/** A folder store whose writes of trained models fail, as a full disk would fail them. */
class ModelWritesFail extends FsBlobStore {
  override async put(key: string, body: Buffer | Uint8Array | string, condition?: PutCondition): Promise<void> {
    if (/^runs\/[^/]+\/models\//.test(key)) throw Object.assign(new Error(`ENOSPC: no space left on device, write ${key}`), { name: 'DiskFull' });
    return super.put(key, body, condition);
  }
}

describe('local runner (stage graph walked on this machine, tiny experiment, folder store)', () => {
  it('runs the graph\'s stages in its order, Featurize over every shard and Train over every family', async () => {
    const store = new FsBlobStore(join(dir, 'ok'));
    const run = await runLocal({ store, data, experimentPath: TINY, quick: true, workers: 1, reporter: silentReporter });
    const m = await readManifest(store, run.runId);
    expect(m.status).toBe('succeeded');
    // Stage records by start time: the graph's order (per-family Train records are `train:<family>`).
    const started = Object.entries(m.stages).sort(([, a], [, b]) => a.startedAt!.localeCompare(b.startedAt!)).map(([name]) => name);
    expect(started).toEqual(['prepare', 'featurize', 'train:bow', 'report']);
    expect(STAGES.map((s) => s.name.toLowerCase())).toEqual(['prepare', 'featurize', 'train', 'report']);
    // tiny.json: one BoW family over six dataset parts, one shard each; all computed on this first run.
    expect(m.encoded).toEqual({ bow: { families: ['bow'], encoder: expect.stringMatching(/^bow:/), texts: expect.any(Number), cachedShards: 0, computedShards: 6 } });
    expect(run.results.models.map((x) => x.model)).toEqual(['bow_1', 'bow_2']);
    // The run's lease is released with the run (kept as a record of its last fencing token).
    expect(JSON.parse((await store.getOrThrow(`runs/${run.runId}/lock.json`)).toString())).toMatchObject({ token: 1, releasedAt: expect.any(String) });
  }, 120_000);

  it('records a failed Train in the manifest under the graph\'s stage name, keeping what earlier stages wrote', async () => {
    const store = new ModelWritesFail(join(dir, 'failing'));
    await expect(runLocal({ store, data, experimentPath: TINY, quick: true, workers: 1, reporter: silentReporter, runId: 'tiny-failing' })).rejects.toThrow(
      'ENOSPC: no space left on device',
    );
    const m = await readManifest(store, 'tiny-failing');
    expect(m.status).toBe('failed');
    // A disk error is nothing a retry fixes: recorded under its class, not retryable.
    expect(m.failure).toEqual({ stage: 'Train', error: expect.stringMatching(/^InternalError: ENOSPC/), errorName: 'InternalError', retryable: false });
    expect(m.stages.featurize?.status).toBe('succeeded');
    expect(m.stages.report).toBeUndefined();
    expect(JSON.parse((await store.getOrThrow('runs/tiny-failing/lock.json')).toString())).toMatchObject({ releasedAt: expect.any(String) });
  }, 120_000);

  /** The tiny experiment with `edit` applied, written as `<name>.json` in the test folder. */
  const tinyWith = (name: string, edit: (e: Record<string, Record<string, unknown>>) => void): string => {
    const e = JSON.parse(readFileSync(TINY, 'utf8')) as Record<string, Record<string, unknown>>;
    edit(e);
    const file = join(dir, `${name}.json`);
    writeFileSync(file, JSON.stringify(e));
    return file;
  };

  it('refuses an experiment asking for 1e9 epochs, naming the file, the field, the value and the bound; nothing is written', async () => {
    const store = new FsBlobStore(join(dir, 'endless'));
    const file = tinyWith('endless', (e) => (e.training!.epochs = 1e9));
    await expect(runLocal({ store, data, experimentPath: file, quick: true, workers: 1, reporter: silentReporter })).rejects.toThrow(
      `${file}: invalid experiment\n  - training.epochs: Too big: expected number to be <=1000 (got 1000000000)`,
    );
    expect(await store.list('')).toEqual([]);
  });

  it('refuses a resume of a finished run with an edited experiment before writing anything: the run, its report and the stored experiment stay as they were', async () => {
    const store = new FsBlobStore(join(dir, 'finished'));
    const file = tinyWith('finished', () => undefined);
    const done = await runLocal({ store, data, experimentPath: file, quick: true, workers: 1, reporter: silentReporter, runId: 'tiny-finished' });
    const snapshot = async () =>
      Object.fromEntries(await Promise.all((await store.list('')).map(async (o) => [o.key, (await store.getOrThrow(o.key)).toString('base64')] as const)));
    const before = await snapshot();
    // The user edits the experiment and names the finished run.
    const edited = tinyWith('finished', (e) => (e.training!.epochs = 3));
    const err = await runLocal({ store, data, experimentPath: edited, quick: true, workers: 1, reporter: silentReporter, runId: 'tiny-finished' }).then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    expect(err?.name).toBe('InputChangedError');
    expect(err?.message).toMatch(
      new RegExp(`^${edited.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: run tiny-finished \\(--run-id\\) was started from other bytes of experiments/finished\\.json \\(sha256 [0-9a-f]{64}; .* has [0-9a-f]{64}\\); it is left as it is\\. To run this experiment, leave out --run-id`),
    );
    // Not one byte changed: still succeeded, the report with its results, the stored experiment the run's own.
    expect(await snapshot()).toEqual(before);
    expect((await readManifest(store, 'tiny-finished')).status).toBe('succeeded');
    expect(done.results.models).toHaveLength(2);
  }, 120_000);

  it('a later attempt on a finished run that fails (its data changed) leaves it succeeded with its report', async () => {
    const store = new FsBlobStore(join(dir, 'finished-data'));
    const copy = new FsBlobStore(join(dir, 'finished-data-root'));
    for (const key of ['sst2/train.tsv', 'sst2/test.tsv', 'imdb.csv.gz']) {
      await copy.put(key, await data.getOrThrow(key));
    }
    const file = tinyWith('finished-data', () => undefined);
    await runLocal({ store, data: copy, experimentPath: file, quick: true, workers: 1, reporter: silentReporter, runId: 'tiny-finished-data' });
    const report = (await store.getOrThrow('runs/tiny-finished-data/report/report.html')).toString();
    await copy.put('sst2/test.tsv', 'sentence\tlabel\nchanged\t1\n');
    await expect(runLocal({ store, data: copy, experimentPath: file, quick: true, workers: 1, reporter: silentReporter, runId: 'tiny-finished-data' })).rejects.toThrow(
      /sst2\/test\.tsv changed after run tiny-finished-data pinned it/,
    );
    const m = await readManifest(store, 'tiny-finished-data');
    expect(m.status).toBe('succeeded');
    expect(m.failure).toBeUndefined();
    expect((await store.getOrThrow('runs/tiny-finished-data/report/report.html')).toString()).toBe(report);
  }, 120_000);

  it('refuses an experiment file whose name is not a key, naming the file and the characters allowed; nothing is written', async () => {
    const store = new FsBlobStore(join(dir, 'badly-named'));
    const file = tinyWith('tiny(1)', () => undefined);
    await expect(runLocal({ store, data, experimentPath: file, quick: true, workers: 1, reporter: silentReporter })).rejects.toThrow(
      'experiment file "tiny(1).json": an experiment file name may only use letters, digits and . _ - (got "(", ")"), since the run and every key it writes are named after it; rename the file',
    );
    expect(await store.list('')).toEqual([]);
  });

  it('fails a run whose estimate is above the limit in Prepare, with the numbers, recorded as a permanent failure; nothing computed', async () => {
    const store = new FsBlobStore(join(dir, 'over-budget'));
    const deployment = await testDeployment({ maxRunCostUsd: '0.0001' });
    const run = runLocal({ store, data, experimentPath: TINY, quick: true, workers: 1, reporter: silentReporter, runId: 'tiny-over-budget', deployment });
    await expect(run).rejects.toThrow(/tiny\.json: the run's estimated cost \$\d+\.\d{4} is above its limit \$0\.0001 \(maxRunCostUsd in cdk\.json\)\. To run it, set "budgetUsd" in the experiment \(at most \$250/);
    const m = await readManifest(store, 'tiny-over-budget');
    expect(m.status).toBe('failed');
    expect(m.failure).toMatchObject({ stage: 'Prepare', errorName: 'BudgetExceededError', retryable: false });
    expect(m.stages.prepare).toMatchObject({ status: 'failed', errorName: 'BudgetExceededError', retryable: false });
    // No split, shard, vocabulary, feature or model: only the run's record and the page saying why it failed.
    const keys = (await store.list('runs/tiny-over-budget/')).map((o) => o.key);
    expect(keys.sort()).toEqual(['runs/tiny-over-budget/lock.json', 'runs/tiny-over-budget/manifest.json', 'runs/tiny-over-budget/report/report.html']);
    expect((await store.getOrThrow('runs/tiny-over-budget/report/report.html')).toString()).toMatch(/BudgetExceededError/);
    expect(await store.list('cache/')).toEqual([]);
  }, 120_000);
});
