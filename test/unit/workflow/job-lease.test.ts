// One training job per family of a run, on a real folder store: a second job of the same family (a retried SubmitJob)
// waits for the first to end and then finds its result instead of training beside it; a job that stopped renewing is
// taken over.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { FsBlobStore } from '../../../src/store/fs-store.js';
import type { Reporter } from '../../../src/run/reporter.js';
import { silentReporter } from '../../../src/run/reporter.js';
import { asOnlyJob, JOB_LEASE_TTL_MS } from '../../../src/workflow/job-lease.js';
import { runKeys } from '../../../src/run/keys.js';

async function context(): Promise<{ store: FsBlobStore; said: string[]; reporter: Reporter }> {
  const root = await mkdtemp(join(tmpdir(), 'textshift-job-lease-'));
  onTestFinished(() => rm(root, { recursive: true, force: true }));
  const said: string[] = [];
  return { store: new FsBlobStore(root), said, reporter: { ...silentReporter, log: (m: string) => said.push(m) } };
}

const never = (message: string) => {
  throw new Error(`lease lost: ${message}`);
};

describe('one training job per family (job lease)', () => {
  it('a duplicate job waits for the one training the family, then finds its result instead of training beside it', async () => {
    const { store, said, reporter } = await context();
    const ctx = { store, data: store, reporter };
    const events: string[] = [];
    let releaseFirst!: () => void;
    const firstMayEnd = new Promise<void>((r) => (releaseFirst = r));
    // The job that trains: it writes the family's result once it is allowed to end.
    const first = asOnlyJob(ctx, { runId: 'r1', feature: 'bow', job: 'job-a', lost: never }, async () => {
      events.push('a trains');
      await firstMayEnd;
      await store.put('runs/r1/models/bow.result.json', '{"by":"job-a"}');
      events.push('a done');
      return 'trained';
    });
    await new Promise((r) => setTimeout(r, 20));
    // The duplicate: each time it would sleep, the first job is let go; its work sees the first job's result.
    const second = asOnlyJob(
      ctx,
      {
        runId: 'r1',
        feature: 'bow',
        job: 'job-b',
        lost: never,
        sleep: async () => {
          events.push('b waits');
          releaseFirst();
          await first;
        },
      },
      async () => {
        events.push('b runs');
        return (await store.get('runs/r1/models/bow.result.json'))?.toString() ?? 'none';
      },
    );
    expect(await first).toBe('trained');
    expect(await second).toBe('{"by":"job-a"}');
    expect(events).toEqual(['a trains', 'b waits', 'a done', 'b runs']);
    expect(said[0]).toMatch(/^train bow: job job-a is already training it \(since .*\); waiting for it to end$/);
    // The lease is released, with the token of its last holder.
    expect(JSON.parse((await store.getOrThrow(runKeys('r1').jobLease('bow'))).toString())).toMatchObject({ job: 'job-b', token: 2, releasedAt: expect.any(String) });
  });

  it('takes over the lease of a job that stopped renewing it, and says so', async () => {
    const { store, said, reporter } = await context();
    const stale = new Date(Date.now() - JOB_LEASE_TTL_MS - 1000).toISOString();
    await store.put(runKeys('r1').jobLease('bow'), JSON.stringify({ runId: 'r1', job: 'job-gone', pid: 1, host: 'ip-10-0-0-1', startedAt: stale, token: 1, renewedAt: stale }));
    const out = await asOnlyJob({ store, data: store, reporter }, { runId: 'r1', feature: 'bow', job: 'job-c', lost: never, sleep: () => Promise.reject(new Error('must not wait')) }, async () => 'ran');
    expect(out).toBe('ran');
    expect(said).toEqual([`train bow: took over the family's job lease from job job-gone: not renewed since ${stale}`]);
  });
});
