import { readFile, rename, rm, writeFile } from 'node:fs/promises';
import { endianness } from 'node:os';
import { randomBytes } from 'node:crypto';
import { InternalError, InvalidDataError } from '../errors/index.js';

/**
 * NumPy .npy (format 1.0) for 2-D little-endian float32 matrices in C order — the feature cache format, loadable with
 * `numpy.load`. Reading accepts exactly that layout and parses the header as data (never evaluated).
 */

const MAGIC = Buffer.from([0x93, ...Buffer.from('NUMPY', 'latin1')]);
/** numpy aligns the data start to 64 bytes. */
const ALIGN = 64;

/** A row-major float32 matrix. */
export interface Float32Matrix {
  data: Float32Array;
  rows: number;
  cols: number;
}

/** Encodes a [rows × cols] float32 matrix as .npy bytes (byte-identical to numpy.save of a '<f4' C array). */
export function encodeNpy({ data, rows, cols }: Float32Matrix): Buffer {
  assertLittleEndianHost();
  if (!Number.isInteger(rows) || !Number.isInteger(cols) || rows < 0 || cols < 0) {
    throw new InternalError(`npy shape must be non-negative integers, got (${rows}, ${cols})`);
  }
  if (data.length !== rows * cols) {
    throw new InternalError(`npy data has ${data.length} values, shape (${rows}, ${cols}) needs ${rows * cols}`);
  }
  const dict = `{'descr': '<f4', 'fortran_order': False, 'shape': (${rows}, ${cols}), }`;
  const unpadded = MAGIC.length + 2 + 2 + dict.length + 1;
  const padding = (ALIGN - (unpadded % ALIGN)) % ALIGN;
  const header = `${dict}${' '.repeat(padding)}\n`;
  const prefix = Buffer.alloc(MAGIC.length + 4);
  MAGIC.copy(prefix, 0);
  prefix[6] = 1; // major version
  prefix[7] = 0; // minor version
  prefix.writeUInt16LE(header.length, 8);
  return Buffer.concat([prefix, Buffer.from(header, 'latin1'), Buffer.from(data.buffer, data.byteOffset, data.byteLength)]);
}

/** Decodes .npy bytes holding a 2-D '<f4' C-order array; `source` names the file in errors. */
export function decodeNpy(bytes: Uint8Array, source = '.npy data'): Float32Matrix {
  assertLittleEndianHost();
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (buf.length < 10 || !buf.subarray(0, 6).equals(MAGIC)) throw new InvalidDataError(`${source}: not a .npy file (bad magic)`);
  if (buf[6] !== 1 || buf[7] !== 0) throw new InvalidDataError(`${source}: .npy format ${buf[6]}.${buf[7]}, expected 1.0`);
  const headerLength = buf.readUInt16LE(8);
  const dataStart = 10 + headerLength;
  if (buf.length < dataStart) throw new InvalidDataError(`${source}: truncated .npy header`);
  const header = buf.subarray(10, dataStart).toString('latin1');
  const { rows, cols } = parseHeader(header, source);
  const byteLength = rows * cols * 4;
  if (buf.length - dataStart !== byteLength) {
    throw new InvalidDataError(
      `${source}: shape (${rows}, ${cols}) needs ${byteLength} data bytes, file has ${buf.length - dataStart}`,
    );
  }
  // Copy so the result is 4-byte aligned and independent of the (possibly pooled) input buffer.
  const data = new Float32Array(rows * cols);
  new Uint8Array(data.buffer).set(buf.subarray(dataStart));
  return { data, rows, cols };
}

/** Writes a matrix to a .npy file atomically (temp file, then rename). */
export async function writeNpyFile(path: string, matrix: Float32Matrix): Promise<void> {
  const tmp = `${path}.partial-${randomBytes(4).toString('hex')}`;
  try {
    await writeFile(tmp, encodeNpy(matrix));
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}

/** Reads a 2-D float32 .npy file. */
export async function readNpyFile(path: string): Promise<Float32Matrix> {
  return decodeNpy(await readFile(path), path);
}

/** Parses the header dict; only the exact keys and values of a 2-D '<f4' C-order array are accepted. */
function parseHeader(header: string, source: string): { rows: number; cols: number } {
  const match = /^\{(.*)\}\s*\n$/s.exec(header);
  if (!match) throw new InvalidDataError(`${source}: .npy header is not a dict ending in a newline`);
  const entries = new Map<string, string>();
  const entry = /\s*'([a-z_]+)'\s*:\s*('[^']*'|True|False|\([^()]*\))\s*(?:,|$)/y;
  const body = match[1]!.trim();
  while (entry.lastIndex < body.length) {
    const start = entry.lastIndex;
    const m = entry.exec(body);
    if (!m) throw new InvalidDataError(`${source}: cannot parse .npy header near "${body.slice(start, start + 30)}"`);
    if (entries.has(m[1]!)) throw new InvalidDataError(`${source}: .npy header repeats key '${m[1]}'`);
    entries.set(m[1]!, m[2]!);
  }
  const keys = [...entries.keys()].sort().join(', ');
  if (keys !== 'descr, fortran_order, shape') {
    throw new InvalidDataError(`${source}: .npy header keys are ${keys}, expected descr, fortran_order, shape`);
  }
  if (entries.get('descr') !== "'<f4'") {
    throw new InvalidDataError(`${source}: .npy dtype ${entries.get('descr')}, expected '<f4' (little-endian float32)`);
  }
  if (entries.get('fortran_order') !== 'False') throw new InvalidDataError(`${source}: .npy array is Fortran-ordered, expected C order`);
  const shape = /^\(\s*(\d+)\s*,\s*(\d+)\s*,?\s*\)$/.exec(entries.get('shape')!);
  if (!shape) throw new InvalidDataError(`${source}: .npy shape ${entries.get('shape')}, expected 2-D (rows, cols)`);
  const rows = Number(shape[1]);
  const cols = Number(shape[2]);
  if (!Number.isSafeInteger(rows * cols * 4)) throw new InvalidDataError(`${source}: .npy shape (${rows}, ${cols}) is too large`);
  return { rows, cols };
}

function assertLittleEndianHost(): void {
  if (endianness() !== 'LE') throw new InternalError('.npy float32 I/O here assumes a little-endian host');
}
