// The lease a run's holder (a local process, or an AWS execution) holds on its run id, on a real folder store: one
// holder at a time, a dead, lapsed or released holder's lease taken over with a message and a new fencing token, a live
// or foreign holder named in the refusal, and a writer whose lease was taken over fenced off.
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { FencedError, LEASE_TTL_MS, lockRun, RunLockedError } from '../../../src/run/run-lock.js';
import { fencedStore } from '../../../src/run/fenced-store.js';
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

describe('run lease', () => {
  it('is held by one run at a time; the refusal names the run, the holder\'s pid and host, since when and when it lapses', async () => {
    const store = await opened();
    const first = await lockRun(store, 'r1', () => undefined);
    const { startedAt } = first.holder;
    expect(JSON.parse((await store.getOrThrow(LOCK)).toString())).toEqual({ runId: 'r1', pid: process.pid, host: hostname(), startedAt, token: 1, renewedAt: startedAt });
    const err = await refusal(lockRun(store, 'r1', () => undefined));
    expect(err).toBeInstanceOf(RunLockedError);
    const lapses = new Date(Date.parse(startedAt) + LEASE_TTL_MS).toISOString();
    expect(err!.message).toBe(
      `run r1 is already running: process ${process.pid} on ${hostname()} has held ${store.url}/${LOCK} since ${startedAt} (it lapses at ${lapses} unless renewed). ` +
        'Wait for it to finish, or stop it; if that process is gone (another host, or its pid reused), delete that file.',
    );
    // Another run id is another lease.
    await (await lockRun(store, 'r2', () => undefined)).release();
    // A release keeps the record (and its token), marked released; the next holder gets the next token.
    await first.release();
    expect(JSON.parse((await store.getOrThrow(LOCK)).toString())).toMatchObject({ token: 1, releasedAt: expect.any(String) });
    const second = await lockRun(store, 'r1', () => undefined);
    expect(second.holder.token).toBe(2);
    await second.release();
  });

  it('of several runs starting at once, exactly one gets the lease', async () => {
    const store = await opened();
    const attempts = await Promise.allSettled(Array.from({ length: 6 }, () => lockRun(store, 'r1', () => undefined)));
    expect(attempts.filter((a) => a.status === 'fulfilled')).toHaveLength(1);
    for (const a of attempts.filter((x) => x.status === 'rejected')) expect((a as PromiseRejectedResult).reason).toBeInstanceOf(RunLockedError);
  });

  it('takes over the lease of a process that no longer runs, and says so', async () => {
    const store = await opened();
    const pid = await deadPid();
    const now = new Date().toISOString();
    await store.put(LOCK, JSON.stringify({ runId: 'r1', pid, host: hostname(), startedAt: now, token: 4, renewedAt: now }));
    const said: string[] = [];
    const lock = await lockRun(store, 'r1', (m) => said.push(m));
    expect(said).toEqual([`run r1: took over its lease from process ${pid} on ${hostname()}: that process is no longer running`]);
    expect(JSON.parse((await store.getOrThrow(LOCK)).toString())).toMatchObject({ pid: process.pid, token: 5 });
    await lock.release();
  });

  it('refuses a lease held on another host while it is renewed, and takes it over once it has lapsed', async () => {
    const store = await opened();
    const fresh = new Date().toISOString();
    await store.put(LOCK, JSON.stringify({ runId: 'r1', pid: await deadPid(), host: 'elsewhere.example', startedAt: fresh, token: 1, renewedAt: fresh }));
    expect((await refusal(lockRun(store, 'r1', () => undefined)))?.message).toMatch(/^run r1 is already running: process \d+ on elsewhere\.example/);
    const stale = new Date(Date.now() - LEASE_TTL_MS - 1000).toISOString();
    await store.put(LOCK, JSON.stringify({ runId: 'r1', pid: 7, host: 'elsewhere.example', startedAt: stale, token: 1, renewedAt: stale }));
    const said: string[] = [];
    const lock = await lockRun(store, 'r1', (m) => said.push(m));
    expect(said).toEqual([`run r1: took over its lease from process 7 on elsewhere.example: not renewed since ${stale}`]);
    expect(lock.holder.token).toBe(2);
  });

  it('an execution re-takes its own lease (a redrive: new token), and refuses another execution, naming the holder', async () => {
    const store = await opened();
    const a = 'arn:aws:states:eu-west-1:123456789012:execution:textshift-run:a';
    const first = await lockRun(store, 'r1', () => undefined, { execution: a });
    expect(first.holder).toMatchObject({ execution: a, token: 1 });
    const again = await lockRun(store, 'r1', () => undefined, { execution: a });
    expect(again.holder.token).toBe(2);
    const err = await refusal(lockRun(store, 'r1', () => undefined, { execution: 'arn:aws:states:eu-west-1:123456789012:execution:textshift-run:b' }));
    expect(err).toBeInstanceOf(RunLockedError);
    expect(err!.message).toMatch(new RegExp(`^run r1 is already running: execution ${a} has held .*Wait for that execution to finish, or stop it and redrive it`));
    // A local process cannot take a lease an execution holds either.
    expect(await refusal(lockRun(store, 'r1', () => undefined))).toBeInstanceOf(RunLockedError);
  });

  it('an execution\'s lease holds until its expiry however long since a renewal, keeps it when redriven, and lapses after it', async () => {
    const store = await opened();
    const a = 'arn:aws:states:eu-west-1:123456789012:execution:textshift-run:a';
    const b = 'arn:aws:states:eu-west-1:123456789012:execution:textshift-run:b';
    const first = await lockRun(store, 'r1', () => undefined, { execution: a, holdsMs: 48 * 3600_000 });
    const { expiresAt } = first.holder;
    expect(Date.parse(expiresAt!) - Date.parse(first.holder.startedAt)).toBe(48 * 3600_000);
    // Not renewed for longer than LEASE_TTL_MS (a Featurize map of hours renews nothing): still held.
    const record = JSON.parse((await store.getOrThrow(LOCK)).toString()) as Record<string, unknown>;
    const old = new Date(Date.now() - LEASE_TTL_MS - 60_000).toISOString();
    await store.put(LOCK, JSON.stringify({ ...record, renewedAt: old }));
    expect((await refusal(lockRun(store, 'r1', () => undefined, { execution: b })))?.message).toContain(`(it lapses at ${expiresAt} unless renewed)`);
    // The same execution redriven keeps its end.
    expect((await lockRun(store, 'r1', () => undefined, { execution: a })).holder).toMatchObject({ token: 2, expiresAt });
    // Past it, another execution takes the run.
    const past = new Date(Date.now() - 1000).toISOString();
    await store.put(LOCK, JSON.stringify({ ...JSON.parse((await store.getOrThrow(LOCK)).toString()), expiresAt: past }));
    const said: string[] = [];
    expect((await lockRun(store, 'r1', (m) => said.push(m), { execution: b })).holder.token).toBe(3);
    expect(said).toEqual([`run r1: took over its lease from execution ${a}: expired at ${past}`]);
  });

  it('fences off a writer whose lease was taken over: its manifest and checkpoint writes fail, what it wrote stays', async () => {
    const store = await opened();
    const old = await lockRun(store, 'r1', () => undefined, { execution: 'arn:aws:states:eu-west-1:123456789012:execution:textshift-run:a' });
    const stale = fencedStore(store, 'r1', old.holder.token);
    await stale.put('runs/r1/manifest.json', '{"v":1}');
    // The same execution redriven: a new token; the writer of the earlier attempt is now stale.
    const now = await lockRun(store, 'r1', () => undefined, { execution: 'arn:aws:states:eu-west-1:123456789012:execution:textshift-run:a' });
    for (const key of ['runs/r1/manifest.json', 'runs/r1/models/bow_1/epoch_2/state.json']) {
      const err = await refusal(stale.put(key, 'late'));
      expect(err).toBeInstanceOf(FencedError);
      expect(err!.message).toBe(
        'run r1 was taken over by execution arn:aws:states:eu-west-1:123456789012:execution:textshift-run:a (fencing token 2; this writer holds 1); ' +
          'this writer stops, so two never write one run',
      );
    }
    expect((await store.getOrThrow('runs/r1/manifest.json')).toString()).toBe('{"v":1}');
    expect(await store.head('runs/r1/models/bow_1/epoch_2/state.json')).toBeUndefined();
    // Shard tasks and results are not fenced (their content is fixed by their inputs); the holder writes everything.
    await stale.put('runs/r1/shards/bow/sst2/train/00000.json', '{}');
    await fencedStore(store, 'r1', now.holder.token).put('runs/r1/manifest.json', '{"v":2}');
    expect((await store.getOrThrow('runs/r1/manifest.json')).toString()).toBe('{"v":2}');
  });

  it('a release after another holder took the lease over leaves that holder\'s lease alone', async () => {
    const store = await opened();
    const mine = await lockRun(store, 'r1', () => undefined);
    const now = new Date().toISOString();
    const theirs = JSON.stringify({ runId: 'r1', pid: process.pid, host: hostname(), startedAt: now, token: 2, renewedAt: now });
    await store.put(LOCK, theirs);
    await mine.release();
    expect((await store.getOrThrow(LOCK)).toString()).toBe(theirs);
    await expect(mine.renew()).rejects.toBeInstanceOf(FencedError);
  });
});
