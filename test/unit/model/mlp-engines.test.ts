// The WebAssembly engine (local training) and the TensorFlow.js model (the GPU trainer) must compute the same
// function, the same gradients and the same Adam trajectory; and the embedding-bag first layer must equal a
// Dense layer on the count vector. Runs tfjs on its pure-JS `cpu` backend, which has every gradient kernel
// (tfjs-native.test.ts runs the same comparisons on the native `tensorflow` backend).
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { Xoshiro128 } from '../../../src/model/rng.js';
import { TfjsMlp } from '../../../src/model/tfjs-mlp.js';
import { WasmMlp } from '../../../src/model/wasm-mlp.js';
import { batch, expectClose, spec } from '../../support/mlp.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

describe('sparse embedding-bag first layer', () => {
  it('equals a Dense layer on the count vector: outputs and gradients (tfjs)', () => {
    const { sparse, dense, labels } = batch(6, 40, 1);
    const bag = new TfjsMlp(spec(), 7);
    const full = new TfjsMlp(spec({ sparseInput: false }), 7);
    const a = bag.predict(sparse);
    const b = full.predict(dense);
    expect(Array.from(a)).toEqual(Array.from(b).map((v, i) => expect.closeTo(v, 5) && a[i]));
    expectClose(bag.gradients(sparse, labels), full.gradients(dense, labels), 1e-6);
    bag.dispose();
    full.dispose();
  });
});

describe('WebAssembly engine vs TensorFlow.js model on the same weights', () => {
  for (const kind of ['sparse', 'dense'] as const) {
    it(`${kind} input: equal logits and gradients`, () => {
      const b = batch(9, 40, 2);
      const x = b[kind];
      const s = spec({ sparseInput: kind === 'sparse' });
      const wasm = new WasmMlp(s, 11);
      const ref = new TfjsMlp(s, 11);
      const l1 = wasm.predict(x);
      const l2 = ref.predict(x);
      for (let i = 0; i < l1.length; i++) expect(l1[i]).toBeCloseTo(l2[i]!, 5);
      expectClose(wasm.gradients(x, b.labels), ref.gradients(x, b.labels), 1e-6);
      ref.dispose();
    });
  }

  it('a training step draws one number of the dropout stream per hidden unit and row, and leaves the stream after them', () => {
    const s = spec({ dropout: 0.3 });
    const wasm = new WasmMlp(s, 5);
    const used = new Xoshiro128([9]);
    const replay = new Xoshiro128([9]);
    const b = batch(8, 40, 100);
    wasm.trainStep(b.sparse, b.labels, used);
    // hidden [12, 8]: 8 rows × (12 + 8) draws.
    for (let i = 0; i < 8 * 20; i++) replay.nextUint32();
    expect([used.nextUint32(), used.nextUint32()]).toEqual([replay.nextUint32(), replay.nextUint32()]);
  });

  it('follow the same Adam trajectory with the same dropout masks (dense Adam)', () => {
    const s = spec({ dropout: 0.3 });
    const wasm = new WasmMlp(s, 5);
    const ref = new TfjsMlp(s, 5);
    const r1 = new Xoshiro128([9]);
    const r2 = new Xoshiro128([9]);
    for (let step = 0; step < 5; step++) {
      const b = batch(8, 40, 100 + step);
      expect(wasm.trainStep(b.sparse, b.labels, r1)).toBeCloseTo(ref.trainStep(b.sparse, b.labels, r2), 5);
    }
    expectClose(wasm.getParams(), ref.getParams(), 1e-5);
    expect(wasm.getOptimizerState().step).toBe(5);
    expectClose(wasm.getOptimizerState().m, ref.getOptimizerState().m, 1e-6);
    ref.dispose();
  });

  // 12 is a whole number of 4-lane SIMD blocks; 10 leaves 2 lanes the kernels handle one at a time.
  for (const width of [12, 10]) {
    it(`lazy Adam equals dense Adam for rows in every batch and stays close for rows skipped (catch-up), first layer ${width} wide`, () => {
      const lazy = new WasmMlp(spec({ sparseAdam: 'lazy', hidden: [width, 8] }), 3);
      const dense = new WasmMlp(spec({ sparseAdam: 'dense', hidden: [width, 8] }), 3);
      const r1 = new Xoshiro128([4]);
      const r2 = new Xoshiro128([4]);
      for (let step = 0; step < 30; step++) {
        const b = batch(4, 40, 200 + step);
        lazy.trainStep(b.sparse, b.labels, r1);
        dense.trainStep(b.sparse, b.labels, r2);
      }
      // Catch-up neglects eps against sqrt(v/bc2) (~1e-4 relative here), which compounds over 30 steps at
      // lr 1e-2 to ~1e-4 on weights of ~0.1; without catch-up the gap is ~1e-1.
      expectClose(lazy.getParams(), dense.getParams(), 2e-4);
      expectClose(lazy.getOptimizerState().v, dense.getOptimizerState().v, 1e-7);
    });
  }

  it('lazy catch-up of a row whose second moment underflowed to 0 moves it no more than dense Adam would', () => {
    // Regression: tiny gradients (saturated softmax) leave m ~ 1e-24 while v = g^2 underflows to 0 in float32;
    // an unguarded m/sqrt(v) then threw IMDB fine-tuning off (loss 239).
    const s = spec({ sparseAdam: 'lazy' });
    const engine = new WasmMlp(s, 8);
    const b = batch(2, 40, 5);
    engine.trainStep(b.sparse, b.labels, new Xoshiro128([1]));
    const state = engine.getOptimizerState();
    state.m.get('layer_0/kernel')!.data.fill(1e-24);
    state.v.get('layer_0/kernel')!.data.fill(0);
    state.step = 100;
    engine.setOptimizerState(state);
    const before = engine.getParams().get('layer_0/kernel')!.data.slice();
    for (let i = 0; i < 50; i++) {
      const next = batch(1, 40, 300 + i);
      if (next.sparse.kind === 'sparse') next.sparse.m.indices.fill(39);
      engine.trainStep(next.sparse, next.labels, new Xoshiro128([i]));
    }
    const after = engine.getParams().get('layer_0/kernel')!.data;
    let worst = 0;
    for (let i = 0; i < 39 * 12; i++) worst = Math.max(worst, Math.abs(after[i]! - before[i]!));
    expect(worst).toBeLessThan(1e-6);
  });

  it('checkpoint state round-trips: a restored engine continues identically', () => {
    const s = spec({ sparseAdam: 'lazy', dropout: 0.3 });
    const a = new WasmMlp(s, 21);
    const rng = new Xoshiro128([1]);
    for (let i = 0; i < 3; i++) {
      const b = batch(5, 40, i);
      a.trainStep(b.sparse, b.labels, rng);
    }
    const restored = new WasmMlp(s, 999);
    restored.setParams(a.getParams());
    restored.setOptimizerState(a.getOptimizerState());
    const b = batch(5, 40, 77);
    expect(restored.trainStep(b.sparse, b.labels, new Xoshiro128([2]))).toBe(a.trainStep(b.sparse, b.labels, new Xoshiro128([2])));
    expectClose(restored.getParams(), a.getParams(), 1e-12);
  });
});
