import { readFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { basename } from 'node:path';
import type { BlobStore } from '../store/blob-store.js';
import { validateKey } from '../store/blob-store.js';
import { experimentKey, parseShardKey } from '../run/keys.js';
import type { Results } from '../run/records.js';
import type { StageContext } from './context.js';
import type { Reporter } from '../run/reporter.js';
import type { ReportOutput } from './stage-io.js';
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

/**
 * Runs the stage graph on this machine, the same stages the cloud runs: Prepare, Featurize (every shard),
 * Train (every feature family), Report. A failed stage is recorded in the manifest (as MarkFailed does on AWS)
 * and nothing already written is lost: running the same command again resumes.
 */
export async function runLocal(o: LocalRunOptions): Promise<LocalRunResult> {
  const ctx: StageContext = { store: o.store, data: o.data, reporter: o.reporter, memo: new Map() };
  const expKey = validateKey(experimentKey(basename(o.experimentPath)));
  await o.store.put(expKey, await readFile(o.experimentPath));
  const plan = await prepare(ctx, { experimentKey: expKey, quick: o.quick ?? false, full: o.full ?? false, ...(o.runId ? { runId: o.runId } : {}) });
  const { runId } = plan;
  o.reporter.log(`run ${runId}: ${plan.shardKeys.length} featurize shards, families ${plan.features.join(', ')}; store ${o.store.url}`);
  let stage = 'Featurize';
  try {
    await asStage(o.store, runId, 'featurize', async () => {
      const task = o.reporter.task('featurize', plan.shardKeys.length, 'shards');
      // BoW shards take milliseconds: this thread. Encoder shards take seconds to minutes: a worker-thread pool
      // runs them in parallel, retrying each on its own (a worker holds its own encoder and splits in memory).
      const { config } = await readManifest(o.store, runId);
      const encoded = (key: string) => config.features[parseShardKey(key)?.feature ?? '']?.kind !== 'bow';
      for (const shardKey of plan.shardKeys.filter((k) => !encoded(k))) {
        await featurize(ctx, { runId, shardKey });
        task.tick();
      }
      const pooled = plan.shardKeys.filter(encoded);
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
            retries: 2,
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
    for (const feature of plan.features) {
      stage = 'Train';
      await train(ctx, { runId, feature });
    }
    stage = 'Report';
    const out = await report(ctx, { runId }, { costOptions: await deploymentCostOptions() });
    const results = JSON.parse((await o.store.getOrThrow(out.resultsKey)).toString('utf8')) as Results;
    return { runId, results, report: out };
  } catch (err) {
    await markFailed(ctx, { runId, stage, error: { Error: classifyError(err).name, Cause: (err as Error).message } });
    throw err;
  }
}

/**
 * The pricing choices of the default deployment (the repository's cdk.json, validated as `cdk synth` validates it),
 * so a local run's estimate prices the instance type, market and Lambda memory sizes `cdk deploy` would create, as
 * the deployed Report function does. Empty when the file is not there.
 */
export async function deploymentCostOptions(): Promise<Partial<CostOptions>> {
  const config = await readConfigFile(new URL('../../cdk.json', import.meta.url));
  return config ? costOptionsOf(config) : {};
}
