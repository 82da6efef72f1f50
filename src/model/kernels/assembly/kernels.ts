// MLP training kernels in AssemblyScript, compiled to WebAssembly with SIMD (f32x4).
// Our own code because no library offers a sparse (embedding-bag) first layer with a row-sparse Adam on
// WebAssembly: tfjs's WASM backend lacks the gather gradient and its per-op overhead dominates small batches.
// All arguments that end in a pointer are byte offsets into this module's memory; matrices are row-major f32.

/** First byte the JS side may use for its own allocations. */
export function heapBase(): usize {
  return __heap_base;
}

// y[0..n) += a * x[0..n)
@inline function axpy(n: i32, a: f32, x: usize, y: usize): void {
  const va = f32x4.splat(a);
  const n4 = n & ~3;
  let i = 0;
  for (; i < n4; i += 4) {
    const o = (<usize>i) << 2;
    v128.store(y + o, f32x4.add(v128.load(y + o), f32x4.mul(va, v128.load(x + o))));
  }
  for (; i < n; i++) {
    const o = (<usize>i) << 2;
    store<f32>(y + o, load<f32>(y + o) + a * load<f32>(x + o));
  }
}

// sum x[i] * y[i]
@inline function dot(n: i32, x: usize, y: usize): f32 {
  let acc = f32x4.splat(0);
  const n4 = n & ~3;
  let i = 0;
  for (; i < n4; i += 4) {
    const o = (<usize>i) << 2;
    acc = f32x4.add(acc, f32x4.mul(v128.load(x + o), v128.load(y + o)));
  }
  let s: f32 =
    f32x4.extract_lane(acc, 0) + f32x4.extract_lane(acc, 1) + f32x4.extract_lane(acc, 2) + f32x4.extract_lane(acc, 3);
  for (; i < n; i++) {
    const o = (<usize>i) << 2;
    s += load<f32>(x + o) * load<f32>(y + o);
  }
  return s;
}

@inline function copy(n: i32, src: usize, dst: usize): void {
  memory.copy(dst, src, (<usize>n) << 2);
}

/** out[r,:] = bias + sum_k values[k] * w[indices[k],:] over row r's non-zeros (CSR); the embedding-bag layer. */
export function sparseForward(
  rows: i32, indptr: usize, indices: usize, values: usize, w: usize, bias: usize, out: usize, h: i32,
): void {
  const rowBytes = (<usize>h) << 2;
  for (let r = 0; r < rows; r++) {
    const y = out + <usize>r * rowBytes;
    copy(h, bias, y);
    const start = load<i32>(indptr + ((<usize>r) << 2));
    const end = load<i32>(indptr + ((<usize>(r + 1)) << 2));
    for (let k = start; k < end; k++) {
      const col = load<i32>(indices + ((<usize>k) << 2));
      axpy(h, load<f32>(values + ((<usize>k) << 2)), w + <usize>col * rowBytes, y);
    }
  }
}

/** g[slots[k],:] += values[k] * dh[r,:] for every non-zero k of row r; g holds one row per distinct column. */
export function sparseGradRows(
  rows: i32, indptr: usize, slots: usize, values: usize, dh: usize, g: usize, h: i32,
): void {
  const rowBytes = (<usize>h) << 2;
  for (let r = 0; r < rows; r++) {
    const d = dh + <usize>r * rowBytes;
    const start = load<i32>(indptr + ((<usize>r) << 2));
    const end = load<i32>(indptr + ((<usize>(r + 1)) << 2));
    for (let k = start; k < end; k++) {
      const slot = load<i32>(slots + ((<usize>k) << 2));
      axpy(h, load<f32>(values + ((<usize>k) << 2)), d, g + <usize>slot * rowBytes);
    }
  }
}

/** y = x w + bias for x [rows, nIn], w [nIn, nOut]; zero inputs (ReLU, dropout) are skipped. */
export function denseForward(x: usize, w: usize, bias: usize, y: usize, rows: i32, nIn: i32, nOut: i32): void {
  const outBytes = (<usize>nOut) << 2;
  for (let r = 0; r < rows; r++) {
    const yr = y + <usize>r * outBytes;
    copy(nOut, bias, yr);
    const xr = x + (<usize>r * <usize>nIn << 2);
    for (let i = 0; i < nIn; i++) {
      const a = load<f32>(xr + ((<usize>i) << 2));
      if (a != 0) axpy(nOut, a, w + <usize>i * outBytes, yr);
    }
  }
}

/** gw = x^T dy and gb = column sums of dy (both overwritten). */
export function denseGradParams(x: usize, dy: usize, gw: usize, gb: usize, rows: i32, nIn: i32, nOut: i32): void {
  const outBytes = (<usize>nOut) << 2;
  memory.fill(gw, 0, <usize>nIn * outBytes);
  memory.fill(gb, 0, outBytes);
  // Input column outer, batch inner: one gradient row stays in L1 while the batch's dy rows stream by.
  for (let i = 0; i < nIn; i++) {
    const gwi = gw + <usize>i * outBytes;
    for (let r = 0; r < rows; r++) {
      const a = load<f32>(x + ((<usize>r * <usize>nIn + <usize>i) << 2));
      if (a != 0) axpy(nOut, a, dy + <usize>r * outBytes, gwi);
    }
  }
  for (let r = 0; r < rows; r++) axpy(nOut, 1, dy + <usize>r * outBytes, gb);
}

/**
 * Gradient w.r.t. the previous layer's pre-activation: dpre[r,i] = scale * (dy[r,:] . w[i,:]) where that
 * layer's output x[r,i] (after ReLU and dropout) is positive, else 0; scale is the dropout keep factor.
 */
export function denseGradInput(
  x: usize, dy: usize, w: usize, dpre: usize, rows: i32, nIn: i32, nOut: i32, scale: f32,
): void {
  const outBytes = (<usize>nOut) << 2;
  for (let r = 0; r < rows; r++) {
    const dyr = dy + <usize>r * outBytes;
    for (let i = 0; i < nIn; i++) {
      const o = (<usize>r * <usize>nIn + <usize>i) << 2;
      store<f32>(dpre + o, load<f32>(x + o) > 0 ? scale * dot(nOut, w + <usize>i * outBytes, dyr) : 0);
    }
  }
}

// One Adam update of n contiguous parameters (PyTorch's formulation).
@inline function adamSpan(
  n: i32, w: usize, g: usize, m: usize, v: usize, stepSize: f32, b1: f32, b2: f32, invSqrtBc2: f32, eps: f32,
): void {
  const vb1 = f32x4.splat(b1);
  const vb1c = f32x4.splat(1 - b1);
  const vb2 = f32x4.splat(b2);
  const vb2c = f32x4.splat(1 - b2);
  const vstep = f32x4.splat(stepSize);
  const vinv = f32x4.splat(invSqrtBc2);
  const veps = f32x4.splat(eps);
  const n4 = n & ~3;
  let i = 0;
  for (; i < n4; i += 4) {
    const o = (<usize>i) << 2;
    const gi = v128.load(g + o);
    const mi = f32x4.add(f32x4.mul(vb1, v128.load(m + o)), f32x4.mul(vb1c, gi));
    const vi = f32x4.add(f32x4.mul(vb2, v128.load(v + o)), f32x4.mul(vb2c, f32x4.mul(gi, gi)));
    v128.store(m + o, mi);
    v128.store(v + o, vi);
    const denom = f32x4.add(f32x4.mul(f32x4.sqrt(vi), vinv), veps);
    v128.store(w + o, f32x4.sub(v128.load(w + o), f32x4.div(f32x4.mul(vstep, mi), denom)));
  }
  for (; i < n; i++) {
    const o = (<usize>i) << 2;
    const gi = load<f32>(g + o);
    const mi = b1 * load<f32>(m + o) + (1 - b1) * gi;
    const vi = b2 * load<f32>(v + o) + (1 - b2) * gi * gi;
    store<f32>(m + o, mi);
    store<f32>(v + o, vi);
    store<f32>(w + o, load<f32>(w + o) - (stepSize * mi) / (Mathf.sqrt(vi) * invSqrtBc2 + eps));
  }
}

/** Adam over n contiguous parameters with gradient g. */
export function adam(
  n: i32, w: usize, g: usize, m: usize, v: usize, stepSize: f32, b1: f32, b2: f32, invSqrtBc2: f32, eps: f32,
): void {
  adamSpan(n, w, g, m, v, stepSize, b1, b2, invSqrtBc2, eps);
}

// Applies the zero-gradient Adam steps s+1..s+k that a row missed, in closed form: moments decay by b1^k and
// b2^k, and step t moves the weights by c_t * q^j * m/sqrt(v) with q = b1/sqrt(b2) and c_t = lr*sqrt(bc2_t)/bc1_t
// (dense Adam's eps, added to sqrt(v_t/bc2_t), is applied as eps*sqrt(bc2_{s+1}) added to sqrt(v_s): a lower
// bound of its effect at every gap step, so tiny or underflowed v never blows the shift up, and never-updated
// rows stay at 0). The series sum_{j=1..k} c_{s+j} q^j is tails[s] - q^k * tails[s+k], where tails[t] =
// sum_{j>=1} c_{t+j} q^j is computed once per step by the caller (f64). This is what dense Adam does to rows
// absent from a batch, so lazy updates match it.
@inline function catchUpSpan(n: i32, w: usize, m: usize, v: usize, from: i32, gap: i32, tails: usize, b1: f32, b2: f32, eps: f32): void {
  const q = <f64>b1 / Math.sqrt(<f64>b2);
  const series = load<f64>(tails + ((<usize>from) << 3)) - Math.pow(q, <f64>gap) * load<f64>(tails + ((<usize>(from + gap)) << 3));
  const vshift = f32x4.splat(<f32>series);
  const vd1 = f32x4.splat(<f32>Math.pow(<f64>b1, <f64>gap));
  const vd2 = f32x4.splat(<f32>Math.pow(<f64>b2, <f64>gap));
  const vfloor = f32x4.splat(<f32>(<f64>eps * Math.sqrt(1 - Math.pow(<f64>b2, <f64>(from + 1)))));
  for (let i = 0; i < n; i += 4) {
    const o = (<usize>i) << 2;
    const mi = v128.load(m + o);
    const vi = v128.load(v + o);
    v128.store(w + o, f32x4.sub(v128.load(w + o), f32x4.div(f32x4.mul(vshift, mi), f32x4.add(f32x4.sqrt(vi), vfloor))));
    v128.store(m + o, f32x4.mul(mi, vd1));
    v128.store(v + o, f32x4.mul(vi, vd2));
  }
}

/** Brings every row of a lazily updated layer up to step t (before evaluation or a checkpoint). */
export function adamCatchUpAll(rows: i32, w: usize, m: usize, v: usize, h: i32, last: usize, t: i32, tails: usize, b1: f32, b2: f32, eps: f32): void {
  const rowBytes = (<usize>h) << 2;
  for (let row = 0; row < rows; row++) {
    const off = <usize>row * rowBytes;
    const lastAt = last + ((<usize>row) << 2);
    const s = load<i32>(lastAt);
    if (t > s) catchUpSpan(h, w + off, m + off, v + off, s, t - s, tails, b1, b2, eps);
    store<i32>(lastAt, t);
  }
}

/**
 * Lazy-Adam forward of the sparse first layer, one pass per distinct column: each weight row the batch reads is
 * first caught up to step t, then added (scaled by its counts) to the outputs of the batch rows that contain it.
 * The batch arrives column-major (CSC): column k is weight row rowIds[k] (ascending), its entries
 * colPtr[k]..colPtr[k+1] give batch row cscRows[e] and count cscVals[e]. Each output row accumulates its columns in
 * ascending order, exactly as sparseForward does, so results are identical.
 */
export function lazySparseForward(
  count: i32, rowIds: usize, colPtr: usize, cscRows: usize, cscVals: usize,
  w: usize, m: usize, v: usize, last: usize, t: i32, tails: usize, b1: f32, b2: f32, eps: f32,
  bias: usize, out: usize, rows: i32, h: i32,
): void {
  const rowBytes = (<usize>h) << 2;
  for (let r = 0; r < rows; r++) copy(h, bias, out + <usize>r * rowBytes);
  for (let k = 0; k < count; k++) {
    const row = load<i32>(rowIds + ((<usize>k) << 2));
    const off = <usize>row * rowBytes;
    const lastAt = last + ((<usize>row) << 2);
    const from = load<i32>(lastAt);
    if (t > from) catchUpSpan(h, w + off, m + off, v + off, from, t - from, tails, b1, b2, eps);
    store<i32>(lastAt, t);
    const end = load<i32>(colPtr + ((<usize>(k + 1)) << 2));
    for (let e = load<i32>(colPtr + ((<usize>k) << 2)); e < end; e++) {
      const r = load<i32>(cscRows + ((<usize>e) << 2));
      axpy(h, load<f32>(cscVals + ((<usize>e) << 2)), w + off, out + <usize>r * rowBytes);
    }
  }
}

/**
 * Lazy-Adam backward + update of the sparse first layer, one pass per distinct column: the row's gradient
 * (sum over the batch rows containing it of count * dh[row]) is built in `scratch` and applied at once, so no
 * per-batch gradient matrix is written. Same CSC layout as lazySparseForward; last[row] becomes t.
 */
export function lazySparseBackward(
  count: i32, rowIds: usize, colPtr: usize, cscRows: usize, cscVals: usize, dh: usize, scratch: usize,
  w: usize, m: usize, v: usize, last: usize, t: i32, h: i32,
  stepSize: f32, b1: f32, b2: f32, invSqrtBc2: f32, eps: f32,
): void {
  const rowBytes = (<usize>h) << 2;
  for (let k = 0; k < count; k++) {
    const row = load<i32>(rowIds + ((<usize>k) << 2));
    const off = <usize>row * rowBytes;
    memory.fill(scratch, 0, rowBytes);
    const end = load<i32>(colPtr + ((<usize>(k + 1)) << 2));
    for (let e = load<i32>(colPtr + ((<usize>k) << 2)); e < end; e++) {
      const r = load<i32>(cscRows + ((<usize>e) << 2));
      axpy(h, load<f32>(cscVals + ((<usize>e) << 2)), dh + <usize>r * rowBytes, scratch);
    }
    store<i32>(last + ((<usize>row) << 2), t);
    adamSpan(h, w + off, scratch, m + off, v + off, stepSize, b1, b2, invSqrtBc2, eps);
  }
}

