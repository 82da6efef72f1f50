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
import type { Features } from '../matrix/features.js';
import { instantiateKernels, kernelModule, KernelHeap, type KernelExports, type Region } from './kernels/index.js';
import { defaultTrainThreads, KernelTeam, OP } from './kernels/team.js';
import type { Xoshiro128 } from './rng.js';
import { InvalidDataError } from '../errors/index.js';

const EMPTY: Region = { ptr: 0, length: 0 };
/**
 * Work (multiply-adds; an Adam or lazy-Adam value counts 4) below which operations run on one thread: handing a part
 * to a worker costs microseconds while the team is held through a step (KernelTeam.hold), tens when it sleeps. Of a
 * BoW step this splits the first three layers, forward and backward, and Adam; the 64-wide and output layers run on
 * one thread (1 << 21, the first two only, measured 5-8% slower a step).
 */
const PARALLEL_WORK = 1 << 18;

/** Options of a WasmMlp. */
export interface WasmMlpOptions {
  /** Threads that share each step's work (default: defaultTrainThreads()); results do not depend on it. */
  threads?: number;
  /** Work from which operations are split across threads (default PARALLEL_WORK; 0 splits every one, for tests). */
  parallelWork?: number;
}

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
 * Adam (dense, or lazy row-sparse for the sparse first layer). The large operations are split by output columns
 * (or parameters) across `threads` threads on the shared kernel memory; every value is computed by one thread in a
 * fixed order, so results are bit-identical for any thread count and from run to run.
 */
export class WasmMlp implements MlpEngine {
  readonly name = 'wasm-simd';
  private readonly k: KernelExports;
  private readonly heap: KernelHeap;
  private readonly team: KernelTeam;
  private readonly parallelWork: number;
  private readonly layers: Layer[];
  private readonly sizes: number[];
  /** Pre-activations (after dropout, before the next layer) per layer output, and their gradients. */
  private acts: Region[] = [];
  private grads: Region[] = [];
  private capacityRows = 0;
  private sparse = { indptr: { ptr: 0, length: 0 }, indices: { ptr: 0, length: 0 }, values: { ptr: 0, length: 0 } };
  /** The current batch by column (lazy Adam): distinct columns, column pointers, entries' rows and counts. */
  private csc = { rowIds: EMPTY, colPtr: EMPTY, rows: EMPTY, vals: EMPTY };
  private dense: Region = { ptr: 0, length: 0 };
  /** Scratch of the dense kernels, `scratchStride` bytes per thread. */
  private scratch: Region = EMPTY;
  private scratchStride = 0;
  /** The lazy forward's second slice of first-layer outputs, added to the first after. */
  private partial: Region = EMPTY;
  /** batchColumns' scratch: one i32 per input column, zero between calls. */
  private columnPos: Region = EMPTY;
  /** Lazy first layer: the optimizer step at which each row was last brought up to date. */
  private lastStep: Region = { ptr: 0, length: 0 };
  /** The dropout generator's state while the kernel draws from it (4 u32). */
  private readonly rngState: Region;
  private tails: Region = { ptr: 0, length: 0 };
  /** Catch-up table (kernels' fillDecay), 4 f64 per step count, filled as far as tails. */
  private decay: Region = { ptr: 0, length: 0 };
  private tailsFilled = 0;
  private coefficients = new Float64Array(0);
  private coefficientsFilled = 0;
  /** Distinct columns of the current batch (lazy Adam). */
  private batchRowCount = 0;
  private step = 0;

  constructor(
    readonly spec: MlpSpec,
    seed: number,
    options: WasmMlpOptions = {},
  ) {
    this.k = instantiateKernels();
    this.heap = new KernelHeap(this.k);
    this.sizes = layerSizes(spec);
    this.parallelWork = options.parallelWork ?? PARALLEL_WORK;
    // Room for the largest run: the lazy backward (21 slots) and Adam (7 slots, then 5 per parameter tensor).
    this.team = new KernelTeam(this.k, this.heap, kernelModule(), options.threads ?? defaultTrainThreads(), 32 + 10 * this.sizes.length);
    this.rngState = this.heap.alloc(4);
    this.layers = [];
    for (let l = 0; l + 1 < this.sizes.length; l++) {
      const nIn = this.sizes[l]!;
      const nOut = this.sizes[l + 1]!;
      const sparseFirst = l === 0 && spec.sparseInput && spec.sparseAdam === 'lazy';
      this.layers.push({
        w: this.heap.alloc(nIn * nOut),
        b: this.heap.alloc(nOut),
        // The lazy sparse layer applies each row gradient as it builds it (lazySparseBackward): no full gradient.
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
    if (this.lazy) {
      this.lastStep = this.heap.alloc(spec.inputSize);
      this.columnPos = this.heap.alloc(spec.inputSize);
    }
    this.setParams(initParams(spec, seed));
  }

  trainStep(x: Features, labels: Int32Array, rng: Xoshiro128): number {
    this.team.hold();
    try {
      return this.runStep(x, labels, rng);
    } finally {
      this.team.release();
    }
  }

  private runStep(x: Features, labels: Int32Array, rng: Xoshiro128): number {
    const rows = labels.length;
    const lazySparse = x.kind === 'sparse' && this.lazy;
    if (lazySparse) {
      this.loadSparse(x);
      this.buildBatchColumns(rows);
    }
    const loss = this.backward(x, labels, rng, lazySparse);
    this.step++;
    const bc1 = 1 - ADAM.beta1 ** this.step;
    const bc2 = 1 - ADAM.beta2 ** this.step;
    const stepSize = this.spec.learningRate / bc1;
    const inv = 1 / Math.sqrt(bc2);
    const first = this.layers[0]!;
    if (x.kind === 'dense') this.denseBackward(this.dense, this.grads[1]!, first, undefined, rows, 1);
    // A lazy first layer's update joins Adam's run (one barrier for both). It also writes the first-layer bias
    // gradient, which Adam then reads in the same part: both split h by the same bounds, so no other part needs it.
    let work = lazySparse ? this.lazyFirstLayerUpdate(rows, stepSize, inv) : 0;
    if (x.kind === 'sparse' && !lazySparse) this.denseAdamSparseLayer(rows, stepSize, inv);
    this.team.op(OP.adam).f(stepSize).f(ADAM.beta1).f(ADAM.beta2).f(inv).f(ADAM.eps);
    this.layers.forEach((layer, l) => {
      if (l > 0 || x.kind === 'dense') {
        this.team.i(layer.w.length).i(layer.w.ptr).i(layer.gw.ptr).i(layer.mw.ptr).i(layer.vw.ptr);
        work += 4 * layer.w.length;
      }
      this.team.i(layer.nOut).i(layer.b.ptr).i(layer.gb.ptr).i(layer.mb.ptr).i(layer.vb.ptr);
    });
    this.team.run(work >= this.parallelWork);
    // Only now that every part has read the rows' last steps.
    if (lazySparse) this.k.lazyMarkRows(this.batchRowCount, this.csc.rowIds.ptr, this.lastStep.ptr, this.step);
    return loss;
  }

  /**
   * Gradients of the mean loss w.r.t. every parameter (inference mode: no dropout), without updating anything;
   * the first layer's gradient is returned dense. For checking this engine against the TensorFlow.js model.
   */
  gradients(x: Features, labels: Int32Array): ParamSet {
    const rows = labels.length;
    this.catchUp();
    this.backward(x, labels, undefined);
    const first = this.layers[0]!;
    const full = this.heap.alloc(first.nIn * first.nOut);
    const gb0 = this.heap.alloc(first.nOut);
    if (x.kind === 'sparse') {
      this.columnSums(this.grads[1]!, rows, first.nOut, gb0);
      this.sparseGradRows(rows, full);
    } else {
      this.denseBackward(this.dense, this.grads[1]!, { ...first, gw: full, gb: gb0 }, undefined, rows, 1);
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
  private backward(x: Features, labels: Int32Array, rng: Xoshiro128 | undefined, lazyColumns = false): number {
    const rows = labels.length;
    this.forward(x, rng, lazyColumns);
    const classes = this.spec.classes;
    const L = this.layers.length;
    const logits = this.heap.f32(this.acts[L]!).subarray(0, rows * classes);
    const dLogits = this.heap.f32(this.grads[L]!);
    const loss = softmaxCrossEntropy(logits, labels, classes, dLogits);
    const scale = rng && this.spec.dropout > 0 ? 1 / (1 - this.spec.dropout) : 1;
    for (let l = L - 1; l >= 1; l--) this.denseBackward(this.acts[l]!, this.grads[l + 1]!, this.layers[l]!, this.grads[l]!, rows, scale);
    return loss;
  }

  /** A dense layer's weight and bias gradients from its input x and output gradient dy, and (when `dpre` is
   * given) the gradient w.r.t. the previous layer's pre-activation; gradient columns and input units split. */
  private denseBackward(x: Region, dy: Region, layer: Layer, dpre: Region | undefined, rows: number, scale: number): void {
    this.team
      .op(OP.denseBackward)
      .i(x.ptr)
      .i(dy.ptr)
      .i(layer.w.ptr)
      .i(layer.gw.ptr)
      .i(layer.gb.ptr)
      .i(dpre?.ptr ?? 0)
      .i(rows)
      .i(layer.nIn)
      .i(layer.nOut)
      .f(scale)
      .i(this.scratch.ptr)
      .i(this.scratchStride)
      .run(rows * layer.nIn * layer.nOut >= this.parallelWork);
  }

  /** g[col,:] += count * dh[row,:] over the loaded sparse batch (g dense, [inputSize, h]). */
  private sparseGradRows(rows: number, g: Region): void {
    const h = this.layers[0]!.nOut;
    const s = this.sparse;
    this.team.op(OP.sparseGradRows).i(rows).i(s.indptr.ptr).i(s.indices.ptr).i(s.values.ptr).i(this.grads[1]!.ptr).i(g.ptr).i(h).run(true);
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
   * Sparse first layer backward + Adam with a dense first-layer Adam (sparseAdam "dense"): the full gradient
   * (zeros elsewhere) goes through Adam, as PyTorch's Adam does in the seed.
   */
  private denseAdamSparseLayer(rows: number, stepSize: number, inv: number): void {
    const first = this.layers[0]!;
    this.columnSums(this.grads[1]!, rows, first.nOut, first.gb);
    this.heap.f32(first.gw).fill(0);
    // Slots are the column indices themselves: accumulate straight into the full gradient.
    this.sparseGradRows(rows, first.gw);
    this.team
      .op(OP.adam).f(stepSize).f(ADAM.beta1).f(ADAM.beta2).f(inv).f(ADAM.eps)
      .i(first.w.length).i(first.w.ptr).i(first.gw.ptr).i(first.mw.ptr).i(first.vw.ptr)
      .run(true);
  }

  /**
   * Describes (does not run) the lazy first layer's backward + Adam: gradients are gathered per distinct column of
   * the batch and only those rows (and their moments) are updated; also the bias gradient. Returns its work.
   */
  private lazyFirstLayerUpdate(rows: number, stepSize: number, inv: number): number {
    const first = this.layers[0]!;
    const c = this.csc;
    this.team
      .op(OP.lazyBackward)
      .i(this.batchRowCount).i(c.rowIds.ptr).i(c.colPtr.ptr).i(c.rows.ptr).i(c.vals.ptr).i(this.grads[1]!.ptr).i(first.gb.ptr)
      .i(first.w.ptr).i(first.mw.ptr).i(first.vw.ptr).i(this.lastStep.ptr).i(this.step).i(this.decay.ptr).i(rows).i(first.nOut)
      .f(stepSize).f(ADAM.beta1).f(ADAM.beta2).f(inv).f(ADAM.eps);
    return 4 * this.batchRowCount * first.nOut;
  }

  /**
   * Transposes the loaded batch to column-major form over its distinct columns (ascending), entries in row
   * order: the layout of the fused lazy-Adam kernels, which visit each weight row the batch touches once.
   */
  private buildBatchColumns(rows: number): void {
    const first = this.layers[0]!;
    const nnz = this.heap.i32(this.sparse.indptr)[rows]!;
    const c = this.csc;
    const maxCols = Math.min(nnz, first.nIn);
    if (c.rowIds.length < maxCols) {
      c.rowIds = this.heap.alloc(maxCols);
      c.colPtr = this.heap.alloc(maxCols + 1);
    }
    if (c.rows.length < nnz) {
      c.rows = this.heap.alloc(nnz * 2);
      c.vals = this.heap.alloc(nnz * 2);
    }
    const s = this.sparse;
    this.batchRowCount = this.k.batchColumns(
      rows, s.indptr.ptr, s.indices.ptr, s.values.ptr, first.nIn, this.columnPos.ptr, c.rowIds.ptr, c.colPtr.ptr, c.rows.ptr, c.vals.ptr,
    );
  }

  private get lazy(): boolean {
    return this.spec.sparseInput && this.spec.sparseAdam === 'lazy';
  }

  /**
   * Pointer to tails[0..t] (f64), tails[s] = sum_{j>=1} c_{s+j} q^j with c_t = lr*sqrt(1-b2^t)/(1-b1^t) and
   * q = b1/sqrt(b2): the catch-up series of every gap is a difference of two entries. Filled incrementally.
   */
  private tailsUpTo(t: number): number {
    if (this.tails.length / 2 <= t) {
      const capacity = Math.max(1024, 2 * (t + 1));
      const grown = this.heap.alloc(2 * capacity);
      const decay = this.heap.alloc(8 * capacity);
      this.heap.f64(grown).set(this.heap.f64(this.tails).subarray(0, this.tailsFilled));
      this.heap.f64(decay).set(this.heap.f64(this.decay).subarray(0, 4 * this.tailsFilled));
      this.tails = grown;
      this.decay = decay;
    }
    if (this.tailsFilled <= t) this.k.fillDecay(this.decay.ptr, this.tailsFilled, t, ADAM.beta1, ADAM.beta2, ADAM.eps);
    const tails = this.heap.f64(this.tails);
    const q = ADAM.beta1 / Math.sqrt(ADAM.beta2);
    for (let s = this.tailsFilled; s <= t; s++) {
      let sum = 0;
      let qj = 1;
      // Terms below q^j = 1e-12 of the first are negligible (about 260 terms).
      for (let j = 1; qj >= 1e-12; j++) {
        qj *= q;
        sum += this.stepCoefficient(s + j) * qj;
      }
      tails[s] = sum;
    }
    this.tailsFilled = Math.max(this.tailsFilled, t + 1);
    return this.tails.ptr;
  }

  /** c_t = lr*sqrt(1-b2^t)/(1-b1^t) for t >= 1, computed once: each step's tail sums about 260 of them. */
  private stepCoefficient(t: number): number {
    if (t >= this.coefficients.length) {
      const grown = new Float64Array(Math.max(2048, 2 * t));
      grown.set(this.coefficients.subarray(0, this.coefficientsFilled));
      this.coefficients = grown;
    }
    for (let u = this.coefficientsFilled; u <= t; u++) {
      this.coefficients[u] = (this.spec.learningRate * Math.sqrt(1 - ADAM.beta2 ** u)) / (1 - ADAM.beta1 ** u);
    }
    this.coefficientsFilled = Math.max(this.coefficientsFilled, t + 1);
    return this.coefficients[t]!;
  }

  /** Applies the zero-gradient steps every lazy row missed, so weights and moments equal dense Adam's view. */
  private catchUp(): void {
    if (!this.lazy || this.step === 0) return;
    const first = this.layers[0]!;
    const tails = this.tailsUpTo(this.step);
    this.k.adamCatchUpAll(first.nIn, first.w.ptr, first.mw.ptr, first.vw.ptr, first.nOut, this.lastStep.ptr, this.step, tails, this.decay.ptr);
  }

  private columnSums(m: Region, rows: number, cols: number, out: Region): void {
    const src = this.heap.f32(m);
    const dst = this.heap.f32(out);
    dst.fill(0);
    for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) dst[c]! += src[r * cols + c]!;
  }

  /** Forward pass into acts[]; with an rng, ReLU + inverted dropout, else ReLU only. lazyColumns: the batch is
   * already loaded as columns (buildBatchColumns) for the fused lazy-Adam first layer. */
  private forward(x: Features, rng: Xoshiro128 | undefined, lazyColumns = false): void {
    const rows = x.m.rows;
    this.ensureCapacity(rows);
    const first = this.layers[0]!;
    if (x.kind === 'sparse') {
      if (lazyColumns) {
        // The weight rows this batch reads catch up on the steps they missed in the same pass that reads them, in two
        // slices of the rows (one per thread), the second summed apart and added after.
        const c = this.csc;
        const tails = this.tailsUpTo(this.step);
        const out = this.acts[1]!;
        this.team
          .op(OP.lazyForward)
          .i(this.batchRowCount).i(c.rowIds.ptr).i(c.colPtr.ptr).i(c.rows.ptr).i(c.vals.ptr).i(first.w.ptr).i(first.mw.ptr).i(first.vw.ptr)
          .i(this.lastStep.ptr).i(this.step).i(tails).i(this.decay.ptr).i(first.b.ptr).i(out.ptr).i(this.partial.ptr).i(rows).i(first.nOut)
          .run(4 * this.batchRowCount * first.nOut >= this.parallelWork);
        this.k.addInto(out.ptr, this.partial.ptr, rows * first.nOut);
      } else {
        this.loadSparse(x);
        const s = this.sparse;
        const nnz = x.m.indptr[rows]! - x.m.indptr[0]!;
        this.team
          .op(OP.sparseForward).i(rows).i(s.indptr.ptr).i(s.indices.ptr).i(s.values.ptr).i(first.w.ptr).i(first.b.ptr).i(this.acts[1]!.ptr).i(first.nOut)
          .run(nnz * first.nOut >= this.parallelWork);
      }
    } else {
      if (this.dense.length < x.m.data.length) this.dense = this.heap.alloc(x.m.data.length);
      this.heap.f32(this.dense).set(x.m.data);
      this.denseForward(this.dense, first, this.acts[1]!, rows);
    }
    const L = this.layers.length;
    const p = rng ? this.spec.dropout : 0;
    // The masks come from rng's stream, drawn in the kernel (30,000 draws a BoW step): its state goes in and back.
    const state = this.heap.i32(this.rngState);
    if (p > 0 && rng) rng.saveState(state);
    for (let l = 1; l < L; l++) {
      const n = rows * this.sizes[l]!;
      if (p > 0 && rng) this.k.dropoutRelu(this.acts[l]!.ptr, n, p * 4294967296, 1 / (1 - p), this.rngState.ptr);
      else this.k.relu(this.acts[l]!.ptr, n);
      this.denseForward(this.acts[l]!, this.layers[l]!, this.acts[l + 1]!, rows);
    }
    if (p > 0 && rng) rng.loadState(state);
  }

  /** y = x w + b for a dense layer, output columns split. */
  private denseForward(x: Region, layer: Layer, y: Region, rows: number): void {
    this.team
      .op(OP.denseForward).i(x.ptr).i(layer.w.ptr).i(layer.b.ptr).i(y.ptr).i(rows).i(layer.nIn).i(layer.nOut)
      .i(this.scratch.ptr).i(this.scratchStride)
      .run(rows * layer.nIn * layer.nOut >= this.parallelWork);
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
    if (this.lazy) this.partial = this.heap.alloc(cap * this.sizes[1]!);
    this.grads = this.sizes.map((s) => this.heap.alloc(cap * s));
    // The dense kernels' per-thread lists: (index, value) pairs over a layer's inputs or the batch rows.
    const slots = 2 * Math.max(cap, ...this.sizes);
    this.scratch = this.heap.alloc(this.team.threads * slots);
    this.scratchStride = 4 * slots;
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
    this.team.dispose();
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
          throw new InvalidDataError(`parameter ${name}: expected ${r.length} values, got ${t ? t.data.length : 'none'}`);
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
