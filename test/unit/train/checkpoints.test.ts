// Checkpoints on a store that refuses deletes, as the deployment's roles do (no role may s3:DeleteObject): saving
// best/ (weights without optimizer state) must not delete, a stale optimizer file must never be paired with newer
// weights, and an interrupted training must resume to exactly what an uninterrupted one computes.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { TrainingConfig } from '../../../src/config/experiment.js';
import type { Features } from '../../../src/matrix/features.js';
import type { MlpSpec, OptimizerState, ParamSet } from '../../../src/model/engine.js';
import { Xoshiro128 } from '../../../src/model/rng.js';
import { WasmMlp } from '../../../src/model/wasm-mlp.js';
import { lineReporter, silentReporter } from '../../../src/run/reporter.js';
import { FsBlobStore } from '../../../src/store/fs-store.js';
import { type CheckpointState, loadCheckpoint, saveCheckpoint } from '../../../src/train/checkpoints.js';
import { type LabelledSet, trainModel } from '../../../src/train/train-model.js';

/** A folder store whose delete fails the way S3 answers a role without s3:DeleteObject. */
class NoDeleteStore extends FsBlobStore {
  override async delete(key: string): Promise<void> {
    throw Object.assign(new Error(`User is not authorized to perform: s3:DeleteObject on ${key}`), { name: 'AccessDenied' });
  }
}

const dirs: string[] = [];
function store(): NoDeleteStore {
  const dir = mkdtempSync(join(tmpdir(), 'textshift-ckpt-'));
  dirs.push(dir);
  return new NoDeleteStore(dir);
}
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

const spec: MlpSpec = { inputSize: 4, hidden: [8], classes: 2, dropout: 0.1, sparseInput: false, sparseAdam: 'lazy', learningRate: 1e-2 };
const tensor = (values: number[]) => ({ shape: [values.length], data: Float32Array.from(values) });
const params = (w: number): ParamSet => new Map([['dense/kernel', tensor([w, w + 1])]]);
const optimizer = (step: number): OptimizerState => ({ step, m: new Map([['dense/kernel', tensor([0.1, 0.2])]]), v: new Map([['dense/kernel', tensor([0.3, 0.4])]]) });
const state = (epoch: number): CheckpointState => ({ model: 'm', epoch, history: [], bestEpoch: epoch, bestValAccuracy: 0.5, engine: 'wasm-simd', optimizer: 'adam', spec });

describe('checkpoints', () => {
  it('loads the optimizer state of a checkpoint saved with one', async () => {
    const s = store();
    await saveCheckpoint(s, 'm/epoch_2', { state: state(2), params: params(1), optimizer: optimizer(7) });
    const loaded = await loadCheckpoint(s, 'm/epoch_2', true);
    expect(loaded?.state).toEqual({ ...state(2), hasOptimizerState: true });
    expect(loaded?.optimizer?.step).toBe(7);
    expect([...loaded!.optimizer!.v.get('dense/kernel')!.data]).toEqual([Math.fround(0.3), Math.fround(0.4)]);
  });

  it('saves over a checkpoint that had optimizer state without deleting, and never pairs the stale file with the new weights', async () => {
    const s = store();
    await saveCheckpoint(s, 'm/best', { state: state(2), params: params(1), optimizer: optimizer(7) });
    await saveCheckpoint(s, 'm/best', { state: state(4), params: params(5) });
    // The old optimizer file is still there (nothing may delete it) ...
    expect(await s.head('m/best/optimizer.safetensors')).toBeDefined();
    // ... and is ignored: state.json, written last, says this checkpoint has none.
    const loaded = await loadCheckpoint(s, 'm/best', true);
    expect(loaded?.state).toEqual({ ...state(4), hasOptimizerState: false });
    expect(loaded?.optimizer).toBeUndefined();
    expect([...loaded!.params.get('dense/kernel')!.data]).toEqual([5, 6]);
  });

  it('reads a checkpoint written before state.json recorded whether it has optimizer state', async () => {
    const s = store();
    await saveCheckpoint(s, 'm/epoch_2', { state: state(2), params: params(1), optimizer: optimizer(3) });
    writeFileSync(join(s.root, 'm/epoch_2/state.json'), JSON.stringify(state(2)));
    expect((await loadCheckpoint(s, 'm/epoch_2', true))?.optimizer?.step).toBe(3);
  });
});

/** Two separable classes in 4 dense features (class = sign of the first), seeded. */
function labelled(rows: number, seed: number): LabelledSet {
  const rng = new Xoshiro128([seed]);
  const data = new Float32Array(rows * 4);
  const y = new Int32Array(rows);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < 4; c++) data[r * 4 + c] = rng.nextUint32() / 2 ** 31 - 1;
    y[r] = data[r * 4]! > 0 ? 1 : 0;
  }
  const x: Features = { kind: 'dense', m: { rows, cols: 4, data } };
  return { x, y };
}

describe('training on a store that refuses deletes', () => {
  const training: TrainingConfig = { optimizer: 'adam', learningRate: 1e-2, batchSize: 8, epochs: 4, checkpointEvery: 2, selectBy: 'val_accuracy', sparseAdam: 'lazy' };
  const common = { model: 'm', train: labelled(64, 1), val: labelled(32, 2), training, seed: 42, stageIndex: 0, reporter: silentReporter };
  const withoutTimes = (h: { seconds: number }[]) => h.map(({ seconds: _s, ...m }) => m);

  it('saves every improving epoch to best/ and, interrupted after epoch 3, resumes to what an uninterrupted run computes', async () => {
    const whole = store();
    const uninterrupted = await trainModel({ ...common, store: whole, dir: 'm', engine: new WasmMlp(spec, 7) });

    const s = store();
    const interrupt = async (m: { epoch: number }) => {
      if (m.epoch === 3) throw new Error('killed after epoch 3');
    };
    await expect(trainModel({ ...common, store: s, dir: 'm', engine: new WasmMlp(spec, 7), onEpoch: interrupt })).rejects.toThrow('killed after epoch 3');
    const resumed = await trainModel({ ...common, store: s, dir: 'm', engine: new WasmMlp(spec, 7) });

    expect(resumed.resumedFromEpoch).toBe(2);
    expect(withoutTimes(resumed.history)).toEqual(withoutTimes(uninterrupted.history));
    expect(resumed.bestEpoch).toBe(uninterrupted.bestEpoch);
    const [a, b] = await Promise.all([loadCheckpoint(whole, 'm/best', true), loadCheckpoint(s, 'm/best', true)]);
    expect(b!.params).toEqual(a!.params);
    expect(b!.state.hasOptimizerState).toBe(false);
    expect(b!.optimizer).toBeUndefined();
  });

  it('resumes from the last usable checkpoint when the latest ones are corrupt, warning about each, to what an uninterrupted run computes', async () => {
    const everyEpoch = { ...common, training: { ...training, checkpointEvery: 1 } };
    const uninterrupted = await trainModel({ ...everyEpoch, store: store(), dir: 'm', engine: new WasmMlp(spec, 7) });

    const s = store();
    const interrupt = async (m: { epoch: number }) => {
      if (m.epoch === 3) throw new Error('killed after epoch 3');
    };
    await expect(trainModel({ ...everyEpoch, store: s, dir: 'm', engine: new WasmMlp(spec, 7), onEpoch: interrupt })).rejects.toThrow('killed after epoch 3');
    // epoch_3's weights cut short (a crash before they reached the disk), epoch_2's state.json garbled.
    const weights = join(s.root, 'm/epoch_3/model.safetensors');
    writeFileSync(weights, readFileSync(weights).subarray(0, 100));
    writeFileSync(join(s.root, 'm/epoch_2/state.json'), '{"model": "m", "epo');

    const lines: string[] = [];
    const resumed = await trainModel({ ...everyEpoch, store: s, dir: 'm', engine: new WasmMlp(spec, 7), reporter: lineReporter((l) => lines.push(l)) });
    const warnings = lines.filter((l) => l.startsWith('warning:'));
    expect(warnings).toHaveLength(2);
    expect(warnings[0]).toMatch(/^warning: m: checkpoint file:\/\/\S+\/m\/epoch_3 cannot be used \(\S+\/m\/epoch_3\/model\.safetensors: not a valid safetensors checkpoint: .*\); resuming from the one before it, epoch_2$/);
    expect(warnings[1]).toMatch(/^warning: m: checkpoint file:\/\/\S+\/m\/epoch_2 cannot be used \(.*JSON.*\); resuming from the one before it, epoch_1$/);
    expect(lines).toContain(`m: resuming after epoch 1 (checkpoint m/epoch_1)`);
    expect(resumed.resumedFromEpoch).toBe(1);
    expect(withoutTimes(resumed.history)).toEqual(withoutTimes(uninterrupted.history));
    expect(resumed.bestEpoch).toBe(uninterrupted.bestEpoch);
  });
});
