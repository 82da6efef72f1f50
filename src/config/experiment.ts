import { z } from 'zod';
import { ConfigError } from '../errors/index.js';

const name = z
  .string()
  .regex(/^[a-z0-9][a-z0-9_-]*$/, 'expected lower-case letters, digits, "_" or "-", starting with a letter or digit');

const relPath = z
  .string()
  .min(1)
  .refine((p) => !p.startsWith('/') && !p.split('/').includes('..'), 'expected a path relative to the data root, without ".."');

/** Which column holds the text / the label: a header name (CSV with header) or a 0-based index. */
const column = z.union([z.string().min(1), z.number().int().nonnegative()]);

/** A table file of one dataset: TSV or CSV, plain or gzip, streamed. */
export const FileSpec = z.strictObject({
  path: relPath.describe('file under the data root; a .gz suffix means gzip'),
  format: z.enum(['tsv', 'csv']),
  header: z.boolean().default(false).describe('first line holds column names'),
  text: column.describe('column of the text'),
  label: column.describe('column of the label'),
});

/** One sklearn-style train_test_split step: `from` is split into `train` and `test` parts. */
export const SplitStep = z.strictObject({
  from: name.describe('an existing part (a file key or an earlier step output)'),
  testSize: z.number().gt(0).lt(1).describe('fraction of rows that go to `test` (ceil, as sklearn)'),
  train: name,
  test: name,
});

export const DatasetSpec = z.strictObject({
  description: z.string().optional(),
  files: z.record(name, FileSpec).describe('named source parts, e.g. {"train": ..., "test": ...}'),
  labels: z
    .record(z.string(), z.number().int().nonnegative())
    .describe('raw label value -> class index, e.g. {"negative": 0, "positive": 1}'),
  classNames: z.array(z.string().min(1)).min(2).describe('name of each class index'),
  splits: z.array(SplitStep).default([]).describe('applied in order with the experiment seed'),
  onBadRow: z.enum(['error', 'skip']).default('error').describe('skip counts bad rows in the manifest instead of failing'),
});

const SHARD_SIZE_DOC = 'texts per featurize shard; unset: as many as the encoder featurizes in a third of the featurize timeout';

export const BowFeature = z.strictObject({
  kind: z.literal('bow'),
  maxFeatures: z.number().int().positive().default(10000),
  fitOn: z.strictObject({ dataset: name, split: name }).describe('the split the vocabulary is fitted on'),
  shardSize: z.number().int().positive().optional().describe(SHARD_SIZE_DOC),
});

export const BertFeature = z.strictObject({
  kind: z.literal('bert'),
  model: relPath.describe('model folder (HF/optimum layout) under the store prefix models/ or the data root'),
  pooling: z.enum(['mean', 'max', 'cls', 'sep']).default('mean'),
  maxLength: z.number().int().min(2).max(512).default(512),
  batchSize: z.number().int().positive().default(32),
  shardSize: z.number().int().positive().optional().describe(SHARD_SIZE_DOC),
});

export const UseFeature = z.strictObject({
  kind: z.literal('use'),
  batchSize: z.number().int().positive().default(64),
  shardSize: z.number().int().positive().optional().describe(SHARD_SIZE_DOC),
});

export const FeatureSpec = z.discriminatedUnion('kind', [BowFeature, BertFeature, UseFeature]);

export const ModelSpec = z.strictObject({
  hidden: z.array(z.number().int().positive()).min(1).default([512, 256, 128, 64]),
  activation: z.literal('relu').default('relu'),
  dropout: z.number().min(0).lt(1).default(0.3),
});

export const TrainingSpec = z.strictObject({
  optimizer: z.literal('adam').default('adam'),
  learningRate: z.number().positive().default(1e-4),
  batchSize: z.number().int().positive().default(32),
  epochs: z.number().int().positive().default(10),
  checkpointEvery: z.number().int().positive().default(2),
  selectBy: z.literal('val_accuracy').default('val_accuracy'),
  sparseAdam: z
    .enum(['lazy', 'dense'])
    .default('lazy')
    .describe('first-layer Adam for sparse (BoW) input: lazy updates only rows present in the batch'),
});

export const StageSpec = z.strictObject({
  name: name.describe('model suffix: <feature>_<name>'),
  dataset: name,
  from: name.optional().describe('stage whose best model this one fine-tunes (fresh optimizer)'),
  train: z.literal('train').default('train'),
  val: z.literal('val').default('val'),
});

export const EvaluationSpec = z.strictObject({
  datasets: z.array(name).min(1),
  split: name.default('test'),
});

/** Caps per dataset part, applied after splitting (seeded, stratification-free). */
export const SubsampleSpec = z.record(name, z.record(name, z.number().int().positive()));

export const ExperimentSpec = z
  .strictObject({
    $schema: z.string().optional(),
    name,
    description: z.string().optional(),
    seed: z.number().int().nonnegative().default(42),
    datasets: z.record(name, DatasetSpec),
    features: z.record(name, FeatureSpec),
    model: ModelSpec.prefault({}),
    training: TrainingSpec.prefault({}),
    stages: z.array(StageSpec).min(1),
    evaluation: EvaluationSpec,
    subsample: z
      .record(name, SubsampleSpec)
      .default({})
      .describe('per feature family: caps on dataset parts (e.g. the local contextual family on IMDB)'),
    quick: SubsampleSpec.default({}).describe('caps applied to every family under --quick'),
    quickSubsample: z
      .record(name, SubsampleSpec)
      .default({})
      .describe('per feature family: extra caps under --quick (keeps a slow encoder family within the quick budget)'),
  })
  .superRefine((exp, ctx) => {
    const datasets = Object.keys(exp.datasets);
    const stageNames = new Set<string>();
    exp.stages.forEach((s, i) => {
      if (!datasets.includes(s.dataset)) {
        ctx.addIssue({ code: 'custom', path: ['stages', i, 'dataset'], message: `unknown dataset "${s.dataset}"; expected one of ${datasets.join(', ')}` });
      }
      if (s.from !== undefined && !stageNames.has(s.from)) {
        ctx.addIssue({ code: 'custom', path: ['stages', i, 'from'], message: `"${s.from}" is not an earlier stage` });
      }
      if (stageNames.has(s.name)) ctx.addIssue({ code: 'custom', path: ['stages', i, 'name'], message: `duplicate stage "${s.name}"` });
      stageNames.add(s.name);
    });
    exp.evaluation.datasets.forEach((d, i) => {
      if (!datasets.includes(d)) {
        ctx.addIssue({ code: 'custom', path: ['evaluation', 'datasets', i], message: `unknown dataset "${d}"; expected one of ${datasets.join(', ')}` });
      }
    });
    for (const [fname, f] of Object.entries(exp.features)) {
      if (f.kind === 'bow' && !datasets.includes(f.fitOn.dataset)) {
        ctx.addIssue({ code: 'custom', path: ['features', fname, 'fitOn', 'dataset'], message: `unknown dataset "${f.fitOn.dataset}"` });
      }
    }
  });

export type Experiment = z.infer<typeof ExperimentSpec>;
export type DatasetConfig = z.infer<typeof DatasetSpec>;
export type FileConfig = z.infer<typeof FileSpec>;
export type FeatureConfig = z.infer<typeof FeatureSpec>;
export type ModelConfig = z.infer<typeof ModelSpec>;
export type TrainingConfig = z.infer<typeof TrainingSpec>;
export type StageConfig = z.infer<typeof StageSpec>;

/** An experiment file that failed validation; the message lists every problem with its field path. */
export class ExperimentError extends ConfigError {
  constructor(
    readonly source: string,
    readonly problems: string[],
  ) {
    super(`${source}: invalid experiment\n${problems.map((p) => `  - ${p}`).join('\n')}`);
  }
}

/** Parses and validates an experiment (JSON text); `source` names the file in errors. */
export function parseExperiment(text: string, source: string): Experiment {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new ExperimentError(source, [`not valid JSON: ${(err as Error).message}`]);
  }
  const result = ExperimentSpec.safeParse(raw);
  if (!result.success) {
    throw new ExperimentError(
      source,
      result.error.issues.map((i) => `${i.path.length ? i.path.join('.') : '(root)'}: ${i.message}`),
    );
  }
  return result.data;
}

/** The published JSON Schema of experiment files. */
export function experimentJsonSchema(): Record<string, unknown> {
  return z.toJSONSchema(ExperimentSpec, { io: 'input', unrepresentable: 'any' }) as Record<string, unknown>;
}

/** The dataset parts a family needs: every stage's train and val parts and every evaluated test part. */
export function neededParts(exp: Experiment): [string, string][] {
  const out = new Map<string, [string, string]>();
  for (const s of exp.stages) {
    out.set(`${s.dataset}/${s.train}`, [s.dataset, s.train]);
    out.set(`${s.dataset}/${s.val}`, [s.dataset, s.val]);
  }
  for (const d of exp.evaluation.datasets) out.set(`${d}/${exp.evaluation.split}`, [d, exp.evaluation.split]);
  return [...out.values()];
}
