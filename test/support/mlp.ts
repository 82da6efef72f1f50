// Shared by the MLP engine tests (mlp-engines: tfjs's JS backend; tfjs-native: the native "tensorflow" backend):
// a small spec, seeded count-vector batches, and parameter-set comparison.
import { expect } from 'vitest';
import type { MlpSpec, ParamSet } from '../../src/model/engine.js';
import type { Features } from '../../src/matrix/features.js';
import { Xoshiro128 } from '../../src/model/rng.js';

/** A small three-class MLP with a sparse (embedding-bag) first layer, with overrides. */
export const spec = (over: Partial<MlpSpec> = {}): MlpSpec => ({
  inputSize: 40,
  hidden: [12, 8],
  classes: 3,
  dropout: 0,
  sparseInput: true,
  sparseAdam: 'dense',
  learningRate: 1e-2,
  ...over,
});

/** A batch of count vectors with repeated columns across rows, and its dense twin. */
export function batch(rows: number, cols: number, seed: number): { sparse: Features; dense: Features; labels: Int32Array } {
  const rng = new Xoshiro128([seed]);
  const indptr = new Int32Array(rows + 1);
  const indices: number[] = [];
  const data: number[] = [];
  const dense = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    const picked = new Set<number>();
    while (picked.size < 5) picked.add(rng.below(cols));
    for (const c of [...picked].sort((a, b) => a - b)) {
      const count = 1 + rng.below(3);
      indices.push(c);
      data.push(count);
      dense[r * cols + c] = count;
    }
    indptr[r + 1] = indices.length;
  }
  return {
    sparse: { kind: 'sparse', m: { rows, cols, indptr, indices: Int32Array.from(indices), data: Float32Array.from(data) } },
    dense: { kind: 'dense', m: { rows, cols, data: dense } },
    labels: Int32Array.from({ length: rows }, (_, i) => i % 3),
  };
}

/** Largest absolute element difference of two arrays of the same length. */
export function maxAbsDifference(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(b.length).toBe(a.length);
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i]! - b[i]!));
  return worst;
}

/** Asserts two parameter sets have the same names and shapes and every element within `tol`. */
export function expectClose(a: ParamSet, b: ParamSet, tol: number): void {
  expect([...a.keys()]).toEqual([...b.keys()]);
  for (const [name, t] of a) {
    const u = b.get(name)!;
    expect(u.shape, name).toEqual(t.shape);
    expect(maxAbsDifference(t.data, u.data), `${name}: max abs difference`).toBeLessThan(tol);
  }
}
