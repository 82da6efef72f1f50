// Prepare's cost guard in the synthesized state machine, run as in workflow.test.ts (aws-local-stepfunctions; Lambda
// handlers in-process with each function's environment from the template; S3 in the emulator) on the tiny
// experiment: a stack deployed with a tiny maxRunCostUsd refuses the run in Prepare, before anything of it is
// computed, and MarkFailed records the refusal as a permanent BudgetExceededError. (A run within the default limit
// is every other run of workflow.test.ts and faults.test.ts.)
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { Manifest } from '../../src/run/manifest.js';
import { SYNTH_TIMEOUT } from '../support/cdk-template.js';
import { onRealAws } from './setup/aws.js';
import { targetClients } from './support/clients.js';
import { type SynthesizedStack, synthesizeStack } from './support/deploy.js';
import { type LocalRunBed, localRunBed } from './support/local-run-bed.js';

const target = inject('awsEmulator');
const SKIP = onRealAws();
if (SKIP) console.log('[integration] cost-guard.test.ts skipped on real AWS: it runs the Lambda handlers in-process against an emulator');

describe.skipIf(SKIP)(`cost guard in the synthesized state machine (aws-local-stepfunctions, handlers in-process, S3 in ${target})`, () => {
  const clients = targetClients();
  let bed: LocalRunBed;
  let stingy: SynthesizedStack;

  beforeAll(async () => {
    bed = await localRunBed(clients);
    // `cdk deploy -c maxRunCostUsd=0.0001`: the limit reaches Prepare through its environment in the template.
    stingy = synthesizeStack({ maxRunCostUsd: '0.0001', trainerCompute: 'cpu' });
  }, SYNTH_TIMEOUT);

  afterAll(async () => {
    await bed?.dispose();
    clients.destroy();
  });

  it('a run whose estimate is above maxRunCostUsd fails in Prepare with the numbers; MarkFailed records BudgetExceededError, not retryable; nothing computed', async () => {
    const runId = `tiny-budget-${randomBytes(4).toString('hex')}`;
    const execution = await bed.workflow(stingy).execute({ experimentKey: bed.experimentKey, runId, quick: true }, runId);

    expect(execution.status).toBe('FAILED');
    const prepare = execution.lambdaCalls.filter((c) => c.fn === 'prepare');
    // Permanent: the definition's Retry does not try it again.
    expect(prepare).toHaveLength(1);
    expect(prepare[0]!.error).toMatch(/^BudgetExceededError: s3:\/\/[^ ]+\/experiments\/tiny\.json: the run's estimated cost \$\d+\.\d{4} is above its limit \$0\.0001 \(maxRunCostUsd in cdk\.json\)\. To run it, set "budgetUsd"/);
    expect(execution.lambdaCalls.map((c) => c.fn)).toEqual(['prepare', 'mark-failed']);
    expect(execution.entered.map((s) => s.state)).toContain('Prepare failed');
    expect(execution.jobs).toEqual([]);

    const manifest = JSON.parse((await bed.store.getOrThrow(`runs/${runId}/manifest.json`)).toString('utf8')) as Manifest;
    expect(manifest.status).toBe('failed');
    expect(manifest.failure).toMatchObject({ stage: 'Prepare', errorName: 'BudgetExceededError', retryable: false });
    expect(manifest.failure!.error).toMatch(/above its limit \$0\.0001/);
    // No split, shard, vocabulary or plan: only the run's record and the page saying why it failed.
    const keys = (await bed.store.list(`runs/${runId}/`)).map((o) => o.key);
    // The run's lease (taken by Prepare for the execution, released by MarkFailed), its record and its failure page.
    expect(keys.sort()).toEqual([`runs/${runId}/lock.json`, `runs/${runId}/manifest.json`, `runs/${runId}/report/report.html`]);
    expect(await bed.store.list('cache/')).toEqual([]);
  }, 120_000);
});
