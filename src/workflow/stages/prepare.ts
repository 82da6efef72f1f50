import { createHash } from 'node:crypto';
import { neededParts, parseExperiment, type Experiment } from '../../config/experiment.js';
import { validateKey } from '../../store/blob-store.js';
import { subsample } from '../../data/split.js';
import { runKeys } from '../../run/keys.js';
import type { StageContext } from '../context.js';
import { asStage, readManifest, writeManifest, type Manifest } from '../../run/manifest.js';
import type { PrepareInput, PrepareOutput } from '../stage-io.js';
import { prepareData } from '../prepare-data.js';
import { packageVersions } from '../versions.js';
import type { FeatureIndex, ShardTask } from '../../run/records.js';

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

function minCap(a: number | undefined, b: number | undefined): number | undefined {
  return a === undefined ? b : b === undefined ? a : Math.min(a, b);
}

/**
 * Prepare: validates the experiment and its data, splits (seeded, sklearn-exact), stores every part, fits BoW
 * vocabularies on their configured split, and plans featurize shards. Idempotent: a prepared run returns its
 * stored plan.
 */
export async function prepare(ctx: StageContext, input: PrepareInput): Promise<PrepareOutput> {
  const { store } = ctx;
  const experimentKey = validateKey(input.experimentKey);
  const text = (await store.getOrThrow(experimentKey)).toString('utf8');
  const exp = parseExperiment(text, `${store.url}/${experimentKey}`);
  const quick = input.quick ?? false;
  const full = input.full ?? false;
  const runId = input.runId ?? deriveRunId(exp, text, input.uploadId, quick, full);
  validateKey(`runs/${runId}`);
  const keys = runKeys(runId);

  const existing = await store.get(keys.manifest);
  if (existing) {
    const done = await store.get(keys.plan);
    if (done) {
      ctx.reporter.log(`run ${runId}: already prepared, reusing its splits and plan`);
      return JSON.parse(done.toString('utf8')) as PrepareOutput;
    }
  }
  const manifest: Manifest = existing
    ? await readManifest(store, runId)
    : {
        runId,
        experiment: { key: experimentKey, name: exp.name, sha256: createHash('sha256').update(text).digest('hex') },
        config: exp,
        quick,
        full,
        createdAt: new Date().toISOString(),
        updatedAt: '',
        status: 'running',
        inputs: {},
        skippedRows: {},
        splits: {},
        stages: {},
        versions: packageVersions(),
      };
  await writeManifest(store, manifest);

  return asStage(store, runId, 'prepare', async () => {
    const { inputs, skipped, parts } = await prepareData(ctx, exp, keys, experimentKey, quick);
    manifest.inputs = inputs;
    manifest.skippedRows = skipped;
    manifest.splits.all = Object.fromEntries([...parts].map(([k, v]) => [k, v.labels.length]));

    const shardKeys: string[] = [];
    for (const [feature, spec] of Object.entries(exp.features)) {
      const index: FeatureIndex = { feature, kind: spec.kind, parts: {} };
      const counts: Record<string, number> = {};
      for (const [dataset, part] of neededParts(exp)) {
        const all = parts.get(`${dataset}/${part}`)!;
        const cap = minCap(full ? undefined : exp.subsample[feature]?.[dataset]?.[part], quick ? exp.quickSubsample[feature]?.[dataset]?.[part] : undefined);
        const ids = Array.from({ length: all.labels.length }, (_, i) => i);
        const rows = cap !== undefined && cap < ids.length ? subsample(ids, cap, exp.seed) : ids;
        const entry = { rows: rows.length, labels: rows.map((i) => all.labels[i]!), shards: [] as string[] };
        for (let s = 0, i = 0; s < rows.length; s += spec.shardSize, i++) {
          const key = keys.shard(feature, dataset, part, i);
          const lines = rows.slice(s, s + spec.shardSize).map((i) => all.lines[i]!);
          const task: ShardTask = { feature, dataset, part, splitKey: keys.split(dataset, part), rows: lines };
          await store.put(key, JSON.stringify(task));
          entry.shards.push(key);
          shardKeys.push(key);
        }
        index.parts[`${dataset}/${part}`] = entry;
        counts[`${dataset}/${part}`] = rows.length;
      }
      manifest.splits[feature] = counts;
      await store.put(keys.featureIndex(feature), JSON.stringify(index));
    }

    const output: PrepareOutput = { runId, shardKeys, features: Object.keys(exp.features) };
    await writeManifest(store, manifest);
    await store.put(keys.plan, JSON.stringify(output));
    return { result: output };
  });
}
