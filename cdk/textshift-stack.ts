import { ArnFormat, CfnOutput, Stack, type StackProps } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import type { Construct } from 'constructs';
import { grantPrefixes } from './constructs/bucket-access.js';
import { Featurize } from './constructs/featurize.js';
import { StageFunction } from './constructs/stage-function.js';
import { Storage } from './constructs/storage.js';
import { Training } from './constructs/training.js';
import { Trigger } from './constructs/trigger.js';
import { RunAlarms } from './constructs/alarms.js';
import { Workflow, type WorkflowProps } from './constructs/workflow.js';
import { acknowledge } from './nag.js';
import { costOptionsOf, deployedPlanDeploymentOf, trainerInstanceTypes, type DeployConfig, type FunctionName } from '#src/config/deployment.js';
import { DEPLOYMENT_ENV } from '#src/config/deployment-env.js';
import { PREFIXES, SPEND_LEDGER_KEY, runKeys, shardResultKey } from '#src/run/keys.js';

// IAM key patterns, from the same layout the code writes (src/run/keys.ts).
const anyRun = runKeys('*');
const all = (prefix: string) => `${prefix}*`;

export interface TextshiftStackProps extends StackProps {
  config: DeployConfig;
  /** A test variant of the state machine (WorkflowProps.noOpItems); never set by the app. */
  workflowVariant?: Pick<WorkflowProps, 'noOpItems'>;
}

/**
 * The whole deployment, top to bottom as the architecture reads:
 * storage -> stage functions (+ their bucket grants) -> GPU trainer -> workflow -> upload trigger.
 */
export class TextshiftStack extends Stack {
  constructor(scope: Construct, id: string, props: TextshiftStackProps) {
    super(scope, id, props);
    const { config } = props;
    const name = (fn: string) => `${config.prefix}-${fn}`;
    // Known names (not references): the Report function is told all of them, its own included.
    const functionNames: Record<FunctionName, string> = { prepare: name('prepare'), featurize: name('featurize'), report: name('report'), markFailed: name('mark-failed') };
    const common = { logRetentionDays: config.logRetentionDays };

    // Storage: experiments/, datasets/, models/, runs/ and cache/ in one bucket, the same layout as a local folder.
    const storage = new Storage(this, 'Storage', { cacheExpiryDays: config.cacheExpiryDays });
    const bucket = storage.bucket;

    // Prepare: validates the experiment and its data, writes the seeded splits and the shard plan of the run.
    const prepare = new StageFunction(this, 'Prepare', {
      ...common,
      folder: 'prepare',
      functionName: functionNames.prepare,
      description: 'textshift prepare: validate, split, fit vocabulary, plan shards',
      bucket,
      ...config.functions.prepare,
      architecture: lambda.Architecture.ARM_64,
    });
    // It reads the experiment and dataset versions the run pinned (the upload's, or those it first read); split files
    // are streamed (a multipart upload once a part exceeds 5 MiB, aborted if Prepare fails). models/: it pins the
    // BERT-family model folders the run uses (HEAD each file; without versions, its sha256), and the cost guard reads
    // their textshift-model.json. It admits the run in the spend ledger (a conditional read-modify-write of that one
    // object).
    grantPrefixes(prepare.role, bucket, {
      read: [all(PREFIXES.experiments), all(PREFIXES.datasets), all(PREFIXES.models), all(PREFIXES.runs), SPEND_LEDGER_KEY],
      write: [all(PREFIXES.runs), SPEND_LEDGER_KEY],
      versions: [all(PREFIXES.experiments), all(PREFIXES.datasets)],
      streamed: [anyRun.split('*', '*')],
    });

    // Featurize: one shard per invocation into the content-addressed cache (zip with a trimmed onnxruntime); it
    // records each shard's result next to the shard task under runs/<id>/featurized/. It reads its texts from the
    // run's splits, never datasets/; models/ only for BERT-family features (their ONNX model folders), at the versions
    // the run pinned.
    // Its reserved concurrency bounds the deployment's featurize Lambdas at once, whatever the ledger says (a resumed
    // run, a slot freed early): the admitted runs at their Distributed Maps' MaxConcurrency, and no more.
    const featurize = new Featurize(this, 'Featurize', {
      ...common,
      functionName: functionNames.featurize,
      bucket,
      ...config.functions.featurize,
      reservedConcurrency: config.maxConcurrentRuns * config.featurizeConcurrency,
    });
    grantPrefixes(featurize.stage.role, bucket, {
      read: [all(PREFIXES.runs), all(PREFIXES.models), all(PREFIXES.cache)],
      write: [all(PREFIXES.cache), shardResultKey(all(anyRun.shardsPrefix))],
      versions: [all(PREFIXES.models)],
    });

    // Report: results table, plots, HTML, cost report and the checkpoint archive, all under the run.
    const report = new StageFunction(this, 'Report', {
      ...common,
      folder: 'report',
      functionName: functionNames.report,
      description: 'textshift report: results, plots, cost report, checkpoints.zip',
      bucket,
      ...config.functions.report,
      architecture: lambda.Architecture.ARM_64,
    });
    // checkpoints.zip is streamed (a multipart upload once it exceeds one part, aborted if it fails). The run's slot in the
    // spend ledger is released when it succeeds.
    grantPrefixes(report.role, bucket, {
      read: [all(PREFIXES.runs), SPEND_LEDGER_KEY],
      write: [all(PREFIXES.runs), SPEND_LEDGER_KEY],
      streamed: [anyRun.checkpointsZip],
    });

    // MarkFailed: records the failed stage in the run's manifest, writes the failed run's report page (why it failed)
    // and releases the run's slot in the spend ledger; it touches nothing else.
    const markFailed = new StageFunction(this, 'MarkFailed', {
      ...common,
      folder: 'mark-failed',
      functionName: functionNames.markFailed,
      description: 'textshift mark-failed: record the failed stage and cause in the manifest',
      bucket,
      ...config.functions.markFailed,
      architecture: lambda.Architecture.ARM_64,
    });
    // The run's lease: MarkFailed records a failure only for the execution holding the run, then releases it (a
    // redrive takes it back), and frees the run's slot in the spend ledger.
    grantPrefixes(markFailed.role, bucket, {
      read: [anyRun.manifest, anyRun.lock, SPEND_LEDGER_KEY],
      write: [anyRun.manifest, anyRun.lock, anyRun.report('report.html'), SPEND_LEDGER_KEY],
    });

    // The cost report prices the run on this deployment's instance type, market and Lambda memory sizes (the same
    // options a local run's estimate reads from cdk.json).
    report.fn.addEnvironment(DEPLOYMENT_ENV.costOptions, JSON.stringify(costOptionsOf(config)));
    // Prepare's cost guard plans each run at the same prices and refuses one over its limit before any compute, or over
    // the deployment's caps across runs (which a local run does not apply).
    prepare.fn.addEnvironment(DEPLOYMENT_ENV.planDeployment, JSON.stringify(deployedPlanDeploymentOf(config)));

    // Training: AWS Batch on GPU (or CPU) instances scaling from zero; one job per feature family.
    const training = new Training(this, 'Training', {
      ...common,
      prefix: config.prefix,
      bucket,
      compute: config.trainerCompute,
      instanceTypes: trainerInstanceTypes(config),
      spot: config.trainerSpot,
      maxVcpus: config.trainerMaxVcpus,
      vcpus: config.trainerVcpus,
      memoryMiB: config.trainerMemoryMiB,
      timeoutMinutes: config.trainerTimeoutMinutes,
      runnableTimeoutMinutes: config.trainerRunnableTimeoutMinutes,
      vpcId: config.vpcId,
      image: config.trainerImage,
      baseImageDigests: { node: config.trainerNodeImageDigest, cuda: config.trainerCudaImageDigest },
    });

    // Workflow: the state machine that runs the stages in order and records failures.
    const workflow = new Workflow(this, 'Workflow', {
      ...common,
      prefix: config.prefix,
      bucket,
      functions: { prepare: prepare.fn, featurize: featurize.stage.fn, report: report.fn, markFailed: markFailed.fn },
      training: { jobQueue: training.jobQueue, jobDefinition: training.jobDefinition },
      featurizeConcurrency: config.featurizeConcurrency,
      trainConcurrency: config.trainConcurrency,
      timeLimits: config,
      maxRunHours: config.maxRunHours,
      ...props.workflowVariant,
    });

    // Billed usage for the cost report: Report reads its own execution's history, the Batch jobs the run ran and
    // the REPORT lines (billed duration, memory) in the stage functions' log groups.
    report.fn.addEnvironment(DEPLOYMENT_ENV.stageFunctions, JSON.stringify(functionNames));
    // LogGroup.grant names each group by both of its ARN forms (`log-group:<name>` and `log-group:<name>:*`): the
    // authorization reference gives the first for FilterLogEvents, but it has been seen to need the second.
    for (const f of [prepare, featurize.stage, report, markFailed]) f.logGroup.grant(report.role, 'logs:FilterLogEvents');
    // Executions of this machine only; a constructed ARN (not a reference) avoids a role -> machine -> function cycle.
    const executions = this.formatArn({
      service: 'states',
      resource: 'execution',
      resourceName: `${workflow.stateMachineName}:*`,
      arnFormat: ArnFormat.COLON_RESOURCE_NAME,
    });
    report.role.addToPrincipalPolicy(new iam.PolicyStatement({ actions: ['states:GetExecutionHistory'], resources: [executions] }));
    report.role.addToPrincipalPolicy(new iam.PolicyStatement({ actions: ['batch:DescribeJobs'], resources: ['*'] }));
    acknowledge(
      report.role,
      `AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:states:<AWS::Region>:<AWS::AccountId>:execution:${workflow.stateMachineName}:*]`,
      'GetExecutionHistory on the executions of this state machine only; execution names are run ids, unknown at deploy time.',
    );
    acknowledge(
      report.role,
      'AwsSolutions-IAM5[Resource::*]',
      'batch:DescribeJobs supports no resource-level permissions (the Batch service authorization reference lists no resource ' +
        'type for it); it only reads job descriptions, which the cost report needs for the training jobs\' start and stop times.',
    );

    // Trigger: uploading experiments/<name>.json starts a run.
    const trigger = new Trigger(this, 'Trigger', { bucket, stateMachine: workflow.stateMachine });

    // Alarms: failed or timed-out executions, and uploads that could not start a run; mailed when alarmEmail is set.
    new RunAlarms(this, 'Alarms', { stateMachine: workflow.stateMachine, deadLetters: trigger.deadLetters, email: config.alarmEmail });

    new CfnOutput(this, 'BucketName', { value: bucket.bucketName, description: 'Upload datasets/, models/ and experiments/ here' });
    new CfnOutput(this, 'StateMachineArn', { value: workflow.stateMachine.stateMachineArn, description: 'Start console runs here' });
    new CfnOutput(this, 'TrainerJobQueue', { value: training.jobQueue.jobQueueName });
  }
}
