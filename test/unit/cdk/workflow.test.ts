import { createHash } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { estimateStateTransitions } from '../../../src/cost/transitions.js';
import { type HistoryEvent, stateTransitions } from '../../../src/cost/billing.js';
import { DISTRIBUTED_MAP_ERRORS, INTAKE, MARK_FAILED, RETRY, STAGES, TASK_TIMEOUT_MARGIN_SECONDS, taskTimeoutSeconds } from '../../../src/run/graph.js';
import { readConfig } from '../../../src/config/deployment.js';
import { LAMBDA_TRANSIENT_ERRORS, RETRYABLE_ERROR_NAMES } from '../../../src/errors/index.js';
import { type AslDefinition, type AslState, CDK_CONTEXT, SYNTH_TIMEOUT, type Synthesized, resourcesOf, stateMachineDefinition, synth } from '../../support/cdk-template.js';
import {
  ARN, type Event, type Executed, type Handlers, type Json, RUN_STAGES, allStates, execute, fail, failure, markFailedStandIn, planOf, redrive, stoppedIn, succeeding, useDefinition,
} from '../../support/asl-harness.js';


// Non-default concurrencies prove the context values reach the Maps (cdk.json's defaults are checked in cdk-config).
const CONCURRENCY = 7;
const TRAIN_CONCURRENCY = 3;
let asl: AslDefinition;
let machineProps: Record<string, unknown>;
let template: Synthesized['template'];

const md5 = (s: string) => createHash('md5').update(s).digest('hex');

beforeAll(() => {
  ({ template } = synth({ featurizeConcurrency: CONCURRENCY, trainConcurrency: TRAIN_CONCURRENCY }));
  asl = stateMachineDefinition(template);
  useDefinition(asl);
  machineProps = resourcesOf(template, 'AWS::StepFunctions::StateMachine')[0]![1];
}, SYNTH_TIMEOUT);

const state = (name: string): AslState => {
  const s = asl.States[name];
  if (!s) throw new Error(`no state "${name}" in the definition`);
  return s;
};
const inner = (mapName: string): [string, AslState] => {
  const processor = state(mapName).ItemProcessor!;
  return [processor.StartAt, processor.States[processor.StartAt]!];
};
const runStages = RUN_STAGES;
const stateAnywhere = (name: string): AslState => {
  const found = allStates().find(([n]) => n === name);
  if (!found) throw new Error(`no state "${name}" in the definition or its Maps`);
  return found[1];
};

describe('state machine definition (synthesized ASL)', () => {
  it('is a Standard machine with full execution logging and tracing', () => {
    expect(machineProps.StateMachineType).toBe('STANDARD');
    expect(machineProps.StateMachineName).toBe('textshift-run');
    expect(machineProps.TracingConfiguration).toEqual({ Enabled: true });
    expect(machineProps.LoggingConfiguration).toMatchObject({ Level: 'ALL', IncludeExecutionData: true });
    expect(asl).not.toHaveProperty('QueryLanguage', 'JSONata');
  });

  it('runs Prepare -> Featurize -> Train -> Report and ends with the report keys', () => {
    expect(state('Prepare').Next).toBe('Featurize');
    expect(state('Featurize').Next).toBe('Train');
    expect(state('Train').Next).toBe('Report');
    expect(state('Report').End).toBe(true);
    expect(state('Report').ResultSelector).toEqual({
      'runId.$': '$.Payload.runId',
      'resultsKey.$': '$.Payload.resultsKey',
      'reportKey.$': '$.Payload.reportKey',
      'costKey.$': '$.Payload.costKey',
      'archiveKey.$': '$.Payload.archiveKey',
    });
  });

  it('fans Featurize out as a Distributed Map: items read from the S3 shard plan, results written under the run, one STANDARD child per shard', () => {
    const map = state('Featurize');
    expect(map.Type).toBe('Map');
    expect(map.ItemProcessor!.ProcessorConfig).toEqual({ Mode: 'DISTRIBUTED', ExecutionType: 'STANDARD' });
    // The items are the JSON array Prepare wrote; the state holds only its key.
    expect(map.ItemsPath).toBeUndefined();
    expect(map.ItemReader).toEqual({
      Resource: 'arn:aws:states:::s3:getObject',
      ReaderConfig: { InputType: 'JSON' },
      Parameters: { Bucket: expect.stringMatching(/^ref:StorageData/), 'Key.$': '$.shardPlan.key' },
    });
    expect(map.ResultWriter).toEqual({
      Resource: 'arn:aws:states:::s3:putObject',
      Parameters: { Bucket: expect.stringMatching(/^ref:StorageData/), 'Prefix.$': '$.shardPlan.resultsPrefix' },
    });
    // One shard per child (no batching), no failure tolerated (the ASL default of an absent ToleratedFailure is 0).
    expect(map.ItemBatcher).toBeUndefined();
    expect(map.ToleratedFailureCount).toBeUndefined();
    expect(map.ToleratedFailurePercentage).toBeUndefined();
    expect(map.Label).toBe('Featurize');
    expect(map.MaxConcurrency).toBe(CONCURRENCY);
    // Each child execution gets a batch of shard keys (the plan holds at most 1,000 batches) and runs them one by one.
    // Each child also carries the run's execution ARN: a failure recorded there is checked against the run's lease.
    expect(map.ItemSelector).toEqual({ 'runId.$': '$.runId', 'shardKeys.$': '$$.Map.Item.Value', 'execution.$': '$$.Execution.Id' });
    const [batchName, batch] = inner('Featurize');
    expect(batchName).toBe('Featurize batch');
    expect(batch).toMatchObject({ Type: 'Map', ItemsPath: '$.shardKeys', MaxConcurrency: 1, ResultPath: null, End: true });
    expect(batch.ItemProcessor!.ProcessorConfig).toEqual({ Mode: 'INLINE' });
    expect(batch.ItemSelector).toEqual({ 'runId.$': '$.runId', 'shardKey.$': '$$.Map.Item.Value', 'execution.$': '$.execution' });
    expect(batch.ItemProcessor!.StartAt).toBe('Featurize shard');
    const shard = stateAnywhere('Featurize shard');
    expect(shard.Resource).toMatch(/:states:::lambda:invoke$/);
    expect(shard.Parameters).toMatchObject({
      Payload: { 'runId.$': '$.runId', 'shardKey.$': '$.shardKey' },
      FunctionName: expect.stringContaining('Featurize'),
    });
  });

  it('trains one Batch job per feature family, synchronously, passing runId and feature as job parameters', () => {
    const map = state('Train');
    expect(map.Type).toBe('Map');
    expect(map.ItemProcessor!.ProcessorConfig).toEqual({ Mode: 'INLINE' });
    expect(map.ItemsPath).toBe('$.features');
    expect(map.MaxConcurrency).toBe(TRAIN_CONCURRENCY);
    expect(map.ItemSelector).toEqual({ 'runId.$': '$.runId', 'feature.$': '$$.Map.Item.Value' });
    const [, job] = inner('Train');
    expect(job.Resource).toMatch(/:states:::batch:submitJob\.sync$/);
    expect(job.Parameters).toMatchObject({
      Parameters: { 'runId.$': '$.runId', 'feature.$': '$.feature' },
      'JobName.$': "States.Format('textshift-train-{}-{}-r{}', $.feature, States.Hash($.runId, 'MD5'), $$.Execution.RedriveCount)",
    });
  });

  it('retries every Task on its retry class of the stage graph only, with exponential backoff and full jitter', () => {
    const tasks = allStates().filter(([, st]) => st.Type === 'Task');
    expect(tasks.map(([n]) => n).sort()).toEqual(
      [
        'Featurize shard', 'Prepare', 'Report', 'Start run', 'Train feature family',
        ...runStages.map((stage) => `MarkFailed ${stage}`), 'MarkFailed Featurize map',
      ].sort(),
    );
    const retrier = (errors: readonly string[]) => ({
      ErrorEquals: [...errors], IntervalSeconds: 2, BackoffRate: 2, MaxAttempts: 6, MaxDelaySeconds: 60, JitterStrategy: 'FULL',
    });
    // Lambda tasks: our TransientError and the Lambda service's transient errors, nothing else (no States.ALL).
    for (const name of ['Prepare', 'Featurize shard', 'Report', ...runStages.map((stage) => `MarkFailed ${stage}`), 'MarkFailed Featurize map']) {
      expect(stateAnywhere(name).Retry, name).toEqual([retrier(['TransientError', ...LAMBDA_TRANSIENT_ERRORS])]);
    }
    expect(stateAnywhere('Train feature family').Retry).toEqual([retrier(['Batch.ServerException', 'Batch.AWSBatchException'])]);
    expect(state('Start run').Retry).toEqual([retrier(['StepFunctions.SdkClientException', 'StepFunctions.AWSStepFunctionsException'])]);
    expect(RETRY.lambda.errors).toEqual([...RETRYABLE_ERROR_NAMES, ...LAMBDA_TRANSIENT_ERRORS]);
  });

  it('has one state per stage of the graph, in its order, with its fan-out (a Map over Prepare\'s list, running the stage\'s task)', () => {
    let name: string | undefined = 'Prepare';
    for (const stage of STAGES) {
      expect(name).toBe(stage.name);
      const st = state(stage.name);
      if (stage.fanOut.each === 'run') expect(st.Type).toBe('Task');
      else {
        expect(st.Type).toBe('Map');
        if (stage.fanOut.mode === 'inline') expect(st.ItemsPath).toBe(`$.${stage.fanOut.items}`);
        else expect(st.ItemReader!.Parameters['Key.$']).toBe(`$.${stage.fanOut.items}.key`);
        expect(inner(stage.name)[0]).toBe(stage.fanOut.mode === 'inline' ? stage.fanOut.task : stage.fanOut.batchState);
      }
      name = st.Next;
    }
    expect(name).toBeUndefined();
  });

  it('gives every stage\'s function and job the timeout of the cdk.json setting the graph names', () => {
    const functions = new Map(resourcesOf(template, 'AWS::Lambda::Function').map(([id, p]) => [`arn:${id}`, p]));
    const lambdaTasks = [...STAGES.map((s) => [s.fanOut.each === 'run' ? s.name : s.fanOut.task, s.aws] as const), ['MarkFailed Report', MARK_FAILED.aws] as const];
    for (const [task, aws] of lambdaTasks) {
      if (aws.on !== 'lambda') continue;
      const fn = functions.get(stateAnywhere(task).Parameters!.FunctionName as string);
      expect(fn?.Timeout, task).toBe(CDK_CONTEXT[aws.timeout]);
    }
    const train = STAGES.find((s) => s.aws.on === 'batch')!.aws;
    const [[, jobDefinition]] = resourcesOf(template, 'AWS::Batch::JobDefinition') as [[string, { Timeout: { AttemptDurationSeconds: number } }]];
    expect(jobDefinition.Timeout.AttemptDurationSeconds).toBe((CDK_CONTEXT[train.timeout] as number) * 60);
  });

  it('gives every Task a TimeoutSeconds: a Lambda task its function\'s timeout plus a margin, the Batch task every attempt\'s RUNNABLE limit and job timeout plus a margin', () => {
    const limits = readConfig((k) => CDK_CONTEXT[k]);
    const tasks = allStates().filter(([, st]) => st.Type === 'Task');
    expect(tasks.length).toBeGreaterThan(0);
    for (const [name, st] of tasks) expect(st.TimeoutSeconds, name).toEqual(expect.any(Number));
    for (const stage of STAGES) {
      const task = stateAnywhere(stage.fanOut.each === 'run' ? stage.name : stage.fanOut.task);
      expect(task.TimeoutSeconds, stage.name).toBe(taskTimeoutSeconds(stage.aws, limits));
    }
    expect(stateAnywhere('Featurize shard').TimeoutSeconds).toBe(limits.featurizeTimeoutSeconds + TASK_TIMEOUT_MARGIN_SECONDS.lambda);
    expect(stateAnywhere('MarkFailed Train').TimeoutSeconds).toBe(limits.markFailedTimeoutSeconds + TASK_TIMEOUT_MARGIN_SECONDS.lambda);
    // 3 attempts x (60 min RUNNABLE + 240 min running) + 10 min: the job queue and the job definition end a job first.
    expect(stateAnywhere('Train feature family').TimeoutSeconds).toBe(3 * (60 + 240) * 60 + 600);
    // Not Batch's own attempt duration: the job definition's timeout stays in charge of a running attempt.
    expect(stateAnywhere('Train feature family').Parameters).not.toHaveProperty('Timeout');
    expect(state('Start run').TimeoutSeconds).toBe(60);
  });

  it('catches every task\'s failure next to it: "<stage> failed" saves stage and redrive count, "MarkFailed <stage>" records it and leads back to the task', () => {
    const taskOf: Record<string, string> = { Prepare: 'Prepare', Featurize: 'Featurize shard', Train: 'Train feature family', Report: 'Report' };
    for (const stage of runStages) {
      const task = stateAnywhere(taskOf[stage]!);
      expect(task.Catch, stage).toEqual([{ ErrorEquals: ['States.ALL'], ResultPath: '$.error', Next: `${stage} failed` }]);
      expect(stateAnywhere(`${stage} failed`)).toEqual({
        Type: 'Pass',
        Parameters: { stage, 'redriveCount.$': '$$.Execution.RedriveCount' },
        ResultPath: '$.failure',
        Next: `MarkFailed ${stage}`,
      });
      const mark = stateAnywhere(`MarkFailed ${stage}`);
      expect(mark.Parameters).toMatchObject({
        FunctionName: expect.stringContaining('MarkFailed'),
        Payload: {
          'runId.$': '$.runId',
          'stage.$': '$.failure.stage',
          'error.$': '$.error',
          'failedAtRedrive.$': '$.failure.redriveCount',
          'redriveCount.$': '$$.Execution.RedriveCount',
        },
      });
      // No Catch: its RunFailed error ends the execution in this state, which is where a redrive resumes.
      expect(mark.Catch, stage).toBeUndefined();
      expect(mark.ResultPath).toBeNull();
      expect(mark.Next).toBe(taskOf[stage]);
    }
    // The shard and training-job failure paths live inside their Map iterations (for Featurize: each shard's child
    // execution). The Inline Map catches nothing; the Distributed Map catches only its own failures (items or results
    // out of reach), not a failed child: that one recorded its failure, and a redrive redrives the Map Run.
    expect(Object.keys(state('Featurize').ItemProcessor!.States)).toEqual(['Featurize batch']);
    expect(Object.keys(stateAnywhere('Featurize batch').ItemProcessor!.States).sort()).toEqual(['Featurize failed', 'Featurize shard', 'MarkFailed Featurize']);
    expect(Object.keys(state('Train').ItemProcessor!.States).sort()).toEqual(['MarkFailed Train', 'Train failed', 'Train feature family']);
    expect(state('Featurize').Catch).toEqual([{ ErrorEquals: [...DISTRIBUTED_MAP_ERRORS], ResultPath: '$.error', Next: 'Featurize map failed' }]);
    expect(state('Featurize map failed')).toMatchObject({ Type: 'Pass', Parameters: { stage: 'Featurize' }, Next: 'MarkFailed Featurize map' });
    expect(state('MarkFailed Featurize map').Next).toBe('Featurize');
    expect(state('Train').Catch).toBeUndefined();
    // The only Fail states are the intake's; a run never ends in one (a redrive would only fail there again).
    expect(allStates().filter(([, st]) => st.Type === 'Fail').map(([n]) => n).sort()).toEqual(['Could not start run', 'Invalid experiment file name', 'Unrecognised input']);
  });

  it('keeps only keys in the state: Lambda results are trimmed and Map outputs discarded', () => {
    expect(state('Prepare').ResultSelector).toEqual({
      'runId.$': '$.Payload.runId',
      'shardPlan.$': '$.Payload.shardPlan',
      'features.$': '$.Payload.features',
    });
    expect(state('Featurize').ResultPath).toBeNull();
    expect(state('Train').ResultPath).toBeNull();
    expect(stateAnywhere('Featurize batch').ResultPath).toBeNull();
    expect(stateAnywhere('Featurize shard').ResultSelector).toEqual({ 'cached.$': '$.Payload.cached' });
    expect(inner('Train')[1].ResultSelector).toEqual({ 'jobId.$': '$.JobId', 'status.$': '$.Status' });
    expect(state('Report').Parameters).toMatchObject({ Payload: { 'runId.$': '$.runId', 'executionArn.$': '$$.Execution.Id' } });
  });

  it('starts an upload run as an execution of itself named by the run id, and treats a taken name as a duplicate', () => {
    const start = state('Start run');
    expect(start.Resource).toMatch(/:states:::states:startExecution$/);
    expect(start.Parameters).toMatchObject({
      StateMachineArn: expect.stringMatching(/:stateMachine:textshift-run$/),
      'Name.$': '$.runId',
      Input: { 'experimentKey.$': '$.experimentKey', 'uploadId.$': '$.uploadId', 'experimentVersion.$': '$.experimentVersion', 'runId.$': '$.runId' },
    });
    expect(start.Catch).toEqual([
      { ErrorEquals: ['StepFunctions.ExecutionAlreadyExistsException'], ResultPath: '$.error', Next: 'Duplicate upload' },
      { ErrorEquals: ['StepFunctions.InvalidNameException'], ResultPath: '$.error', Next: 'Name run by digest' },
      { ErrorEquals: ['States.ALL'], ResultPath: '$.error', Next: 'Could not start run' },
    ]);
    expect(state('Duplicate upload').Type).toBe('Succeed');
  });

  it('matches the reviewed definition (snapshot)', () => {
    expect(asl).toMatchSnapshot();
  });
});


describe('executing the definition with aws-local-stepfunctions (task stand-ins, no AWS)', () => {
  it('console input {"experiment"}: derives run id <stem>-md5(key#execution name) and runs every stage in order', async () => {
    const runId = `sst2-imdb-${md5('experiments/sst2-imdb.json#console-run-7')}`;
    const { output, calls, error } = await execute({ experiment: 'experiments/sst2-imdb.json' }, succeeding, 'console-run-7');
    expect(error).toBeUndefined();
    expect(calls[0]).toEqual({
      state: 'Prepare',
      input: expect.objectContaining({
        Payload: { prepareInput: { experimentKey: 'experiments/sst2-imdb.json', uploadId: 'console-run-7', runId }, execution: ARN('console-run-7') },
      }),
    });
    expect(calls.map((c) => c.state)).toEqual([
      'Prepare',
      'Featurize shard',
      'Featurize shard',
      'Train feature family',
      'Train feature family',
      'Report',
    ]);
    expect(calls.filter((c) => c.state === 'Featurize shard').map((c) => c.input.Payload)).toEqual([
      { runId, shardKey: 's/0.json' },
      { runId, shardKey: 's/1.json' },
    ]);
    expect(calls.filter((c) => c.state === 'Train feature family').map((c) => c.input.Parameters)).toEqual([
      { runId, feature: 'bow' },
      { runId, feature: 'bert' },
    ]);
    // Each job is named by its family, its run and the execution's attempt (redrive count).
    expect(calls.filter((c) => c.state === 'Train feature family').map((c) => c.input.JobName)).toEqual([
      `textshift-train-bow-${md5(runId)}-r0`,
      `textshift-train-bert-${md5(runId)}-r0`,
    ]);
    expect(output).toEqual(succeeding.Report!({ Payload: { runId } }, 1).Payload);
    expect(calls.at(-1)!.input.Payload).toEqual({ runId, executionArn: ARN('console-run-7') });
  });

  it('S3 upload input: starts the run as an execution named by the run id, pinned to the uploaded version, and does no stage work itself', async () => {
    const upload = { bucket: 'data-bucket', key: 'experiments/nested/my.exp.json', uploadId: 'v3.Xyz_1' };
    const runId = `my-${md5('experiments/nested/my.exp.json#v3.Xyz_1')}`;
    const { output, calls, error } = await execute(upload, { ...succeeding, 'Start run': () => ({ ExecutionArn: 'arn:x' }) });
    expect(error).toBeUndefined();
    expect(calls).toHaveLength(1);
    expect(calls[0]!.state).toBe('Start run');
    expect(calls[0]!.input).toMatchObject({
      Name: runId,
      Input: { experimentKey: upload.key, uploadId: upload.uploadId, experimentVersion: upload.uploadId, runId },
    });
    expect(output).toMatchObject({ runId, started: { executionArn: 'arn:x' } });
  });

  it('a duplicate delivery of the same upload finds the name taken and ends as a no-op', async () => {
    const upload = { bucket: 'b', key: 'experiments/sst2-imdb.json', uploadId: '0055AED6DCD90281E5' };
    const taken = () => {
      throw fail('StepFunctions.ExecutionAlreadyExistsException', 'Execution Already Exists');
    };
    const { calls, error, output } = await execute(upload, { ...succeeding, 'Start run': taken });
    expect(error).toBeUndefined();
    expect(calls.map((c) => c.state)).toEqual(['Start run']);
    expect(output).toMatchObject({ error: { Error: 'StepFunctions.ExecutionAlreadyExistsException' } });
  });

  it('a run id Step Functions refuses as an execution name (over 80 characters) falls back to the bare digest', async () => {
    const stem = 'a'.repeat(48);
    const upload = { bucket: 'b', key: `experiments/${stem}.json`, uploadId: '42' };
    const start = (i: Json, attempt: number) => {
      if (attempt === 1) throw fail('StepFunctions.InvalidNameException', `Invalid Execution Name: '${i.Name}'`);
      return { ExecutionArn: 'arn:y' };
    };
    const { calls, error } = await execute(upload, { ...succeeding, 'Start run': start });
    expect(error).toBeUndefined();
    const [named, digest] = calls.map((c) => c.input.Name as string);
    // (The interpreter's own MD5 is not MD5 for inputs over one block, so the digest is compared with itself.)
    expect([named, digest]).toEqual([`${stem}-${digest}`, expect.stringMatching(/^[0-9a-f]{32}$/)]);
    expect(named).toHaveLength(81);
  });

  it('refuses a file named with other characters than letters, digits and . _ - (upload or console), naming the file, before any run starts', async () => {
    // Valid execution names all (parentheses, a non-ASCII letter, "="), but no run id Prepare and MarkFailed accept, or
    // (a space, "=") a key that can reach the machine URL-encoded.
    const refusal = (key: string) => ({
      Error: 'InvalidExperimentFileName',
      Cause: `${key}: an experiment file name may only use letters, digits and . _ -, since the run and every key it writes are named after it; rename the file and upload it again`,
    });
    for (const key of ['experiments/exp(1).json', 'experiments/résumé.json', 'experiments/a=b.json', 'experiments/exp%281%29.json', 'experiments/a b/x.json']) {
      const upload = await execute({ bucket: 'b', key, uploadId: '42' }, succeeding);
      expect(upload.calls, key).toEqual([]);
      expect(failure(upload.error), key).toEqual(refusal(key));
      const console = await execute({ experiment: key }, succeeding, 'console-run-1');
      expect(console.calls, key).toEqual([]);
      expect(failure(console.error), key).toEqual(refusal(key));
    }
    // Every allowed character, "/" and dots in the name: the run starts, named <name up to its first dot>-<digest>.
    const key = 'experiments/sub/A-z_0.9.json';
    const { calls, error } = await execute({ bucket: 'b', key, uploadId: '42' }, { ...succeeding, 'Start run': () => ({ ExecutionArn: 'arn:z' }) });
    expect(error).toBeUndefined();
    expect(calls.map((c) => c.input.Name)).toEqual([`A-z_0-${md5(`${key}#42`)}`]);
  });

  it('the named run (and any {"experimentKey","runId"} input) goes straight to Prepare with that input', async () => {
    const input = { experimentKey: 'experiments/a.json', uploadId: 'u1', experimentVersion: 'v1', runId: 'a-0123' };
    const { calls, error } = await execute(input, succeeding, 'a-0123');
    expect(error).toBeUndefined();
    expect(calls[0]!.input.Payload).toEqual({ prepareInput: input, execution: ARN('a-0123') });
  });

  it('{"experiment","runId"} resumes that run id', async () => {
    const { calls, error } = await execute({ experiment: 'experiments/a.json', runId: 'a-0123' }, succeeding);
    expect(error).toBeUndefined();
    expect(calls[0]!.input.Payload).toEqual({ prepareInput: { experimentKey: 'experiments/a.json', runId: 'a-0123' }, execution: ARN('exec-1') });
  });

  it('rejects an unrecognised input shape with InvalidInput before any stage runs', async () => {
    const { calls, error } = await execute({ experiments: 'experiments/a.json' }, succeeding);
    expect(calls).toEqual([]);
    expect(failure(error)).toEqual({ Error: 'InvalidInput', Cause: expect.stringContaining('{"experiment": "experiments/<name>.json"}') });
  });

  /** A Featurize stand-in whose shard `key` throws `error` on its first `times` attempts; counts every shard's attempts. */
  const shardFailing = (key: string, error: string, times: number) => {
    const attempts = new Map<string, number>();
    const handler = (i: Json) => {
      const n = (attempts.get(i.Payload.shardKey) ?? 0) + 1;
      attempts.set(i.Payload.shardKey, n);
      if (i.Payload.shardKey === key && n <= times) throw fail(error, `${key}: attempt ${n} failed`);
      return succeeding['Featurize shard']!(i, n);
    };
    return { handler, attempts };
  };

  it('a shard that throws TransientError once is retried and the run succeeds', async () => {
    const shard = shardFailing('s/1.json', 'TransientError', 1);
    const { calls, error } = await execute({ experiment: 'experiments/a.json' }, { ...succeeding, 'Featurize shard': shard.handler });
    expect(error).toBeUndefined();
    expect(Object.fromEntries(shard.attempts)).toEqual({ 's/0.json': 1, 's/1.json': 2 });
    expect(calls.some((c) => c.state.startsWith('MarkFailed'))).toBe(false);
    expect(calls.at(-1)!.state).toBe('Report');
  });

  it('a shard that throws a permanent error (DataError) goes to MarkFailed Featurize after exactly one attempt', async () => {
    const shard = shardFailing('s/1.json', 'DataError', Infinity);
    const { calls, error, children } = await execute({ experiment: 'experiments/a.json', runId: 'a-4' }, { ...succeeding, 'Featurize shard': shard.handler });
    expect(Object.fromEntries(shard.attempts)).toEqual({ 's/0.json': 1, 's/1.json': 1 });
    expect(calls.filter((c) => c.state === 'MarkFailed Featurize').map((c) => c.input.Payload)).toEqual([
      // In the shard's child execution, the execution named is the run's (from the items), not the child's own.
      { runId: 'a-4', stage: 'Featurize', error: { Error: 'DataError', Cause: 's/1.json: attempt 1 failed' }, failedAtRedrive: 0, redriveCount: 0, execution: ARN('exec-1') },
    ]);
    expect(calls.some((c) => c.state === 'Train feature family')).toBe(false);
    // The shard's child execution ends in MarkFailed (RunFailed); the Map Run then fails the run at Featurize.
    expect(children.filter((c) => c.error).map((c) => [c.executionName, failure(c.error).Error])).toEqual([['exec-1/Featurize:1', 'RunFailed']]);
    expect(failure(error).Error).toBe('States.ExceedToleratedFailureThreshold');
  });

  it('a failed training job goes to MarkFailed Train with the stage and cause, which ends the execution there (RunFailed)', async () => {
    const cause = '{"Status":"FAILED","StatusReason":"Essential container in task exited"}';
    const jobFailed = (i: Json) => {
      if (i.Parameters.feature === 'bert') throw fail('States.TaskFailed', cause);
      return { JobId: 'job-bow', Status: 'SUCCEEDED' };
    };
    const run = await execute({ experiment: 'experiments/a.json', runId: 'a-1' }, { ...succeeding, 'Train feature family': jobFailed });
    const markFailed = run.calls.filter((c) => c.state.startsWith('MarkFailed'));
    expect(markFailed).toEqual([
      {
        state: 'MarkFailed Train',
        input: expect.objectContaining({
          Payload: { runId: 'a-1', stage: 'Train', error: { Error: 'States.TaskFailed', Cause: cause }, failedAtRedrive: 0, redriveCount: 0, execution: ARN('exec-1') },
        }),
      },
    ]);
    expect(run.calls.some((c) => c.state === 'Report')).toBe(false);
    expect(failure(run.error)).toEqual({
      Error: 'RunFailed',
      Cause: 'Train failed: States.TaskFailed (run a-1; fix the cause, then redrive the execution to resume)',
    });
    expect(stoppedIn(run.events, (e) => e.index === undefined).get(undefined)?.name).toBe('Train');
  });

  it('redriving after a failed training job re-runs only that job, then Report; nothing that finished runs again', async () => {
    let bertJobs = 0;
    const flakyBert = (i: Json) => {
      if (i.Parameters.feature === 'bert' && ++bertJobs === 1) throw fail('States.TaskFailed', '{"StatusReason":"Host EC2 terminated (Spot)"}');
      return { JobId: `job-${i.Parameters.feature}`, Status: 'SUCCEEDED' };
    };
    const handlers = { ...succeeding, 'Train feature family': flakyBert };
    const failed = await execute({ experiment: 'experiments/a.json', runId: 'a-1' }, handlers, 'a-1');
    expect(failure(failed.error).Error).toBe('RunFailed');

    const redriven = await redrive(failed, handlers);
    expect(redriven.error).toBeUndefined();
    expect(redriven.calls.map((c) => c.state)).toEqual(['MarkFailed Train', 'Train feature family', 'Report']);
    expect(redriven.calls[0]!.input.Payload).toMatchObject({ stage: 'Train', failedAtRedrive: 0, redriveCount: 1 });
    expect(redriven.calls[1]!.input.Parameters).toEqual({ runId: 'a-1', feature: 'bert' });
    expect(redriven.output).toMatchObject({ runId: 'a-1', resultsKey: 'runs/a-1/report/results.json' });
  });

  it('redriving after a shard failed re-runs only that shard (with its own input), then trains and reports', async () => {
    const shard = shardFailing('s/1.json', 'DataError', 1);
    const handlers = { ...succeeding, 'Featurize shard': shard.handler };
    const failed = await execute({ experiment: 'experiments/a.json', runId: 'a-2' }, handlers, 'a-2');
    // One attempt of shard 1 (a permanent error is not retried), then its failure is recorded inside the iteration.
    expect(Object.fromEntries(shard.attempts)).toEqual({ 's/0.json': 1, 's/1.json': 1 });
    expect(failed.calls.find((c) => c.state === 'MarkFailed Featurize')!.input.Payload).toMatchObject({
      runId: 'a-2',
      stage: 'Featurize',
      error: { Error: 'DataError', Cause: 's/1.json: attempt 1 failed' },
    });
    expect(failed.calls.some((c) => c.state === 'Train feature family')).toBe(false);

    const redriven = await redrive(failed, handlers);
    expect(redriven.error).toBeUndefined();
    expect(redriven.calls.map((c) => c.state)).toEqual([
      'MarkFailed Featurize',
      'Featurize shard',
      'Train feature family',
      'Train feature family',
      'Report',
    ]);
    // The re-run shard gets exactly its Map item, not the error it recovered from.
    expect(redriven.calls[1]!.input.Payload).toEqual({ runId: 'a-2', shardKey: 's/1.json' });
  });

  it('a shard plan the Distributed Map cannot read goes to MarkFailed Featurize map, which leads back to the Map on a redrive', async () => {
    const unreadable = (i: Json) => ({ Payload: { runId: i.Payload.prepareInput.runId, shardPlan: { key: 'runs/a-5/missing.json', count: 2, resultsPrefix: 'runs/a-5/featurize-map' }, features: ['bow'] } });
    const handlers = { ...succeeding, Prepare: unreadable, 'MarkFailed Featurize map': markFailedStandIn };
    const failed = await execute({ experiment: 'experiments/a.json', runId: 'a-5' }, handlers, 'a-5');
    expect(failed.calls.map((c) => c.state)).toEqual(['Prepare', 'MarkFailed Featurize map']);
    expect(failed.calls[1]!.input.Payload).toMatchObject({ runId: 'a-5', stage: 'Featurize', error: { Error: 'States.ItemReaderFailed' } });
    expect(failure(failed.error).Error).toBe('RunFailed');
  });

  it('a stage that fails again after a redrive ends the execution failed again (no loop): its failure is saved at redrive count 1', async () => {
    const alwaysFails = () => {
      throw fail('Error', 'experiments/a.json: field "seed": expected number');
    };
    const handlers = { ...succeeding, Prepare: alwaysFails };
    const failed = await execute({ experiment: 'experiments/a.json', runId: 'a-3' }, handlers);
    const redriven = await redrive(failed, handlers);
    expect(redriven.calls.map((c) => c.state)).toEqual(['MarkFailed Prepare', 'Prepare', 'MarkFailed Prepare']);
    expect(redriven.calls.map((c) => c.input.Payload.failedAtRedrive)).toEqual([0, undefined, 1]);
    expect(failure(redriven.error).Error).toBe('RunFailed');
  });

  it('a Prepare failure is recorded under stage "Prepare" with the run id the intake derived', async () => {
    const invalid = () => {
      throw fail('Error', 'experiments/a.json: field "seed": expected number');
    };
    const runId = `a-${md5('experiments/a.json#exec-1')}`;
    const { calls, error } = await execute({ experiment: 'experiments/a.json' }, { ...succeeding, Prepare: invalid });
    expect(calls.map((c) => c.state)).toEqual(['Prepare', 'MarkFailed Prepare']);
    expect(calls[1]!.input.Payload).toMatchObject({ runId, stage: 'Prepare', error: { Error: 'Error' } });
    expect(failure(error)).toEqual({ Error: 'RunFailed', Cause: expect.stringMatching(/^Prepare failed: Error \(run a-/) });
  });
});

/**
 * The interpreter's event log as the execution history Step Functions would record, as far as billing reads it
 * (src/cost/billing.ts stateTransitions): one `<Type>StateEntered` per state entered (inside Map iterations too),
 * and per task attempt one TaskScheduled. The interpreter logs a retry as StateRetried without entering the state
 * again; Step Functions likewise schedules the retry inside the same state entry (TaskScheduled, no new
 * TaskStateEntered).
 */
function executionHistory(events: Event[]): HistoryEvent[] {
  const history: HistoryEvent[] = [];
  const add = (type: string) => history.push({ id: history.length + 1, timestamp: 0, type });
  for (const e of events) {
    if (e.type === 'StateEntered') add(`${e.state!.type}StateEntered`);
    if ((e.type === 'StateEntered' || e.type === 'StateRetried') && e.state!.type === 'Task') add('TaskScheduled');
  }
  return history;
}

describe('state transitions: the estimate from the stage graph equals a real execution of the synthesized definition', () => {
  /** Stand-ins for a run Prepare plans with `shards` shards and `families` feature families. */
  const planning = (shards: number, families: number): Handlers => ({
    ...succeeding,
    Prepare: (i: Json) => ({
      Payload: {
        runId: i.Payload.prepareInput.runId,
        shardPlan: planOf(i.Payload.prepareInput.runId, Array.from({ length: shards }, (_, k) => `s/${k}.json`)),
        features: Array.from({ length: families }, (_, k) => `f${k}`),
      },
    }),
    'Start run': () => ({ ExecutionArn: 'arn:started' }),
  });
  const topLevel = (events: Event[]) => events.filter((e) => e.type === 'StateEntered' && e.index === undefined).map((e) => e.state!.name);
  /**
   * Transitions billed for an execution: those in its history, plus per child execution of a Distributed Map one
   * for starting it and those in its own history (the Step Functions developer guide, "Transitions in Distributed
   * Map state"). The parent's history has one state entry for the Map however many children it ran.
   */
  const billed = (e: Executed): number => stateTransitions(executionHistory(e.events)) + e.children.reduce((n, c) => n + 1 + billed(c), 0);

  for (const [shards, families] of [[1, 1], [3, 2], [7, 3]] as const) {
    it(`${shards} shard(s), ${families} famil${families === 1 ? 'y' : 'ies'}: upload (both executions), console and resume`, async () => {
      const handlers = planning(shards, families);
      const runStates = ['Prepare', 'Featurize', 'Train', 'Report'];

      // An upload: its own execution starts the named run, which is a second execution (both billed).
      const intake = await execute({ bucket: 'b', key: 'experiments/a.json', uploadId: 'u1' }, handlers, 'upload-1');
      const named = await execute(intake.calls[0]!.input.Input, handlers, intake.calls[0]!.input.Name);
      for (const e of [intake, named]) expect(e.error).toBeUndefined();
      expect([topLevel(intake.events), topLevel(named.events)]).toEqual([INTAKE.upload[0], [...INTAKE.upload[1]!, ...runStates]]);
      expect(named.children).toHaveLength(shards);
      expect(billed(intake) + billed(named)).toBe(estimateStateTransitions(shards, families, 'upload'));

      const inputs = { console: { experiment: 'experiments/a.json' }, resume: { experiment: 'experiments/a.json', runId: 'a-1' } };
      for (const [start, input] of Object.entries(inputs) as ['console' | 'resume', Json][]) {
        const run = await execute(input, handlers);
        expect(run.error, start).toBeUndefined();
        expect(topLevel(run.events), start).toEqual([...INTAKE[start][0]!, ...runStates]);
        expect(billed(run), start).toBe(estimateStateTransitions(shards, families, start));
      }
    });
  }

  it('1,001 shards run in 501 child executions of 2; the estimate holds, and the parent\'s history is the one of a 3-shard run', async () => {
    const many = await execute({ experiment: 'experiments/a.json' }, planning(1001, 2));
    const few = await execute({ experiment: 'experiments/a.json' }, planning(3, 2));
    for (const run of [many, few]) expect(run.error).toBeUndefined();
    expect(many.children.map((c) => c.calls.length)).toHaveLength(501);
    expect(many.calls.filter((c) => c.state === 'Featurize shard')).toHaveLength(1001);
    expect(billed(many)).toBe(estimateStateTransitions(1001, 2, 'console'));
    const parent = (run: Executed) => run.events.filter((e) => e.index === undefined).map((e) => `${e.type} ${e.state?.name ?? ''}`);
    expect(parent(many)).toEqual(parent(few));
  });

  it('a retried task is one more transition (the estimate is of a run without retries)', async () => {
    let failedOnce = false;
    const flaky = (i: Json) => {
      if (!failedOnce) {
        failedOnce = true;
        throw fail('TransientError', 'read ECONNRESET');
      }
      return succeeding['Featurize shard']!(i, 1);
    };
    const run = await execute({ experiment: 'experiments/a.json' }, { ...planning(3, 2), 'Featurize shard': flaky });
    expect(run.error).toBeUndefined();
    expect(run.calls.filter((c) => c.state === 'Featurize shard')).toHaveLength(4);
    expect(billed(run)).toBe(estimateStateTransitions(3, 2, 'console') + 1);
  });
});
