/**
 * Executes the synthesized state machine definition — unchanged, as the template holds it — in the ASL interpreter
 * `aws-local-stepfunctions`, with every Task answered the way its service would answer it:
 *
 *   lambda:invoke          the real handler `functions/<name>/index.ts`, called in-process with the function's
 *                          environment from the template, its result wrapped as Lambda's `{Payload}`; a thrown
 *                          error surfaces as Lambda reports it (Error = its name, Cause = {errorType, errorMessage})
 *   batch:submitJob.sync   the trainer container's entry run as a local process: the image's ENTRYPOINT (from
 *                          containers/trainer/Dockerfile) plus the job definition's command with `Ref::` parameters
 *                          substituted and its environment; a non-zero exit fails the task as Batch does
 *                          (States.TaskFailed, Cause = the job description with "Essential container in task exited")
 *   Distributed Map        the harness's stand-in (test/support/distributed-map.ts), which the interpreter lacks: it
 *                          reads the shard plan from the emulator's S3 where the ItemReader points and runs each batch
 *                          as a child execution of its own (another interpreter run of the map's processor, with these
 *                          same task stand-ins); the emulator's Step Functions runs the real Distributed Map in
 *                          distributed-map.test.ts
 *
 * Object storage is the emulator's S3 (or any endpoint in `awsEnv`). Why an interpreter and not the emulator's own
 * Step Functions with activity workers: the emulator cannot invoke Lambda or Batch, so running there would mean
 * rewriting every Task's Resource to an activity ARN — testing a different definition. The interpreter runs the
 * definition as synthesized and lets each task resource be answered locally by name; the emulator's Step Functions
 * runs the same definition for real in the trigger tests (up to the first Lambda call).
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { GetObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { type AslStates, runDistributedMap, standInDistributedMaps } from '../../support/distributed-map.js';
import { type CfnResource, type Json, type ResolveContext, onlyResource, resolve, resourcesOfType, standInArn } from './cfn.js';
import type { SynthesizedStack } from './deploy.js';

// aws-local-stepfunctions targets Node >= 22; Node 20 lacks Promise.withResolvers, which it uses.
const P = Promise as unknown as { withResolvers?: () => unknown };
P.withResolvers ??= () => {
  let resolveFn!: (v: unknown) => void;
  let rejectFn!: (e: unknown) => void;
  const promise = new Promise((a, b) => ((resolveFn = a), (rejectFn = b)));
  return { promise, resolve: resolveFn, reject: rejectFn };
};
const { StateMachine } = await import('aws-local-stepfunctions');

const REPO_ROOT = fileURLToPath(new URL('../../..', import.meta.url));

/** The parts of the interpreter's event log entries this module reads. */
interface EventLogEntry {
  type: string;
  state?: { name: string };
  index?: number;
}

interface AslState {
  Type: string;
  Resource?: string;
  Retry?: unknown[];
  ItemProcessor?: { States: Record<string, AslState> };
  Iterator?: { States: Record<string, AslState> };
}

/** One Lambda invocation the interpreter made. */
export interface LambdaCall {
  /** The handler folder under functions/, e.g. "featurize". */
  fn: string;
  state: string;
  event: unknown;
  result?: unknown;
  error?: string;
}

/** One Batch job the interpreter ran as a local trainer process. */
export interface TrainerJob {
  parameters: Record<string, string>;
  args: string[];
  exitCode: number | null;
  stdout: string;
  stderr: string;
}

/** What one execution did. */
export interface LocalExecution {
  status: 'SUCCEEDED' | 'FAILED';
  output?: unknown;
  /** The execution's error when it failed ({Error, Cause} as Step Functions reports it). */
  error?: { Error?: string; Cause?: string };
  /**
   * Every state entered, in order; states inside a Map iteration carry the iteration index, states of a Distributed
   * Map's child execution the child's index (`child`), and inside its own Map the iteration index too.
   */
  entered: { state: string; index?: number; child?: number }[];
  /** Retries the definition's Retry fields made, by state name. */
  retried: string[];
  lambdaCalls: LambdaCall[];
  jobs: TrainerJob[];
}

/**
 * Lets a test stand between the interpreter and a task's work: `fn` is the handler folder for a Lambda task and
 * "trainer" for a Batch job (whose `event` is the job parameters). Calling `invoke` does the work; throwing instead
 * fails the task the way the work failing would.
 */
export type TaskInterceptor = (call: { fn: string; state: string; event: unknown }, invoke: () => Promise<unknown>) => Promise<unknown>;

export interface LocalWorkflowOptions {
  /** The bucket the stack's data bucket stands for (BUCKET of every function and the trainer). */
  bucket: string;
  account: string;
  region: string;
  /** What lets handlers and the trainer reach the object store: AWS_ENDPOINT_URL, credentials, region. */
  awsEnv: Record<string, string>;
  /** More environment for trainer processes only (a test's instrumentation, e.g. NODE_OPTIONS). */
  trainerEnv?: Record<string, string>;
  /**
   * The access key id each actor signs its requests with, as each has its own role's credentials on AWS: a
   * functions/ folder, "trainer", or "state machine" (the Distributed Map's ItemReader); others use awsEnv's.
   */
  accessKeyIds?: Record<string, string>;
}

/** Lambda folder, environment and handler of one function in the template. */
interface FunctionStandIn {
  folder: string;
  environment: Record<string, string>;
}

const functionEnvironmentSkipped = new Set([
  // Runtime flags of the Lambda runtime; in this process they would leak into the trainer processes it spawns.
  'NODE_OPTIONS',
]);

/** The trainer image's ENTRYPOINT, read from its Dockerfile (exec form). */
function trainerEntrypoint(): string[] {
  const dockerfile = readFileSync(new URL('containers/trainer/Dockerfile', `file://${REPO_ROOT}`), 'utf8');
  const match = /^ENTRYPOINT\s+(\[.*\])\s*$/m.exec(dockerfile);
  if (!match) throw new Error('containers/trainer/Dockerfile has no exec-form ENTRYPOINT ["..."]');
  return JSON.parse(match[1]!) as string[];
}

/** A failure as a Step Functions task reports it: `Error` is the error name, `Cause` the text. */
function taskError(error: string, cause: string): Error {
  return Object.assign(new Error(cause), { name: error });
}

/** The definition of `stack` ready to run locally against `options.bucket`. */
export class LocalWorkflow {
  readonly definition: { StartAt: string; States: Record<string, AslState> };
  readonly stateMachineName: string;
  private readonly functions = new Map<string, FunctionStandIn>();
  private readonly jobDefinitions = new Map<string, { command: string[]; environment: Record<string, string> }>();
  private readonly handlers = new Map<string, Promise<(event: unknown) => Promise<unknown>>>();
  private readonly entrypoint = trainerEntrypoint();
  private readonly savedEnv = new Map<string, string | undefined>();

  constructor(
    stack: SynthesizedStack,
    private readonly options: LocalWorkflowOptions,
  ) {
    const { template, prefix } = stack;
    const ctx: ResolveContext = { account: options.account, region: options.region, resources: new Map() };
    const [bucketId] = resourcesOfType(template, 'AWS::S3::Bucket').find(([, r]) => JSON.stringify(r.Properties?.NotificationConfiguration ?? {}).includes('EventBridgeEnabled'))!;
    ctx.resources.set(bucketId, { ref: options.bucket, attrs: { Arn: `arn:aws:s3:::${options.bucket}` } });
    const [, machine] = onlyResource(template, 'AWS::StepFunctions::StateMachine');
    this.stateMachineName = String(machine.Properties!.StateMachineName);
    this.definition = JSON.parse(resolve(template, ctx, machine.Properties!.DefinitionString!) as string);

    const env = (r: CfnResource, list: Json | undefined): Record<string, string> => {
      const resolved = resolve(template, ctx, list ?? null);
      if (Array.isArray(resolved)) return Object.fromEntries((resolved as { Name: string; Value: string }[]).map((e) => [e.Name, e.Value]));
      return (resolved ?? {}) as Record<string, string>;
    };
    for (const [id, fn] of resourcesOfType(template, 'AWS::Lambda::Function')) {
      const props = fn.Properties!;
      const name = String(props.FunctionName);
      if (!name.startsWith(`${prefix}-`)) throw new Error(`function ${id} is named "${name}", not "${prefix}-<folder under functions/>"`);
      const variables = (props.Environment as { Variables?: Json } | undefined)?.Variables;
      this.functions.set(standInArn(ctx, id, fn), { folder: name.slice(prefix.length + 1), environment: env(fn, variables) });
    }
    for (const [id, jd] of resourcesOfType(template, 'AWS::Batch::JobDefinition')) {
      const container = jd.Properties!.ContainerProperties as { Command: string[]; Environment?: Json };
      this.jobDefinitions.set(standInArn(ctx, id, jd), { command: container.Command, environment: env(jd, container.Environment) });
    }
  }

  /**
   * Runs one execution named `name` on `input` to its end. Retry waits are overridden to 0 ms (the retries, their
   * count and the errors they match are the definition's); `intercept` stands between the interpreter and the
   * tasks' work.
   */
  async execute(input: unknown, name: string, intercept?: TaskInterceptor): Promise<LocalExecution> {
    const record: LocalExecution = { status: 'SUCCEEDED', entered: [], retried: [], lambdaCalls: [], jobs: [] };
    const result = await this.run(this.definition, input, name, record, intercept);
    if (result.error) {
      record.status = 'FAILED';
      record.error = result.error;
    } else record.output = result.output;
    return record;
  }

  /**
   * One execution of `definition` (the machine's, or a Distributed Map's processor as a child execution), its
   * entered states and task calls added to `record`, the child's index on the states it entered.
   */
  private async run(
    definition: AslStates,
    input: unknown,
    name: string,
    record: LocalExecution,
    intercept: TaskInterceptor | undefined,
    child?: number,
  ): Promise<{ output?: unknown; error?: { Error?: string; Cause?: string } }> {
    const localHandlers: Record<string, (input: Json) => Promise<Json>> = {};
    const retryIntervalOverrides: Record<string, number> = {};
    const visit = (states: Record<string, AslState>) => {
      for (const [stateName, s] of Object.entries(states)) {
        if (s.Retry) retryIntervalOverrides[stateName] = 0;
        const inner = s.ItemProcessor ?? s.Iterator;
        if (inner) visit(inner.States);
        if (s.Type !== 'Task') continue;
        if (s.Resource?.endsWith(':states:::lambda:invoke')) localHandlers[stateName] = (i) => this.invokeLambda(stateName, i, record, intercept);
        else if (s.Resource?.endsWith(':states:::batch:submitJob.sync')) {
          localHandlers[stateName] = (i) => {
            const job = () => this.runTrainerJob(i, record);
            return (intercept ? intercept({ fn: 'trainer', state: stateName, event: (i as { Parameters?: Json }).Parameters }, job) : job()) as Promise<Json>;
          };
        }
        else {
          localHandlers[stateName] = () => {
            throw new Error(`state "${stateName}" (${s.Resource}) has no local stand-in: start the execution with a run input, not an upload`);
          };
        }
      }
    };
    const executionArn = `arn:aws:states:${this.options.region}:${this.options.account}:execution:${this.stateMachineName}:${name}`;
    const { definition: runnable, maps } = standInDistributedMaps(definition);
    visit(runnable.States as Record<string, AslState>);
    for (const [mapState, map] of maps) {
      localHandlers[mapState] = (i) =>
        runDistributedMap(mapState, map, i, {
          readItems: (bucket, key) => this.readJson(bucket, key) as Promise<unknown[]>,
          runChild: async (_map, processor, childInput, index) =>
            this.run(processor, childInput, `${name}/${mapState}:${index}`, record, intercept, index),
          executionArn,
        }) as Promise<Json>;
    }

    // A child execution's processor is not a whole definition by itself (the validator wants one); its parent's was validated.
    const machine = new StateMachine(runnable as never, { validationOptions: child === undefined ? { checkArn: false } : { noValidate: true } });
    const stateMachineArn = `arn:aws:states:${this.options.region}:${this.options.account}:stateMachine:${this.stateMachineName}`;
    const run = machine.run(input as Json, {
      overrides: { taskResourceLocalHandlers: localHandlers, retryIntervalOverrides },
      context: { Execution: { Id: executionArn, Name: name, RedriveCount: 0 }, StateMachine: { Id: stateMachineArn, Name: this.stateMachineName } } as never,
    });
    const collect = (async () => {
      for await (const e of run.eventLogs as AsyncGenerator<EventLogEntry>) {
        if (e.type === 'StateEntered') record.entered.push({ state: e.state!.name, ...(e.index !== undefined ? { index: e.index } : {}), ...(child !== undefined ? { child } : {}) });
        if (e.type === 'StateRetried') record.retried.push(e.state!.name);
      }
    })();
    let outcome: { output?: unknown; error?: { Error?: string; Cause?: string } };
    try {
      outcome = { output: await run.result };
    } catch (err) {
      const cause = (err as Error).cause as Error | undefined;
      outcome = { error: { Error: cause?.name, Cause: cause?.message } };
    }
    await collect;
    return outcome;
  }

  /** A JSON object of the emulator's S3 (what a Distributed Map's ItemReader reads). */
  private async readJson(bucket: string, key: string): Promise<unknown> {
    const s3 = new S3Client({ endpoint: this.options.awsEnv.AWS_ENDPOINT_URL, region: this.options.region, forcePathStyle: true, credentials: { accessKeyId: this.options.accessKeyIds?.['state machine'] ?? this.options.awsEnv.AWS_ACCESS_KEY_ID ?? 'test', secretAccessKey: this.options.awsEnv.AWS_SECRET_ACCESS_KEY ?? 'test' } });
    try {
      return JSON.parse(await (await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }))).Body!.transformToString());
    } finally {
      s3.destroy();
    }
  }

  /** The AWS_ACCESS_KEY_ID of `actor`, when the options give it one. */
  private accessKeyEnv(actor: string): Record<string, string> {
    const id = this.options.accessKeyIds?.[actor];
    return id === undefined ? {} : { AWS_ACCESS_KEY_ID: id };
  }

  /** Puts back every environment variable the in-process handlers were given. */
  restoreEnvironment(): void {
    for (const [k, v] of this.savedEnv) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
    this.savedEnv.clear();
  }

  private setEnv(key: string, value: string | undefined): void {
    if (!this.savedEnv.has(key)) this.savedEnv.set(key, process.env[key]);
    if (value === undefined) delete process.env[key];
    else process.env[key] = value;
  }

  private handler(folder: string): Promise<(event: unknown) => Promise<unknown>> {
    let loaded = this.handlers.get(folder);
    if (!loaded) {
      loaded = import(`${REPO_ROOT}functions/${folder}/index.ts`).then((m: { handler?: (event: unknown) => Promise<unknown> }) => {
        if (typeof m.handler !== 'function') throw new Error(`functions/${folder}/index.ts exports no handler`);
        return m.handler;
      });
      this.handlers.set(folder, loaded);
    }
    return loaded;
  }

  private async invokeLambda(state: string, input: Json, record: LocalExecution, intercept?: TaskInterceptor): Promise<Json> {
    const { FunctionName, Payload } = input as { FunctionName: string; Payload: Json };
    const fn = this.functions.get(FunctionName);
    if (!fn) throw new Error(`state "${state}" invokes ${FunctionName}, which is no function of the template`);
    // Each function sees its own template environment (BUCKET, settings); only one function runs at a time,
    // except parallel invocations of the same one, which set the same values.
    for (const other of this.functions.values()) for (const k of Object.keys(other.environment)) this.setEnv(k, undefined);
    for (const [k, v] of Object.entries({ ...fn.environment, ...this.options.awsEnv, ...this.accessKeyEnv(fn.folder) })) if (!functionEnvironmentSkipped.has(k)) this.setEnv(k, v);

    // Lambda receives the payload as JSON, not as the interpreter's object.
    const event = JSON.parse(JSON.stringify(Payload)) as unknown;
    const call: LambdaCall = { fn: fn.folder, state, event };
    record.lambdaCalls.push(call);
    const handler = await this.handler(fn.folder);
    const invoke = () => handler(JSON.parse(JSON.stringify(event)));
    try {
      call.result = JSON.parse(JSON.stringify((await (intercept ? intercept(call, invoke) : invoke())) ?? null));
    } catch (err) {
      const e = err instanceof Error ? err : new Error(String(err));
      call.error = `${e.name}: ${e.message}`;
      // What the Lambda integration reports for a function error.
      throw taskError(e.name, JSON.stringify({ errorType: e.name, errorMessage: e.message, trace: (e.stack ?? '').split('\n') }));
    }
    return { ExecutedVersion: '$LATEST', Payload: call.result as Json, StatusCode: 200 };
  }

  private async runTrainerJob(input: Json, record: LocalExecution): Promise<Json> {
    const { JobDefinition, JobName, JobQueue, Parameters = {} } = input as { JobDefinition: string; JobName: string; JobQueue: string; Parameters?: Record<string, string> };
    const definition = this.jobDefinitions.get(JobDefinition);
    if (!definition) throw new Error(`job definition ${JobDefinition} is not in the template`);
    const args = definition.command.map((a) => (a.startsWith('Ref::') ? (Parameters[a.slice(5)] ?? a) : a));
    const [program, ...entryArgs] = this.entrypoint;
    const job: TrainerJob = { parameters: Parameters, args, exitCode: null, stdout: '', stderr: '' };
    record.jobs.push(job);
    const child = spawn(program === 'node' ? process.execPath : program!, [...entryArgs, ...args], {
      cwd: REPO_ROOT,
      // A container sees only its image's and its job's environment, plus what the job role provides.
      env: { PATH: process.env.PATH, HOME: process.env.HOME, ...definition.environment, ...this.options.awsEnv, ...this.accessKeyEnv('trainer'), ...this.options.trainerEnv },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout.on('data', (d: Buffer) => (job.stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (job.stderr += d.toString()));
    job.exitCode = await new Promise<number | null>((done, fail) => {
      child.once('error', fail);
      child.once('close', done);
    });
    const jobId = `local-${record.jobs.length}`;
    const description = { JobId: jobId, JobName, JobQueue, JobDefinition, Parameters, Container: { Command: args, ExitCode: job.exitCode } };
    if (job.exitCode !== 0) {
      throw taskError('States.TaskFailed', JSON.stringify({ ...description, Status: 'FAILED', StatusReason: 'Essential container in task exited' }));
    }
    return { ...description, Status: 'SUCCEEDED' } as Json;
  }
}
