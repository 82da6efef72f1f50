/** The JSON documents a run stores (their keys are in keys.ts): results, stage records, shard plans and results. */

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
  /** The sentence pooling of a BERT-family family's features (the report's pooling study groups by it). */
  pooling?: string;
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
  /** The failure's error name (a TextshiftError class, or a Step Functions / AWS error name); absent in old records. */
  errorName?: string;
  /** Whether the failure was transient, so a retry or redrive may succeed unchanged; absent in old records. */
  retryable?: boolean;
  usage?: StageUsage;
}

/** A featurize task: which rows of which stored split one shard covers, for one encoder pass. */
export interface ShardTask {
  /** The first family of the shard's encoder pass (src/config/encoder-passes.ts): its spec configures the encoder. */
  feature: string;
  dataset: string;
  part: string;
  splitKey: string;
  /** Lines (0-based) of the split file, in the order the family sees its rows (the split's, scikit-learn's). */
  rows: number[];
  /**
   * The texts of `rows`, in that order, unless Prepare left the split in the memo of the process that featurizes
   * (a local run): Featurize then reads this task only, never the whole split (absent in old records).
   */
  texts?: string[];
}

/** `runs/<id>/prepare/shard-tasks/.../<batch>.json`: a batch of shard tasks Prepare has stored, for a retried Prepare. */
export interface ShardTaskBatch {
  /** Index of the batch's first shard in its part. */
  first: number;
  /** sha256 (hex) of each stored task body, from the first shard on. */
  sha256: string[];
}

/** `runs/<id>/features/<feature>/index.json`: the shards and labels of every part a family trains or evaluates on. */
export interface FeatureIndex {
  feature: string;
  kind: string;
  /** The family's pooling, for a BERT-family family: the column block it takes from its shards' cache entries. */
  pooling?: string;
  parts: Record<string, { rows: number; labels: number[]; shards: string[] }>;
}

/** What featurize records for a shard (next to its task): where its features are and whether they were computed. */
export interface ShardResult {
  shardKey: string;
  cacheKey: string;
  /** The encoder identity the cache entry is keyed by (absent in old records). */
  encoder?: string;
  /** Names of the column blocks of each row, e.g. every pooling of a BERT-family pass; absent: one embedding per row. */
  blocks?: string[];
  /** True when the cache already held the features (no encoder work done). */
  cached: boolean;
  rows: number;
  /** Wall seconds this shard took (encoder work, or the cache check on a hit). */
  seconds: number;
}

/** One input file as read: what the manifest records about it. */
export interface LoadedFile {
  /** The file part's name in the dataset spec. */
  part: string;
  key: string;
  /** sha256 (hex) of the bytes as stored. */
  sha256: string;
  bytes: number;
  /** Examples kept (bad rows skipped under `onBadRow: "skip"` are not counted). */
  rows: number;
  /** The object version read, in a versioned bucket (S3 VersionId). */
  version?: string;
  /** The object's ETag (S3) or file identity (a folder) when it was pinned. */
  etag?: string;
}

/**
 * One input object as a run first resolved it, so every later read gets the same bytes: its version where the store
 * keeps versions (read by VersionId), else its sha256 (checked before reading). Size and etag as seen then.
 */
export interface InputPin {
  bytes: number;
  etag?: string;
  version?: string;
  sha256?: string;
}

/** A row left out under `onBadRow: "skip"`; the manifest counts these. */
export interface SkippedRow {
  /** Store URL + key of the file. */
  file: string;
  /** 1-based physical line where the row starts. */
  line: number;
  reason: string;
}
