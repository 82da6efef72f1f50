import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { listRuns, runsText } from '../../../../src/report/runs.js';
import { readManifest } from '../../../../src/run/manifest.js';
import { silentReporter } from '../../../../src/run/reporter.js';
import { FsBlobStore } from '../../../../src/store/fs-store.js';
import { markFailed } from '../../../../src/workflow/stages/mark-failed.js';
import { sampleManifest } from '../../../fixtures/report/sample-run.js';

/** The Cause of a Batch `.sync` task whose job the queue cancelled after it waited RUNNABLE past the limit (AWS Batch user guide). */
const CANCELLED_BY_QUEUE = JSON.stringify({
  JobId: '6f1c5a0e-7a55-4c39-9c65-2a9d2c8e0b11',
  JobName: 'textshift-train-bow',
  JobQueue: 'arn:aws:batch:eu-west-1:123456789012:job-queue/textshift-trainer-gpu',
  Status: 'FAILED',
  StatusReason: 'Canceled by JobStateTimeLimit action due to reason: CAPACITY:INSUFFICIENT_INSTANCE_CAPACITY',
  Attempts: [],
});

describe('MarkFailed records a time limit as such: the manifest, `textshift runs` and report.html say which limit and why', () => {
  let dir: string;
  let store: FsBlobStore;
  const runId = 'sst2-imdb-20261126T051900Z-3f9a1c';
  const ctx = () => ({ store, data: store, reporter: silentReporter });

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'textshift-mark-failed-'));
    store = new FsBlobStore(dir);
    await store.put(`runs/${runId}/manifest.json`, JSON.stringify({ ...sampleManifest(), status: 'running', stages: {} }));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('a training job the job queue cancelled after waiting RUNNABLE past trainerRunnableTimeoutMinutes', async () => {
    const out = await markFailed(ctx(), { runId, stage: 'Train', error: { Error: 'States.TaskFailed', Cause: CANCELLED_BY_QUEUE } });
    expect(out).toMatchObject({ recorded: true, error: 'States.TaskFailed: Canceled by JobStateTimeLimit action due to reason: CAPACITY:INSUFFICIENT_INSTANCE_CAPACITY' });

    const manifest = await readManifest(store, runId);
    expect(manifest.status).toBe('failed');
    expect(manifest.failure).toEqual({
      stage: 'Train',
      error: 'States.TaskFailed: Canceled by JobStateTimeLimit action due to reason: CAPACITY:INSUFFICIENT_INSTANCE_CAPACITY',
      errorName: 'States.TaskFailed',
      // Capacity may come back (or the quota be raised): a redrive alone may get past it.
      retryable: true,
      timeLimit: {
        limit: 'queue',
        reason: expect.stringMatching(/^the training job waited RUNNABLE past the job queue's limit \(trainerRunnableTimeoutMinutes\) and was cancelled: CAPACITY:INSUFFICIENT_INSTANCE_CAPACITY - no instance capacity .*quota/),
      },
    });

    const [run] = await listRuns(store);
    expect(run).toMatchObject({ runId, status: 'failed' });
    expect(run!.failure).toBe(
      `Train: States.TaskFailed: Canceled by JobStateTimeLimit action due to reason: CAPACITY:INSUFFICIENT_INSTANCE_CAPACITY [queue time limit: ${manifest.failure!.timeLimit!.reason}; retryable]`,
    );
    const text = runsText([run!]);
    expect(text).toContain('failure or problem');
    expect(text).toContain('queue time limit: the training job waited RUNNABLE');

    const html = (await store.getOrThrow(`runs/${runId}/report/report.html`)).toString('utf8');
    expect(html).toContain('data-testid="run-status">failed</span>');
    expect(html).toMatch(/data-testid="failure-stage">Train</);
    expect(html).toContain('data-testid="failure-time-limit">queue: the training job waited RUNNABLE past the job queue&#39;s limit');
    expect(html).toContain('CAPACITY:INSUFFICIENT_INSTANCE_CAPACITY');
    expect(html).toMatch(/data-testid="failure-retryable">yes: a redrive alone may get past it</);
  });

  it('a featurize Lambda that ran past its timeout (Sandbox.Timedout): a function time limit, not retryable', async () => {
    const cause = JSON.stringify({ errorType: 'Sandbox.Timedout', errorMessage: 'RequestId: 0c1d Error: Task timed out after 900.00 seconds' });
    await markFailed(ctx(), { runId, stage: 'Featurize', error: { Error: 'Sandbox.Timedout', Cause: cause } });
    const { failure } = await readManifest(store, runId);
    expect(failure).toMatchObject({ stage: 'Featurize', errorName: 'Sandbox.Timedout', retryable: false, timeLimit: { limit: 'function' } });
    expect(failure!.error).toBe('Sandbox.Timedout: RequestId: 0c1d Error: Task timed out after 900.00 seconds');
    expect((await listRuns(store))[0]!.failure).toContain('function time limit: the Lambda function ran past its timeout (900.00 s)');
  });

  it('a task past its TimeoutSeconds (States.Timeout) and an ordinary failure, which names no limit', async () => {
    await markFailed(ctx(), { runId, stage: 'Report', error: { Error: 'States.Timeout' } });
    expect((await readManifest(store, runId)).failure).toMatchObject({ errorName: 'States.Timeout', timeLimit: { limit: 'task' } });
    await markFailed(ctx(), { runId, stage: 'Train', error: { Error: 'States.TaskFailed', Cause: JSON.stringify({ Status: 'FAILED', StatusReason: 'Essential container in task exited' }) } });
    const { failure } = await readManifest(store, runId);
    expect(failure).toEqual({ stage: 'Train', error: 'States.TaskFailed: Essential container in task exited', errorName: 'States.TaskFailed', retryable: false });
    expect((await store.getOrThrow(`runs/${runId}/report/report.html`)).toString('utf8')).not.toContain('failure-time-limit');
  });
});
