/**
 * Worker-thread host for `runPool`: imports the task handler module once, then runs one task per message.
 * A handler's thrown error is reported back (the worker stays usable); a crash or `process.exit` ends the
 * thread and the pool replaces it.
 */
import { parentPort, workerData } from 'node:worker_threads';
import type { HostData, TaskHandler, ToHost, ToPool } from './pool.js';
import { classifyError } from '../errors/classify.js';
import { InternalError } from '../errors/index.js';

const port = parentPort;
if (!port) throw new InternalError('pool-worker.ts must be started as a worker thread by runPool');

const { handlerUrl } = workerData as HostData;
const loaded = (await import(handlerUrl)) as { default?: unknown };
if (typeof loaded.default !== 'function') {
  throw new InternalError(`task handler module ${handlerUrl} must export a default function (input, context) => output`);
}
const handle = loaded.default as TaskHandler<unknown, unknown>;

port.on('message', async (message: ToHost) => {
  let reply: ToPool;
  try {
    reply = { ok: true, output: await handle(message.input, { taskId: message.taskId, attempt: message.attempt }) };
  } catch (error) {
    const cause = error instanceof Error ? error : new Error(String(error));
    const { name, retryable } = classifyError(error);
    reply = { ok: false, name, retryable, message: cause.message, stack: cause.stack ?? '' };
  }
  try {
    port.postMessage(reply);
  } catch (error) {
    // An output that cannot be structured-cloned (a function, a class instance with handles) fails the attempt.
    const message = `task output cannot be sent to the pool: ${(error as Error).message}`;
    port.postMessage({ ok: false, name: InternalError.name, retryable: false, message, stack: '' } satisfies ToPool);
  }
});
