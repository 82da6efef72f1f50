export {
  NotFoundError,
  PreconditionFailedError,
  VersionNotFoundError,
  validateKey,
  type BlobInfo,
  type BlobStore,
  type BlobWithInfo,
  type PutCondition,
  type PutStreamOptions,
  type ReadOptions,
  type StreamReadOptions,
} from './blob-store.js';
export { FsBlobStore } from './fs-store.js';
export { BucketNotFoundError, S3BlobStore, S3_BUCKET_NAME, type S3BlobStoreOptions } from './s3-store.js';
export { S3_ENV, s3ClientConfig, s3ClientFromEnv } from './s3-client.js';
export { DATASETS_FOLDER, defaultDataLocation, openStores, storeFromUrl, type StoreLocations, type Stores } from './locations.js';
