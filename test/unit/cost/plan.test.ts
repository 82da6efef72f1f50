import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseExperiment } from '../../../src/config/experiment.js';
import { planExperiment, planText, type FileProfile, type ProfileFile } from '../../../src/cost/plan.js';
import { bundledPriceTable } from '../../../src/cost/prices.js';
import { FsBlobStore } from '../../../src/store/fs-store.js';
import { DATASET_A, contextDeployment } from '../../support/plan-fixtures.js';

// One dataset "a": 1000 rows split 80/20 into train/val, a 500-row test file; every text 420 chars (100 tokens).
const experiment = (features: object, extra: object = {}) =>
  parseExperiment(
    JSON.stringify({
      name: 'tiny',
      datasets: {
        a: DATASET_A,
      },
      features,
      model: { hidden: [10] },
      training: { epochs: 2, batchSize: 100, checkpointEvery: 1 },
      stages: [{ name: '1', dataset: 'a' }],
      evaluation: { datasets: ['a'] },
      ...extra,
    }),
    'tiny.json',
  );

const sizes: Record<string, FileProfile> = { full: { rows: 1000, meanChars: 420 }, test: { rows: 500, meanChars: 420 } };
const seen: string[] = [];
const profile: ProfileFile = async (dataset, part, file) => {
  seen.push(`${dataset}/${part}:${file.path}`);
  return sizes[part]!;
};
// The repository's cdk.json deployment (the one source of the plan's memory sizes, prices and limits) with 1769 MB
// featurize Lambdas.
const deployment = (overrides: Record<string, unknown> = {}) => contextDeployment({ featurizeMemoryMb: 1769, ...overrides });
// Round numbers: 1 vCPU (1769 MB), 1000 tokens/s, 5 s per invocation, 0.5 s per GPU step, and a GPU that does one
// training example of the 5,152-parameter MLP in 1/100 s (6 × 5152 × 100 FLOP/s).
const options = {
  model: { featurizePerVcpu: { bow: 1e6, use: 1000, bert: 1000 }, prepareCharsPerSecond: 100_000, gpuStepSeconds: 0.5, gpuFlops: 6 * 5152 * 100 },
  deployment: deployment(),
};

describe('textshift plan (throughput model, hand-computed)', () => {
  it('sizes parts, featurize, training and cost from the data profile', async () => {
    const plan = await planExperiment(experiment({ use: { kind: 'use' } }), profile, bundledPriceTable(), options);
    expect(seen).toEqual(['a/full:a.tsv', 'a/test:a-test.tsv']);
    // sklearn sizes: test = ceil(0.2 × 1000) = 200 -> train 800, val 200; plus the 500-row test file.
    expect(plan.parts.map((p) => [p.part, p.rows, p.shards])).toEqual([['train', 800, 1], ['val', 200, 1], ['test', 500, 1]]);
    // 420 chars / 4.2 = 100 tokens per text at 1000 tokens/s, + 5 s per shard: 800×0.1+5 = 85, 200×0.1+5 = 25, 500×0.1+5 = 55
    expect(plan.parts.map((p) => p.lambdaSeconds)).toEqual([85, 25, 55]);
    const stage = (name: string) => plan.stages.find((s) => s.stage === name)!;
    // prepare: (1000 + 500) × 420 = 630,000 chars / 100,000 per s + 2 s = 8.3 s
    expect(stage('prepare').computeSeconds).toBeCloseTo(8.3, 10);
    // featurize: 85 + 25 + 55 = 165 Lambda s; 3 shards run at once, so the wall time is the longest shard, 85 s
    expect(stage('featurize').computeSeconds).toBe(165);
    expect(stage('featurize').wallSeconds).toBe(85);
    // MLP 512 -> 10 -> 2: 512×10+10 + 10×2+2 = 5,152 parameters.
    // epoch: 8 steps × 0.5 s + 800 examples × 0.01 s + val (1 batch × 0.5 s + 200 × 2/6 × 0.01 s = 1.1667 s) = 13.1667 s
    // job: 30 s setup + 2 epochs × 13.1667 + test eval (0.5 + 500 × 2/6 × 0.01 = 2.1667 s) = 58.5 s; + 180 s start-up = 238.5 s
    expect(stage('train:use').computeSeconds).toBeCloseTo(238.5, 10);
    expect(stage('train:use').detail).toContain('5,152 parameters');
    // report: 20 s + checkpoints.zip streamed at 50 MB/s: 185,472 bytes of checkpoints (below) + (3 × 3 + 3) entries ×
    // 250 bytes of headers = 188,472 bytes, 0.00376944 s
    expect(plan.archive).toEqual({ bytes: 188_472, entries: 12, streamSeconds: 0.00376944 });
    expect(stage('report').computeSeconds).toBeCloseTo(20.00376944, 10);
    // end to end: 8.3 + 85 + 238.5 + 20.00376944 (report) = 351.80376944 s
    expect(plan.wallSeconds).toBeCloseTo(351.80376944, 10);

    const line = (service: string, item: string, st?: string) => plan.cost.lines.find((l) => l.service === service && l.item.startsWith(item) && l.stage === st)!;
    // Batch: 238.5 instance-seconds = 0.06625 h × $0.526 = 0.0348475
    expect(line('Batch', 'g4dn.xlarge', 'train').cost).toBeCloseTo(0.0348475, 10);
    // featurize Lambda at the deployment's 1769 MB: 165 s × 1769/1024 GB = 285.0439 GB-s
    expect(line('Lambda', 'compute', 'featurize').amount).toBeCloseTo((165 * 1769) / 1024, 10);
    // stored: text 630,000 × 0.38 = 239,400; features 1500 rows × 512 × 4 = 3,072,000;
    // checkpoints (2/1 + 1 = 3) × 3 copies × 4 bytes × 5,152 = 185,472, twice (objects + zip) = 370,944 -> 3,682,344
    expect(plan.usage.storedBytes).toBe(3_682_344);
    // transitions, counted from the stage graph for a run started by an upload (cdk-workflow.test.ts executes the
    // synthesized definition and finds the same): the upload's own execution enters 7 states, the named run 2 intake
    // states + Prepare + Featurize Map + 3 shard tasks + Train Map + 1 job + Report = 10, and the Featurize Map's 3
    // child executions (one per batch of one shard) 2 each: starting it and its batch Map = 6; 7 + 10 + 6 = 23
    expect(plan.usage.stateTransitions).toBe(23);
    expect(plan.cost.label).toBe('estimate before running, from the plan throughput model');
    expect(planText(plan)).toContain('Plan for tiny on AWS: about 5m 52s end to end');
  });

  it("sizes the output layer by the experiment's classes, not two", async () => {
    const fiveClasses = { a: { ...DATASET_A, labels: { '0': 0, '1': 1, '2': 2, '3': 3, '4': 4 }, classNames: ['1', '2', '3', '4', '5'] } };
    const plan = await planExperiment(experiment({ use: { kind: 'use' } }, { datasets: fiveClasses }), profile, bundledPriceTable(), options);
    // MLP 512 -> 10 -> 5: 512×10+10 + 10×5+5 = 5,185 parameters.
    expect(plan.stages.find((st) => st.stage === 'train:use')!.detail).toContain('5,185 parameters');
  });

  it('applies --quick caps, per-family subsample caps and BERT truncation', async () => {
    const exp = experiment(
      { bert: { kind: 'bert', model: 'bert-base-uncased', maxLength: 64, shardSize: 300 } },
      { quick: { a: { train: 600 } }, subsample: { bert: { a: { test: 450 } } } },
    );
    const plan = await planExperiment(exp, profile, bundledPriceTable(), { ...options, quick: true });
    expect(plan.quick).toBe(true);
    // train capped to 600 (quick) -> 2 shards of 300; test capped to 450 (subsample) -> 2 shards
    expect(plan.parts.map((p) => [p.part, p.rows, p.shards])).toEqual([['train', 600, 2], ['val', 200, 1], ['test', 450, 2]]);
    // 100 tokens truncated to 64: train 600 × 64 / 1000 tokens/s + 2 shards × 8 s (BERT load) = 54.4 s
    expect(plan.parts[0]!.lambdaSeconds).toBeCloseTo(54.4, 10);
  });

  it('prices one encoder pass for BERT-family families that differ only in pooling, four trainings', async () => {
    const bert = { kind: 'bert', model: 'bert-base-uncased', maxLength: 64, shardSize: 300 };
    const one = await planExperiment(experiment({ bert }), profile, bundledPriceTable(), options);
    const four = await planExperiment(experiment({ bert: { ...bert, pooling: ['mean', 'max', 'cls', 'sep'] } }), profile, bundledPriceTable(), options);
    const stage = (plan: typeof one, name: string) => plan.stages.find((s) => s.stage === name)!;
    // The same shards and Lambda seconds as one family: every pooling comes from the same pass.
    expect(four.parts.map((p) => [p.feature, p.families, p.part, p.shards])).toEqual([
      ['bert_mean', ['bert_mean', 'bert_max', 'bert_cls', 'bert_sep'], 'train', 3],
      ['bert_mean', ['bert_mean', 'bert_max', 'bert_cls', 'bert_sep'], 'val', 1],
      ['bert_mean', ['bert_mean', 'bert_max', 'bert_cls', 'bert_sep'], 'test', 2],
    ]);
    expect(stage(four, 'featurize').computeSeconds).toBe(stage(one, 'featurize').computeSeconds);
    expect(four.usage.stages.featurize![0]!.invocations).toBe(6);
    // ... but a training job per family.
    expect(four.stages.filter((s) => s.stage.startsWith('train:')).map((s) => s.stage)).toEqual(['train:bert_mean', 'train:bert_max', 'train:bert_cls', 'train:bert_sep']);
    expect(planText(four)).toContain('bert_mean+bert_max+bert_cls+bert_sep');
    // Families that differ in truncation are separate passes.
    const apart = await planExperiment(experiment({ a: bert, b: { ...bert, maxLength: 32 } }), profile, bundledPriceTable(), options);
    expect(apart.parts.map((p) => p.feature)).toEqual(['a', 'a', 'a', 'b', 'b', 'b']);
  });

  it("sizes a bert family by its model: the store's record, else a known model, else bert-base (said so)", async () => {
    const bert = (model: string) => experiment({ bert: { kind: 'bert', model, maxLength: 64, shardSize: 300 } });
    const params = (plan: Awaited<ReturnType<typeof planExperiment>>) => plan.stages.find((s) => s.stage === 'train:bert')!.detail;
    // MiniLM (known, not fetched): input 384 -> 384×10+10 + 10×2+2 = 3,872 parameters. At 64 tokens a token costs
    // 2·6·(4·384² + 2·384·1536 + 2·64·384) = 21,823,488 FLOPs against bert-base's 172,228,608: 7.8919× the tokens/s,
    // so train 800 × 64 / 7,891.9 + 3 shards × 8 s = 30.488 s.
    const known = await planExperiment(bert('all-minilm-l6-v2'), profile, bundledPriceTable(), options);
    expect(known.encoders['all-minilm-l6-v2']).toEqual({ shape: { hidden: 384, layers: 6, intermediate: 1536 }, from: 'known' });
    expect(params(known)).toContain('3,872 parameters');
    expect(known.parts[0]!.lambdaSeconds).toBeCloseTo(30.488, 3);
    expect(planText(known)).toContain('model all-minilm-l6-v2: 6 layers, hidden 384, feed-forward 1536 (a known model, not yet fetched)');

    // An installed model's record wins, even over a known name.
    const out = await mkdtemp(join(tmpdir(), 'textshift-plan-models-'));
    try {
      const dims = { hidden: 256, layers: 4, heads: 4, intermediate: 1024, vocab: 100, maxPositions: 512 };
      const record = {
        format: 1, name: 'all-minilm-l6-v2', architecture: 'BertModel', dims, source: 'test', importedAt: '2026-12-01T00:00:00Z',
        sha256: { 'model.safetensors': 'a'.repeat(64), 'onnx/model.onnx': 'b'.repeat(64) },
        verification: { maxAbsDiff: 0, tolerance: 1e-4, sequences: 1 },
      };
      await mkdir(join(out, 'models', 'all-minilm-l6-v2'), { recursive: true });
      await writeFile(join(out, 'models', 'all-minilm-l6-v2', 'textshift-model.json'), JSON.stringify(record));
      const installed = await planExperiment(bert('all-minilm-l6-v2'), profile, bundledPriceTable(), { ...options, models: new FsBlobStore(out) });
      expect(installed.encoders['all-minilm-l6-v2']!.from).toBe('installed');
      // 256×10+10 + 22 = 2,592
      expect(params(installed)).toContain('2,592 parameters');
    } finally {
      await rm(out, { recursive: true, force: true });
    }

    // Neither installed nor known: bert-base, and the plan says it assumed so.
    const unknown = await planExperiment(bert('my-bert'), profile, bundledPriceTable(), options);
    expect(unknown.encoders['my-bert']).toEqual({ shape: { hidden: 768, layers: 12, intermediate: 3072 }, from: 'assumed' });
    expect(params(unknown)).toContain('7,712 parameters');
    expect(planText(unknown)).toContain('not installed and not known: assumed bert-base');
  });

  it('names a split step whose source part does not exist', async () => {
    const exp = experiment({ use: { kind: 'use' } });
    exp.datasets.a!.splits = [{ from: 'nope', testSize: 0.2, train: 'train', test: 'val' }];
    await expect(planExperiment(exp, profile, bundledPriceTable(), options)).rejects.toThrow('dataset "a": split step from "nope"');
  });

  it('caps each family as a run does: quickSubsample under --quick, subsample lifted by --full', async () => {
    const exp = experiment(
      { use: { kind: 'use', shardSize: 100 } },
      { subsample: { use: { a: { train: 500 } } }, quickSubsample: { use: { a: { train: 300, test: 200 } } } },
    );
    const rows = async (mode: { quick?: boolean; full?: boolean }) => (await planExperiment(exp, profile, bundledPriceTable(), { ...options, ...mode })).parts.map((p) => [p.part, p.rows, p.shards]);
    expect(await rows({})).toEqual([['train', 500, 5], ['val', 200, 2], ['test', 500, 5]]);
    expect(await rows({ full: true })).toEqual([['train', 800, 8], ['val', 200, 2], ['test', 500, 5]]);
    expect(await rows({ quick: true })).toEqual([['train', 300, 3], ['val', 200, 2], ['test', 200, 2]]);
    expect(await rows({ quick: true, full: true })).toEqual([['train', 300, 3], ['val', 200, 2], ['test', 200, 2]]);
  });

  it("prices the deployment's choices from cdk.json: instance type, market and every function's memory", async () => {
    const spot = await planExperiment(experiment({ use: { kind: 'use' } }), profile, bundledPriceTable(), {
      ...options,
      deployment: deployment({ trainerCompute: 'cpu', trainerSpot: true, prepareMemoryMb: 1024 }),
    });
    expect(spot.cost.lines.find((l) => l.service === 'Batch')!.priceKey).toBe('ec2.m6i.xlarge.spot');
    expect(spot.stages.find((s) => s.stage === 'prepare')!.where).toBe('Lambda 1024 MB');
    // 8.3 s of Prepare at the configured 1024 MB
    expect(spot.cost.lines.find((l) => l.item === 'compute' && l.stage === 'prepare')!.amount).toBeCloseTo(8.3, 10);
  });
});
