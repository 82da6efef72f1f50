import { concatRows, decodeCsr, gatherRows, type Csr } from './csr.js';
import { decodeNpy } from './npy.js';

/** Dense rows, row-major; sentence embeddings. */
export interface DenseMatrix {
  rows: number;
  cols: number;
  data: Float32Array;
}

/** Model input: sparse counts enter through the embedding-bag layer, dense vectors through a Dense layer. */
export type Features = { kind: 'sparse'; m: Csr } | { kind: 'dense'; m: DenseMatrix };

/** The rows `ids` of x, in that order, as a new matrix (mini-batches, subsamples). */
export function takeRows(x: Features, ids: ArrayLike<number>): Features {
  if (x.kind === 'sparse') return { kind: 'sparse', m: gatherRows(x.m, ids) };
  const { cols, data } = x.m;
  const out = new Float32Array(ids.length * cols);
  for (let i = 0; i < ids.length; i++) out.set(data.subarray(ids[i]! * cols, (ids[i]! + 1) * cols), i * cols);
  return { kind: 'dense', m: { rows: ids.length, cols, data: out } };
}

/** Stacks feature matrices of the same kind and width (shards back into one split). */
export function concatFeatures(parts: readonly Features[]): Features {
  if (parts.length === 0) throw new RangeError('concatFeatures: no parts');
  if (parts.every((p) => p.kind === 'sparse')) return { kind: 'sparse', m: concatRows(parts.map((p) => p.m as Csr)) };
  const dense = parts.map((p) => {
    if (p.kind !== 'dense') throw new TypeError('concatFeatures: mixed sparse and dense parts');
    return p.m;
  });
  const cols = dense[0]!.cols;
  const rows = dense.reduce((n, m) => n + m.rows, 0);
  const data = new Float32Array(rows * cols);
  let at = 0;
  for (const m of dense) {
    if (m.cols !== cols) throw new RangeError(`concatFeatures: part with ${m.cols} columns, expected ${cols}`);
    data.set(m.data.subarray(0, m.rows * cols), at);
    at += m.rows * cols;
  }
  return { kind: 'dense', m: { rows, cols, data } };
}

/** Reads a cache entry back as model input; `source` names it in errors. */
export function decodeFeatures(ext: 'csr' | 'npy', buf: Buffer, source: string): Features {
  if (ext === 'csr') return { kind: 'sparse', m: decodeCsr(buf, source) };
  const m = decodeNpy(buf, source);
  return { kind: 'dense', m: { rows: m.rows, cols: m.cols, data: m.data } };
}

/** Rows of `blocks[0] | blocks[1] | …`: each block a row-major [rows × width] matrix of the same shape. */
export function joinColumnBlocks(blocks: readonly Float32Array[], rows: number): Float32Array {
  const width = rows === 0 ? 0 : (blocks[0]?.length ?? 0) / rows;
  const cols = width * blocks.length;
  const out = new Float32Array(rows * cols);
  blocks.forEach((block, b) => {
    if (block.length !== rows * width) throw new RangeError(`joinColumnBlocks: block ${b} has ${block.length} values, expected ${rows} × ${width}`);
    for (let r = 0; r < rows; r++) out.set(block.subarray(r * width, (r + 1) * width), r * cols + b * width);
  });
  return out;
}

/** Column block `index` of `count` equal-width blocks of m, as a matrix of its own (one pooling of a shared pass). */
export function columnBlock(m: DenseMatrix, index: number, count: number): DenseMatrix {
  if (m.cols % count !== 0 || index < 0 || index >= count) throw new RangeError(`columnBlock: block ${index} of ${count} in ${m.cols} columns`);
  const width = m.cols / count;
  const data = new Float32Array(m.rows * width);
  for (let r = 0; r < m.rows; r++) data.set(m.data.subarray(r * m.cols + index * width, r * m.cols + (index + 1) * width), r * width);
  return { rows: m.rows, cols: width, data };
}
