import { ArnFormat, Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import type * as batch from 'aws-cdk-lib/aws-batch';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import * as tasks from 'aws-cdk-lib/aws-stepfunctions-tasks';
import { acknowledge, nagRef } from '../nag.js';
import { Construct } from 'constructs';

export interface WorkflowProps {
  prefix: string;
  functions: {
    prepare: lambda.IFunction;
    featurize: lambda.IFunction;
    report: lambda.IFunction;
    markFailed: lambda.IFunction;
  };
  training: { jobQueue: batch.IJobQueue; jobDefinition: batch.IJobDefinition };
  featurizeConcurrency: number;
  logRetentionDays: number;
}

/** Transient Lambda service errors (not errors thrown by our code): safe to retry. */
export const LAMBDA_TRANSIENT_ERRORS = [
  'Lambda.ServiceException',
  'Lambda.AWSLambdaException',
  'Lambda.SdkClientException',
  'Lambda.TooManyRequestsException',
  'Lambda.ClientExecutionTimeoutException',
];
/** Transient Batch API errors while submitting or polling a job (a failed job is States.TaskFailed). */
export const BATCH_TRANSIENT_ERRORS = ['Batch.ServerException', 'Batch.AWSBatchException'];
/** Transient Step Functions API errors when the intake starts the named run. */
export const SFN_TRANSIENT_ERRORS = ['StepFunctions.SdkClientException', 'StepFunctions.AWSStepFunctionsException'];

/** Exponential backoff with full jitter, so a burst of throttled shards does not retry in lockstep. */
function transientRetry(errors: string[]): sfn.RetryProps {
  return {
    errors,
    interval: Duration.seconds(2),
    backoffRate: 2,
    maxAttempts: 6,
    maxDelay: Duration.seconds(60),
    jitterStrategy: sfn.JitterType.FULL,
  };
}

/**
 * The run as a Step Functions Standard state machine (JSONPath):
 *
 *   intake: normalise the input shape, derive the run id, and (for uploads) start the run as an execution
 *           named by the run id, so a duplicate delivery of the same upload cannot start a second run
 *   run:    Prepare -> Featurize (Map over shard keys) -> Train (Map over feature families, Batch .sync) -> Report
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
    // The machine starts named executions of itself; a constructed ARN avoids a self-reference cycle.
    const selfArn = Stack.of(this).formatArn({
      service: 'states',
      resource: 'stateMachine',
      resourceName: this.stateMachineName,
      arnFormat: ArnFormat.COLON_RESOURCE_NAME,
    });
    const { functions: fns } = props;

    // ---------------------------------------------------------------- failure path
    /**
     * Catches every error of `task` (after its retries) into "<stage> failed", which saves the stage name and the
     * redrive count, then "MarkFailed <stage>", which records the failure and fails the execution; when a redrive
     * re-enters it, it returns and `task` runs again with the input it had.
     */
    const onFailure = (task: sfn.TaskStateBase, stage: string) => {
      const markFailed = new tasks.LambdaInvoke(this, `MarkFailed ${stage}`, {
        comment: `Records the ${stage} failure in the run manifest and fails the execution here; on a redrive, retries ${stage}.`,
        lambdaFunction: fns.markFailed,
        payload: sfn.TaskInput.fromObject({
          runId: sfn.JsonPath.stringAt('$.runId'),
          stage: sfn.JsonPath.stringAt('$.failure.stage'),
          error: sfn.JsonPath.objectAt('$.error'),
          failedAtRedrive: sfn.JsonPath.numberAt('$.failure.redriveCount'),
          redriveCount: sfn.JsonPath.numberAt('$$.Execution.RedriveCount'),
        }),
        resultPath: sfn.JsonPath.DISCARD,
        retryOnServiceExceptions: false,
      }).addRetry(transientRetry(LAMBDA_TRANSIENT_ERRORS));
      markFailed.next(task);
      const failed = new sfn.Pass(this, `${stage} failed`, {
        parameters: { stage, 'redriveCount.$': '$$.Execution.RedriveCount' },
        resultPath: '$.failure',
      }).next(markFailed);
      task.addCatch(failed, { errors: [sfn.Errors.ALL], resultPath: '$.error' });
    };

    // ---------------------------------------------------------------- run stages
    const prepare = new tasks.LambdaInvoke(this, 'Prepare', {
      comment: 'Validates config and data, splits (seeded), fits the BoW vocabulary, plans shards.',
      lambdaFunction: fns.prepare,
      payload: sfn.TaskInput.fromJsonPathAt('$.prepareInput'),
      resultSelector: {
        'runId.$': '$.Payload.runId',
        'shardKeys.$': '$.Payload.shardKeys',
        'features.$': '$.Payload.features',
      },
      retryOnServiceExceptions: false,
    }).addRetry(transientRetry(LAMBDA_TRANSIENT_ERRORS));
    onFailure(prepare, 'Prepare');

    const featurizeShard = new tasks.LambdaInvoke(this, 'Featurize shard', {
      comment: 'One shard: BoW vectors or sentence embeddings into cache/ (skipped when already cached).',
      lambdaFunction: fns.featurize,
      // Named fields, not '$': a retried shard's state also holds the error it recovered from.
      payload: sfn.TaskInput.fromObject({ runId: sfn.JsonPath.stringAt('$.runId'), shardKey: sfn.JsonPath.stringAt('$.shardKey') }),
      resultSelector: { 'cached.$': '$.Payload.cached' },
      retryOnServiceExceptions: false,
    })
      .addRetry(transientRetry(LAMBDA_TRANSIENT_ERRORS))
      // A shard is idempotent (content-addressed output), so any other error gets two more tries too.
      .addRetry({
        errors: [sfn.Errors.ALL],
        interval: Duration.seconds(5),
        backoffRate: 2,
        maxAttempts: 2,
        jitterStrategy: sfn.JitterType.FULL,
      });
    // Inside the iteration, so a redrive of the failed Map re-runs only the shards that failed.
    onFailure(featurizeShard, 'Featurize');
    const featurize = new sfn.Map(this, 'Featurize', {
      comment: 'Fans out over the planned shards; results stay in S3, so the Map output is discarded.',
      itemsPath: '$.shardKeys',
      itemSelector: { runId: sfn.JsonPath.stringAt('$.runId'), shardKey: sfn.JsonPath.stringAt('$$.Map.Item.Value') },
      maxConcurrency: props.featurizeConcurrency,
      resultPath: sfn.JsonPath.DISCARD,
    })
      .itemProcessor(featurizeShard);

    const trainFeature = new tasks.BatchSubmitJob(this, 'Train feature family', {
      comment: 'Stage 1 on dataset A, fine-tune on B, evaluate; the job reads its keys from the parameters.',
      jobName: sfn.JsonPath.format(`${props.prefix}-train-{}`, sfn.JsonPath.stringAt('$.feature')),
      jobQueueArn: props.training.jobQueue.jobQueueArn,
      jobDefinitionArn: props.training.jobDefinition.jobDefinitionArn,
      payload: sfn.TaskInput.fromObject({
        runId: sfn.JsonPath.stringAt('$.runId'),
        feature: sfn.JsonPath.stringAt('$.feature'),
      }),
      resultSelector: { 'jobId.$': '$.JobId', 'status.$': '$.Status' },
    }).addRetry(transientRetry(BATCH_TRANSIENT_ERRORS));
    onFailure(trainFeature, 'Train');
    const train = new sfn.Map(this, 'Train', {
      comment: 'One Batch job per feature family, in parallel.',
      itemsPath: '$.features',
      itemSelector: { runId: sfn.JsonPath.stringAt('$.runId'), feature: sfn.JsonPath.stringAt('$$.Map.Item.Value') },
      resultPath: sfn.JsonPath.DISCARD,
    })
      .itemProcessor(trainFeature);

    const report = new tasks.LambdaInvoke(this, 'Report', {
      comment: 'Results table, plots, HTML report, cost report and checkpoints.zip.',
      lambdaFunction: fns.report,
      // The execution ARN lets the cost report read this execution's billed usage.
      payload: sfn.TaskInput.fromObject({ runId: sfn.JsonPath.stringAt('$.runId'), executionArn: sfn.JsonPath.stringAt('$$.Execution.Id') }),
      resultSelector: {
        'runId.$': '$.Payload.runId',
        'resultsKey.$': '$.Payload.resultsKey',
        'reportKey.$': '$.Payload.reportKey',
        'costKey.$': '$.Payload.costKey',
        'archiveKey.$': '$.Payload.archiveKey',
      },
      retryOnServiceExceptions: false,
    }).addRetry(transientRetry(LAMBDA_TRANSIENT_ERRORS));
    onFailure(report, 'Report');

    const run = prepare.next(featurize).next(train).next(report);

    // ---------------------------------------------------------------- intake
    // Derives the run id `<file stem>-<md5(key#uploadId)>`: readable, and the same for every delivery of one upload.
    const deriveRunId = new sfn.Pass(this, 'Derive run id', {
      parameters: {
        'via.$': '$.via',
        'experimentKey.$': '$.experimentKey',
        'uploadId.$': '$.uploadId',
        'fileName.$':
          "States.ArrayGetItem(States.StringSplit($.experimentKey, '/'), States.MathAdd(States.ArrayLength(States.StringSplit($.experimentKey, '/')), -1))",
        'digest.$': "States.Hash(States.Format('{}#{}', $.experimentKey, $.uploadId), 'MD5')",
      },
    });
    const nameRun = new sfn.Pass(this, 'Name run', {
      parameters: {
        'via.$': '$.via',
        'experimentKey.$': '$.experimentKey',
        'uploadId.$': '$.uploadId',
        'digest.$': '$.digest',
        'runId.$': "States.Format('{}-{}', States.ArrayGetItem(States.StringSplit($.fileName, '.'), 0), $.digest)",
      },
    });
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
        runId: sfn.JsonPath.stringAt('$.runId'),
      }),
      associateWithParent: false,
      integrationPattern: sfn.IntegrationPattern.REQUEST_RESPONSE,
      resultSelector: { 'executionArn.$': '$.ExecutionArn' },
      resultPath: '$.started',
    });
    // A file name that is not a valid execution name (spaces, too long) falls back to the bare digest.
    const nameRunByDigest = new sfn.Pass(this, 'Name run by digest', {
      parameters: {
        'via.$': '$.via',
        'experimentKey.$': '$.experimentKey',
        'uploadId.$': '$.uploadId',
        'digest.$': '$.digest',
        'runId.$': '$.digest',
      },
    }).next(startRun);
    startRun
      .addRetry(transientRetry(SFN_TRANSIENT_ERRORS))
      .addCatch(duplicate, { errors: ['StepFunctions.ExecutionAlreadyExistsException'], resultPath: '$.error' })
      .addCatch(nameRunByDigest, { errors: ['StepFunctions.InvalidNameException'], resultPath: '$.error' })
      .addCatch(startFailed, { errors: [sfn.Errors.ALL], resultPath: '$.error' })
      .next(runStarted);

    const consoleRunInput = new sfn.Pass(this, 'Console run input', {
      parameters: prepareInputOf('$.runId', { 'experimentKey.$': '$.experimentKey', 'uploadId.$': '$.uploadId' }),
    }).next(run);
    const uploadOrConsole = new sfn.Choice(this, 'Upload or console?')
      .when(sfn.Condition.stringEquals('$.via', 'upload'), startRun)
      .otherwise(consoleRunInput);
    deriveRunId.next(nameRun).next(uploadOrConsole);

    const fromUpload = new sfn.Pass(this, 'From upload', {
      parameters: { via: 'upload', 'experimentKey.$': '$.key', 'uploadId.$': '$.uploadId' },
    }).next(deriveRunId);
    // Console runs are not deduplicated: each start is a new run, identified by its execution name.
    const fromConsole = new sfn.Pass(this, 'From console', {
      parameters: { via: 'console', 'experimentKey.$': '$.experiment', 'uploadId.$': '$$.Execution.Name' },
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
        'an S3 upload {"bucket", "key", "uploadId"}, or {"experimentKey", "runId"}.',
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
      tracingEnabled: true,
      logs: { destination: logGroup, level: sfn.LogLevel.ALL, includeExecutionData: true },
    });

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
    for (const fn of Object.values(fns)) {
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
