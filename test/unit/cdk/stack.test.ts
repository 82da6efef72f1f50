import { App } from 'aws-cdk-lib';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { beforeAll, describe, expect, it } from 'vitest';
import { addTextshiftStack } from '../../../cdk/textshift-app.js';
import { CDK_CONTEXT, SYNTH_TIMEOUT, type Synthesized, resourcesOf, synth } from '../../support/cdk-template.js';

let synthesized: Synthesized;
beforeAll(() => {
  synthesized = synth({ cacheExpiryDays: 9 });
}, SYNTH_TIMEOUT);

const DATA = 'StorageData';
const resource = (type: string, idPrefix: string) => {
  const found = resourcesOf(synthesized.template, type).filter(([id]) => id.startsWith(idPrefix));
  if (found.length !== 1) throw new Error(`expected one ${type} named ${idPrefix}*, found ${found.length}`);
  return found[0]![1];
};

describe('storage', () => {
  it('encrypts, blocks public access, versions and logs the data bucket', () => {
    const bucket = resource('AWS::S3::Bucket', DATA);
    expect(bucket.BucketEncryption).toEqual({
      ServerSideEncryptionConfiguration: [{ ServerSideEncryptionByDefault: { SSEAlgorithm: 'AES256' } }],
    });
    expect(bucket.PublicAccessBlockConfiguration).toEqual({
      BlockPublicAcls: true,
      BlockPublicPolicy: true,
      IgnorePublicAcls: true,
      RestrictPublicBuckets: true,
    });
    expect(bucket.VersioningConfiguration).toEqual({ Status: 'Enabled' });
    expect(bucket.LoggingConfiguration).toEqual({
      DestinationBucketName: expect.stringMatching(/^ref:StorageAccessLogs/),
      LogFilePrefix: 'data/',
    });
  });

  it('sends object events to EventBridge on the bucket itself (no custom-resource Lambda)', () => {
    expect(resource('AWS::S3::Bucket', DATA).NotificationConfiguration).toEqual({
      EventBridgeConfiguration: { EventBridgeEnabled: true },
    });
    expect(Object.keys(synthesized.template.findResources('Custom::S3BucketNotifications'))).toEqual([]);
  });

  it('expires cache/ after the configured number of days and old versions after 30', () => {
    const rules = (resource('AWS::S3::Bucket', DATA).LifecycleConfiguration as { Rules: unknown[] }).Rules;
    expect(rules).toContainEqual({
      Id: 'expire-feature-cache',
      Prefix: 'cache/',
      ExpirationInDays: 9,
      NoncurrentVersionExpiration: { NoncurrentDays: 1 },
      Status: 'Enabled',
    });
    expect(rules).toContainEqual(expect.objectContaining({ NoncurrentVersionExpiration: { NoncurrentDays: 30 } }));
  });

  it('denies every request without TLS (1.2+) on both buckets', () => {
    for (const prefix of [DATA, 'StorageAccessLogs']) {
      const statements = (resource('AWS::S3::BucketPolicy', `${prefix}Policy`).PolicyDocument as { Statement: unknown[] })
        .Statement;
      expect(statements, prefix).toContainEqual(
        expect.objectContaining({
          Effect: 'Deny',
          Action: 's3:*',
          Principal: { AWS: '*' },
          Condition: { Bool: { 'aws:SecureTransport': 'false' } },
        }),
      );
      expect(statements, prefix).toContainEqual(
        expect.objectContaining({ Effect: 'Deny', Condition: { NumericLessThan: { 's3:TlsVersion': 1.2 } } }),
      );
    }
  });

  it('keeps both buckets when the stack is deleted', () => {
    for (const [id, r] of Object.entries(synthesized.template.findResources('AWS::S3::Bucket'))) {
      expect(r.DeletionPolicy, id).toBe('Retain');
    }
  });
});

describe('trigger', () => {
  it('matches Object Created events of this bucket for experiments/*.json only', () => {
    const rule = resource('AWS::Events::Rule', 'TriggerExperimentUploaded');
    expect(rule.EventPattern).toEqual({
      source: ['aws.s3'],
      'detail-type': ['Object Created'],
      detail: {
        bucket: { name: [expect.stringMatching(/^ref:StorageData/)] },
        object: { key: [{ wildcard: 'experiments/*.json' }] },
      },
    });
  });

  it('starts the state machine with {bucket, key, uploadId} taken from the event, the upload id being the version id', () => {
    const [target] = resource('AWS::Events::Rule', 'TriggerExperimentUploaded').Targets as Record<string, unknown>[];
    expect(target!.Arn).toMatch(/^ref:WorkflowStateMachine/);
    expect(target!.InputTransformer).toEqual({
      InputPathsMap: {
        'detail-bucket-name': '$.detail.bucket.name',
        'detail-object-key': '$.detail.object.key',
        'detail-object-version-id': '$.detail.object.version-id',
      },
      InputTemplate: '{"bucket":<detail-bucket-name>,"key":<detail-object-key>,"uploadId":<detail-object-version-id>}',
    });
  });
});

// ---------------------------------------------------------------------------------------------------------------
interface Statement {
  Effect: string;
  Action: string | string[];
  Resource: string | string[];
}
const list = (v: string | string[]) => (Array.isArray(v) ? v : [v]);
const statementsOf = (policyIdPrefix: string): Statement[] =>
  (resource('AWS::IAM::Policy', policyIdPrefix).PolicyDocument as unknown as { Statement: Statement[] }).Statement;
/** Object key patterns an S3 action is allowed on, e.g. {"s3:GetObject": ["runs/*"]}. */
function s3Access(policyIdPrefix: string): Record<string, string[]> {
  const access: Record<string, string[]> = {};
  for (const s of statementsOf(policyIdPrefix)) {
    for (const action of list(s.Action).filter((a) => a.startsWith('s3:'))) {
      const keys = list(s.Resource).map((r) => (r.includes('/') ? r.slice(r.indexOf('/') + 1) : '(bucket)'));
      access[action] = [...(access[action] ?? []), ...keys].sort();
    }
  }
  return access;
}
/**
 * The S3 access of a role that reads `read`, writes `write`, aborts failed multipart uploads of `streamed` and reads
 * pinned versions of `versions`.
 */
const rw = (read: string[], write: string[], streamed: string[] = [], versions: string[] = []) => ({
  's3:ListBucket': ['(bucket)'],
  's3:GetObject': [...read].sort(),
  's3:PutObject': [...write].sort(),
  ...(streamed.length > 0 ? { 's3:AbortMultipartUpload': [...streamed].sort() } : {}),
  ...(versions.length > 0 ? { 's3:GetObjectVersion': [...versions].sort() } : {}),
});

describe('IAM least privilege', () => {
  it.each([
    // Prepare, Report and MarkFailed also read and write the spend ledger: admit a run, release its slot.
    ['Prepare', 'PrepareRoleDefaultPolicy', rw(['experiments/*', 'datasets/*', 'models/*', 'runs/*', 'spend/ledger.json'], ['runs/*', 'spend/ledger.json'], ['runs/*/splits/*/*.jsonl.gz'], ['experiments/*', 'datasets/*'])],
    // Featurize reads the model files at the versions the run pinned.
    ['Featurize', 'FeaturizeStageRoleDefaultPolicy', rw(['runs/*', 'models/*', 'cache/*'], ['cache/*', 'runs/*/featurized/*'], [], ['models/*'])],
    ['Report', 'ReportRoleDefaultPolicy', rw(['runs/*', 'spend/ledger.json'], ['runs/*', 'spend/ledger.json'], ['runs/*/checkpoints.zip'])],
    // MarkFailed also writes the failed run's report page (why it failed), and reads and releases the run's lease.
    ['MarkFailed', 'MarkFailedRoleDefaultPolicy', rw(['runs/*/manifest.json', 'runs/*/lock.json', 'spend/ledger.json'], ['runs/*/manifest.json', 'runs/*/lock.json', 'runs/*/report/report.html', 'spend/ledger.json'])],
    ['the trainer job', 'TrainingJobRoleDefaultPolicy', rw(['runs/*', 'cache/*'], ['runs/*'])],
  ])('%s reaches only its key prefixes', (_name, policy, expected) => {
    expect(s3Access(policy)).toEqual(expected);
    // Object and bucket ARNs are the data bucket's, never another bucket's or "*".
    for (const s of statementsOf(policy).filter((st) => list(st.Action).some((a) => a.startsWith('s3:')))) {
      for (const r of list(s.Resource)) expect(r).toMatch(/^arn:StorageData[0-9A-F]+(\/|$)/);
    }
  });

  it('grants no s3:* and no S3 action on "*" anywhere, and never lets anything delete objects', () => {
    for (const [id, props] of resourcesOf(synthesized.template, 'AWS::IAM::Policy')) {
      for (const s of (props.PolicyDocument as unknown as { Statement: Statement[] }).Statement) {
        const actions = list(s.Action);
        expect(actions, id).not.toContain('s3:*');
        expect(actions.filter((a) => /^s3:(Delete|PutBucket|PutLifecycle)/.test(a)), id).toEqual([]);
        if (list(s.Resource).includes('*')) expect(actions.filter((a) => a.startsWith('s3:')), id).toEqual([]);
      }
    }
  });

  it('lets each function write only its own log group', () => {
    for (const fn of ['Prepare', 'Report', 'MarkFailed', 'FeaturizeStage']) {
      const logs = statementsOf(`${fn}RoleDefaultPolicy`).filter((s) => list(s.Action).some((a) => a.startsWith('logs:') && a !== 'logs:FilterLogEvents'));
      expect(logs, fn).toEqual([
        { Effect: 'Allow', Action: ['logs:CreateLogStream', 'logs:PutLogEvents'], Resource: expect.stringMatching(new RegExp(`^arn:${fn}Logs`)) },
      ]);
    }
    expect(Object.keys(synthesized.template.findResources('AWS::IAM::Role'))).not.toContainEqual(
      expect.stringMatching(/ServiceRole/),
    );
  });

  it('lets Report read only what billed usage needs: its machine\'s execution histories, job descriptions, the stage functions\' logs', () => {
    const reads = statementsOf('ReportRoleDefaultPolicy').filter((s) => !list(s.Action).some((a) => a.startsWith('s3:') || a === 'logs:CreateLogStream'));
    const filter = reads.filter((s) => list(s.Action).includes('logs:FilterLogEvents'));
    expect(filter.flatMap((s) => list(s.Action))).toEqual(Array(4).fill('logs:FilterLogEvents'));
    expect(filter.flatMap((s) => list(s.Resource)).map((r) => r.replace(/^.*(?:ref:|arn:)(\w+?)Logs[0-9A-F]{8}$/, '$1'))).toEqual(
      ['Prepare', 'Prepare', 'FeaturizeStage', 'FeaturizeStage', 'Report', 'Report', 'MarkFailed', 'MarkFailed'],
    );
    expect(reads.filter((s) => !list(s.Action).includes('logs:FilterLogEvents'))).toEqual([
      { Effect: 'Allow', Action: 'states:GetExecutionHistory', Resource: 'arn:aws:states:{AWS::Region}:{AWS::AccountId}:execution:textshift-run:*' },
      // DescribeJobs has no resource-level permissions.
      { Effect: 'Allow', Action: 'batch:DescribeJobs', Resource: '*' },
    ]);
    // Nothing else of Step Functions, Batch or Logs on any other role either (but the state machine's Batch .sync
    // tasks follow their jobs with DescribeJobs).
    for (const [id, props] of resourcesOf(synthesized.template, 'AWS::IAM::Policy').filter(([pid]) => !pid.startsWith('ReportRole'))) {
      const actions = (props.PolicyDocument as unknown as { Statement: Statement[] }).Statement.flatMap((st) => list(st.Action));
      const billingReads = ['states:GetExecutionHistory', 'logs:FilterLogEvents', ...(id.startsWith('WorkflowStateMachineRole') ? [] : ['batch:DescribeJobs'])];
      expect(actions.filter((a) => billingReads.includes(a)), id).toEqual([]);
    }
  });

  it('tells Report the names of the stage functions whose REPORT lines it reads', () => {
    const report = resourcesOf(synthesized.template, 'AWS::Lambda::Function').find(([id]) => id.startsWith('ReportFunction'))![1];
    const env = (report.Environment as { Variables: Record<string, string> }).Variables;
    expect(JSON.parse(env.TEXTSHIFT_STAGE_FUNCTIONS!)).toEqual({
      prepare: 'textshift-prepare',
      featurize: 'textshift-featurize',
      report: 'textshift-report',
      markFailed: 'textshift-mark-failed',
    });
    const names = resourcesOf(synthesized.template, 'AWS::Lambda::Function').map(([, f]) => f.FunctionName);
    for (const fn of Object.values(JSON.parse(env.TEXTSHIFT_STAGE_FUNCTIONS!) as Record<string, string>)) expect(names).toContain(fn);
  });

  it('lets the state machine invoke only the four stage functions and start only itself', () => {
    const statements = statementsOf('WorkflowStateMachineRoleDefaultPolicy');
    const invoked = statements
      .filter((s) => list(s.Action).includes('lambda:InvokeFunction'))
      .flatMap((s) => list(s.Resource))
      .filter((r) => !r.endsWith(':*'))
      .map((r) => r.replace(/^arn:/, '').replace(/[0-9A-F]{8}$/, ''));
    expect(invoked.sort()).toEqual(['FeaturizeStageFunction', 'MarkFailedFunction', 'PrepareFunction', 'ReportFunction']);
    const starts = statements.filter((s) => list(s.Action).includes('states:StartExecution'));
    expect(starts.flatMap((s) => list(s.Resource))).toEqual(['arn:aws:states:{AWS::Region}:{AWS::AccountId}:stateMachine:textshift-run']);
    // The Batch .sync task follows its job and stops it when the execution stops (not granted by BatchSubmitJob).
    expect(statements.filter((s) => list(s.Action).some((a) => a === 'batch:DescribeJobs' || a === 'batch:TerminateJob'))).toEqual([
      { Effect: 'Allow', Action: 'batch:DescribeJobs', Resource: '*' },
      { Effect: 'Allow', Action: 'batch:TerminateJob', Resource: 'arn:aws:batch:{AWS::Region}:{AWS::AccountId}:job/*' },
    ]);
  });
});

describe('the Featurize Distributed Map\'s grants', () => {
  it('reads only runs\' shard plans, writes only under runs\' map results, and starts, stops and redrives only its own child executions', () => {
    const s3Statements = statementsOf('WorkflowStateMachineRoleDefaultPolicy').filter((st) => list(st.Action).some((a) => a.startsWith('s3:')));
    expect(s3Statements).toEqual([
      { Effect: 'Allow', Action: 's3:GetObject', Resource: expect.stringMatching(/^arn:StorageData\w+\/runs\/\*\/shards\.json$/) },
      {
        Effect: 'Allow',
        // What the Step Functions developer guide lists for a ResultWriter.
        Action: ['s3:PutObject', 's3:GetObject', 's3:ListMultipartUploadParts', 's3:AbortMultipartUpload'],
        Resource: expect.stringMatching(/^arn:StorageData\w+\/runs\/\*\/featurize-map\/\*$/),
      },
    ]);
    const [, policy] = resourcesOf(synthesized.template, 'AWS::IAM::Policy').find(([id]) => id.startsWith('WorkflowStateMachineDistributedMapPolicy'))!;
    const statements = (policy.PolicyDocument as unknown as { Statement: Statement[] }).Statement;
    expect(statements.map((st) => [list(st.Action), list(st.Resource).map((r) => r.replace(/\[object Object\]/, '<machine name>'))])).toEqual([
      [['states:StartExecution'], [expect.stringMatching(/^ref:WorkflowStateMachine/)]],
      [['states:DescribeExecution', 'states:StopExecution'], ['arn:aws:states:{AWS::Region}:{AWS::AccountId}:execution:<machine name>:*']],
      [['states:RedriveExecution'], ['arn:aws:states:{AWS::Region}:{AWS::AccountId}:execution:<machine name>/Featurize:*']],
    ]);
  });
});

describe('cdk-nag (AwsSolutions)', () => {
  it('passes with every acknowledgement carrying a written reason', () => {
    // synth() throws on any unacknowledged finding; here we review what was acknowledged, and why.
    const acks = synthesized.app.node
      .findAll()
      .flatMap((c) => c.node.metadata.filter((m) => m.type === 'aws:cdk:acknowledged-rules'))
      .flatMap((m) => Object.entries(m.data as Record<string, string>))
      .filter(([id]) => id.includes('AwsSolutions-'));
    const rules = new Set(acks.map(([id]) => id.replace(/^.*(AwsSolutions-[A-Z]+\d+).*$/, '$1')));
    expect([...rules].sort()).toEqual(['AwsSolutions-IAM4', 'AwsSolutions-IAM5', 'AwsSolutions-L1', 'AwsSolutions-S1', 'AwsSolutions-SQS3']);
    for (const [id, reason] of acks) expect(reason.length, id).toBeGreaterThan(40);
  });

  it('fails the synth on a finding nobody acknowledged', () => {
    const app = new App({ context: { ...CDK_CONTEXT, 'aws:cdk:bundling-stacks': [] } });
    const stack = addTextshiftStack(app);
    new s3.Bucket(stack, 'Unreviewed');
    expect(() => app.synth()).toThrow(/Textshift\/Unreviewed[\s\S]*AwsSolutions-S1'[\s\S]*AwsSolutions-S10'/);
  }, SYNTH_TIMEOUT);
});
