// Admission across runs on S3 (conditional writes, If-Match / If-None-Match, as the emulator enforces them); the same
// checks run on a folder store in test/unit/cost/spend-ledger.test.ts.
import { afterAll, beforeAll, inject } from 'vitest';
import type { S3Client } from '@aws-sdk/client-s3';
import { S3BlobStore } from '../../src/store/s3-store.js';
import { describeSpendLedger } from '../support/spend-ledger.js';
import { createTestBucket, emulatorS3 } from './setup/aws.js';

let s3: S3Client;
beforeAll(() => {
  s3 = emulatorS3();
});
afterAll(() => s3.destroy());

describeSpendLedger(`S3BlobStore against the emulator (${inject('awsEmulator')} at ${inject('awsEndpoint')})`, async () => {
  const { bucket, remove } = await createTestBucket(s3, { versioned: true });
  return { store: new S3BlobStore({ bucket, client: s3 }), cleanup: remove };
});
