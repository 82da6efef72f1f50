// A stage that fails records what it failed with in its stage record (asStage): the cause, the error's class and
// whether a retry may help, as MarkFailed records them for the run. Real folder store, a minimal manifest.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { S3ServiceException } from '@aws-sdk/client-s3';
import { afterAll, describe, expect, it } from 'vitest';
import { DataError } from '../../../src/data/errors.js';
import { asStage, readManifest } from '../../../src/run/manifest.js';
import { FsBlobStore } from '../../../src/store/fs-store.js';

const dir = mkdtempSync(join(tmpdir(), 'textshift-stage-failure-'));
const store = new FsBlobStore(dir);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Runs a stage of a fresh run whose work throws `error`; returns the manifest's record of that stage. */
async function failedStage(runId: string, error: unknown) {
  await store.put(`runs/${runId}/manifest.json`, JSON.stringify({ runId, stages: {} }));
  await expect(asStage(store, runId, 'train:bow', () => Promise.reject(error))).rejects.toBe(error);
  return (await readManifest(store, runId)).stages['train:bow'];
}

describe('asStage records a failed stage with its error class', () => {
  it('a DataError: its own name, not retryable', async () => {
    const record = await failedStage('r-data', new DataError('file:///d/sst2/train.tsv', 'sst2/train.tsv', 9, 'label "maybe" is not one of "0", "1"'));
    expect(record).toMatchObject({ status: 'failed', error: 'sst2/train.tsv:9: label "maybe" is not one of "0", "1"', errorName: 'DataError', retryable: false });
  });

  it('an S3 throttling error: TransientError, retryable', async () => {
    const slowDown = new S3ServiceException({ name: 'SlowDown', $fault: 'server', $metadata: { httpStatusCode: 503 }, message: 'Please reduce your request rate.' });
    const record = await failedStage('r-throttled', slowDown);
    expect(record).toMatchObject({ status: 'failed', error: 'Please reduce your request rate.', errorName: 'TransientError', retryable: true });
  });

  it('an unclassified error: InternalError, not retryable', async () => {
    const record = await failedStage('r-bug', new TypeError("Cannot read properties of undefined (reading 'rows')"));
    expect(record).toMatchObject({ errorName: 'InternalError', retryable: false });
  });
});
