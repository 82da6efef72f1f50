import { describe, expect, it } from 'vitest';
import {
  concatRows,
  CsrBuilder,
  CsrError,
  decodeCsr,
  emptyCsr,
  encodeCsr,
  gatherRows,
  nnz,
  sliceRows,
  validateCsr,
  type Csr,
} from '../../../src/matrix/csr.js';

/** Rows given as [column, value] pairs. */
function csrOf(cols: number, rows: [number, number][][]): Csr {
  const builder = new CsrBuilder(cols);
  for (const row of rows) {
    for (const [c, v] of row) builder.push(c, v);
    builder.endRow();
  }
  return builder.finish();
}

function rowsOf(csr: Csr): [number, number][][] {
  return Array.from({ length: csr.rows }, (_, r) => {
    const out: [number, number][] = [];
    for (let p = csr.indptr[r]!; p < csr.indptr[r + 1]!; p++) out.push([csr.indices[p]!, csr.data[p]!]);
    return out;
  });
}

const m = csrOf(5, [[[0, 1], [3, 2]], [], [[4, 0.5]], [[1, 1], [2, 1], [4, 7]]]);

describe('CSR helpers', () => {
  it('builds rows with their entries', () => {
    expect(m.rows).toBe(4);
    expect(nnz(m)).toBe(6);
    expect(Array.from(m.indptr)).toEqual([0, 2, 2, 3, 6]);
    expect(validateCsr(m)).toBe(m);
    expect(emptyCsr(3, 5)).toEqual({ rows: 3, cols: 5, indptr: new Int32Array(4), indices: new Int32Array(0), data: new Float32Array(0) });
  });

  it('slices a row range', () => {
    const s = sliceRows(m, 1, 4);
    expect(rowsOf(s)).toEqual(rowsOf(m).slice(1, 4));
    expect(validateCsr(s).cols).toBe(5);
    expect(sliceRows(m, 2, 2).rows).toBe(0);
    expect(() => sliceRows(m, 3, 5)).toThrow(/range \[3, 5\) is not within \[0, 4\]/);
  });

  it('gathers rows in the given order, with repeats, into an independent copy', () => {
    const g = gatherRows(m, [3, 0, 3, 1]);
    expect(rowsOf(g)).toEqual([rowsOf(m)[3], rowsOf(m)[0], rowsOf(m)[3], []]);
    validateCsr(g);
    g.data[0] = 99;
    expect(m.data[3]).toBe(1);
    expect(gatherRows(m, new Int32Array(0)).rows).toBe(0);
    expect(() => gatherRows(m, [0, 4])).toThrow(/row id 4 at position 1 is not within \[0, 4\)/);
  });

  it('concatenates matrices by rows', () => {
    const c = concatRows([sliceRows(m, 0, 1), sliceRows(m, 1, 1), sliceRows(m, 1, 4)]);
    expect(c).toEqual(m);
    expect(concatRows([m, m]).rows).toBe(8);
    expect(rowsOf(concatRows([m, m])).slice(4)).toEqual(rowsOf(m));
    expect(() => concatRows([m, csrOf(6, [[]])])).toThrow(/matrix 1 has 6 columns, expected 5/);
    expect(() => concatRows([])).toThrow(/no matrices/);
  });

  it('finds broken structure', () => {
    const broken = (patch: Partial<Csr>) => () => validateCsr({ ...m, ...patch }, 'x.csr');
    expect(broken({ indices: Int32Array.from([0, 5, 4, 1, 2, 4]) })).toThrow(/x\.csr: row 0: column index 5 outside \[0, 5\)/);
    expect(broken({ indices: Int32Array.from([3, 0, 4, 1, 2, 4]) })).toThrow(/row 0: column indices not strictly ascending \(3 then 0\)/);
    expect(broken({ indices: Int32Array.from([0, 3, 4, 1, 1, 4]) })).toThrow(/row 3: column indices not strictly ascending/);
    expect(broken({ indptr: Int32Array.from([0, 3, 2, 3, 6]) })).toThrow(/indptr decreases at row 1/);
    expect(broken({ indptr: Int32Array.from([0, 2, 2, 3, 5]) })).toThrow(/indptr\[4\] = 5 but indices has 6/);
    expect(broken({ rows: 5 })).toThrow(/indptr has 5 entries, expected rows \+ 1 = 6/);
    expect(broken({ data: Float32Array.from([1, NaN, 1, 1, 1, 1]) })).toThrow(/row 0, column 3: value NaN is not finite/);
  });
});

describe('.csr encoding', () => {
  it('round-trips a matrix, including from an unaligned buffer', () => {
    const bytes = encodeCsr(m);
    expect(bytes.byteLength).toBe(20 + 4 * 5 + 8 * 6);
    expect(bytes.subarray(0, 4).toString('latin1')).toBe('TCSR');
    expect(decodeCsr(bytes)).toEqual(m);
    const shifted = Buffer.alloc(bytes.length + 1);
    bytes.copy(shifted, 1);
    expect(decodeCsr(shifted.subarray(1))).toEqual(m);
    expect(decodeCsr(encodeCsr(emptyCsr(0, 10)))).toEqual(emptyCsr(0, 10));
  });

  it('encodes subarray views by their own contents', () => {
    const s = sliceRows(m, 3, 4);
    const view: Csr = { ...s, indices: new Int32Array([9, ...s.indices]).subarray(1), data: new Float32Array([9, ...s.data]).subarray(1) };
    expect(decodeCsr(encodeCsr(view))).toEqual(s);
  });

  it('writes header fields little-endian', () => {
    const view = new DataView(encodeCsr(m).buffer);
    expect([1, 2, 3, 4].map((i) => view.getUint32(4 * i, true))).toEqual([1, 4, 5, 6]);
  });

  it('rejects corrupt, truncated or foreign buffers with a clear error', () => {
    const good = encodeCsr(m);
    const corrupt = (offset: number, value: number) => {
      const b = Buffer.from(good);
      b.writeInt32LE(value, offset);
      return b;
    };
    expect(() => decodeCsr(good.subarray(0, 10), 'cache/x.csr')).toThrow(CsrError);
    expect(() => decodeCsr(good.subarray(0, 10), 'cache/x.csr')).toThrow(/^cache\/x\.csr: truncated: 10 bytes, shorter than the 20-byte header/);
    expect(() => decodeCsr(good.subarray(0, good.length - 1))).toThrow(/truncated: 87 bytes, expected 88 for 4 rows and 6 non-zeros/);
    expect(() => decodeCsr(Buffer.concat([good, Buffer.alloc(4)]))).toThrow(/trailing bytes: 92 bytes, expected 88/);
    expect(() => decodeCsr(Buffer.from('PK\x03\x04 not a csr file at all'))).toThrow(/not a \.csr file: magic "PK\\u0003\\u0004"/);
    expect(() => decodeCsr(corrupt(4, 2))).toThrow(/unsupported \.csr version 2, expected 1/);
    expect(() => decodeCsr(corrupt(16, -1))).toThrow(/header nnz 4294967295 exceeds the int32 range/);
    expect(() => decodeCsr(corrupt(12, 4))).toThrow(/row 2: column index 4 outside \[0, 4\)/);
    expect(() => decodeCsr(corrupt(20 + 4 * 2, 1))).toThrow(/indptr decreases at row 1/);
    expect(() => decodeCsr(corrupt(20 + 20, -3))).toThrow(/row 0: column index -3 outside/);
  });
});
