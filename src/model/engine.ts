import type { Features } from '../matrix/features.js';
import { MT19937 } from '../random/mt19937.js';
import type { Xoshiro128 } from './rng.js';

/** Shape of the MLP: input -> hidden ReLU+dropout layers -> one logit per class. */
export interface MlpSpec {
  inputSize: number;
  hidden: number[];
  classes: number;
  dropout: number;
  /** Sparse counts through an embedding-bag first layer (BoW) instead of a dense input. */
  sparseInput: boolean;
  /** First-layer Adam for sparse input: `lazy` updates only rows present in the batch. */
  sparseAdam: 'lazy' | 'dense';
  learningRate: number;
}

/** A named tensor of a checkpoint (row-major). */
export interface Tensor {
  shape: number[];
  data: Float32Array;
}

/** Parameters or optimizer moments by name: `layer_<i>/kernel` [in, out] and `layer_<i>/bias` [out]. */
export type ParamSet = Map<string, Tensor>;

/** Adam state: step count and first/second moments per parameter. */
export interface OptimizerState {
  step: number;
  m: ParamSet;
  v: ParamSet;
}

/** Adam hyper-parameters (PyTorch defaults, as the seed). */
export const ADAM = { beta1: 0.9, beta2: 0.999, eps: 1e-8 } as const;

/** A trainable MLP; implementations must agree on outputs, gradients and state layout. */
export interface MlpEngine {
  readonly name: string;
  readonly spec: MlpSpec;
  /** One optimizer step on a mini-batch; returns the mean cross-entropy before the update. */
  trainStep(x: Features, labels: Int32Array, rng: Xoshiro128): number;
  /** Logits [rows × classes] in inference mode (no dropout). */
  predict(x: Features): Float32Array;
  /** Copies of the parameters. */
  getParams(): ParamSet;
  setParams(params: ParamSet): void;
  /** Copies of the optimizer state. */
  getOptimizerState(): OptimizerState;
  setOptimizerState(state: OptimizerState): void;
  /** A fresh Adam (stage 2 fine-tunes with a new optimizer, as the seed). */
  resetOptimizer(): void;
  /** Frees native resources. */
  dispose(): void;
}

/** Layer widths: [input, ...hidden, classes]. */
export function layerSizes(spec: MlpSpec): number[] {
  return [spec.inputSize, ...spec.hidden, spec.classes];
}

/** Shapes of every parameter, in a stable order. */
export function paramShapes(spec: MlpSpec): [string, number[]][] {
  const sizes = layerSizes(spec);
  const out: [string, number[]][] = [];
  for (let l = 0; l + 1 < sizes.length; l++) {
    out.push([`layer_${l}/kernel`, [sizes[l]!, sizes[l + 1]!]]);
    out.push([`layer_${l}/bias`, [sizes[l + 1]!]]);
  }
  return out;
}

/** Number of trainable parameters. */
export function parameterCount(spec: MlpSpec): number {
  return paramShapes(spec).reduce((n, [, s]) => n + s.reduce((a, b) => a * b, 1), 0);
}

/** PyTorch nn.Linear's default initialisation, U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for kernel and bias, seeded. */
export function initParams(spec: MlpSpec, seed: number): ParamSet {
  const mt = MT19937.fromSeed(seed);
  const params: ParamSet = new Map();
  for (const [name, shape] of paramShapes(spec)) {
    const fanIn = name.endsWith('/kernel') ? shape[0]! : layerSizes(spec)[Number(name.split('_')[1]!.split('/')[0])]!;
    const bound = 1 / Math.sqrt(fanIn);
    const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
    for (let i = 0; i < data.length; i++) data[i] = (mt.nextDouble() * 2 - 1) * bound;
    params.set(name, { shape, data });
  }
  return params;
}

/** Zero-filled tensors with the parameter shapes (fresh Adam moments). */
export function zeroParams(spec: MlpSpec): ParamSet {
  return new Map(paramShapes(spec).map(([name, shape]) => [name, { shape, data: new Float32Array(shape.reduce((a, b) => a * b, 1)) }]));
}

/**
 * Mean softmax cross-entropy over rows, and (optionally) its gradient w.r.t. the logits written into `grad`.
 * Computed in float64 so engines agree to rounding.
 */
export function softmaxCrossEntropy(logits: Float32Array, labels: Int32Array, classes: number, grad?: Float32Array): number {
  const rows = labels.length;
  let loss = 0;
  const p = new Float64Array(classes);
  for (let r = 0; r < rows; r++) {
    let max = -Infinity;
    for (let c = 0; c < classes; c++) max = Math.max(max, logits[r * classes + c]!);
    let sum = 0;
    for (let c = 0; c < classes; c++) {
      p[c] = Math.exp(logits[r * classes + c]! - max);
      sum += p[c]!;
    }
    const y = labels[r]!;
    loss += Math.log(sum) - (logits[r * classes + y]! - max);
    if (grad) for (let c = 0; c < classes; c++) grad[r * classes + c] = (p[c]! / sum - (c === y ? 1 : 0)) / rows;
  }
  return loss / rows;
}
