/** Task handler used by pool.test.ts: each mode is one way a real shard task behaves or fails. */
import { appendFileSync } from 'node:fs';
import { threadId } from 'node:worker_threads';
import { InvalidDataError } from '../../../src/errors/index.js';
import type { TaskHandler } from '../../../src/workflow/pool.js';

export interface FixtureInput {
  mode: 'ok' | 'throw-once' | 'exit-once' | 'always-throw' | 'always-reset' | 'always-bad-data' | 'uncloneable';
  value: number;
  /** File that gets one line per attempt start ("<id> start <attempt> <thread>") and per success ("<id> end"). */
  log: string;
  sleepMs?: number;
}

export interface FixtureOutput {
  value: number;
  threadId: number;
  start: number;
  end: number;
}

const handler: TaskHandler<FixtureInput, FixtureOutput> = async (input, { taskId, attempt }) => {
  const start = Date.now();
  appendFileSync(input.log, `${taskId} start ${attempt} ${threadId}\n`);
  if (input.sleepMs) await new Promise((resolve) => setTimeout(resolve, input.sleepMs));
  if (input.mode === 'always-throw') throw new Error('always broken');
  // A dropped connection as Node raises it (transient), and a permanent error of ours.
  if (input.mode === 'always-reset') throw Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET', errno: -104, syscall: 'read' });
  if (input.mode === 'always-bad-data') throw new InvalidDataError('cache/features/x.csr: truncated');
  if (input.mode === 'throw-once' && attempt === 1) throw new Error('transient failure');
  if (input.mode === 'exit-once' && attempt === 1) process.exit(1);
  if (input.mode === 'uncloneable') return { value: () => input.value } as unknown as FixtureOutput;
  appendFileSync(input.log, `${taskId} end\n`);
  return { value: input.value * 2, threadId, start, end: Date.now() };
};

export default handler;
