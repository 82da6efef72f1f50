// IAM conformance. The emulator does not enforce IAM, so a policy that denies what the code does would pass every
// other integration test; here every AWS call a run makes is evaluated against the synthesized stack's policies by a
// real IAM policy evaluator (support/iam-evaluate.ts), as the stage's role would be on AWS.
//
// Recorded twice: at the HTTP layer, by a recording proxy in front of the emulator and the billing endpoint that
// sees every client however it was built and names the actor by the access key that signed each request
// (support/aws-http-recorder.ts: each stage, the trainer and the state machine get their own key, as each has its
// own role on AWS); and by the SDK middleware of src/store/aws-calls.ts. Both are evaluated, and they must agree
// (neither can go quietly empty; a product call the observer missed came through a bare client, which
// eslint.config.js refuses). What they hold:
//   - every S3 request of Prepare, Featurize, Report and MarkFailed (in-process handlers), of the trainer (a local
//     process; its middleware logs to a file) and of the Distributed Map's ItemReader (the state machine's role) in
//     two executions of the synthesized definition: a fresh run whose Report fails, so MarkFailed records it, then
//     the same run again by another execution (it takes over the run's lease; every stage finds its outputs) to the end;
//   - Report's GetExecutionHistory in those runs (the emulator answers that the execution does not exist);
//   - Report's billing requests (GetExecutionHistory, DescribeJobs, FilterLogEvents) through its real SDK clients,
//     answered by a loopback endpoint from the recorded responses in test/fixtures/billing.
// A call through a bare SDK client (no observer) is judged too: see "judges a call made through a bare SDK client".
// Derived from the template (support/iam-policies.ts): what the state machine's tasks need (lambda:InvokeFunction,
// Batch .sync, states:StartExecution), what its Distributed Map needs (its child executions, the run's shard plan,
// its result files), its logging and tracing, Lambda's and ECS's log writes, the trainer image pull and the upload
// trigger's StartExecution.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectVersionsCommand,
  ListObjectsCommand,
  ListObjectsV2Command,
  ListPartsCommand,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { GetCallerIdentityCommand } from '@aws-sdk/client-sts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { awsBillingApis } from '../../functions/report/billing-client.js';
import { collectBilledUsage } from '../../src/cost/billing.js';
import type { RunUsage } from '../../src/cost/cost.js';
import { observable } from '../../src/store/aws-calls.js';
import { RECORDED_EXECUTION_ARN, RECORDED_FUNCTIONS, recordedApis } from '../fixtures/billing/recorded-apis.js';
import { SYNTH_TIMEOUT } from '../support/cdk-template.js';
import { awsClientConfig, onRealAws } from './setup/aws.js';
import { AwsCallRecorder, type RecordedCall, callLogEnvironment } from './support/aws-call-recorder.js';
import { type HttpCall, HttpCallRecorder } from './support/aws-http-recorder.js';
import { billingEndpoint } from './support/billing-endpoint.js';
import { targetClients } from './support/clients.js';
import { type SynthesizedStack, synthesizeStack } from './support/deploy.js';
import { decide, unusedGrants, type Grant } from './support/iam-evaluate.js';
import { type DeploymentPolicies, STATE_MACHINE, TRAINER, TRAINER_EXECUTION, UPLOAD_TRIGGER, deploymentPolicies, derivedRequests } from './support/iam-policies.js';
import { type IamRequest, type Where, iamRequestsOf } from './support/iam-requests.js';
import { type LocalRunBed, localRunBed } from './support/local-run-bed.js';
import type { LocalExecution, TaskInterceptor } from './support/local-workflow.js';
import { TINY_DATASET_FILES } from './support/run-inputs.js';

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
  // BERT-family featurizers read their model folder at its pinned versions; the tiny experiment has only a BoW family.
  featurize: ['s3:GetObject <bucket>/models/*', 's3:GetObjectVersion <bucket>/models/*'],
  prepare: [
    // Prepare pins the model folders of BERT-family families (and the guard reads their records); tiny has none.
    's3:GetObject <bucket>/models/*',
    // A multipart upload of a split file that fails is aborted (the tiny experiment's splits fit in one part).
    's3:AbortMultipartUpload <bucket>/runs/*/splits/*/*.jsonl.gz',
  ],
  report: [
    // Report frees the run's slot in the spend ledger; here MarkFailed freed it first and the resumed run took none
    // (Prepare found it prepared), so Report writes nothing.
    's3:PutObject <bucket>/spend/ledger.json',
    // A multipart upload of checkpoints.zip that fails is aborted (only archives above one part use multipart).
    's3:AbortMultipartUpload <bucket>/runs/*/checkpoints.zip',
    // The second ARN form of each log group: which form AWS checks FilterLogEvents against is not settled.
    ...['prepare', 'featurize', 'report', 'mark-failed'].map((f) => `logs:FilterLogEvents arn:aws:logs:<region>:<account>:log-group:/aws/lambda/textshift-${f}:*`),
  ],
  // MarkFailed first HEADs the manifest: for a run that failed before it had one, S3 answers 404 (not 403) only to a
  // caller that may list the bucket (bucket-access.ts). The runs here always have a manifest.
  'mark-failed': ['s3:ListBucket <bucket>'],
  // LambdaInvoke grants each function's versions and aliases with it; the definition invokes unqualified ARNs.
  [STATE_MACHINE]: ['prepare', 'mark-failed', 'report', 'featurize'].map((f) => `lambda:InvokeFunction arn:aws:lambda:<region>:<account>:function:textshift-${f}:*`),
};

/** A request's or grant's text with the deployment's bucket, region and account replaced by placeholders. */
function generic(text: string, d: DeploymentPolicies): string {
  return text.split(d.bucketArn).join('<bucket>').replace(/^(arn:aws:\w+):([\w-]+):(\d{12}):/, '$1:<region>:<account>:');
}

/** An IAM request and the stage that made it. */
interface StageRequest {
  stage: string;
  request: IamRequest;
}

/** The IAM requests behind recorded calls, once each, with the stages that made them. */
function uniqueRequests(calls: RecordedCall[], where: Where): StageRequest[] {
  const seen = new Map<string, StageRequest>();
  for (const call of calls) {
    for (const request of iamRequestsOf(call, where)) seen.set(JSON.stringify([call.stage, request]), { stage: call.stage, request });
  }
  return [...seen.values()];
}

/**
 * The IAM requests behind the requests recorded at the HTTP layer, once each; a request that cannot be judged (not
 * attributable to an actor, not parsed, or without an IAM mapping) goes to `problems` instead.
 */
function httpRequests(calls: HttpCall[], where: Where, problems: string[]): StageRequest[] {
  const judgeable: RecordedCall[] = [];
  for (const c of calls) {
    if (c.call === undefined) problems.push(`${c.stage}: ${c.http}: ${c.problem ?? 'not parsed'}`);
    else {
      try {
        iamRequestsOf(c.call, where);
        judgeable.push(c.call);
      } catch (err) {
        problems.push(`${c.stage}: ${c.http}: ${(err as Error).message}`);
      }
    }
  }
  return uniqueRequests(judgeable, where);
}

/** Each request its stage's role (and the bucket policy) does not allow, as "<stage>: <action> on <resource> (<decision>)". */
async function denials(requests: StageRequest[], d: DeploymentPolicies, role: (stage: string) => string): Promise<string[]> {
  const denied: string[] = [];
  for (const { stage, request } of requests) {
    const decision = await decide(d, d.roles.get(role(stage))!, request);
    if (decision !== 'Allowed') denied.push(`${stage}: ${request.action} on ${request.resource} (${decision})`);
  }
  return denied;
}

/** Runs `work` with `env` set in this process, then puts the previous values back. */
async function withEnv<T>(env: Record<string, string>, work: () => Promise<T>): Promise<T> {
  const saved = Object.fromEntries(Object.keys(env).map((k) => [k, process.env[k]]));
  Object.assign(process.env, env);
  try {
    return await work();
  } finally {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
}

describe.skipIf(SKIP)('IAM conformance: every AWS call of a run, recorded or derived, against the synthesized policies', () => {
  const clients = targetClients();
  let recorder: AwsCallRecorder;
  let http: HttpCallRecorder;
  /** What each recorder recorded during the runs and billing (before the tests' own requests). */
  let runCalls: RecordedCall[];
  let runHttpCalls: HttpCall[];
  /** The proxy in front of the emulator: the endpoint every handler, the trainer and the ItemReader reach. */
  let emulatorProxy: string;
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
    const env = { AWS_ENDPOINT_URL: await http.proxy(endpoint.url), AWS_REGION: RECORDED_DEPLOYMENT.region, AWS_ACCESS_KEY_ID: http.accessKeyId(BILLING), AWS_SECRET_ACCESS_KEY: 'test' };
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
        viaSdk: await withEnv(env, () => recorder.stage(BILLING, () => collectBilledUsage(awsBillingApis(), options))),
        viaFixtures: await collectBilledUsage(recordedApis(), options),
      };
    } finally {
      await endpoint.close();
    }
  }

  beforeAll(async () => {
    recorder = new AwsCallRecorder();
    http = new HttpCallRecorder();
    emulatorProxy = await http.proxy(awsClientConfig().endpoint!);
    // The deployment prefix the recorded billing responses were made with, so one template serves both.
    stack = synthesizeStack({ prefix: 'textshift', trainerCompute: 'cpu' });
    bed = await localRunBed(clients);
    const { Account } = await clients.sts.send(new GetCallerIdentityCommand({}));
    deployment = deploymentPolicies(stack, { account: Account!, region: awsClientConfig().region, bucket: bed.bucket });
    recordedDeployment = deploymentPolicies(stack, RECORDED_DEPLOYMENT);

    const callLog = join(logDir, 'trainer-calls.jsonl');
    const actors = ['prepare', 'featurize', 'report', 'mark-failed', TRAINER, STATE_MACHINE];
    const workflow = bed.workflow(stack, callLogEnvironment(callLog), emulatorProxy, Object.fromEntries(actors.map((a) => [a, http.accessKeyId(a)])));
    const inStage: TaskInterceptor = (call, invoke) => recorder.stage(call.fn, invoke);
    const input = { experimentKey: bed.experimentKey, runId, quick: true };
    // Report fails first, so MarkFailed records it (a finished run is never marked failed); the second execution
    // takes the run over (MarkFailed released its lease) and finishes it, every stage finding its outputs.
    const reportFails: TaskInterceptor = (call, invoke) =>
      call.fn === 'report' ? Promise.reject(Object.assign(new Error('report failed on purpose'), { name: 'InjectedFailure' })) : inStage(call, invoke);
    executions.push(await workflow.execute(input, runId, reportFails));
    executions.push(await workflow.execute(input, `${runId}-again`, inStage));
    recorder.addCallLog(TRAINER, callLog);
    billed = await recordBillingCalls();
    runCalls = [...recorder.calls];
    runHttpCalls = [...http.calls];
  }, SYNTH_TIMEOUT + 240_000);

  afterAll(async () => {
    recorder?.stop();
    await http?.close();
    await bed?.dispose();
    clients.destroy();
    rmSync(logDir, { recursive: true, force: true });
  });

  it('recorded the calls of every stage: a fresh run with Report failing into MarkFailed, the same run resumed by another execution, and billing', () => {
    const summary = (calls: { stage: string; command: string }[]) => {
      const byStage = new Map<string, string[]>();
      for (const c of calls) byStage.set(c.stage, [...(byStage.get(c.stage) ?? []), c.command.replace(/Command$/, '')]);
      return [...byStage].map(([stage, commands]) => `  ${stage}: ${commands.length} calls (${[...new Set(commands)].sort().join(', ')})`).join('\n');
    };
    const viaHttp = runHttpCalls.map((c) => ({ stage: c.stage, command: c.call?.command ?? `(${c.http})` }));
    console.log(`[iam] recorded AWS calls by stage, SDK middleware:\n${summary(runCalls)}\n[iam] HTTP layer:\n${summary(viaHttp)}`);
    expect(executions.map((e) => e.status)).toEqual(['FAILED', 'SUCCEEDED']);
    expect(executions[0]!.lambdaCalls.map((c) => c.fn)).toContain('mark-failed');
    expect([...new Set(runCalls.map((c) => c.stage))].sort()).toEqual(['featurize', 'mark-failed', 'prepare', 'report', BILLING, TRAINER].sort());
    // The HTTP layer saw every actor too, the Distributed Map's ItemReader (the state machine's role) included.
    expect([...new Set(runHttpCalls.map((c) => c.stage))].sort()).toEqual(['featurize', 'mark-failed', 'prepare', 'report', BILLING, TRAINER, STATE_MACHINE].sort());
    // Report asked for its execution's billed usage (the emulator does not know the interpreter's execution).
    expect(runCalls).toContainEqual(expect.objectContaining({ stage: 'report', command: 'GetExecutionHistoryCommand', error: 'ExecutionDoesNotExist' }));
    // The billing requests went through the SDK and got the recorded answers: the same usage as the fixtures give.
    expect(billed.viaSdk).toEqual(billed.viaFixtures);
    expect(billed.viaSdk.basis).toBe('billed');
    expect(runCalls.filter((c) => c.stage === BILLING).map((c) => c.command)).toEqual([
      'GetExecutionHistoryCommand',
      'DescribeJobsCommand',
      ...Object.values(RECORDED_FUNCTIONS).map(() => 'FilterLogEventsCommand'),
    ]);
  });

  it('the two records agree: the HTTP layer saw every call the SDK middleware saw, and the middleware every call of the product', () => {
    const problems: string[] = [];
    const key = (r: StageRequest) => JSON.stringify([r.stage, r.request]);
    const text = (r: StageRequest) => `${r.stage}: ${r.request.action} on ${r.request.resource}`;
    const notAtHttp: string[] = [];
    const notObserved: string[] = [];
    for (const [inBilling, d] of [[false, deployment], [true, recordedDeployment]] as const) {
      const viaHttp = httpRequests(runHttpCalls.filter((c) => (c.stage === BILLING) === inBilling), d, problems);
      const viaSdk = uniqueRequests(runCalls.filter((c) => (c.stage === BILLING) === inBilling), d);
      const [httpKeys, sdkKeys] = [new Set(viaHttp.map(key)), new Set(viaSdk.map(key))];
      notAtHttp.push(...viaSdk.filter((r) => !httpKeys.has(key(r))).map(text));
      // The ItemReader stand-in is the test's, not the product's: it has no observer.
      notObserved.push(...viaHttp.filter((r) => r.stage !== STATE_MACHINE && !sdkKeys.has(key(r))).map(text));
    }
    // Neither record can go quietly empty or miss a stage.
    expect(notAtHttp).toEqual([]);
    // A product call the observer did not see came through a client built outside the factories (eslint.config.js).
    expect(notObserved).toEqual([]);
    // Every request through the proxies was signed by an actor of the run and parsed into a call IAM can judge.
    expect(problems).toEqual([]);
  });

  it('allows every recorded call with the role of the stage that made it (and the bucket policy)', async () => {
    const problems: string[] = [];
    const recorded = (billing: boolean, d: DeploymentPolicies) => [
      ...uniqueRequests(runCalls.filter((c) => (c.stage === BILLING) === billing), d),
      ...httpRequests(runHttpCalls.filter((c) => (c.stage === BILLING) === billing), d, problems),
    ];
    const denied = [
      ...(await denials(recorded(false, deployment), deployment, (s) => s)),
      ...(await denials(recorded(true, recordedDeployment), recordedDeployment, () => 'report')),
    ];
    expect([...new Set(denied)]).toEqual([]);
    expect(problems).toEqual([]);
  });

  it('judges a call made through a bare SDK client: Report reading a dataset through a new S3Client of its own is denied', async () => {
    const key = `datasets/${TINY_DATASET_FILES[0]}`;
    const [middlewareBefore, httpBefore] = [recorder.calls.length, http.calls.length];
    // What a handler doing this would run: a client of its own, with endpoint, region and credentials from the
    // function's environment (here Report's, pointing at the proxy), and no observer.
    const bareRead = async () => {
      const s3 = new S3Client({});
      try {
        return await (await s3.send(new GetObjectCommand({ Bucket: bed.bucket, Key: key }))).Body!.transformToString();
      } finally {
        s3.destroy();
      }
    };
    const env = { AWS_ENDPOINT_URL: emulatorProxy, AWS_REGION: deployment.region, AWS_ACCESS_KEY_ID: http.accessKeyId('report'), AWS_SECRET_ACCESS_KEY: 'test' };
    const text = await withEnv(env, () => recorder.stage('report', bareRead));
    // The emulator enforces no IAM: the read worked here, and would be refused on AWS.
    expect(text.length).toBeGreaterThan(0);
    // The SDK middleware never saw it, so the middleware record alone would let this Report pass.
    expect(recorder.calls.slice(middlewareBefore)).toEqual([]);
    const problems: string[] = [];
    const denied = await denials(httpRequests(http.calls.slice(httpBefore), deployment, problems), deployment, (s) => s);
    expect(problems).toEqual([]);
    expect(denied).toEqual([`report: s3:GetObject on ${deployment.bucketArn}/${key} (ImplicitlyDenied)`]);
  });

  it('refuses to judge a request it cannot attribute: unsigned, or signed with a key no actor was given', async () => {
    const key = `datasets/${TINY_DATASET_FILES[0]}`;
    const httpBefore = http.calls.length;
    await (await fetch(`${emulatorProxy}/${bed.bucket}/${key}`)).arrayBuffer();
    const stranger = new S3Client({ endpoint: emulatorProxy, region: deployment.region, forcePathStyle: true, credentials: { accessKeyId: 'test', secretAccessKey: 'test' } });
    await (await stranger.send(new GetObjectCommand({ Bucket: bed.bucket, Key: key }))).Body!.transformToString();
    stranger.destroy();
    const problems: string[] = [];
    expect(httpRequests(http.calls.slice(httpBefore), deployment, problems)).toEqual([]);
    expect(problems).toEqual([
      `(unsigned): GET /${bed.bucket}/${key}: an unsigned request: on AWS it would be anonymous`,
      `(unknown key test): GET /${bed.bucket}/${key}?x-id=GetObject: signed with access key "test", which no actor of the run was given`,
    ]);
  });

  it('parses each kind of S3 request into the call the SDK sent (the HTTP record names what the middleware names)', async () => {
    const stage = 'recorder check';
    const prefix = `recorder-check-${runId}/`;
    const [middlewareBefore, httpBefore] = [recorder.calls.length, http.calls.length];
    const s3 = observable(new S3Client({ endpoint: emulatorProxy, region: deployment.region, forcePathStyle: true, credentials: { accessKeyId: http.accessKeyId(stage), secretAccessKey: 'test' } }));
    const Bucket = bed.bucket;
    const tolerate = (p: Promise<unknown>) => p.then(() => undefined, () => undefined);
    await recorder.stage(stage, async () => {
      await s3.send(new PutObjectCommand({ Bucket, Key: `${prefix}a b+c=d.txt`, Body: 'x' }));
      await (await s3.send(new GetObjectCommand({ Bucket, Key: `${prefix}a b+c=d.txt` }))).Body!.transformToString();
      const { VersionId } = await s3.send(new PutObjectCommand({ Bucket, Key: `${prefix}source`, Body: 'x' }));
      await (await s3.send(new GetObjectCommand({ Bucket, Key: `${prefix}source`, VersionId }))).Body!.transformToString();
      await tolerate(s3.send(new GetObjectCommand({ Bucket, Key: `${prefix}missing` })));
      await tolerate(s3.send(new HeadObjectCommand({ Bucket, Key: `${prefix}missing` })));
      await s3.send(new HeadBucketCommand({ Bucket }));
      await s3.send(new ListObjectsV2Command({ Bucket, Prefix: prefix, Delimiter: '/', MaxKeys: 10 }));
      await s3.send(new ListObjectsCommand({ Bucket, Prefix: prefix }));
      await s3.send(new ListObjectVersionsCommand({ Bucket, Prefix: prefix }));
      await s3.send(new CopyObjectCommand({ Bucket, Key: `${prefix}copy`, CopySource: `${Bucket}/${prefix}source?versionId=${VersionId}` }));
      const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket, Key: `${prefix}multi` }));
      const { ETag } = await s3.send(new UploadPartCommand({ Bucket, Key: `${prefix}multi`, UploadId, PartNumber: 1, Body: 'part' }));
      await s3.send(new ListPartsCommand({ Bucket, Key: `${prefix}multi`, UploadId }));
      await s3.send(new ListMultipartUploadsCommand({ Bucket, Prefix: prefix }));
      await s3.send(new CompleteMultipartUploadCommand({ Bucket, Key: `${prefix}multi`, UploadId, MultipartUpload: { Parts: [{ ETag, PartNumber: 1 }] } }));
      const aborted = await s3.send(new CreateMultipartUploadCommand({ Bucket, Key: `${prefix}aborted` }));
      await s3.send(new AbortMultipartUploadCommand({ Bucket, Key: `${prefix}aborted`, UploadId: aborted.UploadId }));
      await s3.send(new DeleteObjectCommand({ Bucket, Key: `${prefix}source`, VersionId }));
      await s3.send(new DeleteObjectsCommand({ Bucket, Delete: { Objects: [{ Key: `${prefix}copy` }, { Key: `${prefix}multi` }, { Key: `${prefix}a b+c=d.txt` }, { Key: `${prefix}<&>` }] } }));
    });
    s3.destroy();
    const named = (c: RecordedCall) => [c.command, c.params.Bucket, c.params.Key ?? null, c.params.VersionId ?? null, c.error ?? null];
    const viaHttp = http.calls.slice(httpBefore);
    expect(viaHttp.filter((c) => c.call === undefined)).toEqual([]);
    expect(viaHttp.map((c) => named(c.call!))).toEqual(recorder.calls.slice(middlewareBefore).map(named));
    // What only the HTTP layer can tell: the copy's source and the keys a DeleteObjects names.
    const problems: string[] = [];
    const requests = httpRequests(viaHttp, deployment, problems).map((r) => `${r.request.action} ${r.request.resource.replace(`${deployment.bucketArn}/${prefix}`, '')}`);
    expect(requests).toEqual(expect.arrayContaining(['s3:PutObject copy', 's3:GetObjectVersion source', 's3:DeleteObjectVersion source', 's3:DeleteObject copy', 's3:DeleteObject multi', 's3:DeleteObject a b+c=d.txt', 's3:DeleteObject <&>', 's3:ListMultipartUploadParts multi']));
    expect(problems).toEqual([]);
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
    // Requests that cannot be judged fail the test above; here only the judged ones count.
    const problems: string[] = [];
    const inRun = [...uniqueRequests(runCalls.filter((c) => c.stage !== BILLING), deployment), ...httpRequests(runHttpCalls.filter((c) => c.stage !== BILLING), deployment, problems)];
    for (const { stage, request } of inRun) recorded.set(stage, [...(recorded.get(stage) ?? []), request]);
    const derived = derivedRequests(stack, deployment, { bucket: bed.bucket, runId });
    const billing = [
      ...uniqueRequests(runCalls.filter((c) => c.stage === BILLING), recordedDeployment),
      ...httpRequests(runHttpCalls.filter((c) => c.stage === BILLING), recordedDeployment, problems),
    ].map((r) => r.request);

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
