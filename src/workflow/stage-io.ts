/**
 * Inputs and outputs of the workflow stages. The local runner, the Lambda handlers, the Batch trainer entry and
 * the Step Functions definition all pass exactly these shapes; only object keys travel (Step Functions' 256 KB
 * state limit), never data.
 */
import type { ItemPlan } from '../run/graph.js';

/** Where a run starts: the experiment file's key, and optionally the run id (else derived from the upload). */
export interface PrepareInput {
  experimentKey: string;
  /** Identity of the uploaded object version (S3 version id, ETag or sequencer); makes the run id idempotent. */
  uploadId?: string;
  /**
   * The S3 VersionId of the uploaded experiment (from the upload event): the run reads exactly that version. Absent
   * (a console or local run), Prepare reads the current object and pins its version in the manifest.
   */
  experimentVersion?: string;
  runId?: string;
  /** Apply the experiment's `quick` caps (a small documented subsample; local smoke runs and tests). */
  quick?: boolean;
  /** Ignore the experiment's per-family `subsample` caps (the full-scale local run of the contextual family). */
  full?: boolean;
  /**
   * The ARN of the execution running the run (on AWS): Prepare takes the run's lease for it before writing anything.
   * Absent for a local run, whose runner holds the lease itself.
   */
  execution?: string;
}

export interface PrepareOutput {
  runId: string;
  /**
   * Where the featurize tasks are: a JSON array object of shard keys (`runs/<runId>/shards/<feature>/<dataset>/<split>/<index>.json`),
   * their count, and where the Featurize Distributed Map writes its results. The keys themselves stay in S3.
   */
  shardPlan: ItemPlan;
  /** Feature families to train, one Batch job each. */
  features: string[];
}

export interface FeaturizeInput {
  runId: string;
  shardKey: string;
}

export interface FeaturizeOutput {
  shardKey: string;
  cacheKey: string;
  /** True when the cache already held the features (no encoder work done). */
  cached: boolean;
}

export interface TrainInput {
  runId: string;
  feature: string;
}

export interface TrainOutput {
  runId: string;
  feature: string;
  resultKey: string;
}

export interface ReportInput {
  runId: string;
}

export interface ReportOutput {
  runId: string;
  resultsKey: string;
  reportKey: string;
  costKey: string;
  archiveKey: string;
}

export interface MarkFailedInput {
  runId: string;
  /** The state that failed, e.g. "Featurize". */
  stage: string;
  /** The Step Functions error object of the Catch ({Error, Cause}). */
  error: { Error?: string; Cause?: string };
  /**
   * The ARN of the execution whose stage failed (on AWS): the failure is recorded only if that execution holds the
   * run's lease. Absent for a local run, whose runner holds the lease.
   */
  execution?: string;
}
