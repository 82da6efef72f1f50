// Upload -> run, through the real S3 -> EventBridge -> Step Functions path: the synthesized bucket notification,
// rule (event pattern + input transformer) and state machine deployed into the emulator by the test deployer, or the
// deployed stack in a real account (TEXTSHIFT_IT_AWS=1 with TEXTSHIFT_IT_BUCKET and TEXTSHIFT_IT_STATE_MACHINE_ARN).
// The emulator cannot run Lambda, so the run execution fails at Prepare there; these tests only look at which
// executions start and with what input.
import { createHash, randomBytes } from 'node:crypto';
import { DeleteObjectsCommand, PutObjectCommand, paginateListObjectsV2 } from '@aws-sdk/client-s3';
import { StartExecutionCommand, StopExecutionCommand } from '@aws-sdk/client-sfn';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { SYNTH_TIMEOUT } from '../support/cdk-template.js';
import { onRealAws } from './setup/aws.js';
import { targetClients } from './support/clients.js';
import { EMULATOR_EVENT_ID_FIELD, deployToEmulator, synthesizeStack } from './support/deploy.js';
import { type Execution, executionsSince, waitFor } from './support/executions.js';

const target = inject('awsEmulator');
// EventBridge delivery plus the intake execution take about a second in LocalStack; AWS can take longer.
const DELIVERY_TIMEOUT_MS = onRealAws() ? 120_000 : 30_000;
// How long an upload that should start nothing is given to start something anyway.
const QUIET_MS = onRealAws() ? 30_000 : 5_000;

// moto (the emulator fallback) accepts the bucket notification, rule and state machine, but an upload starts no
// execution there (measured with moto 5.2.5): these tests need LocalStack or AWS.
const DELIVERY_HINT = target.startsWith('moto') ? ' (moto starts no execution from an S3 upload; run against LocalStack)' : '';

const clients = targetClients();
let bucket = '';
let stateMachineArn = '';
let removeDeployment: (() => Promise<void>) | undefined;
const uploaded: string[] = [];
const since = new Date();

beforeAll(async () => {
  if (onRealAws()) {
    const b = process.env.TEXTSHIFT_IT_BUCKET;
    const sm = process.env.TEXTSHIFT_IT_STATE_MACHINE_ARN;
    if (!b || !sm) throw new Error('TEXTSHIFT_IT_AWS=1 needs TEXTSHIFT_IT_BUCKET and TEXTSHIFT_IT_STATE_MACHINE_ARN (the deployed stack\'s outputs)');
    [bucket, stateMachineArn] = [b, sm];
    return;
  }
  const deployment = await deployToEmulator(synthesizeStack(), clients);
  ({ bucket, stateMachineArn } = deployment);
  removeDeployment = deployment.remove;
}, SYNTH_TIMEOUT);

afterAll(async () => {
  // Stop any run execution still going (in the emulator they fail at Prepare: there is no Lambda to invoke).
  for (const e of await executionsSince(clients.sfn, stateMachineArn, since).catch(() => [])) {
    if (e.status === 'RUNNING' && mine(e)) await clients.sfn.send(new StopExecutionCommand({ executionArn: e.arn })).catch(() => undefined);
  }
  if (removeDeployment) await removeDeployment();
  else if (uploaded.length > 0) await removeFromRealBucket();
  clients.destroy();
});

/** Marks this file's uploads and what they started (a real account's bucket may see other traffic). */
const tag = `it-${randomBytes(4).toString('hex')}`;
const mine = (e: Execution) => JSON.stringify(e.input).includes(tag);

/**
 * Uploads a small file; returns the version id S3 gave it (the bucket is versioned). Not a valid experiment on purpose:
 * on a real account the run stops at Prepare.
 */
async function upload(key: string, body: unknown = { name: tag }): Promise<string> {
  const put = await clients.s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: JSON.stringify(body), ContentType: 'application/json' }));
  uploaded.push(key);
  if (!put.VersionId) throw new Error(`uploading ${key} returned no version id: is the bucket versioned?`);
  return put.VersionId;
}

/** Deletes this file's uploads and whatever the runs they started wrote (their run ids start with the tag). */
async function removeFromRealBucket(): Promise<void> {
  const keys = [...uploaded];
  for await (const page of paginateListObjectsV2({ client: clients.s3 }, { Bucket: bucket, Prefix: `runs/${tag}` })) {
    keys.push(...(page.Contents ?? []).map((o) => o.Key!));
  }
  for (let i = 0; i < keys.length; i += 1000) {
    await clients.s3.send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: keys.slice(i, i + 1000).map((Key) => ({ Key })) } }));
  }
}

const md5 = (s: string) => createHash('md5').update(s).digest('hex');

/** The run id the intake derives: `<file name up to its first dot>-md5(<key>#<uploadId>)`. */
function runIdOf(key: string, uploadId: string): string {
  return `${key.split('/').at(-1)!.split('.')[0]}-${md5(`${key}#${uploadId}`)}`;
}

let seen: Execution[] = [];
async function executions(): Promise<Execution[]> {
  seen = (await executionsSince(clients.sfn, stateMachineArn, since)).filter(mine);
  return seen;
}
const summary = () => JSON.stringify(seen.map((e) => ({ name: e.name, status: e.status, input: e.input })));

/** Waits for the intake execution of an upload (of `version`, when given) and the run execution it starts; returns both. */
async function intakeAndRun(key: string, version?: string): Promise<{ intake: Execution; run: Execution; runId: string }> {
  return waitFor(
    `the executions started by uploading ${key}${version ? ` (version ${version})` : ''} to ${target}${DELIVERY_HINT}`,
    async () => {
      const all = await executions();
      const input = (e: Execution) => e.input as { key?: string; uploadId?: string };
      const intake = all.find((e) => input(e).key === key && (version === undefined || input(e).uploadId === version));
      if (!intake || intake.status === 'RUNNING') return undefined;
      const runId = runIdOf(key, (intake.input as { uploadId: string }).uploadId);
      const run = all.find((e) => e.name === runId);
      return run ? { intake, run, runId } : undefined;
    },
    { timeoutMs: DELIVERY_TIMEOUT_MS, describe: summary },
  );
}

describe(`S3 upload -> EventBridge -> state machine (${target})`, () => {
  it('uploading experiments/<name>.json starts exactly one execution with {bucket, key, uploadId: its version id}, whose intake starts the run, pinned to that version, as a second execution named by the run id', async () => {
    const key = `experiments/${tag}.json`;
    const versionId = await upload(key);
    const { intake, run, runId } = await intakeAndRun(key);

    // In the emulator the rule also passes the event id (a LocalStack 4.14 quirk the deployer works around).
    const eventId = onRealAws() ? {} : { [EMULATOR_EVENT_ID_FIELD]: expect.any(String) };
    expect(intake.input).toEqual({ bucket, key, uploadId: versionId, ...eventId });
    expect(intake.status).toBe('SUCCEEDED');
    expect(run.input).toEqual({ experimentKey: key, uploadId: versionId, experimentVersion: versionId, runId });

    // Nothing else arrives later: one delivery, one intake, one run.
    await new Promise((r) => setTimeout(r, QUIET_MS));
    const all = await executions();
    expect(all.map((e) => e.name).sort()).toEqual([intake.name, runId].sort());
  });

  it('a second delivery of the same upload ends as "Duplicate upload" and starts no second run', async () => {
    const key = `experiments/${tag}-dup.json`;
    await upload(key);
    const { intake, runId } = await intakeAndRun(key);

    // What a redelivered event gives the machine: the same {bucket, key, uploadId}.
    const again = await clients.sfn.send(new StartExecutionCommand({ stateMachineArn, input: JSON.stringify(intake.input) }));
    const redelivery = await waitFor(
      'the redelivered intake execution to end',
      async () => (await executions()).find((e) => e.arn === again.executionArn && e.status !== 'RUNNING'),
      { timeoutMs: DELIVERY_TIMEOUT_MS, describe: summary },
    );
    expect(redelivery.status).toBe('SUCCEEDED');
    expect(redelivery.output).toMatchObject({ runId, error: { Error: 'StepFunctions.ExecutionAlreadyExistsException' } });
    const forKey = (await executions()).filter((e) => JSON.stringify(e.input).includes(key));
    expect(forKey.filter((e) => e.name === runId)).toHaveLength(1);
    expect(forKey).toHaveLength(3);
  });

  it('two quick uploads of one key start two runs, each pinned to the version it uploaded (not the latest)', async () => {
    const key = `experiments/${tag}-twice.json`;
    const first = await upload(key, { name: tag, attempt: 1 });
    const second = await upload(key, { name: tag, attempt: 2 });
    expect(second).not.toBe(first);
    const runs = [await intakeAndRun(key, first), await intakeAndRun(key, second)];
    expect(runs.map((r) => (r.run.input as { experimentVersion: string }).experimentVersion)).toEqual([first, second]);
    expect(new Set(runs.map((r) => r.runId)).size).toBe(2);
  });

  it('an upload whose file name has other characters than letters, digits and . _ - fails its intake naming the file, and starts no run', async () => {
    // Both are valid execution names: before the intake refused them, each started a run Prepare and MarkFailed refused.
    const keys = [`experiments/${tag}(1).json`, `experiments/${tag}-é.json`];
    for (const key of keys) await upload(key);
    // The event may carry the key URL-encoded, as S3's notifications do (LocalStack 4.14 sends `(` as %28).
    const encoded = (key: string) => key.split('/').map((s) => encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)).join('/');
    const isKey = (sent: unknown, key: string) => sent === key || sent === encoded(key);
    const intakeOf = (all: Execution[], key: string) => all.find((e) => isKey((e.input as { key?: unknown }).key, key) && e.status !== 'RUNNING');
    const intakes = await waitFor(
      `the intake executions of ${keys.join(' and ')} to end${DELIVERY_HINT}`,
      async () => {
        const all = await executions();
        const ended = keys.map((key) => intakeOf(all, key));
        return ended.every((e) => e !== undefined) ? (ended as Execution[]) : undefined;
      },
      { timeoutMs: DELIVERY_TIMEOUT_MS, describe: summary },
    );
    for (const intake of intakes) {
      expect({ status: intake.status, error: intake.error, cause: intake.cause }).toEqual({
        status: 'FAILED',
        error: 'InvalidExperimentFileName',
        cause: `${(intake.input as { key: string }).key}: an experiment file name may only use letters, digits and . _ -, since the run and every key it writes are named after it; rename the file and upload it again`,
      });
    }
    await new Promise((r) => setTimeout(r, QUIET_MS));
    const all = await executions();
    const naming = (key: string) => all.filter((e) => [key, encoded(key)].some((k) => JSON.stringify(e.input).includes(JSON.stringify(k))));
    for (const [i, key] of keys.entries()) expect(naming(key).map((e) => e.name), key).toEqual([intakes[i]!.name]);
  });

  it('uploads outside experiments/*.json (datasets/, runs/, .txt, .json.bak) start no execution', async () => {
    const ignored = [`datasets/${tag}.json`, `experiments/${tag}.txt`, `experiments/${tag}.json.bak`, `runs/${tag}/experiments/x.json`];
    for (const key of ignored) await upload(key);
    // A matching upload after them: once its execution has started, the earlier events have been through the rule.
    const control = `experiments/${tag}-control.json`;
    await upload(control);
    await intakeAndRun(control);
    await new Promise((r) => setTimeout(r, QUIET_MS));

    const started = (await executions()).map((e) => JSON.stringify(e.input));
    for (const key of ignored) expect(started.filter((input) => input.includes(key)), key).toEqual([]);
  });
});
