import { runKeys } from '../run/keys.js';
import { holderText, takeLease, type RunLock } from '../run/run-lock.js';
import type { StageContext } from './context.js';

/** How long a training job's lease lives without a renewal; its heartbeat renews it at a third of that. */
export const JOB_LEASE_TTL_MS = 3 * 60_000;
/** How often a job waiting for another job of its family looks again. */
export const JOB_WAIT_POLL_MS = 30_000;

/**
 * Runs `work` as the one job training family `feature` of run `runId`, Batch job `job`. Batch can run two jobs for one
 * family (a SubmitJob retried after a timeout that had in fact submitted the first): the second finds the family's
 * lease held by a live job and waits for it to end, then runs `work`, which finds that job's models and result (training
 * resumes from what exists) instead of writing checkpoints beside it. The holder renews its lease while it works; a
 * job whose holder stopped renewing (killed, its host gone) is taken over after JOB_LEASE_TTL_MS. `lost` is called if
 * this job's lease is taken over while it works (its heartbeat found another holder): it must stop writing.
 */
export async function asOnlyJob<T>(
  ctx: StageContext,
  o: { runId: string; feature: string; job: string; lost: (message: string) => void; sleep?: (ms: number) => Promise<void> },
  work: () => Promise<T>,
): Promise<T> {
  const key = runKeys(o.runId).jobLease(o.feature);
  const sleep = o.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  let lock: RunLock | undefined;
  for (let waited = false; !lock; ) {
    const taken = await takeLease(ctx.store, key, o.runId, { job: o.job }, JOB_LEASE_TTL_MS, (holder, why) =>
      ctx.reporter.log(`train ${o.feature}: took over the family's job lease from ${holderText(holder)}: ${why}`),
    );
    if ('lock' in taken) lock = taken.lock;
    else {
      if (!waited) ctx.reporter.log(`train ${o.feature}: ${holderText(taken.holder)} is already training it (since ${taken.holder.startedAt}); waiting for it to end`);
      waited = true;
      await sleep(JOB_WAIT_POLL_MS);
    }
  }
  const held = lock;
  const heartbeat = setInterval(() => held.renew().catch((err: unknown) => o.lost((err as Error).message)), JOB_LEASE_TTL_MS / 3);
  heartbeat.unref();
  try {
    return await work();
  } finally {
    clearInterval(heartbeat);
    await held.release();
  }
}
