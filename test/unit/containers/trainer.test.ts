// The trainer container's entry run as the image runs it (`node --import tsx containers/trainer/src/main.ts
// --run-id <id> --feature <f>`), on this machine's WebAssembly engine, against a folder store named by
// TEXTSHIFT_STORE_URL: the same BlobStore calls it makes on S3 in Batch. The run is prepared and featurized
// in-process first (real tiny experiment, real SST-2/IMDB data, quick caps).
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FsBlobStore } from '../../../src/store/fs-store.js';
import { readShardPlan } from '../../../src/run/shard-plan.js';
import type { FamilyResult } from '../../../src/run/records.js';
import type { Manifest } from '../../../src/run/manifest.js';
import { silentReporter } from '../../../src/run/reporter.js';
import { featurize } from '../../../src/workflow/stages/featurize.js';
import { prepare } from '../../../src/workflow/stages/prepare.js';
import { testDeployment } from '../../support/deployment.js';
import { s3ErrorServer } from '../../support/s3-error-server.js';
import { dataRoot } from '../../support/data.js';

const ROOT = fileURLToPath(new URL('../../..', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'textshift-trainer-'));
const store = new FsBlobStore(dir);
let runId: string;

beforeAll(async () => {
  const ctx = { store, data: new FsBlobStore(dataRoot()), reporter: silentReporter, memo: new Map() };
  await store.put('experiments/tiny.json', readFileSync(new URL('../../fixtures/experiments/tiny.json', import.meta.url)));
  const plan = await prepare(ctx, { experimentKey: 'experiments/tiny.json', quick: true }, { deployment: await testDeployment() });
  for (const shardKey of await readShardPlan(store, plan.runId, plan.shardPlan)) await featurize(ctx, { runId: plan.runId, shardKey });
  runId = plan.runId;
  // Prepare reads the real datasets twice (the cost guard's plan sizes them, then the split): seconds, not ms.
}, 60_000);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Runs the entry like the image's ENTRYPOINT + Batch command; never throws, returns exit code and output. */
async function trainer(args: string[], env: Record<string, string> = {}) {
  const childEnv: NodeJS.ProcessEnv = { ...process.env };
  delete childEnv.BUCKET;
  delete childEnv.TEXTSHIFT_REQUIRE_GPU;
  delete childEnv.TEXTSHIFT_TF_BINDING;
  Object.assign(childEnv, { TEXTSHIFT_STORE_URL: pathToFileURL(dir).href }, env);
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, ['--import', 'tsx', 'containers/trainer/src/main.ts', ...args], {
      cwd: ROOT,
      env: childEnv,
      maxBuffer: 16 * 2 ** 20,
    });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number; stdout: string; stderr: string };
    return { code: e.code ?? -1, stdout: e.stdout, stderr: e.stderr };
  }
}

describe('trainer container entry (node on this machine, WASM engine, folder store)', () => {
  it('trains and fine-tunes the family, writes result, checkpoints and TensorBoard logs, prints the result key, exits 0', async () => {
    const run = await trainer(['--run-id', runId, '--feature', 'bow']);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stderr).toContain('trainer: no native TensorFlow binding; training on the WebAssembly engine');
    const resultKey = `runs/${runId}/models/bow.result.json`;
    expect(JSON.parse(run.stdout.trim())).toEqual({ runId, feature: 'bow', resultKey });

    const result = JSON.parse((await store.getOrThrow(resultKey)).toString('utf8')) as FamilyResult;
    expect(result.models.map((m) => [m.model, m.dataset, m.from, m.epochs.length])).toEqual([
      ['bow_1', 'sst2', undefined, 6],
      ['bow_2', 'imdb', 'bow_1', 6],
    ]);
    expect(result.evaluations.map((e) => [e.model, e.dataset, e.n])).toEqual([
      ['bow_1', 'sst2', 300],
      ['bow_1', 'imdb', 300],
      ['bow_2', 'sst2', 300],
      ['bow_2', 'imdb', 300],
    ]);
    for (const e of result.evaluations) {
      expect(e.accuracy).toBeGreaterThan(0.5);
      expect(e.confusion.flat().reduce((a, b) => a + b, 0)).toBe(e.n);
    }
    const keys = (await store.list(`runs/${runId}/`)).map((o) => o.key);
    for (const model of ['bow_1', 'bow_2']) {
      // checkpointEvery 2 over 6 epochs, plus the best model.
      for (const ckpt of ['epoch_2', 'epoch_4', 'epoch_6', 'best']) {
        expect(keys.some((k) => k.startsWith(`runs/${runId}/models/${model}/${ckpt}/`)), `${model}/${ckpt}`).toBe(true);
      }
      expect(keys.filter((k) => k.startsWith(`runs/${runId}/logs/${model}/events.out.tfevents.`))).toHaveLength(1);
    }
    const manifest = JSON.parse((await store.getOrThrow(`runs/${runId}/manifest.json`)).toString('utf8')) as Manifest;
    expect(manifest.stages['train:bow']!.status).toBe('succeeded');
  });

  it('a run id that does not exist: exit 1 (permanent: Batch does not retry), names the class, the run and the missing manifest, writes nothing', async () => {
    const run = await trainer(['--run-id', 'no-such-run', '--feature', 'bow']);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/trainer failed: MissingInputError: run "no-such-run" not found: file:\/\/.*\/runs\/no-such-run\/manifest\.json does not exist/);
    expect(await store.list('runs/no-such-run/')).toEqual([]);
  });

  it('a feature family the run does not have: exit 1, names it and the families there are', async () => {
    const run = await trainer(['--run-id', runId, '--feature', 'bert']);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain(`trainer failed: InvalidInputError: train: run ${runId} has no feature family "bert" (it has bow)`);
  });

  it('TEXTSHIFT_REQUIRE_GPU=1 without a GPU: exit 1 before training, saying why', async () => {
    const before = (await store.list(`runs/${runId}/stages/`)).map((o) => o.key);
    const run = await trainer(['--run-id', runId, '--feature', 'bow'], { TEXTSHIFT_REQUIRE_GPU: '1' });
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(
      /trainer failed: ConfigError: TEXTSHIFT_REQUIRE_GPU=1 but TensorFlow\.js is not running on a GPU: @tensorflow\/tfjs-node-gpu could not be loaded: /,
    );
    expect(run.stdout).toBe('');
    expect((await store.list(`runs/${runId}/stages/`)).map((o) => o.key)).toEqual(before);
  });

  it('S3 throttling (503 SlowDown from the store\'s endpoint): exit 75 (EX_TEMPFAIL), which the job definition retries', async () => {
    const s3 = await s3ErrorServer(503, 'SlowDown', 'Please reduce your request rate.');
    try {
      const run = await trainer(['--run-id', runId, '--feature', 'bow'], { TEXTSHIFT_STORE_URL: 's3://textshift-throttled', TEXTSHIFT_AWS_ENDPOINT: s3.endpoint, AWS_MAX_ATTEMPTS: '1' });
      expect(run.code, run.stderr).toBe(75);
      expect(run.stderr).toContain('trainer failed: TransientError: Please reduce your request rate.');
      expect(run.stdout).toBe('');
    } finally {
      await s3.close();
    }
  });

  it('missing job parameters: exit 1 with the usage', async () => {
    const run = await trainer(['--run-id', 'Ref::runId']);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('trainer failed: InvalidInputError: missing --run-id (got "Ref::runId")');
    expect(run.stderr).toContain('usage: main.ts --run-id <runId> --feature <feature>');
  });
});
