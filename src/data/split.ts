import { MAX_SEED, MT19937 } from '../random/mt19937.js';
import { InvalidInputError } from '../errors/index.js';

/**
 * numpy's legacy `RandomState(seed).permutation(n)`: a Fisher-Yates shuffle of 0..n-1 that swaps position i
 * (from n-1 down to 1) with `random_interval(i)`, which draws 32-bit outputs masked to the smallest all-ones mask
 * >= i and rejects values > i.
 */
export function numpyPermutation(n: number, seed: number): Uint32Array {
  if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) throw new InvalidInputError(`permutation size must be an integer in [0, 2^32), got ${n}`);
  if (!Number.isInteger(seed) || seed < 0 || seed > MAX_SEED) throw new InvalidInputError(`seed must be an integer in [0, 2^32) as numpy's, got ${seed}`);
  const rng = MT19937.fromSeed(seed);
  const out = new Uint32Array(n);
  for (let i = 0; i < n; i++) out[i] = i;
  for (let i = n - 1; i >= 1; i--) {
    const j = randomInterval(rng, i);
    const tmp = out[i]!;
    out[i] = out[j]!;
    out[j] = tmp;
  }
  return out;
}

/** numpy `random_interval(max)` for max < 2^32: uniform integer in [0, max] by masked rejection sampling. */
function randomInterval(rng: MT19937, max: number): number {
  let mask = max;
  mask |= mask >>> 1;
  mask |= mask >>> 2;
  mask |= mask >>> 4;
  mask |= mask >>> 8;
  mask |= mask >>> 16;
  mask >>>= 0;
  let value: number;
  do value = (rng.nextUint32() & mask) >>> 0;
  while (value > max);
  return value;
}

/** Sizes of a split as scikit-learn computes them for a float test_size: n_test = ceil(testSize*n), n_train = n - n_test. */
export function splitSizes(n: number, testSize: number): { nTrain: number; nTest: number } {
  if (!(testSize > 0 && testSize < 1)) throw new InvalidInputError(`testSize must be in (0, 1), got ${testSize}`);
  const nTest = Math.ceil(testSize * n);
  const nTrain = n - nTest;
  if (nTrain <= 0) {
    throw new InvalidInputError(`with ${n} rows and testSize ${testSize} the train part would be empty; expected more rows or a smaller testSize`);
  }
  return { nTrain, nTest };
}

/**
 * scikit-learn `train_test_split(items, test_size=testSize, random_state=seed)` (no stratify) as positions: the part
 * `train` is items[train[0]], items[train[1]], ... in that order, and `test` likewise. With p =
 * RandomState(seed).permutation(n): test = p[:n_test], train = p[n_test:] (two views of p, 4 bytes a position).
 */
export function splitPositions(n: number, testSize: number, seed: number): { train: Uint32Array; test: Uint32Array } {
  const { nTest } = splitSizes(n, testSize);
  const p = numpyPermutation(n, seed);
  return { train: p.subarray(nTest), test: p.subarray(0, nTest) };
}

/**
 * A seeded, deterministic cap: when there are more than `cap` items, keeps the items at the first `cap` positions
 * of RandomState(seed).permutation(n), in their original order (numpy: `np.sort(RandomState(seed).permutation(n)[:cap])`).
 * Otherwise returns all items. Not stratified.
 */
export function subsample<T>(items: ArrayLike<T>, cap: number, seed: number): T[] {
  if (!Number.isInteger(cap) || cap < 0) throw new InvalidInputError(`subsample cap must be a non-negative integer, got ${cap}`);
  if (items.length <= cap) return Array.from(items);
  const chosen = numpyPermutation(items.length, seed).subarray(0, cap).sort();
  return Array.from(chosen, (i) => items[i]!);
}
