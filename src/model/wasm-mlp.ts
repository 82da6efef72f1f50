import {
  ADAM,
  initParams,
  layerSizes,
  paramShapes,
  softmaxCrossEntropy,
  type MlpEngine,
  type MlpSpec,
  type OptimizerState,
  type ParamSet,
} from './engine.js';
import type { Features } from './features.js';
import { instantiateKernels, KernelHeap, type KernelExports, type Region } from './kernels/index.js';
import type { Xoshiro128 } from './rng.js';

interface Layer {
  w: Region;
  b: Region;
  gw: Region;
  gb: Region;
  mw: Region;
  vw: Region;
  mb: Region;
  vb: Region;
  nIn: number;
  nOut: number;
}

/**
 * The MLP on our WebAssembly SIMD kernels: a sparse embedding-bag or dense first layer, dense hidden layers,
 * Adam (dense, or lazy row-sparse for the sparse first layer). Single-threaded and bit-deterministic.
 */
export class WasmMlp implements MlpEngine {
  readonly name = 'wasm-simd';
  private readonly k: KernelExports;
  private readonly heap: KernelHeap;
  private readonly layers: Layer[];
  private readonly sizes: number[];
  /** Pre-activations (after dropout, before the next layer) per layer output, and their gradients. */
  private acts: Region[] = [];
  private grads: Region[] = [];
  private capacityRows = 0;
  private sparse = { indptr: { ptr: 0, length: 0 }, indices: { ptr: 0, length: 0 }, values: { ptr: 0, length: 0 }, slots: { ptr: 0, length: 0 } };
  private rowIds: Region = { ptr: 0, length: 0 };
  private rowGrad: Region = { ptr: 0, length: 0 };
  private dense: Region = { ptr: 0, length: 0 };
  private slotOf: Int32Array;
  /** Lazy first layer: the optimizer step at which each row was last brought up to date. */
  private lastStep: Region = { ptr: 0, length: 0 };
  /** Distinct columns of the current batch (lazy Adam). */
  private batchRowCount = 0;
  private step = 0;

  constructor(
    readonly spec: MlpSpec,
    seed: number,
  ) {
    this.k = instantiateKernels();
    this.heap = new KernelHeap(this.k);
    this.sizes = layerSizes(spec);
    this.layers = [];
    for (let l = 0; l + 1 < this.sizes.length; l++) {
      const nIn = this.sizes[l]!;
      const nOut = this.sizes[l + 1]!;
      const sparseFirst = l === 0 && spec.sparseInput && spec.sparseAdam === 'lazy';
      this.layers.push({
        w: this.heap.alloc(nIn * nOut),
        b: this.heap.alloc(nOut),
        // The lazy sparse layer keeps per-batch row gradients in rowGrad instead of a full gradient.
        gw: sparseFirst ? { ptr: 0, length: 0 } : this.heap.alloc(nIn * nOut),
        gb: this.heap.alloc(nOut),
        mw: this.heap.alloc(nIn * nOut),
        vw: this.heap.alloc(nIn * nOut),
        mb: this.heap.alloc(nOut),
        vb: this.heap.alloc(nOut),
        nIn,
        nOut,
      });
    }
    this.slotOf = new Int32Array(spec.sparseInput ? spec.inputSize : 0).fill(-1);
    if (this.lazy) this.lastStep = this.heap.alloc(spec.inputSize);
    this.setParams(initParams(spec, seed));
  }

  trainStep(x: Features, labels: Int32Array, rng: Xoshiro128): number {
    const rows = labels.length;
    if (x.kind === 'sparse' && this.lazy) {
      // The rows this batch reads must first catch up on the steps they missed, or the forward pass would see
      // stale weights.
      this.loadSparse(x);
      this.mapBatchRows(rows);
      const first = this.layers[0]!;
      this.k.catchUpRows(this.batchRowCount, this.rowIds.ptr, first.w.ptr, first.mw.ptr, first.vw.ptr, first.nOut, this.lastStep.ptr, this.step, ADAM.beta1, ADAM.beta2, ADAM.eps, this.spec.learningRate);
    }
    const loss = this.backward(x, labels, rng, this.lazy);
    this.step++;
    const bc1 = 1 - ADAM.beta1 ** this.step;
    const bc2 = 1 - ADAM.beta2 ** this.step;
    const stepSize = this.spec.learningRate / bc1;
    const inv = 1 / Math.sqrt(bc2);
    const first = this.layers[0]!;
    if (x.kind === 'sparse') this.sparseFirstLayerUpdate(rows, stepSize, inv);
    else {
      this.k.denseGradParams(this.dense.ptr, this.grads[1]!.ptr, first.gw.ptr, first.gb.ptr, rows, first.nIn, first.nOut);
      this.k.adam(first.nIn * first.nOut, first.w.ptr, first.gw.ptr, first.mw.ptr, first.vw.ptr, stepSize, ADAM.beta1, ADAM.beta2, inv, ADAM.eps);
    }
    this.k.adam(first.nOut, first.b.ptr, first.gb.ptr, first.mb.ptr, first.vb.ptr, stepSize, ADAM.beta1, ADAM.beta2, inv, ADAM.eps);
    for (let l = 1; l < this.layers.length; l++) {
      const layer = this.layers[l]!;
      this.k.adam(layer.nIn * layer.nOut, layer.w.ptr, layer.gw.ptr, layer.mw.ptr, layer.vw.ptr, stepSize, ADAM.beta1, ADAM.beta2, inv, ADAM.eps);
      this.k.adam(layer.nOut, layer.b.ptr, layer.gb.ptr, layer.mb.ptr, layer.vb.ptr, stepSize, ADAM.beta1, ADAM.beta2, inv, ADAM.eps);
    }
    return loss;
  }

  /**
   * Gradients of the mean loss w.r.t. every parameter (inference mode: no dropout), without updating anything;
   * the first layer's gradient is returned dense. For checking this engine against the TensorFlow.js model.
   */
  gradients(x: Features, labels: Int32Array): ParamSet {
    const rows = labels.length;
    this.backward(x, labels, undefined);
    const first = this.layers[0]!;
    const full = this.heap.alloc(first.nIn * first.nOut);
    const gb0 = this.heap.alloc(first.nOut);
    this.columnSums(this.grads[1]!, rows, first.nOut, gb0);
    if (x.kind === 'sparse') {
      this.k.sparseGradRows(rows, this.sparse.indptr.ptr, this.sparse.indices.ptr, this.sparse.values.ptr, this.grads[1]!.ptr, full.ptr, first.nOut);
    } else {
      this.k.denseGradParams(this.dense.ptr, this.grads[1]!.ptr, full.ptr, gb0.ptr, rows, first.nIn, first.nOut);
    }
    const out: ParamSet = new Map();
    const shapes = paramShapes(this.spec);
    this.layers.forEach((layer, l) => {
      const [kr, br] = l === 0 ? [full, gb0] : [layer.gw, layer.gb];
      out.set(`layer_${l}/kernel`, { shape: shapes[2 * l]![1], data: this.heap.f32(kr).slice() });
      out.set(`layer_${l}/bias`, { shape: shapes[2 * l + 1]![1], data: this.heap.f32(br).slice() });
    });
    return out;
  }

  /** Forward pass, loss, and the gradients of every layer but the first (their inputs are in acts/grads). */
  private backward(x: Features, labels: Int32Array, rng: Xoshiro128 | undefined, preloaded = false): number {
    const rows = labels.length;
    this.forward(x, rng, preloaded);
    const classes = this.spec.classes;
    const L = this.layers.length;
    const logits = this.heap.f32(this.acts[L]!).subarray(0, rows * classes);
    const dLogits = this.heap.f32(this.grads[L]!);
    const loss = softmaxCrossEntropy(logits, labels, classes, dLogits);
    const scale = rng && this.spec.dropout > 0 ? 1 / (1 - this.spec.dropout) : 1;
    for (let l = L - 1; l >= 1; l--) {
      const layer = this.layers[l]!;
      this.k.denseGradParams(this.acts[l]!.ptr, this.grads[l + 1]!.ptr, layer.gw.ptr, layer.gb.ptr, rows, layer.nIn, layer.nOut);
      this.k.denseGradInput(this.acts[l]!.ptr, this.grads[l + 1]!.ptr, layer.w.ptr, this.grads[l]!.ptr, rows, layer.nIn, layer.nOut, scale);
    }
    return loss;
  }

  predict(x: Features): Float32Array {
    this.catchUp();
    const rows = x.m.rows;
    const classes = this.spec.classes;
    const out = new Float32Array(rows * classes);
    const chunk = 256;
    for (let start = 0; start < rows; start += chunk) {
      const end = Math.min(rows, start + chunk);
      const part = sliceRows(x, start, end);
      this.forward(part, undefined);
      out.set(this.heap.f32(this.acts[this.layers.length]!).subarray(0, (end - start) * classes), start * classes);
    }
    return out;
  }

  /**
   * Sparse first layer backward + Adam. Lazy: gradients are gathered per distinct column of the batch and only
   * those rows (and their moments) are updated. Dense: the full gradient (zeros elsewhere) goes through Adam,
   * as PyTorch's Adam does in the seed.
   */
  private sparseFirstLayerUpdate(rows: number, stepSize: number, inv: number): void {
    const first = this.layers[0]!;
    const h = first.nOut;
    this.columnSums(this.grads[1]!, rows, h, first.gb);
    if (this.spec.sparseAdam === 'dense') {
      this.heap.f32(first.gw).fill(0);
      // slots == column indices: accumulate straight into the full gradient.
      this.k.sparseGradRows(rows, this.sparse.indptr.ptr, this.sparse.indices.ptr, this.sparse.values.ptr, this.grads[1]!.ptr, first.gw.ptr, h);
      this.k.adam(first.nIn * h, first.w.ptr, first.gw.ptr, first.mw.ptr, first.vw.ptr, stepSize, ADAM.beta1, ADAM.beta2, inv, ADAM.eps);
      return;
    }
    const count = this.batchRowCount;
    this.heap.f32(this.rowGrad).fill(0, 0, count * h);
    this.k.sparseGradRows(rows, this.sparse.indptr.ptr, this.sparse.slots.ptr, this.sparse.values.ptr, this.grads[1]!.ptr, this.rowGrad.ptr, h);
    this.k.adamRows(count, this.rowIds.ptr, this.rowGrad.ptr, first.w.ptr, first.mw.ptr, first.vw.ptr, h, this.lastStep.ptr, this.step, stepSize, ADAM.beta1, ADAM.beta2, inv, ADAM.eps);
  }

  /** Lists the distinct columns of the loaded batch (rowIds) and maps each non-zero to its slot among them. */
  private mapBatchRows(rows: number): void {
    const first = this.layers[0]!;
    const nnz = this.heap.i32(this.sparse.indptr)[rows]!;
    // Allocate before taking views: growing kernel memory detaches them.
    const maxRows = Math.min(nnz, first.nIn);
    if (this.rowIds.length < maxRows) this.rowIds = this.heap.alloc(maxRows);
    if (this.rowGrad.length < maxRows * first.nOut) this.rowGrad = this.heap.alloc(maxRows * first.nOut);
    const indices = this.heap.i32(this.sparse.indices);
    const slots = this.heap.i32(this.sparse.slots);
    const rowIds = this.heap.i32(this.rowIds);
    const slotOf = this.slotOf;
    let count = 0;
    for (let k = 0; k < nnz; k++) {
      const c = indices[k]!;
      let slot = slotOf[c]!;
      if (slot < 0) {
        slot = count++;
        slotOf[c] = slot;
        rowIds[slot] = c;
      }
      slots[k] = slot;
    }
    for (let i = 0; i < count; i++) slotOf[rowIds[i]!] = -1;
    this.batchRowCount = count;
  }

  private get lazy(): boolean {
    return this.spec.sparseInput && this.spec.sparseAdam === 'lazy';
  }

  /** Applies the zero-gradient steps every lazy row missed, so weights and moments equal dense Adam's view. */
  private catchUp(): void {
    if (!this.lazy || this.step === 0) return;
    const first = this.layers[0]!;
    this.k.adamCatchUpAll(first.nIn, first.w.ptr, first.mw.ptr, first.vw.ptr, first.nOut, this.lastStep.ptr, this.step, ADAM.beta1, ADAM.beta2, ADAM.eps, this.spec.learningRate);
  }

  private columnSums(m: Region, rows: number, cols: number, out: Region): void {
    const src = this.heap.f32(m);
    const dst = this.heap.f32(out);
    dst.fill(0);
    for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) dst[c]! += src[r * cols + c]!;
  }

  /** Forward pass into acts[]; with an rng, applies ReLU + inverted dropout, else ReLU only. */
  private forward(x: Features, rng: Xoshiro128 | undefined, preloaded = false): void {
    const rows = x.m.rows;
    this.ensureCapacity(rows);
    const first = this.layers[0]!;
    if (x.kind === 'sparse') {
      if (!preloaded) this.loadSparse(x);
      this.k.sparseForward(rows, this.sparse.indptr.ptr, this.sparse.indices.ptr, this.sparse.values.ptr, first.w.ptr, first.b.ptr, this.acts[1]!.ptr, first.nOut);
    } else {
      if (this.dense.length < x.m.data.length) this.dense = this.heap.alloc(x.m.data.length);
      this.heap.f32(this.dense).set(x.m.data);
      this.k.denseForward(this.dense.ptr, first.w.ptr, first.b.ptr, this.acts[1]!.ptr, rows, first.nIn, first.nOut);
    }
    const L = this.layers.length;
    const p = rng ? this.spec.dropout : 0;
    const threshold = p * 4294967296;
    const scale = p > 0 ? 1 / (1 - p) : 1;
    for (let l = 1; l < L; l++) {
      const a = this.heap.f32(this.acts[l]!).subarray(0, rows * this.sizes[l]!);
      if (p > 0 && rng) {
        for (let i = 0; i < a.length; i++) {
          const keep = rng.nextUint32() >= threshold;
          a[i] = keep && a[i]! > 0 ? a[i]! * scale : 0;
        }
      } else for (let i = 0; i < a.length; i++) if (!(a[i]! > 0)) a[i] = 0;
      const layer = this.layers[l]!;
      this.k.denseForward(this.acts[l]!.ptr, layer.w.ptr, layer.b.ptr, this.acts[l + 1]!.ptr, rows, layer.nIn, layer.nOut);
    }
  }

  private loadSparse(x: Features & { kind: 'sparse' }): void {
    const { rows, indptr, indices, data } = x.m;
    const base = indptr[0]!;
    const nnz = indptr[rows]! - base;
    if (this.sparse.indptr.length < rows + 1) this.sparse.indptr = this.heap.alloc(Math.max(rows + 1, 257));
    if (this.sparse.indices.length < nnz) {
      const cap = Math.max(nnz, 4096) * 2;
      this.sparse.indices = this.heap.alloc(cap);
      this.sparse.values = this.heap.alloc(cap);
      this.sparse.slots = this.heap.alloc(cap);
    }
    const p = this.heap.i32(this.sparse.indptr);
    for (let r = 0; r <= rows; r++) p[r] = indptr[r]! - base;
    this.heap.i32(this.sparse.indices).set(indices.subarray(base, base + nnz));
    this.heap.f32(this.sparse.values).set(data.subarray(base, base + nnz));
  }

  private ensureCapacity(rows: number): void {
    if (rows <= this.capacityRows) return;
    const cap = Math.max(rows, 32);
    this.acts = this.sizes.map((s) => this.heap.alloc(cap * s));
    this.grads = this.sizes.map((s) => this.heap.alloc(cap * s));
    this.capacityRows = cap;
  }

  getParams(): ParamSet {
    this.catchUp();
    return this.collect((l) => [l.w, l.b]);
  }

  setParams(params: ParamSet): void {
    this.assign(params, (l) => [l.w, l.b]);
  }

  getOptimizerState(): OptimizerState {
    this.catchUp();
    return { step: this.step, m: this.collect((l) => [l.mw, l.mb]), v: this.collect((l) => [l.vw, l.vb]) };
  }

  setOptimizerState(state: OptimizerState): void {
    this.step = state.step;
    if (this.lazy) this.heap.i32(this.lastStep).fill(state.step);
    this.assign(state.m, (l) => [l.mw, l.mb]);
    this.assign(state.v, (l) => [l.vw, l.vb]);
  }

  resetOptimizer(): void {
    this.step = 0;
    if (this.lazy) this.heap.i32(this.lastStep).fill(0);
    for (const l of this.layers) for (const r of [l.mw, l.vw, l.mb, l.vb]) this.heap.f32(r).fill(0);
  }

  dispose(): void {
    // Memory belongs to the instance; dropping references frees it.
    this.acts = [];
    this.grads = [];
  }

  private collect(pick: (l: Layer) => [Region, Region]): ParamSet {
    const out: ParamSet = new Map();
    const shapes = paramShapes(this.spec);
    this.layers.forEach((layer, l) => {
      const [kr, br] = pick(layer);
      out.set(`layer_${l}/kernel`, { shape: shapes[2 * l]![1], data: this.heap.f32(kr).slice() });
      out.set(`layer_${l}/bias`, { shape: shapes[2 * l + 1]![1], data: this.heap.f32(br).slice() });
    });
    return out;
  }

  private assign(params: ParamSet, pick: (l: Layer) => [Region, Region]): void {
    this.layers.forEach((layer, l) => {
      const [kr, br] = pick(layer);
      for (const [name, r] of [[`layer_${l}/kernel`, kr], [`layer_${l}/bias`, br]] as const) {
        const t = params.get(name);
        if (!t || t.data.length !== r.length) {
          throw new Error(`parameter ${name}: expected ${r.length} values, got ${t ? t.data.length : 'none'}`);
        }
        this.heap.f32(r).set(t.data);
      }
    });
  }
}

function sliceRows(x: Features, start: number, end: number): Features {
  if (x.kind === 'dense') {
    const c = x.m.cols;
    return { kind: 'dense', m: { rows: end - start, cols: c, data: x.m.data.subarray(start * c, end * c) } };
  }
  // indptr keeps absolute offsets; loadSparse rebases them.
  return { kind: 'sparse', m: { ...x.m, rows: end - start, indptr: x.m.indptr.subarray(start, end + 1) } };
}
