import * as tf from '@tensorflow/tfjs';
import { ADAM, layerSizes, paramShapes, zeroParams, initParams, type MlpEngine, type MlpSpec, type OptimizerState, type ParamSet } from './engine.js';
import type { Features } from '../matrix/features.js';
import type { Xoshiro128 } from './rng.js';
import { InvalidDataError } from '../errors/index.js';

/**
 * The same MLP in TensorFlow.js, for the Batch trainer (the `tensorflow` backend of tfjs-node-gpu) and as the
 * reference the WebAssembly engine is tested against. BoW input goes through an embedding-bag layer (gather the
 * weight rows of the non-zero columns, scale by the counts, sum per row), which equals a Dense layer on the
 * count vector without ever materialising it. Dropout masks are drawn in the same order as WasmMlp's, so both
 * engines train the same trajectory. The first layer uses dense Adam here (cheap on a GPU).
 */
export class TfjsMlp implements MlpEngine {
  readonly name: string;
  readonly spec: MlpSpec;
  private readonly params: tf.Variable[] = [];
  private readonly m: tf.Variable[] = [];
  private readonly v: tf.Variable[] = [];
  private readonly names: string[];
  private step = 0;

  constructor(spec: MlpSpec, seed: number) {
    this.spec = { ...spec, sparseAdam: 'dense' };
    this.name = `tfjs-${tf.getBackend()}`;
    this.names = paramShapes(spec).map(([n]) => n);
    const init = initParams(spec, seed);
    for (const [name, shape] of paramShapes(spec)) {
      this.params.push(tf.variable(tf.tensor(init.get(name)!.data, shape), true));
      this.m.push(tf.variable(tf.zeros(shape), false));
      this.v.push(tf.variable(tf.zeros(shape), false));
    }
  }

  /** Logits of a batch; with masks, applies inverted dropout after each hidden ReLU. */
  forward(x: Features, masks?: tf.Tensor[]): tf.Tensor2D {
    const [w0, b0] = [this.params[0]!, this.params[1]!];
    let h: tf.Tensor2D;
    if (x.kind === 'sparse') {
      const { rows, indptr, indices, data } = x.m;
      const base = indptr[0]!;
      const nnz = indptr[rows]! - base;
      const seg = new Int32Array(nnz);
      for (let r = 0; r < rows; r++) seg.fill(r, indptr[r]! - base, indptr[r + 1]! - base);
      const gathered = tf.gather(w0, tf.tensor1d(indices.subarray(base, base + nnz), 'int32'));
      const scaled = tf.mul(gathered, tf.tensor2d(data.subarray(base, base + nnz), [nnz, 1]));
      h = tf.add(tf.unsortedSegmentSum(scaled, tf.tensor1d(seg, 'int32'), rows), b0) as tf.Tensor2D;
    } else {
      h = tf.add(tf.matMul(tf.tensor2d(x.m.data, [x.m.rows, x.m.cols]), w0 as tf.Tensor2D), b0) as tf.Tensor2D;
    }
    const L = this.params.length / 2;
    for (let l = 1; l < L; l++) {
      h = tf.relu(h);
      if (masks) h = tf.mul(h, masks[l - 1]!);
      h = tf.add(tf.matMul(h, this.params[2 * l]! as tf.Tensor2D), this.params[2 * l + 1]!) as tf.Tensor2D;
    }
    return h;
  }

  /** Mean cross-entropy of a batch (with dropout masks when given). */
  loss(x: Features, labels: Int32Array, masks?: tf.Tensor[]): tf.Scalar {
    const logits = this.forward(x, masks);
    return tf.losses.softmaxCrossEntropy(tf.oneHot(tf.tensor1d(labels, 'int32'), this.spec.classes), logits) as tf.Scalar;
  }

  /** Gradients of the mean loss w.r.t. every parameter, without dropout and without updating anything. */
  gradients(x: Features, labels: Int32Array): ParamSet {
    const { value, grads } = tf.variableGrads(() => this.loss(x, labels), this.params);
    const shapes = paramShapes(this.spec);
    const out: ParamSet = new Map(this.names.map((n, i) => [n, { shape: shapes[i]![1], data: grads[this.params[i]!.name]!.dataSync().slice() as Float32Array }]));
    tf.dispose([value, ...Object.values(grads)]);
    return out;
  }

  trainStep(x: Features, labels: Int32Array, rng: Xoshiro128): number {
    const masks = this.dropoutMasks(x.m.rows, rng);
    this.step++;
    const bc1 = 1 - ADAM.beta1 ** this.step;
    const bc2 = 1 - ADAM.beta2 ** this.step;
    const loss = tf.tidy(() => {
      const { value, grads } = tf.variableGrads(() => this.loss(x, labels, masks), this.params);
      this.params.forEach((p, i) => {
        const g = grads[p.name]!;
        const m = tf.add(tf.mul(this.m[i]!, ADAM.beta1), tf.mul(g, 1 - ADAM.beta1));
        const v = tf.add(tf.mul(this.v[i]!, ADAM.beta2), tf.mul(tf.square(g), 1 - ADAM.beta2));
        this.m[i]!.assign(m);
        this.v[i]!.assign(v);
        const denom = tf.add(tf.div(tf.sqrt(v), Math.sqrt(bc2)), ADAM.eps);
        p.assign(tf.sub(p, tf.mul(tf.div(m, denom), this.spec.learningRate / bc1)));
      });
      return value.dataSync()[0]!;
    });
    masks?.forEach((t) => t.dispose());
    return loss;
  }

  predict(x: Features): Float32Array {
    return tf.tidy(() => this.forward(x).dataSync() as Float32Array);
  }

  getParams(): ParamSet {
    return this.read(this.params);
  }

  setParams(params: ParamSet): void {
    this.write(this.params, params);
  }

  getOptimizerState(): OptimizerState {
    return { step: this.step, m: this.read(this.m), v: this.read(this.v) };
  }

  setOptimizerState(state: OptimizerState): void {
    this.step = state.step;
    this.write(this.m, state.m);
    this.write(this.v, state.v);
  }

  resetOptimizer(): void {
    this.step = 0;
    const zeros = zeroParams(this.spec);
    this.write(this.m, zeros);
    this.write(this.v, zeros);
  }

  dispose(): void {
    for (const t of [...this.params, ...this.m, ...this.v]) t.dispose();
  }

  /** Inverted-dropout masks, one uint32 draw per hidden unit in layer then row-major order (as WasmMlp). */
  private dropoutMasks(rows: number, rng: Xoshiro128): tf.Tensor[] | undefined {
    const p = this.spec.dropout;
    if (p <= 0) return undefined;
    const threshold = p * 4294967296;
    const scale = 1 / (1 - p);
    return layerSizes(this.spec)
      .slice(1, -1)
      .map((size) => {
        const mask = new Float32Array(rows * size);
        for (let i = 0; i < mask.length; i++) mask[i] = rng.nextUint32() >= threshold ? scale : 0;
        return tf.tensor2d(mask, [rows, size]);
      });
  }

  private read(vars: tf.Variable[]): ParamSet {
    return new Map(this.names.map((n, i) => [n, { shape: vars[i]!.shape.slice(), data: vars[i]!.dataSync().slice() as Float32Array }]));
  }

  private write(vars: tf.Variable[], values: ParamSet): void {
    this.names.forEach((n, i) => {
      const t = values.get(n);
      if (!t || t.data.length !== vars[i]!.size) throw new InvalidDataError(`parameter ${n}: expected ${vars[i]!.size} values, got ${t ? t.data.length : 'none'}`);
      tf.tidy(() => vars[i]!.assign(tf.tensor(t.data, vars[i]!.shape)));
    });
  }
}
