import type { Readable } from 'node:stream';
import { InvalidInputError, MissingInputError } from '../errors/index.js';

/** Metadata of one stored object. */
export interface BlobInfo {
  key: string;
  size: number;
  /**
   * Changes whenever the object's content may have changed, even at the same size: S3's ETag (without quotes), or a
   * folder store's tag of inode, size, modification and change times. Caches of copies and hashes key on it.
   */
  etag?: string;
}

/**
 * The object store the core talks to: a local folder or an S3 bucket, with the same key layout.
 * Every write is atomic: a reader sees the old object, no object, or the whole new one.
 */
export interface BlobStore {
  /** Human-readable location, e.g. `file:///abs/dir` or `s3://bucket/prefix`. */
  readonly url: string;
  /** Whole object, or undefined when the key does not exist. */
  get(key: string): Promise<Buffer | undefined>;
  /** Whole object; throws a NotFoundError naming the key when it does not exist. */
  getOrThrow(key: string): Promise<Buffer>;
  /** Streamed read; throws a NotFoundError when the key does not exist. */
  getStream(key: string): Promise<Readable>;
  /** Atomically writes the whole body. */
  put(key: string, body: Buffer | Uint8Array | string): Promise<void>;
  /** Atomically writes a streamed body (large artifacts such as checkpoints.zip). */
  putStream(key: string, body: Readable): Promise<void>;
  /** Size and ETag of the object, or undefined when it does not exist. */
  head(key: string): Promise<BlobInfo | undefined>;
  /** Every object whose key starts with prefix, sorted by key. */
  list(prefix: string): Promise<BlobInfo[]>;
  /** Removes the object; no error when it does not exist. */
  delete(key: string): Promise<void>;
  /** A local file-system path holding the key, when the store is a folder (readers that need files skip a copy). */
  localPath?(key: string): string;
}

/** A read of a key that does not exist. */
export class NotFoundError extends MissingInputError {
  constructor(
    readonly store: string,
    readonly key: string,
  ) {
    super(`${store}: no object at key "${key}"`);
  }
}

const KEY_PART = /^[A-Za-z0-9._=+@-]+$/;

/**
 * Validates an object key (user-supplied keys included): relative, '/'-separated, no empty, '.' or '..'
 * segments, only safe characters. Returns the key; throws naming the key and the rule it broke.
 */
export function validateKey(key: string): string {
  if (key.length === 0 || key.length > 1024) throw new InvalidInputError(`invalid object key "${key}": expected 1-1024 characters`);
  for (const part of key.split('/')) {
    if (part === '' || part === '.' || part === '..') {
      throw new InvalidInputError(`invalid object key "${key}": empty, "." or ".." path segment`);
    }
    if (!KEY_PART.test(part)) {
      throw new InvalidInputError(`invalid object key "${key}": segment "${part}" may only use letters, digits and . _ = + @ -`);
    }
  }
  return key;
}
