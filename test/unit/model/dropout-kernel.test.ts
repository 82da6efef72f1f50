// The kernels' dropoutRelu draws four numbers at a time and masks in SIMD lanes; it must give exactly what one
// draw per value in order gives (the JavaScript loop it replaced, and the TensorFlow.js engine's masks).
import { describe, expect, it } from 'vitest';
import { instantiateKernels, KernelHeap } from '../../../src/model/kernels/index.js';
import { Xoshiro128 } from '../../../src/model/rng.js';

/** One draw of `rng` per value, in order: kept (scaled in f64, rounded once) when draw >= p·2^32 and the value > 0. */
function reference(values: Float32Array, p: number, rng: Xoshiro128): Float32Array {
  const threshold = p * 4294967296;
  const scale = 1 / (1 - p);
  return values.map((x) => (rng.nextUint32() >= threshold && x > 0 ? Math.fround(x * scale) : 0));
}

describe('dropoutRelu kernel', () => {
  const k = instantiateKernels();
  const heap = new KernelHeap(k);
  const state = heap.alloc(4);

  // 4k + 3 values: the SIMD body and the scalar tail; negatives, zeros, NaN and values whose f64 scaling rounds.
  const n = 4 * 257 + 3;
  const values = Float32Array.from({ length: n }, (_, i) =>
    i % 11 === 0 ? Number.NaN : i % 5 === 0 ? 0 : Math.fround((i % 2 ? 1 : -1) * (0.1 + i / 3)),
  );

  // 1 - 2^-40: p·2^32 rounds up past the largest draw, so nothing is kept.
  for (const p of [0.3, 0.5, 1e-12, 1 - 2 ** -40]) {
    it(`equals one in-order draw per value at p = ${p}, and leaves the stream after the last draw`, () => {
      const a = heap.alloc(n);
      heap.f32(a).set(values);
      const rng = new Xoshiro128([21]);
      const replay = new Xoshiro128([21]);
      rng.saveState(heap.i32(state));
      k.dropoutRelu(a.ptr, n, p * 4294967296, 1 / (1 - p), state.ptr);
      rng.loadState(heap.i32(state));

      const want = reference(values, p, replay);
      expect(Array.from(heap.f32(a))).toEqual(Array.from(want));
      expect(rng.nextUint32()).toBe(replay.nextUint32());
    });
  }
});
