import type { S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, inject } from 'vitest';
import { S3BlobStore } from '../../src/store/s3-store.js';
import { describeModelCacheContract } from '../support/model-cache-contract.js';
import { createTestBucket, emulatorS3 } from './setup/aws.js';

let s3: S3Client;
beforeAll(() => {
  s3 = emulatorS3();
});
afterAll(() => s3.destroy());

describeModelCacheContract(`S3BlobStore against the emulator (${inject('awsEmulator')})`, {
  create: async () => {
    const { bucket, remove } = await createTestBucket(s3);
    return { store: new S3BlobStore({ bucket, client: s3 }), cleanup: remove };
  },
});
