// The fault matrix of the README ("What happens when a stage fails"): every stage of the run × {fails once
// (retryable), fails always (permanent), times out, killed}, driven through the synthesized state machine with
// task stand-ins that fail the way AWS reports each fault (the Error and Cause Step Functions hands the Catch).
// Where the end state is MarkFailed, the real MarkFailed stage function then records the same payload in a run
// manifest on a folder store, and a redrive with the fault gone finishes the run, re-running only what failed.
// That nothing written before a failure is lost, and nothing is half-written, is shown with the real stages in
// test/integration/faults.test.ts, test/e2e/resume.test.ts and the store contract (test/support/blob-store-contract.ts).
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readManifest } from '../../../src/run/manifest.js';
import { lockRun } from '../../../src/run/run-lock.js';
import { silentReporter } from '../../../src/run/reporter.js';
import { FsBlobStore } from '../../../src/store/fs-store.js';
import { markFailed } from '../../../src/workflow/stages/mark-failed.js';
import type { StageName } from '../../../src/run/graph.js';
import { SYNTH_TIMEOUT, stateMachineDefinition, synth } from '../../support/cdk-template.js';
import { ARN, type Handlers, type Json, execute, fail, failure, redrive, succeeding, useDefinition } from '../../support/asl-harness.js';
import { sampleManifest } from '../../fixtures/report/sample-run.js';

type Fault = 'fails once' | 'fails always' | 'times out' | 'killed';

/** How Step Functions reports a fault of a task: the error object its Catch receives. */
interface Reported {
  Error: string;
  Cause: string;
}

/** The end state a cell expects. */
type End =
  | { end: 'retried and succeeded' }
  | { end: 'MarkFailed'; errorName: string; retryable: boolean; timeLimit?: 'function' | 'task' | 'job' | 'queue'; error: RegExp };

interface Cell {
  stage: StageName;
  fault: Fault;
  /** What the failing task reports, on every failing attempt. */
  reported: Reported;
  /** How many attempts fail before the task succeeds (Infinity: every attempt of this execution). */
  failingAttempts: number;
  expected: End;
}

/** A Lambda function's error as Step Functions reports it: the error type, and its JSON error object as the Cause. */
const lambdaError = (errorType: string, errorMessage: string): Reported => ({
  Error: errorType,
  Cause: JSON.stringify({ errorType, errorMessage, trace: [] }),
});
/** A Batch `.sync` task's failure: States.TaskFailed with the job description as the Cause. */
const jobFailed = (statusReason: string, exitCode?: number): Reported => ({
  Error: 'States.TaskFailed',
  Cause: JSON.stringify({
    JobId: '6f1c5a0e-7a55-4c39-9c65-2a9d2c8e0b11',
    JobName: 'textshift-train-bert',
    Status: 'FAILED',
    StatusReason: statusReason,
    ...(exitCode === undefined ? {} : { Container: { ExitCode: exitCode } }),
  }),
});
const REQUEST = 'RequestId: 0c5b7d0e-2b1a-4f34-9d51-8f0e3a9b2c11';

/** The Lambda stages: the same four faults, told apart by what Lambda and Step Functions report. */
const lambdaCells = (stage: StageName, permanent: Reported): Cell[] => [
  // Our handlers classify a dropped connection, throttling or a 5xx as TransientError, which the task retries.
  { stage, fault: 'fails once', reported: lambdaError('TransientError', 'read ECONNRESET'), failingAttempts: 1, expected: { end: 'retried and succeeded' } },
  { stage, fault: 'fails always', reported: permanent, failingAttempts: Infinity, expected: { end: 'MarkFailed', errorName: permanent.Error, retryable: false, error: new RegExp(`^${permanent.Error}: `) } },
  {
    stage,
    fault: 'times out',
    reported: lambdaError('Sandbox.Timedout', `${REQUEST} Error: Task timed out after 900.00 seconds`),
    failingAttempts: Infinity,
    expected: { end: 'MarkFailed', errorName: 'Sandbox.Timedout', retryable: false, timeLimit: 'function', error: /Task timed out after 900\.00 seconds/ },
  },
  {
    // The runtime killed (out of memory, or a crash of the process): Lambda reports Runtime.ExitError; the same
    // input would be killed again, so it is not retried.
    stage,
    fault: 'killed',
    reported: lambdaError('Runtime.ExitError', `${REQUEST} Error: Runtime exited with error: signal: killed`),
    failingAttempts: Infinity,
    expected: { end: 'MarkFailed', errorName: 'Runtime.ExitError', retryable: false, error: /Runtime exited with error: signal: killed/ },
  },
];

const CELLS: Cell[] = [
  ...lambdaCells('Prepare', lambdaError('ConfigError', 'experiments/a.json: field "model.hidden.0": expected at most 2048')),
  ...lambdaCells('Featurize', lambdaError('DataError', 'runs/a/splits/imdb/train.jsonl.gz line 7: expected a JSON object')),
  ...lambdaCells('Report', lambdaError('InternalError', 'runs/a/features/bow/bow_1/results.json: no test accuracy for imdb')),
  // The Batch API failing while submitting or polling the job (the job itself retries exit 75 and Spot reclaims
  // inside Batch, by its job definition's retry strategy: test/unit/cdk/training.test.ts).
  {
    stage: 'Train',
    fault: 'fails once',
    reported: { Error: 'Batch.ServerException', Cause: 'Service unavailable (Service: Batch, Status Code: 503)' },
    failingAttempts: 1,
    expected: { end: 'retried and succeeded' },
  },
  {
    stage: 'Train',
    fault: 'fails always',
    reported: jobFailed('Essential container in task exited', 1),
    failingAttempts: Infinity,
    expected: { end: 'MarkFailed', errorName: 'States.TaskFailed', retryable: false, error: /Essential container in task exited/ },
  },
  {
    stage: 'Train',
    fault: 'times out',
    reported: jobFailed('Job attempt duration exceeded timeout'),
    failingAttempts: Infinity,
    expected: { end: 'MarkFailed', errorName: 'States.TaskFailed', retryable: false, timeLimit: 'job', error: /Job attempt duration exceeded timeout/ },
  },
  {
    stage: 'Train',
    fault: 'times out',
    reported: jobFailed('Canceled by JobStateTimeLimit action due to reason: CAPACITY:INSUFFICIENT_INSTANCE_CAPACITY'),
    failingAttempts: Infinity,
    // Capacity or quota may come back: a redrive alone may get past it.
    expected: { end: 'MarkFailed', errorName: 'States.TaskFailed', retryable: true, timeLimit: 'queue', error: /CAPACITY:INSUFFICIENT_INSTANCE_CAPACITY/ },
  },
  {
    stage: 'Train',
    fault: 'times out',
    reported: { Error: 'States.Timeout', Cause: '' },
    failingAttempts: Infinity,
    expected: { end: 'MarkFailed', errorName: 'States.Timeout', retryable: false, timeLimit: 'task', error: /^States\.Timeout$/ },
  },
  {
    // The instance went away under the job (a Spot reclaim, a terminated host) on its last attempt.
    stage: 'Train',
    fault: 'killed',
    reported: jobFailed('Host EC2 (instance i-0a1b2c3d4e5f67890) terminated.'),
    failingAttempts: Infinity,
    expected: { end: 'MarkFailed', errorName: 'States.TaskFailed', retryable: true, error: /Host EC2 \(instance i-0a1b2c3d4e5f67890\) terminated/ },
  },
];

/** The task state of each stage the fault is injected into, and the one item of a fan-out it fails. */
const TASK: Record<StageName, { state: string; failsItem: (input: Json) => boolean }> = {
  Prepare: { state: 'Prepare', failsItem: () => true },
  Featurize: { state: 'Featurize shard', failsItem: (i) => i.Payload.shardKey === 's/1.json' },
  Train: { state: 'Train feature family', failsItem: (i) => i.Parameters.feature === 'bert' },
  Report: { state: 'Report', failsItem: () => true },
};

/** The stand-ins with `cell`'s fault injected (while `faulty()` holds); counts the failing item's attempts. */
function faulted(cell: Cell, faulty: () => boolean): { handlers: Handlers; attempts: () => number } {
  const task = TASK[cell.stage];
  let attempts = 0;
  const handler = (input: Json, n: number) => {
    if (task.failsItem(input)) {
      attempts++;
      if (faulty() && attempts <= cell.failingAttempts) throw fail(cell.reported.Error, cell.reported.Cause);
    }
    return succeeding[task.state]!(input, n);
  };
  return { handlers: { ...succeeding, [task.state]: handler }, attempts: () => attempts };
}

const cellName = (c: Cell) => `${c.stage} ${c.fault} (${c.reported.Error}${c.expected.end === 'MarkFailed' && c.expected.timeLimit ? `, ${c.expected.timeLimit} limit` : ''})`;
const RUN_ORDER = ['Prepare', 'Featurize shard', 'Train feature family', 'Report'];

describe('fault matrix: stage × fault → end state, through the synthesized state machine', () => {
  let dir: string;
  beforeAll(async () => {
    useDefinition(stateMachineDefinition(synth().template));
    dir = await mkdtemp(join(tmpdir(), 'textshift-fault-matrix-'));
  }, SYNTH_TIMEOUT);
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('covers every stage with every fault', () => {
    const covered = new Set(CELLS.map((c) => `${c.stage}/${c.fault}`));
    for (const stage of Object.keys(TASK)) for (const fault of ['fails once', 'fails always', 'times out', 'killed']) expect(covered).toContain(`${stage}/${fault}`);
  });

  it.each(CELLS.filter((c) => c.expected.end === 'retried and succeeded').map((c) => [cellName(c), c] as const))('%s: retried, and the run succeeds', async (_, cell) => {
    const { handlers, attempts } = faulted(cell, () => true);
    const run = await execute({ experiment: 'experiments/a.json', runId: 'a-once' }, handlers);
    expect(run.error).toBeUndefined();
    expect(attempts()).toBe(2);
    expect(run.calls.some((c) => c.state.startsWith('MarkFailed'))).toBe(false);
    expect(run.calls.at(-1)!.state).toBe('Report');
  });

  it.each(CELLS.filter((c) => c.expected.end === 'MarkFailed').map((c) => [cellName(c), c] as const))(
    '%s: one attempt, MarkFailed records stage, class and cause; a redrive re-runs only what failed',
    async (_, cell) => {
      const expected = cell.expected as Extract<End, { end: 'MarkFailed' }>;
      const runId = `a-${cell.stage.toLowerCase()}-${cell.fault.replace(' ', '-')}-${cell.reported.Error.replace(/\W/g, '')}`;
      let faulty = true;
      const { handlers, attempts } = faulted(cell, () => faulty);
      const failed = await execute({ experiment: 'experiments/a.json', runId }, handlers, runId);

      // Not retried: the same input would fail the same way (or the service already retried it).
      expect(attempts()).toBe(1);
      const marked = failed.calls.filter((c) => c.state === `MarkFailed ${cell.stage}`);
      expect(marked).toHaveLength(1);
      const payload = marked[0]!.input.Payload as { runId: string; stage: StageName; error: Reported; execution: string };
      expect(payload).toMatchObject({ runId, stage: cell.stage, error: cell.reported });
      // No later stage ran.
      const later = RUN_ORDER.slice(RUN_ORDER.indexOf(TASK[cell.stage].state) + 1);
      expect(failed.calls.filter((c) => later.includes(c.state))).toEqual([]);
      expect(['RunFailed', 'States.ExceedToleratedFailureThreshold']).toContain(failure(failed.error).Error);

      // The real MarkFailed with that payload: the run's manifest names stage, class and cause.
      const store = new FsBlobStore(join(dir, runId));
      await store.put(`runs/${runId}/manifest.json`, JSON.stringify({ ...sampleManifest(), runId, status: 'running', stages: {} }));
      // The run is held by the execution that failed (Prepare took its lease): MarkFailed records only for its holder.
      expect(payload.execution).toBe(ARN(runId));
      await lockRun(store, runId, () => undefined, { execution: payload.execution });
      await markFailed({ store, data: store, reporter: silentReporter }, payload);
      const manifest = await readManifest(store, runId);
      expect(manifest.status).toBe('failed');
      expect(manifest.failure).toMatchObject({ stage: cell.stage, errorName: expected.errorName, retryable: expected.retryable });
      expect(manifest.failure!.error).toMatch(expected.error);
      expect(manifest.failure!.timeLimit?.limit).toBe(expected.timeLimit);
      expect((await store.getOrThrow(`runs/${runId}/report/report.html`)).toString()).toContain(cell.stage);

      // With the cause fixed, a redrive resumes: the failed item runs again, then the stages after it; nothing that
      // finished runs again.
      faulty = false;
      const redriven = await redrive(failed, handlers);
      expect(redriven.error).toBeUndefined();
      const rerun = redriven.calls.filter((c) => !c.state.startsWith('MarkFailed')).map((c) => c.state);
      const fannedOut = cell.stage === 'Featurize' || cell.stage === 'Train';
      expect(rerun.filter((s) => s === TASK[cell.stage].state)).toHaveLength(1);
      expect(rerun.filter((s) => RUN_ORDER.indexOf(s) < RUN_ORDER.indexOf(TASK[cell.stage].state))).toEqual([]);
      expect(rerun.at(-1)).toBe('Report');
      if (fannedOut) expect(redriven.calls.find((c) => c.state === TASK[cell.stage].state)!.input).toSatisfy(TASK[cell.stage].failsItem);
    },
  );
});
