// MLP training kernels in AssemblyScript, compiled to WebAssembly with SIMD (f32x4).
// Our own code because no library offers a sparse (embedding-bag) first layer with a row-sparse Adam on
// WebAssembly: tfjs's WASM backend lacks the gather gradient and its per-op overhead dominates small batches.
// All arguments that end in a pointer are byte offsets into this module's memory; matrices are row-major f32.
// The memory is imported and shared: `runPart` lets several threads (one instance each) split one operation by
// output columns or rows, so every output element is computed by one thread with the same arithmetic in the same
// order whatever the thread count: results are bit-identical for any number of threads.

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
  return dotTail(acc, n4, n, x, y);
}

@inline function copy(n: i32, src: usize, dst: usize): void {
  memory.copy(dst, src, (<usize>n) << 2);
}


// Start of part `part` of `parts` over [0, n), a multiple of 4 (SIMD alignment) except at n.
@inline function bound(n: i32, part: i32, parts: i32): i32 {
  return part >= parts ? n : (<i32>((<i64>n * <i64>part) / <i64>parts)) & ~3;
}

// out[r, :] = bias + sum_k values[k] * w[indices[k], :] over the non-zeros of batch rows r0..r1 (CSR), whole
// output rows: split by batch rows, each thread reads whole weight rows (see lazyForward on why not columns).
function sparseForward(
  indptr: usize, indices: usize, values: usize, w: usize, bias: usize, out: usize, h: i32, r0: i32, r1: i32,
): void {
  const rowBytes = (<usize>h) << 2;
  for (let r = r0; r < r1; r++) {
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

// g[slots[k], c0:c1] += values[k] * dh[r, c0:c1] for every non-zero k of row r; g holds one row per distinct column.
function sparseGradRows(
  rows: i32, indptr: usize, slots: usize, values: usize, dh: usize, g: usize, h: i32, c0: i32, c1: i32,
): void {
  const rowBytes = (<usize>h) << 2;
  const c = (<usize>c0) << 2;
  const n = c1 - c0;
  for (let r = 0; r < rows; r++) {
    const d = dh + <usize>r * rowBytes + c;
    const start = load<i32>(indptr + ((<usize>r) << 2));
    const end = load<i32>(indptr + ((<usize>(r + 1)) << 2));
    for (let k = start; k < end; k++) {
      const slot = load<i32>(slots + ((<usize>k) << 2));
      axpy(n, load<f32>(values + ((<usize>k) << 2)), d, g + <usize>slot * rowBytes + c);
    }
  }
}

// y[:, c0:c1] = x w[:, c0:c1] + bias[c0:c1] for x [rows, nIn], w [nIn, nOut]. Each output starts from its bias and
// adds x[r,i] * w[i,c] over the row's non-zero inputs (ReLU and dropout zero most) in ascending i. Per row the non-zero
// inputs are listed first (index, value) in `scratch` (2 nIn slots), then 32 outputs at a time accumulate in registers.
function denseForward(
  x: usize, w: usize, bias: usize, y: usize, rows: i32, nIn: i32, nOut: i32, c0: i32, c1: i32, scratch: usize,
): void {
  const outBytes = (<usize>nOut) << 2;
  for (let r = 0; r < rows; r++) {
    const xr = x + (<usize>r * <usize>nIn << 2);
    let count = 0;
    for (let i = 0; i < nIn; i++) {
      const a = load<f32>(xr + ((<usize>i) << 2));
      const at = scratch + ((<usize>count) << 3);
      store<i32>(at, i);
      store<f32>(at + 4, a);
      count += <i32>(a != 0);
    }
    rowTimesMatrix(scratch, count, w, outBytes, bias, y + <usize>r * outBytes, c0, c1);
  }
}

// out[c0:c1] = start[c0:c1] + sum over the listed (index k, value a) pairs, in order, of a * m[k, c0:c1] (m's rows
// `rowBytes` apart; start 0 means from zero): 32 columns at a time in registers, then 4, then one.
@inline function rowTimesMatrix(list: usize, count: i32, m: usize, rowBytes: usize, start: usize, out: usize, c0: i32, c1: i32): void {
  let c = c0;
  for (; c + 32 <= c1; c += 32) {
    const o = (<usize>c) << 2;
    let a0 = f32x4.splat(0), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0;
    if (start != 0) {
      a0 = v128.load(start + o); a1 = v128.load(start + o, 16); a2 = v128.load(start + o, 32); a3 = v128.load(start + o, 48);
      a4 = v128.load(start + o, 64); a5 = v128.load(start + o, 80); a6 = v128.load(start + o, 96); a7 = v128.load(start + o, 112);
    }
    for (let j = 0; j < count; j++) {
      const at = list + ((<usize>j) << 3);
      const s = f32x4.splat(load<f32>(at + 4));
      const p = m + <usize>load<i32>(at) * rowBytes + o;
      a0 = f32x4.add(a0, f32x4.mul(s, v128.load(p)));
      a1 = f32x4.add(a1, f32x4.mul(s, v128.load(p, 16)));
      a2 = f32x4.add(a2, f32x4.mul(s, v128.load(p, 32)));
      a3 = f32x4.add(a3, f32x4.mul(s, v128.load(p, 48)));
      a4 = f32x4.add(a4, f32x4.mul(s, v128.load(p, 64)));
      a5 = f32x4.add(a5, f32x4.mul(s, v128.load(p, 80)));
      a6 = f32x4.add(a6, f32x4.mul(s, v128.load(p, 96)));
      a7 = f32x4.add(a7, f32x4.mul(s, v128.load(p, 112)));
    }
    v128.store(out + o, a0); v128.store(out + o, a1, 16); v128.store(out + o, a2, 32); v128.store(out + o, a3, 48);
    v128.store(out + o, a4, 64); v128.store(out + o, a5, 80); v128.store(out + o, a6, 96); v128.store(out + o, a7, 112);
  }
  for (; c + 4 <= c1; c += 4) {
    const o = (<usize>c) << 2;
    let a0 = start != 0 ? v128.load(start + o) : f32x4.splat(0);
    for (let j = 0; j < count; j++) {
      const at = list + ((<usize>j) << 3);
      a0 = f32x4.add(a0, f32x4.mul(f32x4.splat(load<f32>(at + 4)), v128.load(m + <usize>load<i32>(at) * rowBytes + o)));
    }
    v128.store(out + o, a0);
  }
  for (; c < c1; c++) {
    const o = (<usize>c) << 2;
    let a: f32 = start != 0 ? load<f32>(start + o) : 0;
    for (let j = 0; j < count; j++) {
      const at = list + ((<usize>j) << 3);
      a += load<f32>(at + 4) * load<f32>(m + <usize>load<i32>(at) * rowBytes + o);
    }
    store<f32>(out + o, a);
  }
}

// gw[:, c0:c1] = x^T dy[:, c0:c1] and gb[c0:c1] = column sums of dy (both overwritten): gw[i,c] sums x[r,i] * dy[r,c]
// over the batch rows where x[r,i] is non-zero, in ascending r from 0, listed per input in `scratch` (2 rows slots).
function denseGradParams(
  x: usize, dy: usize, gw: usize, gb: usize, rows: i32, nIn: i32, nOut: i32, c0: i32, c1: i32, scratch: usize,
): void {
  const outBytes = (<usize>nOut) << 2;
  const inBytes = (<usize>nIn) << 2;
  for (let i = 0; i < nIn; i++) {
    let count = 0;
    for (let r = 0; r < rows; r++) {
      const a = load<f32>(x + <usize>r * inBytes + ((<usize>i) << 2));
      const at = scratch + ((<usize>count) << 3);
      store<i32>(at, r);
      store<f32>(at + 4, a);
      count += <i32>(a != 0);
    }
    rowTimesMatrix(scratch, count, dy, outBytes, 0, gw + <usize>i * outBytes, c0, c1);
  }
  columnSums(dy, rows, nOut, gb, c0, c1);
}

// out[c0:c1] = sum over rows of m[r, c0:c1], rows in order (as a float32 running sum from 0).
@inline function columnSums(m: usize, rows: i32, cols: i32, out: usize, c0: i32, c1: i32): void {
  const c = (<usize>c0) << 2;
  const n = c1 - c0;
  memory.fill(out + c, 0, (<usize>n) << 2);
  for (let r = 0; r < rows; r++) axpy(n, 1, m + (<usize>r * <usize>cols << 2) + c, out + c);
}

// Gradient w.r.t. the previous layer's pre-activation for its units i0..i1: dpre[r,i] = scale * (dy[r,:] . w[i,:])
// where that layer's output x[r,i] (after ReLU and dropout) is positive, else 0; scale is the dropout keep factor.
// Per row the positive units are listed in `scratch` (nIn slots) and taken 4 at a time: four independent dot
// products share each load of dy[r,:], each summed in the order dot() uses.
function denseGradInput(
  x: usize, dy: usize, w: usize, dpre: usize, rows: i32, nIn: i32, nOut: i32, scale: f32, i0: i32, i1: i32, scratch: usize,
): void {
  const outBytes = (<usize>nOut) << 2;
  const n4 = nOut & ~3;
  for (let r = 0; r < rows; r++) {
    const dyr = dy + <usize>r * outBytes;
    const xr = x + (<usize>r * <usize>nIn << 2);
    const dr = dpre + (<usize>r * <usize>nIn << 2);
    let count = 0;
    for (let i = i0; i < i1; i++) {
      store<i32>(scratch + ((<usize>count) << 2), i);
      const on = load<f32>(xr + ((<usize>i) << 2)) > 0;
      if (!on) store<f32>(dr + ((<usize>i) << 2), 0);
      count += <i32>on;
    }
    let j = 0;
    for (; j + 4 <= count; j += 4) {
      const u0 = load<i32>(scratch + ((<usize>j) << 2));
      const u1 = load<i32>(scratch + ((<usize>j) << 2), 4);
      const u2 = load<i32>(scratch + ((<usize>j) << 2), 8);
      const u3 = load<i32>(scratch + ((<usize>j) << 2), 12);
      const w0 = w + <usize>u0 * outBytes;
      const w1 = w + <usize>u1 * outBytes;
      const w2 = w + <usize>u2 * outBytes;
      const w3 = w + <usize>u3 * outBytes;
      let s0 = f32x4.splat(0), s1 = s0, s2 = s0, s3 = s0;
      for (let k = 0; k < n4; k += 4) {
        const o = (<usize>k) << 2;
        const d = v128.load(dyr + o);
        s0 = f32x4.add(s0, f32x4.mul(v128.load(w0 + o), d));
        s1 = f32x4.add(s1, f32x4.mul(v128.load(w1 + o), d));
        s2 = f32x4.add(s2, f32x4.mul(v128.load(w2 + o), d));
        s3 = f32x4.add(s3, f32x4.mul(v128.load(w3 + o), d));
      }
      store<f32>(dr + ((<usize>u0) << 2), scale * dotTail(s0, n4, nOut, w0, dyr));
      store<f32>(dr + ((<usize>u1) << 2), scale * dotTail(s1, n4, nOut, w1, dyr));
      store<f32>(dr + ((<usize>u2) << 2), scale * dotTail(s2, n4, nOut, w2, dyr));
      store<f32>(dr + ((<usize>u3) << 2), scale * dotTail(s3, n4, nOut, w3, dyr));
    }
    for (; j < count; j++) {
      const i = load<i32>(scratch + ((<usize>j) << 2));
      store<f32>(dr + ((<usize>i) << 2), scale * dot(nOut, w + <usize>i * outBytes, dyr));
    }
  }
}

// What dot() does after its SIMD body: the lanes of acc summed in order, then the scalar tail from n4 to n.
@inline function dotTail(acc: v128, n4: i32, n: i32, x: usize, y: usize): f32 {
  let s: f32 =
    f32x4.extract_lane(acc, 0) + f32x4.extract_lane(acc, 1) + f32x4.extract_lane(acc, 2) + f32x4.extract_lane(acc, 3);
  for (let i = n4; i < n; i++) {
    const o = (<usize>i) << 2;
    s += load<f32>(x + o) * load<f32>(y + o);
  }
  return s;
}

// One Adam update of the 4 parameters at w (moments at m, v) from gradient gi and the moments as they stand (mi, vi):
// the body adamSpan and lazyBackward share; the v-constants are b1, 1-b1, b2, 1-b2, the step size, 1/sqrt(bc2), eps.
@inline function adamLanes(
  w: usize, m: usize, v: usize, gi: v128, mi: v128, vi: v128,
  vb1: v128, vb1c: v128, vb2: v128, vb2c: v128, vstep: v128, vinv: v128, veps: v128,
): void {
  const m1 = f32x4.add(f32x4.mul(vb1, mi), f32x4.mul(vb1c, gi));
  const v1 = f32x4.add(f32x4.mul(vb2, vi), f32x4.mul(vb2c, f32x4.mul(gi, gi)));
  v128.store(m, m1);
  v128.store(v, v1);
  const denom = f32x4.add(f32x4.mul(f32x4.sqrt(v1), vinv), veps);
  v128.store(w, f32x4.sub(v128.load(w), f32x4.div(f32x4.mul(vstep, m1), denom)));
}

// adamLanes after the moments' decay over the steps the row missed (vd1 = vd2 = 1, exact, when it missed none).
@inline function lazyAdamLanes(
  w: usize, m: usize, v: usize, gi: v128, vd1: v128, vd2: v128,
  vb1: v128, vb1c: v128, vb2: v128, vb2c: v128, vstep: v128, vinv: v128, veps: v128,
): void {
  adamLanes(w, m, v, gi, f32x4.mul(v128.load(m), vd1), f32x4.mul(v128.load(v), vd2), vb1, vb1c, vb2, vb2c, vstep, vinv, veps);
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
    adamLanes(w + o, m + o, v + o, v128.load(g + o), v128.load(m + o), v128.load(v + o), vb1, vb1c, vb2, vb2c, vstep, vinv, veps);
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

// Applies the zero-gradient Adam steps s+1..s+k that a row missed, in closed form: moments decay by b1^k and
// b2^k, and step t moves the weights by c_t * q^j * m/sqrt(v) with q = b1/sqrt(b2) and c_t = lr*sqrt(bc2_t)/bc1_t
// (dense Adam's eps, added to sqrt(v_t/bc2_t), is applied as eps*sqrt(bc2_{s+1}) added to sqrt(v_s): a lower
// bound of its effect at every gap step, so tiny or underflowed v never blows the shift up, and never-updated
// rows stay at 0). The series sum_{j=1..k} c_{s+j} q^j is tails[s] - q^k * tails[s+k], where tails[t] =
// sum_{j>=1} c_{t+j} q^j is computed once per step by the caller (f64). This is what dense Adam does to rows
// absent from a batch, so lazy updates match it. With `moments` false only the weights are written: the training
// step's backward applies the moments' decay in its own pass over the row (lazyBackward), saving a write of m and v.
@inline function catchUpSpan(
  n: i32, w: usize, m: usize, v: usize, from: i32, gap: i32, tails: usize, decay: usize, moments: bool,
): void {
  const series = load<f64>(tails + ((<usize>from) << 3)) - load<f64>(decay + ((<usize>gap) << 5) + 16) * load<f64>(tails + ((<usize>(from + gap)) << 3));
  const shift = <f32>series;
  const floor = <f32>load<f64>(decay + ((<usize>from) << 5) + 24);
  const vshift = f32x4.splat(shift);
  const vfloor = f32x4.splat(floor);
  const n4 = n & ~3;
  if (moments) {
    const d1 = <f32>load<f64>(decay + ((<usize>gap) << 5));
    const d2 = <f32>load<f64>(decay + ((<usize>gap) << 5) + 8);
    const vd1 = f32x4.splat(d1);
    const vd2 = f32x4.splat(d2);
    let i = 0;
    for (; i < n4; i += 4) {
      const o = (<usize>i) << 2;
      const mi = v128.load(m + o);
      const vi = v128.load(v + o);
      v128.store(w + o, f32x4.sub(v128.load(w + o), f32x4.div(f32x4.mul(vshift, mi), f32x4.add(f32x4.sqrt(vi), vfloor))));
      v128.store(m + o, f32x4.mul(mi, vd1));
      v128.store(v + o, f32x4.mul(vi, vd2));
    }
    // A width that is not a multiple of 4: the same arithmetic per lane, one at a time.
    for (; i < n; i++) {
      const o = (<usize>i) << 2;
      const mi = load<f32>(m + o);
      const vi = load<f32>(v + o);
      store<f32>(w + o, load<f32>(w + o) - (shift * mi) / (Mathf.sqrt(vi) + floor));
      store<f32>(m + o, mi * d1);
      store<f32>(v + o, vi * d2);
    }
  } else {
    let i = 0;
    for (; i < n4; i += 4) {
      const o = (<usize>i) << 2;
      v128.store(w + o, f32x4.sub(v128.load(w + o), f32x4.div(f32x4.mul(vshift, v128.load(m + o)), f32x4.add(f32x4.sqrt(v128.load(v + o)), vfloor))));
    }
    for (; i < n; i++) {
      const o = (<usize>i) << 2;
      store<f32>(w + o, load<f32>(w + o) - (shift * load<f32>(m + o)) / (Mathf.sqrt(load<f32>(v + o)) + floor));
    }
  }
}

/**
 * Fills entries from..to of the catch-up table (4 f64 per step count k): b1^k and b2^k as float32 (the moments'
 * decay over k missed steps), q^k with q = b1/sqrt(b2) (the series' tail shift), and eps*sqrt(1-b2^(k+1)) as
 * float32 (the eps floor of a row last updated at step k): once per step instead of per row and thread.
 */
export function fillDecay(decay: usize, from: i32, to: i32, b1: f32, b2: f32, eps: f32): void {
  const q = <f64>b1 / Math.sqrt(<f64>b2);
  for (let k = from; k <= to; k++) {
    const at = decay + ((<usize>k) << 5);
    store<f64>(at, <f64><f32>Math.pow(<f64>b1, <f64>k));
    store<f64>(at + 8, <f64><f32>Math.pow(<f64>b2, <f64>k));
    store<f64>(at + 16, Math.pow(q, <f64>k));
    store<f64>(at + 24, <f64><f32>(<f64>eps * Math.sqrt(1 - Math.pow(<f64>b2, <f64>(k + 1)))));
  }
}

/** Brings every row of a lazily updated layer up to step t (before evaluation or a checkpoint). */
export function adamCatchUpAll(rows: i32, w: usize, m: usize, v: usize, h: i32, last: usize, t: i32, tails: usize, decay: usize): void {
  const rowBytes = (<usize>h) << 2;
  for (let row = 0; row < rows; row++) {
    const off = <usize>row * rowBytes;
    const lastAt = last + ((<usize>row) << 2);
    const s = load<i32>(lastAt);
    if (t > s) catchUpSpan(h, w + off, m + off, v + off, s, t - s, tails, decay, true);
    store<i32>(lastAt, t);
  }
}

/**
 * ReLU with inverted dropout over a[0..n), in place: each value draws the next number of the xoshiro128** stream
 * whose state (4 u32) is at `state`, and is kept when the draw is >= threshold (p·2^32) and the value is positive,
 * scaled by `scale` in f64 and rounded once to f32, else 0 — exactly what rng.ts's Xoshiro128 and the JavaScript loop
 * it replaces compute (the TensorFlow.js engine draws the same masks from the same stream). The state is advanced.
 */
export function dropoutRelu(a: usize, n: i32, threshold: f64, scale: f64, state: usize): void {
  let s0 = load<u32>(state);
  let s1 = load<u32>(state + 4);
  let s2 = load<u32>(state + 8);
  let s3 = load<u32>(state + 12);
  // For a u32 draw, draw >= threshold is draw >= ceil(threshold); no draw reaches 2^32 or more.
  const cut = Math.ceil(threshold);
  const vkeepAny = cut <= 4294967295.0 ? i32x4.splat(-1) : i32x4.splat(0);
  const vcut = i32x4.splat(cut <= 4294967295.0 ? <i32><u32>cut : 0);
  const vscale = f64x2.splat(scale);
  const vzero = f32x4.splat(0);
  const n4 = n & ~3;
  let i = 0;
  // Four draws at a time into lanes, then the mask and the f64 scaling branch-free: the stream is serial, the rest not.
  for (; i < n4; i += 4) {
    let d = i32x4.splat(0);
    for (let lane = 0; lane < 4; lane++) {
      const draw = rotl<u32>(s1 * 5, 7) * 9;
      const t = s1 << 9;
      s2 ^= s0;
      s3 ^= s1;
      s1 ^= s2;
      s0 ^= s3;
      s2 ^= t;
      s3 = rotl<u32>(s3, 11);
      // Shifted in from the top: after four draws, lane j holds draw j.
      d = i32x4.shuffle(d, i32x4.splat(draw), 1, 2, 3, 4);
    }
    const o = a + ((<usize>i) << 2);
    const x = v128.load(o);
    const keep = v128.and(v128.and(i32x4.ge_u(d, vcut), vkeepAny), f32x4.gt(x, vzero));
    const lo = f32x4.demote_f64x2_zero(f64x2.mul(f64x2.promote_low_f32x4(x), vscale));
    const hi = f32x4.demote_f64x2_zero(f64x2.mul(f64x2.promote_low_f32x4(i32x4.shuffle(x, x, 2, 3, 0, 1)), vscale));
    v128.store(o, v128.and(i32x4.shuffle(lo, hi, 0, 1, 4, 5), keep));
  }
  for (; i < n; i++) {
    const draw = rotl<u32>(s1 * 5, 7) * 9;
    const t = s1 << 9;
    s2 ^= s0;
    s3 ^= s1;
    s1 ^= s2;
    s0 ^= s3;
    s2 ^= t;
    s3 = rotl<u32>(s3, 11);
    const o = a + ((<usize>i) << 2);
    const x = load<f32>(o);
    store<f32>(o, <f64>draw >= threshold && x > 0 ? <f32>(<f64>x * scale) : 0);
  }
  store<u32>(state, s0);
  store<u32>(state + 4, s1);
  store<u32>(state + 8, s2);
  store<u32>(state + 12, s3);
}

/** ReLU over a[0..n), in place (NaN becomes 0, as the dropout path does). */
export function relu(a: usize, n: i32): void {
  for (let i = 0; i < n; i++) {
    const o = a + ((<usize>i) << 2);
    if (!(load<f32>(o) > 0)) store<f32>(o, 0);
  }
}

/**
 * Transposes the loaded CSR batch (indptr from 0) to the column-major form of the lazy-Adam kernels: its distinct
 * columns ascending in rowIds[0..count), column k's entries at colPtr[k]..colPtr[k+1] of cscRows (batch row) and
 * cscVals (value), in row order. `pos` is scratch of one i32 per input column, all zero on entry and on return.
 * Returns count. A counting sort: one pass to count, one scan of the columns, one pass to place.
 */
export function batchColumns(
  rows: i32, indptr: usize, indices: usize, values: usize, columns: i32, pos: usize,
  rowIds: usize, colPtr: usize, cscRows: usize, cscVals: usize,
): i32 {
  const nnz = load<i32>(indptr + ((<usize>rows) << 2));
  for (let k = 0; k < nnz; k++) {
    const at = pos + ((<usize>load<i32>(indices + ((<usize>k) << 2))) << 2);
    store<i32>(at, load<i32>(at) + 1);
  }
  let count = 0;
  let filled = 0;
  for (let col = 0; col < columns; col++) {
    const at = pos + ((<usize>col) << 2);
    const n = load<i32>(at);
    if (n == 0) continue;
    store<i32>(rowIds + ((<usize>count) << 2), col);
    store<i32>(colPtr + ((<usize>count) << 2), filled);
    // From here pos holds the column's next free entry, plus one (0 stays "absent").
    store<i32>(at, filled + 1);
    filled += n;
    count++;
  }
  store<i32>(colPtr + ((<usize>count) << 2), filled);
  for (let r = 0; r < rows; r++) {
    const end = load<i32>(indptr + ((<usize>(r + 1)) << 2));
    for (let k = load<i32>(indptr + ((<usize>r) << 2)); k < end; k++) {
      const at = pos + ((<usize>load<i32>(indices + ((<usize>k) << 2))) << 2);
      const e = <usize>(load<i32>(at) - 1) << 2;
      store<i32>(at, load<i32>(at) + 1);
      store<i32>(cscRows + e, r);
      store<f32>(cscVals + e, load<f32>(values + ((<usize>k) << 2)));
    }
  }
  for (let k = 0; k < count; k++) store<i32>(pos + ((<usize>load<i32>(rowIds + ((<usize>k) << 2))) << 2), 0);
  return count;
}

/** last[rowIds[k]] = t for the batch's distinct columns: they are up to date after lazyBackward. */
export function lazyMarkRows(count: i32, rowIds: usize, last: usize, t: i32): void {
  for (let k = 0; k < count; k++) store<i32>(last + ((<usize>load<i32>(rowIds + ((<usize>k) << 2))) << 2), t);
}

// Lazy-Adam forward of the sparse first layer, slice `slice` of the 2 halves of the batch's distinct columns, whole
// weight rows: each row is caught up to step t (weights only; moments and last[] are left to lazyBackward, which
// applies their decay in its own pass) and added, scaled by its counts, to the outputs of the batch rows that
// contain it. Slice 0 sums into out from the bias, slice 1 into `partial` from 0; the caller adds partial to out
// (addInto). So each thread owns whole rows: it streams 2 KiB runs of w, m and v and shares no page with the other,
// where splitting every row's columns between threads measured 1.4-2x slower on the same bytes. The two slices are
// fixed by the batch, not the thread count, so results do not depend on it. The batch arrives column-major (CSC):
// column k is weight row rowIds[k] (ascending), its entries colPtr[k]..colPtr[k+1] give batch row cscRows[e] and
// count cscVals[e]; each output accumulates its slice's columns in ascending order.
function lazyForward(
  count: i32, rowIds: usize, colPtr: usize, cscRows: usize, cscVals: usize,
  w: usize, m: usize, v: usize, last: usize, t: i32, tails: usize, decay: usize,
  bias: usize, out: usize, partial: usize, rows: i32, h: i32, slice: i32,
): void {
  const rowBytes = (<usize>h) << 2;
  const mid = bound(count, 1, 2);
  const dst = slice == 0 ? out : partial;
  for (let r = 0; r < rows; r++) {
    const y = dst + <usize>r * rowBytes;
    if (slice == 0) copy(h, bias, y);
    else memory.fill(y, 0, rowBytes);
  }
  const k1 = slice == 0 ? mid : count;
  for (let k = slice == 0 ? 0 : mid; k < k1; k++) {
    const row = load<i32>(rowIds + ((<usize>k) << 2));
    const off = <usize>row * rowBytes;
    const from = load<i32>(last + ((<usize>row) << 2));
    if (t > from) catchUpSpan(h, w + off, m + off, v + off, from, t - from, tails, decay, false);
    const end = load<i32>(colPtr + ((<usize>(k + 1)) << 2));
    for (let e = load<i32>(colPtr + ((<usize>k) << 2)); e < end; e++) {
      const r = load<i32>(cscRows + ((<usize>e) << 2));
      axpy(h, load<f32>(cscVals + ((<usize>e) << 2)), w + off, dst + <usize>r * rowBytes);
    }
  }
}

/** a[0..n) += b[0..n) (lazyForward's second slice into its outputs). */
export function addInto(a: usize, b: usize, n: i32): void {
  axpy(n, 1, b, a);
}

// Lazy-Adam backward + update of the sparse first layer over the batch's distinct rows k0..k1, whole rows (split by
// rows for the reason lazyForward gives), one pass over each: per 4 lanes, the gradient (sum over the batch rows
// containing the column of count * dh[row], from 0 in entry order), the moments' decay over the steps the row missed
// (the rest of the catch-up) and Adam, with no gradient row or moment written in between. Also gb[c0:c1] = column
// sums of dh, split by columns as the bias's Adam is. Same CSC layout as lazyForward; the caller then sets last[] of
// these rows to t (lazyMarkRows), after every part has read it.
function lazyBackward(
  rowIds: usize, colPtr: usize, cscRows: usize, cscVals: usize, dh: usize, gb: usize,
  w: usize, m: usize, v: usize, last: usize, t: i32, decay: usize, rows: i32, h: i32,
  stepSize: f32, b1: f32, b2: f32, invSqrtBc2: f32, eps: f32, k0: i32, k1: i32, c0: i32, c1: i32,
): void {
  const rowBytes = (<usize>h) << 2;
  const n4 = h & ~3;
  const n16 = h & ~15;
  columnSums(dh, rows, h, gb, c0, c1);
  const vb1 = f32x4.splat(b1);
  const vb1c = f32x4.splat(1 - b1);
  const vb2 = f32x4.splat(b2);
  const vb2c = f32x4.splat(1 - b2);
  const vstep = f32x4.splat(stepSize);
  const vinv = f32x4.splat(invSqrtBc2);
  const veps = f32x4.splat(eps);
  for (let k = k0; k < k1; k++) {
    const row = load<i32>(rowIds + ((<usize>k) << 2));
    const off = <usize>row * rowBytes;
    const gap = t - 1 - load<i32>(last + ((<usize>row) << 2));
    const d1 = <f32>load<f64>(decay + ((<usize>gap) << 5));
    const d2 = <f32>load<f64>(decay + ((<usize>gap) << 5) + 8);
    const vd1 = f32x4.splat(d1);
    const vd2 = f32x4.splat(d2);
    const begin = load<i32>(colPtr + ((<usize>k) << 2));
    const end = load<i32>(colPtr + ((<usize>(k + 1)) << 2));
    const wr = w + off;
    const mr = m + off;
    const vr = v + off;
    let i = 0;
    // 16 lanes at a time: each entry's row and count are loaded once for four independent sums.
    for (; i < n16; i += 16) {
      const o = (<usize>i) << 2;
      let g0 = f32x4.splat(0);
      let g1 = f32x4.splat(0);
      let g2 = f32x4.splat(0);
      let g3 = f32x4.splat(0);
      for (let e = begin; e < end; e++) {
        const d = dh + <usize>load<i32>(cscRows + ((<usize>e) << 2)) * rowBytes + o;
        const c = f32x4.splat(load<f32>(cscVals + ((<usize>e) << 2)));
        g0 = f32x4.add(g0, f32x4.mul(c, v128.load(d)));
        g1 = f32x4.add(g1, f32x4.mul(c, v128.load(d + 16)));
        g2 = f32x4.add(g2, f32x4.mul(c, v128.load(d + 32)));
        g3 = f32x4.add(g3, f32x4.mul(c, v128.load(d + 48)));
      }
      lazyAdamLanes(wr + o, mr + o, vr + o, g0, vd1, vd2, vb1, vb1c, vb2, vb2c, vstep, vinv, veps);
      lazyAdamLanes(wr + o + 16, mr + o + 16, vr + o + 16, g1, vd1, vd2, vb1, vb1c, vb2, vb2c, vstep, vinv, veps);
      lazyAdamLanes(wr + o + 32, mr + o + 32, vr + o + 32, g2, vd1, vd2, vb1, vb1c, vb2, vb2c, vstep, vinv, veps);
      lazyAdamLanes(wr + o + 48, mr + o + 48, vr + o + 48, g3, vd1, vd2, vb1, vb1c, vb2, vb2c, vstep, vinv, veps);
    }
    for (; i < n4; i += 4) {
      const o = (<usize>i) << 2;
      let gi = f32x4.splat(0);
      for (let e = begin; e < end; e++) {
        const r = load<i32>(cscRows + ((<usize>e) << 2));
        gi = f32x4.add(gi, f32x4.mul(f32x4.splat(load<f32>(cscVals + ((<usize>e) << 2))), v128.load(dh + <usize>r * rowBytes + o)));
      }
      lazyAdamLanes(wr + o, mr + o, vr + o, gi, vd1, vd2, vb1, vb1c, vb2, vb2c, vstep, vinv, veps);
    }
    // A width that is not a multiple of 4: the same arithmetic per lane, one at a time.
    for (; i < h; i++) {
      const o = (<usize>i) << 2;
      let gi: f32 = 0;
      for (let e = begin; e < end; e++) {
        const r = load<i32>(cscRows + ((<usize>e) << 2));
        gi += load<f32>(cscVals + ((<usize>e) << 2)) * load<f32>(dh + <usize>r * rowBytes + o);
      }
      let mi = load<f32>(mr + o) * d1;
      let vi = load<f32>(vr + o) * d2;
      mi = b1 * mi + (1 - b1) * gi;
      vi = b2 * vi + (1 - b2) * (gi * gi);
      store<f32>(mr + o, mi);
      store<f32>(vr + o, vi);
      store<f32>(wr + o, load<f32>(wr + o) - (stepSize * mi) / (Mathf.sqrt(vi) * invSqrtBc2 + eps));
    }
  }
}

/** Operation codes of runPart; their arguments are 32-bit slots after the code (see the engine's calls). */
const OP_SPARSE_FORWARD = 1;
const OP_SPARSE_GRAD_ROWS = 2;
const OP_DENSE_FORWARD = 3;
const OP_DENSE_BACKWARD = 4;
const OP_ADAM = 5;
const OP_LAZY_FORWARD = 6;
const OP_LAZY_BACKWARD = 7;

// Argument slot i of the operation at a (slot 0 is the code, slot 1 the number of argument slots).
@inline function ai(a: usize, i: i32): i32 {
  return load<i32>(a + ((<usize>(i + 1)) << 2));
}
@inline function af(a: usize, i: i32): f32 {
  return load<f32>(a + ((<usize>(i + 1)) << 2));
}
@inline function ap(a: usize, i: i32): usize {
  return <usize>load<u32>(a + ((<usize>(i + 1)) << 2));
}

/**
 * Runs part `part` of `parts` of each operation listed at `a` (code, argument count, arguments; code 0 ends the
 * list), in order. An operation may only read what an earlier one of the list wrote through the same part (same
 * size, so the same bounds: lazyBackward's bias gradient for Adam), never another part's. Each part computes a disjoint set of output
 * columns (or input-gradient units, parameters for Adam, or the lazy layer's weight rows), so parts can run on
 * different threads at once and the result does not depend on how many there are.
 */
export function runPart(list: usize, part: i32, parts: i32): void {
  let a = list;
  for (let op = load<i32>(a); op != 0; op = load<i32>(a)) {
    runOne(op, a, part, parts);
    a += (<usize>(2 + load<i32>(a + 4))) << 2;
  }
}

function runOne(op: i32, a: usize, part: i32, parts: i32): void {
  if (op == OP_SPARSE_FORWARD) {
    const rows = ai(a, 1);
    sparseForward(ap(a, 2), ap(a, 3), ap(a, 4), ap(a, 5), ap(a, 6), ap(a, 7), ai(a, 8), bound(rows, part, parts), bound(rows, part + 1, parts));
  } else if (op == OP_SPARSE_GRAD_ROWS) {
    const h = ai(a, 7);
    sparseGradRows(ai(a, 1), ap(a, 2), ap(a, 3), ap(a, 4), ap(a, 5), ap(a, 6), h, bound(h, part, parts), bound(h, part + 1, parts));
  } else if (op == OP_DENSE_FORWARD) {
    // x, w, bias, y, rows, nIn, nOut, scratch, scratch bytes per part.
    const nOut = ai(a, 7);
    const scratch = ap(a, 8) + <usize>part * ap(a, 9);
    denseForward(ap(a, 1), ap(a, 2), ap(a, 3), ap(a, 4), ai(a, 5), ai(a, 6), nOut, bound(nOut, part, parts), bound(nOut, part + 1, parts), scratch);
  } else if (op == OP_DENSE_BACKWARD) {
    // x, dy, w, gw, gb, dpre (0: not wanted), rows, nIn, nOut, scale, scratch, scratch bytes per part.
    const nIn = ai(a, 8);
    const nOut = ai(a, 9);
    const scratch = ap(a, 11) + <usize>part * ap(a, 12);
    denseGradParams(ap(a, 1), ap(a, 2), ap(a, 4), ap(a, 5), ai(a, 7), nIn, nOut, bound(nOut, part, parts), bound(nOut, part + 1, parts), scratch);
    const dpre = ap(a, 6);
    if (dpre != 0) denseGradInput(ap(a, 1), ap(a, 2), ap(a, 3), dpre, ai(a, 7), nIn, nOut, af(a, 10), bound(nIn, part, parts), bound(nIn, part + 1, parts), scratch);
  } else if (op == OP_ADAM) {
    // stepSize, b1, b2, invSqrtBc2, eps, then per parameter tensor: n, w, g, m, v.
    const segments = (load<i32>(a + 4) - 5) / 5;
    for (let s = 0; s < segments; s++) {
      const at = 6 + 5 * s;
      const n = ai(a, at);
      const i0 = bound(n, part, parts);
      const o = (<usize>i0) << 2;
      adamSpan(bound(n, part + 1, parts) - i0, ap(a, at + 1) + o, ap(a, at + 2) + o, ap(a, at + 3) + o, ap(a, at + 4) + o, af(a, 1), af(a, 2), af(a, 3), af(a, 4), af(a, 5));
    }
  } else if (op == OP_LAZY_FORWARD) {
    // count, rowIds, colPtr, cscRows, cscVals, w, m, v, last, t, tails, decay, bias, out, partial, rows, h: two slices
    // over however many parts (one part takes both).
    for (let slice = part; slice < 2; slice += parts) {
      lazyForward(
        ai(a, 1), ap(a, 2), ap(a, 3), ap(a, 4), ap(a, 5), ap(a, 6), ap(a, 7), ap(a, 8), ap(a, 9), ai(a, 10), ap(a, 11),
        ap(a, 12), ap(a, 13), ap(a, 14), ap(a, 15), ai(a, 16), ai(a, 17), slice,
      );
    }
  } else if (op == OP_LAZY_BACKWARD) {
    // count, rowIds, colPtr, cscRows, cscVals, dh, gb, w, m, v, last, t, decay, rows, h, stepSize, b1, b2, invSqrtBc2, eps.
    const count = ai(a, 1);
    const h = ai(a, 15);
    lazyBackward(
      ap(a, 2), ap(a, 3), ap(a, 4), ap(a, 5), ap(a, 6), ap(a, 7), ap(a, 8), ap(a, 9), ap(a, 10), ap(a, 11), ai(a, 12),
      ap(a, 13), ai(a, 14), h, af(a, 16), af(a, 17), af(a, 18), af(a, 19), af(a, 20),
      bound(count, part, parts), bound(count, part + 1, parts), bound(h, part, parts), bound(h, part + 1, parts),
    );
  } else abort();
}
