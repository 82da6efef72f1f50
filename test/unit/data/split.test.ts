import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { numpyPermutation, splitPositions, subsample } from '../../../src/data/split.js';

interface SplitCase {
  n: number;
  testSize: number;
  seed: number;
  nTrain: number;
  nTest: number;
  trainHead: number[];
  testHead: number[];
  trainSha256: string;
  testSha256: string;
}
interface SubsampleCase {
  n: number;
  cap: number;
  seed: number;
  head: number[];
  sha256: string;
}

// Written by scripts/fixtures/splits.py with numpy + scikit-learn.
const fixture = JSON.parse(readFileSync(new URL('../../fixtures/data/splits.json', import.meta.url), 'utf8')) as {
  splits: SplitCase[];
  subsamples: SubsampleCase[];
};

const digest = (indices: ArrayLike<number>): string => createHash('sha256').update(Array.from(indices).join(',')).digest('hex');
const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i);

describe('splitPositions equals scikit-learn train_test_split', () => {
  for (const c of fixture.splits) {
    it(`n=${c.n} test_size=${c.testSize} random_state=${c.seed}`, () => {
      const { train, test } = splitPositions(c.n, c.testSize, c.seed);
      expect([train.length, test.length]).toEqual([c.nTrain, c.nTest]);
      expect(Array.from(train.subarray(0, 50))).toEqual(c.trainHead);
      expect(Array.from(test.subarray(0, 50))).toEqual(c.testHead);
      expect(digest(train)).toBe(c.trainSha256);
      expect(digest(test)).toBe(c.testSha256);
    });
  }

  it('gives the seed experiment sizes: SST-2 5536/1384, IMDB 40000/10000 then 32000/8000', () => {
    const sizes = (n: number) => {
      const s = splitPositions(n, 0.2, 42);
      return [s.train.length, s.test.length];
    };
    expect(sizes(6920)).toEqual([5536, 1384]);
    expect(sizes(50000)).toEqual([40000, 10000]);
    expect(sizes(40000)).toEqual([32000, 8000]);
  });

  it('refuses a split that leaves the train part empty, as sklearn does', () => {
    expect(() => splitPositions(1, 0.5, 42)).toThrow('with 1 rows and testSize 0.5 the train part would be empty');
    expect(() => splitPositions(3, 1.5, 42)).toThrow('testSize must be in (0, 1), got 1.5');
    expect(() => splitPositions(3, 0.5, -1)).toThrow('seed must be an integer in [0, 2^32)');
  });
});

describe('subsample', () => {
  for (const c of fixture.subsamples) {
    it(`equals np.sort(RandomState(${c.seed}).permutation(${c.n})[:${c.cap}])`, () => {
      const chosen = subsample(range(c.n), c.cap, c.seed);
      expect(chosen).toHaveLength(c.cap);
      expect(chosen.slice(0, 50)).toEqual(c.head);
      expect(digest(chosen)).toBe(c.sha256);
    });
  }

  it('keeps every item, in order, when the cap is not below the count', () => {
    const items = ['c', 'a', 'b'];
    const out = subsample(items, 3, 42);
    expect(out).toEqual(items);
    expect(out).not.toBe(items);
  });

  it('is the first positions of the same permutation the splits use', () => {
    const p = Array.from(numpyPermutation(100, 9));
    expect(subsample(range(100), 10, 9)).toEqual(p.slice(0, 10).sort((a, b) => a - b));
  });
});
