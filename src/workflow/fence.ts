import { fencedStore } from '../run/fenced-store.js';
import { FencedError, lockRun, readRunLock, type LeaseClaimant } from '../run/run-lock.js';
import type { StageContext } from './context.js';

/**
 * The context of a task of a run it does not hold itself (a Featurize, Train or Report task on AWS, whose execution
 * holds the lease): its writes are fenced by the lease's token as the task found it when it started, so a task of an
 * attempt that has since been superseded stops at its next write. A run whose lease is released has ended: a task
 * starting now is a stray, refused with FencedError. A run without a lease (started before runs had one, or a
 * trainer run by hand) is written as before, and the log says so. Returns the context and the token (if any).
 */
export async function fencedContext(ctx: StageContext, runId: string): Promise<{ ctx: StageContext; token?: number }> {
  const lease = await readRunLock(ctx.store, runId);
  if (!lease) {
    ctx.reporter.log(`run ${runId} has no lease: writes are not fenced`);
    return { ctx };
  }
  if (lease.releasedAt) throw new FencedError(runId, lease.token, lease);
  return { ctx: { ...ctx, store: fencedStore(ctx.store, runId, lease.token) }, token: lease.token };
}

/**
 * The store of a writer that takes run `runId`'s lease itself (Prepare for its execution, a redriven execution taking
 * its run back): fenced by the token it now holds. RunLockedError when another holder keeps the run.
 */
export async function takeRun(ctx: StageContext, runId: string, claimant: LeaseClaimant): Promise<StageContext['store']> {
  const lease = await lockRun(ctx.store, runId, (message) => ctx.reporter.log(message), claimant);
  return fencedStore(ctx.store, runId, lease.holder.token);
}
