// The WebAssembly engine splits its operations across threads by output columns: every value is computed by one
// thread in a fixed order, so any thread count must give bit-identical losses, weights and Adam moments.
import { afterEach, describe, expect, it } from 'vitest';
import type { MlpSpec, ParamSet } from '../../../src/model/engine.js';
import { Xoshiro128 } from '../../../src/model/rng.js';
import { WasmMlp } from '../../../src/model/wasm-mlp.js';
import { batch, spec } from '../../support/mlp.js';

const engines: WasmMlp[] = [];
afterEach(() => {
  for (const e of engines.splice(0)) e.dispose();
});

/** An engine that splits every operation (parallelWork 0), so each kernel runs in parts. */
function engine(s: MlpSpec, threads: number): WasmMlp {
  const e = new WasmMlp(s, 13, { threads, parallelWork: 0 });
  engines.push(e);
  return e;
}

/** Losses of `steps` training steps (dropout on), then parameters and optimizer state. */
function train(e: WasmMlp, steps: number, kind: 'sparse' | 'dense') {
  const rng = new Xoshiro128([8]);
  const losses: number[] = [];
  for (let step = 0; step < steps; step++) {
    const b = batch(7, 40, 300 + step);
    losses.push(e.trainStep(b[kind], b.labels, rng));
  }
  const probe = batch(9, 40, 999);
  return { losses, params: e.getParams(), state: e.getOptimizerState(), logits: Array.from(e.predict(probe[kind])) };
}

function flat(p: ParamSet): number[] {
  return [...p.entries()].flatMap(([name, t]) => [name.length, ...t.data]);
}

describe('WebAssembly engine on several threads', () => {
  // Widths not divisible by the thread count's 4-lane bounds give parts of unequal and of zero size.
  const shapes: [string, Partial<MlpSpec>][] = [
    ['sparse input, lazy Adam', { sparseAdam: 'lazy', dropout: 0.3, hidden: [24, 12, 8] }],
    ['sparse input, lazy Adam, a first layer of 4-lane blocks and a rest', { sparseAdam: 'lazy', dropout: 0.3, hidden: [26, 12, 8] }],
    ['sparse input, dense Adam', { sparseAdam: 'dense', dropout: 0.3, hidden: [24, 12, 8] }],
    ['dense input', { sparseInput: false, dropout: 0.3, hidden: [24, 12, 8] }],
  ];
  for (const [name, over] of shapes) {
    it(`${name}: 2 and 3 threads give bit-identical losses, weights, moments and logits to 1 thread`, () => {
      const s = spec(over);
      const kind = s.sparseInput ? 'sparse' : 'dense';
      const one = train(engine(s, 1), 12, kind);
      for (const threads of [2, 3]) {
        const many = train(engine(s, threads), 12, kind);
        expect(many.losses).toEqual(one.losses);
        expect(flat(many.params)).toEqual(flat(one.params));
        expect(flat(many.state.m)).toEqual(flat(one.state.m));
        expect(flat(many.state.v)).toEqual(flat(one.state.v));
        expect(many.logits).toEqual(one.logits);
      }
    });
  }

  it('is deterministic: two 2-thread runs agree bit for bit, and training changed the weights', () => {
    const s = spec({ sparseAdam: 'lazy', dropout: 0.3, hidden: [24, 12, 8] });
    const initial = flat(engine(s, 2).getParams());
    const a = train(engine(s, 2), 12, 'sparse');
    const b = train(engine(s, 2), 12, 'sparse');
    expect(flat(b.params)).toEqual(flat(a.params));
    expect(flat(a.params)).not.toEqual(initial);
  });

  it('a checkpoint taken on 2 threads resumes on 1 thread exactly where an uninterrupted 2-thread run goes', () => {
    const s = spec({ sparseAdam: 'lazy', dropout: 0.3, hidden: [24, 12, 8] });
    const through = engine(s, 2);
    const first = engine(s, 2);
    const rng1 = new Xoshiro128([5]);
    const rng2 = new Xoshiro128([5]);
    for (let step = 0; step < 6; step++) {
      const b = batch(7, 40, 500 + step);
      through.trainStep(b.sparse, b.labels, rng1);
      first.trainStep(b.sparse, b.labels, rng2);
    }
    // As in training, the uninterrupted run also saved a checkpoint there (saving catches every lazy row up).
    through.getOptimizerState();
    const resumed = engine(s, 1);
    resumed.setParams(first.getParams());
    resumed.setOptimizerState(first.getOptimizerState());
    for (let step = 6; step < 12; step++) {
      const b = batch(7, 40, 500 + step);
      expect(resumed.trainStep(b.sparse, b.labels, rng2)).toBe(through.trainStep(b.sparse, b.labels, rng1));
    }
    expect(flat(resumed.getParams())).toEqual(flat(through.getParams()));
  });
});
