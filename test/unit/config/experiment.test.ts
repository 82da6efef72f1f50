// Experiment files: the default experiment is valid, every error names the field and what was expected, and
// the committed JSON Schema is the one the validator uses.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ExperimentError, experimentJsonSchema, parseExperiment } from '../../../src/config/experiment.js';

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
  });

  it('names the field and the expectation for each problem', () => {
    expect(problems('{ "name": ')).toEqual([expect.stringMatching(/^not valid JSON/)]);
    expect(problems(withChange((e) => (e.training.learningRate = -1)))).toEqual(['training.learningRate: Too small: expected number to be >0']);
    expect(problems(withChange((e) => (e.training.batchSize = 'big')))).toEqual(['training.batchSize: Invalid input: expected number, received string']);
    expect(problems(withChange((e) => (e.stages[1].from = '3')))).toEqual(['stages.1.from: "3" is not an earlier stage']);
    expect(problems(withChange((e) => (e.evaluation.datasets = ['sst2', 'yelp'])))).toEqual(['evaluation.datasets.1: unknown dataset "yelp"; expected one of sst2, imdb']);
    expect(problems(withChange((e) => (e.datasets.imdb.files.all.path = '../etc/passwd')))).toEqual([
      'datasets.imdb.files.all.path: expected a path relative to the data root, without ".."',
    ]);
    expect(problems(withChange((e) => (e.features.bow.kind = 'tfidf')))[0]).toMatch(/^features\.bow\.kind: /);
    expect(problems(withChange((e) => (e.model.hiden = [1])))).toEqual(['model: Unrecognized key: "hiden"']);
  });

  it('the committed schema/experiment.schema.json is up to date (npm run schema regenerates it)', () => {
    expect(JSON.parse(readFileSync('schema/experiment.schema.json', 'utf8'))).toEqual(experimentJsonSchema());
  });
});
