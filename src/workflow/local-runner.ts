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
import { planDeploymentOf, readConfigFile, type DeployConfig, type PlanDeployment } from '../config/deployment.js';
import { parseExperiment } from '../config/experiment.js';
import { featurize } from './stages/featurize.js';
import { markFailed } from './stages/mark-failed.js';
import { deriveRunId, prepare } from './stages/prepare.js';
import { report } from './stages/report.js';
import { train } from './stages/train.js';
import { asStage, readManifest } from '../run/manifest.js';
import { LEASE_RENEW_MS, lockRun } from '../run/run-lock.js';
import { fencedStore } from '../run/fenced-store.js';
import { refuseOtherExperiment } from './pinned-inputs.js';
import type { FeaturizeTask } from './featurize-task.js';
import { runPool } from './pool.js';
import { ensureModels } from './ensure-models.js';
import { removeStalePartials } from './stale-partials.js';
import { classifyError } from '../errors/classify.js';
import { InternalError, MissingInputError } from '../errors/index.js';
import { STAGES, type Stage, type StageName } from '../run/graph.js';
import { readShardPlan } from '../run/shard-plan.js';

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
  /** What the deployment runs and allows a run to cost, for Prepare's cost guard (default: the repository's cdk.json). */
  deployment?: PlanDeployment;
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
 * Encoder shards take seconds to minutes: a worker-thread pool runs them, retrying each on its own (a worker holds
 * its own encoder and splits in memory). USE-lite shards run one per core. A BERT-family session already spreads
 * every batch over all cores (onnxruntime's intra-op threads), so its shards run one at a time: measured on 2 cores,
 * one session of 2 threads encodes 1.8x the texts per second of two sessions of 1 thread, and holds one copy of the
 * model.
 */
async function featurizeShards(ctx: StageContext, o: LocalRunOptions, runId: string, shardKeys: string[], retries: number): Promise<void> {
  await asStage(o.store, runId, 'featurize', async () => {
    const task = o.reporter.task('featurize', shardKeys.length, 'shards');
    const { config } = await readManifest(o.store, runId);
    const kindOf = (key: string) => config.features[parseShardKey(key)?.feature ?? '']?.kind;
    const inThisThread = async (keys: string[]) => {
      for (const shardKey of keys) {
        await featurize(ctx, { runId, shardKey });
        task.tick();
      }
    };
    const pooled = async (keys: string[], workers: number) => {
      if (keys.length === 0) return;
      let reported = 0;
      await runPool<FeaturizeTask, unknown>(
        keys.map((shardKey) => ({ id: shardKey, input: { storeUrl: o.store.url, dataUrl: o.data.url, runId, shardKey } })),
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
    };
    await inThisThread(shardKeys.filter((k) => kindOf(k) === 'bow'));
    const bert = shardKeys.filter((k) => kindOf(k) === 'bert');
    const others = shardKeys.filter((k) => kindOf(k) !== 'bow' && kindOf(k) !== 'bert');
    const workers = o.workers ?? availableParallelism();
    if (workers <= 1) {
      await inThisThread([...bert, ...others]);
    } else {
      await pooled(bert, 1);
      await pooled(others, workers);
    }
    task.done();
    return { result: undefined };
  });
}

/**
 * Runs the stage graph (src/run/graph.ts) on this machine, in its order, the same stage functions the cloud runs:
 * Prepare, Featurize (every shard), Train (every feature family), Report. A failed stage after Prepare is recorded
 * in the manifest (as MarkFailed does on AWS) and nothing already written is lost: running the same command again
 * resumes. The run holds its run id's lease throughout (renewed every LEASE_RENEW_MS), so a second run of the same
 * id refuses to start, and every write of the run checks the lease's fencing token. A start naming an existing run
 * with another experiment is refused before it writes anything: no experiment overwrite, no failure recorded.
 */
export async function runLocal(o: LocalRunOptions): Promise<LocalRunResult> {
  const expKey = validateKey(experimentKey(basename(o.experimentPath)));
  const body = await readFile(o.experimentPath);
  // The run id Prepare would derive, known before anything is written: the lease is taken first, and a failure in
  // Prepare is recorded in that run's manifest (as the intake names the run before Prepare on AWS).
  const text = body.toString('utf8');
  const exp = parseExperiment(text, o.experimentPath);
  const runId = o.runId ?? deriveRunId(exp, text, undefined, o.quick ?? false, o.full ?? false);
  // A start that would be refused is refused before it writes anything: the run it names stays as it is.
  await refuseOtherExperiment(o.store, runId, expKey, body, o.experimentPath, o.runId !== undefined);
  // Before Prepare reads the data, and before the run is written at all: a run whose model is missing stops in
  // seconds, not after minutes, and leaves no trace of itself.
  await ensureModels(o.store, exp, o.reporter);
  const lock = await lockRun(o.store, runId, (message) => o.reporter.log(message));
  const heartbeat = setInterval(() => lock.renew().catch((err: unknown) => o.reporter.log(`run ${runId}: ${(err as Error).message}`)), LEASE_RENEW_MS);
  heartbeat.unref();
  try {
    await removeStalePartials(o.store, runId, o.reporter);
    // Every write of the run checks that this process still holds its lease (the fencing token).
    const store = fencedStore(o.store, runId, lock.holder.token);
    await o.store.put(expKey, body);
    const deployment = o.deployment ?? planDeploymentOf(await repositoryDeployment());
    return await runStages({ ...o, store }, expKey, runId, deployment);
  } finally {
    clearInterval(heartbeat);
    await lock.release();
  }
}

/** The stage graph's stages on this machine, for a run whose lock is held. */
async function runStages(o: LocalRunOptions, expKey: string, namedRun: string, deployment: PlanDeployment): Promise<LocalRunResult> {
  const ctx: StageContext = { store: o.store, data: o.data, reporter: o.reporter, memo: new Map() };
  let plan: PrepareOutput | undefined;
  let finished: LocalRunResult | undefined;
  const runId = () => {
    if (!plan) throw new InternalError('the stage graph does not start with Prepare');
    return plan.runId;
  };

  const local: Record<StageName, LocalStage> = {
    Prepare: async () => {
      // Featurize runs in this process: Prepare hands it the rows it held instead of the files to read back.
      plan = await prepare(ctx, { experimentKey: expKey, quick: o.quick ?? false, full: o.full ?? false, runId: namedRun }, { deployment, keepSplits: true });
      o.reporter.log(`run ${plan.runId}: ${plan.shardPlan.count} featurize shards, families ${plan.features.join(', ')}; store ${o.store.url}`);
    },
    Featurize: (stage, shardKeys) => featurizeShards(ctx, o, runId(), shardKeys, stage.local.on === 'worker pool' ? stage.local.retries : 0),
    Train: async (_, features) => {
      for (const feature of features) await train(ctx, { runId: runId(), feature });
    },
    Report: async () => {
      const out = await report(ctx, { runId: runId() }, { costOptions: deployment.pricing });
      const results = JSON.parse((await o.store.getOrThrow(out.resultsKey)).toString('utf8')) as Results;
      finished = { runId: runId(), results, report: out };
    },
  };

  for (const stage of STAGES) {
    try {
      await local[stage.name](stage, await fanOutItems(o.store, stage, plan));
    } catch (err) {
      // A run that failed in Prepare before writing its manifest has nowhere to record it; markFailed says so.
      await markFailed(ctx, { runId: plan?.runId ?? namedRun, stage: stage.name, error: { Error: classifyError(err).name, Cause: (err as Error).message } });
      throw err;
    }
  }
  if (!finished) throw new InternalError('the stage graph does not end with Report');
  return finished;
}

/**
 * The default deployment: the repository's cdk.json with `overrides` (as `cdk deploy -c key=value` would apply
 * them), validated as `cdk synth` validates it. A local run and `textshift plan` assume what `cdk deploy` would create
 * from it (prices, memory sizes, cost limits).
 */
export async function repositoryDeployment(overrides: Record<string, string> = {}): Promise<DeployConfig> {
  const file = new URL('../../cdk.json', import.meta.url);
  const config = await readConfigFile(file, overrides);
  if (!config) throw new MissingInputError(`${file.pathname} not found: local runs and textshift plan read the deployment settings (prices, cost limits) from it`);
  return config;
}
