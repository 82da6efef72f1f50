import { S3Client } from '@aws-sdk/client-s3';
import { storeFromUrl, type BlobStore } from '#src/store/index.js';
import { S3BlobStore } from '#src/store/s3-store.js';
import type { StageContext } from '#src/workflow/context.js';
import { lineReporter } from '#src/run/reporter.js';

/** Where dataset files live in the bucket (the data root of experiments on AWS). */
export const DATASETS_PREFIX = 'datasets';

/**
 * Environment variables that point the handlers and the trainer at another store than the deployment's bucket:
 * any location `storeFromUrl` opens (`file:///dir`, a folder path, `s3://bucket/prefix`). Unit tests and local
 * runs of the trainer entry use them; a deployment sets only BUCKET.
 */
export const STORE_URL_ENV = 'TEXTSHIFT_STORE_URL';
/** The data root for STORE_URL_ENV; defaults to its `datasets/` prefix, as in the bucket. */
export const DATA_URL_ENV = 'TEXTSHIFT_DATA_URL';

type Stores = { store: BlobStore; data: BlobStore };
let stores: { source: string; value: Stores } | undefined;
let memo: { key: string; map: Map<string, unknown> } | undefined;

/** The run store and data root the environment names: TEXTSHIFT_STORE_URL (+ TEXTSHIFT_DATA_URL), else BUCKET. */
export function storesFromEnv(env: NodeJS.ProcessEnv = process.env): Stores {
  const url = env[STORE_URL_ENV];
  if (url) {
    const dataUrl = env[DATA_URL_ENV] || `${url.replace(/\/+$/, '')}/${DATASETS_PREFIX}`;
    return { store: storeFromUrl(url, env), data: storeFromUrl(dataUrl, env) };
  }
  const bucket = env.BUCKET;
  if (!bucket) {
    throw new Error(`environment variable BUCKET is not set: it must name the data bucket (or set ${STORE_URL_ENV} to a store location)`);
  }
  // An endpoint override (an emulator in tests) rarely resolves bucket subdomains, so address buckets by path there.
  const endpoint = env.AWS_ENDPOINT_URL_S3 ?? env.AWS_ENDPOINT_URL;
  const client = new S3Client({ forcePathStyle: endpoint !== undefined });
  return { store: new S3BlobStore({ bucket, client }), data: new S3BlobStore({ bucket, prefix: DATASETS_PREFIX, client }) };
}

/**
 * The stage context of the Lambda handlers and the Batch trainer: the stores the environment names (on AWS the
 * bucket from BUCKET, its datasets/ prefix as the data root), plain log lines, and a memo that lives as long as
 * the container keeps working on the same run (a warm featurize container reuses its loaded encoder and parsed
 * splits across shards; a shard of another run starts a fresh memo, so memory does not grow across runs).
 */
export function awsStageContext(runId: string, env: NodeJS.ProcessEnv = process.env): StageContext {
  // Stores are reused across invocations of a warm container, and rebuilt when the environment names others.
  const source = JSON.stringify([env[STORE_URL_ENV], env[DATA_URL_ENV], env.BUCKET]);
  if (stores?.source !== source) stores = { source, value: storesFromEnv(env) };
  const memoKey = `${source}\0${runId}`;
  if (memo?.key !== memoKey) memo = { key: memoKey, map: new Map() };
  return { ...stores.value, reporter: lineReporter(), memo: memo.map };
}
