/** Sparse rows in CSR form (column indices sorted within a row); a bag-of-words batch or dataset. */
export interface CsrMatrix {
  rows: number;
  cols: number;
  indptr: Int32Array;
  indices: Int32Array;
  data: Float32Array;
}

/** Dense rows, row-major; sentence embeddings. */
export interface DenseMatrix {
  rows: number;
  cols: number;
  data: Float32Array;
}

/** Model input: sparse counts enter through the embedding-bag layer, dense vectors through a Dense layer. */
export type Features = { kind: 'sparse'; m: CsrMatrix } | { kind: 'dense'; m: DenseMatrix };

/** Number of rows of a feature matrix. */
export function featureRows(x: Features): number {
  return x.m.rows;
}

/** Width of a feature matrix (vocabulary size or embedding dimension). */
export function featureCols(x: Features): number {
  return x.m.cols;
}

/** The rows `ids` of x, in that order, as a new matrix (mini-batches, subsamples). */
export function takeRows(x: Features, ids: ArrayLike<number>): Features {
  if (x.kind === 'dense') {
    const { cols, data } = x.m;
    const out = new Float32Array(ids.length * cols);
    for (let i = 0; i < ids.length; i++) out.set(data.subarray(ids[i]! * cols, (ids[i]! + 1) * cols), i * cols);
    return { kind: 'dense', m: { rows: ids.length, cols, data: out } };
  }
  const { indptr, indices, data, cols } = x.m;
  let nnz = 0;
  for (let i = 0; i < ids.length; i++) nnz += indptr[ids[i]! + 1]! - indptr[ids[i]!]!;
  const p = new Int32Array(ids.length + 1);
  const ind = new Int32Array(nnz);
  const val = new Float32Array(nnz);
  let at = 0;
  for (let i = 0; i < ids.length; i++) {
    const s = indptr[ids[i]!]!;
    const e = indptr[ids[i]! + 1]!;
    ind.set(indices.subarray(s, e), at);
    val.set(data.subarray(s, e), at);
    at += e - s;
    p[i + 1] = at;
  }
  return { kind: 'sparse', m: { rows: ids.length, cols, indptr: p, indices: ind, data: val } };
}
