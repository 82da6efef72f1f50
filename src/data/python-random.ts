/**
 * The parts of CPython's `random.Random` that the IMDB row order depends on, bit for bit: the shipped
 * imdb.csv was shuffled with `random.Random(42).shuffle`, so re-creating it needs the same draws.
 */
import { MT19937 } from '../random/mt19937.js';

/** A CPython-compatible `random.Random(seed)` subset: getrandbits (k <= 32), randbelow, shuffle. */
export class PythonRandom {
  private readonly mt: MT19937;

  /** Seeded like `random.Random(seed)` for an integer seed in [0, 2^32). */
  constructor(seed: number) {
    if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) {
      throw new RangeError(`PythonRandom seed must be an integer in [0, 2^32), got ${seed}`);
    }
    this.mt = MT19937.fromKey([seed]);
  }

  /** `getrandbits(k)` for 0 <= k <= 32: the top k bits of one 32-bit output. */
  getrandbits(k: number): number {
    if (!Number.isInteger(k) || k < 0 || k > 32) throw new RangeError(`getrandbits supports 0 <= k <= 32, got ${k}`);
    if (k === 0) return 0;
    // `>>> 0` after the shift keeps k = 32 unsigned (a shift by 0 would otherwise be a no-op on a signed value).
    return (this.mt.nextUint32() >>> (32 - k)) >>> 0;
  }

  /** `_randbelow(n)` by rejection sampling on n.bit_length() bits, as CPython does for n < 2^32. */
  randbelow(n: number): number {
    if (!Number.isInteger(n) || n < 1 || n > 0xffffffff) throw new RangeError(`randbelow needs 1 <= n < 2^32, got ${n}`);
    const k = 32 - Math.clz32(n);
    let r = this.getrandbits(k);
    while (r >= n) r = this.getrandbits(k);
    return r;
  }

  /** In-place Fisher-Yates exactly as `random.shuffle(x)`; returns the same array for chaining. */
  shuffle<T>(x: T[]): T[] {
    for (let i = x.length - 1; i > 0; i--) {
      const j = this.randbelow(i + 1);
      const tmp = x[i]!;
      x[i] = x[j]!;
      x[j] = tmp;
    }
    return x;
  }
}
