import { getHeapStatistics } from 'node:v8';
import { neededParts, type DatasetConfig, type Experiment } from '../config/experiment.js';
import { fileOrderLines, partLabels, planDataset, streamParts, type DatasetPlan, type PartRows } from '../data/load-dataset.js';
import { subsample } from '../data/split.js';
import type { Example } from '../data/read-table.js';
import { TermCounter, vocabularyToJson } from '../features/bow.js';
import type { runKeys } from '../run/keys.js';
import type { LoadedFile, SkippedRow } from '../run/records.js';
import { ConfigError } from '../errors/index.js';
import { remember, type StageContext } from './context.js';
import { openSplitWriter, splitMemoKey, type SplitWriter } from './split-files.js';

/** One stored part of a dataset, in the order the splits put its rows (scikit-learn's). */
export interface PreparedPart {
  /** Class index of each row. */
  labels: Int32Array;
  /** Each row's 0-based line in the part's split file, which lists the rows in source-file order. */
  lines: Uint32Array;
}

/** What Prepare's data step read and wrote. */
export interface PreparedData {
  /** Per dataset: its files as read. */
  inputs: Record<string, LoadedFile[]>;
  skipped: Record<string, { count: number; first: SkippedRow[] }>;
  /** `<dataset>/<part>` -> the part. */
  parts: Map<string, PreparedPart>;
}

/**
 * A file with at most this many characters of text is held after Prepare's first read instead of being read and
 * parsed again to write the splits (IMDB's 50,000 reviews are 65 M characters, ~70 MB of strings; parsing them
 * again costs ~2.5 s). An eighth of V8's heap limit (4 GB on a 24 GB machine: 518 M characters; 22 M under
 * `--max-old-space-size=128`), so a run never holds more than its heap allows; larger files are streamed twice.
 */
export function holdTextChars(): number {
  return Math.floor(getHeapStatistics().heap_size_limit / 8);
}

/** Prepare's first read of the datasets: their splits as row indices, checked against the experiment; nothing written. */
export interface ReadData {
  plans: Map<string, { plan: DatasetPlan; parts: Record<string, PartRows> }>;
  result: PreparedData;
}

/**
 * Prepare's data step, first half. Reads each dataset once for the row count, labels and text lengths (and the
 * texts themselves, for files up to holdTextChars()), from which
 * the splits (sklearn-exact) and `--quick` caps choose each part's rows by index. Writes nothing, and fails when
 * the experiment names a part that does not exist, so the cost guard can size the run from it (`fileProfiles`)
 * before anything of the run is stored.
 */
export async function readData(ctx: StageContext, exp: Experiment, experimentKey: string, quick: boolean): Promise<ReadData> {
  const plans: ReadData['plans'] = new Map();
  const result: PreparedData = { inputs: {}, skipped: {}, parts: new Map() };
  for (const [name, spec] of Object.entries(exp.datasets)) {
    ctx.reporter.log(`reading dataset ${name}`);
    const plan = await planDataset(name, spec, ctx.data, exp.seed, holdTextChars());
    const parts: Record<string, PartRows> = {};
    for (const [part, rows] of Object.entries(plan.parts)) {
      const cap = quick ? exp.quick[name]?.[part] : undefined;
      parts[part] = cap !== undefined && cap < rows.rows.length ? { file: rows.file, rows: Uint32Array.from(subsample(rows.rows, cap, exp.seed)) } : rows;
      result.parts.set(`${name}/${part}`, { labels: partLabels(plan, parts[part]), lines: fileOrderLines(parts[part]) });
    }
    plans.set(name, { plan, parts });
    result.inputs[name] = plan.files;
    result.skipped[name] = plan.skipped;
  }
  for (const [dataset, part] of neededParts(exp)) {
    if (!result.parts.has(`${dataset}/${part}`)) {
      const have = [...result.parts.keys()].filter((k) => k.startsWith(`${dataset}/`)).map((k) => k.split('/')[1]);
      throw new ConfigError(`experiment ${experimentKey}: dataset "${dataset}" has no part "${part}" (it has ${have.join(', ')}); check its files/splits, stages and evaluation.split`);
    }
  }
  for (const [feature, spec] of Object.entries(exp.features)) {
    if (spec.kind !== 'bow') continue;
    const part = `${spec.fitOn.dataset}/${spec.fitOn.split}`;
    if (!result.parts.has(part)) throw new ConfigError(`experiment ${experimentKey}: features.${feature}.fitOn names ${part}, which does not exist`);
  }
  return { plans, result };
}

/** Rows and mean text length of each dataset file as the first read found them (what `textshift plan` reads a file for). */
export function fileProfiles(read: ReadData): (dataset: string, part: string) => { rows: number; meanChars: number } {
  return (dataset, part) => {
    const plan = read.plans.get(dataset)?.plan;
    const rows = plan?.files.find((f) => f.part === part)?.rows;
    if (plan === undefined || rows === undefined) throw new ConfigError(`dataset "${dataset}" has no file part "${part}"`);
    return { rows, meanChars: rows === 0 ? 0 : plan.textChars[part]! / rows };
  };
}

/**
 * Prepare's data step, second half. Streams every row of each dataset (held, or read again) into its part's split
 * file (`keys.split`) and the term counts of each BoW family fitted on that part; the vocabularies are stored after
 * the splits. With `keepSplits`, a held dataset's parts are also left in `ctx.memo` as readSplit would return them.
 */
export async function writeData(ctx: StageContext, exp: Experiment, keys: ReturnType<typeof runKeys>, read: ReadData, keepSplits = false): Promise<PreparedData> {
  // One counter per fitted part, shared by the BoW families fitted on it.
  const counters = new Map<string, TermCounter>();
  for (const spec of Object.values(exp.features)) {
    if (spec.kind === 'bow') counters.set(`${spec.fitOn.dataset}/${spec.fitOn.split}`, new TermCounter());
  }
  for (const [name, { plan, parts }] of read.plans) {
    ctx.reporter.log(`writing the splits of dataset ${name}`);
    await writeParts(ctx, name, exp.datasets[name]!, plan, parts, keys, counters, keepSplits);
  }
  for (const [feature, spec] of Object.entries(exp.features)) {
    if (spec.kind !== 'bow') continue;
    const counter = counters.get(`${spec.fitOn.dataset}/${spec.fitOn.split}`)!;
    await ctx.store.put(keys.vocabulary(feature), vocabularyToJson(counter.fit(spec.maxFeatures)));
  }
  return read.result;
}

/**
 * Streams one dataset's rows into its parts' split files (and term counters); on failure no split file of it is stored.
 * With `keepSplits`, when the first read held every file's texts, the rows written are also left in the process memo,
 * so a Featurize in the same process (a local run) does not read back, gunzip and parse what it was just given
 * (IMDB: about 0.4 s).
 */
async function writeParts(
  ctx: StageContext,
  dataset: string,
  spec: DatasetConfig,
  plan: DatasetPlan,
  parts: Record<string, PartRows>,
  keys: ReturnType<typeof runKeys>,
  counters: ReadonlyMap<string, TermCounter>,
  keepSplits: boolean,
): Promise<void> {
  const writers = new Map<string, SplitWriter>(Object.keys(parts).map((part) => [part, openSplitWriter(ctx.store, keys.split(dataset, part))]));
  // Held texts only: keeping a streamed file's rows would hold what streaming exists to avoid.
  const held = keepSplits && ctx.memo !== undefined && Object.values(parts).every((p) => plan.texts[p.file] !== undefined);
  const written = held ? new Map<string, Example[]>(Object.keys(parts).map((part) => [part, []])) : undefined;
  try {
    await streamParts(spec, ctx.data, plan, parts, (part, example) => {
      counters.get(`${dataset}/${part}`)?.add(example.text);
      written?.get(part)!.push(example);
      return writers.get(part)!.write(example);
    });
  } catch (err) {
    await Promise.all([...writers.values()].map((w) => w.abort(err as Error)));
    throw err;
  }
  await Promise.all([...writers.values()].map((w) => w.finish()));
  for (const [part, rows] of written ?? []) remember(ctx, splitMemoKey(keys.split(dataset, part)), rows);
}
