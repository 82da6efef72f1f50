// Spend across runs in the stack: the caps Prepare is told, the Featurize function's reserved concurrency, the
// execution timeout that bounds a slot, the upload trigger's retry policy and dead-letter queue, and the alarms.
import { beforeAll, describe, expect, it } from 'vitest';
import { CDK_CONTEXT, SYNTH_TIMEOUT, type Synthesized, resourcesOf, stateMachineDefinition, synth } from '../../support/cdk-template.js';

type Props = Record<string, unknown>;

let mailed: Synthesized;
let plain: Synthesized;
beforeAll(() => {
  mailed = synth({ maxConcurrentRuns: 3, featurizeConcurrency: 7, maxDailyCostUsd: 300, maxRunHours: 30, alarmEmail: 'ops@example.com' });
  plain = synth();
}, 2 * SYNTH_TIMEOUT);

const one = (s: Synthesized, type: string, idPrefix: string): Props => {
  const found = resourcesOf(s.template, type).filter(([id]) => id.startsWith(idPrefix));
  if (found.length !== 1) throw new Error(`expected one ${type} named ${idPrefix}*, found ${found.length}`);
  return found[0]![1] as Props;
};
const functionNamed = (s: Synthesized, idPrefix: string) => one(s, 'AWS::Lambda::Function', idPrefix);

describe('caps across runs', () => {
  it("tell Prepare the deployment's caps across runs next to its per-run limits", () => {
    const env = (functionNamed(mailed, 'PrepareFunction').Environment as { Variables: Record<string, string> }).Variables;
    expect(JSON.parse(env.TEXTSHIFT_PLAN_DEPLOYMENT!)).toMatchObject({
      budget: { maxRunCostUsd: 25, maxRunCostCeilingUsd: 250 },
      spend: { maxConcurrentRuns: 3, maxDailyCostUsd: 300, maxRunHours: 30 },
    });
    const defaults = (functionNamed(plain, 'PrepareFunction').Environment as { Variables: Record<string, string> }).Variables;
    expect(JSON.parse(defaults.TEXTSHIFT_PLAN_DEPLOYMENT!).spend).toEqual({
      maxConcurrentRuns: CDK_CONTEXT.maxConcurrentRuns,
      maxDailyCostUsd: CDK_CONTEXT.maxDailyCostUsd,
      maxRunHours: CDK_CONTEXT.maxRunHours,
    });
  });

  it('reserve for Featurize, the function that fans out, the admitted runs times their Map concurrency, and for no other function', () => {
    expect(functionNamed(mailed, 'FeaturizeStage').ReservedConcurrentExecutions).toBe(21);
    expect(functionNamed(plain, 'FeaturizeStage').ReservedConcurrentExecutions).toBe(
      (CDK_CONTEXT.maxConcurrentRuns as number) * (CDK_CONTEXT.featurizeConcurrency as number),
    );
    for (const fn of ['PrepareFunction', 'ReportFunction', 'MarkFailedFunction']) expect(functionNamed(mailed, fn).ReservedConcurrentExecutions, fn).toBeUndefined();
  });

  it('time an execution out after maxRunHours, when a slot it never released frees itself', () => {
    expect((stateMachineDefinition(mailed.template) as { TimeoutSeconds?: number }).TimeoutSeconds).toBe(30 * 3600);
    expect((stateMachineDefinition(plain.template) as { TimeoutSeconds?: number }).TimeoutSeconds).toBe((CDK_CONTEXT.maxRunHours as number) * 3600);
  });

  it('refuse at synth a maxRunHours shorter than one task of each stage at its time limit', () => {
    expect(() => synth({ maxRunHours: 10 })).toThrow(
      /context "maxRunHours": expected at least 16 \(one task of each stage at its time limit: Prepare 0\.26 h, Featurize 0\.26 h, Train 15\.17 h, Report 0\.26 h\), got 10/,
    );
  }, SYNTH_TIMEOUT);
});

describe('upload trigger delivery', () => {
  it('retries starting a run for two hours, then keeps the upload event in a dead-letter queue', () => {
    const [target] = one(mailed, 'AWS::Events::Rule', 'TriggerExperimentUploaded').Targets as Props[];
    expect(target!.RetryPolicy).toEqual({ MaximumRetryAttempts: 20, MaximumEventAgeInSeconds: 7200 });
    expect(target!.DeadLetterConfig).toEqual({ Arn: expect.stringMatching(/^arn:TriggerUndeliveredUploads/) });
  });

  it('encrypts the dead-letter queue, keeps messages 14 days, and takes only TLS requests and the rule\'s own events', () => {
    expect(one(mailed, 'AWS::SQS::Queue', 'TriggerUndeliveredUploads')).toMatchObject({ SqsManagedSseEnabled: true, MessageRetentionPeriod: 14 * 86400 });
    const statements = (one(mailed, 'AWS::SQS::QueuePolicy', 'TriggerUndeliveredUploads').PolicyDocument as { Statement: Props[] }).Statement;
    expect(statements).toContainEqual(
      expect.objectContaining({ Effect: 'Deny', Action: 'sqs:*', Principal: { AWS: '*' }, Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
    );
    expect(statements).toContainEqual(
      expect.objectContaining({
        Effect: 'Allow',
        Action: 'sqs:SendMessage',
        Principal: { Service: 'events.amazonaws.com' },
        Condition: { ArnEquals: { 'aws:SourceArn': expect.stringMatching(/^arn:TriggerExperimentUploaded/) } },
      }),
    );
  });
});

describe('alarms', () => {
  const alarms = (s: Synthesized) => Object.fromEntries(resourcesOf(s.template, 'AWS::CloudWatch::Alarm').map(([id, p]) => [id.replace(/[0-9A-F]{8}$/, ''), p as Props]));

  it('fire on one failed or timed-out execution of the run state machine, or one undelivered upload, in five minutes', () => {
    const found = alarms(mailed);
    expect(Object.keys(found).sort()).toEqual(['AlarmsExecutionsFailed', 'AlarmsExecutionsTimedOut', 'AlarmsUploadsUndelivered']);
    const common = { Threshold: 1, EvaluationPeriods: 1, Period: 300, ComparisonOperator: 'GreaterThanOrEqualToThreshold', TreatMissingData: 'notBreaching' };
    const machine = [{ Name: 'StateMachineArn', Value: expect.stringMatching(/^ref:WorkflowStateMachine/) }];
    expect(found.AlarmsExecutionsFailed).toMatchObject({ ...common, Namespace: 'AWS/States', MetricName: 'ExecutionsFailed', Statistic: 'Sum', Dimensions: machine });
    expect(found.AlarmsExecutionsTimedOut).toMatchObject({ ...common, Namespace: 'AWS/States', MetricName: 'ExecutionsTimedOut', Statistic: 'Sum', Dimensions: machine });
    expect(found.AlarmsUploadsUndelivered).toMatchObject({
      ...common,
      Namespace: 'AWS/SQS',
      MetricName: 'ApproximateNumberOfMessagesVisible',
      Statistic: 'Maximum',
      Dimensions: [{ Name: 'QueueName', Value: expect.stringMatching(/^arn:TriggerUndeliveredUploads/) }],
    });
  });

  it('mail alarmEmail through a TLS-only topic when it is set, and notify nobody otherwise', () => {
    for (const alarm of Object.values(alarms(mailed))) expect(alarm.AlarmActions).toEqual([expect.stringMatching(/^ref:AlarmsTopic/)]);
    expect(resourcesOf(mailed.template, 'AWS::SNS::Subscription').map(([, p]) => p)).toEqual([
      expect.objectContaining({ Protocol: 'email', Endpoint: 'ops@example.com', TopicArn: expect.stringMatching(/^ref:AlarmsTopic/) }),
    ]);
    const topicPolicy = (one(mailed, 'AWS::SNS::TopicPolicy', 'AlarmsTopic').PolicyDocument as { Statement: Props[] }).Statement;
    expect(topicPolicy).toContainEqual(expect.objectContaining({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }));

    expect(Object.keys(alarms(plain))).toHaveLength(3);
    for (const alarm of Object.values(alarms(plain))) expect(alarm.AlarmActions).toBeUndefined();
    expect(resourcesOf(plain.template, 'AWS::SNS::Topic')).toEqual([]);
  });
});
