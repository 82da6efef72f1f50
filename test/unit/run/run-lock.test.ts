// The lock a local run holds on its run id, on a real folder store: one holder at a time, a dead holder's lock taken
// over with a message, a live or foreign holder named in the refusal.
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { lockRun, RunLockedError } from '../../../src/run/run-lock.js';
import { FsBlobStore } from '../../../src/store/fs-store.js';

async function opened(): Promise<FsBlobStore> {
  const root = await mkdtemp(join(tmpdir(), 'textshift-run-lock-'));
  onTestFinished(() => rm(root, { recursive: true, force: true }));
  return new FsBlobStore(root);
}

/** The pid of a process that has exited. */
async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ['-e', '']);
  await new Promise((r) => child.on('exit', r));
  return child.pid!;
}

const LOCK = 'runs/r1/lock.json';
const refusal = (p: Promise<unknown>) =>
  p.then(
    () => undefined,
    (e: unknown) => e as Error,
  );

describe('run lock', () => {
  it('is held by one run at a time; the refusal names the run, the holder\'s pid and host, and since when', async () => {
    const store = await opened();
    const first = await lockRun(store, 'r1', () => undefined);
    expect(JSON.parse((await store.getOrThrow(LOCK)).toString())).toEqual({ runId: 'r1', pid: process.pid, host: hostname(), startedAt: first.holder.startedAt });
    const err = await refusal(lockRun(store, 'r1', () => undefined));
    expect(err).toBeInstanceOf(RunLockedError);
    expect(err!.message).toBe(
      `run r1 is already running: process ${process.pid} on ${hostname()} has held ${store.url}/${LOCK} since ${first.holder.startedAt}. ` +
        'Wait for it to finish, or stop it; if that process is gone (another host, or its pid reused), delete that file.',
    );
    // Another run id is another lock.
    await (await lockRun(store, 'r2', () => undefined)).release();
    await first.release();
    expect(await store.head(LOCK)).toBeUndefined();
    await (await lockRun(store, 'r1', () => undefined)).release();
  });

  it('of several runs starting at once, exactly one gets the lock', async () => {
    const store = await opened();
    const attempts = await Promise.allSettled(Array.from({ length: 6 }, () => lockRun(store, 'r1', () => undefined)));
    expect(attempts.filter((a) => a.status === 'fulfilled')).toHaveLength(1);
    for (const a of attempts.filter((x) => x.status === 'rejected')) expect((a as PromiseRejectedResult).reason).toBeInstanceOf(RunLockedError);
  });

  it('takes over the lock of a process that no longer runs, and says so', async () => {
    const store = await opened();
    const pid = await deadPid();
    await store.put(LOCK, JSON.stringify({ runId: 'r1', pid, host: hostname(), startedAt: '2026-01-01T00:00:00.000Z' }));
    const said: string[] = [];
    const lock = await lockRun(store, 'r1', (m) => said.push(m));
    expect(said).toEqual([`run r1: took over its lock from process ${pid} (started 2026-01-01T00:00:00.000Z), which is no longer running`]);
    expect(JSON.parse((await store.getOrThrow(LOCK)).toString()).pid).toBe(process.pid);
    await lock.release();
  });

  it('refuses a lock held on another host (its process cannot be checked from here)', async () => {
    const store = await opened();
    await store.put(LOCK, JSON.stringify({ runId: 'r1', pid: await deadPid(), host: 'elsewhere.example', startedAt: '2026-01-01T00:00:00.000Z' }));
    expect((await refusal(lockRun(store, 'r1', () => undefined)))?.message).toMatch(/^run r1 is already running: process \d+ on elsewhere\.example/);
  });

  it('a release after another process took the lock over leaves that process\'s lock alone', async () => {
    const store = await opened();
    const mine = await lockRun(store, 'r1', () => undefined);
    const theirs = JSON.stringify({ runId: 'r1', pid: process.pid, host: hostname(), startedAt: '2030-01-01T00:00:00.000Z' });
    await store.put(LOCK, theirs);
    await mine.release();
    expect((await store.getOrThrow(LOCK)).toString()).toBe(theirs);
  });
});
