import { z } from 'zod';
import { ConfigError } from '../errors/index.js';
import { MAX_SEED } from '../random/mt19937.js';

// At most 48 characters: a training job's name carries its family's, and Batch allows 128 in all.
const name = z
  .string()
  .max(48)
  .regex(/^[a-z0-9][a-z0-9_-]*$/, 'expected lower-case letters, digits, "_" or "-", starting with a letter or digit');

const relPath = z
  .string()
  .min(1)
  .refine((p) => !p.startsWith('/') && !p.split('/').includes('..'), 'expected a path relative to the data root, without ".."');

/**
 * A BERT-family model's name, and the one statement of where models live: the folder `models/<name>/` of the run
 * store, which `textshift models import|fetch` writes. Segments as in Hugging Face repository names.
 */
export const ModelName = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9._-]*(\/[A-Za-z0-9][A-Za-z0-9._-]*)*$/, 'expected letters, digits, ".", "_" or "-" (segments separated by "/", each starting with a letter or digit)')
  .refine((n) => !n.split('/').some((s) => /^\.+$/.test(s)), 'expected no "." or ".." segments')
  .describe(
    'model name: the ONNX model folder models/<name>/ in the run store (out/models/<name>/ locally, s3://<bucket>/models/<name>/ on AWS), written by `textshift models import` or `textshift models fetch`',
  );

/** Which column holds the text / the label: a header name (CSV with header) or a 0-based index. */
const column = z.union([z.string().min(1), z.number().int().nonnegative()]);

/** A table file of one dataset: TSV or CSV, plain or gzip, streamed. */
export const FileSpec = z.strictObject({
  path: relPath.describe('file under the data root; a .gz suffix means gzip'),
  format: z.enum(['tsv', 'csv']),
  header: z.boolean().default(false).describe('first line holds column names'),
  text: column.describe('column of the text'),
  label: column.describe('column of the label'),
  // Limits on what one file may make Prepare read: a gzip bomb, a runaway record or a flood of tiny rows fails naming
  // the file (and line) instead of exhausting the Lambda's memory or time.
  maxBytes: z
    .number()
    .int()
    .positive()
    .max(2 ** 40)
    .default(4 * 2 ** 30)
    .describe('most bytes the file may hold after decompression (default 4 GiB, at most 1 TiB)'),
  maxRecordBytes: z
    .number()
    .int()
    .positive()
    .max(2 ** 28)
    .default(2 ** 20)
    .describe('most bytes of one record, from its first byte to its line ending, quoted line breaks included (default 1 MiB, at most 256 MiB)'),
  maxRows: z
    .number()
    .int()
    .positive()
    .max(100_000_000)
    .default(10_000_000)
    .describe('most data rows the file may hold (default 10 million, at most 100 million); Prepare keeps a few dozen bytes per row'),
});

/** One sklearn-style train_test_split step: `from` is split into `train` and `test` parts. */
export const SplitStep = z.strictObject({
  from: name.describe('an existing part (a file key or an earlier step output)'),
  testSize: z.number().gt(0).lt(1).describe('fraction of rows that go to `test` (ceil, as sklearn)'),
  train: name,
  test: name,
});

/**
 * Classes of one dataset, at most. The report is what bounds them, not training (a 2048 × 500 output layer, 16 MB of
 * logits at batch 8192): a confusion matrix is drawn with one SVG cell per (true, predicted) pair, about 430 bytes
 * each (measured), so 500 classes make a 110 MB matrix, about the largest REPORT_CONFUSION_BYTES holds (with class
 * names of up to 50 characters).
 */
const MAX_CLASSES = 500;

/**
 * Confusion-matrix SVG that report.html may hold (every model on every evaluated dataset), as the schema estimates it
 * from the experiment. Report builds the page as one string: measured, a 109 MB page (250,000 cells) took 22 s and
 * 1.0 GB of peak RSS, a third of the Report Lambda's 3008 MB. One model on 1,150 classes crashed Report (issue 20):
 * its matrix alone is over V8's limit of 2^29 - 24 characters a string.
 */
const REPORT_CONFUSION_BYTES = 128 * 2 ** 20;

export const DatasetSpec = z
  .strictObject({
    description: z.string().optional(),
    files: z.record(name, FileSpec).describe('named source parts, e.g. {"train": ..., "test": ...}'),
    labels: z
      .record(z.string(), z.number().int().nonnegative())
      // zod drops a "__proto__" entry (no object holds it as data): parseExperiment refuses it by name instead.
      .meta({ propertyNames: { type: 'string', not: { const: '__proto__' } } })
      .describe('raw label value -> class index, e.g. {"negative": 0, "positive": 1}; "__proto__" cannot be a raw label'),
    classNames: z
      .array(z.string().min(1))
      .min(2)
      .max(MAX_CLASSES)
      .describe(
        `name of each class index, 2-${MAX_CLASSES} classes: every model's confusion matrix on a dataset has one SVG cell per ` +
          '(true, predicted) pair, in its own file and in report.html, so a report grows with the square of the classes ' +
          '(500 classes: 110 MB a matrix)',
      ),
    splits: z.array(SplitStep).default([]).describe('applied in order with the experiment seed'),
    onBadRow: z.enum(['error', 'skip']).default('error').describe('skip counts bad rows in the manifest instead of failing'),
  })
  .superRefine((spec, ctx) => {
    // Here rather than in Prepare, so that `textshift plan` and the CLI refuse it before reading any data.
    for (const [raw, index] of Object.entries(spec.labels)) {
      if (index >= spec.classNames.length) {
        ctx.addIssue({
          code: 'custom',
          path: ['labels', raw],
          message: `maps to class ${index}, but classNames has ${spec.classNames.length} entries (indexes 0-${spec.classNames.length - 1})`,
        });
      }
    }
  });

/**
 * The bounds of an experiment: generous for research, but no uploaded file can ask for unbounded compute, memory or
 * objects. Each field's description (and docs/guide.md's "Experiment files") says why; Prepare's cost guard
 * (src/cost/guard.ts) bounds what they add up to.
 */
export const EXPERIMENT_LIMITS = {
  epochs: 1000,
  hiddenLayers: 8,
  hiddenSize: 2048,
  maxFeatures: 200_000,
  featureFamilies: 10,
  stages: 10,
  shardSize: { min: 10, max: 100_000 },
  /** A BERT-family row holds all four poolings of its text: a quarter of the rows keeps a shard's object as small. */
  bertShardSize: { min: 10, max: 25_000 },
  trainingBatchSize: 8192,
  encoderBatchSize: 256,
  maxLength: 512,
  shardsPerRun: 100_000,
  classes: MAX_CLASSES,
  reportConfusionBytes: REPORT_CONFUSION_BYTES,
} as const;
const L = EXPERIMENT_LIMITS;

/**
 * Rows per featurize shard (one Lambda invocation, one cache object), within `bounds`; unset, the planner sizes shards
 * from the encoder's measured throughput (src/features/throughput.ts). `row` says how large a row of the shard's object
 * is: at most 307 MB of vectors in one object and one invocation's memory.
 */
const shardSize = (bounds: { min: number; max: number } = L.shardSize, row = '768 float32') =>
  z
    .number()
    .int()
    .min(bounds.min)
    .max(bounds.max)
    .optional()
    .describe(
      `rows per featurize shard (one Lambda invocation each), ${bounds.min}-${bounds.max}; unset: as many as the ` +
        `encoder featurizes in a third of the featurize function's timeout. Below ${bounds.min} rows a shard ` +
        `spends more on its invocation and object requests than on its texts; ${bounds.max} rows keep one shard's ` +
        `vectors in memory and in one object (${bounds.max.toLocaleString('en-US')} × ${row} = 307 MB)`,
    );

/** Texts per encoder batch (USE, BERT). */
const encoderBatchSize = (fallback: number) =>
  z
    .number()
    .int()
    .positive()
    .max(L.encoderBatchSize)
    .default(fallback)
    .describe(
      `texts per encoder batch, at most ${L.encoderBatchSize}: a batch of 256 texts of 512 tokens holds 3.2 GB of attention ` +
        'scores per BERT layer (256 × 12 heads × 512² float32), a third of the largest Lambda',
    );

export const BowFeature = z.strictObject({
  kind: z.literal('bow'),
  maxFeatures: z
    .number()
    .int()
    .positive()
    .max(L.maxFeatures)
    .default(10000)
    .describe(
      `vocabulary size (input width of the MLP), at most ${L.maxFeatures.toLocaleString('en-US')}: about twice the ` +
        '101,895 distinct terms of all 50,000 IMDB reviews; with hidden sizes up to 2048 the first layer stays under ' +
        '410 M parameters, which train within a 16 GB GPU',
    ),
  fitOn: z.strictObject({ dataset: name, split: name }).describe('the split the vocabulary is fitted on'),
  shardSize: shardSize(),
});

/** Sentence poolings of a BERT-family encoder, in the order a shared encoder pass stores them. */
export const POOLING_MODES = ['mean', 'max', 'cls', 'sep'] as const;

/** One pooling mode. */
export type PoolingMode = (typeof POOLING_MODES)[number];

const poolingMode = z.enum(POOLING_MODES);

/**
 * One pooling, or a list that expands the family into one family per pooling (`<name>_<pooling>`). The message names
 * what was wrong, because a union's own message ("Invalid input") does not.
 */
const pooling = z
  .union(
    [
      poolingMode,
      z
        .array(poolingMode)
        .min(1)
        .refine((list) => new Set(list).size === list.length, { error: (issue) => poolingProblem(issue.input) })
        // The JSON Schema keyword of the same rule, for editors that validate with the published schema.
        .meta({ uniqueItems: true }),
    ],
    { error: (issue) => poolingProblem(issue.input) },
  )
  .default('mean')
  .describe(
    `sentence pooling over the real tokens: one of ${POOLING_MODES.join(', ')}, or a list of them, which makes one family per ` +
      'pooling named <family>_<pooling> (e.g. bert_mean), all fed by one encoder pass over each text',
  );

/** Why a `pooling` value is not one pooling or a list of distinct poolings. */
function poolingProblem(input: unknown): string {
  const expected = `expected one of ${POOLING_MODES.join(', ')}`;
  if (!Array.isArray(input)) return `${expected}, or a list of them (got ${JSON.stringify(input)})`;
  const bad = input.findIndex((p) => !(POOLING_MODES as readonly unknown[]).includes(p));
  if (bad >= 0) return `item ${bad}: ${expected} (got ${JSON.stringify(input[bad])})`;
  const repeated = input.findIndex((p, i) => input.indexOf(p) !== i);
  return `item ${repeated}: "${String(input[repeated])}" is already listed; each pooling may appear once`;
}

export const BertFeature = z.strictObject({
  kind: z.literal('bert'),
  model: ModelName,
  pooling,
  maxLength: z
    .number()
    .int()
    .min(2)
    .max(L.maxLength)
    .default(512)
    .describe(`tokens per text, 2-${L.maxLength}: BERT-family position embeddings end at 512, and [CLS] and [SEP] need 2`),
  batchSize: encoderBatchSize(32),
  shardSize: shardSize(L.bertShardSize, `${POOLING_MODES.length} poolings × 768 float32`),
});

export const UseFeature = z.strictObject({
  kind: z.literal('use'),
  batchSize: encoderBatchSize(64),
  shardSize: shardSize(),
});

export const FeatureSpec = z.discriminatedUnion('kind', [BowFeature, BertFeature, UseFeature]);

export const ModelSpec = z.strictObject({
  hidden: z
    .array(z.number().int().positive().max(L.hiddenSize))
    .min(1)
    .max(L.hiddenLayers)
    .default([512, 256, 128, 64])
    .describe(
      `hidden layer widths: 1-${L.hiddenLayers} layers of at most ${L.hiddenSize} units (4x the seed's widest): the largest ` +
        'model these bounds allow (200,000 × 2048 first layer, 7 more of 2048²) has 440 M parameters, 7 GB with gradients ' +
        "and Adam's moments, within the 16 GB of the default g4dn.xlarge's T4",
    ),
  activation: z.literal('relu').default('relu'),
  dropout: z.number().min(0).lt(1).default(0.3),
});

export const TrainingSpec = z.strictObject({
  optimizer: z.literal('adam').default('adam'),
  learningRate: z.number().positive().default(1e-4),
  batchSize: z
    .number()
    .int()
    .positive()
    .max(L.trainingBatchSize)
    .default(32)
    .describe(
      `examples per optimizer step, at most ${L.trainingBatchSize}: activations stay small (8192 × 2048 float32 = 64 MiB a ` +
        'layer), and larger batches leave these datasets a handful of steps per epoch',
    ),
  epochs: z
    .number()
    .int()
    .positive()
    .max(L.epochs)
    .default(10)
    .describe(
      `epochs per stage, at most ${L.epochs} (100x the seed's 10, whose validation accuracy peaks within them): every ` +
        'epoch adds to each training job',
    ),
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

const SEED_RANGE = `expected an integer in 0-${MAX_SEED} (2^32 - 1): the splits are numpy's RandomState permutations, whose Mersenne Twister takes a 32-bit seed`;

const ExperimentObject = z
  .strictObject({
    $schema: z.string().optional(),
    name,
    description: z.string().optional(),
    seed: z
      .number()
      .int()
      .min(0, SEED_RANGE)
      .max(MAX_SEED, SEED_RANGE)
      .default(42)
      .describe(`seed of the splits, subsamples, initial weights and shuffles, 0-${MAX_SEED} (2^32 - 1): the splits are numpy's RandomState permutations, whose Mersenne Twister takes a 32-bit seed`),
    datasets: z.record(name, DatasetSpec),
    features: z
      .record(name, FeatureSpec)
      .superRefine((features, ctx) => {
        const n = Object.values(features).reduce((sum, f) => sum + familyCount(f), 0);
        const lists = n > Object.keys(features).length ? ', each pooling of a pooling list counted as a family' : '';
        if (n > L.featureFamilies) ctx.addIssue({ code: 'custom', message: `Too big: expected at most ${L.featureFamilies} feature families (got ${n}${lists})` });
      })
      .meta({
        description:
          `feature families, at most ${L.featureFamilies}: each is featurized on every needed dataset part and trains in ` +
          'a Batch job of its own',
        // The JSON Schema keyword of the same bound, for editors that validate with the published schema.
        maxProperties: L.featureFamilies,
      }),
    model: ModelSpec.prefault({}),
    training: TrainingSpec.prefault({}),
    stages: z
      .array(StageSpec)
      .min(1)
      .max(L.stages)
      .describe(`training stages, 1-${L.stages}, each fine-tuning an earlier one or starting fresh: every stage adds its epochs to every family's job`),
    budgetUsd: z
      .number()
      .positive()
      .optional()
      .describe(
        "this run's cost limit in USD, replacing the deployment's maxRunCostUsd; at most the deployment's " +
          "maxRunCostCeilingUsd. Prepare refuses a run whose planned cost is above its limit (textshift plan shows both)",
      ),
    evaluation: EvaluationSpec,
    subsample: z
      .record(name, SubsampleSpec)
      .default({})
      .describe(
        'per feature family: caps on dataset parts (e.g. the local contextual family on IMDB); a cap on a family with a ' +
          'pooling list caps each of its families',
      ),
    quick: SubsampleSpec.default({}).describe('caps applied to every family under --quick'),
    quickSubsample: z
      .record(name, SubsampleSpec)
      .default({})
      .describe('per feature family: extra caps under --quick (keeps a slow encoder family within the quick budget)'),
  });

/** An experiment file's schema: validation, then each pooling list expanded into one family per pooling. */
export const ExperimentSpec = ExperimentObject
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
      // Every model is evaluated once per listed dataset: a repeat would be evaluated twice and fail the report.
      if (exp.evaluation.datasets.indexOf(d) !== i) {
        ctx.addIssue({ code: 'custom', path: ['evaluation', 'datasets', i], message: `"${d}" is already listed; each dataset is evaluated once` });
      }
    });
    for (const [fname, f] of Object.entries(exp.features)) {
      if (f.kind === 'bow' && !datasets.includes(f.fitOn.dataset)) {
        ctx.addIssue({ code: 'custom', path: ['features', fname, 'fitOn', 'dataset'], message: `unknown dataset "${f.fitOn.dataset}"` });
      }
      if (f.kind === 'bert' && Array.isArray(f.pooling)) {
        for (const p of f.pooling) {
          if (`${fname}_${p}` in exp.features) {
            ctx.addIssue({
              code: 'custom',
              path: ['features', fname, 'pooling'],
              message: `"${p}" makes a family named "${fname}_${p}", which features.${fname}_${p} already defines; rename one of them`,
            });
          }
        }
      }
    }
    // A cap keyed by a family name that does not exist would silently cap nothing.
    const families = [...Object.keys(exp.features), ...Object.entries(exp.features).flatMap(([f, spec]) => expandedNames(f, spec))];
    for (const field of ['subsample', 'quickSubsample'] as const) {
      for (const fname of Object.keys(exp[field])) {
        if (!families.includes(fname)) {
          const known = families.length > 10 ? `${families.slice(0, 10).join(', ')}, …` : families.join(', ');
          ctx.addIssue({ code: 'custom', path: [field, fname], message: `no feature family "${fname}"; expected one of ${known}` });
        }
      }
    }
    checkClasses(exp, ctx);
    if (checkModelNames(exp, ctx)) checkReportSize(exp, ctx);
  })
  .transform(expandPoolingLists);

type Ctx = z.RefinementCtx<ParsedExperiment>;

/** The name of the model a family trains in a stage: `<family>_<stage>`, its folder models/<id>/, logs and report rows. */
export function modelId(family: string, stage: string): string {
  return `${family}_${stage}`;
}

/** The classes of a run's models: every dataset a model trains or is evaluated on has the same classNames (the schema checks). */
export function classCount(exp: Experiment): number {
  return exp.datasets[exp.stages[0]!.dataset]!.classNames.length;
}

/** Every family a run trains (pooling lists expanded), with its entry in `features` and how to name it in an error. */
function runFamilies(exp: ParsedExperiment): { family: string; entry: string; defined: string }[] {
  return Object.entries(exp.features).flatMap(([entry, f]) => {
    if (f.kind !== 'bert' || !Array.isArray(f.pooling)) return [{ family: entry, entry, defined: `family "${entry}"` }];
    return f.pooling.map((p) => ({ family: `${entry}_${p}`, entry, defined: `family "${entry}_${p}" (features.${entry}, pooling "${p}")` }));
  });
}

/**
 * Refuses two (family, stage) pairs that make one model id (families "a" and "a_b", stages "b_c" and "c" both make
 * "a_b_c": one would reuse the other's models/ folder), and two (model, dataset) pairs that make one confusion file
 * `report/confusion/<model>__<dataset>.svg` (src/report/confusion-svg.ts). Names may hold "_", so only the pairs tell.
 * True when every name is unique.
 */
function checkModelNames(exp: ParsedExperiment, ctx: Ctx): boolean {
  const models = new Map<string, { defined: string; stage: string }>();
  let unique = true;
  for (const { family, entry, defined } of runFamilies(exp)) {
    for (const { name: stage } of exp.stages) {
      const id = modelId(family, stage);
      const first = models.get(id);
      if (first === undefined) {
        models.set(id, { defined, stage });
      } else if (first.stage !== stage) {
        unique = false;
        ctx.addIssue({
          code: 'custom',
          path: ['features', entry],
          message:
            `${defined} with stage "${stage}" and ${first.defined} with stage "${first.stage}" both make the model "${id}" ` +
            '(models are named <family>_<stage>); rename a family or a stage',
        });
      }
    }
  }
  if (!unique) return false;
  const files = new Map<string, string>();
  for (const model of models.keys()) {
    for (const dataset of new Set(exp.evaluation.datasets)) {
      const file = `${model}__${dataset}.svg`;
      const first = files.get(file);
      if (first === undefined) {
        files.set(file, `model "${model}" on dataset "${dataset}"`);
      } else {
        // One is enough: the other families' models collide alike, on the same stage and dataset names.
        ctx.addIssue({
          code: 'custom',
          path: ['evaluation', 'datasets'],
          message: `model "${model}" on dataset "${dataset}" and ${first} both make the confusion matrix report/confusion/${file} (named <model>__<dataset>.svg); rename a stage, family or dataset`,
        });
        return false;
      }
    }
  }
  return true;
}

/**
 * Refuses datasets a model trains or is evaluated on whose classNames differ from the first stage's dataset: output i
 * of a model is class i on each of them (a stage fine-tunes another's output layer, and every model is evaluated on
 * every evaluation dataset), so a different count would fail in Train after training.
 */
function checkClasses(exp: ParsedExperiment, ctx: Ctx): void {
  const first = exp.stages[0];
  const ref = first && exp.datasets[first.dataset];
  if (!first || !ref) return;
  const seen = new Set([first.dataset]);
  const uses: [string, (string | number)[]][] = [
    ...exp.stages.map((s, i): [string, (string | number)[]] => [s.dataset, ['stages', i, 'dataset']]),
    ...exp.evaluation.datasets.map((d, i): [string, (string | number)[]] => [d, ['evaluation', 'datasets', i]]),
  ];
  const quoted = (names: string[]) => names.map((n) => JSON.stringify(n)).join(', ');
  for (const [dataset, path] of uses) {
    const spec = exp.datasets[dataset];
    if (!spec || seen.has(dataset)) continue;
    seen.add(dataset);
    const [k, k1] = [spec.classNames.length, ref.classNames.length];
    const theirs = `dataset "${first.dataset}" (stage "${first.name}")`;
    let problem: string | undefined;
    if (k !== k1) problem = `dataset "${dataset}" has ${k} classes and ${theirs} has ${k1}`;
    else if (spec.classNames.some((n, i) => n !== ref.classNames[i])) {
      problem = `dataset "${dataset}" names its ${k} classes ${quoted(spec.classNames)} and ${theirs} names them ${quoted(ref.classNames)}`;
    }
    if (problem !== undefined) {
      ctx.addIssue({
        code: 'custom',
        path,
        message: `${problem}: every dataset a model trains or is evaluated on needs the same classNames, in the same order, because output i of a model is class i on all of them`,
      });
    }
  }
}

/** Characters of report.html per confusion-matrix cell: 420 measured, plus the cell's title naming two classes. */
const CELL_CHARS = 420;

/**
 * Refuses an experiment whose report would hold more confusion-matrix SVG than REPORT_CONFUSION_BYTES: every model
 * is drawn on every evaluated dataset, (k + 2)² cells for k classes (the labels around it counted as cells), each
 * of CELL_CHARS plus two class names as escaped in XML.
 */
function checkReportSize(exp: ParsedExperiment, ctx: Ctx): void {
  const models = runFamilies(exp).length * exp.stages.length;
  const datasets = [...new Set(exp.evaluation.datasets)].map((d) => exp.datasets[d]).filter((d) => d !== undefined);
  const escaped = (n: string) => n.length + 5 * (n.match(/[&<>"']/g)?.length ?? 0);
  const perModel = datasets.reduce((sum, d) => sum + (d.classNames.length + 2) ** 2 * (CELL_CHARS + 2 * Math.max(...d.classNames.map(escaped))), 0);
  const bytes = models * perModel;
  if (bytes <= REPORT_CONFUSION_BYTES) return;
  const mib = (n: number) => `${Math.ceil(n / 2 ** 20).toLocaleString('en-US')} MiB`;
  ctx.addIssue({
    code: 'custom',
    path: ['evaluation', 'datasets'],
    message:
      `the report would draw ${models * datasets.length} confusion matrices (${models} models × ${datasets.length} datasets) of up to ` +
      `${Math.max(...datasets.map((d) => d.classNames.length))} classes, about ${mib(bytes)} of SVG in report.html; at most ` +
      `${mib(REPORT_CONFUSION_BYTES)} fits (the Report stage builds the page in memory): evaluate fewer datasets, train fewer ` +
      'families or stages, or use fewer classes',
  });
}

/** An experiment as validated, before pooling lists are expanded. */
type ParsedExperiment = z.output<typeof ExperimentObject>;
type ParsedFeature = z.output<typeof FeatureSpec>;

/** A feature family as a run uses it: a BERT-family family has exactly one pooling. */
export type FeatureConfig = Exclude<ParsedFeature, { kind: 'bert' }> | (Omit<Extract<ParsedFeature, { kind: 'bert' }>, 'pooling'> & { pooling: PoolingMode });

/** A validated experiment: every family has one pooling (a list became one family per pooling). */
export type Experiment = Omit<ParsedExperiment, 'features'> & { features: Record<string, FeatureConfig> };

/** How many families a family of the file becomes: one per pooling of a pooling list, else one. */
function familyCount(f: ParsedFeature): number {
  return f.kind === 'bert' && Array.isArray(f.pooling) ? f.pooling.length : 1;
}

/** Names of the families a pooling list expands into (none for any other family). */
function expandedNames(fname: string, f: ParsedFeature): string[] {
  return f.kind === 'bert' && Array.isArray(f.pooling) ? f.pooling.map((p) => `${fname}_${p}`) : [];
}

/**
 * Replaces each BERT-family family with a pooling list by one family per pooling, `<name>_<pooling>`, in the list's
 * order and at the family's place. Its `subsample` and `quickSubsample` caps apply to each of them, unless a cap names
 * the expanded family itself. Families that differ only in pooling then share one encoder pass (src/config/encoder-passes.ts).
 */
function expandPoolingLists(exp: ParsedExperiment): Experiment {
  const features: Record<string, FeatureConfig> = {};
  const subsample = { ...exp.subsample };
  const quickSubsample = { ...exp.quickSubsample };
  for (const [fname, f] of Object.entries(exp.features)) {
    if (f.kind !== 'bert' || !Array.isArray(f.pooling)) {
      features[fname] = f as FeatureConfig;
      continue;
    }
    for (const p of f.pooling) {
      const family = `${fname}_${p}`;
      features[family] = { ...f, pooling: p };
      for (const caps of [subsample, quickSubsample]) if (caps[fname] !== undefined) caps[family] ??= caps[fname];
    }
    delete subsample[fname];
    delete quickSubsample[fname];
  }
  return { ...exp, features, subsample, quickSubsample };
}

export type DatasetConfig = z.infer<typeof DatasetSpec>;
export type FileConfig = z.infer<typeof FileSpec>;
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
  const reserved = protoKeys(raw).map((path) => `${path}: "__proto__" cannot be a key: JavaScript objects reserve it, so the entry would be dropped silently`);
  const result = ExperimentSpec.safeParse(raw, { reportInput: true });
  if (!result.success || reserved.length > 0) {
    const issues = result.error?.issues ?? [];
    throw new ExperimentError(source, [...reserved, ...issues.map((i) => `${i.path.length ? i.path.join('.') : '(root)'}: ${issueText(i)}${rejectedValue(i)}`)]);
  }
  return result.data;
}

/** An issue in words; a bad name of a record entry (a family, dataset or file) says what a name must be. */
function issueText(issue: z.core.$ZodIssue): string {
  if (issue.code !== 'invalid_key') return issue.message;
  return `invalid name: ${issue.issues.map((i) => (i.code === 'too_big' ? `expected at most ${String(i.maximum)} characters` : i.message)).join('; ')}`;
}

/**
 * Paths of the `__proto__` keys in parsed JSON (which JSON.parse keeps as data): zod skips such an entry of a record,
 * so `labels: {"__proto__": 0, "1": 1}` would lose a class without a word. Iterative: the file's nesting is the user's.
 */
function protoKeys(root: unknown): string[] {
  const found: string[] = [];
  const stack: [unknown, string[]][] = [[root, []]];
  while (stack.length > 0) {
    const [value, path] = stack.pop()!;
    if (value === null || typeof value !== 'object') continue;
    for (const [key, child] of Object.entries(value)) {
      if (key === '__proto__' && !Array.isArray(value)) found.push([...path, key].join('.'));
      else stack.push([child, [...path, key]]);
    }
  }
  return found.sort();
}

/** The value a bound rejected, for the error line: ` (got 1000000000)`, ` (got 9 items)`; empty for other problems. */
function rejectedValue(issue: z.core.$ZodIssue): string {
  if (issue.code !== 'too_big' && issue.code !== 'too_small') return '';
  if (typeof issue.input === 'number') return ` (got ${issue.input})`;
  if (Array.isArray(issue.input)) return ` (got ${issue.input.length} items)`;
  return '';
}

/** The published JSON Schema of experiment files. */
export function experimentJsonSchema(): Record<string, unknown> {
  return z.toJSONSchema(ExperimentSpec, { io: 'input', unrepresentable: 'any' }) as Record<string, unknown>;
}

/**
 * The row cap of one feature family on one dataset part, as a run applies it: the family's `subsample` cap (lifted
 * by `full`) and, under `quick`, its `quickSubsample` cap, whichever is smaller; undefined when uncapped.
 */
export function familyCap(exp: Experiment, feature: string, dataset: string, part: string, mode: { quick: boolean; full: boolean }): number | undefined {
  const caps = [mode.full ? undefined : exp.subsample[feature]?.[dataset]?.[part], mode.quick ? exp.quickSubsample[feature]?.[dataset]?.[part] : undefined];
  const set = caps.filter((c): c is number => c !== undefined);
  return set.length === 0 ? undefined : Math.min(...set);
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
