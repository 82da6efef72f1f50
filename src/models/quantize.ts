/**
 * Weight quantization for `models import --quantize int8`: a Linear layer's weight as symmetric int8 with one scale
 * per output column (zero point 0), so that ONNX Runtime's integer kernels multiply it with activations quantized at
 * run time. Per column rather than per tensor: MiniLM's columns differ in range by up to ~10× (0.09 to 0.9 in a
 * layer's feed-forward output), so a shared scale would leave the narrow ones about 13 of the 127 levels (measured:
 * mean-pooled cosine with float32 0.959 instead of 0.992 on SST-2); the scales multiply the int32 result, at no
 * run-time cost.
 */
import { InvalidInputError } from '../errors/index.js';

/** The quantizations import can write; fp32 (none) is the default. */
export const QUANTIZATIONS = ['int8'] as const;
export type Quantization = (typeof QUANTIZATIONS)[number];

/** Parses a `--quantize` value, naming the accepted ones on error. */
export function parseQuantization(value: string): Quantization {
  if ((QUANTIZATIONS as readonly string[]).includes(value)) return value as Quantization;
  throw new InvalidInputError(`--quantize must be ${QUANTIZATIONS.join(' or ')}, got "${value}"`);
}

/** Largest int8 magnitude used: symmetric [-127, 127], so that -w quantizes to exactly -q. */
export const INT8_MAX = 127;

/** An int8 weight matrix [in × out] (the MatMul layout) with one scale per output column. */
export interface QuantizedWeight {
  values: Int8Array;
  scales: Float32Array;
}

/**
 * Quantizes a PyTorch Linear weight W [out × in] to int8, transposed to [in × out]: column o is round(Wᵀ[:, o] / s_o)
 * with s_o = max|W[o, :]| / 127, so Wᵀ[i, o] ≈ values[i·out + o] · s_o within s_o / 2. An all-zero column gets scale 1.
 */
export function quantizeLinearWeight(weight: Float32Array, out: number, inSize: number): QuantizedWeight {
  if (weight.length !== out * inSize) throw new InvalidInputError(`weight has ${weight.length} values, expected ${out} × ${inSize}`);
  const values = new Int8Array(weight.length);
  const scales = new Float32Array(out);
  for (let o = 0; o < out; o++) {
    let max = 0;
    for (let i = 0; i < inSize; i++) max = Math.max(max, Math.abs(weight[o * inSize + i]!));
    const scale = max > 0 ? Math.fround(max / INT8_MAX) : 1;
    scales[o] = scale;
    for (let i = 0; i < inSize; i++) {
      values[i * out + o] = Math.max(-INT8_MAX, Math.min(INT8_MAX, Math.round(weight[o * inSize + i]! / scale)));
    }
  }
  return { values, scales };
}
