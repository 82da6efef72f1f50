import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { randomBertWeights } from '../../../scripts/onnx/test-model.js';
import type { BertArchitecture } from '../../../src/models/bert-config.js';
import { buildBertOnnx } from '../../../src/models/bert-onnx.js';
import { bertForward, erf, type BertSequence } from '../../../src/models/bert-reference.js';

const ARCH: BertArchitecture = {
  vocabSize: 50,
  hiddenSize: 16,
  numLayers: 2,
  numHeads: 4,
  intermediateSize: 24,
  maxPositions: 12,
  typeVocabSize: 2,
  layerNormEps: 1e-12,
};

/** last_hidden_state of a padded batch from the written graph. */
async function runGraph(model: Uint8Array, rows: BertSequence[]): Promise<Float32Array> {
  const session = await ort.InferenceSession.create(model);
  const S = rows[0]!.inputIds.length;
  const t = (f: keyof BertSequence) => new ort.Tensor('int64', BigInt64Array.from(rows.flatMap((r) => r[f].map(BigInt))), [rows.length, S]);
  const out = await session.run({ input_ids: t('inputIds'), attention_mask: t('attentionMask'), token_type_ids: t('tokenTypeIds') });
  await session.release();
  return out['last_hidden_state']!.data as Float32Array;
}

describe('the ONNX BERT writer against the reference forward pass', () => {
  const weights = randomBertWeights(ARCH, 11);
  const model = buildBertOnnx(ARCH, weights, 'test');
  // A sentence pair (token type 1 on its second segment) and a padded single sentence.
  const rows: BertSequence[] = [
    { inputIds: [1, 7, 8, 2, 9, 10, 11, 2], tokenTypeIds: [0, 0, 0, 0, 1, 1, 1, 1], attentionMask: [1, 1, 1, 1, 1, 1, 1, 1] },
    { inputIds: [1, 30, 2, 0, 0, 0, 0, 0], tokenTypeIds: [0, 0, 0, 0, 0, 0, 0, 0], attentionMask: [1, 1, 1, 0, 0, 0, 0, 0] },
  ];

  it('agree on every real token, with token types and padding', async () => {
    const hidden = await runGraph(model, rows);
    const H = ARCH.hiddenSize;
    rows.forEach((row, r) => {
      const expected = bertForward(ARCH, weights, row);
      const real = row.attentionMask.filter((m) => m === 1).length;
      for (let i = 0; i < real * H; i++) expect(Math.abs(hidden[r * 8 * H + i]! - expected[i]!)).toBeLessThan(1e-5);
    });
  });

  it('token type ids reach the output (the pair differs from the same ids as one segment)', () => {
    const pair = bertForward(ARCH, weights, rows[0]!);
    const single = bertForward(ARCH, weights, { ...rows[0]!, tokenTypeIds: rows[0]!.tokenTypeIds.map(() => 0) });
    expect(Math.max(...pair.map((x, i) => Math.abs(x - single[i]!)))).toBeGreaterThan(1e-3);
  });

  it('is deterministic: the same weights give the same bytes', () => {
    expect(Buffer.from(buildBertOnnx(ARCH, weights, 'test')).equals(Buffer.from(model))).toBe(true);
  });

  it('rejects weights that do not fit the architecture', () => {
    const short = new Map(weights);
    short.set('encoder.layer.0.intermediate.dense.bias', new Float32Array(3));
    expect(() => buildBertOnnx(ARCH, short, 'test')).toThrow(/encoder\.layer\.0\.intermediate\.dense\.bias has 3 values, expected \[24\]/);
  });
});

describe('erf', () => {
  it('matches reference values to 1.2e-7', () => {
    // Values from Abramowitz & Stegun table 7.1 (and erf(-x) = -erf(x)).
    for (const [x, v] of [
      [0, 0],
      [0.1, 0.1124629160],
      [0.5, 0.5204998778],
      [1, 0.8427007929],
      [-1.5, -0.9661051465],
      [2, 0.9953222650],
      [4, 0.9999999846],
    ] as const) {
      expect(Math.abs(erf(x) - v)).toBeLessThan(1.2e-7);
    }
  });
});
