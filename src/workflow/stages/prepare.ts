import { createHash } from 'node:crypto';
import { familyCap, neededParts, parseExperiment, type Experiment } from '../../config/experiment.js';
import { encoderPasses } from '../../config/encoder-passes.js';
import { validateKey } from '../../store/blob-store.js';
import { subsample } from '../../data/split.js';
import { runKeys } from '../../run/keys.js';
import type { StageContext } from '../context.js';
import { asStage, createManifest, findManifest, readManifest, updateManifest, type Manifest } from '../../run/manifest.js';
import { InputChangedError, checkPinned, pinDatasets, pinnedRecord, pinnedStore, readExperiment, type ExperimentRead } from '../pinned-inputs.js';
import { pinModels } from '../pinned-models.js';
import type { PrepareInput, PrepareOutput } from '../stage-io.js';
import { fileProfiles, readData, writeData } from '../prepare-data.js';
import { packageVersions } from '../versions.js';
import type { FeatureIndex, ShardTask } from '../../run/records.js';
import type { PlanDeployment } from '../../config/deployment.js';
import { guardRun } from '../../cost/guard.js';
import type { FileProfile, Plan } from '../../cost/plan.js';
import { formatMoney } from '../../cost/cost.js';
import { writeShardPlan } from '../../run/shard-plan.js';
import { takeRun } from '../fence.js';
import { admissionText, admitRun } from '../../cost/spend-ledger.js';
import { writeShardTasks } from '../shard-tasks.js';

/** What Prepare is told by its edge (the Lambda handler, the local runner). */
export interface PrepareOptions {
  /** What the deployment runs and allows a run to cost: the cost guard plans the run against it before any compute. */
  deployment: PlanDeployment;
  /**
   * Leave the rows of every held dataset in `ctx.memo` for a Featurize in this process (the local runner). A Lambda's
   * Featurize runs elsewhere, so its Prepare keeps nothing.
   */
  keepSplits?: boolean;
}

/** Derives a run id from the experiment content and upload identity: the same upload is the same run. */
export function deriveRunId(exp: Experiment, experimentText: string, uploadId: string | undefined, quick: boolean, full = false): string {
  const h = createHash('sha256')
    .update(experimentText)
    .update('\0')
    .update(uploadId ?? '')
    .update(quick ? '\0quick' : '')
    .update(full ? '\0full' : '')
    .digest('hex');
  return `${exp.name}-${quick ? 'quick-' : ''}${full ? 'full-' : ''}${h.slice(0, 12)}`;
}

/**
 * Prepare: validates the experiment and its data, refuses a run over its shard or cost limits (the cost guard),
 * splits (seeded, sklearn-exact), stores every part, fits BoW vocabularies on their configured split, and plans
 * featurize shards, one plan per encoder pass. Idempotent: a prepared run returns its stored plan.
 */
export async function prepare(ctx: StageContext, input: PrepareInput, options: PrepareOptions): Promise<PrepareOutput> {
  const experimentKey = validateKey(input.experimentKey);
  // A run that exists already (a retry, redrive or resume) reads the experiment version it pinned.
  const pinnedRun = input.runId === undefined ? undefined : await findManifest(ctx.store, input.runId);
  const read = await readExperiment(ctx.store, experimentKey, {
    ...(pinnedRun ? { pinned: pinnedRun.experiment } : {}),
    ...(input.experimentVersion ? { version: input.experimentVersion } : {}),
    ...(input.runId ? { runId: input.runId } : {}),
  });
  const text = read.text;
  const exp = parseExperiment(text, `${ctx.store.url}/${experimentKey}`);
  const quick = input.quick ?? false;
  const full = input.full ?? false;
  const runId = input.runId ?? deriveRunId(exp, text, input.uploadId, quick, full);
  validateKey(`runs/${runId}`);
  const keys = runKeys(runId);
  // Everything above only read. An execution takes the run's lease before its first write (a local run holds it
  // already), and every later write of the run checks its fencing token: a start refused above, or by a lease another
  // execution holds, has written nothing to the run.
  // An execution's lease holds as long as the execution can run (the state machine's timeout, maxRunHours).
  const holdsHours = options.deployment.spend?.maxRunHours;
  const store = input.execution === undefined ? ctx.store : await takeRun(ctx, runId, { execution: input.execution, ...(holdsHours ? { holdsMs: holdsHours * 3600_000 } : {}) });
  ctx = { ...ctx, store };

  const existing = pinnedRun ?? (await findManifest(store, runId));
  if (existing) {
    const done = await store.get(keys.plan);
    const stored = done ? (JSON.parse(done.toString('utf8')) as Partial<PrepareOutput>) : undefined;
    // A plan from before shard plans were stored in S3 (it listed the keys inline) is planned again.
    if (stored?.shardPlan) {
      // Its splits came from the pinned files: a file that changed since cannot be read at its pinned version.
      await checkPinned(ctx.data, existing.pinned ?? {}, runId);
      ctx.reporter.log(`run ${runId}: already prepared, reusing its splits and plan`);
      return stored as PrepareOutput;
    }
  }
  const manifest: Manifest = existing ?? (await createRunManifest(store, { runId, experimentKey, exp, read, quick, full }));
  return asStage(store, runId, 'prepare', async () => {
    const pins = await pinDatasets(ctx.data, store, manifest, datasetFiles(exp));
    await pinModels(store, manifest, exp);
    const data = pinnedStore(ctx.data, pins, runId);
    // The guard sizes the run from the first read of the pinned files, before any split, shard or vocabulary is
    // written (the same read plans the splits: the files are not read once more for the guard).
    const read = await readData({ ...ctx, data }, exp, experimentKey, quick);
    const { rowsPerShard } = await checkBudget(ctx, exp, fileProfiles(read), options.deployment, { runId, source: `${store.url}/${experimentKey}`, quick, full });
    const { inputs, skipped, parts } = await writeData({ ...ctx, data }, exp, keys, read, options.keepSplits ?? false);
    manifest.inputs = Object.fromEntries(Object.entries(inputs).map(([name, files]) => [name, files.map((f) => pinnedRecord(f, pins, ctx.data, runId))]));
    manifest.skippedRows = skipped;
    manifest.splits.all = Object.fromEntries([...parts].map(([k, v]) => [k, v.labels.length]));

    // One shard plan per encoder pass: families that differ only in pooling read the same shards.
    const shardKeys: string[] = [];
    for (const pass of encoderPasses(exp, { quick, full })) {
      const { name } = pass;
      const perShard = rowsPerShard[name]!;
      const planned: FeatureIndex['parts'] = {};
      for (const [dataset, part] of neededParts(exp)) {
        const all = parts.get(`${dataset}/${part}`)!;
        const cap = familyCap(exp, name, dataset, part, { quick, full });
        const ids = Array.from({ length: all.labels.length }, (_, i) => i);
        const rows = cap !== undefined && cap < ids.length ? subsample(ids, cap, exp.seed) : ids;
        const tasks: ShardTask[] = [];
        for (let s = 0; s < rows.length; s += perShard) {
          const lines = rows.slice(s, s + perShard).map((i) => all.lines[i]!);
          tasks.push({ feature: name, dataset, part, splitKey: keys.split(dataset, part), rows: lines });
        }
        const { keys: shards } = await writeShardTasks(ctx, keys, tasks);
        planned[`${dataset}/${part}`] = { rows: rows.length, labels: rows.map((i) => all.labels[i]!), shards };
        shardKeys.push(...shards);
      }
      for (const feature of pass.families) {
        const own = exp.features[feature]!;
        const index: FeatureIndex = { feature, kind: own.kind, ...(own.kind === 'bert' ? { pooling: own.pooling } : {}), parts: planned };
        manifest.splits[feature] = Object.fromEntries(Object.entries(planned).map(([part, entry]) => [part, entry.rows]));
        await store.put(keys.featureIndex(feature), JSON.stringify(index));
      }
    }

    // The shard keys go to S3, not into the state: the payload and the execution history stay the same size however
    // many shards there are.
    const output: PrepareOutput = { runId, shardPlan: await writeShardPlan(store, runId, shardKeys), features: Object.keys(exp.features) };
    await updateManifest(store, runId, (m) => {
      m.inputs = manifest.inputs;
      m.skippedRows = manifest.skippedRows;
      m.splits = manifest.splits;
    });
    await store.put(keys.plan, JSON.stringify(output));
    return { result: output };
  });
}

/**
 * The cost guard, before anything of the run is computed or written: a refusal fails Prepare (a permanent error).
 * Returns the plan's rows per shard of each encoder pass, the shards Prepare writes.
 */
async function checkBudget(
  ctx: StageContext,
  exp: Experiment,
  sizes: (dataset: string, part: string) => FileProfile,
  deployment: PlanDeployment,
  run: { runId: string; source: string; quick: boolean; full: boolean },
): Promise<Pick<Plan, 'rowsPerShard'>> {
  const { check, plan } = await guardRun(exp, { profile: async (dataset, part) => sizes(dataset, part), models: ctx.store }, deployment, run);
  const { shards, cost } = check;
  // Spend across runs, on a deployment only (it gives the caps): a slot and room in today's budget, or a refusal.
  if (deployment.spend) ctx.reporter.log(admissionText(await admitRun(ctx.store, { runId: run.runId, estimateUsd: cost.estimateUsd, source: run.source }, deployment.spend)));
  ctx.reporter.log(
    `run ${run.runId}: planned cost ${formatMoney(cost.estimateUsd, 'USD')} within its limit $${cost.limitUsd} (${cost.limitFrom}); ${shards.planned} featurize shards`,
  );
  return plan;
}

/** The data-store key of every dataset file the experiment reads. */
function datasetFiles(exp: Experiment): string[] {
  return Object.values(exp.datasets).flatMap((d) => Object.values(d.files).map((f) => f.path));
}

/**
 * Creates the manifest of a new run, pinned to the experiment as read. When another Prepare of the same run created it
 * first (a duplicate start), that one stands, provided it pinned the same experiment bytes.
 */
async function createRunManifest(
  store: StageContext['store'],
  o: { runId: string; experimentKey: string; exp: Experiment; read: ExperimentRead; quick: boolean; full: boolean },
): Promise<Manifest> {
  const { runId, read } = o;
  const manifest: Manifest = {
    runId,
    experiment: {
      key: o.experimentKey,
      name: o.exp.name,
      sha256: read.sha256,
      ...(read.version === undefined ? {} : { version: read.version }),
      ...(read.etag === undefined ? {} : { etag: read.etag }),
    },
    config: o.exp,
    quick: o.quick,
    full: o.full,
    createdAt: new Date().toISOString(),
    updatedAt: '',
    status: 'running',
    inputs: {},
    skippedRows: {},
    splits: {},
    stages: {},
    versions: packageVersions(),
  };
  if (await createManifest(store, manifest)) return manifest;
  const first = await readManifest(store, runId);
  if (first.experiment.sha256 !== read.sha256) {
    throw new InputChangedError(`run ${runId} was started meanwhile on other bytes of ${o.experimentKey} (sha256 ${first.experiment.sha256}, not ${read.sha256})`);
  }
  return first;
}
