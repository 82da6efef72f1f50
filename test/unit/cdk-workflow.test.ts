import { createHash } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { LAMBDA_TRANSIENT_ERRORS } from '../../cdk/constructs/workflow.js';
import { type AslDefinition, type AslState, SYNTH_TIMEOUT, resourcesOf, stateMachineDefinition, synth } from './cdk-template.js';

// aws-local-stepfunctions targets Node >= 22; Node 20 lacks Promise.withResolvers, which it uses.
const P = Promise as unknown as { withResolvers?: () => unknown };
P.withResolvers ??= () => {
  let resolve!: (v: unknown) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise((a, b) => ((resolve = a), (reject = b)));
  return { promise, resolve, reject };
};
const { StateMachine } = await import('aws-local-stepfunctions');

// A non-default concurrency proves the context value reaches the Map (cdk.json's default is checked in cdk-config).
const CONCURRENCY = 7;
let asl: AslDefinition;
let machineProps: Record<string, unknown>;

beforeAll(() => {
  const { template } = synth({ featurizeConcurrency: CONCURRENCY });
  asl = stateMachineDefinition(template);
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
const runStages = ['Prepare', 'Featurize', 'Train', 'Report'];

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

  it('fans Featurize out over the shard keys with the configured concurrency, one Lambda per shard', () => {
    const map = state('Featurize');
    expect(map.Type).toBe('Map');
    expect(map.ItemsPath).toBe('$.shardKeys');
    expect(map.MaxConcurrency).toBe(CONCURRENCY);
    expect(map.ItemSelector).toEqual({ 'runId.$': '$.runId', 'shardKey.$': '$$.Map.Item.Value' });
    const [, shard] = inner('Featurize');
    expect(shard.Resource).toMatch(/:states:::lambda:invoke$/);
    expect(shard.Parameters).toMatchObject({ 'Payload.$': '$', FunctionName: expect.stringContaining('Featurize') });
  });

  it('trains one Batch job per feature family, synchronously, passing runId and feature as job parameters', () => {
    const map = state('Train');
    expect(map.Type).toBe('Map');
    expect(map.ItemsPath).toBe('$.features');
    expect(map.ItemSelector).toEqual({ 'runId.$': '$.runId', 'feature.$': '$$.Map.Item.Value' });
    const [, job] = inner('Train');
    expect(job.Resource).toMatch(/:states:::batch:submitJob\.sync$/);
    expect(job.Parameters).toMatchObject({
      Parameters: { 'runId.$': '$.runId', 'feature.$': '$.feature' },
      'JobName.$': "States.Format('textshift-train-{}', $.feature)",
    });
  });

  it('retries every Task on transient errors with exponential backoff and full jitter', () => {
    const tasks: [string, AslState][] = [
      ...Object.entries(asl.States).filter(([, s]) => s.Type === 'Task'),
      inner('Featurize'),
      inner('Train'),
    ];
    expect(tasks.map(([n]) => n).sort()).toEqual(
      ['Featurize shard', 'MarkFailed', 'Prepare', 'Report', 'Start run', 'Train feature family'].sort(),
    );
    for (const [name, task] of tasks) {
      const transient = task.Retry?.[0];
      expect(transient, name).toMatchObject({ JitterStrategy: 'FULL', BackoffRate: 2, MaxDelaySeconds: 60 });
      expect(transient!.MaxAttempts, name).toBeGreaterThanOrEqual(3);
      expect(transient!.ErrorEquals, name).not.toContain('States.ALL');
    }
    for (const name of ['Prepare', 'Report', 'MarkFailed']) expect(state(name).Retry![0]!.ErrorEquals).toEqual(LAMBDA_TRANSIENT_ERRORS);
    expect(inner('Featurize')[1].Retry![0]!.ErrorEquals).toContain('Lambda.TooManyRequestsException');
    expect(inner('Train')[1].Retry![0]!.ErrorEquals).toEqual(['Batch.ServerException', 'Batch.AWSBatchException']);
    // A shard is idempotent, so it alone also retries its own errors (a flaky shard does not fail the run).
    expect(inner('Featurize')[1].Retry![1]).toMatchObject({ ErrorEquals: ['States.ALL'], MaxAttempts: 2, JitterStrategy: 'FULL' });
  });

  it('catches every failure of a run stage into "<stage> failed" -> MarkFailed -> Run failed', () => {
    for (const stage of runStages) {
      expect(state(stage).Catch, stage).toEqual([{ ErrorEquals: ['States.ALL'], ResultPath: '$.error', Next: `${stage} failed` }]);
      const named = state(`${stage} failed`);
      expect(named.Type).toBe('Pass');
      expect(named.Parameters).toEqual({ 'runId.$': '$.runId', stage, 'error.$': '$.error' });
      expect(named.Next).toBe('MarkFailed');
    }
    expect(state('MarkFailed').Parameters).toMatchObject({
      Payload: { 'runId.$': '$.runId', 'stage.$': '$.stage', 'error.$': '$.error' },
    });
    expect(state('MarkFailed').Next).toBe('Run failed');
    expect(state('MarkFailed').Catch).toEqual([{ ErrorEquals: ['States.ALL'], ResultPath: '$.markFailedError', Next: 'Run failed' }]);
    expect(state('Run failed')).toMatchObject({ Type: 'Fail', ErrorPath: '$.error.Error', CausePath: '$.error.Cause' });
  });

  it('keeps only keys in the state: Lambda results are trimmed and Map outputs discarded', () => {
    expect(state('Prepare').ResultSelector).toEqual({
      'runId.$': '$.Payload.runId',
      'shardKeys.$': '$.Payload.shardKeys',
      'features.$': '$.Payload.features',
    });
    expect(state('Featurize').ResultPath).toBeNull();
    expect(state('Train').ResultPath).toBeNull();
    expect(inner('Featurize')[1].ResultSelector).toEqual({ 'cached.$': '$.Payload.cached' });
    expect(inner('Train')[1].ResultSelector).toEqual({ 'jobId.$': '$.JobId', 'status.$': '$.Status' });
    expect(state('MarkFailed').ResultPath).toBeNull();
  });

  it('starts an upload run as an execution of itself named by the run id, and treats a taken name as a duplicate', () => {
    const start = state('Start run');
    expect(start.Resource).toMatch(/:states:::states:startExecution$/);
    expect(start.Parameters).toMatchObject({
      StateMachineArn: expect.stringMatching(/:stateMachine:textshift-run$/),
      'Name.$': '$.runId',
      Input: { 'experimentKey.$': '$.experimentKey', 'uploadId.$': '$.uploadId', 'runId.$': '$.runId' },
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

// ---------------------------------------------------------------------------------------------------------------
// The synthesized definition executed by an ASL interpreter. Task states are replaced by stand-ins that record
// their input and answer like the service would; this tests the routing, naming and error paths of the
// definition itself. The real handlers run against it in the integration tests.

type Json = ReturnType<typeof JSON.parse>;
interface Call {
  state: string;
  input: Json;
}

async function execute(input: Json, handlers: Record<string, (input: Json, attempt: number) => Json>, executionName = 'exec-1') {
  const calls: Call[] = [];
  const attempts = new Map<string, number>();
  const wrapped = Object.fromEntries(
    Object.entries(handlers).map(([name, fn]) => [
      name,
      async (i: Json) => {
        calls.push({ state: name, input: i });
        const n = (attempts.get(name) ?? 0) + 1;
        attempts.set(name, n);
        return fn(i, n);
      },
    ]),
  );
  const machine = new StateMachine(asl as never, { validationOptions: { checkArn: false } });
  const retryIntervalOverrides = Object.fromEntries(
    ['Prepare', 'Featurize shard', 'Train feature family', 'Report', 'MarkFailed', 'Start run'].map((n) => [n, 0]),
  );
  const run = machine.run(input, {
    overrides: { taskResourceLocalHandlers: wrapped, retryIntervalOverrides },
    context: { Execution: { Name: executionName } } as never,
  });
  try {
    return { output: await run.result, calls, error: undefined as Error | undefined };
  } catch (err) {
    return { output: undefined, calls, error: err as Error };
  }
}

/** Stand-ins answering like Lambda (`{Payload}`) and Batch (`{JobId, Status}`) for a two-shard, two-family run. */
const succeeding = {
  Prepare: (i: Json) => ({ Payload: { runId: i.Payload.runId, shardKeys: ['s/0.json', 's/1.json'], features: ['bow', 'bert'] } }),
  'Featurize shard': (i: Json) => ({ Payload: { shardKey: i.Payload.shardKey, cacheKey: 'cache/features/x.csr', cached: false } }),
  'Train feature family': () => ({ JobId: 'job-1', Status: 'SUCCEEDED' }),
  Report: (i: Json) => ({
    Payload: {
      runId: i.Payload.runId,
      resultsKey: `runs/${i.Payload.runId}/report/results.json`,
      reportKey: `runs/${i.Payload.runId}/report/report.html`,
      costKey: `runs/${i.Payload.runId}/report/cost.json`,
      archiveKey: `runs/${i.Payload.runId}/checkpoints.zip`,
    },
  }),
  MarkFailed: () => ({ Payload: null }),
};
const md5 = (s: string) => createHash('md5').update(s).digest('hex');
/** The Error and Cause the execution failed with (the interpreter wraps them in an ExecutionError). */
const failure = (error: Error | undefined) => {
  const cause = error?.cause as Error | undefined;
  return { Error: cause?.name, Cause: cause?.message };
};
const fail = (name: string, message: string) => Object.assign(new Error(message), { name });

describe('executing the definition with aws-local-stepfunctions (task stand-ins, no AWS)', () => {
  it('console input {"experiment"}: derives run id <stem>-md5(key#execution name) and runs every stage in order', async () => {
    const runId = `sst2-imdb-${md5('experiments/sst2-imdb.json#console-run-7')}`;
    const { output, calls, error } = await execute({ experiment: 'experiments/sst2-imdb.json' }, succeeding, 'console-run-7');
    expect(error).toBeUndefined();
    expect(calls[0]).toEqual({
      state: 'Prepare',
      input: expect.objectContaining({
        Payload: { experimentKey: 'experiments/sst2-imdb.json', uploadId: 'console-run-7', runId },
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
    expect(output).toEqual(succeeding.Report({ Payload: { runId } }).Payload);
  });

  it('S3 upload input: starts the run as an execution named by the run id and does no stage work itself', async () => {
    const upload = { bucket: 'data-bucket', key: 'experiments/nested/my.exp.json', uploadId: '0055AED6DCD90281E5' };
    const runId = `my-${md5('experiments/nested/my.exp.json#0055AED6DCD90281E5')}`;
    const { output, calls, error } = await execute(upload, { ...succeeding, 'Start run': () => ({ ExecutionArn: 'arn:x' }) });
    expect(error).toBeUndefined();
    expect(calls).toHaveLength(1);
    expect(calls[0]!.state).toBe('Start run');
    expect(calls[0]!.input).toMatchObject({
      Name: runId,
      Input: { experimentKey: upload.key, uploadId: upload.uploadId, runId },
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

  it('a file name that is not a valid execution name falls back to the bare digest', async () => {
    const upload = { bucket: 'b', key: 'experiments/my experiment.json', uploadId: '42' };
    const digest = md5('experiments/my experiment.json#42');
    const start = (i: Json, attempt: number) => {
      if (attempt === 1) throw fail('StepFunctions.InvalidNameException', `Invalid Execution Name: '${i.Name}'`);
      return { ExecutionArn: 'arn:y' };
    };
    const { calls, error } = await execute(upload, { ...succeeding, 'Start run': start });
    expect(error).toBeUndefined();
    expect(calls.map((c) => c.input.Name)).toEqual([`my experiment-${digest}`, digest]);
  });

  it('the named run (and any {"experimentKey","runId"} input) goes straight to Prepare with that input', async () => {
    const input = { experimentKey: 'experiments/a.json', uploadId: 'u1', runId: 'a-0123' };
    const { calls, error } = await execute(input, succeeding, 'a-0123');
    expect(error).toBeUndefined();
    expect(calls[0]!.input.Payload).toEqual(input);
  });

  it('{"experiment","runId"} resumes that run id', async () => {
    const { calls, error } = await execute({ experiment: 'experiments/a.json', runId: 'a-0123' }, succeeding);
    expect(error).toBeUndefined();
    expect(calls[0]!.input.Payload).toEqual({ experimentKey: 'experiments/a.json', runId: 'a-0123' });
  });

  it('rejects an unrecognised input shape with InvalidInput before any stage runs', async () => {
    const { calls, error } = await execute({ experiments: 'experiments/a.json' }, succeeding);
    expect(calls).toEqual([]);
    expect(failure(error)).toEqual({ Error: 'InvalidInput', Cause: expect.stringContaining('{"experiment": "experiments/<name>.json"}') });
  });

  it('a shard that throws once is retried and the run succeeds', async () => {
    const flaky = (i: Json, attempt: number) => {
      if (attempt === 1) throw fail('Error', 'connection reset');
      return succeeding['Featurize shard'](i);
    };
    const { calls, error } = await execute({ experiment: 'experiments/a.json' }, { ...succeeding, 'Featurize shard': flaky });
    expect(error).toBeUndefined();
    expect(calls.filter((c) => c.state === 'Featurize shard')).toHaveLength(3);
    expect(calls.at(-1)!.state).toBe('Report');
  });

  it('a failed training job goes to MarkFailed with the stage and cause, then fails the execution', async () => {
    const jobFailed = () => {
      throw fail('States.TaskFailed', '{"Status":"FAILED","StatusReason":"Essential container in task exited"}');
    };
    const { calls, error } = await execute(
      { experiment: 'experiments/a.json', runId: 'a-1' },
      { ...succeeding, 'Train feature family': jobFailed },
    );
    const markFailed = calls.filter((c) => c.state === 'MarkFailed');
    expect(markFailed).toHaveLength(1);
    expect(markFailed[0]!.input.Payload).toEqual({
      runId: 'a-1',
      stage: 'Train',
      error: { Error: 'States.TaskFailed', Cause: '{"Status":"FAILED","StatusReason":"Essential container in task exited"}' },
    });
    expect(calls.some((c) => c.state === 'Report')).toBe(false);
    expect(failure(error)).toEqual({
      Error: 'States.TaskFailed',
      Cause: '{"Status":"FAILED","StatusReason":"Essential container in task exited"}',
    });
  });

  it('a Prepare failure is recorded under stage "Prepare" with the run id the intake derived', async () => {
    const invalid = () => {
      throw fail('Error', 'experiments/a.json: field "seed": expected number');
    };
    const runId = `a-${md5('experiments/a.json#exec-1')}`;
    const { calls, error } = await execute({ experiment: 'experiments/a.json' }, { ...succeeding, Prepare: invalid });
    expect(calls.map((c) => c.state)).toEqual(['Prepare', 'MarkFailed']);
    expect(calls[1]!.input.Payload).toMatchObject({ runId, stage: 'Prepare', error: { Error: 'Error' } });
    expect(failure(error)).toEqual({ Error: 'Error', Cause: 'experiments/a.json: field "seed": expected number' });
  });
});
