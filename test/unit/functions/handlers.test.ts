// The Lambda handlers called in-process with the payloads the synthesized state machine sends them (see the
// ASL in cdk/constructs/workflow.ts), against a folder store (TEXTSHIFT_STORE_URL) holding the real tiny
// experiment and the real SST-2/IMDB files as its datasets/ (TEXTSHIFT_DATA_URL). No network.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { handler as featurizeHandler } from '../../../functions/featurize/index.js';
import { handler as markFailedHandler } from '../../../functions/mark-failed/index.js';
import { handler as prepareHandler } from '../../../functions/prepare/index.js';
import { handler as reportHandler, reportHandler as reportHandlerWith } from '../../../functions/report/index.js';
import { DEPLOYMENT_ENV } from '../../../src/config/deployment-env.js';
import { FsBlobStore } from '../../../src/store/fs-store.js';
import { readShardPlan } from '../../../src/run/shard-plan.js';
import type { Manifest } from '../../../src/run/manifest.js';
import { silentReporter } from '../../../src/run/reporter.js';
import type { FeaturizeOutput, PrepareOutput, ReportOutput } from '../../../src/workflow/stage-io.js';
import { train } from '../../../src/workflow/stages/train.js';
import type { CostReport } from '../../../src/cost/cost.js';
import { RECORDED_EXECUTION_ARN, RECORDED_FUNCTIONS, recordedApis } from '../../fixtures/billing/recorded-apis.js';
import { s3ErrorServer } from '../../support/s3-error-server.js';
import { dataRoot } from '../../support/data.js';
import { testDeployment } from '../../support/deployment.js';

const RUN_ID = 'tiny-0a1b2c3d4e5f60718293a4b5c6d7e8f9';
/** The execution running the runs of these tests ($$.Execution.Id): Prepare takes each run's lease for it. */
const EXECUTION = 'arn:aws:states:eu-west-1:123456789012:execution:textshift-run:exec-1';
/** Prepare's Payload as the state machine sends it: the PrepareInput and the execution running the run. */
const prepareEvent = (prepareInput: Record<string, unknown>) => ({ prepareInput, execution: EXECUTION });
const dir = mkdtempSync(join(tmpdir(), 'textshift-handlers-'));
const store = new FsBlobStore(dir);
const { storeUrl: STORE_URL_ENV, dataUrl: DATA_URL_ENV, costOptions: COST_OPTIONS_ENV, stageFunctions: STAGE_FUNCTIONS_ENV, planDeployment: PLAN_DEPLOYMENT_ENV } = DEPLOYMENT_ENV;
const saved = { store: process.env[STORE_URL_ENV], data: process.env[DATA_URL_ENV], bucket: process.env.BUCKET, plan: process.env[PLAN_DEPLOYMENT_ENV] };

beforeAll(async () => {
  process.env[STORE_URL_ENV] = pathToFileURL(dir).href;
  process.env[DATA_URL_ENV] = pathToFileURL(dataRoot()).href;
  delete process.env.BUCKET;
  // What the stack sets on the Prepare function from cdk.json.
  process.env[PLAN_DEPLOYMENT_ENV] = JSON.stringify(await testDeployment());
  await store.put('experiments/tiny.json', readFileSync(new URL('../../fixtures/experiments/tiny.json', import.meta.url)));
});
afterAll(() => {
  for (const [name, value] of [[STORE_URL_ENV, saved.store], [DATA_URL_ENV, saved.data], ['BUCKET', saved.bucket], [PLAN_DEPLOYMENT_ENV, saved.plan]] as const) {
    if (value === undefined) delete process.env[name];
    else process.env[name] = value;
  }
  rmSync(dir, { recursive: true, force: true });
});

const json = async <T>(key: string) => JSON.parse((await store.getOrThrow(key)).toString('utf8')) as T;
const manifest = () => json<Manifest>(`runs/${RUN_ID}/manifest.json`);

describe('Lambda handlers on the state machine payloads (in-process, folder store, real tiny experiment)', () => {
  let plan: PrepareOutput;
  let shardKeys: string[];
  let shards: FeaturizeOutput[];

  it('prepare: the "Run input" payload {experimentKey, uploadId, runId, quick} -> run id, shard plan, families; splits and plan written', async () => {
    // What "Prepare" receives as Payload ($.prepareInput) for an execution started with this input.
    plan = await prepareHandler(prepareEvent({ experimentKey: 'experiments/tiny.json', uploadId: 'console-run-1', runId: RUN_ID, quick: true }));
    expect(plan.runId).toBe(RUN_ID);
    expect(plan.features).toEqual(['bow']);
    // Only the plan's key and count travel; the shard keys are in the plan object (the Distributed Map's items).
    expect(plan.shardPlan).toEqual({ key: `runs/${RUN_ID}/shards.json`, count: 6, batches: 6, resultsPrefix: `runs/${RUN_ID}/featurize-map` });
    shardKeys = await readShardPlan(store, RUN_ID, plan.shardPlan);
    expect([...shardKeys].sort()).toEqual(
      ['sst2/train', 'sst2/val', 'sst2/test', 'imdb/train', 'imdb/val', 'imdb/test'].map((p) => `runs/${RUN_ID}/shards/bow/${p}/00000.json`).sort(),
    );
    for (const key of shardKeys) expect(await store.head(key), key).toBeDefined();
    const m = await manifest();
    expect(m.stages.prepare!.status).toBe('succeeded');
    expect(m.quick).toBe(true);
    // The quick caps of the tiny experiment, applied after the seeded split.
    expect(m.splits.bow).toEqual({ 'sst2/train': 800, 'sst2/val': 200, 'imdb/train': 1200, 'imdb/val': 300, 'sst2/test': 300, 'imdb/test': 300 });
    expect(await store.head(`runs/${RUN_ID}/splits/imdb/train.jsonl.gz`)).toBeDefined();
    expect((await json<{ terms: string[] }>(`runs/${RUN_ID}/features/bow/vocabulary.json`)).terms).toHaveLength(2000);
  });

  it('prepare again (a retried or redriven task) returns the stored plan', async () => {
    expect(await prepareHandler(prepareEvent({ experimentKey: 'experiments/tiny.json', uploadId: 'console-run-1', runId: RUN_ID, quick: true }))).toEqual(plan);
  });

  it('prepare reads the experiment at the upload\'s version: a folder store, which keeps none, refuses naming key and version', async () => {
    await expect(prepareHandler(prepareEvent({ experimentKey: 'experiments/tiny.json', uploadId: 'v1', experimentVersion: 'v1', runId: 'tiny-versioned' }))).rejects.toThrow(
      /a folder store keeps no object versions, so "experiments\/tiny\.json" cannot be read at version "v1"$/,
    );
  });

  it('featurize: one Map item {runId, shardKey} -> the shard\'s cache key; a second call finds the cache', async () => {
    shards = [];
    for (const shardKey of shardKeys) shards.push(await featurizeHandler({ runId: RUN_ID, shardKey }));
    for (const [i, out] of shards.entries()) {
      expect(out).toEqual({ shardKey: shardKeys[i], cacheKey: expect.stringMatching(/^cache\/features\/[0-9a-f]{64}\.csr$/), cached: false });
      expect((await store.head(out.cacheKey))!.size).toBeGreaterThan(0);
      const recorded = await json<{ rows: number; cacheKey: string }>(out.shardKey.replace('/shards/', '/featurized/'));
      expect(recorded.cacheKey).toBe(out.cacheKey);
    }
    const rows = await Promise.all(shards.map(async (s) => (await json<{ rows: number }>(s.shardKey.replace('/shards/', '/featurized/'))).rows));
    expect(rows.reduce((a, b) => a + b, 0)).toBe(800 + 200 + 1200 + 300 + 300 + 300);
    expect(await featurizeHandler({ runId: RUN_ID, shardKey: shardKeys[0] })).toEqual({ ...shards[0], cached: true });
  });

  it('mark-failed: a Catch payload records stage and cause in the manifest, then fails the invocation with RunFailed', async () => {
    const event = {
      runId: RUN_ID,
      stage: 'Train',
      error: { Error: 'States.TaskFailed', Cause: '{"Status":"FAILED","StatusReason":"Essential container in task exited"}' },
      failedAtRedrive: 0,
      redriveCount: 0,
      execution: EXECUTION,
    };
    const failure = await markFailedHandler(event).then(
      () => undefined,
      (err: Error) => err,
    );
    expect(failure?.name).toBe('RunFailed');
    expect(failure?.message).toBe(
      `Train failed: States.TaskFailed: Essential container in task exited (run ${RUN_ID}; fix the cause, then redrive the execution to resume)`,
    );
    const m = await manifest();
    expect(m.status).toBe('failed');
    // A job that exited 1 (not EX_TEMPFAIL) after Batch's own retries: not retryable.
    expect(m.failure).toEqual({ stage: 'Train', error: 'States.TaskFailed: Essential container in task exited', errorName: 'States.TaskFailed', retryable: false });
    expect(m.stages.Train).toMatchObject({ status: 'failed', error: 'States.TaskFailed: Essential container in task exited', errorName: 'States.TaskFailed', retryable: false });
    // Nothing the run had written is touched.
    for (const s of shards) expect(await store.head(s.cacheKey)).toBeDefined();
  });

  it('mark-failed re-entered by a redrive (redrive count now above the one at failure) clears the failure and returns', async () => {
    const event = { runId: RUN_ID, stage: 'Train', error: { Error: 'States.TaskFailed', Cause: 'x' }, failedAtRedrive: 0, redriveCount: 1, execution: EXECUTION };
    expect(await markFailedHandler(event)).toEqual({ runId: RUN_ID, stage: 'Train', resumed: true });
    const m = await manifest();
    expect(m.status).toBe('running');
    expect(m.failure).toBeUndefined();
  });

  it('mark-failed records the error class a Catch caught: a DataError is not retryable; a TransientError, or a Batch job that exited 75, is', async () => {
    const fail = (error: { Error: string; Cause: string }) =>
      markFailedHandler({ runId: RUN_ID, stage: 'Featurize', error, failedAtRedrive: 0, redriveCount: 0, execution: EXECUTION }).then(
        () => undefined,
        (err: Error) => err,
      );
    // As Lambda reports an error that left the featurize handler: Error = its name, Cause = {errorType, errorMessage, trace}.
    const lambdaCause = (errorType: string, errorMessage: string) => JSON.stringify({ errorType, errorMessage, trace: [`${errorType}: ${errorMessage}`] });

    expect((await fail({ Error: 'DataError', Cause: lambdaCause('DataError', 'sst2/train.tsv:9: label "maybe" is not one of "0", "1"') }))?.name).toBe('RunFailed');
    let m = await manifest();
    expect(m.failure).toEqual({ stage: 'Featurize', error: 'DataError: sst2/train.tsv:9: label "maybe" is not one of "0", "1"', errorName: 'DataError', retryable: false });
    expect(m.stages.Featurize).toMatchObject({ status: 'failed', errorName: 'DataError', retryable: false });

    await fail({ Error: 'TransientError', Cause: lambdaCause('TransientError', 'Please reduce your request rate.') });
    m = await manifest();
    expect(m.failure).toEqual({ stage: 'Featurize', error: 'TransientError: Please reduce your request rate.', errorName: 'TransientError', retryable: true });
    expect(m.stages.Featurize).toMatchObject({ errorName: 'TransientError', retryable: true });

    // A Batch job (the Cause is its description) whose last attempt exited EX_TEMPFAIL: transient, retries used up.
    await fail({ Error: 'States.TaskFailed', Cause: JSON.stringify({ Status: 'FAILED', StatusReason: 'Essential container in task exited', Container: { ExitCode: 75 } }) });
    expect((await manifest()).failure).toMatchObject({ errorName: 'States.TaskFailed', retryable: true });

    expect(await markFailedHandler({ runId: RUN_ID, stage: 'Featurize', error: {}, failedAtRedrive: 0, redriveCount: 1, execution: EXECUTION })).toMatchObject({ resumed: true });
  });

  it('mark-failed for a run that failed before it had a manifest (Prepare on a bad experiment): RunFailed with the cause, nothing written', async () => {
    const event = {
      runId: 'tiny-never-prepared',
      stage: 'Prepare',
      error: { Error: 'Error', Cause: '{"errorType":"Error","errorMessage":"experiments/bad.json: field \\"seed\\": expected number"}' },
      failedAtRedrive: 0,
      redriveCount: 0,
      execution: EXECUTION,
    };
    await expect(markFailedHandler(event)).rejects.toThrow(
      'Prepare failed: Error: experiments/bad.json: field "seed": expected number (run tiny-never-prepared; fix the cause, then redrive the execution to resume)',
    );
    expect(await store.list('runs/tiny-never-prepared/')).toEqual([]);
    expect(await markFailedHandler({ ...event, redriveCount: 1 })).toEqual({ runId: 'tiny-never-prepared', stage: 'Prepare', resumed: true });
  });

  it('report: {runId} after training -> keys of results, HTML, cost report and archive, all written; run succeeded', async () => {
    // Training runs in-process here (the trainer entry has its own test); Report only reads what it wrote.
    await train({ store, data: new FsBlobStore(dataRoot()), reporter: silentReporter }, { runId: RUN_ID, feature: 'bow' });
    const out: ReportOutput = await reportHandler({ runId: RUN_ID });
    expect(out).toEqual({
      runId: RUN_ID,
      resultsKey: `runs/${RUN_ID}/report/results.json`,
      reportKey: `runs/${RUN_ID}/report/report.html`,
      costKey: `runs/${RUN_ID}/report/cost.json`,
      archiveKey: `runs/${RUN_ID}/checkpoints.zip`,
    });
    for (const key of Object.values(out).slice(1)) expect((await store.head(key))!.size, key).toBeGreaterThan(0);
    const results = await json<{ models: { model: string }[]; evaluations: unknown[] }>(out.resultsKey);
    expect(results.models.map((m) => m.model)).toEqual(['bow_1', 'bow_2']);
    expect(results.evaluations).toHaveLength(4);
    // Without an execution ARN (not on AWS) the cost report is the measured estimate.
    expect((await json<{ basis: string }>(out.costKey)).basis).toBe('measured');
    const m = await manifest();
    expect(m.status).toBe('succeeded');
    expect(m.stages.report!.status).toBe('succeeded');
  });

  describe('report on AWS: {runId, executionArn} prices the billed usage', () => {
    const env = { [COST_OPTIONS_ENV]: process.env[COST_OPTIONS_ENV], [STAGE_FUNCTIONS_ENV]: process.env[STAGE_FUNCTIONS_ENV] };
    beforeAll(() => {
      // What the stack sets on the Report function.
      process.env[COST_OPTIONS_ENV] = JSON.stringify({ batchInstanceType: 'g4dn.xlarge', batchMarket: 'spot', lambdaMemoryMb: { prepare: 3008, featurize: 2048, report: 1024, markFailed: 256 } });
      process.env[STAGE_FUNCTIONS_ENV] = JSON.stringify(RECORDED_FUNCTIONS);
    });
    afterAll(() => {
      for (const [name, value] of Object.entries(env)) {
        if (value === undefined) delete process.env[name];
        else process.env[name] = value;
      }
    });
    const cost = () => json<CostReport>(`runs/${RUN_ID}/report/cost.json`);

    it('with the execution\'s records (recorded API responses): a billed cost report on the deployment\'s instance type and market', async () => {
      await reportHandlerWith(() => recordedApis())({ runId: RUN_ID, executionArn: RECORDED_EXECUTION_ARN }, { memoryLimitInMB: '1024' });
      const c = await cost();
      expect(c.basis).toBe('billed');
      expect(c.label).toBe('AWS cost of this run, from its billed usage');
      expect(c.options).toMatchObject({ batchInstanceType: 'g4dn.xlarge', batchMarket: 'spot' });
      // The recorded job's two attempts (600 s + 900.5 s) plus 2 × 180 s start-up, at the Spot price.
      expect(c.lines.find((l) => l.service === 'Batch')).toMatchObject({ amount: 1860.5, priceKey: 'ec2.g4dn.xlarge.spot' });
      expect(c.lines.find((l) => l.service === 'Step Functions')!.amount).toBe(10);
      expect(c.notes[0]).toMatch(/^Lambda: 3 of 4 invocations priced from their REPORT billed duration/);
      expect((await store.getOrThrow(`runs/${RUN_ID}/report/cost.md`)).toString()).toContain('- Batch: job attempt run times from DescribeJobs.');
    });

    it('when the APIs fail: the measured estimate, with the reason in cost.json, cost.md and report.html', async () => {
      const denied = {
        ...recordedApis(),
        executionHistory: async () => {
          throw Object.assign(new Error('User: arn:aws:sts::123456789012:assumed-role/textshift-report is not authorized to perform: states:GetExecutionHistory'), { name: 'AccessDeniedException' });
        },
      };
      await reportHandlerWith(() => denied)({ runId: RUN_ID, executionArn: RECORDED_EXECUTION_ARN });
      const c = await cost();
      expect(c.basis).toBe('measured');
      const why =
        'Billed usage unavailable (User: arn:aws:sts::123456789012:assumed-role/textshift-report is not authorized to perform: states:GetExecutionHistory); ' +
        "priced from the stages' measured usage instead.";
      expect(c.notes).toEqual([why]);
      expect((await store.getOrThrow(`runs/${RUN_ID}/report/cost.md`)).toString()).toContain(`Notes:\n- ${why}`);
      expect((await store.getOrThrow(`runs/${RUN_ID}/report/report.html`)).toString()).toContain('states:GetExecutionHistory); priced from the stages&#39; measured usage instead.');
    });

    it('without the stage function names in the environment: measured, naming the variable', async () => {
      delete process.env[STAGE_FUNCTIONS_ENV];
      await reportHandlerWith(() => recordedApis())({ runId: RUN_ID, executionArn: RECORDED_EXECUTION_ARN });
      expect((await cost()).notes[0]).toMatch(/^Billed usage unavailable \(environment variable TEXTSHIFT_STAGE_FUNCTIONS is not set\)/);
    });
  });
});

describe('only the execution holding a run writes it (the run lease)', () => {
  const other = 'arn:aws:states:eu-west-1:123456789012:execution:textshift-run:console-b';
  const failure = (p: Promise<unknown>) =>
    p.then(
      () => undefined,
      (err: Error) => err,
    );
  const snapshot = async (runId: string) =>
    Object.fromEntries(await Promise.all((await store.list(`runs/${runId}/`)).map(async (o) => [o.key, (await store.getOrThrow(o.key)).toString('base64')] as const)));

  it('a console start naming a run with another experiment is refused and its MarkFailed records nothing: the run stays as it was', async () => {
    await store.put('experiments/other.json', readFileSync(new URL('../../fixtures/experiments/tiny.json', import.meta.url)));
    const runId = 'tiny-held-1';
    await prepareHandler(prepareEvent({ experimentKey: 'experiments/tiny.json', runId, quick: true }));
    const before = await snapshot(runId);
    // {experiment: <wrong key>, runId} from the console: another execution, another experiment file.
    const err = await failure(prepareHandler({ prepareInput: { experimentKey: 'experiments/other.json', runId }, execution: other }));
    expect(err?.message).toBe(`run ${runId} runs experiments/tiny.json, not experiments/other.json: resume it with its own experiment, or start a new run`);
    // The state machine's Catch hands the refusal to MarkFailed in that execution: nothing is recorded.
    const cause = JSON.stringify({ errorType: err!.name, errorMessage: err!.message });
    await expect(markFailedHandler({ runId, stage: 'Prepare', error: { Error: err!.name, Cause: cause }, failedAtRedrive: 0, redriveCount: 0, execution: other })).rejects.toThrow(
      /^Prepare failed: InvalidInputError: run tiny-held-1 runs experiments\/tiny\.json/,
    );
    expect(await snapshot(runId)).toEqual(before);
    expect((await json<Manifest>(`runs/${runId}/manifest.json`)).status).toBe('running');
  });

  it('a second execution resuming a run another execution is running is refused before writing, naming the holder', async () => {
    const runId = 'tiny-held-2';
    await prepareHandler(prepareEvent({ experimentKey: 'experiments/tiny.json', runId, quick: true }));
    const before = await snapshot(runId);
    const err = await failure(prepareHandler({ prepareInput: { experimentKey: 'experiments/tiny.json', runId }, execution: other }));
    expect(err?.name).toBe('RunLockedError');
    expect(err?.message).toMatch(new RegExp(`^run ${runId} is already running: execution ${EXECUTION} has held .*/runs/${runId}/lock\\.json since `));
    const cause = JSON.stringify({ errorType: err!.name, errorMessage: err!.message });
    await failure(markFailedHandler({ runId, stage: 'Prepare', error: { Error: err!.name, Cause: cause }, failedAtRedrive: 0, redriveCount: 0, execution: other }));
    expect(await snapshot(runId)).toEqual(before);
    // Once the holder's failure is recorded (it releases the run), the other execution may take the run over.
    await failure(markFailedHandler({ runId, stage: 'Featurize', error: { Error: 'States.TaskFailed' }, failedAtRedrive: 0, redriveCount: 0, execution: EXECUTION }));
    expect((await json<Manifest>(`runs/${runId}/manifest.json`)).status).toBe('failed');
    expect(await prepareHandler({ prepareInput: { experimentKey: 'experiments/tiny.json', runId, quick: true }, execution: other })).toMatchObject({ runId });
    expect(JSON.parse((await store.getOrThrow(`runs/${runId}/lock.json`)).toString())).toMatchObject({ execution: other, token: 2 });
  });
});

describe('errors leave the handlers classified: the name the state machine\'s Retry and Catch match', () => {
  const withEnv = async <T>(vars: Record<string, string>, run: () => Promise<T>): Promise<T> => {
    const saved = Object.fromEntries(Object.keys(vars).map((k) => [k, process.env[k]]));
    Object.assign(process.env, vars);
    try {
      return await run();
    } finally {
      for (const [k, v] of Object.entries(saved)) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
    }
  };
  const failure = (p: Promise<unknown>) =>
    p.then(
      () => undefined,
      (err: Error) => err,
    );

  it('a bad shard (its texts do not match its rows) leaves featurize as InvalidDataError: permanent, not retried', async () => {
    const good = `runs/${RUN_ID}/shards/bow/sst2/train/00000.json`;
    const bad = `runs/${RUN_ID}/shards/bow/sst2/train/00099.json`;
    const task = await json<{ rows: number[] }>(good);
    await store.put(bad, JSON.stringify({ ...task, rows: [0, 1_000_000] }));
    const err = await failure(featurizeHandler({ runId: RUN_ID, shardKey: bad }));
    expect(err?.name).toBe('InvalidDataError');
    expect(err?.message).toBe(`featurize: ${bad}: expected "texts" to be 2 strings, one per row`);
  });

  it('an experiment asking for 1e9 epochs leaves prepare as ExperimentError naming the field, the value and the bound; no run is started', async () => {
    const tiny = await json<{ training: object }>('experiments/tiny.json');
    await store.put('experiments/endless.json', JSON.stringify({ ...tiny, training: { ...tiny.training, epochs: 1e9 } }));
    const err = await failure(prepareHandler(prepareEvent({ experimentKey: 'experiments/endless.json', runId: 'tiny-endless' })));
    expect(err?.name).toBe('ExperimentError');
    expect(err?.message).toMatch(/experiments\/endless\.json: invalid experiment\n {2}- training\.epochs: Too big: expected number to be <=1000 \(got 1000000000\)$/);
    expect(await store.list('runs/tiny-endless/')).toEqual([]);
  });

  it('a run over its cost limit leaves prepare as BudgetExceededError with the numbers, before any split; MarkFailed records it as permanent', async () => {
    const tight = JSON.stringify(await testDeployment({ maxRunCostUsd: '0.0001' }));
    const err = await withEnv({ [PLAN_DEPLOYMENT_ENV]: tight }, () => failure(prepareHandler(prepareEvent({ experimentKey: 'experiments/tiny.json', runId: 'tiny-over-budget', quick: true }))));
    expect(err?.name).toBe('BudgetExceededError');
    expect(err?.message).toMatch(/experiments\/tiny\.json: the run's estimated cost \$\d+\.\d{4} is above its limit \$0\.0001 \(maxRunCostUsd in cdk\.json\)\. To run it, set "budgetUsd"/);
    // The manifest, and the lease Prepare took for the execution before writing it.
    expect((await store.list('runs/tiny-over-budget/')).map((o) => o.key).sort()).toEqual(['runs/tiny-over-budget/lock.json', 'runs/tiny-over-budget/manifest.json']);
    // As the state machine's Catch hands the failure to MarkFailed: Error = the error's name, Cause = Lambda's error JSON.
    const cause = JSON.stringify({ errorType: err!.name, errorMessage: err!.message });
    await expect(markFailedHandler({ runId: 'tiny-over-budget', stage: 'Prepare', error: { Error: err!.name, Cause: cause }, failedAtRedrive: 0, redriveCount: 0, execution: EXECUTION })).rejects.toThrow(
      /^Prepare failed: BudgetExceededError: .*above its limit \$0\.0001/,
    );
    const m = await json<Manifest>('runs/tiny-over-budget/manifest.json');
    expect(m.status).toBe('failed');
    expect(m.failure).toMatchObject({ stage: 'Prepare', errorName: 'BudgetExceededError', retryable: false });
  });

  it('prepare without the cost guard settings fails as ConfigError naming TEXTSHIFT_PLAN_DEPLOYMENT, before reading anything', async () => {
    const err = await withEnv({ [PLAN_DEPLOYMENT_ENV]: '' }, () => failure(prepareHandler(prepareEvent({ experimentKey: 'experiments/tiny.json', runId: 'tiny-unguarded' }))));
    expect(err?.name).toBe('ConfigError');
    expect(err?.message).toMatch(/^environment variable TEXTSHIFT_PLAN_DEPLOYMENT is not set/);
    expect(await store.list('runs/tiny-unguarded/')).toEqual([]);
  });

  it('a dataset with a bad row leaves prepare as DataError', async () => {
    const data = mkdtempSync(join(tmpdir(), 'textshift-bad-data-'));
    try {
      const bad = new FsBlobStore(data);
      await bad.put('sst2/train.tsv', 'a fine sentence\t1\nanother one\tmaybe\n');
      await bad.put('sst2/test.tsv', 'a test sentence\t0\n');
      const err = await withEnv({ [DATA_URL_ENV]: pathToFileURL(data).href }, () =>
        failure(prepareHandler(prepareEvent({ experimentKey: 'experiments/tiny.json', runId: 'tiny-bad-data' }))),
      );
      expect(err?.name).toBe('DataError');
      expect(err?.message).toMatch(/sst2\/train\.tsv:2: /);
    } finally {
      rmSync(data, { recursive: true, force: true });
    }
  });

  it('S3 throttling (503 SlowDown from the S3 endpoint) inside a stage leaves featurize as TransientError, the SDK error as its cause', async () => {
    const s3 = await s3ErrorServer(503, 'SlowDown', 'Please reduce your request rate.');
    try {
      const err = await withEnv({ [STORE_URL_ENV]: 's3://textshift-throttled', TEXTSHIFT_AWS_ENDPOINT: s3.endpoint, AWS_MAX_ATTEMPTS: '1' }, () =>
        failure(featurizeHandler({ runId: RUN_ID, shardKey: `runs/${RUN_ID}/shards/bow/sst2/train/00000.json` })),
      );
      expect(err?.name).toBe('TransientError');
      expect(err?.message).toBe('Please reduce your request rate.');
      expect(err?.cause).toMatchObject({ name: 'SlowDown', $metadata: { httpStatusCode: 503 } });
      expect(s3.requests()).toBeGreaterThan(0);
    } finally {
      await s3.close();
    }
  });
});

describe('handlers reject malformed events, naming the field', () => {
  const rejects = (p: Promise<unknown>) => expect(p).rejects;

  it('a missing runId', async () => {
    await rejects(featurizeHandler({ shardKey: `runs/${RUN_ID}/shards/bow/sst2/train/00000.json` })).toThrow(
      /^invalid featurize event: runId: Invalid input: expected string, received undefined$/,
    );
    await rejects(reportHandler({})).toThrow(/^invalid report event: runId: /);
    await rejects(markFailedHandler({ stage: 'Train', error: {} })).toThrow(/^invalid markFailed event: runId: /);
  });

  it('a shard key of another run', async () => {
    await rejects(featurizeHandler({ runId: RUN_ID, shardKey: 'runs/other-run/shards/bow/sst2/train/00000.json' })).toThrow(
      `invalid featurize event: shardKey: "runs/other-run/shards/bow/sst2/train/00000.json" is not a shard of run "${RUN_ID}" (expected runs/${RUN_ID}/shards/...)`,
    );
  });

  it('an invalid event leaves as InvalidInputError (permanent: the state machine sends it to MarkFailed at once)', async () => {
    await rejects(featurizeHandler({ runId: RUN_ID })).toMatchObject({ name: 'InvalidInputError', retryable: false });
    await rejects(reportHandler({ runId: '../other' })).toMatchObject({ name: 'InvalidInputError' });
  });

  it('a key with ".." segments, or a run id that is not one key segment', async () => {
    await rejects(featurizeHandler({ runId: RUN_ID, shardKey: `runs/${RUN_ID}/shards/../../../etc/passwd` })).toThrow(
      /^invalid featurize event: shardKey: invalid object key ".*": empty, "\." or "\.\." path segment/,
    );
    await rejects(prepareHandler(prepareEvent({ experimentKey: 'experiments/../runs/x/manifest.json' }))).toThrow(
      /^invalid prepare event: prepareInput\.experimentKey: invalid object key/,
    );
    await rejects(reportHandler({ runId: '../other' })).toThrow(/^invalid report event: runId: invalid run id "\.\.\/other"/);
  });

  it('unknown fields and wrong types', async () => {
    await rejects(prepareHandler(prepareEvent({ experimentKey: 'experiments/tiny.json', quick: 'yes' }))).toThrow(
      /^invalid prepare event: prepareInput\.quick: Invalid input: expected boolean, received string$/,
    );
    await rejects(prepareHandler(prepareEvent({ experimentKey: 'experiments/tiny.json', experimentVersion: 3 }))).toThrow(
      /^invalid prepare event: prepareInput\.experimentVersion: Invalid input: expected string, received number$/,
    );
    await rejects(featurizeHandler({ runId: RUN_ID, shardKey: `runs/${RUN_ID}/shards/bow/sst2/train/00000.json`, extra: 1 })).toThrow(
      /^invalid featurize event: \(event\): Unrecognized key: "extra"$/,
    );
    await rejects(reportHandler({ runId: RUN_ID, executionArn: 'not-an-arn' })).toThrow(
      /^invalid report event: executionArn: expected a Step Functions execution ARN$/,
    );
  });

  it('a well-formed event naming a missing object fails with the stage\'s message and the key', async () => {
    await rejects(prepareHandler(prepareEvent({ experimentKey: 'experiments/missing.json' }))).toThrow(/experiments\/missing\.json/);
    await rejects(prepareHandler(prepareEvent({ experimentKey: 'experiments/missing.json' }))).toMatchObject({ name: 'NotFoundError', retryable: false });
    await rejects(reportHandler({ runId: 'no-such-run' })).toThrow(/run "no-such-run" not found: .*runs\/no-such-run\/manifest\.json does not exist/);
    await rejects(reportHandler({ runId: 'no-such-run' })).toMatchObject({ name: 'MissingInputError', retryable: false });
    // A run that does not exist gets no stray objects.
    expect(await store.list('runs/no-such-run/')).toEqual([]);
  });
});
