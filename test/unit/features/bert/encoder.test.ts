import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeTestModel, TEST_MODEL_PRESETS } from '../../../../scripts/onnx/test-model.js';
import { BertEncoder } from '../../../../src/features/bert/encoder.js';
import { parsePooling, poolHiddenStates, POOLINGS } from '../../../../src/features/bert/pooling.js';
import { padBatch } from '../../../../src/features/bert/tokenizer.js';

// Varied lengths so a batch pads most rows; the long one is truncated.
const TEXTS = [
  'Hello world!',
  'a stirring , funny and finally transporting re imagining of beauty and the beast',
  'no',
  'Café naïve — a film<br /><br />that never quite works.',
  'it is a long sentence '.repeat(40),
  'what \'s next ?',
];

let dir: string;
let encoder: BertEncoder;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bert-enc-'));
  await writeTestModel(join(dir, 'tiny'), TEST_MODEL_PRESETS.tiny);
  encoder = await BertEncoder.load(join(dir, 'tiny'), { threads: 1 });
});
afterAll(async () => {
  await encoder?.close();
  await rm(dir, { recursive: true, force: true });
});

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

describe('poolHiddenStates', () => {
  // Two rows, seq 3, dim 2; row 1 has one padding position holding values that would win max and shift mean.
  const batch = padBatch([[101, 7, 102], [101, 102]], 0);
  const hidden = Float32Array.from([1, -1, 3, 5, 2, 0, /* row 1 */ 4, 4, -2, 6, 100, 100]);
  const pool = (pooling: (typeof POOLINGS)[number]) => {
    const out = new Float32Array(4);
    poolHiddenStates(hidden, batch, 2, { [pooling]: out }, [1, 0]); // rows written swapped, as after length sorting
    return Array.from(out);
  };

  it('averages and maxes over real tokens only, and writes rows where told', () => {
    expect(pool('mean')).toEqual([1, 5, 2, Math.fround(4 / 3)]);
    expect(pool('max')).toEqual([4, 6, 3, 5]);
  });

  it('takes [CLS] at position 0 and each row\'s real [SEP], not the last padded position', () => {
    expect(pool('cls')).toEqual([4, 4, 1, -1]);
    expect(pool('sep')).toEqual([-2, 6, 2, 0]);
  });

  it('computes every pooling in one call exactly as one at a time', () => {
    const all = Object.fromEntries(POOLINGS.map((p) => [p, new Float32Array(4)]));
    poolHiddenStates(hidden, batch, 2, all, [1, 0]);
    for (const p of POOLINGS) expect(Array.from(all[p]!), p).toEqual(pool(p));
  });

  it('rejects a hidden-state buffer of the wrong size and unknown pooling names', () => {
    expect(() => poolHiddenStates(new Float32Array(5), batch, 2, { mean: new Float32Array(4) }, [0, 1])).toThrow(
      /expected 2×3×2/,
    );
    expect(() => parsePooling('avg')).toThrow(/pooling must be one of mean, max, cls, sep, got "avg"/);
  });
});

describe('BertEncoder on a generated tiny BERT (real ONNX Runtime session)', () => {
  it.each(POOLINGS)('%s: a padded, length-sorted batch equals encoding each text alone', async (pooling) => {
    const poolings = [pooling];
    const batched = await encoder.encode(TEXTS, { poolings, batchSize: 4 });
    const unsorted = await encoder.encode(TEXTS, { poolings, batchSize: 6, bucketing: false });
    // A token cap smaller than the longest text: that text runs alone, the rest in capped batches.
    const capped = await encoder.encode(TEXTS, { poolings, batchSize: 6, maxBatchTokens: 40 });
    const alone = new Float32Array(batched.embeddings[pooling].length);
    for (let i = 0; i < TEXTS.length; i++) {
      const one = await encoder.encode([TEXTS[i]!], { poolings });
      alone.set(one.embeddings[pooling], i * encoder.hiddenSize);
    }
    expect(batched.rows).toBe(TEXTS.length);
    expect(batched.dim).toBe(32);
    expect(maxAbsDiff(batched.embeddings[pooling], alone)).toBeLessThan(1e-5);
    expect(maxAbsDiff(unsorted.embeddings[pooling], alone)).toBeLessThan(1e-5);
    expect(maxAbsDiff(capped.embeddings[pooling], alone)).toBeLessThan(1e-5);
    expect(capped.paddedTokens).toBeLessThan(unsorted.paddedTokens);
    expect(batched.paddedTokens).toBeGreaterThan(batched.tokens); // padding was really there
  });

  it('pools the positions of the model output it claims to: [CLS], [SEP], mean and max of the real tokens', async () => {
    const text = TEXTS[3]!;
    const ids = encoder.tokenize([text])[0]!;
    const session = await ort.InferenceSession.create(join(dir, 'tiny', 'onnx', 'model.onnx'));
    const shape = [1, ids.length];
    const tensor = (values: bigint[]) => new ort.Tensor('int64', BigInt64Array.from(values), shape);
    const out = await session.run({
      input_ids: tensor(ids.map(BigInt)),
      attention_mask: tensor(ids.map(() => 1n)),
      token_type_ids: tensor(ids.map(() => 0n)),
    });
    await session.release();
    const hidden = out['last_hidden_state']!.data as Float32Array;
    const d = encoder.hiddenSize;
    const at = (t: number) => hidden.subarray(t * d, (t + 1) * d);
    const mean = new Float32Array(d).map((_, j) => ids.reduce((s, _id, t) => s + at(t)[j]!, 0) / ids.length);
    const max = new Float32Array(d).map((_, j) => Math.max(...ids.map((_id, t) => at(t)[j]!)));
    // In a batch with a longer text this row is padded, so the last padded position is not its [SEP].
    const batch = [text, TEXTS[4]!];
    const pooled = async (pooling: (typeof POOLINGS)[number]) =>
      (await encoder.encode(batch, { poolings: [pooling] })).embeddings[pooling].subarray(0, d);
    expect(maxAbsDiff(await pooled('cls'), at(0))).toBeLessThan(1e-5);
    expect(maxAbsDiff(await pooled('sep'), at(ids.length - 1))).toBeLessThan(1e-5);
    expect(maxAbsDiff(await pooled('mean'), mean)).toBeLessThan(1e-5);
    expect(maxAbsDiff(await pooled('max'), max)).toBeLessThan(1e-5);
  });

  it('one pass gives every pooling, bit for bit what encoding each pooling on its own gives', async () => {
    const all = await encoder.encode(TEXTS, { poolings: POOLINGS, batchSize: 4 });
    expect(Object.keys(all.embeddings)).toEqual([...POOLINGS]);
    for (const p of POOLINGS) {
      const alone = await encoder.encode(TEXTS, { poolings: [p], batchSize: 4 });
      expect(Buffer.from(all.embeddings[p].buffer).equals(Buffer.from(alone.embeddings[p].buffer)), p).toBe(true);
    }
  });

  it('counts real tokens and truncates to maxLength', async () => {
    const result = await encoder.encode(TEXTS, { poolings: ['mean'], maxLength: 16 });
    const lengths = encoder.tokenize(TEXTS, 16).map((s) => s.length);
    expect(Math.max(...lengths)).toBe(16);
    expect(result.tokens).toBe(lengths.reduce((a, b) => a + b, 0));
    const empty = await encoder.encode([], { poolings: ['mean'] });
    expect(empty.rows).toBe(0);
    expect(empty.embeddings.mean).toHaveLength(0);
  });

  it('rejects a max length beyond the model\'s positions and a folder without config.json', async () => {
    await expect(encoder.encode(['x'], { poolings: ['mean'], maxLength: 513 })).rejects.toThrow(
      /max length must be an integer from 2 to 512/,
    );
    await expect(BertEncoder.load(dir)).rejects.toThrow(/config\.json: not found/);
  });
});
