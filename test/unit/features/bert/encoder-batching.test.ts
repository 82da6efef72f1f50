import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeTestModel, TEST_MODEL_PRESETS } from '../../../../scripts/onnx/test-model.js';
import { BertEncoder, planBatches } from '../../../../src/features/bert/encoder.js';

describe('planBatches', () => {
  it('sorts by length (stable) and caps texts per batch', () => {
    expect(planBatches([5, 2, 9, 2, 4], { batchSize: 2, maxBatchTokens: 1000, bucketing: true })).toEqual([[1, 3], [4, 0], [2]]);
    expect(planBatches([5, 2, 9, 2, 4], { batchSize: 2, maxBatchTokens: 1000, bucketing: false })).toEqual([[0, 1], [2, 3], [4]]);
  });

  it('caps padded positions per batch, and a text longer than the cap runs alone', () => {
    // 3 texts of 4 tokens fill 12 positions; a 4th would make 16 > 12.
    expect(planBatches([4, 4, 4, 4, 20], { batchSize: 32, maxBatchTokens: 12, bucketing: true })).toEqual([[0, 1, 2], [3], [4]]);
    expect(planBatches([], { batchSize: 32, maxBatchTokens: 12, bucketing: true })).toEqual([]);
  });
});

describe('encoding with several sessions', () => {
  const texts = ['a fine film', 'no', 'what \'s next ?', 'it is a long sentence '.repeat(20), 'Café', 'the end'];
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'bert-sessions-'));
    await writeTestModel(join(dir, 'tiny'), TEST_MODEL_PRESETS.tiny);
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('gives the same embeddings in input order as one session, and reports progress to the end', async () => {
    const one = await BertEncoder.load(join(dir, 'tiny'), { threads: 1 });
    const two = await BertEncoder.load(join(dir, 'tiny'), { threads: 1, sessions: 2 });
    try {
      const progress: number[] = [];
      const a = await one.encode(texts, { pooling: 'mean', batchSize: 2 });
      const b = await two.encode(texts, { pooling: 'mean', batchSize: 2, onProgress: (done) => progress.push(done) });
      expect(Array.from(b.embeddings)).toEqual(Array.from(a.embeddings));
      expect([b.tokens, b.paddedTokens]).toEqual([a.tokens, a.paddedTokens]);
      expect(progress.at(-1)).toBe(texts.length);
    } finally {
      await Promise.all([one.close(), two.close()]);
    }
  });

  it('rejects a session count that is not a positive integer', async () => {
    await expect(BertEncoder.load(join(dir, 'tiny'), { sessions: 0 })).rejects.toThrow(/sessions must be a positive integer, got 0/);
  });
});
