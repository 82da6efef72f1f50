/**
 * The permissions of a synthesized stack, resolved to concrete ARNs for one account, region and bucket: each role
 * that acts in a run (by the stage or service acting with it) with its identity policies, and the data bucket's
 * policy. Also the calls AWS services make with those roles that the template implies but no code of ours makes
 * (the state machine's task integrations, Lambda's and ECS's log writes, the trigger's StartExecution), derived
 * from the definition and resource properties as the services' IAM documentation lists them.
 */
import { type CfnTemplate, type Json, type ResolveContext, onlyResource, resolve, resourcesOfType } from './cfn.js';
import type { SynthesizedStack } from './deploy.js';
import type { IamRequest, Where } from './iam-requests.js';
import { runKeys } from '../../../src/run/keys.js';

/** An IAM policy document (the parts the evaluator and the grant listing read). */
export interface PolicyDocument {
  Version?: string;
  Statement: PolicyStatement[];
}

export interface PolicyStatement {
  Sid?: string;
  Effect: 'Allow' | 'Deny';
  Action?: string | string[];
  NotAction?: string | string[];
  Resource?: string | string[];
  NotResource?: string | string[];
  Principal?: unknown;
  Condition?: Record<string, Record<string, unknown>>;
}

/** A role and who acts with it. */
export interface StageRole {
  /** The stage or service acting with the role: a functions/ folder, "trainer", "state machine", ... */
  stage: string;
  roleId: string;
  /** The role session ARN requests are made as. */
  principal: string;
  policies: { name: string; policy: PolicyDocument }[];
}

/** The stack's permissions in one deployment. */
export interface DeploymentPolicies extends Where {
  bucketArn: string;
  /** The data bucket's resource policy. */
  bucketPolicy: PolicyDocument;
  /** By stage. */
  roles: Map<string, StageRole>;
}

/** The stage name of each role of the trainer's job definition. */
export const TRAINER = 'trainer';
/** ECS's agent pulling the image and shipping the container's logs with the job's execution role. */
export const TRAINER_EXECUTION = 'trainer (ECS execution role)';
export const STATE_MACHINE = 'state machine';
export const UPLOAD_TRIGGER = 'upload trigger (EventBridge rule)';

const list = <T>(v: T | T[] | undefined): T[] => (v === undefined ? [] : Array.isArray(v) ? v : [v]);

/** The logical id a `{"Fn::GetAtt": [id, "Arn"]}` names. */
function getAttId(value: Json | undefined, what: string): string {
  const att = (value as { 'Fn::GetAtt'?: [string, string] } | undefined)?.['Fn::GetAtt'];
  if (!att) throw new Error(`${what} is not a Fn::GetAtt of a role: ${JSON.stringify(value)}`);
  return att[0];
}

/** Physical values of the template's resources in this deployment, where cfn.ts's stand-ins are not what IAM sees. */
function resolveContext(template: CfnTemplate, where: Where & { bucket: string }, dataBucketId: string): ResolveContext {
  const ctx: ResolveContext = { account: where.account, region: where.region, resources: new Map() };
  ctx.resources.set(dataBucketId, { ref: where.bucket, attrs: { Arn: `arn:aws:s3:::${where.bucket}` } });
  for (const [id, group] of resourcesOfType(template, 'AWS::Logs::LogGroup')) {
    const name = String(group.Properties?.LogGroupName ?? id);
    // A log group's Arn attribute ends in ":*" (it covers the group's streams).
    ctx.resources.set(id, { ref: name, attrs: { Arn: `arn:aws:logs:${where.region}:${where.account}:log-group:${name}:*` } });
  }
  for (const [id, machine] of resourcesOfType(template, 'AWS::StepFunctions::StateMachine')) {
    const name = String(machine.Properties!.StateMachineName);
    const arn = `arn:aws:states:${where.region}:${where.account}:stateMachine:${name}`;
    ctx.resources.set(id, { ref: arn, attrs: { Arn: arn, Name: name } });
  }
  return ctx;
}

/** The identity policies attached to a role: inline ones and AWS::IAM::Policy resources; managed ones are refused. */
function rolePolicies(template: CfnTemplate, ctx: ResolveContext, roleId: string): StageRole['policies'] {
  const role = template.Resources[roleId];
  if (role?.Type !== 'AWS::IAM::Role') throw new Error(`${roleId} is not a role of the template`);
  if (role.Properties?.ManagedPolicyArns) throw new Error(`${roleId} has managed policies, whose documents are not in the template`);
  const inline = (list(role.Properties?.Policies as Json[] | undefined) as { PolicyName: string; PolicyDocument: Json }[]).map((p) => ({
    name: p.PolicyName,
    policy: resolve(template, ctx, p.PolicyDocument) as unknown as PolicyDocument,
  }));
  const attached = resourcesOfType(template, 'AWS::IAM::Policy')
    .filter(([, p]) => list(p.Properties!.Roles as Json[]).some((r) => (r as { Ref?: string }).Ref === roleId))
    .map(([id, p]) => ({ name: id, policy: resolve(template, ctx, p.Properties!.PolicyDocument!) as unknown as PolicyDocument }));
  return [...inline, ...attached];
}

/** The data bucket: the one whose notifications go to EventBridge. */
function dataBucketId(template: CfnTemplate): string {
  const found = resourcesOfType(template, 'AWS::S3::Bucket').filter(([, b]) => JSON.stringify(b.Properties?.NotificationConfiguration ?? {}).includes('EventBridgeEnabled'));
  if (found.length !== 1) throw new Error(`expected one data bucket (EventBridge notifications on), found ${found.length}`);
  return found[0]![0];
}

/** The stack's roles and bucket policy, resolved for `where` with the data bucket named `where.bucket`. */
export function deploymentPolicies(stack: SynthesizedStack, where: Where & { bucket: string }): DeploymentPolicies {
  const { template, prefix } = stack;
  const bucketId = dataBucketId(template);
  const ctx = resolveContext(template, where, bucketId);
  const roles = new Map<string, StageRole>();
  const add = (stage: string, roleId: string) => {
    roles.set(stage, { stage, roleId, principal: `arn:aws:sts::${where.account}:assumed-role/${roleId}/${stage.replace(/\W+/g, '-')}`, policies: rolePolicies(template, ctx, roleId) });
  };
  for (const [id, fn] of resourcesOfType(template, 'AWS::Lambda::Function')) {
    add(String(fn.Properties!.FunctionName).slice(prefix.length + 1), getAttId(fn.Properties!.Role, `${id}.Role`));
  }
  for (const [id, jd] of resourcesOfType(template, 'AWS::Batch::JobDefinition')) {
    const container = jd.Properties!.ContainerProperties as Record<string, Json>;
    add(TRAINER, getAttId(container.JobRoleArn, `${id} JobRoleArn`));
    add(TRAINER_EXECUTION, getAttId(container.ExecutionRoleArn, `${id} ExecutionRoleArn`));
  }
  const [, machine] = onlyResource(template, 'AWS::StepFunctions::StateMachine');
  add(STATE_MACHINE, getAttId(machine.Properties!.RoleArn, 'the state machine RoleArn'));
  const [, rule] = onlyResource(template, 'AWS::Events::Rule');
  for (const target of list(rule.Properties!.Targets as Json[]) as { RoleArn?: Json }[]) add(UPLOAD_TRIGGER, getAttId(target.RoleArn, 'the rule target RoleArn'));

  const policy = resourcesOfType(template, 'AWS::S3::BucketPolicy').find(([, p]) => (p.Properties!.Bucket as { Ref?: string }).Ref === bucketId);
  if (!policy) throw new Error('the data bucket has no bucket policy');
  return {
    ...where,
    bucketArn: `arn:aws:s3:::${where.bucket}`,
    bucketPolicy: resolve(template, ctx, policy[1].Properties!.PolicyDocument!) as unknown as PolicyDocument,
    roles,
  };
}

interface AslState {
  Type: string;
  Resource?: string;
  Parameters?: Record<string, Json>;
  Label?: string;
  ItemReader?: { Resource: string; Parameters: Record<string, Json> };
  ResultWriter?: { Resource: string; Parameters: Record<string, Json> };
  ItemProcessor?: { ProcessorConfig?: { Mode?: string }; States: Record<string, AslState> };
  Iterator?: { States: Record<string, AslState> };
  Branches?: { States: Record<string, AslState> }[];
}

/** A log stream of a group, as the writer of a stream is authorized (CreateLogStream and PutLogEvents act on streams). */
const streamArn = (where: Where, group: string, stream: string) => `arn:aws:logs:${where.region}:${where.account}:log-group:${group}:log-stream:${stream}`;

/**
 * What the state machine's role must allow for one task (Step Functions developer guide, "IAM policies for
 * integrated services": Lambda, AWS Batch .sync, Step Functions StartExecution).
 */
function taskRequests(state: string, task: AslState, where: Where): IamRequest[] {
  const p = task.Parameters ?? {};
  const req = (action: string, resource: string): IamRequest => ({ action, resource, context: {} });
  switch (task.Resource) {
    case 'arn:aws:states:::lambda:invoke':
      return [req('lambda:InvokeFunction', String(p.FunctionName))];
    case 'arn:aws:states:::batch:submitJob.sync':
      return [
        // SubmitJob is authorized on the queue and on the job definition.
        req('batch:SubmitJob', String(p.JobQueue)),
        req('batch:SubmitJob', String(p.JobDefinition)),
        // .sync follows the job (DescribeJobs) and stops it when the execution is stopped or times out (TerminateJob).
        req('batch:DescribeJobs', '*'),
        req('batch:TerminateJob', `arn:aws:batch:${where.region}:${where.account}:job/00000000-0000-4000-8000-000000000000`),
        // ... through the EventBridge rule Step Functions manages for Batch job events.
        ...['events:PutTargets', 'events:PutRule', 'events:DescribeRule'].map((a) => req(a, `arn:aws:events:${where.region}:${where.account}:rule/StepFunctionsGetEventsForBatchJobsRule`)),
      ];
    case 'arn:aws:states:::states:startExecution':
      return [req('states:StartExecution', String(p.StateMachineArn))];
    default:
      throw new Error(`task "${state}": no IAM derivation for its resource ${task.Resource} (add it to iam-policies.ts)`);
  }
}

/** A run the derived requests are made for: the bucket its objects are in and its id (its keys are from src/run/keys.ts). */
export interface RunTarget {
  bucket: string;
  runId: string;
}

/** Step Functions' S3 requests go over TLS (1.2 or newer), as the bucket policy requires. */
const S3_BY_SERVICE = { 'aws:SecureTransport': 'true', 's3:TlsVersion': '1.2' };

/**
 * What the state machine's role must allow for a Distributed Map state of `machine` in a run (Step Functions developer
 * guide, "IAM policies for using Distributed Map states"): StartExecution of its own child executions, Describe- and
 * StopExecution of the run's execution, RedriveExecution of the map's children (a redrive of the run redrives the
 * Map Run); GetObject of the items its ItemReader reads (the run's shard plan: a Key path, so the key is the run's
 * from keys.ts); and for its ResultWriter PutObject, GetObject, ListMultipartUploadParts and AbortMultipartUpload of
 * the result files under the run's results prefix.
 */
function distributedMapRequests(state: string, map: AslState, machine: { name: string; arn: string }, where: Where, run: RunTarget): IamRequest[] {
  const req = (action: string, resource: string, context: Record<string, string> = {}): IamRequest => ({ action, resource, context });
  const keys = runKeys(run.runId);
  const reader = map.ItemReader?.Parameters ?? {};
  if (reader['Key.$'] !== '$.shardPlan.key') throw new Error(`Distributed Map "${state}": its ItemReader reads ${JSON.stringify(reader)}; derive its key here`);
  const writer = map.ResultWriter?.Parameters ?? {};
  if (writer['Prefix.$'] !== '$.shardPlan.resultsPrefix') throw new Error(`Distributed Map "${state}": its ResultWriter writes ${JSON.stringify(writer)}; derive its prefix here`);
  const mapRun = '0b7a5d0e-2d1c-4b8e-9a51-5f0c2e6d7a10';
  const results = ['manifest.json', 'SUCCEEDED_0.json'].map((f) => `arn:aws:s3:::${run.bucket}/${keys.shardMapResultsPrefix}/${mapRun}/${f}`);
  const execution = `arn:aws:states:${where.region}:${where.account}:execution:${machine.name}`;
  return [
    req('states:StartExecution', machine.arn),
    req('states:DescribeExecution', `${execution}:${run.runId}`),
    req('states:StopExecution', `${execution}:${run.runId}`),
    req('states:RedriveExecution', `${execution}/${map.Label ?? mapRun}:${mapRun}`),
    req('s3:GetObject', `arn:aws:s3:::${run.bucket}/${keys.shardPlan}`, S3_BY_SERVICE),
    ...results.flatMap((r) => ['s3:PutObject', 's3:GetObject', 's3:ListMultipartUploadParts', 's3:AbortMultipartUpload'].map((a) => req(a, r, S3_BY_SERVICE))),
  ];
}

/**
 * The requests AWS services make with the stack's roles on behalf of the run, by stage, derived from the template:
 * the state machine's tasks, its execution logging and tracing, each function's log writes (made by Lambda with the
 * function's role), the trainer container's image pull and log writes (ECS with the execution role), and the
 * upload trigger starting the state machine. Requests for a run's objects (a Distributed Map's) are `run`'s.
 */
export function derivedRequests(stack: SynthesizedStack, where: Where, run: RunTarget): Map<string, IamRequest[]> {
  const { template, prefix } = stack;
  const ctx = resolveContext(template, { ...where, bucket: 'bucket' }, dataBucketId(template));
  const out = new Map<string, IamRequest[]>();
  const push = (stage: string, ...requests: IamRequest[]) => out.set(stage, [...(out.get(stage) ?? []), ...requests]);
  const req = (action: string, resource: string): IamRequest => ({ action, resource, context: {} });

  for (const [, fn] of resourcesOfType(template, 'AWS::Lambda::Function')) {
    const group = String(resolve(template, ctx, (fn.Properties!.LoggingConfig as { LogGroup: Json }).LogGroup));
    const stream = streamArn(where, group, '2026/01/01/[$LATEST]0123456789abcdef');
    push(String(fn.Properties!.FunctionName).slice(prefix.length + 1), req('logs:CreateLogStream', stream), req('logs:PutLogEvents', stream));
  }

  const [, machine] = onlyResource(template, 'AWS::StepFunctions::StateMachine');
  const definition = JSON.parse(resolve(template, ctx, machine.Properties!.DefinitionString!) as string) as { States: Record<string, AslState> };
  const machineName = String(machine.Properties!.StateMachineName);
  const self = { name: machineName, arn: `arn:aws:states:${where.region}:${where.account}:stateMachine:${machineName}` };
  const visit = (states: Record<string, AslState>) => {
    for (const [name, s] of Object.entries(states)) {
      if (s.Type === 'Task') push(STATE_MACHINE, ...taskRequests(name, s, where));
      if (s.Type === 'Map' && s.ItemProcessor?.ProcessorConfig?.Mode === 'DISTRIBUTED') push(STATE_MACHINE, ...distributedMapRequests(name, s, self, where, run));
      for (const inner of [s.ItemProcessor, s.Iterator, ...(s.Branches ?? [])]) if (inner) visit(inner.States);
    }
  };
  visit(definition.States);
  // Execution logging to CloudWatch Logs (the vended-logs delivery APIs) and X-Ray tracing accept only "*".
  if (machine.Properties!.LoggingConfiguration) {
    const delivery = ['CreateLogDelivery', 'GetLogDelivery', 'UpdateLogDelivery', 'DeleteLogDelivery', 'ListLogDeliveries', 'PutResourcePolicy', 'DescribeResourcePolicies', 'DescribeLogGroups'];
    push(STATE_MACHINE, ...delivery.map((a) => req(`logs:${a}`, '*')));
  }
  if ((machine.Properties!.TracingConfiguration as { Enabled?: boolean } | undefined)?.Enabled) {
    push(STATE_MACHINE, ...['PutTraceSegments', 'PutTelemetryRecords', 'GetSamplingRules', 'GetSamplingTargets'].map((a) => req(`xray:${a}`, '*')));
  }

  for (const [, jd] of resourcesOfType(template, 'AWS::Batch::JobDefinition')) {
    const container = resolve(template, ctx, jd.Properties!.ContainerProperties!) as { Image: string; LogConfiguration?: { LogDriver: string; Options: Record<string, string> } };
    const image = /^(\d{12})\.dkr\.ecr\.([\w-]+)\.amazonaws\.com\/([^:@]+)/.exec(container.Image);
    if (image) {
      const repository = `arn:aws:ecr:${image[2]}:${image[1]}:repository/${image[3]}`;
      push(TRAINER_EXECUTION, req('ecr:GetAuthorizationToken', '*'), ...['BatchCheckLayerAvailability', 'GetDownloadUrlForLayer', 'BatchGetImage'].map((a) => req(`ecr:${a}`, repository)));
    }
    if (container.LogConfiguration?.LogDriver === 'awslogs') {
      const o = container.LogConfiguration.Options;
      const stream = streamArn(where, o['awslogs-group']!, `${o['awslogs-stream-prefix']}/default/0123456789abcdef`);
      push(TRAINER_EXECUTION, req('logs:CreateLogStream', stream), req('logs:PutLogEvents', stream));
    }
  }

  const [, rule] = onlyResource(template, 'AWS::Events::Rule');
  for (const target of list(resolve(template, ctx, rule.Properties!.Targets!) as Json[]) as { Arn: string; RoleArn?: string }[]) {
    if (!target.RoleArn) continue;
    if (!target.Arn.includes(':states:')) throw new Error(`rule target ${target.Arn}: no IAM derivation for it (add it to iam-policies.ts)`);
    push(UPLOAD_TRIGGER, req('states:StartExecution', target.Arn));
  }
  return out;
}

