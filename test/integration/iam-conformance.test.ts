// IAM conformance. The emulator does not enforce IAM, so a policy that denies what the code does would pass every
// other integration test; here every AWS call a run makes is evaluated against the synthesized stack's policies by a
// real IAM policy evaluator (support/iam-evaluate.ts), as the stage's role would be on AWS.
//
// Recorded (real SDK requests, seen by the middleware of src/store/aws-calls.ts):
//   - every S3 request of Prepare, Featurize, Report and MarkFailed (in-process handlers) and of the trainer (a
//     local process that logs its calls to a file) in two executions of the synthesized definition: a fresh run,
//     then the same run again (every stage finds its outputs) with Report failing, so MarkFailed records it;
//   - Report's GetExecutionHistory in those runs (the emulator answers that the execution does not exist);
//   - Report's billing requests (GetExecutionHistory, DescribeJobs, FilterLogEvents) through its real SDK clients,
//     answered by a loopback endpoint from the recorded responses in test/fixtures/billing.
// Derived from the template (support/iam-policies.ts): what the state machine's tasks need (lambda:InvokeFunction,
// Batch .sync, states:StartExecution), what its Distributed Map needs (its child executions, the run's shard plan,
// its result files), its logging and tracing, Lambda's and ECS's log writes, the trainer image pull and the upload
// trigger's StartExecution.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GetCallerIdentityCommand } from '@aws-sdk/client-sts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { awsBillingApis } from '../../functions/report/billing-client.js';
import { collectBilledUsage } from '../../src/cost/billing.js';
import type { RunUsage } from '../../src/cost/cost.js';
import { RECORDED_EXECUTION_ARN, RECORDED_FUNCTIONS, recordedApis } from '../fixtures/billing/recorded-apis.js';
import { SYNTH_TIMEOUT } from '../support/cdk-template.js';
import { awsClientConfig, onRealAws } from './setup/aws.js';
import { AwsCallRecorder, type RecordedCall, callLogEnvironment } from './support/aws-call-recorder.js';
import { billingEndpoint } from './support/billing-endpoint.js';
import { targetClients } from './support/clients.js';
import { type SynthesizedStack, synthesizeStack } from './support/deploy.js';
import { decide, unusedGrants, type Grant } from './support/iam-evaluate.js';
import { type DeploymentPolicies, STATE_MACHINE, TRAINER, TRAINER_EXECUTION, UPLOAD_TRIGGER, deploymentPolicies, derivedRequests } from './support/iam-policies.js';
import { type IamRequest, type Where, iamRequestsOf } from './support/iam-requests.js';
import { type LocalRunBed, localRunBed } from './support/local-run-bed.js';
import type { LocalExecution, TaskInterceptor } from './support/local-workflow.js';

const SKIP = onRealAws();
if (SKIP) console.log('[integration] iam-conformance.test.ts skipped on real AWS: it records calls of in-process handlers and a local trainer against an emulator');

/** The stage tag of Report's billing requests, made in the recorded deployment of test/fixtures/billing. */
const BILLING = 'report (billing)';
/** Where the recorded billing responses come from: account, region and the deployment prefix "textshift". */
const RECORDED_DEPLOYMENT = { account: '123456789012', region: 'eu-west-1', bucket: 'textshift-recorded-data' };

/**
 * Grants no recorded or derived call needs, each kept on purpose; the comment next to the grant in cdk/ says why.
 * Patterns are shown with <bucket>, <region> and <account> for the deployment's values.
 */
const JUSTIFIED_UNUSED: Record<string, string[]> = {
  // BERT-family featurizers read their model folder; the tiny experiment has only a BoW family.
  featurize: ['s3:GetObject <bucket>/models/*'],
  // A multipart upload of a split file that fails is aborted (the tiny experiment's splits fit in one part).
  prepare: ['s3:AbortMultipartUpload <bucket>/runs/*/splits/*/*.jsonl.gz'],
  report: [
    // A multipart upload of checkpoints.zip that fails is aborted (only archives above one part use multipart).
    's3:AbortMultipartUpload <bucket>/runs/*/checkpoints.zip',
    // The second ARN form of each log group: which form AWS checks FilterLogEvents against is not settled.
    ...['prepare', 'featurize', 'report', 'mark-failed'].map((f) => `logs:FilterLogEvents arn:aws:logs:<region>:<account>:log-group:/aws/lambda/textshift-${f}:*`),
  ],
  // MarkFailed first HEADs the manifest: for a run that failed before it had one, S3 answers 404 (not 403) only to a
  // caller that may list the bucket (bucket-access.ts). The runs here always have a manifest.
  // MarkFailed releases the run's slot in the spend ledger; here Report released it first, so MarkFailed writes nothing.
  'mark-failed': ['s3:ListBucket <bucket>', 's3:PutObject <bucket>/spend/ledger.json'],
  // LambdaInvoke grants each function's versions and aliases with it; the definition invokes unqualified ARNs.
  [STATE_MACHINE]: ['prepare', 'mark-failed', 'report', 'featurize'].map((f) => `lambda:InvokeFunction arn:aws:lambda:<region>:<account>:function:textshift-${f}:*`),
};

/** A request's or grant's text with the deployment's bucket, region and account replaced by placeholders. */
function generic(text: string, d: DeploymentPolicies): string {
  return text.split(d.bucketArn).join('<bucket>').replace(/^(arn:aws:\w+):([\w-]+):(\d{12}):/, '$1:<region>:<account>:');
}

/** The IAM requests behind recorded calls, once each, with the stages that made them. */
function uniqueRequests(calls: RecordedCall[], where: Where): { stage: string; request: IamRequest }[] {
  const seen = new Map<string, { stage: string; request: IamRequest }>();
  for (const call of calls) {
    for (const request of iamRequestsOf(call, where)) seen.set(JSON.stringify([call.stage, request]), { stage: call.stage, request });
  }
  return [...seen.values()];
}

describe.skipIf(SKIP)('IAM conformance: every AWS call of a run, recorded or derived, against the synthesized policies', () => {
  const clients = targetClients();
  let recorder: AwsCallRecorder;
  const runId = `iam-it-${randomBytes(4).toString('hex')}`;
  const logDir = mkdtempSync(join(tmpdir(), 'textshift-iam-'));
  let bed: LocalRunBed;
  let stack: SynthesizedStack;
  let deployment: DeploymentPolicies;
  let recordedDeployment: DeploymentPolicies;
  const executions: LocalExecution[] = [];
  let billed: { viaSdk: RunUsage; viaFixtures: RunUsage };

  /** Report's billing through its SDK clients, on the recorded responses, with the requests recorded. */
  async function recordBillingCalls(): Promise<typeof billed> {
    const endpoint = await billingEndpoint();
    const env = { AWS_ENDPOINT_URL: endpoint.url, AWS_REGION: RECORDED_DEPLOYMENT.region, AWS_ACCESS_KEY_ID: 'test', AWS_SECRET_ACCESS_KEY: 'test' };
    const saved = Object.fromEntries(Object.keys(env).map((k) => [k, process.env[k]]));
    Object.assign(process.env, env);
    try {
      const options = {
        executionArn: RECORDED_EXECUTION_ARN,
        functions: RECORDED_FUNCTIONS,
        memoryMb: { prepare: 3008, featurize: 2048, report: 1024, markFailed: 256 },
        measured: { basis: 'measured', stages: {}, stateTransitions: 0, storedBytes: 0 } satisfies RunUsage,
        current: { stage: 'report', seconds: 1, memoryMb: 1024 },
        now: () => Date.parse('2026-11-20T10:33:00.000Z'),
      };
      return {
        viaSdk: await recorder.stage(BILLING, () => collectBilledUsage(awsBillingApis(), options)),
        viaFixtures: await collectBilledUsage(recordedApis(), options),
      };
    } finally {
      for (const [k, v] of Object.entries(saved)) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
      await endpoint.close();
    }
  }

  beforeAll(async () => {
    recorder = new AwsCallRecorder();
    // The deployment prefix the recorded billing responses were made with, so one template serves both.
    stack = synthesizeStack({ prefix: 'textshift', trainerCompute: 'cpu' });
    bed = await localRunBed(clients);
    const { Account } = await clients.sts.send(new GetCallerIdentityCommand({}));
    deployment = deploymentPolicies(stack, { account: Account!, region: awsClientConfig().region, bucket: bed.bucket });
    recordedDeployment = deploymentPolicies(stack, RECORDED_DEPLOYMENT);

    const callLog = join(logDir, 'trainer-calls.jsonl');
    const workflow = bed.workflow(stack, callLogEnvironment(callLog));
    const inStage: TaskInterceptor = (call, invoke) => recorder.stage(call.fn, invoke);
    const input = { experimentKey: bed.experimentKey, runId, quick: true };
    executions.push(await workflow.execute(input, runId, inStage));
    const reportFails: TaskInterceptor = (call, invoke) =>
      call.fn === 'report' ? Promise.reject(Object.assign(new Error('report failed on purpose'), { name: 'InjectedFailure' })) : inStage(call, invoke);
    executions.push(await workflow.execute(input, `${runId}-again`, reportFails));
    recorder.addCallLog(TRAINER, callLog);
    billed = await recordBillingCalls();
  }, SYNTH_TIMEOUT + 240_000);

  afterAll(async () => {
    recorder?.stop();
    await bed?.dispose();
    clients.destroy();
    rmSync(logDir, { recursive: true, force: true });
  });

  it('recorded the calls of every stage: a fresh run, the same run with Report failing into MarkFailed, and billing', () => {
    const byStage = new Map<string, RecordedCall[]>();
    for (const c of recorder.calls) byStage.set(c.stage, [...(byStage.get(c.stage) ?? []), c]);
    const summary = [...byStage].map(([stage, calls]) => `  ${stage}: ${calls.length} calls (${[...new Set(calls.map((c) => c.command.replace(/Command$/, '')))].sort().join(', ')})`);
    console.log(`[iam] recorded AWS calls by stage:\n${summary.join('\n')}`);
    expect(executions.map((e) => e.status)).toEqual(['SUCCEEDED', 'FAILED']);
    expect(executions[1]!.lambdaCalls.map((c) => c.fn)).toContain('mark-failed');
    expect([...new Set(recorder.calls.map((c) => c.stage))].sort()).toEqual(['featurize', 'mark-failed', 'prepare', 'report', BILLING, TRAINER].sort());
    // Report asked for its execution's billed usage (the emulator does not know the interpreter's execution).
    expect(recorder.calls).toContainEqual(expect.objectContaining({ stage: 'report', command: 'GetExecutionHistoryCommand', error: 'ExecutionDoesNotExist' }));
    // The billing requests went through the SDK and got the recorded answers: the same usage as the fixtures give.
    expect(billed.viaSdk).toEqual(billed.viaFixtures);
    expect(billed.viaSdk.basis).toBe('billed');
    expect(recorder.calls.filter((c) => c.stage === BILLING).map((c) => c.command)).toEqual([
      'GetExecutionHistoryCommand',
      'DescribeJobsCommand',
      ...Object.values(RECORDED_FUNCTIONS).map(() => 'FilterLogEventsCommand'),
    ]);
  });

  it('allows every recorded call with the role of the stage that made it (and the bucket policy)', async () => {
    const denied: string[] = [];
    const check = async (calls: RecordedCall[], d: DeploymentPolicies, role: (stage: string) => string) => {
      for (const { stage, request } of uniqueRequests(calls, d)) {
        const decision = await decide(d, d.roles.get(role(stage))!, request);
        if (decision !== 'Allowed') denied.push(`${stage}: ${request.action} on ${request.resource} (${decision})`);
      }
    };
    await check(recorder.calls.filter((c) => c.stage !== BILLING), deployment, (s) => s);
    await check(recorder.calls.filter((c) => c.stage === BILLING), recordedDeployment, () => 'report');
    expect(denied).toEqual([]);
  });

  it('allows every call AWS services make with the stack\'s roles for a run (derived from the template)', async () => {
    const denied: string[] = [];
    for (const [stage, requests] of derivedRequests(stack, deployment, { bucket: bed.bucket, runId })) {
      for (const request of requests) {
        const decision = await decide(deployment, deployment.roles.get(stage)!, request);
        if (decision !== 'Allowed') denied.push(`${stage}: ${request.action} on ${request.resource} (${decision})`);
      }
    }
    expect(denied).toEqual([]);
  });

  it('denies what no stage may do: the evaluation is not vacuous', async () => {
    const bucket = deployment.bucketArn;
    const role = (stage: string) => deployment.roles.get(stage)!;
    const tls = { 'aws:SecureTransport': 'true', 's3:TlsVersion': '1.2' };
    const verdicts = await Promise.all([
      decide(deployment, role(TRAINER), { action: 's3:DeleteObject', resource: `${bucket}/runs/${runId}/models/bow_1/best/optimizer.safetensors`, context: tls }),
      decide(deployment, role('prepare'), { action: 's3:GetObject', resource: `${bucket}/experiments/tiny.json`, context: { 'aws:SecureTransport': 'false' } }),
      decide(deployment, role('featurize'), { action: 's3:PutObject', resource: `${bucket}/runs/${runId}/manifest.json`, context: tls }),
      decide(deployment, role('mark-failed'), { action: 's3:GetObject', resource: `${bucket}/runs/${runId}/splits/sst2/train.jsonl.gz`, context: tls }),
      decide(deployment, role('report'), { action: 'states:GetExecutionHistory', resource: `arn:aws:states:${deployment.region}:${deployment.account}:execution:other-run:x`, context: {} }),
    ]);
    // Plain HTTP is refused by the bucket policy's explicit Deny; everything else is simply not granted.
    expect(verdicts).toEqual(['ImplicitlyDenied', 'ExplicitlyDenied', 'ImplicitlyDenied', 'ImplicitlyDenied', 'ImplicitlyDenied']);
  });

  it('grants no stage anything its calls do not need, except the grants justified in cdk/', async () => {
    const recorded = new Map<string, IamRequest[]>();
    for (const { stage, request } of uniqueRequests(recorder.calls.filter((c) => c.stage !== BILLING), deployment)) {
      recorded.set(stage, [...(recorded.get(stage) ?? []), request]);
    }
    const derived = derivedRequests(stack, deployment, { bucket: bed.bucket, runId });
    const billing = uniqueRequests(recorder.calls.filter((c) => c.stage === BILLING), recordedDeployment).map((r) => r.request);

    const unusedByStage: Record<string, string[]> = {};
    for (const [stage, role] of deployment.roles) {
      const requests = [...(recorded.get(stage) ?? []), ...(derived.get(stage) ?? [])];
      let unused: Grant[] = await unusedGrants(deployment, role, requests);
      // Report's billing requests were made in the recorded deployment: a grant is unused when unused there too.
      if (stage === 'report') {
        const alsoThere = new Set((await unusedGrants(recordedDeployment, recordedDeployment.roles.get(stage)!, billing)).map((g) => `${g.policy} ${g.action} ${generic(g.resource, recordedDeployment)}`));
        unused = unused.filter((g) => alsoThere.has(`${g.policy} ${g.action} ${generic(g.resource, deployment)}`));
      }
      if (unused.length > 0) unusedByStage[stage] = unused.map((g) => `${g.action} ${generic(g.resource, deployment)}`);
    }
    console.log(
      `[iam] granted but needed by no recorded or derived call:\n${Object.entries(unusedByStage)
        .map(([stage, grants]) => grants.map((g) => `  ${stage}: ${g}`).join('\n'))
        .join('\n')}`,
    );
    expect(unusedByStage).toEqual(JUSTIFIED_UNUSED);
    // Every role that acts in a run was evaluated.
    expect([...deployment.roles.keys()].sort()).toEqual(['featurize', 'mark-failed', 'prepare', 'report', STATE_MACHINE, TRAINER, TRAINER_EXECUTION, UPLOAD_TRIGGER].sort());
  });
});
