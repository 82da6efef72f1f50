/**
 * Failures that are time limits, told apart from the Step Functions error object ({Error, Cause}) a failed task
 * reports, so a run that ran out of time says which limit it hit and why:
 *
 *   function  a Lambda function ran past its timeout: Lambda reports `Sandbox.Timedout` (older runtimes: an error
 *             message "Task timed out after N seconds")
 *   task      a task ran past its Step Functions TimeoutSeconds: `States.Timeout`
 *   job       a Batch job attempt ran past the job definition's timeout: status reason "Job attempt duration
 *             exceeded timeout"
 *   queue     a Batch job waited RUNNABLE past the job queue's time limit and the queue cancelled it: status reason
 *             "Canceled by JobStateTimeLimit action due to reason: <reason>" (AWS Batch user guide, "Jobs stuck in
 *             RUNNABLE")
 */

/** Which limit a failure hit, and why in words. */
export interface TimeLimitFailure {
  limit: 'function' | 'task' | 'job' | 'queue';
  reason: string;
  /** Whether running again unchanged may get past it (capacity may come back; a too-short limit stays too short). */
  retryable: boolean;
}

/**
 * The reasons a job queue's time limit action can name (JobStateTimeLimitAction `reason`), each with what it means
 * for the run and whether waiting for a redrive may help.
 */
export const QUEUE_TIME_LIMIT_REASONS = {
  'CAPACITY:INSUFFICIENT_INSTANCE_CAPACITY': {
    meaning: 'no instance capacity for the job (EC2 had none of the instance types, or the account\'s vCPU quota for them is too low, e.g. 0 G-instance vCPUs)',
    retryable: true,
  },
  'MISCONFIGURATION:COMPUTE_ENVIRONMENT_MAX_RESOURCE': {
    meaning: 'the job asks for more vCPUs or memory than the compute environment\'s maxvCpus allows (raise trainerMaxVcpus or lower trainerVcpus)',
    retryable: false,
  },
  'MISCONFIGURATION:JOB_RESOURCE_REQUIREMENT': {
    meaning: 'no instance type of the compute environment fits the job\'s vCPUs, memory or GPU (check trainerVcpus, trainerMemoryMiB and the instance types)',
    retryable: false,
  },
} as const satisfies Record<string, { meaning: string; retryable: boolean }>;

export type QueueTimeLimitReason = keyof typeof QUEUE_TIME_LIMIT_REASONS;

/** What Lambda reports for a function that ran past its timeout. */
export const LAMBDA_TIMEOUT_ERROR = 'Sandbox.Timedout';
/** What Step Functions reports for a task that ran past its TimeoutSeconds. */
export const STATES_TIMEOUT_ERROR = 'States.Timeout';

const QUEUE_CANCELLED = /^(?:Canceled|Cancelled|Terminated) by JobStateTimeLimit action due to reason: ([A-Z_]+:[A-Z_]+)/;
const LAMBDA_TIMED_OUT = /Task timed out after ([\d.]+) seconds/;
const JOB_TIMED_OUT = /^Job attempt duration exceeded timeout/;

function parse(cause: string | undefined): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(cause ?? '');
    return value !== null && typeof value === 'object' ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/** The time limit a Step Functions error object reports, or undefined when the failure was something else. */
export function timeLimitOf(error: { Error?: string; Cause?: string }): TimeLimitFailure | undefined {
  const cause = parse(error.Cause);
  const message = typeof cause?.errorMessage === 'string' ? cause.errorMessage : (error.Cause ?? '');
  if (error.Error === LAMBDA_TIMEOUT_ERROR || cause?.errorType === LAMBDA_TIMEOUT_ERROR || LAMBDA_TIMED_OUT.test(message)) {
    const after = LAMBDA_TIMED_OUT.exec(message)?.[1];
    return {
      limit: 'function',
      reason: `the Lambda function ran past its timeout${after ? ` (${after} s)` : ''}: raise <function>TimeoutSeconds in cdk.json, or set a smaller shardSize`,
      retryable: false,
    };
  }
  if (error.Error === STATES_TIMEOUT_ERROR) {
    return { limit: 'task', reason: 'the task ran past its TimeoutSeconds in the state machine without its service reporting an end', retryable: false };
  }
  const status = typeof cause?.StatusReason === 'string' ? cause.StatusReason : '';
  const queued = QUEUE_CANCELLED.exec(status);
  if (queued) {
    const code = queued[1]!;
    const known = (QUEUE_TIME_LIMIT_REASONS as Record<string, { meaning: string; retryable: boolean }>)[code];
    return {
      limit: 'queue',
      reason: `the training job waited RUNNABLE past the job queue's limit (trainerRunnableTimeoutMinutes) and was cancelled: ${code}${known ? ` - ${known.meaning}` : ''}`,
      retryable: known?.retryable ?? false,
    };
  }
  if (JOB_TIMED_OUT.test(status)) {
    return { limit: 'job', reason: 'the training job ran past its time limit (trainerTimeoutMinutes)', retryable: false };
  }
  return undefined;
}
