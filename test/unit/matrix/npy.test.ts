import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeNpy, encodeNpy, readNpyFile, writeNpyFile } from '../../../src/matrix/npy.js';

// numpy is the independent reader when python3 has it; the exact-bytes test below runs either way.
const hasNumpy = spawnSync('python3', ['-c', 'import numpy'], { stdio: 'ignore' }).status === 0;

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'npy-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const matrix = { data: Float32Array.from([0, 1.5, -2.25, 3e-8, 1e30, -0]), rows: 2, cols: 3 };

function withHeader(header: string, dataBytes: number): Buffer {
  const prefix = Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0, 0, 0]);
  prefix.writeUInt16LE(header.length, 8);
  return Buffer.concat([prefix, Buffer.from(header, 'latin1'), Buffer.alloc(dataBytes)]);
}

describe('.npy float32 matrices', () => {
  it('writes the exact bytes numpy.save writes for a (2, 3) <f4 array (format 1.0, 64-byte aligned header)', () => {
    const bytes = encodeNpy(matrix);
    const header = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }";
    // Header from numpy 2.4 np.save(np.zeros((2, 3), '<f4')): 118 bytes = dict, spaces, newline; 10 + 118 = 128.
    const expected = Buffer.concat([
      Buffer.from([0x93]),
      Buffer.from('NUMPY', 'latin1'),
      Buffer.from([1, 0, 118, 0]),
      Buffer.from(`${header}${' '.repeat(118 - header.length - 1)}\n`, 'latin1'),
    ]);
    expect(bytes.subarray(0, 128).equals(expected)).toBe(true);
    expect(bytes.length).toBe(128 + 6 * 4);
    expect(bytes.readFloatLE(128 + 2 * 4)).toBe(-2.25);
  });

  it('round-trips values bit for bit, including empty matrices', async () => {
    const path = join(dir, 'm.npy');
    await writeNpyFile(path, matrix);
    const back = await readNpyFile(path);
    expect(back.rows).toBe(2);
    expect(back.cols).toBe(3);
    expect(Buffer.from(back.data.buffer).equals(Buffer.from(matrix.data.buffer))).toBe(true);
    const empty = decodeNpy(encodeNpy({ data: new Float32Array(0), rows: 0, cols: 768 }));
    expect([empty.rows, empty.cols, empty.data.length]).toEqual([0, 768, 0]);
    expect((await readdir(dir)).filter((f) => f.includes('partial'))).toEqual([]);
  });

  it.skipIf(!hasNumpy)('is read by numpy.load, and reads what numpy.save writes', async () => {
    const ours = join(dir, 'ours.npy');
    await writeNpyFile(ours, matrix);
    // numpy reports dtype, shape, C order and the exact float32 bit patterns it read.
    const script = `import numpy as np, sys
a = np.load(sys.argv[1], allow_pickle=False)
print(a.dtype.str, a.shape, a.flags['C_CONTIGUOUS'], ' '.join('%08x' % v for v in a.view('<u4').ravel()))
np.save(sys.argv[2], np.arange(12, dtype='<f4').reshape(4, 3) / 8)`;
    const theirs = join(dir, 'theirs.npy');
    const out = execFileSync('python3', ['-c', script, ours, theirs], { encoding: 'utf8' }).trim();
    const bits = Array.from(new Uint32Array(matrix.data.buffer), (v) => v.toString(16).padStart(8, '0'));
    expect(out).toBe(`<f4 (2, 3) True ${bits.join(' ')}`);
    const read = await readNpyFile(theirs);
    expect([read.rows, read.cols]).toEqual([4, 3]);
    expect(Array.from(read.data)).toEqual(Array.from({ length: 12 }, (_, i) => i / 8));
  });

  it('rejects anything but a 2-D little-endian float32 C-order array, naming the file', async () => {
    const bad = (header: string, dataBytes = 24) => () => decodeNpy(withHeader(header, dataBytes), 'x.npy');
    expect(() => decodeNpy(Buffer.from('PK\u0003\u0004 not numpy'), 'x.npy')).toThrow(/x\.npy: not a \.npy file/);
    expect(bad("{'descr': '<f8', 'fortran_order': False, 'shape': (2, 3), }\n", 48)).toThrow(/dtype '<f8'/);
    expect(bad("{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }\n")).toThrow(/Fortran-ordered/);
    expect(bad("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3, 1), }\n")).toThrow(/expected 2-D/);
    expect(bad("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }\n", 20)).toThrow(
      /needs 24 data bytes, file has 20/,
    );
    expect(bad("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), 'x': __import__('os'), }\n")).toThrow(
      /cannot parse \.npy header/,
    );
    expect(bad("{'descr': '|O', 'fortran_order': False, 'shape': (2, 3), }\n")).toThrow(/dtype '\|O'/);
    const v2 = withHeader("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }\n", 24);
    v2[6] = 2;
    expect(() => decodeNpy(v2, 'x.npy')).toThrow(/format 2\.0, expected 1\.0/);
    await writeFile(join(dir, 'short.npy'), Buffer.from([0x93, 0x4e]));
    await expect(readNpyFile(join(dir, 'short.npy'))).rejects.toThrow(/short\.npy: not a \.npy file/);
  });
});
