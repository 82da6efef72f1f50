import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { PoolTaskError, runPool, type PoolTask } from '../../../src/workflow/pool.js';
import type { FixtureInput, FixtureOutput } from './pool-fixture-handler.js';

const handler = new URL('./pool-fixture-handler.ts', import.meta.url);

let dir: string;
let log: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'pool-test-'));
  log = join(dir, 'attempts.log');
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

function logLines(): string[] {
  try {
    return readFileSync(log, 'utf8').trim().split('\n');
  } catch {
    return [];
  }
}

function task(id: string, mode: FixtureInput['mode'], value: number, sleepMs = 0): PoolTask<FixtureInput> {
  return { id, input: { mode, value, log, sleepMs } };
}

describe('runPool (worker_threads, tsx-loaded handler)', () => {
  it('returns outputs in task order even when later tasks finish first, and reports progress', async () => {
    const tasks = [400, 300, 200, 100, 0, 0].map((sleep, i) => task(`t${i}`, 'ok', i, sleep));
    const progress: Array<[number, number]> = [];
    const out = await runPool<FixtureInput, FixtureOutput>(tasks, {
      handler,
      workers: 2,
      onProgress: (done, total) => progress.push([done, total]),
    });
    expect(out.map((o) => o.value)).toEqual([0, 2, 4, 6, 8, 10]);
    expect(progress).toEqual([1, 2, 3, 4, 5, 6].map((d) => [d, 6]));
    // Finishing order differs from task order, so the ordering above is the pool's doing.
    const ends = logLines().filter((l) => l.endsWith(' end')).map((l) => l.split(' ')[0]);
    expect(ends).not.toEqual(tasks.map((t) => t.id));
  });

  it('retries a task that throws once, and only that task', async () => {
    const out = await runPool<FixtureInput, FixtureOutput>(
      [task('a', 'ok', 1), task('flaky', 'throw-once', 2), task('c', 'ok', 3)],
      { handler, workers: 2, retries: 1 },
    );
    expect(out.map((o) => o.value)).toEqual([2, 4, 6]);
    const starts = logLines().filter((l) => l.includes(' start '));
    expect(starts.filter((l) => l.startsWith('flaky ')).map((l) => l.split(' ')[2])).toEqual(['1', '2']);
    expect(starts.filter((l) => l.startsWith('a '))).toHaveLength(1);
    expect(starts.filter((l) => l.startsWith('c '))).toHaveLength(1);
  });

  it('replaces a worker that calls process.exit(1) mid-task and retries the task on the new worker', async () => {
    const out = await runPool<FixtureInput, FixtureOutput>([task('crashy', 'exit-once', 5)], {
      handler,
      workers: 1,
      retries: 1,
    });
    expect(out[0]!.value).toBe(10);
    const starts = logLines().filter((l) => l.startsWith('crashy start'));
    expect(starts).toHaveLength(2);
    const [firstThread, secondThread] = starts.map((l) => l.split(' ')[3]);
    expect(secondThread).not.toBe(firstThread);
    expect(out[0]!.threadId).toBe(Number(secondThread));
  });

  it('fails the run naming the task and last cause once retries are exhausted; in-flight tasks finish, no new ones start', async () => {
    const tasks = [task('bad', 'always-throw', 0), task('slow', 'ok', 1, 1500), task('later1', 'ok', 2), task('later2', 'ok', 3)];
    const run = runPool<FixtureInput, FixtureOutput>(tasks, { handler, workers: 2, retries: 2 });
    await expect(run).rejects.toThrow(new PoolTaskError('bad', 3, new Error('always broken')).message);
    await expect(run).rejects.toThrow('task bad failed after 3 attempts: always broken');
    const error = await run.catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PoolTaskError);
    expect((error as PoolTaskError).taskId).toBe('bad');
    expect(((error as Error).cause as Error).message).toBe('always broken');
    // A plain Error is unclassified: the run's error is a permanent InternalError.
    expect([(error as PoolTaskError).name, (error as PoolTaskError).retryable]).toEqual(['InternalError', false]);
    const lines = logLines();
    expect(lines.filter((l) => l.startsWith('bad start'))).toHaveLength(3);
    expect(lines).toContain('slow end');
    expect(lines.some((l) => l.startsWith('later'))).toBe(false);
  });

  it('keeps the classification of the last cause across the thread: retryable and named TransientError iff the cause was transient', async () => {
    const reset = await runPool([task('reset', 'always-reset', 1)], { handler, workers: 1, retries: 1 }).catch((e: unknown) => e);
    expect(reset).toBeInstanceOf(PoolTaskError);
    expect(reset).toMatchObject({ name: 'TransientError', retryable: true, message: 'task reset failed after 2 attempts: read ECONNRESET' });
    const bad = await runPool([task('bad', 'always-bad-data', 1)], { handler, workers: 1, retries: 0 }).catch((e: unknown) => e);
    expect(bad).toMatchObject({ name: 'InvalidDataError', retryable: false, message: 'task bad failed after 1 attempt: cache/features/x.csr: truncated' });
  });

  it('names a crash as the cause when a crashing task exhausts its retries', async () => {
    const run = runPool([task('crashy', 'exit-once', 1)], { handler, workers: 1, retries: 0 });
    await expect(run).rejects.toThrow('task crashy failed after 1 attempt: worker exited with code 1 while running the task');
  });

  it('fails an attempt whose output cannot be sent back, with a message saying so', async () => {
    const run = runPool([task('fn', 'uncloneable', 1)], { handler, workers: 1, retries: 1 });
    await expect(run).rejects.toThrow('task fn failed after 2 attempts: task output cannot be sent to the pool:');
  });

  it('runs N workers concurrently (task time spans overlap on distinct threads)', async () => {
    const out = await runPool<FixtureInput, FixtureOutput>([task('x', 'ok', 1, 1000), task('y', 'ok', 2, 1000)], {
      handler,
      workers: 2,
    });
    const [x, y] = out as [FixtureOutput, FixtureOutput];
    expect(x.threadId).not.toBe(y.threadId);
    expect(x.start).toBeLessThan(y.end);
    expect(y.start).toBeLessThan(x.end);
  });

  it('rejects bad options with a clear message', () => {
    expect(() => runPool([task('a', 'ok', 1), task('a', 'ok', 2)], { handler })).toThrow('duplicate task id a');
    expect(() => runPool([task('a', 'ok', 1)], { handler, workers: 0 })).toThrow('workers must be an integer >= 1, got 0');
    expect(() => runPool([task('a', 'ok', 1)], { handler, retries: -1 })).toThrow('retries must be an integer >= 0, got -1');
  });
});
