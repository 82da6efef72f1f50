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
import type { DeployConfig } from '../config/deployment.js';
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

/** The deployment's Lambda functions (src/config/deployment.ts FUNCTION_NAMES); each has `<name>MemoryMb` and `<name>TimeoutSeconds` in cdk.json. */
export type LambdaFunction = 'prepare' | 'featurize' | 'report' | 'markFailed';

/** Where a stage's task runs on AWS, how it retries, and the cdk.json setting that limits one task's run time. */
export type OnAws =
  | { on: 'lambda'; fn: LambdaFunction; timeout: `${LambdaFunction}TimeoutSeconds`; retry: RetryClass }
  | {
      on: 'batch';
      /** A job attempt's time limit once RUNNING (Batch `attemptDurationSeconds`). */
      timeout: 'trainerTimeoutMinutes';
      /** How long a job may wait RUNNABLE (no capacity, no quota) before the job queue cancels it. */
      runnableTimeout: 'trainerRunnableTimeoutMinutes';
      /** Attempts of a job (the job definition's retry strategy: exit 75 and Spot reclaims try again). */
      attempts: number;
      retry: RetryClass;
    };

/** The deployment settings the task time limits derive from. */
export type TimeLimitSettings = Pick<
  DeployConfig,
  `${LambdaFunction}TimeoutSeconds` | 'trainerTimeoutMinutes' | 'trainerRunnableTimeoutMinutes'
>;

/**
 * Margin of a task's Step Functions TimeoutSeconds over the limit the service itself enforces: the service's own
 * limit (a Lambda timeout, a Batch job's time limits) fires first and reports what happened; TimeoutSeconds is the
 * backstop that ends a task the service never reports back on.
 */
export const TASK_TIMEOUT_MARGIN_SECONDS = { lambda: 30, batch: 600 } as const;

/**
 * The TimeoutSeconds of a stage's task (each attempt; a retry starts the clock again). A Lambda task: its function's
 * timeout plus a margin. A Batch `.sync` task: every attempt of the job may wait RUNNABLE up to the queue's limit
 * and then run up to the job's time limit, plus a margin; a job the queue never gets to run ends there.
 */
export function taskTimeoutSeconds(aws: OnAws, s: TimeLimitSettings): number {
  if (aws.on === 'lambda') return s[aws.timeout] + TASK_TIMEOUT_MARGIN_SECONDS.lambda;
  return aws.attempts * (s[aws.runnableTimeout] + s[aws.timeout]) * 60 + TASK_TIMEOUT_MARGIN_SECONDS.batch;
}

/** What a stage becomes on this machine: a call in this thread, or tasks on the worker-thread pool. */
export type Locally = { on: 'this thread' } | { on: 'worker pool'; retries: number };

/**
 * How a stage fans out: once per run, or one task per item (a Map state on AWS, whose iteration runs `task` on
 * `{runId, [item]: <the item>}`). The items are either a short list in Prepare's output (`inline`: an Inline Map,
 * whose iterations are part of the run's execution) or a JSON array object in the store that Prepare wrote and names
 * in its output (`distributed`: a Distributed Map, which reads the items from S3 and writes its results back to S3,
 * so neither the state payload nor the run's execution history grows with the number of items). A distributed
 * fan-out's object holds the items in batches (`batchItems`): each batch is one child execution, which runs the
 * task for each item of its batch in turn (an Inline Map named `batchState`). Batches keep the number of child
 * executions at MAX_CHILD_EXECUTIONS or fewer, which is what the children cost to start, and the parent's Map Run
 * to track; the emulator the tests run on cannot parse the ItemBatcher field, which would do this on AWS.
 */
export type FanOut =
  | { each: 'run' }
  | {
      each: 'feature family';
      mode: 'inline';
      /** The field of Prepare's output holding the items. */
      items: 'features';
      /** The field of the task's input holding its item. */
      item: 'feature';
      /** The name of the task run for each item. */
      task: string;
      /** The cdk.json setting bounding how many tasks run at once. */
      maxConcurrency: 'trainConcurrency';
    }
  | {
      each: 'shard';
      mode: 'distributed';
      /** The field of Prepare's output naming the items' object (`key`), their counts and where results go. */
      items: 'shardPlan';
      /** The field of a child execution's input holding its batch of items. */
      batchItems: 'shardKeys';
      /** The Inline Map of a child execution, which runs `task` for each item of the batch in turn. */
      batchState: string;
      item: 'shardKey';
      task: string;
      /** The setting bounding how many child executions (so tasks) run at once. */
      maxConcurrency: 'featurizeConcurrency';
    };

/**
 * Where a distributed fan-out's items are: Prepare's output names the object (a JSON array of batches, each a JSON
 * array of items), the counts and where the Distributed Map writes its results.
 */
export interface ItemPlan {
  /** Key of the JSON array of batches in the run store. */
  key: string;
  /** How many items the batches hold in all. */
  count: number;
  /** How many batches (child executions) there are. */
  batches: number;
  /** Key prefix under which the Distributed Map writes its results (ResultWriter). */
  resultsPrefix: string;
}

/** The most child executions a distributed fan-out starts; more items share a child (a batch). */
export const MAX_CHILD_EXECUTIONS = 1000;

/**
 * The items of a distributed fan-out in batches of equal size (the last may be shorter): one item per batch up to
 * MAX_CHILD_EXECUTIONS items, then as few items per batch as keep the batches at MAX_CHILD_EXECUTIONS or fewer. At
 * 100,000 shards a batch holds 100 shard keys (~8 KB), its child execution's input.
 */
export function inBatches<T>(items: readonly T[]): T[][] {
  const size = batchSize(items.length);
  return Array.from({ length: batchCount(items.length) }, (_, b) => items.slice(b * size, (b + 1) * size));
}

/** Items per batch when a distributed fan-out has `n` items. */
function batchSize(n: number): number {
  return Math.max(1, Math.ceil(n / MAX_CHILD_EXECUTIONS));
}

/** How many batches (child executions) a distributed fan-out of `n` items has. */
export function batchCount(n: number): number {
  return Math.ceil(n / batchSize(n));
}

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
    // 100,000 shards and more: a Distributed Map over batches of shards, one child execution per batch (STANDARD, so
    // a redrive re-runs only the failed children, and in them only the failed shards).
    fanOut: {
      each: 'shard',
      mode: 'distributed',
      items: 'shardPlan',
      batchItems: 'shardKeys',
      batchState: 'Featurize batch',
      item: 'shardKey',
      task: 'Featurize shard',
      maxConcurrency: 'featurizeConcurrency',
    },
    aws: { on: 'lambda', fn: 'featurize', timeout: 'featurizeTimeoutSeconds', retry: RETRY.lambda },
    // Encoder shards take seconds to minutes, so they share the cores; BoW shards take milliseconds and stay in this thread.
    local: { on: 'worker pool', retries: 2 },
  },
  {
    name: 'Train',
    does: 'Stage 1 on dataset A, fine-tune on B, evaluate; the job reads its keys from the parameters.',
    // A handful of families: an Inline Map.
    fanOut: { each: 'feature family', mode: 'inline', items: 'features', item: 'feature', task: 'Train feature family', maxConcurrency: 'trainConcurrency' },
    aws: { on: 'batch', timeout: 'trainerTimeoutMinutes', runnableTimeout: 'trainerRunnableTimeoutMinutes', attempts: 3, retry: RETRY.batch },
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

/**
 * Errors of a Distributed Map state itself (not of an item's task, whose failure path runs in its child execution):
 * it could not read its items or write its results. These go to the failure path of the map's own (below); a child
 * that failed (States.ExceedToleratedFailureThreshold) already recorded its failure, and the execution ends in the
 * Map state, so a redrive redrives the Map Run, which re-runs only the failed children.
 */
export const DISTRIBUTED_MAP_ERRORS = ['States.ItemReaderFailed', 'States.ResultWriterFailed'] as const;

/** The failure path of a Distributed Map state's own errors (DISTRIBUTED_MAP_ERRORS), named apart from its items'. */
export const mapFailureStates = (stage: StageName) => [`${stage} map failed`, `${MARK_FAILED.name} ${stage} map`] as const;

/** The intake's StartExecution task: a Step Functions API call that answers in well under a second. */
export const START_RUN_TIMEOUT_SECONDS = 60;

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
