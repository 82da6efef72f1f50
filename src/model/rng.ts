import { MT19937 } from '../random/mt19937.js';

/**
 * Small fast generator (xoshiro128**) for dropout masks and shuffles, seeded from MT19937 so that every
 * (seed, stage, epoch) stream is reproducible: a resumed run replays exactly the same masks.
 */
export class Xoshiro128 {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  /** A stream derived from a list of integers, e.g. [seed, stage, epoch]. */
  constructor(key: readonly number[]) {
    const mt = MT19937.fromKey(key.map((k) => k >>> 0));
    this.a = mt.nextUint32();
    this.b = mt.nextUint32();
    this.c = mt.nextUint32();
    this.d = mt.nextUint32() | 1;
  }

  /** Next unsigned 32-bit value. */
  nextUint32(): number {
    const result = Math.imul(rotl(Math.imul(this.b, 5), 7), 9) >>> 0;
    const t = this.b << 9;
    this.c ^= this.a;
    this.d ^= this.b;
    this.b ^= this.c;
    this.a ^= this.d;
    this.c ^= t;
    this.d = rotl(this.d, 11);
    return result;
  }

  /** Copies the generator's state (4 unsigned 32-bit words) into `out`, e.g. for a kernel that draws from it. */
  saveState(out: Uint32Array | Int32Array): void {
    out[0] = this.a;
    out[1] = this.b;
    out[2] = this.c;
    out[3] = this.d;
  }

  /** Continues from a state written by saveState and advanced elsewhere. */
  loadState(state: Uint32Array | Int32Array): void {
    this.a = state[0]! | 0;
    this.b = state[1]! | 0;
    this.c = state[2]! | 0;
    this.d = state[3]! | 0;
  }

  /** Uniform integer in [0, n) for n <= 2^32 (multiply-shift; bias < 2^-32 * n, irrelevant here). */
  below(n: number): number {
    return Math.floor((this.nextUint32() / 4294967296) * n);
  }
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

/** Fisher-Yates permutation of 0..n-1 from a generator. */
export function permutation(n: number, rng: Xoshiro128): Int32Array {
  const p = new Int32Array(n);
  for (let i = 0; i < n; i++) p[i] = i;
  for (let i = n - 1; i > 0; i--) {
    const j = rng.below(i + 1);
    const t = p[i]!;
    p[i] = p[j]!;
    p[j] = t;
  }
  return p;
}
