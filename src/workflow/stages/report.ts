import type { CostOptions, RunUsage } from '../../cost/cost.js';
import { writeRunReport } from '../../report/index.js';
import { parseShardKey, runKeys, shardResultKey } from '../../run/keys.js';
import type { FamilyResult, Results, StageUsage, ShardResult, FeatureIndex } from '../../run/records.js';
import { writeCheckpointArchive } from '../checkpoint-archive.js';
import type { StageContext } from '../context.js';
import { asStage, readManifest, updateManifest, type Manifest } from '../../run/manifest.js';
import type { ReportInput, ReportOutput } from '../stage-io.js';
// Type only: the featurize stage module loads the encoders (ONNX Runtime), which the Report Lambda does not carry.
import { estimateStateTransitions } from '../../cost/transitions.js';
import { releaseRun } from '../../cost/spend-ledger.js';
import { MissingInputError } from '../../errors/index.js';

/** Collects what the run used from its manifest and shard results (the cost report's input). */
export async function measuredUsage(ctx: StageContext, manifest: Manifest): Promise<{ usage: RunUsage; encoded: NonNullable<Manifest['encoded']>; shards: number }> {
  const { store } = ctx;
  const keys = runKeys(manifest.runId);
  const stages: Record<string, StageUsage[]> = {};
  for (const [name, rec] of Object.entries(manifest.stages)) {
    if (rec.usage) (stages[name.split(':')[0]!] ??= []).push(rec.usage);
  }
  // Families of one encoder pass list the same shards: each shard is counted once, under its pass.
  const encoded: NonNullable<Manifest['encoded']> = {};
  const counted = new Set<string>();
  let shards = 0;
  let featurizeSeconds = 0;
  for (const feature of Object.keys(manifest.config.features)) {
    const index = JSON.parse((await store.getOrThrow(keys.featureIndex(feature))).toString('utf8')) as FeatureIndex;
    for (const part of Object.values(index.parts)) {
      for (const shardKey of part.shards) {
        const pass = (encoded[parseShardKey(shardKey)?.feature ?? feature] ??= { families: [], texts: 0, cachedShards: 0, computedShards: 0 });
        if (!pass.families.includes(feature)) pass.families.push(feature);
        if (counted.has(shardKey)) continue;
        counted.add(shardKey);
        const r = JSON.parse((await store.getOrThrow(shardResultKey(shardKey))).toString('utf8')) as ShardResult;
        shards++;
        featurizeSeconds += r.seconds;
        if (r.encoder !== undefined) pass.encoder = r.encoder;
        if (r.cached) pass.cachedShards++;
        else {
          pass.computedShards++;
          pass.texts += r.rows;
        }
      }
    }
  }
  stages.featurize = [
    { seconds: featurizeSeconds, memoryMb: 1024, kind: 'lambda', invocations: shards, requests: { put: 2 * shards, get: 3 * shards, list: 0 }, bytesWritten: 0 },
  ];
  let storedBytes = 0;
  for (const o of await store.list(`${keys.root}/`)) storedBytes += o.size;
  const usage: RunUsage = {
    basis: 'measured',
    stages,
    // The run on AWS as docs/aws.md deploys it: started by an upload, so its intake execution is billed too.
    stateTransitions: estimateStateTransitions(shards, Object.keys(manifest.config.features).length, 'upload'),
    storedBytes,
  };
  return { usage, encoded, shards };
}

/** How the Report stage prices the run. */
export interface ReportOptions {
  /**
   * The run's billed usage (a run on AWS), given its measured usage. When it fails, the report uses the measured
   * usage and says why in the cost report's notes.
   */
  billedUsage?: (measured: RunUsage) => Promise<RunUsage>;
  costOptions?: Partial<CostOptions>;
}

/** The usage the cost report prices: billed when `billedUsage` is given and works, else measured (with the reason). */
async function pricedUsage(ctx: StageContext, measured: RunUsage, billed: ReportOptions['billedUsage']): Promise<RunUsage> {
  if (!billed) return measured;
  try {
    return await billed(measured);
  } catch (err) {
    const why = `Billed usage unavailable (${err instanceof Error ? err.message : String(err)}); priced from the stages' measured usage instead.`;
    ctx.reporter.log(`report: ${why}`);
    return { ...measured, notes: [...(measured.notes ?? []), why] };
  }
}

/**
 * Report: the results table (md/csv/json), HTML report, confusion matrices, cost report and checkpoints.zip.
 * Marks the run succeeded in its manifest.
 */
export async function report(ctx: StageContext, input: ReportInput, options: ReportOptions = {}): Promise<ReportOutput> {
  const { store } = ctx;
  const keys = runKeys(input.runId);
  return asStage(store, input.runId, 'report', async () => {
    const manifest = await readManifest(store, input.runId);
    const exp = manifest.config;
    const families: FamilyResult[] = [];
    for (const feature of Object.keys(exp.features)) {
      const buf = await store.get(keys.trainResult(feature));
      if (!buf) throw new MissingInputError(`report: feature family "${feature}" has no training result (${keys.trainResult(feature)}); run its train stage first`);
      families.push(JSON.parse(buf.toString('utf8')) as FamilyResult);
    }
    const results: Results = {
      runId: input.runId,
      experiment: exp.name,
      classNames: Object.fromEntries(Object.entries(exp.datasets).map(([d, s]) => [d, s.classNames])),
      datasets: exp.evaluation.datasets,
      models: families.flatMap((f) => f.models),
      evaluations: families.flatMap((f) => f.evaluations),
    };
    const archive = await writeCheckpointArchive(store, input.runId);
    ctx.reporter.log(`checkpoint archive: ${archive.key} (${archive.entries} files)`);
    const measured = await measuredUsage(ctx, manifest);
    const usage = await pricedUsage(ctx, measured.usage, options.billedUsage);
    const finished = await updateManifest(store, input.runId, (m) => {
      m.encoded = measured.encoded;
      m.status = 'succeeded';
      // A run that succeeded after a failure (a redrive or a re-run) no longer has one.
      delete m.failure;
    });
    const costOptions = options.costOptions === undefined ? {} : { costOptions: options.costOptions };
    const { keys: written } = await writeRunReport(store, input.runId, { results, manifest: finished, usage, ...costOptions });
    // The run has ended: another may take its slot (src/cost/spend-ledger.ts; a run never admitted has none).
    await releaseRun(store, input.runId, 'succeeded');
    return {
      result: {
        runId: input.runId,
        resultsKey: written.resultsJson,
        reportKey: written.html,
        costKey: written.costJson ?? '',
        archiveKey: archive.key,
      },
    };
  });
}
