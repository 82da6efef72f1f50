/**
 * A small test deployer: synthesizes the real CDK app in-process and creates in the emulator the resources of the
 * synthesized template the free emulator can run — the data bucket with EventBridge notifications and versioning on
 * (the trigger passes the uploaded object's version id), the
 * EventBridge rule (its event pattern, target and input transformer) and the state machine (its definition as
 * synthesized). Lambda and Batch cannot run in the emulator, so the ARNs the definition names for them are
 * stand-ins (nothing answers there; the workflow tests run those tasks in-process instead).
 *
 * Not deployed, on purpose: IAM roles (the emulator does not enforce IAM, so creating them would test nothing; the
 * rule and the machine get the ARNs the roles would have), the access-log bucket, log groups and the machine's
 * logging/tracing settings (they name log groups the emulator would only store), the bucket's lifecycle rules, VPC
 * and Batch compute.
 */
import { randomBytes } from 'node:crypto';
import { PutBucketNotificationConfigurationCommand, type S3Client } from '@aws-sdk/client-s3';
import { CreateStateMachineCommand, DeleteStateMachineCommand, type SFNClient } from '@aws-sdk/client-sfn';
import { DeleteRuleCommand, type EventBridgeClient, PutRuleCommand, PutTargetsCommand, RemoveTargetsCommand, type Target } from '@aws-sdk/client-eventbridge';
import { GetCallerIdentityCommand, type STSClient } from '@aws-sdk/client-sts';
import { synth } from '../../support/cdk-template.js';
import type { TextshiftStackProps } from '../../../cdk/textshift-stack.js';
import { createTestBucket } from '../setup/aws.js';
import { type CfnTemplate, type Json, type ResolveContext, onlyResource, resolve, resourcesOfType } from './cfn.js';

/** The synthesized stack: its CloudFormation template and the resource prefix it was synthesized with. */
export interface SynthesizedStack {
  template: CfnTemplate;
  prefix: string;
}

/**
 * Synthesizes the app as `cdk synth` does (cdk-nag included) with cdk.json's context and `overrides`; the resource
 * prefix is `overrides.prefix`, else one no other test run uses (the state machine's name, hence its ARN, derives
 * from it). `workflowVariant` builds a test variant of the state machine (WorkflowProps.noOpItems).
 */
export function synthesizeStack(overrides: Record<string, unknown> = {}, workflowVariant?: TextshiftStackProps['workflowVariant']): SynthesizedStack {
  const prefix = typeof overrides.prefix === 'string' ? overrides.prefix : `it-${randomBytes(4).toString('hex')}`;
  const { template } = synth({ ...overrides, prefix }, workflowVariant ? { workflowVariant } : {});
  return { template: template.toJSON() as CfnTemplate, prefix };
}

/** The clients the deployer needs, all pointed at the same emulator. */
export interface DeployClients {
  s3: S3Client;
  sfn: SFNClient;
  events: EventBridgeClient;
  sts: STSClient;
}

/** What the deployer created, the context to resolve more of the template against, and how to remove it. */
export interface EmulatorDeployment {
  bucket: string;
  stateMachineArn: string;
  ruleName: string;
  resolveContext: ResolveContext;
  remove(): Promise<void>;
}

const BUCKET_TYPE = 'AWS::S3::Bucket';

/** The logical id of the bucket that sends EventBridge notifications: the data bucket. */
function dataBucketId(template: CfnTemplate): string {
  const found = resourcesOfType(template, BUCKET_TYPE).filter(
    ([, r]) => (r.Properties?.NotificationConfiguration as { EventBridgeConfiguration?: { EventBridgeEnabled?: boolean } } | undefined)
      ?.EventBridgeConfiguration?.EventBridgeEnabled === true,
  );
  if (found.length !== 1) throw new Error(`expected one bucket with EventBridge notifications in the template, found ${found.length}`);
  return found[0]![0];
}

/** The account the emulator (or AWS) says the credentials belong to; the self-ARN in the definition names it. */
async function accountOf(sts: STSClient): Promise<string> {
  const { Account } = await sts.send(new GetCallerIdentityCommand({}));
  if (!Account) throw new Error('sts:GetCallerIdentity returned no account');
  return Account;
}

/** The field the emulator deployment adds to what the rule passes to the state machine (see withEventIdForLocalStack). */
export const EMULATOR_EVENT_ID_FIELD = 'id';

/**
 * LocalStack 4.14 names the execution an EventBridge rule starts after the `id` field of the (transformed) input
 * (`StatesTargetSender`: `name=event["id"]`), so with an input transformer that drops it, delivery fails with
 * "Failed to deliver to target Target0: 'id'". AWS generates the name instead. In the emulator only, the input
 * template therefore also carries the event's id; the state machine ignores the extra field (its intake reads
 * bucket, key and uploadId), and the trigger test expects it only when the target is LocalStack.
 */
function withEventIdForLocalStack(target: Target): Target {
  const t = target.InputTransformer;
  if (!t?.InputTemplate?.startsWith('{') || t.InputPathsMap?.['event-id']) return target;
  return {
    ...target,
    InputTransformer: {
      InputPathsMap: { ...t.InputPathsMap, 'event-id': '$.id' },
      InputTemplate: `{"${EMULATOR_EVENT_ID_FIELD}":<event-id>,${t.InputTemplate.slice(1)}`,
    },
  };
}

/** Creates the bucket, the state machine and the trigger rule of `stack` in the emulator. */
export async function deployToEmulator(stack: SynthesizedStack, clients: DeployClients): Promise<EmulatorDeployment> {
  const { template, prefix } = stack;
  const region = await clients.sfn.config.region();
  const ctx: ResolveContext = { account: await accountOf(clients.sts), region, resources: new Map() };
  for (const [id] of resourcesOfType(template, 'AWS::IAM::Role')) {
    const roleName = `${prefix}-${id}`.slice(0, 64);
    ctx.resources.set(id, { ref: roleName, attrs: { Arn: `arn:aws:iam::${ctx.account}:role/${roleName}` } });
  }
  const cleanups: (() => Promise<unknown>)[] = [];
  const remove = async () => {
    for (const undo of cleanups.reverse()) await undo();
  };

  try {
    // Bucket: a fresh name (the template leaves naming to CloudFormation), EventBridge notifications on, versioned
    // as the template says.
    const bucketId = dataBucketId(template);
    const versioning = template.Resources[bucketId]!.Properties?.VersioningConfiguration as { Status?: string } | undefined;
    const { bucket, remove: removeBucket } = await createTestBucket(clients.s3, { versioned: versioning?.Status === 'Enabled' });
    cleanups.push(removeBucket);
    await clients.s3.send(new PutBucketNotificationConfigurationCommand({ Bucket: bucket, NotificationConfiguration: { EventBridgeConfiguration: {} } }));
    ctx.resources.set(bucketId, { ref: bucket, attrs: { Arn: `arn:aws:s3:::${bucket}` } });

    // State machine: the synthesized definition, references resolved (Lambda and Batch ARNs are stand-ins).
    const [machineId, machine] = onlyResource(template, 'AWS::StepFunctions::StateMachine');
    const props = machine.Properties!;
    const name = String(props.StateMachineName);
    const definition = resolve(template, ctx, props.DefinitionString!) as string;
    const created = await clients.sfn.send(
      new CreateStateMachineCommand({
        name,
        definition,
        roleArn: resolve(template, ctx, props.RoleArn!) as string,
        type: (props.StateMachineType as 'STANDARD' | undefined) ?? 'STANDARD',
      }),
    );
    const stateMachineArn = created.stateMachineArn!;
    cleanups.push(() => clients.sfn.send(new DeleteStateMachineCommand({ stateMachineArn })));
    ctx.resources.set(machineId, { ref: stateMachineArn, attrs: { Arn: stateMachineArn, Name: name } });

    // Trigger: the rule's event pattern and targets (input transformer included) as synthesized.
    const [ruleId, rule] = onlyResource(template, 'AWS::Events::Rule');
    const ruleProps = resolve(template, ctx, rule.Properties as Json) as Record<string, Json>;
    const ruleName = `${prefix}-${ruleId}`.slice(0, 64);
    await clients.events.send(
      new PutRuleCommand({
        Name: ruleName,
        Description: ruleProps.Description as string,
        EventPattern: JSON.stringify(ruleProps.EventPattern),
        State: (ruleProps.State as 'ENABLED' | undefined) ?? 'ENABLED',
      }),
    );
    cleanups.push(() => clients.events.send(new DeleteRuleCommand({ Name: ruleName })));
    const targets = (ruleProps.Targets as unknown as Target[]).map(withEventIdForLocalStack);
    await clients.events.send(new PutTargetsCommand({ Rule: ruleName, Targets: targets }));
    cleanups.push(() => clients.events.send(new RemoveTargetsCommand({ Rule: ruleName, Ids: targets.map((t) => t.Id!) })));

    return { bucket, stateMachineArn, ruleName, resolveContext: ctx, remove };
  } catch (err) {
    await remove();
    throw err;
  }
}
