import { EXIT_TEMPFAIL } from '../../errors/exit-code.js';
import { isRetryableName, PermanentError } from '../../errors/index.js';
import { redact } from '../../errors/redact.js';
import { timeLimitOf, type TimeLimitFailure } from '../../errors/time-limits.js';
import { runKeys } from '../../run/keys.js';
import type { StageContext } from '../context.js';
import { findManifest, updateManifest } from '../../run/manifest.js';
import { heldByExecution, releaseExecutionLease } from '../../run/run-lock.js';
import { takeRun } from '../fence.js';
import { writeFailureReport } from '../../report/index.js';
import { releaseRun } from '../../cost/spend-ledger.js';
import type { MarkFailedInput } from '../stage-io.js';

/** The cause text of a Step Functions error object: its Cause (often JSON with errorMessage) or Error. */
export function failureText(error: MarkFailedInput['error']): string {
  const cause = error.Cause ?? '';
  try {
    const parsed = JSON.parse(cause) as { errorMessage?: string; StatusReason?: string };
    if (parsed.errorMessage) return `${error.Error ?? 'Error'}: ${parsed.errorMessage}`;
    if (parsed.StatusReason) return `${error.Error ?? 'Error'}: ${parsed.StatusReason}`;
  } catch {
    // Not JSON: use the text as it is.
  }
  return [error.Error, cause].filter(Boolean).join(': ') || 'unknown error';
}

/**
 * The class of a Step Functions error object: its error name, whether the failure was retryable (a redrive may
 * get past it unchanged): a TransientError or a transient AWS service error, or a Batch job that ended on a
 * transient exit (EX_TEMPFAIL, a reclaimed Spot host) after its retries; and, when it was a time limit (a Lambda or
 * task timeout, a job's time limit, the job queue cancelling a job that waited RUNNABLE too long), which one and why.
 */
export function failureClass(error: MarkFailedInput['error']): { errorName: string; retryable: boolean; timeLimit?: TimeLimitFailure } {
  const errorName = error.Error || 'Error';
  const timeLimit = timeLimitOf(error);
  if (timeLimit) return { errorName, retryable: timeLimit.retryable, timeLimit };
  return { errorName, retryable: isRetryableName(errorName) || batchJobRetryable(error.Cause) };
}

/** Whether a Cause is a Batch job description whose last attempt ended transiently (the Batch retry strategy's cases). */
function batchJobRetryable(cause: string | undefined): boolean {
  try {
    const job = JSON.parse(cause ?? '') as { Container?: { ExitCode?: unknown }; StatusReason?: unknown };
    return job.Container?.ExitCode === EXIT_TEMPFAIL || (typeof job.StatusReason === 'string' && job.StatusReason.startsWith('Host EC2'));
  } catch {
    return false;
  }
}

/**
 * MarkFailed: records the failed stage, its cause, its class and any time limit it hit in the run manifest, marks the
 * run failed and writes the failed run's report.html. Touches nothing else, so every artifact written before the failure stays where it is and a re-run resumes from it.
 * A run that failed before it had a manifest (e.g. Prepare on an unreadable experiment) has nowhere to record
 * it: `recorded` is false and nothing is written.
 */
export async function markFailed(ctx: StageContext, input: MarkFailedInput): Promise<{ runId: string; stage: string; error: string; recorded: boolean }> {
  // Recorded in the manifest and the report: never with a credential a URL in the cause carried.
  const error = redact(failureText(input.error));
  const { errorName, retryable, timeLimit } = failureClass(input.error);
  const notRecorded = (why: string) => {
    ctx.reporter.log(`run ${input.runId}: ${input.stage} failed (${error}), not recorded: ${why}`);
    return { runId: input.runId, stage: input.stage, error, recorded: false };
  };
  const existing = await findManifest(ctx.store, input.runId);
  if (!existing) return notRecorded('the run has no manifest (it failed before Prepare wrote one)');
  // Only the run's holder writes it: a start that was refused (the run held by another execution, or named with
  // another experiment) never got the lease, and leaves the run as it is.
  if (input.execution !== undefined && !(await heldByExecution(ctx.store, input.runId, input.execution))) {
    return notRecorded(`execution ${input.execution} does not hold the run (another execution does, or it never started it)`);
  }
  // A finished run keeps its results: a later attempt on it that fails (a resume after its inputs changed) is reported
  // to whoever started it, and the run stays succeeded.
  if (existing.status === 'succeeded') return notRecorded('the run had already succeeded, and keeps its results');
  const now = new Date().toISOString();
  // One conditional update: a stage that finishes meanwhile keeps its record, and this failure keeps its own.
  const manifest = await updateManifest(ctx.store, input.runId, (m) => {
    m.stages[input.stage] = { status: 'failed', endedAt: now, error, errorName, retryable };
    m.status = 'failed';
    m.failure = { stage: input.stage, error, errorName, retryable, ...(timeLimit ? { timeLimit: { limit: timeLimit.limit, reason: timeLimit.reason } } : {}) };
  });
  // A failed run has no results; its report page says why it failed, so `report.html` is never missing or stale.
  await writeFailureReport(ctx.store, manifest);
  // The execution has ended its run: another execution (a console resume) may take it; a redrive takes it back.
  if (input.execution !== undefined) await releaseExecutionLease(ctx.store, input.runId, input.execution);
  // The run has ended: another may take its slot (src/cost/spend-ledger.ts; a run refused or never admitted has none).
  await releaseRun(ctx.store, input.runId, 'failed');
  ctx.reporter.log(`run ${input.runId} failed in ${input.stage}: ${error}${timeLimit ? ` (${timeLimit.reason})` : ''}`);
  return { runId: input.runId, stage: input.stage, error, recorded: true };
}

/**
 * What a failed run ends with on AWS: the stage and cause in words, shown as the execution's error (`RunFailed`).
 * Permanent: the failure is recorded, and only a redrive (after fixing the cause) resumes the run.
 */
export class RunFailedError extends PermanentError {
  constructor(failed: { runId: string; stage: string; error: string }) {
    super(`${failed.stage} failed: ${failed.error} (run ${failed.runId}; fix the cause, then redrive the execution to resume)`);
    this.name = 'RunFailed';
  }
}

/**
 * Marks a failed run as running again because its failed stage is being retried (a redriven execution): clears
 * the recorded failure. The stage's failed record stays as history; the stage's own records show the retry.
 * A run without a manifest (it failed in Prepare before writing one) has nothing to clear.
 */
export async function markResumed(
  ctx: StageContext,
  input: { runId: string; stage: string; execution?: string },
): Promise<{ runId: string; stage: string; resumed: true }> {
  if ((await ctx.store.head(runKeys(input.runId).manifest)) !== undefined) {
    // The redriven execution takes its run back (a new fencing token fences off anything left of its last attempt),
    // unless another execution holds it now (RunLockedError). Prepare takes the lease itself, after its checks.
    const store = input.execution === undefined || input.stage === 'Prepare' ? ctx.store : await takeRun(ctx, input.runId, { execution: input.execution });
    await updateManifest(store, input.runId, (m) => {
      m.status = 'running';
      delete m.failure;
    });
  }
  ctx.reporter.log(`run ${input.runId}: retrying ${input.stage} (redrive)`);
  return { runId: input.runId, stage: input.stage, resumed: true };
}
