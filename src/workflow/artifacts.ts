/**
 * The object layout of a run (DESIGN.md), identical in a local folder and in S3, and the JSON documents
 * stored there. Every reader and writer of run artifacts takes its keys from here.
 */

/** Keys of one run's artifacts. */
export function runKeys(runId: string) {
  const root = `runs/${runId}`;
  return {
    root,
    manifest: `${root}/manifest.json`,
    split: (dataset: string, split: string) => `${root}/splits/${dataset}/${split}.jsonl.gz`,
    vocabulary: (feature: string) => `${root}/features/${feature}/vocabulary.json`,
    featureIndex: (feature: string) => `${root}/features/${feature}/index.json`,
    modelDir: (model: string) => `${root}/models/${model}`,
    checkpoint: (model: string, epoch: number) => `${root}/models/${model}/epoch_${epoch}`,
    best: (model: string) => `${root}/models/${model}/best`,
    trainResult: (feature: string) => `${root}/models/${feature}.result.json`,
    logs: (model: string) => `${root}/logs/${model}`,
    report: (file: string) => `${root}/report/${file}`,
    checkpointsZip: `${root}/checkpoints.zip`,
  };
}

/** Key of a featurize shard's result object, beside its task under `featurized/` instead of `shards/`. */
export function shardResultKey(shardKey: string): string {
  return shardKey.replace('/shards/', '/featurized/');
}

/** Content-addressed feature cache entry (shared by runs and experiments). */
export function featureCacheKey(contentHash: string, ext: 'npy' | 'csr'): string {
  return `cache/features/${contentHash}.${ext}`;
}

/** Metrics of one training epoch. */
export interface EpochMetrics {
  epoch: number;
  trainLoss: number;
  valLoss: number;
  valAccuracy: number;
  seconds: number;
}

/** One model evaluated on one dataset split. */
export interface Evaluation {
  model: string;
  dataset: string;
  split: string;
  n: number;
  loss: number;
  accuracy: number;
  /** confusion[true][predicted] counts. */
  confusion: number[][];
}

/** What training one model produced. */
export interface ModelSummary {
  model: string;
  feature: string;
  stage: string;
  dataset: string;
  from?: string;
  inputSize: number;
  parameters: number;
  engine: string;
  optimizer: string;
  epochs: EpochMetrics[];
  bestEpoch: number;
  bestValAccuracy: number;
  trainExamples: number;
  valExamples: number;
  seconds: number;
}

/** Everything one feature family's training job produced (stages plus evaluations). */
export interface FamilyResult {
  feature: string;
  models: ModelSummary[];
  evaluations: Evaluation[];
}

/** The results document (`report/results.json`). */
export interface Results {
  runId: string;
  experiment: string;
  classNames: Record<string, string[]>;
  datasets: string[];
  models: ModelSummary[];
  evaluations: Evaluation[];
}

export type StageStatus = 'pending' | 'running' | 'succeeded' | 'failed' | 'skipped';

/** Measured resource use of one stage, the input of the cost report. */
export interface StageUsage {
  /** Wall seconds of the work (a Lambda's billed duration, a Batch job's run time, a local stage's time). */
  seconds: number;
  /** Memory the stage ran with (configured Lambda/Batch memory; local peak RSS). */
  memoryMb: number;
  /** Where it ran or would run on AWS. */
  kind: 'lambda' | 'batch' | 'local';
  invocations: number;
  /** Object-store requests by class. */
  requests: { put: number; get: number; list: number };
  bytesWritten: number;
}

/** Status and timing of one stage in the manifest. */
export interface StageRecord {
  status: StageStatus;
  startedAt?: string;
  endedAt?: string;
  seconds?: number;
  error?: string;
  usage?: StageUsage;
}
