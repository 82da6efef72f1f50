import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { InternalError, InvalidInputError } from '../../errors/index.js';
import type { KernelExports, KernelHeap, Region } from './index.js';

/** Operation codes of the kernels' `runPart` (kernels.ts). */
export const OP = {
  sparseForward: 1,
  sparseGradRows: 2,
  denseForward: 3,
  denseBackward: 4,
  adam: 5,
  lazyForward: 6,
  lazyBackward: 7,
} as const;

/** Environment variable that sets the training threads per model (default: every core this process may use). */
export const TRAIN_THREADS_ENV = 'TEXTSHIFT_TRAIN_THREADS';

/** Training threads per model: `TEXTSHIFT_TRAIN_THREADS` when set, else `os.availableParallelism()`. */
export function defaultTrainThreads(): number {
  const raw = process.env[TRAIN_THREADS_ENV];
  if (raw === undefined || raw === '') return availableParallelism();
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1) throw new InvalidInputError(`${TRAIN_THREADS_ENV} must be a positive integer, got "${raw}"`);
  return n;
}

// Control slots (Int32) shared with the workers.
const SEQ = 0;
const DONE = 1;
const FAILED = 2;
const QUIT = 3;
/** Non-zero while the calling thread holds the team (hold()): more operations follow shortly, so workers keep spinning. */
const HOLD = 4;
/**
 * Microseconds a thread busy-waits for the other side before sleeping on a futex (unless the team is held): about
 * the wake-up latency it saves; longer spins steal the core from the thread being waited for when the machine has
 * other work.
 */
const SPIN_MICROS = 60;

// The worker: its own instance of the kernels on the shared memory, running its part of each posted operation.
// Plain JavaScript (eval), so it needs no TypeScript loader. A failure is flagged in shared memory, where the
// blocked main thread sees it.
const WORKER_SOURCE = `
const { workerData: d } = require('node:worker_threads');
const ctrl = new Int32Array(d.memory.buffer, d.ctrl, 5);
try {
  const abort = () => { throw new Error('kernel abort'); };
  const k = new WebAssembly.Instance(d.module, { env: { memory: d.memory, abort } }).exports;
  let seen = d.seq;
  for (;;) {
    const since = performance.now();
    let spins = 0;
    while (Atomics.load(ctrl, ${SEQ}) === seen) {
      if ((++spins & 127) === 0 && Atomics.load(ctrl, ${HOLD}) === 0 && performance.now() - since > ${SPIN_MICROS / 1000}) {
        Atomics.wait(ctrl, ${SEQ}, seen);
      }
    }
    seen = Atomics.load(ctrl, ${SEQ});
    if (Atomics.load(ctrl, ${QUIT}) !== 0) break;
    k.runPart(d.args, d.part, d.parts);
    Atomics.add(ctrl, ${DONE}, 1);
    Atomics.notify(ctrl, ${DONE});
  }
} catch (e) {
  console.error('textshift training worker thread failed:', e);
  Atomics.store(ctrl, ${FAILED}, 1);
  Atomics.notify(ctrl, ${DONE});
}`;

/**
 * Runs kernel operations split across `threads` threads on one shared WebAssembly memory: the calling thread
 * takes part 0 and worker threads (started on first parallel use) the others, meeting at a barrier (Atomics) after
 * each operation. Parts compute disjoint outputs with the same arithmetic, so results do not depend on `threads`;
 * with 1 no worker exists. Arguments are written into a block of kernel memory with the chained setters.
 */
export class KernelTeam {
  private readonly ctrlRegion: Region;
  private readonly ctrl: Int32Array;
  private readonly argsRegion: Region;
  private readonly ints: Int32Array;
  private readonly floats: Float32Array;
  private cursor = 0;
  /** Slot of the operation being described, or -1 when the next op() starts a new list. */
  private current = -1;
  private workers: Worker[] = [];

  constructor(
    private readonly k: KernelExports,
    heap: KernelHeap,
    private readonly module: WebAssembly.Module,
    readonly threads: number,
    argSlots: number,
  ) {
    if (!Number.isInteger(threads) || threads < 1) throw new InvalidInputError(`training threads must be a positive integer, got ${threads}`);
    this.ctrlRegion = heap.alloc(5);
    this.argsRegion = heap.alloc(argSlots);
    // Views of a shared memory stay valid when it grows (only the length of later views changes).
    this.ctrl = heap.i32(this.ctrlRegion);
    this.ints = heap.i32(this.argsRegion);
    this.floats = heap.f32(this.argsRegion);
  }

  /** Starts describing operation `op` (a code of OP): a new list after run(), else one more independent operation. */
  op(op: number): this {
    if (this.current < 0) this.cursor = 0;
    else this.close();
    this.current = this.cursor;
    this.ints[this.cursor] = op;
    this.cursor += 2;
    return this;
  }

  /** Appends an integer or pointer argument. */
  i(value: number): this {
    this.ints[this.cursor++] = value;
    return this;
  }

  /** Appends a float32 argument. */
  f(value: number): this {
    this.floats[this.cursor++] = value;
    return this;
  }

  /** Runs the described operations: split across the team when `parallel` (worth a barrier), else on this thread. */
  run(parallel: boolean): void {
    this.close();
    if (this.cursor >= this.ints.length) throw new InternalError(`kernel argument block of ${this.ints.length} slots overflowed`);
    this.ints[this.cursor] = 0;
    this.current = -1;
    if (!parallel || this.threads === 1) {
      this.k.runPart(this.argsRegion.ptr, 0, 1);
      return;
    }
    this.start();
    const ctrl = this.ctrl;
    Atomics.store(ctrl, DONE, 0);
    Atomics.add(ctrl, SEQ, 1);
    Atomics.notify(ctrl, SEQ);
    this.k.runPart(this.argsRegion.ptr, 0, this.threads);
    const others = this.threads - 1;
    const since = performance.now();
    let spins = 0;
    let done: number;
    while ((done = Atomics.load(ctrl, DONE)) !== others) {
      if (Atomics.load(ctrl, FAILED) !== 0) throw new InternalError('a training worker thread failed (its error is on stderr)');
      if ((++spins & 127) === 0 && performance.now() - since > SPIN_MICROS / 1000) Atomics.wait(ctrl, DONE, done, 100);
    }
  }

  /**
   * Declares that operations follow in quick succession (a training step) until release(): the workers are woken
   * now, while the caller still prepares the first one, and spin between operations instead of sleeping on a futex.
   * A step has gaps of 0.1-0.3 ms of single-threaded work between its parallel operations, longer than the spin, and
   * a worker woken from the futex started each operation about 70 us late (BoW IMDB step on 2 threads: 0.28-0.33 ms
   * a step lost, 0.06-0.08 ms held). No-op until a parallel operation has started the workers.
   */
  hold(): void {
    if (this.workers.length === 0) return;
    Atomics.store(this.ctrl, HOLD, 1);
    Atomics.notify(this.ctrl, SEQ);
  }

  /** Ends hold(): idle workers go back to sleeping after the short spin. */
  release(): void {
    if (this.workers.length > 0) Atomics.store(this.ctrl, HOLD, 0);
  }

  // Records the argument count of the operation being described.
  private close(): void {
    if (this.current >= 0) this.ints[this.current + 1] = this.cursor - this.current - 2;
  }

  private start(): void {
    if (this.workers.length > 0) return;
    const seq = Atomics.load(this.ctrl, SEQ);
    for (let part = 1; part < this.threads; part++) {
      const worker = new Worker(WORKER_SOURCE, {
        eval: true,
        workerData: { module: this.module, memory: this.k.memory, ctrl: this.ctrlRegion.ptr, args: this.argsRegion.ptr, seq, part, parts: this.threads },
      });
      // A model that is never disposed must not keep the process alive.
      worker.unref();
      this.workers.push(worker);
    }
  }

  /** Stops the worker threads. */
  dispose(): void {
    if (this.workers.length === 0) return;
    Atomics.store(this.ctrl, QUIT, 1);
    Atomics.add(this.ctrl, SEQ, 1);
    Atomics.notify(this.ctrl, SEQ);
    this.workers = [];
  }
}
