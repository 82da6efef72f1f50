// Experiment files: the default experiment is valid, every error names the field and what was expected, and
// the committed JSON Schema is the one the validator uses.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { EXPERIMENT_LIMITS, ExperimentError, experimentJsonSchema, parseExperiment } from '../../../src/config/experiment.js';

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

  it('the committed schema/experiment.schema.json is up to date (npm run schema regenerates it)', () => {
    expect(JSON.parse(readFileSync('schema/experiment.schema.json', 'utf8'))).toEqual(experimentJsonSchema());
  });
});
