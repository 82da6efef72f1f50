// Experiment files: the default experiment is valid, every error names the field and what was expected, and
// the committed JSON Schema is the one the validator uses.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { EXPERIMENT_LIMITS, ExperimentError, experimentJsonSchema, modelId, parseExperiment } from '../../../src/config/experiment.js';
import { numpyPermutation } from '../../../src/data/split.js';
import { confusionFileName } from '../../../src/report/confusion-svg.js';

const defaultText = readFileSync('experiments/sst2-imdb.json', 'utf8');
// The experiment as loose JSON, so a test can break any field.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Loose = any;
const withChange = (edit: (e: Loose) => void): string => {
  const e = JSON.parse(defaultText) as Loose;
  edit(e);
  return JSON.stringify(e);
};
const problems = (text: string): string[] => {
  try {
    parseExperiment(text, 'experiments/x.json');
  } catch (err) {
    expect(err).toBeInstanceOf(ExperimentError);
    expect((err as Error).message).toMatch(/^experiments\/x\.json: invalid experiment/);
    return (err as ExperimentError).problems;
  }
  throw new Error('expected the experiment to be rejected');
};

describe('experiment files', () => {
  it('the default experiment is the seed lab', () => {
    const e = parseExperiment(defaultText, 'experiments/sst2-imdb.json');
    expect(e.seed).toBe(42);
    expect(e.model).toEqual({ hidden: [512, 256, 128, 64], activation: 'relu', dropout: 0.3 });
    expect(e.training).toMatchObject({ learningRate: 1e-4, batchSize: 32, epochs: 10, checkpointEvery: 2 });
    expect(e.stages.map((s) => [s.name, s.dataset, s.from])).toEqual([['1', 'sst2', undefined], ['2', 'imdb', '1']]);
    expect(e.features.bow).toMatchObject({ kind: 'bow', maxFeatures: 10000, fitOn: { dataset: 'sst2', split: 'train' } });
    // The seed's pooling study: one BERT-family family per pooling, on a seeded IMDB subsample each.
    expect(Object.keys(e.features)).toEqual(['bow', 'bert_mean', 'bert_max', 'bert_cls', 'bert_sep']);
    expect(e.features.bert_cls).toMatchObject({ kind: 'bert', model: 'all-minilm-l6-v2', pooling: 'cls', maxLength: 256 });
    expect(e.subsample).toEqual(Object.fromEntries(['mean', 'max', 'cls', 'sep'].map((p) => [`bert_${p}`, { imdb: { train: 2000, val: 500, test: 1000 } }])));
  });

  it('the USE-lite variant of the seed lab is valid too', () => {
    const e = parseExperiment(readFileSync('experiments/sst2-imdb-use.json', 'utf8'), 'experiments/sst2-imdb-use.json');
    expect(Object.keys(e.features)).toEqual(['bow', 'use']);
    expect(e.subsample.use).toEqual({ imdb: { train: 2000, val: 500, test: 2000 } });
  });

  it('the int8 variant of the seed lab is the default experiment with the int8 model, nothing else changed', () => {
    const path = 'experiments/sst2-imdb-int8.json';
    const int8 = JSON.parse(readFileSync(path, 'utf8')) as Loose;
    const base = JSON.parse(defaultText) as Loose;
    expect(int8.features.bert.model).toBe('all-minilm-l6-v2-int8');
    expect({ ...int8, name: base.name, description: base.description, features: { ...int8.features, bert: { ...int8.features.bert, model: base.features.bert.model } } }).toEqual(base);
    expect(parseExperiment(readFileSync(path, 'utf8'), path).features.bert_mean).toMatchObject({ kind: 'bert', model: 'all-minilm-l6-v2-int8', pooling: 'mean' });
  });

  describe('pooling: one value or a list (one family per pooling)', () => {
    const bert = (extra: Loose) => withChange((e) => (e.features.bert = { kind: 'bert', model: 'm', ...extra }));

    it('keeps a single pooling as one family of that name (as before lists existed); mean when unset', () => {
      expect(parseExperiment(bert({ pooling: 'max' }), 'x').features.bert).toMatchObject({ pooling: 'max' });
      expect(parseExperiment(bert({}), 'x').features.bert).toMatchObject({ pooling: 'mean' });
    });

    it('expands a list in its order, at the family\'s place, each family with its caps unless it has its own', () => {
      const e = parseExperiment(
        withChange((x) => {
          x.features = { bert: { kind: 'bert', model: 'm', pooling: ['sep', 'cls'] }, bow: x.features.bow };
          x.subsample = { bert: { imdb: { test: 10 } }, bert_cls: { imdb: { test: 20 } } };
          x.quickSubsample = {};
        }),
        'x',
      );
      expect(Object.keys(e.features)).toEqual(['bert_sep', 'bert_cls', 'bow']);
      expect([e.features.bert_sep, e.features.bert_cls].map((f) => f?.kind === 'bert' && f.pooling)).toEqual(['sep', 'cls']);
      expect(e.subsample).toEqual({ bert_sep: { imdb: { test: 10 } }, bert_cls: { imdb: { test: 20 } } });
    });

    it('names the family, the item and what was expected for a bad pooling or list', () => {
      expect(problems(bert({ pooling: 'avg' }))).toEqual(['features.bert.pooling: expected one of mean, max, cls, sep, or a list of them (got "avg")']);
      expect(problems(bert({ pooling: 3 }))).toEqual(['features.bert.pooling: expected one of mean, max, cls, sep, or a list of them (got 3)']);
      expect(problems(bert({ pooling: [] }))).toEqual(['features.bert.pooling: Too small: expected array to have >=1 items (got 0 items)']);
      expect(problems(bert({ pooling: ['mean', 'avg'] }))).toEqual(['features.bert.pooling: item 1: expected one of mean, max, cls, sep (got "avg")']);
      expect(problems(bert({ pooling: ['mean', 'max', 'mean'] }))).toEqual([
        'features.bert.pooling: item 2: "mean" is already listed; each pooling may appear once',
      ]);
    });

    it('refuses a list whose family names are taken, more than 10 families in all, and caps on no family', () => {
      expect(problems(withChange((e) => (e.features.bert_max = { kind: 'use' })))).toEqual([
        'features.bert.pooling: "max" makes a family named "bert_max", which features.bert_max already defines; rename one of them',
      ]);
      const lists = Object.fromEntries(['a', 'b', 'c'].map((n) => [n, { kind: 'bert', model: 'm', pooling: ['mean', 'max', 'cls', 'sep'] }]));
      expect(problems(withChange((e) => Object.assign(e, { features: lists, subsample: {}, quickSubsample: {} })))).toEqual([
        'features: Too big: expected at most 10 feature families (got 12, each pooling of a pooling list counted as a family)',
      ]);
      expect(problems(withChange((e) => (e.subsample.berta = { imdb: { test: 1 } })))).toEqual([
        'subsample.berta: no feature family "berta"; expected one of bow, bert, bert_mean, bert_max, bert_cls, bert_sep',
      ]);
    });
  });

  it('names the field and the expectation for each problem', () => {
    expect(problems('{ "name": ')).toEqual([expect.stringMatching(/^not valid JSON/)]);
    expect(problems(withChange((e) => (e.training.learningRate = -1)))).toEqual(['training.learningRate: Too small: expected number to be >0 (got -1)']);
    expect(problems(withChange((e) => (e.training.batchSize = 'big')))).toEqual(['training.batchSize: Invalid input: expected number, received string']);
    expect(problems(withChange((e) => (e.stages[1].from = '3')))).toEqual(['stages.1.from: "3" is not an earlier stage']);
    expect(problems(withChange((e) => (e.evaluation.datasets = ['sst2', 'yelp'])))).toEqual(['evaluation.datasets.1: unknown dataset "yelp"; expected one of sst2, imdb']);
    expect(problems(withChange((e) => (e.datasets.imdb.files.all.path = '../etc/passwd')))).toEqual([
      'datasets.imdb.files.all.path: expected a path relative to the data root, without ".."',
    ]);
    expect(problems(withChange((e) => (e.features.bow.kind = 'tfidf')))[0]).toMatch(/^features\.bow\.kind: /);
    expect(problems(withChange((e) => (e.model.hiden = [1])))).toEqual(['model: Unrecognized key: "hiden"']);
  });

  it('bounds a family name to 48 characters, so its training job\'s name fits Batch\'s 128', () => {
    const long = 'b'.repeat(49);
    const found = problems(
      withChange((e) => {
        e.features[long] = e.features.bow;
        delete e.features.bow;
      }),
    );
    expect(found).toContain(`features.${long}: invalid name: expected at most 48 characters`);
  });

  it('bounds what an upload can ask for: each error names the field, the value and the bound', () => {
    // The values of the issue: anyone who can upload could otherwise ask for unbounded compute.
    expect(
      problems(
        withChange((e) => {
          e.training.epochs = 1e9;
          e.model.hidden = [1e6, 1e6, 1e6];
          e.features.bow.maxFeatures = 2e9;
          e.features.bow.shardSize = 1;
        }),
      ),
    ).toEqual([
      'features.bow.maxFeatures: Too big: expected number to be <=200000 (got 2000000000)',
      'features.bow.shardSize: Too small: expected number to be >=10 (got 1)',
      'model.hidden.0: Too big: expected number to be <=2048 (got 1000000)',
      'model.hidden.1: Too big: expected number to be <=2048 (got 1000000)',
      'model.hidden.2: Too big: expected number to be <=2048 (got 1000000)',
      'training.epochs: Too big: expected number to be <=1000 (got 1000000000)',
    ]);
    const families = Object.fromEntries(Array.from({ length: 500 }, (_, i) => [`use${i}`, { kind: 'use' }]));
    const only = (features: Loose) => (e: Loose) => Object.assign(e, { features, subsample: {}, quickSubsample: {} });
    expect(problems(withChange(only(families)))).toEqual(['features: Too big: expected at most 10 feature families (got 500)']);
    expect(problems(withChange((e) => (e.model.hidden = Array(9).fill(64))))).toEqual(['model.hidden: Too big: expected array to have <=8 items (got 9 items)']);
    expect(problems(withChange((e) => (e.stages = Array.from({ length: 11 }, (_, i) => ({ name: `s${i}`, dataset: 'sst2' }))))))
      .toEqual(['stages: Too big: expected array to have <=10 items (got 11 items)']);
    expect(problems(withChange((e) => (e.features.bow.shardSize = 100_001)))).toEqual(['features.bow.shardSize: Too big: expected number to be <=100000 (got 100001)']);
    // A BERT-family row holds four poolings: a quarter of the rows.
    expect(problems(withChange((e) => (e.features.bert.shardSize = 25_001)))).toEqual(['features.bert.shardSize: Too big: expected number to be <=25000 (got 25001)']);
    expect(problems(withChange((e) => (e.training.batchSize = 10_000)))).toEqual(['training.batchSize: Too big: expected number to be <=8192 (got 10000)']);
    expect(problems(withChange((e) => (e.features.bert.batchSize = 1024)))).toEqual(['features.bert.batchSize: Too big: expected number to be <=256 (got 1024)']);
    expect(problems(withChange((e) => (e.features.bert.maxLength = 1024)))).toEqual(['features.bert.maxLength: Too big: expected number to be <=512 (got 1024)']);
    expect(problems(withChange((e) => (e.budgetUsd = 0)))).toEqual(['budgetUsd: Too small: expected number to be >0 (got 0)']);
  });

  it('accepts every bound itself: the limits are inclusive', () => {
    const L = EXPERIMENT_LIMITS;
    const e = parseExperiment(
      withChange((x) => {
        x.training.epochs = L.epochs;
        x.training.batchSize = L.trainingBatchSize;
        x.model.hidden = Array(L.hiddenLayers).fill(L.hiddenSize);
        x.features.bow.maxFeatures = L.maxFeatures;
        x.features.bow.shardSize = L.shardSize.max;
        x.features.bert.shardSize = L.bertShardSize.max;
        x.features.bert.batchSize = L.encoderBatchSize;
        x.budgetUsd = 40;
      }),
      'experiments/x.json',
    );
    expect([e.training.epochs, e.model.hidden.length, e.budgetUsd]).toEqual([1000, 8, 40]);
  });

  describe('names a run derives: every model id and report file is unique, or the file is refused naming both', () => {
    // Two families of one kind and stages chosen to collide; no subsample caps on families that are not there.
    const families = (features: Loose, stages: Loose[]) => (e: Loose) => Object.assign(e, { features, stages, subsample: {}, quickSubsample: {} });

    it('keeps the names of today: <family>_<stage>', () => {
      expect(modelId('bow', '1')).toBe('bow_1');
      expect(modelId('bert_mean', '2')).toBe('bert_mean_2');
    });

    it('refuses two (family, stage) pairs that make one model id, naming both pairs and the id', () => {
      expect(problems(withChange(families({ a: { kind: 'use' }, a_b: { kind: 'use' } }, [{ name: 'b_c', dataset: 'sst2' }, { name: 'c', dataset: 'imdb' }])))).toEqual([
        'features.a_b: family "a_b" with stage "c" and family "a" with stage "b_c" both make the model "a_b_c" (models are named <family>_<stage>); rename a family or a stage',
      ]);
      // A family of a pooling list is named <entry>_<pooling>: its collisions name the entry and the pooling.
      const pooled = { e: { kind: 'bert', model: 'm', pooling: ['mean'] }, e_mean_1: { kind: 'use' } };
      expect(problems(withChange(families(pooled, [{ name: 'x', dataset: 'sst2' }, { name: '1_x', dataset: 'imdb', from: 'x' }])))).toEqual([
        'features.e_mean_1: family "e_mean_1" with stage "x" and family "e_mean" (features.e, pooling "mean") with stage "1_x" both make the model "e_mean_1_x" (models are named <family>_<stage>); rename a family or a stage',
      ]);
    });

    it('refuses two (model, dataset) pairs that make one confusion-matrix file, naming both pairs and the file', () => {
      // The report's own file names collide for these pairs: the check is about the files Report writes.
      expect(confusionFileName('use_a__b', 'imdb')).toBe(confusionFileName('use_a', 'b__imdb'));
      expect(
        problems(
          withChange((e) => {
            families({ use: { kind: 'use' } }, [{ name: 'a', dataset: 'sst2' }, { name: 'a__b', dataset: 'imdb' }])(e);
            e.datasets.b__imdb = e.datasets.imdb;
            e.evaluation.datasets = ['imdb', 'b__imdb'];
          }),
        ),
      ).toEqual([
        'evaluation.datasets: model "use_a__b" on dataset "imdb" and model "use_a" on dataset "b__imdb" both make the confusion matrix report/confusion/use_a__b__imdb.svg (named <model>__<dataset>.svg); rename a stage, family or dataset',
      ]);
    });

    it('refuses an evaluation dataset listed twice (each model would be evaluated twice and the report fail)', () => {
      expect(problems(withChange((e) => (e.evaluation.datasets = ['sst2', 'imdb', 'sst2'])))).toEqual([
        'evaluation.datasets.2: "sst2" is already listed; each dataset is evaluated once',
      ]);
    });
  });

  describe('classes: bounded by what the report holds, the same on every dataset a model meets, each label a class', () => {
    const classes = (n: number, name = (i: number) => `c${i}`) => Array.from({ length: n }, (_, i) => name(i));
    /** One family, one stage on sst2, evaluated on sst2 only: one confusion matrix in the report. */
    const oneMatrix = (e: Loose) => Object.assign(e, { features: { use: { kind: 'use' } }, stages: [{ name: '1', dataset: 'sst2' }], evaluation: { datasets: ['sst2'] }, subsample: {}, quickSubsample: {} });

    it(`allows at most ${EXPERIMENT_LIMITS.classes} classes a dataset, and accepts that many`, () => {
      expect(problems(withChange((e) => (e.datasets.sst2.classNames = classes(501))))).toEqual([
        'datasets.sst2.classNames: Too big: expected array to have <=500 items (got 501 items)',
      ]);
      const e = parseExperiment(withChange((x) => (oneMatrix(x), (x.datasets.sst2.classNames = classes(500, (i) => `class ${i}`)))), 'x');
      expect(e.datasets.sst2?.classNames).toHaveLength(500);
    });

    it('refuses a report whose confusion matrices would not fit, with the counts and sizes', () => {
      // 5 families × 2 stages × 2 datasets = 20 matrices of 150 classes: 20 × 152² cells × (420 + 2 × 4 characters).
      expect(problems(withChange((e) => ['sst2', 'imdb'].forEach((d) => (e.datasets[d].classNames = classes(150)))))).toEqual([
        'evaluation.datasets: the report would draw 20 confusion matrices (10 models × 2 datasets) of up to 150 classes, about 189 MiB of SVG in report.html; at most 128 MiB fits (the Report stage builds the page in memory): evaluate fewer datasets, train fewer families or stages, or use fewer classes',
      ]);
    });

    it('refuses datasets a model trains or is evaluated on whose classes differ, naming both datasets and both counts', () => {
      expect(problems(withChange((e) => (e.datasets.imdb.classNames = ['negative', 'neutral', 'positive'])))).toEqual([
        'stages.1.dataset: dataset "imdb" has 3 classes and dataset "sst2" (stage "1") has 2: every dataset a model trains or is evaluated on needs the same classNames, in the same order, because output i of a model is class i on all of them',
      ]);
      expect(problems(withChange((e) => (e.datasets.imdb.classNames = ['neg', 'pos'])))).toEqual([
        'stages.1.dataset: dataset "imdb" names its 2 classes "neg", "pos" and dataset "sst2" (stage "1") names them "negative", "positive": every dataset a model trains or is evaluated on needs the same classNames, in the same order, because output i of a model is class i on all of them',
      ]);
      // An evaluation-only dataset too: every model is evaluated on it.
      const yelp = (e: Loose) => {
        e.datasets.yelp = { ...e.datasets.imdb, labels: { '1': 0, '2': 1, '3': 2 }, classNames: ['bad', 'fair', 'good'] };
        e.evaluation.datasets = ['sst2', 'imdb', 'yelp'];
      };
      expect(problems(withChange(yelp))).toEqual([
        'evaluation.datasets.2: dataset "yelp" has 3 classes and dataset "sst2" (stage "1") has 2: every dataset a model trains or is evaluated on needs the same classNames, in the same order, because output i of a model is class i on all of them',
      ]);
    });

    it('refuses a label mapped to a class that classNames does not have', () => {
      expect(problems(withChange((e) => (e.datasets.imdb.labels.neutral = 2)))).toEqual(['datasets.imdb.labels.neutral: maps to class 2, but classNames has 2 entries (indexes 0-1)']);
    });

    it('refuses a "__proto__" key, which would otherwise drop a class silently', () => {
      expect(problems(defaultText.replace('"0": 0,', '"__proto__": 0,'))).toEqual([
        'datasets.sst2.labels.__proto__: "__proto__" cannot be a key: JavaScript objects reserve it, so the entry would be dropped silently',
      ]);
      // Any record: a family named so would not run.
      expect(problems(defaultText.replace('"features": {', '"features": { "__proto__": { "kind": "use" },'))).toEqual([
        'features.__proto__: "__proto__" cannot be a key: JavaScript objects reserve it, so the entry would be dropped silently',
      ]);
    });
  });

  it('bounds the seed to what the split\'s generator takes, naming the field and the range', () => {
    const range = "expected an integer in 0-4294967295 (2^32 - 1): the splits are numpy's RandomState permutations, whose Mersenne Twister takes a 32-bit seed";
    expect(problems(withChange((e) => (e.seed = 2 ** 40)))).toEqual([`seed: ${range} (got 1099511627776)`]);
    expect(problems(withChange((e) => (e.seed = -1)))).toEqual([`seed: ${range} (got -1)`]);
    const e = parseExperiment(withChange((x) => (x.seed = 2 ** 32 - 1)), 'x');
    expect(numpyPermutation(5, e.seed)).toHaveLength(5);
  });

  it('the committed schema/experiment.schema.json is up to date (npm run schema regenerates it)', () => {
    expect(JSON.parse(readFileSync('schema/experiment.schema.json', 'utf8'))).toEqual(experimentJsonSchema());
  });
});
