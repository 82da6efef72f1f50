import { describe, expect, it } from 'vitest';
import { QUEUE_TIME_LIMIT_REASONS, timeLimitOf } from '../../../src/errors/time-limits.js';

/** A Batch job description as a failed `.sync` task's Cause carries it. */
const batchCause = (statusReason: string) => JSON.stringify({ JobId: 'j-1', JobName: 'textshift-train-bow', Status: 'FAILED', StatusReason: statusReason });

describe('time limits told from a failed task\'s error object', () => {
  it('a Lambda function that ran past its timeout (Sandbox.Timedout, and the older message-only form)', () => {
    const cause = JSON.stringify({ errorType: 'Sandbox.Timedout', errorMessage: 'RequestId: 1f2e Error: Task timed out after 900.00 seconds' });
    expect(timeLimitOf({ Error: 'Sandbox.Timedout', Cause: cause })).toEqual({
      limit: 'function',
      reason: expect.stringMatching(/^the Lambda function ran past its timeout \(900\.00 s\): raise <function>TimeoutSeconds/),
      retryable: false,
    });
    expect(timeLimitOf({ Error: 'States.TaskFailed', Cause: JSON.stringify({ errorMessage: '2026-12-01T10:00:00Z 1f2e Task timed out after 3.00 seconds' }) })?.limit).toBe('function');
  });

  it('a task past its TimeoutSeconds (States.Timeout)', () => {
    expect(timeLimitOf({ Error: 'States.Timeout', Cause: '' })).toMatchObject({ limit: 'task', retryable: false });
  });

  it('a training job the queue cancelled after waiting RUNNABLE: the reason Batch gives, with what it means; capacity may come back', () => {
    const capacity = timeLimitOf({ Error: 'States.TaskFailed', Cause: batchCause('Canceled by JobStateTimeLimit action due to reason: CAPACITY:INSUFFICIENT_INSTANCE_CAPACITY') });
    expect(capacity).toEqual({
      limit: 'queue',
      reason: `the training job waited RUNNABLE past the job queue's limit (trainerRunnableTimeoutMinutes) and was cancelled: CAPACITY:INSUFFICIENT_INSTANCE_CAPACITY - ${QUEUE_TIME_LIMIT_REASONS['CAPACITY:INSUFFICIENT_INSTANCE_CAPACITY'].meaning}`,
      retryable: true,
    });
    expect(capacity!.reason).toContain('quota');
    const tooBig = timeLimitOf({ Error: 'States.TaskFailed', Cause: batchCause('Canceled by JobStateTimeLimit action due to reason: MISCONFIGURATION:COMPUTE_ENVIRONMENT_MAX_RESOURCE') });
    expect(tooBig).toMatchObject({ limit: 'queue', retryable: false, reason: expect.stringContaining('trainerMaxVcpus') });
  });

  it('a training job past its own time limit', () => {
    expect(timeLimitOf({ Error: 'States.TaskFailed', Cause: batchCause('Job attempt duration exceeded timeout') })).toMatchObject({ limit: 'job', retryable: false });
  });

  it('anything else is not a time limit', () => {
    expect(timeLimitOf({ Error: 'States.TaskFailed', Cause: batchCause('Essential container in task exited') })).toBeUndefined();
    expect(timeLimitOf({ Error: 'DataError', Cause: JSON.stringify({ errorType: 'DataError', errorMessage: 'a.tsv:9: bad label' }) })).toBeUndefined();
    expect(timeLimitOf({})).toBeUndefined();
  });
});
