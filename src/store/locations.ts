import { fileURLToPath } from 'node:url';
import { ConfigError } from '../errors/index.js';
import type { BlobStore } from './blob-store.js';
import { FsBlobStore } from './fs-store.js';
import { s3StoreFromUrl } from './s3-store.js';

/** The folder of a run store that holds the datasets: the data root unless another one is named. */
export const DATASETS_FOLDER = 'datasets';

/** Where a stage's two stores are: the run store (experiments/, runs/, cache/, models/) and the data root. */
export interface StoreLocations {
  store: string;
  data: string;
}

/** The two stores a stage works with, opened. */
export interface Stores {
  store: BlobStore;
  data: BlobStore;
}

/**
 * Opens the store a location names: `s3://bucket/prefix` is an S3 bucket (reached by the rule of `s3ClientConfig`),
 * `file:///dir` or a plain path is a local folder.
 */
export function storeFromUrl(location: string, env: NodeJS.ProcessEnv = process.env): BlobStore {
  if (location.startsWith('s3://')) return s3StoreFromUrl(location, env);
  if (location.startsWith('file://')) return new FsBlobStore(fileURLToPath(location));
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(location)?.[1];
  if (scheme) throw new ConfigError(`unsupported store location "${location}": expected s3://bucket/prefix, file:///dir or a folder path`);
  return new FsBlobStore(location);
}

/** The data root that goes with a run store: its datasets/ folder, as in the deployment's bucket. */
export function defaultDataLocation(store: string): string {
  return `${store.replace(/\/+$/, '')}/${DATASETS_FOLDER}`;
}

/** Opens the run store and the data root (S3 locations by the rule of `s3ClientConfig` for `env`). */
export function openStores(where: StoreLocations, env: NodeJS.ProcessEnv = process.env): Stores {
  return { store: storeFromUrl(where.store, env), data: storeFromUrl(where.data, env) };
}
