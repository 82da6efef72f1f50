import { fileURLToPath } from 'node:url';
import { FsBlobStore } from './fs-store.js';
import { s3StoreFromUrl } from './s3-store.js';
import type { BlobStore } from './blob-store.js';
import { ConfigError } from '../errors/index.js';

export { NotFoundError, validateKey, type BlobInfo, type BlobStore } from './blob-store.js';
export { FsBlobStore } from './fs-store.js';
export { BucketNotFoundError, S3BlobStore, type S3BlobStoreOptions } from './s3-store.js';

/**
 * Opens the store a location names: `s3://bucket/prefix` is an S3 bucket (endpoint from `TEXTSHIFT_AWS_ENDPOINT`
 * or `AWS_ENDPOINT_URL` when set), `file:///dir` or a plain path is a local folder.
 */
export function storeFromUrl(location: string, env: NodeJS.ProcessEnv = process.env): BlobStore {
  if (location.startsWith('s3://')) return s3StoreFromUrl(location, env);
  if (location.startsWith('file://')) return new FsBlobStore(fileURLToPath(location));
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(location)?.[1];
  if (scheme) throw new ConfigError(`unsupported store location "${location}": expected s3://bucket/prefix, file:///dir or a folder path`);
  return new FsBlobStore(location);
}
