import type { Tensor } from './engine.js';
import { InvalidDataError } from '../errors/index.js';

/**
 * The safetensors format (8-byte little-endian header length, JSON header, raw little-endian data): a
 * data-only checkpoint format that PyTorch, NumPy and JAX users can load, never executed. Our own few lines
 * because only float32 tensors are needed and the npm packages target browsers or bring native code.
 */

const MAX_HEADER = 16 * 1024 * 1024;

/** Encodes named float32 tensors (and string metadata) as a safetensors file. */
export function encodeSafetensors(tensors: Map<string, Tensor>, metadata: Record<string, string> = {}): Buffer {
  return Buffer.concat(safetensorsParts(tensors, metadata));
}

/**
 * The bytes of encodeSafetensors as a list: the header, then each tensor's data as a view of its own memory (no
 * copy), for writers that stream them; the tensors must not change until the parts are written.
 */
export function safetensorsParts(tensors: Map<string, Tensor>, metadata: Record<string, string> = {}): Buffer[] {
  const header: Record<string, unknown> = { __metadata__: metadata };
  let offset = 0;
  for (const [name, t] of tensors) {
    const bytes = t.data.length * 4;
    header[name] = { dtype: 'F32', shape: t.shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (json.length % 8)) % 8);
  const head = Buffer.from(json, 'utf8');
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(head.length), 0);
  return [length, head, ...[...tensors.values()].map((t) => Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength))];
}

/**
 * Decodes a safetensors file of float32 tensors, validating header, shapes and offsets; `source` names it in errors.
 * With `select`, only the tensors it accepts are decoded and checked; the others (of any dtype) are listed in `skipped`.
 */
export function decodeSafetensors(
  buf: Buffer,
  source: string,
  select: (name: string) => boolean = () => true,
): { tensors: Map<string, Tensor>; metadata: Record<string, string>; skipped: string[] } {
  const fail = (why: string): never => {
    throw new InvalidDataError(`${source}: not a valid safetensors checkpoint: ${why}`);
  };
  if (buf.length < 8) fail('shorter than its 8-byte header length');
  const headerLen = Number(buf.readBigUInt64LE(0));
  if (headerLen > MAX_HEADER || 8 + headerLen > buf.length) fail(`header length ${headerLen} exceeds the file`);
  let header: Record<string, unknown>;
  try {
    header = JSON.parse(buf.subarray(8, 8 + headerLen).toString('utf8')) as Record<string, unknown>;
  } catch {
    return fail('header is not JSON');
  }
  const dataStart = 8 + headerLen;
  const dataLen = buf.length - dataStart;
  const tensors = new Map<string, Tensor>();
  let metadata: Record<string, string> = {};
  const skipped: string[] = [];
  for (const [name, entry] of Object.entries(header)) {
    if (name === '__metadata__') {
      metadata = (entry ?? {}) as Record<string, string>;
      continue;
    }
    if (!select(name)) {
      skipped.push(name);
      continue;
    }
    const e = entry as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (e.dtype !== 'F32') fail(`tensor "${name}" has dtype ${String(e.dtype)}, expected F32`);
    const shape = e.shape;
    if (!Array.isArray(shape) || !shape.every((d) => Number.isInteger(d) && d >= 0)) fail(`tensor "${name}" has an invalid shape`);
    const offs = e.data_offsets;
    if (!Array.isArray(offs) || offs.length !== 2 || !offs.every((o) => Number.isInteger(o))) fail(`tensor "${name}" has invalid data_offsets`);
    const [begin, end] = offs as [number, number];
    const count = (shape as number[]).reduce((a, b) => a * b, 1);
    if (begin < 0 || end > dataLen || end - begin !== count * 4) fail(`tensor "${name}" offsets [${begin}, ${end}] do not fit its shape or the file`);
    // Copy so the tensor owns aligned memory independent of the file buffer.
    const data = new Float32Array(count);
    Buffer.from(data.buffer).set(buf.subarray(dataStart + begin, dataStart + end));
    tensors.set(name, { shape: shape as number[], data });
  }
  return { tensors, metadata, skipped };
}
