import { S3Client } from '@aws-sdk/client-s3';
import { S3BlobStore } from '#src/store/s3-store.js';
import type { StageContext } from '#src/workflow/context.js';
import { lineReporter } from '#src/workflow/progress.js';

/** Where dataset files live in the bucket (the data root of experiments on AWS). */
export const DATASETS_PREFIX = 'datasets';

let stores: { store: S3BlobStore; data: S3BlobStore } | undefined;
let memo: { runId: string; map: Map<string, unknown> } | undefined;

/**
 * The stage context on AWS (Lambda handlers and the Batch trainer): the bucket named by env BUCKET as the run
 * store, its datasets/ prefix as the data root, plain log lines, and a memo that lives as long as the container
 * keeps working on the same run (a warm featurize container reuses its loaded encoder and parsed splits across
 * shards; a shard of another run starts a fresh memo, so memory does not grow across runs).
 */
export function awsStageContext(runId: string): StageContext {
  if (stores === undefined) {
    const bucket = process.env.BUCKET;
    if (!bucket) throw new Error('environment variable BUCKET is not set: it must name the data bucket');
    // An endpoint override (an emulator in tests) rarely resolves bucket subdomains, so address buckets by path there.
    const endpoint = process.env.AWS_ENDPOINT_URL_S3 ?? process.env.AWS_ENDPOINT_URL;
    const client = new S3Client({ forcePathStyle: endpoint !== undefined });
    stores = { store: new S3BlobStore({ bucket, client }), data: new S3BlobStore({ bucket, prefix: DATASETS_PREFIX, client }) };
  }
  if (memo?.runId !== runId) memo = { runId, map: new Map() };
  return { ...stores, reporter: lineReporter(), memo: memo.map };
}
