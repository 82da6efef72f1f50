import { describe, expect, it, onTestFinished } from 'vitest';
import type { SpendCaps } from '../../src/config/deployment.js';
import { admitRun, readSpendLedger, releaseRun, type Clock } from '../../src/cost/spend-ledger.js';
import { BudgetExceededError, InvalidDataError } from '../../src/errors/index.js';
import { SPEND_LEDGER_KEY } from '../../src/run/keys.js';
import type { BlobStore } from '../../src/store/blob-store.js';
import type { StoreFactory } from './manifest-updates.js';

/**
 * `store`, whose puts of `key` wait until `writers` of them are pending: every writer has read the object and decided
 * before any of them writes, the interleaving in which an unconditional read-modify-write admits them all.
 */
export function meetingWriters(store: BlobStore, key: string, writers: number): BlobStore {
  let pending = 0;
  let open!: () => void;
  const gate = new Promise<void>((r) => (open = r));
  return Object.assign(Object.create(store) as BlobStore, {
    put: async (k: string, body: string | Uint8Array, condition?: Parameters<BlobStore['put']>[2]) => {
      if (k === key && ++pending <= writers) {
        if (pending === writers) open();
        await gate;
      }
      return store.put(k, body, condition);
    },
  });
}

/** A clock a test moves by hand. */
export function testClock(start: string): Clock & { advanceHours(h: number): void } {
  let at = Date.parse(start);
  return Object.assign(() => new Date(at), { advanceHours: (h: number) => void (at += h * 3_600_000) });
}

const caps = (c: Partial<SpendCaps> = {}): SpendCaps => ({ maxConcurrentRuns: 2, maxDailyCostUsd: 30, maxRunHours: 48, ...c });
const run = (runId: string, estimateUsd = 1) => ({ runId, estimateUsd, source: `s3://b/experiments/${runId}.json` });

/** The admission of runs against a deployment's caps across runs, on `name`'s store. */
export function describeSpendLedger(name: string, create: StoreFactory): void {
  async function open(): Promise<BlobStore> {
    const { store, cleanup } = await create();
    onTestFinished(cleanup);
    return store;
  }

  describe(`${name}: spend across runs`, () => {
    it('two Prepares at the concurrency cap at once: exactly one is admitted, the other refused naming the runs active and the cap', async () => {
      const store = await open();
      const clock = testClock('2026-03-01T10:00:00Z');
      await admitRun(store, run('first'), caps(), clock);
      // Both read the ledger with one run active (one slot free) and both write: only one write may hold.
      const racing = meetingWriters(store, SPEND_LEDGER_KEY, 2);
      const outcomes = await Promise.allSettled([admitRun(racing, run('a'), caps(), clock), admitRun(racing, run('b'), caps(), clock)]);
      const admitted = outcomes.filter((o) => o.status === 'fulfilled');
      const refused = outcomes.filter((o): o is PromiseRejectedResult => o.status === 'rejected');
      expect(admitted).toHaveLength(1);
      expect(refused).toHaveLength(1);
      expect(refused[0]!.reason).toBeInstanceOf(BudgetExceededError);
      expect(refused[0]!.reason.message).toMatch(
        /^s3:\/\/b\/experiments\/[ab]\.json: run [ab] is refused: 2 runs are active on this deployment, its cap is 2 \(maxConcurrentRuns in cdk\.json\): first \(since 2026-03-01T10:00:00\.000Z\), [ab] \(since 2026-03-01T10:00:00\.000Z\)\. Start it again when one of them has ended \(a run frees its slot when it succeeds or fails, or 48 h after it was admitted, maxRunHours\), or raise the cap \(cdk deploy -c maxConcurrentRuns=\.\.\.\)$/,
      );
      const ledger = await readSpendLedger(store);
      expect(Object.keys(ledger.runs).sort()).toEqual(['first', (admitted[0] as PromiseFulfilledResult<{ runId: string }>).value.runId].sort());
      expect(ledger.days['2026-03-01']).toEqual({ plannedUsd: 2, runs: 2 });
    });

    it("refuses a run that would take today's planned spend over the daily cap, with the numbers; the next UTC day admits it", async () => {
      const store = await open();
      const clock = testClock('2026-03-01T22:00:00Z');
      const wide = caps({ maxConcurrentRuns: 10 });
      await admitRun(store, run('r1', 12.5), wide, clock);
      await admitRun(store, run('r2', 12.5), wide, clock);
      const refusal = admitRun(store, run('r3', 10), wide, clock);
      await expect(refusal).rejects.toThrow(BudgetExceededError);
      await expect(refusal).rejects.toThrow(
        "s3://b/experiments/r3.json: run r3 is refused: today's (2026-03-01 UTC) planned spend $25.0000 (2 runs admitted) plus this run's " +
          "estimate $10.0000 is $35.0000, above this deployment's daily cap $30 (maxDailyCostUsd in cdk.json). Start it after 00:00 UTC, " +
          'shrink it (textshift plan shows its estimate), or raise the cap (cdk deploy -c maxDailyCostUsd=...)',
      );
      expect(Object.keys((await readSpendLedger(store)).runs).sort()).toEqual(['r1', 'r2']);
      clock.advanceHours(2);
      expect(await admitRun(store, run('r3', 10), wide, clock)).toMatchObject({ day: '2026-03-02', plannedUsd: 10, active: 3, readmitted: false });
      expect((await readSpendLedger(store)).days).toEqual({ '2026-03-01': { plannedUsd: 25, runs: 2 }, '2026-03-02': { plannedUsd: 10, runs: 1 } });
    });

    it('a retried Prepare of an admitted run is admitted again without counting it twice, even at both caps', async () => {
      const store = await open();
      const clock = testClock('2026-03-01T10:00:00Z');
      const tight = caps({ maxConcurrentRuns: 1, maxDailyCostUsd: 5 });
      await admitRun(store, run('r1', 5), tight, clock);
      const before = await store.head(SPEND_LEDGER_KEY);
      expect(await admitRun(store, run('r1', 5), tight, clock)).toMatchObject({ active: 1, plannedUsd: 5, readmitted: true });
      // Nothing was written: the ledger is the same object.
      expect((await store.head(SPEND_LEDGER_KEY))!.etag).toBe(before!.etag);
      expect((await readSpendLedger(store)).days['2026-03-01']).toEqual({ plannedUsd: 5, runs: 1 });
    });

    it('a run that ended frees its slot, its estimate stays counted; resumed the same day it needs a slot again but is not counted again', async () => {
      const store = await open();
      const clock = testClock('2026-03-01T10:00:00Z');
      const one = caps({ maxConcurrentRuns: 1 });
      await admitRun(store, run('r1', 4), one, clock);
      await expect(admitRun(store, run('r2', 4), one, clock)).rejects.toThrow(/1 runs are active on this deployment, its cap is 1 .*: r1 \(since/);
      expect(await releaseRun(store, 'r1', 'succeeded', clock)).toBe(true);
      expect(await releaseRun(store, 'r1', 'succeeded', clock)).toBe(false);
      expect(await admitRun(store, run('r2', 4), one, clock)).toMatchObject({ active: 1, plannedUsd: 8 });
      await releaseRun(store, 'r2', 'failed', clock);
      expect(await admitRun(store, run('r1', 4), one, clock)).toMatchObject({ active: 1, plannedUsd: 8, readmitted: true });
      const ledger = await readSpendLedger(store);
      expect(ledger.days['2026-03-01']).toEqual({ plannedUsd: 8, runs: 2 });
      expect(ledger.runs.r2).toMatchObject({ estimateUsd: 4, outcome: 'failed', releasedAt: '2026-03-01T10:00:00.000Z' });
      expect(ledger.runs.r1!.releasedAt).toBeUndefined();
    });

    it("a run that never released its slot (stopped, timed out) frees it maxRunHours after admission, and leaves the ledger the next day", async () => {
      const store = await open();
      const clock = testClock('2026-03-01T10:00:00Z');
      const one = caps({ maxConcurrentRuns: 1, maxRunHours: 6 });
      await admitRun(store, run('crashed'), one, clock);
      clock.advanceHours(5.9);
      await expect(admitRun(store, run('next'), one, clock)).rejects.toThrow(/its cap is 1 .*crashed/);
      clock.advanceHours(0.2);
      expect(await admitRun(store, run('next'), one, clock)).toMatchObject({ active: 1 });
      clock.advanceHours(24);
      await releaseRun(store, 'next', 'succeeded', clock);
      // Both were admitted on an earlier day and hold no slot: only the day's total is kept.
      await admitRun(store, run('later'), one, clock);
      const ledger = await readSpendLedger(store);
      expect(Object.keys(ledger.runs)).toEqual(['later']);
      expect(ledger.days['2026-03-01']).toEqual({ plannedUsd: 2, runs: 2 });
    });

    it('releasing a run that was never admitted (refused, or run locally) writes nothing', async () => {
      const store = await open();
      expect(await releaseRun(store, 'never', 'failed')).toBe(false);
      expect(await store.head(SPEND_LEDGER_KEY)).toBeUndefined();
    });

    it('a ledger that is not one fails naming its key, and is left as it is', async () => {
      const store = await open();
      await store.put(SPEND_LEDGER_KEY, '{"version": 1, "runs": {"r": {"day": 3}}, "days": {}}');
      const attempt = admitRun(store, run('r1'), caps());
      await expect(attempt).rejects.toThrow(InvalidDataError);
      await expect(attempt).rejects.toThrow(/spend\/ledger\.json is not a spend ledger: "runs\.r\.day": .*; delete it to start counting afresh/);
      expect((await store.get(SPEND_LEDGER_KEY))!.toString()).toContain('"day": 3');
    });
  });
}
