/**
 * The inputs of a small real run in a bucket, laid out as on AWS: the tiny experiment (test/fixtures) under
 * experiments/ and only the dataset files it reads (real SST-2 and IMDB from the local data folder) under datasets/.
 */
import { readFileSync } from 'node:fs';
import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { dataFile } from '../../support/data.js';

/** The experiment the workflow tests run: real data, `quick` caps of a few hundred rows, one BoW family. */
export const TINY_EXPERIMENT = new URL('../../fixtures/experiments/tiny.json', import.meta.url);
/** Its key in the bucket. */
export const TINY_EXPERIMENT_KEY = 'experiments/tiny.json';
/** The dataset files tiny.json names, relative to the data root (and to datasets/ in the bucket). */
export const TINY_DATASET_FILES = ['sst2/train.tsv', 'sst2/test.tsv', 'imdb.csv.gz'];

/** Uploads tiny.json and its dataset files into `bucket`; returns the experiment key. */
export async function uploadTinyRunInputs(s3: S3Client, bucket: string): Promise<string> {
  const files: [string, Buffer][] = [
    [TINY_EXPERIMENT_KEY, readFileSync(TINY_EXPERIMENT)],
    ...TINY_DATASET_FILES.map((f): [string, Buffer] => [`datasets/${f}`, readFileSync(dataFile(f))]),
  ];
  await Promise.all(files.map(([Key, Body]) => s3.send(new PutObjectCommand({ Bucket: bucket, Key, Body }))));
  return TINY_EXPERIMENT_KEY;
}
