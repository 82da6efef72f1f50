/**
 * Import's self-check: the written ONNX graph, run by ONNX Runtime as the bert family runs it, against the
 * TypeScript reference forward pass on the same weights, over a padded batch of a few texts (one a sentence pair,
 * so token type 1 takes part when the model has it).
 */
import { join } from 'node:path';
import { loadBertTokenizer } from '../features/bert/tokenizer.js';
import { InvalidDataError } from '../errors/index.js';
import type { BertArchitecture, BertWeights } from './bert-config.js';
import { bertForward, type BertSequence } from './bert-reference.js';
import type { Quantization } from './quantize.js';

/** Largest |ONNX − reference| import accepts on any hidden-state value of a float32 graph. */
export const VERIFY_TOLERANCE = 1e-4;

/** What import accepts: the largest |ONNX − reference| on any hidden-state value, the smallest per-token cosine. */
export interface VerificationBounds {
  maxAbsDiff: number;
  minCosine: number;
}

/**
 * The bounds for a float32 graph, or for one quantized as `quantize` says. int8 weights and run-time int8 activations
 * move hidden-state values by up to a few tenths (all-MiniLM-L6-v2: max |diff| 0.44, min per-token cosine 0.968 on
 * the verification texts), so the int8 bounds check mostly direction, with a margin: a graph that is wrong rather than
 * rounded (a weight transposed or mis-scaled) lands far below them.
 */
export function verificationBounds(quantize: Quantization | undefined): VerificationBounds {
  return quantize === 'int8' ? { maxAbsDiff: 1, minCosine: 0.95 } : { maxAbsDiff: VERIFY_TOLERANCE, minCosine: 0.9999 };
}

/** Short texts with accents, CJK, emoji and punctuation; the last two form a sentence pair. */
const VERIFY_TEXTS = ['Hello world!', 'Café naïve — 東京で 🙂 a stirring, funny re-imagining', 'it is not', 'quite good.'] as const;

/** What the check compared. */
export interface Verification {
  maxAbsDiff: number;
  /** Smallest cosine similarity of a token's ONNX hidden state with the reference's (1 = same direction). */
  minCosine: number;
  /** Sequences run and hidden-state values compared (real tokens × hidden). */
  sequences: number;
  values: number;
}

/** Runs `<modelDir>/onnx/model.onnx` and the reference on the verification batch; returns how far apart they are. */
export async function verifyBertOnnx(modelDir: string, arch: BertArchitecture, weights: BertWeights): Promise<Verification> {
  const tokenizer = await loadBertTokenizer(modelDir);
  if (tokenizer.vocabSize > arch.vocabSize) {
    throw new InvalidDataError(`${modelDir}: the tokenizer has ${tokenizer.vocabSize} tokens, more than vocab_size ${arch.vocabSize} in config.json`);
  }
  const maxLength = Math.min(64, arch.maxPositions);
  const [a, b, c, d] = VERIFY_TEXTS.map((t) => tokenizer.encode(t, maxLength)) as [number[], number[], number[], number[]];
  const pair = [...c, ...d.slice(1)].slice(0, arch.maxPositions);
  const secondType = arch.typeVocabSize > 1 ? 1 : 0;
  const rows = [
    { ids: a, types: a.map(() => 0) },
    { ids: b, types: b.map(() => 0) },
    { ids: pair, types: pair.map((_, i) => (i < c.length ? 0 : secondType)) },
  ];
  const S = Math.max(...rows.map((r) => r.ids.length));
  const sequences: BertSequence[] = rows.map((r) => {
    const pad = S - r.ids.length;
    return {
      inputIds: [...r.ids, ...Array<number>(pad).fill(tokenizer.padId)],
      tokenTypeIds: [...r.types, ...Array<number>(pad).fill(0)],
      attentionMask: [...r.ids.map(() => 1), ...Array<number>(pad).fill(0)],
    };
  });

  const ort = await import('onnxruntime-node');
  const session = await ort.InferenceSession.create(join(modelDir, 'onnx', 'model.onnx'), { graphOptimizationLevel: 'all' });
  let hidden: Float32Array;
  try {
    const tensor = (field: keyof BertSequence) =>
      new ort.Tensor('int64', BigInt64Array.from(sequences.flatMap((s) => s[field].map(BigInt))), [sequences.length, S]);
    const out = await session.run({ input_ids: tensor('inputIds'), attention_mask: tensor('attentionMask'), token_type_ids: tensor('tokenTypeIds') });
    hidden = out['last_hidden_state']!.data as Float32Array;
  } finally {
    await session.release();
  }
  const H = arch.hiddenSize;
  let maxAbsDiff = 0;
  let minCosine = 1;
  let values = 0;
  rows.forEach((row, r) => {
    const expected = bertForward(arch, weights, sequences[r]!);
    // Real positions only: padded ones are never pooled, and their float32 rounding differs more (~1e-5 on MiniLM).
    for (let t = 0; t < row.ids.length; t++) {
      let dot = 0;
      let normA = 0;
      let normB = 0;
      for (let i = t * H; i < (t + 1) * H; i++) {
        const [a, b] = [hidden[r * S * H + i]!, expected[i]!];
        // NaN compares false with everything: count it as an infinite difference, not as agreement.
        maxAbsDiff = Number.isNaN(a - b) ? Infinity : Math.max(maxAbsDiff, Math.abs(a - b));
        dot += a * b;
        normA += a * a;
        normB += b * b;
      }
      const cosine = dot / Math.sqrt(normA * normB);
      minCosine = Number.isNaN(cosine) ? -1 : Math.min(minCosine, cosine);
    }
    values += row.ids.length * H;
  });
  return { maxAbsDiff, minCosine, sequences: sequences.length, values };
}
