// Spend across runs through the stages: Prepare admits a run under the deployment's caps or refuses it with the
// numbers before anything of it is split; MarkFailed releases its slot; a local run (no caps) leaves no ledger.
import { describe, expect, it } from 'vitest';
import { tempStore } from '../../../fixtures/data/temp-store.js';
import type { PlanDeployment, SpendCaps } from '../../../../src/config/deployment.js';
import { readSpendLedger } from '../../../../src/cost/spend-ledger.js';
import { BudgetExceededError } from '../../../../src/errors/index.js';
import { SPEND_LEDGER_KEY } from '../../../../src/run/keys.js';
import { readManifest } from '../../../../src/run/manifest.js';
import { silentReporter } from '../../../../src/run/reporter.js';
import { markFailed } from '../../../../src/workflow/stages/mark-failed.js';
import { prepare } from '../../../../src/workflow/stages/prepare.js';
import { testDeployment } from '../../../support/deployment.js';
import { meetingWriters } from '../../../support/spend-ledger.js';
import { smallExperiment } from '../../../fixtures/experiments/small-experiment.js';

const experiment = smallExperiment();
const rows = Array.from({ length: 40 }, (_, i) => `${i % 2 ? 'good fine great' : 'bad awful poor'} text number${i}\t${i % 2}`);
const experimentKey = 'experiments/small.json';

const local = await testDeployment();
const deployed = (spend: Partial<SpendCaps>): PlanDeployment => ({ ...local, spend: { maxConcurrentRuns: 4, maxDailyCostUsd: 500, maxRunHours: 48, ...spend } });

async function setup() {
  const store = await tempStore({ [experimentKey]: JSON.stringify(experiment) });
  const data = await tempStore({ 'a.tsv': `${rows.join('\n')}\n` });
  return { store, data };
}

/** The run's keys under splits/ and shards/: empty when Prepare stopped before splitting. */
async function splitAndShards(store: Awaited<ReturnType<typeof setup>>['store'], runId: string): Promise<string[]> {
  return (await store.list(`runs/${runId}/`)).map((o) => o.key).filter((k) => k.includes('/splits/') || k.includes('/shards/'));
}

describe('Prepare on a deployment admits the run under its caps across runs', () => {
  it('two Prepares at once at a cap of one run: one is admitted and prepared, the other refused with the numbers before any split', async () => {
    const { store, data } = await setup();
    const racing = meetingWriters(store, SPEND_LEDGER_KEY, 2);
    const ctx = { store: racing, data, reporter: silentReporter };
    const deployment = deployed({ maxConcurrentRuns: 1 });
    const outcomes = await Promise.allSettled(['u1', 'u2'].map((uploadId) => prepare(ctx, { experimentKey, uploadId }, { deployment })));

    const admitted = outcomes.flatMap((o) => (o.status === 'fulfilled' ? [o.value.runId] : []));
    const refused = outcomes.flatMap((o) => (o.status === 'rejected' ? [o.reason as Error] : []));
    expect(admitted).toHaveLength(1);
    expect(refused).toHaveLength(1);
    expect(refused[0]).toBeInstanceOf(BudgetExceededError);
    const refusedRun = /run (small-[0-9a-f]{12}) is refused/.exec(refused[0]!.message)![1]!;
    expect(refused[0]!.message).toContain(
      `${store.url}/${experimentKey}: run ${refusedRun} is refused: 1 runs are active on this deployment, its cap is 1 (maxConcurrentRuns in cdk.json): ${admitted[0]} (since `,
    );
    expect(await splitAndShards(store, admitted[0]!)).not.toEqual([]);
    expect(await splitAndShards(store, refusedRun)).toEqual([]);
    expect((await readManifest(store, refusedRun)).stages.prepare).toMatchObject({ status: 'failed', errorName: 'BudgetExceededError', retryable: false });

    // MarkFailed of the refused run leaves the admitted run's slot alone; MarkFailed of the admitted run frees it.
    const mark = (runId: string) => markFailed({ store, data, reporter: silentReporter }, { runId, stage: 'Prepare', error: { Error: 'BudgetExceededError', Cause: 'x' } });
    await mark(refusedRun);
    expect((await readSpendLedger(store)).runs[admitted[0]!]?.releasedAt).toBeUndefined();
    await mark(admitted[0]!);
    expect((await readSpendLedger(store)).runs[admitted[0]!]).toMatchObject({ outcome: 'failed', releasedAt: expect.any(String) });
    expect(Object.keys((await readSpendLedger(store)).runs)).toEqual([admitted[0]]);
  });

  it("refuses a run over the daily cap naming today's planned spend, its estimate and the cap; nothing is split", async () => {
    const { store, data } = await setup();
    const attempt = prepare({ store, data, reporter: silentReporter }, { experimentKey }, { deployment: deployed({ maxDailyCostUsd: 0.0001 }) });
    await expect(attempt).rejects.toThrow(BudgetExceededError);
    await expect(attempt).rejects.toThrow(
      /: run (small-[0-9a-f]{12}) is refused: today's \(\d{4}-\d\d-\d\d UTC\) planned spend \$0\.0000 \(0 runs admitted\) plus this run's estimate \$0\.\d{4} is \$0\.\d{4}, above this deployment's daily cap \$0\.0001 \(maxDailyCostUsd in cdk\.json\)/,
    );
    const runId = (await store.list('runs/'))[0]!.key.split('/')[1]!;
    expect(await splitAndShards(store, runId)).toEqual([]);
    expect(await store.head(SPEND_LEDGER_KEY)).toBeUndefined();
  });

  it('a retried Prepare of the admitted run (failed after admission) is admitted again and counted once', async () => {
    const { store, data } = await setup();
    const deployment = deployed({ maxConcurrentRuns: 1 });
    // A Prepare that failed after its admission, before storing its plan, is retried: without the stored plan the
    // second Prepare goes through the guard and the admission again, as the retry does.
    const first = await prepare({ store, data, reporter: silentReporter }, { experimentKey }, { deployment });
    await store.delete(`runs/${first.runId}/prepare.json`);
    const again = await prepare({ store, data, reporter: silentReporter }, { experimentKey, runId: first.runId }, { deployment });
    expect(again.runId).toBe(first.runId);
    const ledger = await readSpendLedger(store);
    expect(Object.keys(ledger.runs)).toEqual([first.runId]);
    expect(Object.values(ledger.days).map((d) => d.runs)).toEqual([1]);
  });

  it('a local run (no caps given) is not admitted: it writes no ledger', async () => {
    const { store, data } = await setup();
    await prepare({ store, data, reporter: silentReporter }, { experimentKey }, { deployment: local });
    expect(await store.head(SPEND_LEDGER_KEY)).toBeUndefined();
  });
});
