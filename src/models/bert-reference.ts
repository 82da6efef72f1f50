/**
 * A plain BERT forward pass over typed arrays, written from the Hugging Face BertModel definition and not from the
 * ONNX graph, so that import can check the graph it wrote against an independent computation of the same weights.
 * Slow (no batching, no SIMD) and meant for a few short texts; sums run in float64.
 */
import type { BertArchitecture, BertWeights } from './bert-config.js';

/** One sequence: token ids, token types and attention mask (0 on padding), all of the same length. */
export interface BertSequence {
  inputIds: readonly number[];
  tokenTypeIds: readonly number[];
  attentionMask: readonly number[];
}

/** last_hidden_state of one sequence, row-major [length × hidden]. */
export function bertForward(arch: BertArchitecture, weights: BertWeights, seq: BertSequence): Float32Array {
  const H = arch.hiddenSize;
  const S = seq.inputIds.length;
  const w = (name: string): Float32Array => weights.get(name)!;
  const word = w('embeddings.word_embeddings.weight');
  const pos = w('embeddings.position_embeddings.weight');
  const type = w('embeddings.token_type_embeddings.weight');
  let x: Float64Array = new Float64Array(S * H);
  for (let s = 0; s < S; s++) {
    const id = seq.inputIds[s]!;
    const tt = seq.tokenTypeIds[s]!;
    for (let h = 0; h < H; h++) x[s * H + h] = word[id * H + h]! + type[tt * H + h]! + pos[s * H + h]!;
  }
  layerNorm(x, H, w('embeddings.LayerNorm.weight'), w('embeddings.LayerNorm.bias'), arch.layerNormEps);

  const heads = arch.numHeads;
  const d = H / heads;
  const scale = 1 / Math.sqrt(d);
  const scores = new Float64Array(S);
  for (let l = 0; l < arch.numLayers; l++) {
    const p = `encoder.layer.${l}`;
    const lin = (name: string, input: Float64Array) => linear(input, S, w(`${p}.${name}.weight`), w(`${p}.${name}.bias`));
    const q = lin('attention.self.query', x);
    const k = lin('attention.self.key', x);
    const v = lin('attention.self.value', x);
    const context = new Float64Array(S * H);
    for (let hd = 0; hd < heads; hd++) {
      const off = hd * d;
      for (let i = 0; i < S; i++) {
        // Padded keys get probability 0: the graph's float32-min bias makes their exp underflow to exactly 0.
        let max = -Infinity;
        for (let j = 0; j < S; j++) {
          if (seq.attentionMask[j] === 0) continue;
          let dot = 0;
          for (let c = 0; c < d; c++) dot += q[i * H + off + c]! * k[j * H + off + c]!;
          scores[j] = dot * scale;
          if (scores[j]! > max) max = scores[j]!;
        }
        let sum = 0;
        for (let j = 0; j < S; j++) {
          if (seq.attentionMask[j] === 0) continue;
          scores[j] = Math.exp(scores[j]! - max);
          sum += scores[j]!;
        }
        for (let j = 0; j < S; j++) {
          if (seq.attentionMask[j] === 0) continue;
          const prob = scores[j]! / sum;
          for (let c = 0; c < d; c++) context[i * H + off + c]! += prob * v[j * H + off + c]!;
        }
      }
    }
    const attended = lin('attention.output.dense', context);
    for (let i = 0; i < attended.length; i++) attended[i]! += x[i]!;
    layerNorm(attended, H, w(`${p}.attention.output.LayerNorm.weight`), w(`${p}.attention.output.LayerNorm.bias`), arch.layerNormEps);
    const up = lin('intermediate.dense', attended);
    for (let i = 0; i < up.length; i++) up[i] = 0.5 * up[i]! * (1 + erf(up[i]! / Math.SQRT2));
    const down = lin('output.dense', up);
    for (let i = 0; i < down.length; i++) down[i]! += attended[i]!;
    layerNorm(down, H, w(`${p}.output.LayerNorm.weight`), w(`${p}.output.LayerNorm.bias`), arch.layerNormEps);
    x = down;
  }
  return Float32Array.from(x);
}

/** input [rows × in] · Wᵀ + b for a PyTorch Linear weight W [out × in]. */
function linear(input: Float64Array, rows: number, weight: Float32Array, bias: Float32Array): Float64Array {
  const out = bias.length;
  const inSize = weight.length / out;
  const y = new Float64Array(rows * out);
  for (let r = 0; r < rows; r++) {
    for (let o = 0; o < out; o++) {
      let acc = bias[o]!;
      for (let i = 0; i < inSize; i++) acc += input[r * inSize + i]! * weight[o * inSize + i]!;
      y[r * out + o] = acc;
    }
  }
  return y;
}

/** In-place LayerNorm of each row of width `size` (biased variance, as torch.nn.LayerNorm). */
function layerNorm(x: Float64Array, size: number, gamma: Float32Array, beta: Float32Array, eps: number): void {
  for (let base = 0; base < x.length; base += size) {
    let mean = 0;
    for (let i = 0; i < size; i++) mean += x[base + i]!;
    mean /= size;
    let variance = 0;
    for (let i = 0; i < size; i++) variance += (x[base + i]! - mean) ** 2;
    const inv = 1 / Math.sqrt(variance / size + eps);
    for (let i = 0; i < size; i++) x[base + i] = (x[base + i]! - mean) * inv * gamma[i]! + beta[i]!;
  }
}

/**
 * The error function, by the Chebyshev fit of Numerical Recipes (erfc with fractional error below 1.2e-7): JavaScript
 * has no Math.erf, and this error is three orders below the 1e-4 the import check allows. Not worth a dependency
 * (@stdlib's erf brings a native-addon build toolchain along).
 */
export function erf(x: number): number {
  const z = Math.abs(x);
  const t = 1 / (1 + 0.5 * z);
  const poly =
    -1.26551223 +
    t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277))))))));
  const erfc = t * Math.exp(-z * z + poly);
  return x >= 0 ? 1 - erfc : erfc - 1;
}
