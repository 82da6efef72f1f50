/**
 * The stage graph of a run, declared once, as data. The state machine is built from it (cdk/constructs/workflow.ts),
 * the local runner walks it (src/workflow/local-runner.ts), and the cost estimator counts its Step Functions state
 * transitions from it (src/cost/transitions.ts).
 *
 *   Prepare     once                    Lambda    validate, split (seeded), fit the BoW vocabulary, plan shards
 *   Featurize   per shard               Lambda    BoW vectors or sentence embeddings into cache/features/
 *   Train       per feature family      Batch     stage 1, fine-tune, evaluate
 *   Report      once                    Lambda    results, report.html, cost report, checkpoints.zip
 *   any of them fails -> MarkFailed     Lambda    records the stage and cause in the run manifest
 *
 * Before Prepare, the intake (INTAKE below) turns whatever started the execution into Prepare's input.
 */
import { BATCH_TRANSIENT_ERRORS, LAMBDA_TRANSIENT_ERRORS, RETRYABLE_ERROR_NAMES, SFN_TRANSIENT_ERRORS } from '../errors/index.js';

/** Which errors a task retries, and how: exponential backoff with full jitter, capped. Any other error is caught. */
export interface RetryClass {
  errors: readonly string[];
  intervalSeconds: number;
  backoffRate: number;
  /** Retries after the first attempt (ASL MaxAttempts). */
  retries: number;
  maxDelaySeconds: number;
}

// Full jitter, so a burst of throttled shards does not retry in lockstep.
const BACKOFF = { intervalSeconds: 2, backoffRate: 2, retries: 6, maxDelaySeconds: 60 };

/** The retry classes of the graph's tasks. */
export const RETRY = {
  /**
   * A Lambda task: errors our code classifies as transient (RETRYABLE_ERROR_NAMES) and the Lambda service's own.
   * Everything else (bad data, an invalid event, a bug) would fail the same way again, so it is not retried.
   */
  lambda: { errors: [...RETRYABLE_ERROR_NAMES, ...LAMBDA_TRANSIENT_ERRORS], ...BACKOFF },
  /** A Batch job: the Batch API's transient errors. A job that ran and failed is retried by its job definition (Spot reclaims only). */
  batch: { errors: BATCH_TRANSIENT_ERRORS, ...BACKOFF },
  /** The intake starting the named run (StartExecution). */
  startRun: { errors: SFN_TRANSIENT_ERRORS, ...BACKOFF },
} as const satisfies Record<string, RetryClass>;

/** The deployment's Lambda functions (cdk/config.ts FUNCTION_NAMES); each has `<name>MemoryMb` and `<name>TimeoutSeconds` in cdk.json. */
export type LambdaFunction = 'prepare' | 'featurize' | 'report' | 'markFailed';

/** Where a stage's task runs on AWS, how it retries, and the cdk.json setting that limits one task's run time. */
export type OnAws =
  | { on: 'lambda'; fn: LambdaFunction; timeout: `${LambdaFunction}TimeoutSeconds`; retry: RetryClass }
  | { on: 'batch'; timeout: 'trainerTimeoutMinutes'; retry: RetryClass };

/** What a stage becomes on this machine: a call in this thread, or tasks on the worker-thread pool. */
export type Locally = { on: 'this thread' } | { on: 'worker pool'; retries: number };

/**
 * How a stage fans out: once per run, or one task per item of a list Prepare returns (a Map state on AWS, whose
 * iteration runs `task` on `{runId, [item]: <the item>}`).
 */
export type FanOut =
  | { each: 'run' }
  | {
      each: 'shard' | 'feature family';
      /** The field of Prepare's output holding the items. */
      items: 'shardKeys' | 'features';
      /** The field of the task's input holding its item. */
      item: 'shardKey' | 'feature';
      /** The name of the task run for each item. */
      task: string;
      /** The cdk.json setting bounding how many tasks run at once (no setting: all at once). */
      maxConcurrency?: 'featurizeConcurrency';
    };

/** One stage of the run. */
export interface Stage {
  name: StageName;
  /** What the stage does (also the task's comment in the state machine). */
  does: string;
  fanOut: FanOut;
  aws: OnAws;
  local: Locally;
}

export type StageName = 'Prepare' | 'Featurize' | 'Train' | 'Report';

/** The run's stages, in the order they run; each starts when the one before has finished for every item. */
export const STAGES: readonly Stage[] = [
  {
    name: 'Prepare',
    does: 'Validates config and data, splits (seeded), fits the BoW vocabulary, plans shards.',
    fanOut: { each: 'run' },
    aws: { on: 'lambda', fn: 'prepare', timeout: 'prepareTimeoutSeconds', retry: RETRY.lambda },
    local: { on: 'this thread' },
  },
  {
    name: 'Featurize',
    does: 'One shard: BoW vectors or sentence embeddings into cache/ (skipped when already cached).',
    fanOut: { each: 'shard', items: 'shardKeys', item: 'shardKey', task: 'Featurize shard', maxConcurrency: 'featurizeConcurrency' },
    aws: { on: 'lambda', fn: 'featurize', timeout: 'featurizeTimeoutSeconds', retry: RETRY.lambda },
    // Encoder shards take seconds to minutes, so they share the cores; BoW shards take milliseconds and stay in this thread.
    local: { on: 'worker pool', retries: 2 },
  },
  {
    name: 'Train',
    does: 'Stage 1 on dataset A, fine-tune on B, evaluate; the job reads its keys from the parameters.',
    fanOut: { each: 'feature family', items: 'features', item: 'feature', task: 'Train feature family' },
    aws: { on: 'batch', timeout: 'trainerTimeoutMinutes', retry: RETRY.batch },
    local: { on: 'this thread' },
  },
  {
    name: 'Report',
    does: 'Results table, plots, HTML report, cost report and checkpoints.zip.',
    fanOut: { each: 'run' },
    aws: { on: 'lambda', fn: 'report', timeout: 'reportTimeoutSeconds', retry: RETRY.lambda },
    local: { on: 'this thread' },
  },
];

/**
 * The failure path: a stage's task that fails (after its retries) goes to "<stage> failed", which saves the stage
 * name, then to "MarkFailed <stage>", which records the failure in the manifest and ends the execution there.
 * Inside a fan-out both live in the item's iteration, so a redrive re-runs only the failed items.
 */
export const MARK_FAILED = {
  name: 'MarkFailed',
  aws: { on: 'lambda', fn: 'markFailed', timeout: 'markFailedTimeoutSeconds', retry: RETRY.lambda },
  local: { on: 'this thread' },
} as const satisfies { name: string; aws: OnAws; local: Locally };

/** The states of the failure path of `stage`, in the order they are entered. */
export const failureStates = (stage: StageName) => [`${stage} failed`, `${MARK_FAILED.name} ${stage}`] as const;

/** How an execution was started. */
export type Start = 'upload' | 'console' | 'resume';

/**
 * The intake: the states entered before Prepare, by how the run was started. An upload's execution names the run
 * and starts it as a second execution named by the run id (so a duplicate delivery starts nothing), then ends; the
 * second execution enters Prepare after two states. Both executions are billed, so both are listed.
 */
export const INTAKE: Record<Start, readonly (readonly string[])[]> = {
  upload: [
    ['Route input', 'From upload', 'Derive run id', 'Name run', 'Upload or console?', 'Start run', 'Run started'],
    ['Route input', 'Run input'],
  ],
  /** `{"experiment": "experiments/<name>.json"}` from the console: a new run named by the execution. */
  console: [['Route input', 'From console', 'Derive run id', 'Name run', 'Upload or console?', 'Console run input']],
  /** `{"experiment", "runId"}`: re-runs that run id, every stage skipping work already done. */
  resume: [['Route input', 'Resume run']],
};
