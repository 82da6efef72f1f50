import { S3Client } from '@aws-sdk/client-s3';
import type { BlobStore } from '#src/store/blob-store.js';
import { S3BlobStore } from '#src/store/s3-store.js';

let store: BlobStore | undefined;

/** The stage context of a Lambda: the data bucket (env BUCKET) as a BlobStore, created once per container. */
export function stageContext(): { store: BlobStore } {
  if (store === undefined) {
    const bucket = process.env.BUCKET;
    if (!bucket) throw new Error('environment variable BUCKET is not set: it must name the data bucket');
    // An endpoint override (an emulator in tests) rarely resolves bucket subdomains, so address buckets by path there.
    const endpoint = process.env.AWS_ENDPOINT_URL_S3 ?? process.env.AWS_ENDPOINT_URL;
    store = new S3BlobStore({ bucket, client: new S3Client({ forcePathStyle: endpoint !== undefined }) });
  }
  return { store };
}
