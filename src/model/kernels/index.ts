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

/** Upper bound of a kernel memory in 64 KiB pages (4 GiB, all of wasm32): address space, not resident memory. */
const MAX_PAGES = 65536;

/** The WebAssembly exports of kernels.ts (pointers are byte offsets into `memory`). */
export interface KernelExports {
  memory: WebAssembly.Memory;
  heapBase(): number;
  runPart(args: number, part: number, parts: number): void;
  lazyMarkRows(count: number, rowIds: number, last: number, t: number): void;
  batchColumns(
    rows: number, indptr: number, indices: number, values: number, columns: number, pos: number,
    rowIds: number, colPtr: number, cscRows: number, cscVals: number,
  ): number;
  dropoutRelu(a: number, n: number, threshold: number, scale: number, state: number): void;
  relu(a: number, n: number): void;
  addInto(a: number, b: number, n: number): void;
  fillDecay(decay: number, from: number, to: number, b1: number, b2: number, eps: number): void;
  adamCatchUpAll(rows: number, w: number, m: number, v: number, h: number, last: number, t: number, tails: number, decay: number): void;
}

/**
 * Compiler flags, as in package.json's build:kernels: SIMD, and an imported shared memory (threads) so that
 * worker threads can run parts of an operation on it (team.ts).
 */
const ASC_FLAGS = ['-O3', '--enable', 'simd', '--enable', 'threads', '--importMemory', '--sharedMemory', '--maximumMemory', String(MAX_PAGES), '--runtime', 'stub', '--noAssert'];

/** Compiles kernels.ts when the .wasm is missing or older than its source (a checkout has only the source). */
export function buildKernels(): void {
  if (existsSync(KERNELS_WASM) && existsSync(SOURCE) && statSync(KERNELS_WASM).mtimeMs >= statSync(SOURCE).mtimeMs) return;
  if (!existsSync(SOURCE)) {
    if (existsSync(KERNELS_WASM)) return;
    throw new ConfigError(`kernel module missing: neither ${KERNELS_WASM} nor its source ${SOURCE} exists`);
  }
  const asc = join(repoRoot, 'node_modules', 'assemblyscript', 'bin', 'asc.js');
  execFileSync(process.execPath, [asc, SOURCE, '--outFile', KERNELS_WASM, ...ASC_FLAGS], {
    stdio: ['ignore', 'ignore', 'inherit'],
  });
}

let compiled: WebAssembly.Module | undefined;

/** The compiled kernel module (for worker threads to instantiate on the same memory). */
export function kernelModule(): WebAssembly.Module {
  if (!compiled) {
    buildKernels();
    compiled = new WebAssembly.Module(readFileSync(KERNELS_WASM));
  }
  return compiled;
}

/** A fresh kernel instance with its own shared memory (one per model, so models never share buffers). */
export function instantiateKernels(): KernelExports {
  const memory = new WebAssembly.Memory({ initial: 1, maximum: MAX_PAGES, shared: true });
  const exports = new WebAssembly.Instance(kernelModule(), {
    env: {
      memory,
      abort: (_msg: number, _file: number, line: number, col: number) => {
        throw new InternalError(`kernel abort at ${line}:${col}`);
      },
    },
  }).exports;
  return { ...(exports as unknown as Omit<KernelExports, 'memory'>), memory };
}

/** A handle to a region of kernel memory. */
export interface Region {
  ptr: number;
  length: number;
}

/**
 * Bump allocator over a kernel instance's memory. Views are created on demand because after the memory grows
 * `memory.buffer` is a new, longer buffer (earlier views of the shared memory stay valid but keep their length).
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

  /** Float32 view of a region. */
  f32(r: Region): Float32Array {
    return new Float32Array(this.k.memory.buffer, r.ptr, r.length);
  }

  /** Float64 view of a region of 2n elements. */
  f64(r: Region): Float64Array {
    return new Float64Array(this.k.memory.buffer, r.ptr, r.length / 2);
  }

  /** Int32 view of a region. */
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
