/**
 * Runs independent tasks on a pool of `worker_threads`, retrying each task on its own.
 *
 * A task handler is a module (TypeScript or JavaScript) whose default export is a `TaskHandler`. Each worker
 * imports it once and runs tasks one at a time. A handler error, an uncaught exception or a worker exit
 * mid-task counts as a failed attempt; a dead worker is replaced. The first task to exhaust its retries
 * fails the run: tasks already running finish, no new ones start.
 */
import { availableParallelism } from 'node:os';
import { isAbsolute, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { classifyError } from '../errors/classify.js';
import { InvalidInputError, TextshiftError } from '../errors/index.js';

/** One unit of work: `id` names it in progress and errors; `input` is structured-cloned to the worker. */
export interface PoolTask<I> {
  id: string;
  input: I;
}

/** What a handler learns about the call besides its input; `attempt` counts from 1. */
export interface TaskContext {
  taskId: string;
  attempt: number;
}

/** The default export of a task handler module; its result must be structured-cloneable. */
export type TaskHandler<I, O> = (input: I, context: TaskContext) => O | Promise<O>;

/** Options of `runPool`. */
export interface PoolOptions {
  /** Path or file URL of the handler module (a .ts file works: workers load tsx). */
  handler: string | URL;
  /** Number of worker threads; default `os.availableParallelism()`, never more than the task count. */
  workers?: number;
  /** Retries after a task's first failed attempt; default 2. */
  retries?: number;
  /** Called after each task succeeds, with the number done so far. */
  onProgress?: (done: number, total: number) => void;
}

/**
 * The error of a run whose task `taskId` failed `attempts` times; `cause` is the last failure. It keeps the cause's
 * classification: retryable iff the cause is, and named as the cause's class (`TransientError`, `DataError`, ...),
 * so whoever records it by name (the local runner's MarkFailed) records what the task failed with.
 */
export class PoolTaskError extends TextshiftError {
  readonly retryable: boolean;
  /** Builds the message naming the task, its attempt count and the last cause. */
  constructor(
    readonly taskId: string,
    readonly attempts: number,
    cause: Error,
  ) {
    super(`task ${taskId} failed after ${attempts} attempt${attempts === 1 ? '' : 's'}: ${cause.message}`, { cause });
    const classified = classifyError(cause);
    this.retryable = classified.retryable;
    this.name = classified.name;
  }
}

/** Data every worker host starts with. */
export interface HostData {
  handlerUrl: string;
}

/** Message from the pool to a worker host: run one task. */
export interface ToHost {
  taskId: string;
  attempt: number;
  input: unknown;
}

/** Reply from a worker host: the task's output or its error, with its classification (`classifyError`'s name and retryable). */
export type ToPool = { ok: true; output: unknown } | { ok: false; name: string; retryable: boolean; message: string; stack: string };

/** A task's error as its worker reported it: classes do not cross threads, so it carries the classification itself. */
class ReportedTaskError extends TextshiftError {
  constructor(
    readonly retryable: boolean,
    name: string,
    message: string,
    stack: string,
  ) {
    super(message);
    this.name = name;
    this.stack = stack;
  }
}

const HOST_URL = new URL('./pool-worker.ts', import.meta.url).href;
// Node 20 ignores loader flags in a Worker's execArgv (nodejs/node#47747), and workers do not inherit the
// parent's tsx hooks, so each worker registers tsx itself before importing the TypeScript host.
const BOOTSTRAP = `import(${JSON.stringify(import.meta.resolve('tsx/esm/api'))}).then((tsx) => {
  tsx.register();
  return import(${JSON.stringify(HOST_URL)});
});`;

function toHandlerUrl(handler: string | URL): string {
  if (handler instanceof URL) return handler.href;
  if (handler.startsWith('file:')) return handler;
  return pathToFileURL(isAbsolute(handler) ? handler : resolve(handler)).href;
}

function checkCount(name: string, value: number, min: number): number {
  if (!Number.isInteger(value) || value < min) {
    throw new InvalidInputError(`runPool: ${name} must be an integer >= ${min}, got ${value}`);
  }
  return value;
}

/** Runs every task on the worker pool and returns the outputs in task order. */
export function runPool<I, O>(tasks: readonly PoolTask<I>[], options: PoolOptions): Promise<O[]> {
  const total = tasks.length;
  const retries = checkCount('retries', options.retries ?? 2, 0);
  const size = Math.min(checkCount('workers', options.workers ?? availableParallelism(), 1), total);
  const seen = new Set<string>();
  for (const task of tasks) {
    if (seen.has(task.id)) throw new InvalidInputError(`runPool: duplicate task id ${task.id}`);
    seen.add(task.id);
  }
  if (total === 0) return Promise.resolve([]);
  const workerData: HostData = { handlerUrl: toHandlerUrl(options.handler) };

  return new Promise<O[]>((resolveRun, rejectRun) => {
    const results = new Array<O>(total);
    const attempts = new Array<number>(total).fill(0);
    const queue = tasks.map((_, index) => index);
    const live = new Set<Worker>();
    const idle: Worker[] = [];
    const current = new Map<Worker, number>();
    let done = 0;
    let failure: PoolTaskError | undefined;
    let settled = false;

    const finishIfDone = (): void => {
      if (settled || current.size > 0 || (queue.length > 0 && !failure)) return;
      settled = true;
      void Promise.all([...live].map((worker) => worker.terminate())).then(() =>
        failure ? rejectRun(failure) : resolveRun(results),
      );
    };

    const taskFailed = (index: number, cause: Error): void => {
      if (failure) return;
      if (attempts[index]! <= retries) queue.unshift(index);
      else failure = new PoolTaskError(tasks[index]!.id, attempts[index]!, cause);
    };

    const assign = (worker: Worker): void => {
      const index = queue.shift()!;
      attempts[index]! += 1;
      current.set(worker, index);
      const task = tasks[index]!;
      worker.postMessage({ taskId: task.id, attempt: attempts[index]!, input: task.input } satisfies ToHost);
    };

    const spawn = (): Worker => {
      const worker = new Worker(BOOTSTRAP, { eval: true, workerData });
      let crash: Error | undefined;
      live.add(worker);
      worker.on('message', (reply: ToPool) => {
        const index = current.get(worker)!;
        current.delete(worker);
        if (reply.ok) {
          results[index] = reply.output as O;
          done += 1;
          options.onProgress?.(done, total);
        } else {
          const cause = new ReportedTaskError(reply.retryable, reply.name, reply.message, reply.stack);
          taskFailed(index, cause);
        }
        idle.push(worker);
        dispatch();
        finishIfDone();
      });
      worker.on('error', (error) => {
        crash = error;
      });
      worker.on('exit', (code) => {
        live.delete(worker);
        // A worker can also die between tasks (a stray timer throwing): it must not be handed more work.
        const idleAt = idle.indexOf(worker);
        if (idleAt >= 0) idle.splice(idleAt, 1);
        const index = current.get(worker);
        if (index === undefined || settled) return;
        current.delete(worker);
        taskFailed(index, crash ?? new Error(`worker exited with code ${code} while running the task`));
        dispatch();
        finishIfDone();
      });
      return worker;
    };

    const dispatch = (): void => {
      while (!failure && queue.length > 0) {
        const worker = idle.pop() ?? (live.size < size ? spawn() : undefined);
        if (!worker) return;
        assign(worker);
      }
    };

    dispatch();
  });
}
