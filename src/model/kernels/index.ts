import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConfigError, InternalError } from '../../errors/index.js';

const here = dirname(fileURLToPath(import.meta.url));
const repoRoot = join(here, '..', '..', '..');
const SOURCE = join(here, 'assembly', 'kernels.ts');
/** Where `npm run build:kernels` (run by `npm ci` through `prepare`) puts the compiled module. */
export const KERNELS_WASM = join(repoRoot, 'dist', 'kernels.wasm');

/** The WebAssembly exports of kernels.ts (pointers are byte offsets into `memory`). */
export interface KernelExports {
  memory: WebAssembly.Memory;
  heapBase(): number;
  sparseForward(rows: number, indptr: number, indices: number, values: number, w: number, bias: number, out: number, h: number): void;
  sparseGradRows(rows: number, indptr: number, slots: number, values: number, dh: number, g: number, h: number): void;
  denseForward(x: number, w: number, bias: number, y: number, rows: number, nIn: number, nOut: number): void;
  denseGradParams(x: number, dy: number, gw: number, gb: number, rows: number, nIn: number, nOut: number): void;
  denseGradInput(x: number, dy: number, w: number, dpre: number, rows: number, nIn: number, nOut: number, scale: number): void;
  adam(n: number, w: number, g: number, m: number, v: number, stepSize: number, b1: number, b2: number, invSqrtBc2: number, eps: number): void;
  lazySparseForward(count: number, rowIds: number, colPtr: number, cscRows: number, cscVals: number, w: number, m: number, v: number, last: number, t: number, tails: number, b1: number, b2: number, eps: number, bias: number, out: number, rows: number, h: number): void;
  lazySparseBackward(count: number, rowIds: number, colPtr: number, cscRows: number, cscVals: number, dh: number, scratch: number, w: number, m: number, v: number, last: number, t: number, h: number, stepSize: number, b1: number, b2: number, invSqrtBc2: number, eps: number): void;
  adamCatchUpAll(rows: number, w: number, m: number, v: number, h: number, last: number, t: number, tails: number, b1: number, b2: number, eps: number): void;
}

/** Compiles kernels.ts when the .wasm is missing or older than its source (a checkout has only the source). */
export function buildKernels(): void {
  if (existsSync(KERNELS_WASM) && existsSync(SOURCE) && statSync(KERNELS_WASM).mtimeMs >= statSync(SOURCE).mtimeMs) return;
  if (!existsSync(SOURCE)) {
    if (existsSync(KERNELS_WASM)) return;
    throw new ConfigError(`kernel module missing: neither ${KERNELS_WASM} nor its source ${SOURCE} exists`);
  }
  const asc = join(repoRoot, 'node_modules', 'assemblyscript', 'bin', 'asc.js');
  execFileSync(process.execPath, [asc, SOURCE, '--outFile', KERNELS_WASM, '-O3', '--enable', 'simd', '--runtime', 'stub', '--noAssert'], {
    stdio: ['ignore', 'ignore', 'inherit'],
  });
}

let compiled: WebAssembly.Module | undefined;

/** A fresh kernel instance with its own memory (one per model, so models never share buffers). */
export function instantiateKernels(): KernelExports {
  if (!compiled) {
    buildKernels();
    compiled = new WebAssembly.Module(readFileSync(KERNELS_WASM));
  }
  return new WebAssembly.Instance(compiled, {
    env: {
      abort: (_msg: number, _file: number, line: number, col: number) => {
        throw new InternalError(`kernel abort at ${line}:${col}`);
      },
    },
  }).exports as unknown as KernelExports;
}

/** A handle to a region of kernel memory. */
export interface Region {
  ptr: number;
  length: number;
}

/**
 * Bump allocator over a kernel instance's memory. Views are created on demand because growing a
 * WebAssembly memory detaches every earlier view of its buffer.
 */
export class KernelHeap {
  private top: number;

  constructor(readonly k: KernelExports) {
    this.top = align(k.heapBase());
  }

  /** Reserves `length` 4-byte elements (f32 or i32), 16-byte aligned for SIMD, zero-filled. */
  alloc(length: number): Region {
    const ptr = this.top;
    this.top = align(ptr + length * 4);
    const need = this.top - this.k.memory.buffer.byteLength;
    if (need > 0) this.k.memory.grow(Math.ceil(need / 65536));
    return { ptr, length };
  }

  /** Float32 view of a region (valid until the next alloc). */
  f32(r: Region): Float32Array {
    return new Float32Array(this.k.memory.buffer, r.ptr, r.length);
  }

  /** Float64 view of a region of 2n elements (valid until the next alloc). */
  f64(r: Region): Float64Array {
    return new Float64Array(this.k.memory.buffer, r.ptr, r.length / 2);
  }

  /** Int32 view of a region (valid until the next alloc). */
  i32(r: Region): Int32Array {
    return new Int32Array(this.k.memory.buffer, r.ptr, r.length);
  }

  /** Bytes reserved so far. */
  get bytes(): number {
    return this.top;
  }
}

function align(n: number): number {
  return (n + 15) & ~15;
}
