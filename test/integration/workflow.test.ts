// A whole run through the synthesized state machine: the definition from the `cdk synth` template executed by
// aws-local-stepfunctions (support/local-workflow.ts says why not the emulator's Step Functions), the real Lambda
// handlers called in-process, the Batch training job run as a local trainer process (the image's entry, the job
// definition's command and environment), every object in the emulator's S3; the tiny experiment on real data.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { S3BlobStore } from '../../src/store/s3-store.js';
import type { Results } from '../../src/run/records.js';
import type { Manifest } from '../../src/run/manifest.js';
import { readShardPlan } from '../../src/run/shard-plan.js';
import type { PrepareOutput } from '../../src/workflow/stage-io.js';
import { SYNTH_TIMEOUT } from '../support/cdk-template.js';
import { onRealAws } from './setup/aws.js';
import { targetClients } from './support/clients.js';
import { synthesizeStack } from './support/deploy.js';
import { type LocalRunBed, localRunBed } from './support/local-run-bed.js';
import { zipEntries } from '../support/zip.js';
import type { LocalExecution } from './support/local-workflow.js';

const target = inject('awsEmulator');
const SKIP = onRealAws();
if (SKIP) console.log('[integration] workflow.test.ts skipped on real AWS: it runs the Lambda handlers in-process and the trainer as a local process against an emulator');

/** The states entered outside Map iterations, and how many iterations entered each inner state. */
function stateSequence(e: LocalExecution) {
  const inner: Record<string, number> = {};
  for (const s of e.entered) if (s.index !== undefined) inner[s.state] = (inner[s.state] ?? 0) + 1;
  return { top: e.entered.filter((s) => s.index === undefined && s.child === undefined).map((s) => s.state), inner };
}

describe.skipIf(SKIP)(`the synthesized state machine in aws-local-stepfunctions: Lambda handlers in-process, Batch trainer as a local process, S3 in ${target}`, () => {
  const clients = targetClients();
  let bed: LocalRunBed;
  let store: S3BlobStore;
  let execution: LocalExecution;
  const runId = `tiny-it-${randomBytes(4).toString('hex')}`;
  let shardCount = 0;

  beforeAll(async () => {
    bed = await localRunBed(clients);
    store = bed.store;
    // The CPU job queue option: its job definition does not require a GPU, which this machine lacks.
    const workflow = bed.workflow(synthesizeStack({ trainerCompute: 'cpu' }));
    // The input shape of an execution the intake started, plus `quick` (the experiment's documented small caps).
    execution = await workflow.execute({ experimentKey: bed.experimentKey, runId, quick: true }, runId);
    shardCount = execution.lambdaCalls.filter((c) => c.fn === 'featurize').length;
  }, SYNTH_TIMEOUT + 120_000);

  afterAll(async () => {
    await bed?.dispose();
    clients.destroy();
  });

  it('succeeds through Route input -> Run input -> Prepare -> Featurize (one iteration per shard) -> Train (one job for bow) -> Report', () => {
    expect(execution.error).toBeUndefined();
    expect(execution.status).toBe('SUCCEEDED');
    const { top, inner } = stateSequence(execution);
    expect(top).toEqual(['Route input', 'Run input', 'Prepare', 'Featurize', 'Train', 'Report']);
    // tiny.json: one BoW family over six dataset parts, each small enough for a single shard.
    expect(shardCount).toBe(6);
    expect(inner).toEqual({ 'Featurize shard': 6, 'Train feature family': 1 });
    expect(execution.retried).toEqual([]);
    expect(execution.output).toEqual({
      runId,
      resultsKey: `runs/${runId}/report/results.json`,
      reportKey: `runs/${runId}/report/report.html`,
      costKey: `runs/${runId}/report/cost.json`,
      archiveKey: `runs/${runId}/checkpoints.zip`,
    });
  });

  it('passed only keys between states: Prepare planned the shards (in S3) that Featurize was invoked with', async () => {
    const prepare = execution.lambdaCalls.find((c) => c.fn === 'prepare')!;
    expect(prepare.event).toEqual({ prepareInput: { experimentKey: 'experiments/tiny.json', runId, quick: true }, execution: expect.stringMatching(/^arn:aws:states:.*:execution:/) });
    const { shardPlan } = prepare.result as PrepareOutput;
    expect(shardPlan).toEqual({ key: `runs/${runId}/shards.json`, count: 6, batches: 6, resultsPrefix: `runs/${runId}/featurize-map` });
    const planned = await readShardPlan(store, runId, shardPlan);
    const featurized = execution.lambdaCalls.filter((c) => c.fn === 'featurize').map((c) => (c.event as { shardKey: string }).shardKey);
    expect(featurized.sort()).toEqual([...planned].sort());
    for (const c of execution.lambdaCalls.filter((c) => c.fn === 'featurize')) expect(c.result).toMatchObject({ cached: false });
  });

  it('trained bow in one Batch job run as a local trainer process: the job parameters became its command line', () => {
    expect(execution.jobs).toHaveLength(1);
    const [job] = execution.jobs;
    expect(job!.args).toEqual(['--run-id', runId, '--feature', 'bow']);
    expect(job!.exitCode).toBe(0);
    expect(job!.stderr).toContain('no native TensorFlow binding; training on the WebAssembly engine');
    expect(JSON.parse(job!.stdout.trim().split('\n').at(-1)!)).toEqual({ runId, feature: 'bow', resultKey: `runs/${runId}/models/bow.result.json` });
  });

  it('writes runs/<id>/report/results.json: both models evaluated on both test splits of the quick caps', async () => {
    const results = JSON.parse((await store.getOrThrow(`runs/${runId}/report/results.json`)).toString('utf8')) as Results;
    expect(results.runId).toBe(runId);
    expect(results.experiment).toBe('tiny');
    expect(results.models.map((m) => m.model)).toEqual(['bow_1', 'bow_2']);
    for (const m of results.models) expect(m.epochs.map((e) => e.epoch)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(results.evaluations.map((e) => [e.model, e.dataset, e.n])).toEqual([
      ['bow_1', 'sst2', 300],
      ['bow_1', 'imdb', 300],
      ['bow_2', 'sst2', 300],
      ['bow_2', 'imdb', 300],
    ]);
    // Fine-tuning on IMDB must help on IMDB; a broken pipeline (shuffled labels, wrong rows) sits at chance.
    const acc = (model: string, dataset: string) => results.evaluations.find((e) => e.model === model && e.dataset === dataset)!.accuracy;
    expect(acc('bow_2', 'imdb')).toBeGreaterThan(0.7);
    expect(acc('bow_2', 'imdb')).toBeGreaterThan(acc('bow_1', 'imdb'));
  });

  it('writes the report files, TensorBoard logs and a succeeded manifest', async () => {
    const report = (await store.list(`runs/${runId}/report/`)).map((o) => o.key.slice(`runs/${runId}/report/`.length)).sort();
    expect(report).toEqual(
      [
        'confusion/bow_1__imdb.svg',
        'confusion/bow_1__sst2.svg',
        'confusion/bow_2__imdb.svg',
        'confusion/bow_2__sst2.svg',
        'cost.json',
        'cost.md',
        'report.html',
        'results.csv',
        'results.json',
        'results.md',
      ].sort(),
    );
    expect((await store.getOrThrow(`runs/${runId}/report/results.csv`)).toString('utf8').split('\n')[0]).toBe('model,sst2,imdb');
    expect((await store.getOrThrow(`runs/${runId}/report/report.html`)).toString('utf8')).toContain('bow_2');
    for (const model of ['bow_1', 'bow_2']) {
      expect((await store.list(`runs/${runId}/logs/${model}/`)).map((o) => o.key)).toEqual([expect.stringMatching(/\/events\.out\.tfevents\.\d+\./)]);
    }
    const manifest = JSON.parse((await store.getOrThrow(`runs/${runId}/manifest.json`)).toString('utf8')) as Manifest;
    expect(manifest.status).toBe('succeeded');
    expect(manifest.quick).toBe(true);
    for (const s of ['prepare', 'train:bow', 'report']) expect(manifest.stages[s]?.status, s).toBe('succeeded');
    expect(manifest.encoded).toEqual({
      bow: { families: ['bow'], encoder: expect.stringMatching(/^bow:/), texts: 800 + 200 + 300 + 1200 + 300 + 300, cachedShards: 0, computedShards: 6 },
    });
  });

  it('writes runs/<id>/checkpoints.zip with every checkpoint (epochs 2, 4, 6) and the best model of bow_1 and bow_2', async () => {
    const names = await zipEntries(await store.getOrThrow(`runs/${runId}/checkpoints.zip`));
    for (const model of ['bow_1', 'bow_2']) {
      for (const epoch of ['epoch_2', 'epoch_4', 'epoch_6']) {
        for (const f of ['model.safetensors', 'optimizer.safetensors', 'state.json']) expect(names).toContain(`${model}/${epoch}/${f}`);
      }
      expect(names).toContain(`${model}/best/model.safetensors`);
    }
  });
});
