/**
 * Compressed sparse row (CSR) matrices for bag-of-words features: row slicing, gathering and concatenation
 * for mini-batches and shards, and the versioned little-endian `.csr` file encoding of the feature cache.
 * Rows are never expanded to dense k-wide vectors here.
 */
import { endianness } from 'node:os';
import { InternalError, InvalidDataError } from '../errors/index.js';

/** A rows x cols sparse matrix; row r holds indices/data[indptr[r] .. indptr[r+1]), column indices ascending. */
export interface Csr {
  rows: number;
  cols: number;
  indptr: Int32Array;
  indices: Int32Array;
  data: Float32Array;
}

/** A CSR matrix or `.csr` buffer that breaks the format; the message names the source and what was expected. */
export class CsrError extends InvalidDataError {
  constructor(
    readonly source: string,
    detail: string,
  ) {
    super(`${source}: ${detail}`);
  }
}

const MAX_INT32 = 0x7fffffff;

/** Number of stored (non-zero) entries. */
export function nnz(csr: Csr): number {
  return csr.indptr[csr.rows] ?? 0;
}

/** An empty matrix with the given shape (no stored entries). */
export function emptyCsr(rows: number, cols: number): Csr {
  return { rows, cols, indptr: new Int32Array(rows + 1), indices: new Int32Array(0), data: new Float32Array(0) };
}

/**
 * Checks every structural invariant (shape, indptr monotone and consistent, column indices in range and strictly
 * ascending within each row, finite values); returns the matrix or throws a CsrError naming the first violation.
 */
export function validateCsr(csr: Csr, source = 'CSR matrix'): Csr {
  const { rows, cols, indptr, indices, data } = csr;
  if (!Number.isInteger(rows) || rows < 0 || rows > MAX_INT32) throw new CsrError(source, `rows ${rows} is not an int32 >= 0`);
  if (!Number.isInteger(cols) || cols < 0 || cols > MAX_INT32) throw new CsrError(source, `cols ${cols} is not an int32 >= 0`);
  if (indptr.length !== rows + 1) throw new CsrError(source, `indptr has ${indptr.length} entries, expected rows + 1 = ${rows + 1}`);
  if (indptr[0] !== 0) throw new CsrError(source, `indptr[0] is ${indptr[0]}, expected 0`);
  const total = indptr[rows]!;
  if (indices.length !== total || data.length !== total) {
    throw new CsrError(source, `indptr[${rows}] = ${total} but indices has ${indices.length} and data ${data.length} entries`);
  }
  for (let r = 0; r < rows; r++) {
    const start = indptr[r]!;
    const end = indptr[r + 1]!;
    if (end < start) throw new CsrError(source, `indptr decreases at row ${r} (${start} -> ${end})`);
    let previous = -1;
    for (let p = start; p < end; p++) {
      const c = indices[p]!;
      if (c < 0 || c >= cols) throw new CsrError(source, `row ${r}: column index ${c} outside [0, ${cols})`);
      if (c <= previous) throw new CsrError(source, `row ${r}: column indices not strictly ascending (${previous} then ${c})`);
      if (!Number.isFinite(data[p]!)) throw new CsrError(source, `row ${r}, column ${c}: value ${data[p]} is not finite`);
      previous = c;
    }
  }
  return csr;
}

/** Builds a CSR matrix row by row with amortised growth (the row count need not be known in advance). */
export class CsrBuilder {
  private indptr = new Int32Array(1024);
  private indices = new Int32Array(4096);
  private data = new Float32Array(4096);
  private rowCount = 0;
  private size = 0;

  constructor(readonly cols: number) {}

  /** Appends one entry to the current row; columns must be pushed in ascending order. */
  push(col: number, value: number): void {
    if (this.size === this.indices.length) {
      this.indices = grow(this.indices, this.size * 2);
      this.data = grow(this.data, this.size * 2);
    }
    this.indices[this.size] = col;
    this.data[this.size] = value;
    this.size++;
  }

  /** Closes the current row (an empty row is allowed). */
  endRow(): void {
    if (this.rowCount + 2 > this.indptr.length) this.indptr = grow(this.indptr, this.indptr.length * 2);
    this.indptr[++this.rowCount] = this.size;
  }

  /** The finished matrix (arrays trimmed to size); the builder must not be used afterwards. */
  finish(): Csr {
    return {
      rows: this.rowCount,
      cols: this.cols,
      indptr: this.indptr.slice(0, this.rowCount + 1),
      indices: this.indices.slice(0, this.size),
      data: this.data.slice(0, this.size),
    };
  }
}

function grow<T extends Int32Array | Float32Array>(array: T, length: number): T {
  const next = new (array.constructor as new (n: number) => T)(length);
  next.set(array);
  return next;
}

/** Rows [start, end) as a new matrix (copies). */
export function sliceRows(csr: Csr, start: number, end: number): Csr {
  if (!Number.isInteger(start) || !Number.isInteger(end) || start < 0 || end < start || end > csr.rows) {
    throw new RangeError(`sliceRows: range [${start}, ${end}) is not within [0, ${csr.rows}]`);
  }
  const from = csr.indptr[start]!;
  const to = csr.indptr[end]!;
  const indptr = new Int32Array(end - start + 1);
  for (let r = start; r <= end; r++) indptr[r - start] = csr.indptr[r]! - from;
  return { rows: end - start, cols: csr.cols, indptr, indices: csr.indices.slice(from, to), data: csr.data.slice(from, to) };
}

/** The listed rows, in the listed order (repeats allowed), as a new matrix: a mini-batch or a shard. */
export function gatherRows(csr: Csr, rowIds: ArrayLike<number>): Csr {
  const n = rowIds.length;
  const indptr = new Int32Array(n + 1);
  for (let i = 0; i < n; i++) {
    const r = rowIds[i]!;
    if (!Number.isInteger(r) || r < 0 || r >= csr.rows) {
      throw new RangeError(`gatherRows: row id ${r} at position ${i} is not within [0, ${csr.rows})`);
    }
    indptr[i + 1] = indptr[i]! + csr.indptr[r + 1]! - csr.indptr[r]!;
  }
  const indices = new Int32Array(indptr[n]!);
  const data = new Float32Array(indptr[n]!);
  for (let i = 0; i < n; i++) {
    const r = rowIds[i]!;
    const from = csr.indptr[r]!;
    const to = csr.indptr[r + 1]!;
    indices.set(csr.indices.subarray(from, to), indptr[i]!);
    data.set(csr.data.subarray(from, to), indptr[i]!);
  }
  return { rows: n, cols: csr.cols, indptr, indices, data };
}

/** Stacks matrices with the same column count vertically (shards back into one split). */
export function concatRows(parts: readonly Csr[]): Csr {
  const first = parts[0];
  if (first === undefined) throw new RangeError('concatRows: no matrices given');
  let rows = 0;
  let total = 0;
  parts.forEach((part, i) => {
    if (part.cols !== first.cols) {
      throw new RangeError(`concatRows: matrix ${i} has ${part.cols} columns, expected ${first.cols} like matrix 0`);
    }
    rows += part.rows;
    total += nnz(part);
  });
  const indptr = new Int32Array(rows + 1);
  const indices = new Int32Array(total);
  const data = new Float32Array(total);
  let row = 0;
  let offset = 0;
  for (const part of parts) {
    for (let r = 1; r <= part.rows; r++) indptr[row + r] = offset + part.indptr[r]!;
    indices.set(part.indices.subarray(0, nnz(part)), offset);
    data.set(part.data.subarray(0, nnz(part)), offset);
    row += part.rows;
    offset += nnz(part);
  }
  return { rows, cols: first.cols, indptr, indices, data };
}

/**
 * `.csr` file layout, version 1, all little-endian:
 *   bytes 0-3 "TCSR" | u32 version | u32 rows | u32 cols | u32 nnz
 *   | int32 indptr[rows + 1] | int32 indices[nnz] | float32 data[nnz]
 * Every section is 4-byte aligned; the file length is exactly determined by the header.
 */
const MAGIC = 'TCSR';
const VERSION = 1;
const HEADER_BYTES = 20;

function assertLittleEndianHost(): void {
  // The arrays are copied byte for byte; a big-endian host would need byte swapping, which no target needs.
  if (endianness() !== 'LE') throw new InternalError('.csr encoding is implemented for little-endian hosts only');
}

/** Serializes a matrix to the `.csr` binary format (validates it first). */
export function encodeCsr(csr: Csr): Buffer {
  assertLittleEndianHost();
  validateCsr(csr, 'encodeCsr');
  const total = nnz(csr);
  const out = Buffer.alloc(HEADER_BYTES + 4 * (csr.rows + 1) + 8 * total);
  out.write(MAGIC, 0, 'latin1');
  out.writeUInt32LE(VERSION, 4);
  out.writeUInt32LE(csr.rows, 8);
  out.writeUInt32LE(csr.cols, 12);
  out.writeUInt32LE(total, 16);
  let offset = HEADER_BYTES;
  for (const array of [csr.indptr, csr.indices, csr.data]) {
    out.set(new Uint8Array(array.buffer, array.byteOffset, array.byteLength), offset);
    offset += array.byteLength;
  }
  return out;
}

/**
 * Parses a `.csr` buffer; throws a CsrError naming `source` on a wrong magic or version, a truncated or overlong
 * buffer, or any structural violation (see validateCsr). The result owns fresh, aligned arrays.
 */
export function decodeCsr(bytes: Uint8Array, source = '.csr buffer'): Csr {
  assertLittleEndianHost();
  if (bytes.byteLength < HEADER_BYTES) {
    throw new CsrError(source, `truncated: ${bytes.byteLength} bytes, shorter than the ${HEADER_BYTES}-byte header`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const magic = String.fromCharCode(...bytes.subarray(0, 4));
  if (magic !== MAGIC) throw new CsrError(source, `not a .csr file: magic ${JSON.stringify(magic)}, expected "${MAGIC}"`);
  const version = view.getUint32(4, true);
  if (version !== VERSION) throw new CsrError(source, `unsupported .csr version ${version}, expected ${VERSION}`);
  const rows = view.getUint32(8, true);
  const cols = view.getUint32(12, true);
  const total = view.getUint32(16, true);
  for (const [name, value] of [['rows', rows], ['cols', cols], ['nnz', total]] as const) {
    if (value > MAX_INT32) throw new CsrError(source, `header ${name} ${value} exceeds the int32 range`);
  }
  const expected = HEADER_BYTES + 4 * (rows + 1) + 8 * total;
  if (bytes.byteLength !== expected) {
    const what = bytes.byteLength < expected ? 'truncated' : 'trailing bytes';
    throw new CsrError(
      source,
      `${what}: ${bytes.byteLength} bytes, expected ${expected} for ${rows} rows and ${total} non-zeros`,
    );
  }
  const indptr = new Int32Array(rows + 1);
  const indices = new Int32Array(total);
  const data = new Float32Array(total);
  let offset = HEADER_BYTES;
  for (const array of [indptr, indices, data]) {
    new Uint8Array(array.buffer).set(bytes.subarray(offset, offset + array.byteLength));
    offset += array.byteLength;
  }
  return validateCsr({ rows, cols, indptr, indices, data }, source);
}
