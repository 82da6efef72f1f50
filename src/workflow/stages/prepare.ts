import { createHash } from 'node:crypto';
import { neededParts, parseExperiment, type Experiment } from '../../config/experiment.js';
import { validateKey } from '../../store/blob-store.js';
import { loadDataset } from '../../data/load-dataset.js';
import type { LoadedFile } from '../../run/records.js';
import { subsample } from '../../data/split.js';
import type { Example } from '../../data/read-table.js';
import { fitBow, vocabularyToJson } from '../../features/bow.js';
import { runKeys } from '../../run/keys.js';
import type { StageContext } from '../context.js';
import { asStage, readManifest, writeManifest, type Manifest } from '../../run/manifest.js';
import type { PrepareInput, PrepareOutput } from '../stage-io.js';
import { writeSplit } from '../split-files.js';
import { packageVersions } from '../versions.js';
import type { FeatureIndex, ShardTask } from '../../run/records.js';
import { ConfigError } from '../../errors/index.js';
import { writeShardPlan } from '../../run/shard-plan.js';
import { DEFAULT_FEATURIZE_TIMEOUT_SECONDS, shardRows } from '../../features/throughput.js';

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

/** How Prepare plans shards on this deployment. */
export interface PrepareOptions {
  /** The featurize function's timeout: a family without `shardSize` gets shards of a third of it (default 900 s). */
  featurizeTimeoutSeconds?: number;
}

/**
 * Prepare: validates the experiment and its data, splits (seeded, sklearn-exact), stores every part, fits BoW
 * vocabularies on their configured split, and plans featurize shards. Idempotent: a prepared run returns its
 * stored plan.
 */
export async function prepare(ctx: StageContext, input: PrepareInput, options: PrepareOptions = {}): Promise<PrepareOutput> {
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
    const stored = done ? (JSON.parse(done.toString('utf8')) as Partial<PrepareOutput>) : undefined;
    // A plan from before shard plans were stored in S3 (it listed the keys inline) is planned again.
    if (stored?.shardPlan) {
      ctx.reporter.log(`run ${runId}: already prepared, reusing its splits and plan`);
      return stored as PrepareOutput;
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
    const parts = new Map<string, Example[]>();
    for (const [name, spec] of Object.entries(exp.datasets)) {
      ctx.reporter.log(`loading dataset ${name}`);
      const loaded = await loadDataset(name, spec, ctx.data, exp.seed);
      manifest.inputs[name] = loaded.files.map((f: LoadedFile) => ({ ...f }));
      manifest.skippedRows[name] = { count: loaded.skipped.length, first: loaded.skipped.slice(0, 20) };
      for (const [part, rows] of Object.entries(loaded.parts)) {
        const cap = quick ? exp.quick[name]?.[part] : undefined;
        parts.set(`${name}/${part}`, cap !== undefined && cap < rows.length ? subsample(rows, cap, exp.seed) : rows);
      }
    }
    for (const [dataset, part] of neededParts(exp)) {
      if (!parts.has(`${dataset}/${part}`)) {
        const have = [...parts.keys()].filter((k) => k.startsWith(`${dataset}/`)).map((k) => k.split('/')[1]);
        throw new ConfigError(`experiment ${experimentKey}: dataset "${dataset}" has no part "${part}" (it has ${have.join(', ')}); check its files/splits, stages and evaluation.split`);
      }
    }
    manifest.splits.all = Object.fromEntries([...parts].map(([k, v]) => [k, v.length]));
    for (const [k, rows] of parts) {
      const [dataset, part] = k.split('/') as [string, string];
      await writeSplit(store, keys.split(dataset, part), rows);
    }

    const shardKeys: string[] = [];
    for (const [feature, spec] of Object.entries(exp.features)) {
      if (spec.kind === 'bow') {
        const fit = parts.get(`${spec.fitOn.dataset}/${spec.fitOn.split}`);
        if (!fit) throw new ConfigError(`experiment ${experimentKey}: features.${feature}.fitOn names ${spec.fitOn.dataset}/${spec.fitOn.split}, which does not exist`);
        await store.put(keys.vocabulary(feature), vocabularyToJson(fitBow(fit.map((e) => e.text), spec.maxFeatures)));
      }
      const index: FeatureIndex = { feature, kind: spec.kind, parts: {} };
      const rowsPerShard = shardRows(spec, options.featurizeTimeoutSeconds ?? DEFAULT_FEATURIZE_TIMEOUT_SECONDS);
      const counts: Record<string, number> = {};
      for (const [dataset, part] of neededParts(exp)) {
        const all = parts.get(`${dataset}/${part}`)!;
        const cap = minCap(full ? undefined : exp.subsample[feature]?.[dataset]?.[part], quick ? exp.quickSubsample[feature]?.[dataset]?.[part] : undefined);
        const ids = Array.from({ length: all.length }, (_, i) => i);
        const rows = cap !== undefined && cap < ids.length ? subsample(ids, cap, exp.seed) : ids;
        const entry = { rows: rows.length, labels: rows.map((i) => all[i]!.label), shards: [] as string[] };
        for (let s = 0, i = 0; s < rows.length; s += rowsPerShard, i++) {
          const key = keys.shard(feature, dataset, part, i);
          const task: ShardTask = { feature, dataset, part, splitKey: keys.split(dataset, part), rows: rows.slice(s, s + rowsPerShard) };
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

    // The shard keys go to S3, not into the state: the payload and the execution history stay the same size however
    // many shards there are.
    const output: PrepareOutput = { runId, shardPlan: await writeShardPlan(store, runId, shardKeys), features: Object.keys(exp.features) };
    await writeManifest(store, manifest);
    await store.put(keys.plan, JSON.stringify(output));
    return { result: output };
  });
}
