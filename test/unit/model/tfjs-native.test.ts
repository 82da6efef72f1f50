// The trainer's TensorFlow.js model on the native "tensorflow" backend (libtensorflow through @tensorflow/tfjs-node,
// the CPU twin of the image's tfjs-node-gpu: same binding source, same backend), built by `npm run build:tfjs-node`
// (.ci/run builds it before the tests). Fails, never skips, when it is not built. vitest runs every test file in a
// process of its own, so the native backend this file selects never reaches the files that use tfjs's cpu backend.
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TFJS_NODE_PACKAGE, loadTfjsNode } from '../../../scripts/tfjs-node/binding.js';
import { resolveDataRoot } from '../../../src/data/data-root.js';
import { Xoshiro128 } from '../../../src/model/rng.js';
import { TfjsMlp } from '../../../src/model/tfjs-mlp.js';
import { WasmMlp } from '../../../src/model/wasm-mlp.js';
import type { FamilyResult } from '../../../src/run/records.js';
import { silentReporter } from '../../../src/run/reporter.js';
import { FsBlobStore } from '../../../src/store/fs-store.js';
import { readShardPlan } from '../../../src/run/shard-plan.js';
import { featurize } from '../../../src/workflow/stages/featurize.js';
import { prepare } from '../../../src/workflow/stages/prepare.js';
import { testDeployment } from '../../support/deployment.js';
import { batch, expectClose, maxAbsDifference, spec } from '../../support/mlp.js';

const ROOT = fileURLToPath(new URL('../../..', import.meta.url));

beforeAll(async () => {
  loadTfjsNode();
  await tf.setBackend('tensorflow');
});

// Tolerances are those of mlp-engines.test.ts (tfjs's JS backend). Measured here against the WebAssembly engine:
// logits 3e-8, gradients 1.5e-8; after 5 Adam steps losses 1.7e-7, weights 3.7e-7, m 2.8e-8, v 5.2e-10 (the JS
// backend: 6e-8, 3e-8, 6e-8, 4.2e-7, 2.8e-8, 5.3e-10). libtensorflow sums in another order (oneDNN, threads).
describe('TensorFlow.js model on the native "tensorflow" backend vs the WebAssembly engine', () => {
  it('runs on libtensorflow: the project\'s TensorFlow.js uses the native backend', () => {
    expect(tf.getBackend()).toBe('tensorflow');
    const model = new TfjsMlp(spec(), 1);
    expect(model.name).toBe('tfjs-tensorflow');
    model.dispose();
  });

  for (const kind of ['sparse', 'dense'] as const) {
    it(`${kind} input: equal logits and gradients on the same weights`, () => {
      const b = batch(9, 40, 2);
      const x = b[kind];
      const s = spec({ sparseInput: kind === 'sparse' });
      const wasm = new WasmMlp(s, 11);
      const native = new TfjsMlp(s, 11);
      expect(maxAbsDifference(wasm.predict(x), native.predict(x))).toBeLessThan(5e-6);
      expectClose(wasm.gradients(x, b.labels), native.gradients(x, b.labels), 1e-6);
      native.dispose();
    });

    it(`${kind} input: the same 5-step Adam trajectory with the same dropout masks (dense Adam)`, () => {
      const s = spec({ dropout: 0.3, sparseInput: kind === 'sparse' });
      const wasm = new WasmMlp(s, 5);
      const native = new TfjsMlp(s, 5);
      const r1 = new Xoshiro128([9]);
      const r2 = new Xoshiro128([9]);
      for (let step = 0; step < 5; step++) {
        const b = batch(8, 40, 100 + step);
        expect(Math.abs(wasm.trainStep(b[kind], b.labels, r1) - native.trainStep(b[kind], b.labels, r2)), `step ${step} loss`).toBeLessThan(5e-6);
      }
      expectClose(wasm.getParams(), native.getParams(), 1e-5);
      const [sw, sn] = [wasm.getOptimizerState(), native.getOptimizerState()];
      expect(sn.step).toBe(5);
      expectClose(sw.m, sn.m, 1e-6);
      expectClose(sw.v, sn.v, 1e-8);
      native.dispose();
    });
  }
});

describe('trainer container entry with TEXTSHIFT_TF_BINDING naming the CPU twin (node on this machine, folder store)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'textshift-trainer-native-'));
  const store = new FsBlobStore(dir);
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  /** Runs the entry as the image does; never throws, returns exit code and output. */
  async function trainer(args: string[], binding: string) {
    const env: NodeJS.ProcessEnv = { ...process.env, TEXTSHIFT_STORE_URL: pathToFileURL(dir).href, TEXTSHIFT_TF_BINDING: binding };
    delete env.BUCKET;
    delete env.TEXTSHIFT_REQUIRE_GPU;
    try {
      const { stdout, stderr } = await promisify(execFile)(process.execPath, ['--import', 'tsx', 'containers/trainer/src/main.ts', ...args], {
        cwd: ROOT,
        env,
        maxBuffer: 16 * 2 ** 20,
      });
      return { code: 0, stdout, stderr };
    } catch (err) {
      const e = err as { code?: number; stdout: string; stderr: string };
      return { code: e.code ?? -1, stdout: e.stdout, stderr: e.stderr };
    }
  }

  it('trains and fine-tunes the tiny experiment on the "tensorflow" backend and says so', async () => {
    const ctx = { store, data: new FsBlobStore(resolveDataRoot({ cwd: ROOT }).dir), reporter: silentReporter, memo: new Map() };
    await store.put('experiments/tiny.json', readFileSync(new URL('../../fixtures/experiments/tiny.json', import.meta.url)));
    const plan = await prepare(ctx, { experimentKey: 'experiments/tiny.json', quick: true }, { deployment: await testDeployment() });
    for (const shardKey of await readShardPlan(store, plan.runId, plan.shardPlan)) await featurize(ctx, { runId: plan.runId, shardKey });

    const run = await trainer(['--run-id', plan.runId, '--feature', 'bow'], TFJS_NODE_PACKAGE);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stderr).toContain('trainer: TensorFlow.js backend "tensorflow" on the CPU');
    const resultKey = `runs/${plan.runId}/models/bow.result.json`;
    expect(JSON.parse(run.stdout.trim())).toEqual({ runId: plan.runId, feature: 'bow', resultKey });
    const result = JSON.parse((await store.getOrThrow(resultKey)).toString('utf8')) as FamilyResult;
    expect(result.models.map((m) => [m.model, m.engine, m.optimizer, m.epochs.length])).toEqual([
      ['bow_1', 'tfjs-tensorflow', 'adam, first layer dense', 6],
      ['bow_2', 'tfjs-tensorflow', 'adam, first layer dense', 6],
    ]);
    for (const e of result.evaluations) expect(e.accuracy, `${e.model} on ${e.dataset}`).toBeGreaterThan(0.5);
  });

  it('a binding that does not load: exit 1 naming it, no silent fallback to the WebAssembly engine', async () => {
    const run = await trainer(['--run-id', 'any-run', '--feature', 'bow'], './no/such/binding');
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('trainer failed: ConfigError: TEXTSHIFT_TF_BINDING=./no/such/binding could not be loaded: Cannot find module');
    expect(run.stdout).toBe('');
  });
});
