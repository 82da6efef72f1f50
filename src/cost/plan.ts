import type { DatasetConfig, Experiment, FileConfig } from '../config/experiment.js';
import type { PlanDeployment } from '../config/deployment.js';
import { scanTable } from '../data/read-table.js';
import { splitSizes } from '../data/split.js';
import type { StageUsage } from '../run/records.js';
import type { BlobStore } from '../store/blob-store.js';
import { classCount, familyCap, neededParts, POOLING_MODES } from '../config/experiment.js';
import { encoderPasses, passLabel } from '../config/encoder-passes.js';
import { estimateStateTransitions } from './transitions.js';
import { computeCost, DEFAULT_COST_OPTIONS, formatAmount, formatMoney, type CostOptions, type CostReport, type RunUsage } from './cost.js';
import { formatBytes, formatDuration, alignColumns } from '../format/text.js';
import type { PriceTable } from './prices.js';
import { ConfigError } from '../errors/index.js';
import { shardRows } from '../features/throughput.js';
import { speedupOverBertBase } from '../features/bert/shape.js';
import { encoderShapeOf, type ResolvedShape } from '../models/encoder-shape.js';

/**
 * The throughput model of `textshift plan`. Every number is an assumption stated here, not a measurement of the
 * run to come; override any of them (`PlanOptions.model`) when you have better ones.
 */
export interface ThroughputModel {
  /** Characters per WordPiece/SentencePiece token of English text (bert-base-uncased on IMDB reviews ≈ 4.2). */
  charsPerToken: number;
  /** Featurize throughput of one Lambda vCPU: BoW in characters/s, encoders in tokens/s (BERT: of bert-base, scaled to the family's model). */
  featurizePerVcpu: { bow: number; use: number; bert: number };
  /** Fixed seconds per featurize invocation: cold start, loading the vocabulary or encoder weights. */
  featurizeInvocationSeconds: { bow: number; use: number; bert: number };
  /** Share of each extra vCPU an encoder uses (BoW counting is single-threaded and gets none). */
  multicoreEfficiency: number;
  /** Prepare reads, parses, splits and stores the datasets at this many characters per second. */
  prepareCharsPerSecond: number;
  /** Report stage seconds besides streaming checkpoints.zip (results, HTML, cost report). */
  reportSeconds: number;
  /** Sustained FP32 FLOP/s of the GPU on small-batch MLP training (T4 peak 8.1 TFLOP/s; ~25% reached). */
  gpuFlops: number;
  /** Fixed seconds per optimizer step or inference batch (kernel launches, host-device copies). */
  gpuStepSeconds: number;
  /** Batch of the forward-only passes (validation and test evaluation). */
  evalBatchSize: number;
  /** Seconds inside each training job before the first step: runtime start, downloading features. */
  jobSetupSeconds: number;
  /** Fraction of text bytes left after gzip (stored splits). */
  gzipRatio: number;
  /** Distinct vocabulary terms per token of a document (BoW CSR non-zeros). */
  distinctTermsPerToken: number;
  /** Report streams checkpoints.zip (S3 reads, zip, S3 multipart upload) at this many bytes per second. */
  archiveBytesPerSecond: number;
  /** Memory (MiB) a stage's runtime takes before it holds any data: Node, TensorFlow.js and CUDA in a training job. */
  runtimeMemoryMiB: { trainer: number; report: number };
}

/**
 * Defaults and where they come from: USE-lite embeds ~1000 short sentences (~25 tokens) in 6 s on 2 cores
 * (an early measurement) -> ~2,500 tokens/s per vCPU; bert-base costs ~0.2 GFLOP per token and ONNX Runtime reaches
 * ~40 GFLOP/s per AVX2 vCPU -> ~200 tokens/s; a JS CountVectorizer tokenizes ~10 MB of text per second.
 */
export const DEFAULT_THROUGHPUT: ThroughputModel = {
  charsPerToken: 4.2,
  featurizePerVcpu: { bow: 10_000_000, use: 2_500, bert: 200 },
  featurizeInvocationSeconds: { bow: 1, use: 5, bert: 8 },
  multicoreEfficiency: 0.7,
  prepareCharsPerSecond: 5_000_000,
  reportSeconds: 20,
  gpuFlops: 2e12,
  gpuStepSeconds: 0.003,
  evalBatchSize: 1024,
  jobSetupSeconds: 30,
  gzipRatio: 0.38,
  distinctTermsPerToken: 0.6,
  // An assumption, not measured on AWS: one Lambda's sequential S3 read feeding a 4-part-concurrent upload.
  archiveBytesPerSecond: 50_000_000,
  // The default experiment's whole local run (every stage, in one process) peaks at 1.11 GB RSS (docs/benchmarks.md).
  runtimeMemoryMiB: { trainer: 1024, report: 256 },
};

/** Size of one source file of a dataset. */
export interface FileProfile {
  rows: number;
  /** Mean characters per text. */
  meanChars: number;
}

/** Counts a dataset file's rows and text length; `readingProfiler` reads the file, tests pass numbers. */
export type ProfileFile = (dataset: string, part: string, file: FileConfig, spec: DatasetConfig) => Promise<FileProfile>;

/** Reads each dataset file from `data` through the data module (the parser a run uses) to count rows and text length. */
export function readingProfiler(data: BlobStore): ProfileFile {
  return async (_dataset, _part, file, spec) => {
    // Streamed row by row (the parser a run uses), so sizing a large file holds none of its text.
    let chars = 0;
    const { rows } = await scanTable(data, file, { labels: spec.labels, onBadRow: spec.onBadRow }, (example) => {
      chars += example.text.length;
    });
    return { rows, meanChars: rows === 0 ? 0 : chars / rows };
  };
}

export interface PlanOptions {
  /** What the deployment runs (cdk.json through `planDeploymentOf`): prices, memory sizes, concurrency, cost limits. */
  deployment: PlanDeployment;
  /** Apply the experiment's `quick` and `quickSubsample` caps, as `textshift run --quick` does. */
  quick?: boolean;
  /** Lift the per-family `subsample` caps, as `textshift run --full` does. */
  full?: boolean;
  model?: Partial<ThroughputModel>;
  /** Pricing choices beyond the deployment's (start-up seconds, retention), or overriding them (`--spot`). */
  cost?: Partial<CostOptions>;
  /** The store whose `models/` holds the installed models: a `bert` family is sized by its model's record. */
  models?: BlobStore;
}

/** One dataset part one encoder pass featurizes (src/config/encoder-passes.ts). */
export interface PlannedPart {
  /** The pass: its first family. */
  feature: string;
  /** Every family the pass feeds: BERT-family families that differ only in pooling share one pass, priced once. */
  families: string[];
  dataset: string;
  part: string;
  rows: number;
  meanChars: number;
  shards: number;
  lambdaSeconds: number;
  /** Planned seconds of one featurize row, and of the part's largest shard (its rows plus the invocation's start). */
  secondsPerRow: number;
  shardSeconds: number;
}

/** One training job (a feature family) as the guard checks it against the job's limits. */
export interface PlannedJob {
  feature: string;
  /** Parameters of the family's model. */
  parameters: number;
  /** Seconds the job runs: setup, every stage's epochs and evaluations (the job timeout counts these, not start-up). */
  runningSeconds: number;
  /**
   * Host memory the job holds at its peak: its largest stage's train, val and test features, the model's float32
   * weights, gradients and Adam moments, and the runtime (ThroughputModel.runtimeMemoryMiB).
   */
  memory: { features: number; model: number; runtime: number };
  /** Its largest checkpoint object, the Adam moments (`optimizer.safetensors`), streamed in 5 MiB parts. */
  largestObjectBytes: number;
}

/** checkpoints.zip as planned: every checkpoint stored uncompressed, and the Report seconds that stream it. */
export interface PlannedArchive {
  bytes: number;
  entries: number;
  streamSeconds: number;
}

/** One stage of the plan: compute seconds (what is billed) and wall seconds (what you wait). */
export interface PlannedStage {
  stage: string;
  where: string;
  computeSeconds: number;
  wallSeconds: number;
  detail: string;
}

/** `textshift plan`: the predicted usage, cost and time of an experiment on AWS. */
export interface Plan {
  experiment: string;
  quick: boolean;
  full: boolean;
  parts: PlannedPart[];
  stages: PlannedStage[];
  /** Prepare + Featurize + the slowest training job + Report. */
  wallSeconds: number;
  usage: RunUsage;
  cost: CostReport;
  model: ThroughputModel;
  deployment: PlanDeployment;
  /** The shape of each `bert` family's model, by model name, and where it came from. */
  encoders: Record<string, ResolvedShape>;
  /** Rows per Featurize shard of each encoder pass, by pass name: the shards Prepare writes are the shards planned. */
  rowsPerShard: Record<string, number>;
  /** Each training job's time, memory and largest object, and the checkpoint archive (the guard's limits). */
  jobs: PlannedJob[];
  archive: PlannedArchive;
  /** Prepare's planned seconds and the largest split object it stores (gzip JSON lines, streamed in 5 MiB parts). */
  prepare: { seconds: number; largestSplitBytes: number };
}

const LAMBDA_MB_PER_VCPU = 1769;
const MiB = 1024 * 1024;

/** Predicts what running `exp` on AWS would use, cost and take, from the size of its data. */
export async function planExperiment(exp: Experiment, profile: ProfileFile, prices: PriceTable, options: PlanOptions): Promise<Plan> {
  const model = { ...DEFAULT_THROUGHPUT, ...options.model };
  const dep = options.deployment;
  const memoryMb = dep.pricing.lambdaMemoryMb;
  const costOptions = { ...DEFAULT_COST_OPTIONS, ...dep.pricing, ...options.cost };
  const quick = options.quick ?? false;
  const full = options.full ?? false;

  // Rows and mean length of every dataset part after the split steps (sizes as sklearn's train_test_split).
  const partSize = new Map<string, FileProfile>();
  let totalChars = 0;
  for (const [dataset, spec] of Object.entries(exp.datasets)) {
    const sizes = new Map<string, FileProfile>();
    for (const [part, file] of Object.entries(spec.files)) {
      const p = await profile(dataset, part, file, spec);
      sizes.set(part, p);
      totalChars += p.rows * p.meanChars;
    }
    for (const step of spec.splits) {
      const from = sizes.get(step.from);
      if (from === undefined) throw new ConfigError(`dataset "${dataset}": split step from "${step.from}", which is no part at that step`);
      const { nTrain, nTest } = splitSizes(from.rows, step.testSize);
      sizes.delete(step.from);
      sizes.set(step.train, { rows: nTrain, meanChars: from.meanChars });
      sizes.set(step.test, { rows: nTest, meanChars: from.meanChars });
    }
    for (const [part, p] of sizes) {
      const cap = quick ? exp.quick[dataset]?.[part] : undefined;
      partSize.set(`${dataset}/${part}`, { rows: cap === undefined ? p.rows : Math.min(cap, p.rows), meanChars: p.meanChars });
    }
  }

  const vcpus = Math.min(6, memoryMb.featurize / LAMBDA_MB_PER_VCPU);
  const encoders: Record<string, ResolvedShape> = {};
  for (const spec of Object.values(exp.features)) {
    if (spec.kind === 'bert' && encoders[spec.model] === undefined) encoders[spec.model] = await encoderShapeOf(spec.model, options.models);
  }
  const parts: PlannedPart[] = [];
  const rowsPerShard: Record<string, number> = {};
  for (const { name: feature, families, spec } of encoderPasses(exp, { quick, full })) {
    const shape = spec.kind === 'bert' ? encoders[spec.model]!.shape : undefined;
    const perShard = shardRows(spec, dep.featurizeTimeoutSeconds, shape);
    rowsPerShard[feature] = perShard;
    // The BERT constant is bert-base's; a smaller model does proportionally less arithmetic per token.
    const scale = shape !== undefined && spec.kind === 'bert' ? speedupOverBertBase(shape, spec.maxLength) : 1;
    const speed = spec.kind === 'bow' ? model.featurizePerVcpu.bow : scale * model.featurizePerVcpu[spec.kind] * (1 + (Math.max(1, vcpus) - 1) * model.multicoreEfficiency);
    for (const [dataset, part] of neededParts(exp)) {
      const size = partSize.get(`${dataset}/${part}`);
      if (size === undefined) throw new ConfigError(`experiment ${exp.name}: dataset "${dataset}" has no part "${part}"`);
      const cap = familyCap(exp, feature, dataset, part, { quick, full });
      const rows = cap === undefined ? size.rows : Math.min(cap, size.rows);
      const shards = Math.ceil(rows / perShard);
      const tokens = Math.min(spec.kind === 'bert' ? spec.maxLength : Infinity, size.meanChars / model.charsPerToken);
      const work = spec.kind === 'bow' ? rows * size.meanChars : rows * tokens;
      const secondsPerRow = (spec.kind === 'bow' ? size.meanChars : tokens) / speed;
      const start = model.featurizeInvocationSeconds[spec.kind];
      parts.push({
        feature, families, dataset, part, rows, meanChars: size.meanChars, shards,
        lambdaSeconds: work / speed + shards * start,
        secondsPerRow,
        shardSeconds: rows === 0 ? 0 : Math.min(rows, perShard) * secondsPerRow + start,
      });
    }
  }

  const prepareSeconds = totalChars / model.prepareCharsPerSecond + 2;
  const shards = parts.reduce((a, p) => a + p.shards, 0);
  const featurizeSeconds = parts.reduce((a, p) => a + p.lambdaSeconds, 0);
  const longestShard = Math.max(0, ...parts.map((p) => p.lambdaSeconds / Math.max(1, p.shards)));
  const featurizeWall = Math.max(longestShard, featurizeSeconds / Math.max(1, Math.min(dep.featurizeConcurrency, shards)));

  const stages: PlannedStage[] = [
    { stage: 'prepare', where: `Lambda ${memoryMb.prepare} MB`, computeSeconds: prepareSeconds, wallSeconds: prepareSeconds, detail: `${Math.round(totalChars / 1e6)} M characters read, split and stored` },
    {
      stage: 'featurize', where: `Lambda ${memoryMb.featurize} MB × ${Math.min(dep.featurizeConcurrency, shards)}`,
      computeSeconds: featurizeSeconds, wallSeconds: featurizeWall, detail: `${shards} shards, at most ${dep.featurizeConcurrency} at once`,
    },
  ];
  const trainUsage: StageUsage[] = [];
  const jobs: PlannedJob[] = [];
  let archiveEntries = 0;
  let trainWall = 0;
  let checkpointBytes = 0;
  let featureBytes = 0;
  let trainPuts = 0;
  for (const [feature, spec] of Object.entries(exp.features)) {
    let puts = 0;
    const inputSize = spec.kind === 'bow' ? spec.maxFeatures : spec.kind === 'use' ? 512 : encoders[spec.model]!.shape.hidden;
    const sizes = [inputSize, ...exp.model.hidden, classCount(exp)];
    const params = sizes.slice(1).reduce((a, out, i) => a + sizes[i]! * out + out, 0);
    const rowsOf = (dataset: string, part: string) => parts.find((p) => p.families.includes(feature) && p.dataset === dataset && p.part === part)?.rows ?? 0;
    const forward = (n: number) => Math.ceil(n / model.evalBatchSize) * model.gpuStepSeconds + (2 * params * n) / model.gpuFlops;
    // Bytes of a part's features in the training job: a BoW row as CSR (int32 index + float32 count per distinct
    // term), an encoder row as one float32 vector (its family's pooling).
    const heldBytes = (dataset: string, part: string) => {
      const p = parts.find((x) => x.families.includes(feature) && x.dataset === dataset && x.part === part);
      if (p === undefined) return 0;
      const tokens = p.meanChars / model.charsPerToken;
      return p.rows * (spec.kind === 'bow' ? Math.min(spec.maxFeatures, tokens * model.distinctTermsPerToken) * 8 : inputSize * 4);
    };
    let seconds = model.jobSetupSeconds;
    let featuresHeld = 0;
    for (const s of exp.stages) {
      const train = rowsOf(s.dataset, s.train);
      const steps = Math.ceil(train / exp.training.batchSize);
      const epoch = steps * model.gpuStepSeconds + (6 * params * train) / model.gpuFlops + forward(rowsOf(s.dataset, s.val));
      seconds += exp.training.epochs * epoch;
      for (const d of exp.evaluation.datasets) seconds += forward(rowsOf(d, exp.evaluation.split));
      // weights + Adam moments (3 copies, float32) per checkpoint, plus the best model
      const checkpoints = Math.floor(exp.training.epochs / exp.training.checkpointEvery) + 1;
      checkpointBytes += checkpoints * 3 * 4 * params;
      // model, optimizer and state.json per checkpoint; the best model's weights, state and event file
      archiveEntries += checkpoints * 3 + 3;
      puts += checkpoints * 3 + 4;
      // A stage holds its train and val features while it trains, and each test part it evaluates on besides.
      const tests = Math.max(0, ...exp.evaluation.datasets.map((d) => heldBytes(d, exp.evaluation.split)));
      featuresHeld = Math.max(featuresHeld, heldBytes(s.dataset, s.train) + heldBytes(s.dataset, s.val) + tests);
    }
    jobs.push({
      feature,
      parameters: params,
      runningSeconds: seconds,
      memory: { features: featuresHeld, model: 16 * params, runtime: model.runtimeMemoryMiB.trainer * MiB },
      largestObjectBytes: 2 * 4 * params,
    });
    // A pass's cache entries are stored once (counted with its first family); a BERT-family row holds every pooling.
    for (const p of parts.filter((x) => x.feature === feature)) {
      const tokens = Math.min(spec.kind === 'bert' ? spec.maxLength : Infinity, p.meanChars / model.charsPerToken);
      // CSR: int32 index + float32 count per distinct term; dense: float32 per dimension.
      const blocks = spec.kind === 'bert' ? POOLING_MODES.length : 1;
      featureBytes += spec.kind === 'bow' ? p.rows * Math.min(spec.maxFeatures, tokens * model.distinctTermsPerToken) * 8 : p.rows * inputSize * 4 * blocks;
    }
    const featureShards = parts.filter((x) => x.families.includes(feature)).reduce((a, p) => a + p.shards, 0);
    trainPuts += puts;
    trainUsage.push({ kind: 'batch', seconds, memoryMb: 0, invocations: 1, requests: { put: puts, get: featureShards + 4, list: 2 }, bytesWritten: 0 });
    trainWall = Math.max(trainWall, seconds + costOptions.batchStartupSeconds);
    stages.push({
      stage: `train:${feature}`, where: `Batch ${costOptions.batchInstanceType}`, computeSeconds: seconds + costOptions.batchStartupSeconds,
      wallSeconds: seconds + costOptions.batchStartupSeconds,
      detail: `${params.toLocaleString('en-US')} parameters, ${exp.stages.length} stage(s) × ${exp.training.epochs} epochs, incl. ${costOptions.batchStartupSeconds} s start-up`,
    });
  }
  // Every checkpoint, stored uncompressed, plus each entry's headers (zipSizeBound's per-entry bytes, names of ~50 bytes).
  const archiveBytes = checkpointBytes + archiveEntries * 250;
  const archive: PlannedArchive = { bytes: archiveBytes, entries: archiveEntries, streamSeconds: archiveBytes / model.archiveBytesPerSecond };
  const reportSeconds = model.reportSeconds + archive.streamSeconds;
  stages.push({
    stage: 'report', where: `Lambda ${memoryMb.report} MB`, computeSeconds: reportSeconds, wallSeconds: reportSeconds,
    detail: `tables, HTML, cost, checkpoints.zip (${formatBytes(archive.bytes)})`,
  });

  const splitParts = partSize.size;
  const usage: RunUsage = {
    basis: 'planned',
    stages: {
      prepare: [{ kind: 'lambda', seconds: prepareSeconds, memoryMb: memoryMb.prepare, invocations: 1, requests: { put: splitParts + shards + 12, get: Object.keys(exp.datasets).length + 4, list: 2 }, bytesWritten: 0 }],
      featurize: [{ kind: 'lambda', seconds: featurizeSeconds, memoryMb: memoryMb.featurize, invocations: shards, requests: { put: 2 * shards, get: 3 * shards, list: 0 }, bytesWritten: 0 }],
      train: trainUsage,
      report: [{ kind: 'lambda', seconds: reportSeconds, memoryMb: memoryMb.report, invocations: 1, requests: { put: 20, get: trainPuts + 10, list: 5 }, bytesWritten: 0 }],
    },
    // Started by uploading the experiment, as docs/aws.md does (the intake execution is billed too).
    stateTransitions: estimateStateTransitions(shards, Object.keys(exp.features).length, 'upload'),
    // splits (gzip text) + features + checkpoints twice (objects and checkpoints.zip)
    storedBytes: Math.round(totalChars * model.gzipRatio + featureBytes + 2 * checkpointBytes),
  };
  return {
    experiment: exp.name,
    quick,
    full,
    parts,
    stages,
    wallSeconds: prepareSeconds + featurizeWall + trainWall + reportSeconds,
    usage,
    cost: computeCost(usage, prices, costOptions),
    model,
    deployment: dep,
    encoders,
    rowsPerShard,
    jobs,
    archive,
    // The largest split part as stored: gzip of its text (JSON lines add little).
    prepare: { seconds: prepareSeconds, largestSplitBytes: Math.max(0, ...[...partSize.values()].map((p) => p.rows * p.meanChars * model.gzipRatio)) },
  };
}

const SHAPE_FROM: Record<ResolvedShape['from'], string> = {
  installed: 'from its textshift-model.json in the store',
  known: 'a known model, not yet fetched',
  assumed: 'not installed and not known: assumed bert-base',
};

/** The plan for the terminal: data sizes, stage times, cost lines, and the assumptions behind them. */
export function planText(plan: Plan): string {
  const parts = alignColumns(
    [['feature', 'dataset/part', 'rows', 'mean chars', 'shards', 'Lambda s'],
      ...plan.parts.map((p) => [passLabel(p), `${p.dataset}/${p.part}`, String(p.rows), p.meanChars.toFixed(0), String(p.shards), p.lambdaSeconds.toFixed(1)])],
    ['left', 'left'],
  );
  const stages = alignColumns(
    [['stage', 'where', 'compute', 'wall', 'detail'],
      ...plan.stages.map((s) => [s.stage, s.where, formatDuration(s.computeSeconds), formatDuration(s.wallSeconds), s.detail])],
    ['left', 'left', 'right', 'right', 'left'],
  );
  const costLines = alignColumns(
    [['service', 'item', 'amount', 'cost'],
      ...plan.cost.lines.map((l) => [l.service, l.stage ? `${l.item} (${l.stage})` : l.item, formatAmount(l), formatMoney(l.cost, plan.cost.currency)]),
      ['total', '', '', formatMoney(plan.cost.total, plan.cost.currency)]],
    ['left', 'left', 'right', 'right'],
  );
  const m = plan.model;
  return [
    `Plan for ${plan.experiment}${plan.quick ? ' (--quick)' : ''}${plan.full ? ' (--full)' : ''} on AWS: about ${formatDuration(plan.wallSeconds)} end to end, ${formatMoney(plan.cost.total, plan.cost.currency)} (${plan.cost.label}).`,
    '',
    'Data to featurize:',
    parts,
    'Stages:',
    stages,
    'Cost:',
    costLines,
    'Assumptions (src/cost/plan.ts; the estimate is only as good as these):',
    `  featurize per Lambda vCPU: BoW ${m.featurizePerVcpu.bow.toLocaleString('en-US')} chars/s, USE ${m.featurizePerVcpu.use} tokens/s, BERT ${m.featurizePerVcpu.bert} tokens/s; ${m.charsPerToken} chars/token; ${plan.deployment.pricing.lambdaMemoryMb.featurize} MB = ${Math.min(6, plan.deployment.pricing.lambdaMemoryMb.featurize / LAMBDA_MB_PER_VCPU).toFixed(1)} vCPU at ${m.multicoreEfficiency} efficiency per extra vCPU`,
    ...Object.entries(plan.encoders).map(([name, { shape, from }]) => `  model ${name}: ${shape.layers} layers, hidden ${shape.hidden}, feed-forward ${shape.intermediate} (${SHAPE_FROM[from]})`),
    `  GPU training: ${m.gpuFlops / 1e12} TFLOP/s sustained, ${m.gpuStepSeconds * 1000} ms per step, 6 FLOPs per parameter per training example, 2 per evaluated example; ${m.jobSetupSeconds} s job setup`,
    `  checkpoints.zip streamed at ${m.archiveBytesPerSecond / 1e6} MB/s; runtime memory before data: training job ${m.runtimeMemoryMiB.trainer} MiB, Report ${m.runtimeMemoryMiB.report} MiB`,
    `  prices: ${plan.cost.regions.join(', ')} recorded ${plan.cost.priceDates.join(', ')} (price table ${plan.cost.priceVersions.join(' + ')})`,
    '',
  ].join('\n');
}
