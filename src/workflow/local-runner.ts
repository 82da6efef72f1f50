import { readFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { basename } from 'node:path';
import type { BlobStore } from '../store/blob-store.js';
import { validateKey } from '../store/blob-store.js';
import { experimentKey, parseShardKey } from '../run/keys.js';
import type { Results } from '../run/records.js';
import type { StageContext } from './context.js';
import type { Reporter } from '../run/reporter.js';
import type { PrepareOutput, ReportOutput } from './stage-io.js';
import type { CostOptions } from '../cost/cost.js';
import { costOptionsOf, readConfigFile } from '../config/deployment.js';
import { featurize } from './stages/featurize.js';
import { markFailed } from './stages/mark-failed.js';
import { prepare } from './stages/prepare.js';
import { report } from './stages/report.js';
import { train } from './stages/train.js';
import { asStage, readManifest } from '../run/manifest.js';
import type { FeaturizeTask } from './featurize-task.js';
import { runPool } from './pool.js';
import { classifyError } from '../errors/classify.js';
import { InternalError } from '../errors/index.js';
import { STAGES, type Stage, type StageName } from '../run/graph.js';
import { readShardPlan } from '../run/shard-plan.js';
import type { DeployConfig } from '../config/deployment.js';

export interface LocalRunOptions {
  store: BlobStore;
  data: BlobStore;
  /** Path of the experiment JSON file on disk. */
  experimentPath: string;
  quick?: boolean;
  /** Ignore per-family subsample caps. */
  full?: boolean;
  /** Featurize worker threads (default: available cores; 1 runs shards in this thread). */
  workers?: number;
  /** Explicit run id (default: derived from the experiment, so re-running resumes). */
  runId?: string;
  reporter: Reporter;
}

export interface LocalRunResult {
  runId: string;
  results: Results;
  report: ReportOutput;
}

/** A stage of the graph on this machine, given the stage and the items of its fan-out (none for a run-once stage). */
type LocalStage = (stage: Stage, items: string[]) => Promise<void>;

/** The items of a stage's fan-out: a list in Prepare's output, or (a distributed fan-out) the plan object it names. */
async function fanOutItems(store: BlobStore, stage: Stage, plan: PrepareOutput | undefined): Promise<string[]> {
  const { fanOut } = stage;
  if (fanOut.each === 'run' || !plan) return [];
  return fanOut.mode === 'inline' ? plan[fanOut.items] : readShardPlan(store, plan.runId, plan[fanOut.items]);
}

/**
 * Featurize on this machine, recorded as the run's featurize stage. BoW shards take milliseconds: this thread.
 * Encoder shards take seconds to minutes: a worker-thread pool runs them in parallel, retrying each on its own
 * (a worker holds its own encoder and splits in memory).
 */
async function featurizeShards(ctx: StageContext, o: LocalRunOptions, runId: string, shardKeys: string[], retries: number): Promise<void> {
  await asStage(o.store, runId, 'featurize', async () => {
    const task = o.reporter.task('featurize', shardKeys.length, 'shards');
    const { config } = await readManifest(o.store, runId);
    const encoded = (key: string) => config.features[parseShardKey(key)?.feature ?? '']?.kind !== 'bow';
    for (const shardKey of shardKeys.filter((k) => !encoded(k))) {
      await featurize(ctx, { runId, shardKey });
      task.tick();
    }
    const pooled = shardKeys.filter(encoded);
    const workers = o.workers ?? availableParallelism();
    if (workers <= 1) {
      for (const shardKey of pooled) {
        await featurize(ctx, { runId, shardKey });
        task.tick();
      }
    } else if (pooled.length > 0) {
      let reported = 0;
      await runPool<FeaturizeTask, unknown>(
        pooled.map((shardKey) => ({ id: shardKey, input: { storeUrl: o.store.url, dataUrl: o.data.url, runId, shardKey } })),
        {
          handler: new URL('./featurize-task.ts', import.meta.url),
          workers,
          retries,
          onProgress: (done) => {
            task.tick(done - reported);
            reported = done;
          },
        },
      );
    }
    task.done();
    return { result: undefined };
  });
}

/**
 * Runs the stage graph (src/run/graph.ts) on this machine, in its order, the same stage functions the cloud runs:
 * Prepare, Featurize (every shard), Train (every feature family), Report. A failed stage after Prepare is recorded
 * in the manifest (as MarkFailed does on AWS) and nothing already written is lost: running the same command again
 * resumes.
 */
export async function runLocal(o: LocalRunOptions): Promise<LocalRunResult> {
  const ctx: StageContext = { store: o.store, data: o.data, reporter: o.reporter, memo: new Map() };
  const deployment = await deploymentConfig();
  const expKey = validateKey(experimentKey(basename(o.experimentPath)));
  await o.store.put(expKey, await readFile(o.experimentPath));
  let plan: PrepareOutput | undefined;
  let finished: LocalRunResult | undefined;
  const runId = () => {
    if (!plan) throw new InternalError('the stage graph does not start with Prepare');
    return plan.runId;
  };

  const local: Record<StageName, LocalStage> = {
    Prepare: async () => {
      // Shards as the deployment would plan them, so a local run and an AWS run of one experiment share cache entries.
      const options = { featurizeTimeoutSeconds: deployment?.featurizeTimeoutSeconds };
      plan = await prepare(ctx, { experimentKey: expKey, quick: o.quick ?? false, full: o.full ?? false, ...(o.runId ? { runId: o.runId } : {}) }, options);
      o.reporter.log(`run ${plan.runId}: ${plan.shardPlan.count} featurize shards, families ${plan.features.join(', ')}; store ${o.store.url}`);
    },
    Featurize: (stage, shardKeys) => featurizeShards(ctx, o, runId(), shardKeys, stage.local.on === 'worker pool' ? stage.local.retries : 0),
    Train: async (_, features) => {
      for (const feature of features) await train(ctx, { runId: runId(), feature });
    },
    Report: async () => {
      const out = await report(ctx, { runId: runId() }, { costOptions: deployment ? costOptionsOf(deployment) : {} });
      const results = JSON.parse((await o.store.getOrThrow(out.resultsKey)).toString('utf8')) as Results;
      finished = { runId: runId(), results, report: out };
    },
  };

  for (const stage of STAGES) {
    try {
      await local[stage.name](stage, await fanOutItems(o.store, stage, plan));
    } catch (err) {
      // Before Prepare has named the run there is no manifest to record the failure in.
      if (plan) await markFailed(ctx, { runId: plan.runId, stage: stage.name, error: { Error: classifyError(err).name, Cause: (err as Error).message } });
      throw err;
    }
  }
  if (!finished) throw new InternalError('the stage graph does not end with Report');
  return finished;
}

/**
 * The default deployment (the repository's cdk.json, validated as `cdk synth` validates it), so a local run plans
 * shards for the featurize timeout and prices the instance type, market and Lambda memory sizes `cdk deploy` would
 * create, as the deployed stages do. Undefined when the file is not there.
 */
async function deploymentConfig(): Promise<DeployConfig | undefined> {
  return readConfigFile(new URL('../../cdk.json', import.meta.url));
}

/** The pricing choices of the default deployment (empty when there is no cdk.json). */
export async function deploymentCostOptions(): Promise<Partial<CostOptions>> {
  const config = await deploymentConfig();
  return config ? costOptionsOf(config) : {};
}
