/**
 * MT19937 (Matsumoto & Nishimura), the generator behind numpy's legacy RandomState and Python's `random`.
 * Our own because bit-exact agreement with those seedings is the point: splits must equal sklearn's and
 * the IMDB row order must equal the one in shared/data.
 */
/** The largest seed `fromSeed` takes as it is: init_genrand keeps 32 bits, as numpy's RandomState refuses any larger seed. */
export const MAX_SEED = 0xffffffff;

export class MT19937 {
  private readonly mt = new Uint32Array(624);
  private index = 624;

  private constructor() {}

  /** Seeded like numpy `RandomState(seed)` with an integer seed (init_genrand). */
  static fromSeed(seed: number): MT19937 {
    const g = new MT19937();
    g.initGenrand(seed >>> 0);
    return g;
  }

  /** Seeded like Python `random.seed(key)` (init_by_array on the key's 32-bit words, least significant first). */
  static fromKey(key: readonly number[]): MT19937 {
    const g = new MT19937();
    g.initGenrand(19650218);
    const mt = g.mt;
    const n = 624;
    let i = 1;
    let j = 0;
    for (let k = Math.max(n, key.length); k > 0; k--) {
      const prev = mt[i - 1]! ^ (mt[i - 1]! >>> 30);
      mt[i] = ((mt[i]! ^ Math.imul(prev, 1664525)) + (key[j]! >>> 0) + j) >>> 0;
      i++;
      j++;
      if (i >= n) {
        mt[0] = mt[n - 1]!;
        i = 1;
      }
      if (j >= key.length) j = 0;
    }
    for (let k = n - 1; k > 0; k--) {
      const prev = mt[i - 1]! ^ (mt[i - 1]! >>> 30);
      mt[i] = ((mt[i]! ^ Math.imul(prev, 1566083941)) - i) >>> 0;
      i++;
      if (i >= n) {
        mt[0] = mt[n - 1]!;
        i = 1;
      }
    }
    mt[0] = 0x80000000;
    return g;
  }

  /** Next 32-bit output as an unsigned integer. */
  nextUint32(): number {
    if (this.index >= 624) this.twist();
    let y = this.mt[this.index++]!;
    y ^= y >>> 11;
    y ^= (y << 7) & 0x9d2c5680;
    y ^= (y << 15) & 0xefc60000;
    y ^= y >>> 18;
    return y >>> 0;
  }

  /** Uniform double in [0, 1) with 53 random bits (numpy `random_sample`, Python `random()`). */
  nextDouble(): number {
    const a = this.nextUint32() >>> 5;
    const b = this.nextUint32() >>> 6;
    return (a * 67108864 + b) / 9007199254740992;
  }

  private initGenrand(seed: number): void {
    const mt = this.mt;
    mt[0] = seed >>> 0;
    for (let i = 1; i < 624; i++) {
      const prev = mt[i - 1]! ^ (mt[i - 1]! >>> 30);
      mt[i] = (Math.imul(prev, 1812433253) + i) >>> 0;
    }
    this.index = 624;
  }

  private twist(): void {
    const mt = this.mt;
    for (let i = 0; i < 624; i++) {
      const y = (mt[i]! & 0x80000000) | (mt[(i + 1) % 624]! & 0x7fffffff);
      let v = mt[(i + 397) % 624]! ^ (y >>> 1);
      if (y & 1) v ^= 0x9908b0df;
      mt[i] = v >>> 0;
    }
    this.index = 0;
  }
}
