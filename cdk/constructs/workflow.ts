import { Arn, ArnFormat, Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import type * as batch from 'aws-cdk-lib/aws-batch';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import * as tasks from 'aws-cdk-lib/aws-stepfunctions-tasks';
import { acknowledge, nagRef } from '../nag.js';
import { Construct } from 'constructs';
import {
  DISTRIBUTED_MAP_ERRORS, type FanOut, type LambdaFunction, MARK_FAILED, type OnAws, RETRY, type RetryClass, START_RUN_TIMEOUT_SECONDS, STAGES,
  type StageName, type TimeLimitSettings, failureStates, mapFailureStates, taskTimeoutSeconds,
} from '#src/run/graph.js';
import { ConfigError } from '#src/errors/index.js';
import { EXPERIMENT_NAME_CHARACTERS, experimentNameRule, runKeys } from '#src/run/keys.js';

export interface WorkflowProps {
  prefix: string;
  /** The data bucket: Distributed Maps read their items from it and write their results to it. */
  bucket: s3.IBucket;
  /** The Lambda function of each name the stage graph uses. */
  functions: Record<LambdaFunction, lambda.IFunction>;
  training: { jobQueue: batch.IJobQueue; jobDefinition: batch.IJobDefinition };
  featurizeConcurrency: number;
  trainConcurrency: number;
  /** The deployment's time limits, from which every task's TimeoutSeconds is derived (src/run/graph.ts). */
  timeLimits: TimeLimitSettings;
  /**
   * The execution timeout (cdk.json maxRunHours): a run cannot outlive the slot the spend ledger gave it
   * (src/cost/spend-ledger.ts), which frees itself after as long.
   */
  maxRunHours: number;
  logRetentionDays: number;
  /**
   * A test variant of the definition, never deployed (the stack never sets it): a Distributed Map's child execution
   * handles its batch of items with a Pass state (a no-op item handler) instead of running the task for each item, so
   * an emulator that cannot run Lambda, and runs a few hundred states a second, drives 100,000 items through the
   * definition in minutes (test/integration/distributed-map.test.ts). Everything else is built as for a deployment.
   */
  noOpItems?: boolean;
}

/**
 * A Batch `.sync` task with a state TimeoutSeconds. BatchSubmitJob turns `taskTimeout` into the job's attempt
 * duration (Batch's Timeout parameter, which would override the job definition's), not the state's TimeoutSeconds,
 * so the state field is added to the rendered state here.
 */
class BatchJobTask extends tasks.BatchSubmitJob {
  constructor(
    scope: Construct,
    id: string,
    props: tasks.BatchSubmitJobProps,
    private readonly timeoutSeconds: number,
  ) {
    super(scope, id, props);
  }

  override toStateJson(queryLanguage?: sfn.QueryLanguage): object {
    return { ...super.toStateJson(queryLanguage), TimeoutSeconds: this.timeoutSeconds };
  }
}

/** An S3 JSON ItemReader without CDK's grant (GetObject on the whole bucket); the workflow grants the plan keys only. */
class PlanItemReader extends sfn.S3JsonItemReader {
  override providePolicyStatements(): iam.PolicyStatement[] {
    return [];
  }
}

/** A ResultWriter without CDK's grant (writes anywhere in the bucket); the workflow grants the results prefix only. */
class RunResultWriter extends sfn.ResultWriterV2 {
  override providePolicyStatements(): iam.PolicyStatement[] {
    return [];
  }
}

/** The ARN of the execution a state runs in: in the run's own states, the execution running the run. */
const RUN_EXECUTION = '$$.Execution.Id';
/** Where a Distributed Map's child execution finds the ARN of the run's execution: in its items (the ItemSelector). */
const CHILD_EXECUTION = '$.execution';

/** A retry class of the stage graph as a Step Functions retrier (full jitter). */
function retrier(r: RetryClass): sfn.RetryProps {
  return {
    errors: [...r.errors],
    interval: Duration.seconds(r.intervalSeconds),
    backoffRate: r.backoffRate,
    maxAttempts: r.retries,
    maxDelay: Duration.seconds(r.maxDelaySeconds),
    jitterStrategy: sfn.JitterType.FULL,
  };
}

/**
 * Refuses an execution timeout shorter than one task of each stage at its time limit (a training job with all its
 * attempts): such a deployment would time out runs that every stage's own limits allow.
 */
function checkMaxRunHours(maxRunHours: number, limits: TimeLimitSettings): void {
  const parts = STAGES.map((stage) => ({ name: stage.name, seconds: taskTimeoutSeconds(stage.aws, limits) }));
  const seconds = parts.reduce((sum, p) => sum + p.seconds, 0);
  if (maxRunHours * 3600 >= seconds) return;
  const each = parts.map((p) => `${p.name} ${(p.seconds / 3600).toFixed(2)} h`).join(', ');
  throw new ConfigError(
    `invalid deployment context (cdk.json or -c):\n  context "maxRunHours": expected at least ${Math.ceil(seconds / 3600)} (one task of each stage at its ` +
      `time limit: ${each}), got ${maxRunHours}; raise maxRunHours, or lower the stages' time limits`,
  );
}

/** What a stage's task is given (default: the run id and its fan-out item) and keeps of its result. */
interface StageIo {
  payload?: sfn.TaskInput;
  resultSelector: Record<string, string>;
  /** The comment of the stage's Map state, when it fans out. */
  mapComment?: string;
}

/**
 * The run as a Step Functions Standard state machine (JSONPath):
 *
 *   intake: normalise the input shape, derive the run id, and (for uploads) start the run as an execution
 *           named by the run id, so a duplicate delivery of the same upload cannot start a second run
 *   run:    the stages of the stage graph (src/run/graph.ts), in its order: a stage that runs once is its task, a
 *           stage that fans out is a Map with the task in each iteration (an Inline Map over a list in Prepare's
 *           output, or a Distributed Map reading its items from the S3 object Prepare names, one child execution per
 *           item, results written to S3); each task retries its graph retry class and has its graph TimeoutSeconds:
 *           Prepare -> Featurize (Distributed Map over the shard plan) -> Train (Map over feature families, Batch
 *           .sync) -> Report
 *   fail:   every task catches into "<stage> failed" -> "MarkFailed <stage>", which records stage and cause in
 *           the manifest and fails the execution (RunFailed) right there, next to the failed task
 *
 * Redrive: Step Functions re-runs an execution from the state it failed in, and inside a Map only the failed or
 * aborted iterations. Ending in a Fail state would make a redrive fail there again, so the execution ends in the
 * MarkFailed task of the failed stage instead (inside the Map iteration for a shard or a training job). A
 * redrive re-enters that task with a higher `$$.Execution.RedriveCount` than the one "<stage> failed" saved;
 * MarkFailed then clears the failure and returns, and its Next is the failed task, which runs again. Finished
 * shards and training jobs are not redone.
 *
 * Only object keys travel in the state; stage outputs are trimmed with ResultSelector/ResultPath.
 */
export class Workflow extends Construct {
  readonly stateMachine: sfn.StateMachine;
  readonly stateMachineName: string;

  constructor(scope: Construct, id: string, props: WorkflowProps) {
    super(scope, id);
    this.stateMachineName = `${props.prefix}-run`;
    checkMaxRunHours(props.maxRunHours, props.timeLimits);
    // The machine starts named executions of itself; a constructed ARN avoids a self-reference cycle.
    const selfArn = Stack.of(this).formatArn({
      service: 'states',
      resource: 'stateMachine',
      resourceName: this.stateMachineName,
      arnFormat: ArnFormat.COLON_RESOURCE_NAME,
    });

    /** The TimeoutSeconds of a task of the graph. */
    const timeout = (aws: OnAws) => sfn.Timeout.duration(Duration.seconds(taskTimeoutSeconds(aws, props.timeLimits)));
    /**
     * A Lambda task of the graph: its function, retries of its retry class only (no blanket service retry), and a
     * TimeoutSeconds a little above the function's timeout.
     */
    const invoke = (name: string, aws: Extract<OnAws, { on: 'lambda' }>, o: Omit<tasks.LambdaInvokeProps, 'lambdaFunction'>) =>
      new tasks.LambdaInvoke(this, name, { ...o, lambdaFunction: props.functions[aws.fn], retryOnServiceExceptions: false, taskTimeout: timeout(aws) }).addRetry(
        retrier(aws.retry),
      );

    // ---------------------------------------------------------------- failure path
    /**
     * Catches every error of `task` (after its retries) into "<stage> failed", which saves the stage name and the
     * redrive count, then "MarkFailed <stage>", which records the failure and fails the execution; when a redrive
     * re-enters it, it returns and `task` runs again with the input it had.
     */
    const onFailure = (
      task: sfn.TaskStateBase | sfn.DistributedMap,
      stage: StageName,
      [failedName, markFailedName]: readonly [string, string] = failureStates(stage),
      errors: readonly string[] = [sfn.Errors.ALL],
      // The run's execution: its own ARN, or inside a Distributed Map's child execution the ARN its items carry.
      execution: string = RUN_EXECUTION,
    ) => {
      const markFailed = invoke(markFailedName, MARK_FAILED.aws, {
        comment: `Records the ${stage} failure in the run manifest and fails the execution here; on a redrive, retries ${stage}.`,
        payload: sfn.TaskInput.fromObject({
          runId: sfn.JsonPath.stringAt('$.runId'),
          stage: sfn.JsonPath.stringAt('$.failure.stage'),
          error: sfn.JsonPath.objectAt('$.error'),
          failedAtRedrive: sfn.JsonPath.numberAt('$.failure.redriveCount'),
          redriveCount: sfn.JsonPath.numberAt('$$.Execution.RedriveCount'),
          execution: sfn.JsonPath.stringAt(execution),
        }),
        resultPath: sfn.JsonPath.DISCARD,
      });
      markFailed.next(task);
      const failed = new sfn.Pass(this, failedName, {
        parameters: { stage, 'redriveCount.$': '$$.Execution.RedriveCount' },
        resultPath: '$.failure',
      }).next(markFailed);
      task.addCatch(failed, { errors: [...errors], resultPath: '$.error' });
    };

    // ---------------------------------------------------------------- run stages, from the stage graph
    const io: Record<StageName, StageIo> = {
      Prepare: {
        // With the execution that runs the run: Prepare takes the run's lease for it.
        payload: sfn.TaskInput.fromObject({ prepareInput: sfn.JsonPath.objectAt('$.prepareInput'), execution: sfn.JsonPath.stringAt(RUN_EXECUTION) }),
        resultSelector: { 'runId.$': '$.Payload.runId', 'shardPlan.$': '$.Payload.shardPlan', 'features.$': '$.Payload.features' },
      },
      Featurize: {
        resultSelector: { 'cached.$': '$.Payload.cached' },
        mapComment:
          'One child execution per batch of shards of the plan Prepare wrote to S3; results are written to S3 under the ' +
          'run, so neither the state nor this execution\'s history grows with the shards.',
      },
      Train: {
        resultSelector: { 'jobId.$': '$.JobId', 'status.$': '$.Status' },
        mapComment: 'One Batch job per feature family, in parallel.',
      },
      Report: {
        // The execution ARN lets the cost report read this execution's billed usage.
        payload: sfn.TaskInput.fromObject({ runId: sfn.JsonPath.stringAt('$.runId'), executionArn: sfn.JsonPath.stringAt('$$.Execution.Id') }),
        resultSelector: {
          'runId.$': '$.Payload.runId',
          'resultsKey.$': '$.Payload.resultsKey',
          'reportKey.$': '$.Payload.reportKey',
          'costKey.$': '$.Payload.costKey',
          'archiveKey.$': '$.Payload.archiveKey',
        },
      },
    };
    const itemField = (fanOut: FanOut) => (fanOut.each === 'run' ? {} : { [fanOut.item]: sfn.JsonPath.stringAt(`$.${fanOut.item}`) });
    const settings = { featurizeConcurrency: props.featurizeConcurrency, trainConcurrency: props.trainConcurrency };
    /** What each item's iteration is given: the run id and the item. */
    const itemSelector = (fanOut: Exclude<FanOut, { each: 'run' }>, extra: Record<string, string> = {}) => ({
      runId: sfn.JsonPath.stringAt('$.runId'),
      [fanOut.item]: sfn.JsonPath.stringAt('$$.Map.Item.Value'),
      ...extra,
    });

    /**
     * A distributed fan-out: a Distributed Map reading the batches of items from the JSON array object Prepare names
     * (ItemReader), one child execution per batch, which runs the task for each item of its batch in turn (an Inline
     * Map, one at a time, so MaxConcurrency bounds the tasks at once), and writing every child execution's input and
     * output under the run (ResultWriter): only keys travel in the state. Child executions are STANDARD (a redrive
     * re-runs only the failed ones, and in them only the failed items; EXPRESS children could not be redriven with
     * the run). No failure is tolerated (ToleratedFailure unset: the ASL default, 0): an item that failed recorded its
     * failure in its child execution, and the Map Run fails.
     */
    const distributedMap = (stage: (typeof STAGES)[number], fanOut: Extract<FanOut, { mode: 'distributed' }>, task: sfn.IChainable) => {
      const plan = `$.${fanOut.items}`;
      const batch = props.noOpItems
        ? new sfn.Pass(this, fanOut.batchState, { comment: 'Test variant: a no-op handler of the batch (WorkflowProps.noOpItems).' })
        : new sfn.Map(this, fanOut.batchState, {
            comment: `Runs ${fanOut.task} for each ${fanOut.item} of this child execution's batch, one at a time.`,
            itemsPath: `$.${fanOut.batchItems}`,
            itemSelector: itemSelector(fanOut, { execution: sfn.JsonPath.stringAt(CHILD_EXECUTION) }),
            maxConcurrency: 1,
            resultPath: sfn.JsonPath.DISCARD,
          }).itemProcessor(task);
      const map = new sfn.DistributedMap(this, stage.name, {
        comment: io[stage.name].mapComment,
        // Child executions are named and the redrive grant is scoped by it.
        label: stage.name,
        itemReader: new PlanItemReader({ bucket: props.bucket, key: sfn.JsonPath.stringAt(`${plan}.key`) }),
        // The child executions carry the run's execution ARN: a failure recorded there is checked against the run's lease.
        itemSelector: {
          runId: sfn.JsonPath.stringAt('$.runId'),
          [fanOut.batchItems]: sfn.JsonPath.listAt('$$.Map.Item.Value'),
          execution: sfn.JsonPath.stringAt(RUN_EXECUTION),
        },
        maxConcurrency: settings[fanOut.maxConcurrency],
        mapExecutionType: sfn.StateMachineType.STANDARD,
        resultWriterV2: new RunResultWriter({ bucket: props.bucket, prefix: sfn.JsonPath.stringAt(`${plan}.resultsPrefix`) }),
        resultPath: sfn.JsonPath.DISCARD,
      });
      map.itemProcessor(batch);
      // The Map Run itself can fail before or after its children ran (its items or results out of reach): recorded too.
      onFailure(map, stage.name, mapFailureStates(stage.name), DISTRIBUTED_MAP_ERRORS);
      return map;
    };

    let run: sfn.Chain | undefined;
    for (const stage of STAGES) {
      const { fanOut, aws } = stage;
      const { resultSelector, mapComment } = io[stage.name];
      // Named fields, not '$': after a redrive the state also holds the error the task recovered from.
      const payload = io[stage.name].payload ?? sfn.TaskInput.fromObject({ runId: sfn.JsonPath.stringAt('$.runId'), ...itemField(fanOut) });
      const taskName = fanOut.each === 'run' ? stage.name : fanOut.task;
      let task: sfn.TaskStateBase;
      if (aws.on === 'lambda') {
        task = invoke(taskName, aws, { comment: stage.does, payload, resultSelector });
      } else {
        // Waiting RUNNABLE and running are bounded by the job queue and the job definition; TimeoutSeconds is the backstop.
        task = new BatchJobTask(
          this,
          taskName,
          {
            comment: stage.does,
            // The job reads its keys from the parameters (the payload). Its name says which item of which run and which
            // attempt of the execution it is: <prefix>-train-<family>-<md5 of the run id>-r<redrive count> (a run id
            // may hold characters a job name may not; family names are short, so it stays within Batch's 128).
            jobName: sfn.JsonPath.format(
              `${props.prefix}-${stage.name.toLowerCase()}-{}-{}-r{}`,
              sfn.JsonPath.stringAt(fanOut.each === 'run' ? '$.runId' : `$.${fanOut.item}`),
              sfn.JsonPath.hash(sfn.JsonPath.stringAt('$.runId'), 'MD5'),
              sfn.JsonPath.stringAt('$$.Execution.RedriveCount'),
            ),
            jobQueueArn: props.training.jobQueue.jobQueueArn,
            jobDefinitionArn: props.training.jobDefinition.jobDefinitionArn,
            payload,
            resultSelector,
          },
          taskTimeoutSeconds(aws, props.timeLimits),
        ).addRetry(retrier(aws.retry));
      }
      // Inside a Map the failure path is part of the iteration, so a redrive re-runs only the items that failed.
      onFailure(task, stage.name, undefined, undefined, fanOut.each !== 'run' && fanOut.mode === 'distributed' ? CHILD_EXECUTION : RUN_EXECUTION);
      const state =
        fanOut.each === 'run'
          ? task
          : fanOut.mode === 'distributed'
            ? distributedMap(stage, fanOut, task)
            : new sfn.Map(this, stage.name, {
                comment: mapComment,
                itemsPath: `$.${fanOut.items}`,
                itemSelector: itemSelector(fanOut),
                maxConcurrency: settings[fanOut.maxConcurrency],
                resultPath: sfn.JsonPath.DISCARD,
              }).itemProcessor(task);
      run = run ? run.next(state) : sfn.Chain.start(state);
    }
    if (!run) throw new Error('the stage graph has no stages');

    // ---------------------------------------------------------------- intake
    // Derives the run id `<file stem>-<md5(key#uploadId)>`: readable, and the same for every delivery of one upload.
    const deriveRunId = new sfn.Pass(this, 'Derive run id', {
      parameters: {
        'via.$': '$.via',
        'experimentKey.$': '$.experimentKey',
        'uploadId.$': '$.uploadId',
        'experimentVersion.$': '$.experimentVersion',
        'fileName.$':
          "States.ArrayGetItem(States.StringSplit($.experimentKey, '/'), States.MathAdd(States.ArrayLength(States.StringSplit($.experimentKey, '/')), -1))",
        'digest.$': "States.Hash(States.Format('{}#{}', $.experimentKey, $.uploadId), 'MD5')",
        // StringSplit splits at any of the characters it is given and drops empty parts: what is left of the key
        // once every character a file name may use (and "/") is taken out is the characters it may not.
        'otherCharacters.$': `States.ArrayLength(States.StringSplit($.experimentKey, '${EXPERIMENT_NAME_CHARACTERS}/'))`,
      },
    });
    const nameRun = new sfn.Pass(this, 'Name run', {
      parameters: {
        'via.$': '$.via',
        'experimentKey.$': '$.experimentKey',
        'uploadId.$': '$.uploadId',
        'experimentVersion.$': '$.experimentVersion',
        'digest.$': '$.digest',
        'runId.$': "States.Format('{}-{}', States.ArrayGetItem(States.StringSplit($.fileName, '.'), 0), $.digest)",
        'otherCharacters.$': '$.otherCharacters',
      },
    });
    // A file named with other characters (`exp(1).json`, a non-ASCII letter) could name an execution, but not a run
    // that Prepare and MarkFailed accept (the run id is one key segment): it is refused here, before any run starts.
    const refuseFileName = new sfn.Pass(this, 'Refuse file name', {
      parameters: {
        error: {
          Error: 'InvalidExperimentFileName',
          'Cause.$': `States.Format('${experimentNameRule('{}')}; rename the file and upload it again', $.experimentKey)`,
        },
      },
    }).next(new sfn.Fail(this, 'Invalid experiment file name', { errorPath: '$.error.Error', causePath: '$.error.Cause' }));
    const prepareInputOf = (runPath: string, extra: Record<string, string>) =>
      ({ 'runId.$': runPath, prepareInput: { 'runId.$': runPath, ...extra } }) as Record<string, unknown>;

    // Upload path: EventBridge cannot name the execution, so the intake starts the run as an execution of this
    // same machine named by the run id. Step Functions refuses a second execution with that name (for 90 days),
    // which turns a duplicate delivery into a no-op.
    const runStarted = new sfn.Succeed(this, 'Run started', { comment: 'The run continues in the execution named by its run id.' });
    const duplicate = new sfn.Succeed(this, 'Duplicate upload', {
      comment: 'Another delivery of this upload already started the run: nothing to do.',
    });
    const startFailed = new sfn.Fail(this, 'Could not start run', { errorPath: '$.error.Error', causePath: '$.error.Cause' });
    const startRun = new tasks.StepFunctionsStartExecution(this, 'Start run', {
      comment: 'Starts the run as an execution named by the run id.',
      stateMachine: sfn.StateMachine.fromStateMachineArn(this, 'Self', selfArn),
      name: sfn.JsonPath.stringAt('$.runId'),
      input: sfn.TaskInput.fromObject({
        experimentKey: sfn.JsonPath.stringAt('$.experimentKey'),
        uploadId: sfn.JsonPath.stringAt('$.uploadId'),
        // The version uploaded: the run reads exactly it, whatever is uploaded to the key later.
        experimentVersion: sfn.JsonPath.stringAt('$.experimentVersion'),
        runId: sfn.JsonPath.stringAt('$.runId'),
      }),
      associateWithParent: false,
      integrationPattern: sfn.IntegrationPattern.REQUEST_RESPONSE,
      taskTimeout: sfn.Timeout.duration(Duration.seconds(START_RUN_TIMEOUT_SECONDS)),
      resultSelector: { 'executionArn.$': '$.ExecutionArn' },
      resultPath: '$.started',
    });
    // A file name that is not a valid execution name (spaces, too long) falls back to the bare digest.
    const nameRunByDigest = new sfn.Pass(this, 'Name run by digest', {
      parameters: {
        'via.$': '$.via',
        'experimentKey.$': '$.experimentKey',
        'uploadId.$': '$.uploadId',
        'experimentVersion.$': '$.experimentVersion',
        'digest.$': '$.digest',
        'runId.$': '$.digest',
      },
    }).next(startRun);
    startRun
      .addRetry(retrier(RETRY.startRun))
      .addCatch(duplicate, { errors: ['StepFunctions.ExecutionAlreadyExistsException'], resultPath: '$.error' })
      .addCatch(nameRunByDigest, { errors: ['StepFunctions.InvalidNameException'], resultPath: '$.error' })
      .addCatch(startFailed, { errors: [sfn.Errors.ALL], resultPath: '$.error' })
      .next(runStarted);

    const consoleRunInput = new sfn.Pass(this, 'Console run input', {
      parameters: prepareInputOf('$.runId', { 'experimentKey.$': '$.experimentKey', 'uploadId.$': '$.uploadId' }),
    }).next(run);
    const uploadOrConsole = new sfn.Choice(this, 'Upload or console?')
      .when(sfn.Condition.numberGreaterThan('$.otherCharacters', 0), refuseFileName)
      .when(sfn.Condition.stringEquals('$.via', 'upload'), startRun)
      .otherwise(consoleRunInput);
    deriveRunId.next(nameRun).next(uploadOrConsole);

    const fromUpload = new sfn.Pass(this, 'From upload', {
      // The upload's id is the uploaded object's version id (see Trigger): the version the run reads.
      parameters: { via: 'upload', 'experimentKey.$': '$.key', 'uploadId.$': '$.uploadId', 'experimentVersion.$': '$.uploadId' },
    }).next(deriveRunId);
    // Console runs are not deduplicated: each start is a new run, identified by its execution name. They name no
    // version (the field is empty and never reaches Prepare): Prepare pins the version it reads.
    const fromConsole = new sfn.Pass(this, 'From console', {
      parameters: { via: 'console', 'experimentKey.$': '$.experiment', 'uploadId.$': '$$.Execution.Name', experimentVersion: '' },
    }).next(deriveRunId);
    const resumeRun = new sfn.Pass(this, 'Resume run', {
      comment: 'Re-runs an existing run id; every stage skips work whose output already exists.',
      parameters: prepareInputOf('$.runId', { 'experimentKey.$': '$.experiment' }),
    }).next(run);
    const runInput = new sfn.Pass(this, 'Run input', {
      comment: 'Already a PrepareInput with a run id (the execution the intake started).',
      parameters: { 'runId.$': '$.runId', 'prepareInput.$': '$' },
    }).next(run);
    const invalidInput = new sfn.Fail(this, 'Unrecognised input', {
      error: 'InvalidInput',
      cause:
        'Expected {"experiment": "experiments/<name>.json"} (optionally with "runId" to resume), ' +
        'an S3 upload {"bucket", "key", "uploadId"}, or {"experimentKey", "runId"} (optionally with "experimentVersion").',
    });

    const str = (path: string) => sfn.Condition.and(sfn.Condition.isPresent(path), sfn.Condition.isString(path));
    const routeInput = new sfn.Choice(this, 'Route input', { comment: 'Accepts every input shape; Prepare always gets a PrepareInput.' })
      .when(sfn.Condition.and(str('$.experimentKey'), str('$.runId')), runInput)
      .when(sfn.Condition.and(str('$.bucket'), str('$.key'), str('$.uploadId')), fromUpload)
      .when(sfn.Condition.and(str('$.experiment'), str('$.runId')), resumeRun)
      .when(str('$.experiment'), fromConsole)
      .otherwise(invalidInput);

    // Execution history at ALL level (inputs are keys only), kept as long as the other logs.
    const logGroup = new logs.LogGroup(this, 'Logs', {
      logGroupName: `/aws/vendedlogs/states/${this.stateMachineName}`,
      retention: props.logRetentionDays as logs.RetentionDays,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    this.stateMachine = new sfn.StateMachine(this, 'StateMachine', {
      stateMachineName: this.stateMachineName,
      stateMachineType: sfn.StateMachineType.STANDARD,
      comment: 'textshift run: Prepare -> Featurize (Map) -> Train (Batch) -> Report; a failure -> MarkFailed <stage>, redrivable.',
      definitionBody: sfn.DefinitionBody.fromChainable(routeInput),
      timeout: Duration.hours(props.maxRunHours),
      tracingEnabled: true,
      logs: { destination: logGroup, level: sfn.LogLevel.ALL, includeExecutionData: true },
    });

    // The Distributed Map reads the run's shard plan and writes its results under the run, nowhere else (CDK's own
    // item reader and result writer grants would cover the whole bucket). The ResultWriter actions are the ones the
    // Step Functions developer guide lists for it ("IAM policies for using Distributed Map states").
    const anyRun = runKeys('*');
    this.stateMachine.addToRolePolicy(new iam.PolicyStatement({ actions: ['s3:GetObject'], resources: [props.bucket.arnForObjects(anyRun.shardPlan)] }));
    this.stateMachine.addToRolePolicy(
      new iam.PolicyStatement({
        actions: ['s3:PutObject', 's3:GetObject', 's3:ListMultipartUploadParts', 's3:AbortMultipartUpload'],
        resources: [props.bucket.arnForObjects(`${anyRun.shardMapResultsPrefix}/*`)],
      }),
    );
    for (const pattern of [anyRun.shardPlan, `${anyRun.shardMapResultsPrefix}/*`]) {
      acknowledge(
        this.stateMachine,
        `AwsSolutions-IAM5[Resource::${nagRef(this, props.bucket.bucketArn)}/${pattern}]`,
        'The Featurize Distributed Map reads each run\'s shard plan and writes its results under that run; run ids are known only at run time.',
      );
    }

    // CDK grants the Distributed Map what it needs to run its children (StartExecution on this machine; Describe and
    // StopExecution on its executions; RedriveExecution on the children of the labelled map), by execution wildcard.
    const machineName = JSON.stringify(Stack.of(this).resolve(Arn.split(this.stateMachine.stateMachineArn, ArnFormat.COLON_RESOURCE_NAME).resourceName));
    for (const executions of [`${machineName}:*`, `${machineName}/Featurize:*`]) {
      acknowledge(
        this.stateMachine,
        `AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:states:<AWS::Region>:<AWS::AccountId>:execution:${executions}]`,
        'The Distributed Map starts, follows, stops and redrives child executions of this state machine only; their names are made at run time.',
      );
    }

    // A Batch .sync task also follows its job and terminates it when the execution is stopped or times out
    // (Step Functions developer guide, "IAM policies for AWS Batch"); BatchSubmitJob grants only SubmitJob.
    // DescribeJobs has no resource-level permissions; job ids are unknown until submitted.
    const jobs = Stack.of(this).formatArn({ service: 'batch', resource: 'job', resourceName: '*' });
    this.stateMachine.addToRolePolicy(new iam.PolicyStatement({ actions: ['batch:DescribeJobs'], resources: ['*'] }));
    this.stateMachine.addToRolePolicy(new iam.PolicyStatement({ actions: ['batch:TerminateJob'], resources: [jobs] }));
    acknowledge(
      this.stateMachine,
      'AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:batch:<AWS::Region>:<AWS::AccountId>:job/*]',
      'TerminateJob on this account\'s Batch jobs: the job ids of a run are known only once the task submits them.',
    );

    // Wildcards the CDK task integrations generate; every one is scoped as far as the service allows.
    // LambdaInvoke adds each function's versions and aliases (<arn>:*) to the grant; the definition invokes the
    // unqualified ARNs, so those go unused, but they reach no other function.
    for (const fn of Object.values(props.functions)) {
      acknowledge(
        this.stateMachine,
        `AwsSolutions-IAM5[Resource::${nagRef(this, fn.functionArn)}:*]`,
        'LambdaInvoke grants the function and its versions/aliases (<arn>:*); only these functions are invocable.',
      );
    }
    acknowledge(
      this.stateMachine,
      'AwsSolutions-IAM5[Resource::*]',
      'CloudWatch Logs delivery and X-Ray trace APIs used for execution logging and tracing, and batch:DescribeJobs ' +
        'for Batch .sync tasks, accept only "*".',
    );
    acknowledge(
      this.stateMachine,
      'AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:batch:<AWS::Region>:<AWS::AccountId>:job-definition/*]',
      'BatchSubmitJob grants SubmitJob on job definitions by wildcard because their ARNs carry a revision; ' +
        'the job queue resource in the same statement limits where a job can run.',
    );
  }
}
