// Failure paths of the synthesized state machine, run as in workflow.test.ts (aws-local-stepfunctions; Lambda
// handlers in-process; the Batch trainer as a local process; S3 in the emulator) on the tiny experiment:
// a trainer that fails ends in MarkFailed without losing anything, re-running the run id resumes from the cache,
// and a shard that fails once with a transient error is retried by the definition's own Retry. Retry waits are
// overridden to 0 ms.
import { randomBytes } from 'node:crypto';
import { paginateListObjectsV2 } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { classifyError } from '../../src/errors/classify.js';
import type { Results } from '../../src/run/records.js';
import type { Manifest } from '../../src/run/manifest.js';
import { SYNTH_TIMEOUT } from '../support/cdk-template.js';
import { onRealAws } from './setup/aws.js';
import { targetClients } from './support/clients.js';
import { type SynthesizedStack, synthesizeStack } from './support/deploy.js';
import { type LocalRunBed, localRunBed } from './support/local-run-bed.js';
import type { LocalExecution } from './support/local-workflow.js';

const target = inject('awsEmulator');
const SKIP = onRealAws();
if (SKIP) console.log('[integration] faults.test.ts skipped on real AWS: it runs the Lambda handlers in-process and the trainer as a local process against an emulator');

const TRAINER_STEP_TIMEOUT = 120_000;

describe.skipIf(SKIP)(`failures in the synthesized state machine (aws-local-stepfunctions, handlers in-process, trainer as a local process, S3 in ${target})`, () => {
  const clients = targetClients();
  let bed: LocalRunBed;
  // The default GPU job definition (TEXTSHIFT_REQUIRE_GPU=1) and the CPU option; this machine has no GPU.
  let gpu: SynthesizedStack;
  let cpu: SynthesizedStack;

  beforeAll(async () => {
    bed = await localRunBed(clients);
    gpu = synthesizeStack();
    cpu = synthesizeStack({ trainerCompute: 'cpu' });
  }, SYNTH_TIMEOUT);

  afterAll(async () => {
    await bed?.dispose();
    clients.destroy();
  });

  /** Every object in the bucket with its ETag. */
  async function snapshot(): Promise<Map<string, string>> {
    const out = new Map<string, string>();
    for await (const page of paginateListObjectsV2({ client: clients.s3 }, { Bucket: bed.bucket })) {
      for (const o of page.Contents ?? []) out.set(o.Key!, o.ETag!);
    }
    return out;
  }
  const readJson = async <T>(key: string) => JSON.parse((await bed.store.getOrThrow(key)).toString('utf8')) as T;
  const topStates = (e: LocalExecution) => e.entered.filter((s) => s.index === undefined && s.child === undefined).map((s) => s.state);
  const featurizeResults = (e: LocalExecution) => e.lambdaCalls.filter((c) => c.fn === 'featurize' && c.result).map((c) => c.result as { cached: boolean });

  describe('a trainer failure, then a re-run of the same run id', () => {
    const runId = `tiny-fault-${randomBytes(4).toString('hex')}`;
    let failed: LocalExecution;
    let beforeTraining = new Map<string, string>();

    it('goes to MarkFailed: the GPU job definition on a host without a GPU exits 1, the manifest names Train and the cause', async () => {
      failed = await bed.workflow(gpu).execute({ experimentKey: bed.experimentKey, runId, quick: true }, runId, async (call, invoke) => {
        if (call.fn === 'trainer') beforeTraining = await snapshot();
        return invoke();
      });

      expect(failed.status).toBe('FAILED');
      expect(failed.jobs).toHaveLength(1);
      expect(failed.jobs[0]!.exitCode).toBe(1);
      // The trainer's own message, which on AWS is in the job's CloudWatch log stream.
      expect(failed.jobs[0]!.stderr).toContain('TEXTSHIFT_REQUIRE_GPU=1 but TensorFlow.js is not running on a GPU');
      const states = failed.entered.map((s) => s.state);
      expect(states).toContain('Train failed');
      expect(states.slice(states.indexOf('Train failed') + 1).some((s) => s.startsWith('MarkFailed'))).toBe(true);
      expect(topStates(failed)).not.toContain('Report');
      expect(failed.error?.Cause).toContain('Essential container in task exited');

      const markFailed = failed.lambdaCalls.filter((c) => c.fn === 'mark-failed');
      expect(markFailed).toHaveLength(1);
      expect(markFailed[0]!.event).toMatchObject({ runId, stage: 'Train', error: { Error: 'States.TaskFailed' } });
      const manifest = await readJson<Manifest>(`runs/${runId}/manifest.json`);
      expect(manifest.status).toBe('failed');
      // The job exited 1 (a ConfigError: no GPU), not 75: recorded as not retryable.
      expect(manifest.failure).toEqual({ stage: 'Train', error: 'States.TaskFailed: Essential container in task exited', errorName: 'States.TaskFailed', retryable: false });
      expect(manifest.stages.Train).toMatchObject({ status: 'failed', error: 'States.TaskFailed: Essential container in task exited', errorName: 'States.TaskFailed', retryable: false });
    }, TRAINER_STEP_TIMEOUT);

    it('keeps every artifact written before the failure: splits, plan, vocabulary, shard results and cached features', async () => {
      const keys = [...beforeTraining.keys()];
      // What Prepare and Featurize wrote, so the comparison below is not vacuous.
      for (const part of ['splits/', 'shards/', 'featurized/', 'features/bow/vocabulary.json', 'prepare.json', 'manifest.json']) {
        expect(keys.some((k) => k.startsWith(`runs/${runId}/${part}`)), part).toBe(true);
      }
      expect(keys.filter((k) => k.startsWith('cache/features/'))).toHaveLength(6);
      const after = await snapshot();
      // MarkFailed updates the run's manifest, releases its lease and frees its slot in the spend ledger; everything
      // else is byte-identical.
      const records = (k: string) => [`runs/${runId}/manifest.json`, `runs/${runId}/lock.json`, 'spend/ledger.json'].includes(k);
      for (const [key, etag] of beforeTraining) {
        expect(after.has(key), key).toBe(true);
        if (!records(key)) expect(after.get(key), key).toBe(etag);
      }
    });

    it('re-running it from the console input {"experiment", "runId"} resumes: Prepare reuses its plan, all 6 shards come from the cache, training and report finish', async () => {
      const resumed = await bed.workflow(cpu).execute({ experiment: bed.experimentKey, runId }, `resume-${runId}`);

      expect(resumed.error).toBeUndefined();
      expect(resumed.status).toBe('SUCCEEDED');
      expect(topStates(resumed)).toEqual(['Route input', 'Resume run', 'Prepare', 'Featurize', 'Train', 'Report']);
      const prepareNow = resumed.lambdaCalls.find((c) => c.fn === 'prepare')!;
      expect(prepareNow.result).toEqual(failed.lambdaCalls.find((c) => c.fn === 'prepare')!.result);
      // The count that shows the resume: the first execution computed 6 shards, this one computed none.
      expect(featurizeResults(failed).map((r) => r.cached)).toEqual(Array(6).fill(false));
      expect(featurizeResults(resumed).map((r) => r.cached)).toEqual(Array(6).fill(true));

      const manifest = await readJson<Manifest>(`runs/${runId}/manifest.json`);
      expect(manifest.status).toBe('succeeded');
      expect(manifest.failure).toBeUndefined();
      expect(manifest.encoded).toEqual({ bow: { families: ['bow'], encoder: expect.stringMatching(/^bow:/), texts: 0, cachedShards: 6, computedShards: 0 } });
      const results = await readJson<Results>(`runs/${runId}/report/results.json`);
      expect(results.models.map((m) => m.model)).toEqual(['bow_1', 'bow_2']);
      // Prepare's outputs were not rewritten.
      const after = await snapshot();
      for (const [key, etag] of beforeTraining) {
        if (key.startsWith(`runs/${runId}/splits/`) || key.startsWith(`runs/${runId}/shards/`)) expect(after.get(key), key).toBe(etag);
      }
    }, TRAINER_STEP_TIMEOUT);
  });

  it('a featurize shard that fails once with a dropped connection (TransientError) is retried by the definition\'s Retry, and the run succeeds', async () => {
    const runId = `tiny-retry-${randomBytes(4).toString('hex')}`;
    const flaky = `runs/${runId}/shards/bow/imdb/train/00000.json`;
    let thrown = 0;
    const execution = await bed.workflow(cpu).execute({ experimentKey: bed.experimentKey, runId, quick: true }, runId, async (call, invoke) => {
      if (call.fn === 'featurize' && (call.event as { shardKey: string }).shardKey === flaky && thrown++ === 0) {
        // What the handler lets out when S3's connection resets: the socket error, classified.
        throw classifyError(Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET', errno: -104, syscall: 'read' }));
      }
      return invoke();
    });

    expect(execution.error).toBeUndefined();
    expect(execution.status).toBe('SUCCEEDED');
    expect(execution.retried).toEqual(['Featurize shard']);
    const calls = execution.lambdaCalls.filter((c) => c.fn === 'featurize' && (c.event as { shardKey: string }).shardKey === flaky);
    expect(calls.map((c) => c.error ?? 'ok')).toEqual(['TransientError: read ECONNRESET', 'ok']);
    expect(execution.lambdaCalls.filter((c) => c.fn === 'mark-failed')).toEqual([]);
    expect(topStates(execution).at(-1)).toBe('Report');
    expect((await readJson<Manifest>(`runs/${runId}/manifest.json`)).status).toBe('succeeded');
  }, TRAINER_STEP_TIMEOUT);
});
