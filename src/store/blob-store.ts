import type { Readable } from 'node:stream';
import { InvalidInputError, MissingInputError, TransientError } from '../errors/index.js';

/** Metadata of one stored object. */
export interface BlobInfo {
  key: string;
  size: number;
  /**
   * Changes whenever the object's content may have changed, even at the same size: S3's ETag (without quotes), or a
   * folder store's tag of inode, size, modification and change times. Caches of copies and hashes key on it.
   */
  etag?: string;
  /** The object version in a versioned S3 bucket (its VersionId); absent where the store keeps no versions (a folder). */
  version?: string;
}

/** Which stored version a read returns: the current one unless `version` (a BlobInfo.version) names an older one. */
export interface ReadOptions {
  version?: string;
}

/** A streamed read's options: the version, and how many bytes a chunk should hold. */
export interface StreamReadOptions extends ReadOptions {
  /**
   * Bytes per chunk, for sequential readers of large objects whose cost is per chunk (a folder store reads this
   * much at a time; S3 delivers what the network gives). Unset, chunks stay small so a reader that stops early,
   * such as a decompression-bomb guard, has read little.
   */
  chunkBytes?: number;
}

/**
 * A condition on a put (S3's conditional writes): `ifMatch` writes only over the object whose etag it names,
 * `ifNoneMatch: '*'` only where no object exists. A condition that does not hold throws PreconditionFailedError and
 * writes nothing. Conditional puts are atomic with respect to each other; an unconditional put or a delete of the same
 * key is not held back by them.
 */
export interface PutCondition {
  ifMatch?: string;
  ifNoneMatch?: '*';
}

/** A streamed write's options. */
export interface PutStreamOptions {
  /**
   * The body's size in bytes, or an upper bound of it, when known before streaming (an archive of known entries). S3
   * sizes its multipart parts from it so the object fits S3's 10,000 parts, and refuses an object over S3's largest
   * before sending anything; unset, parts are 5 MiB (objects up to 48.8 GiB). A folder store ignores it.
   */
  sizeHint?: number;
}

/** An object's bytes with the metadata of exactly those bytes (read in one request). */
export interface BlobWithInfo {
  body: Buffer;
  info: BlobInfo;
}

/**
 * The object store the core talks to: a local folder or an S3 bucket, with the same key layout.
 * Every write is atomic: a reader sees the old object, no object, or the whole new one.
 */
export interface BlobStore {
  /** Human-readable location, e.g. `file:///abs/dir` or `s3://bucket/prefix`. */
  readonly url: string;
  /**
   * Whole object, or undefined when the key does not exist. Reads of a `version` throw VersionNotFoundError when that
   * version does not exist, and InvalidInputError on a store that keeps no versions.
   */
  get(key: string, options?: ReadOptions): Promise<Buffer | undefined>;
  /** Whole object; throws a NotFoundError naming the key when it does not exist. */
  getOrThrow(key: string, options?: ReadOptions): Promise<Buffer>;
  /** Streamed read; throws a NotFoundError when the key does not exist. */
  getStream(key: string, options?: StreamReadOptions): Promise<Readable>;
  /** Whole object with its size, etag and version, or undefined when the key does not exist. */
  getWithInfo(key: string, options?: ReadOptions): Promise<BlobWithInfo | undefined>;
  /** Atomically writes the whole body; with a condition, only if it holds (else PreconditionFailedError, nothing written). */
  put(key: string, body: Buffer | Uint8Array | string, condition?: PutCondition): Promise<void>;
  /** Atomically writes a streamed body (large artifacts such as checkpoints.zip). */
  putStream(key: string, body: Readable, options?: PutStreamOptions): Promise<void>;
  /** Size, etag and version of the current object, or undefined when it does not exist. */
  head(key: string): Promise<BlobInfo | undefined>;
  /** Every object whose key starts with prefix, sorted by key. */
  list(prefix: string): Promise<BlobInfo[]>;
  /** Removes the object; no error when it does not exist. */
  delete(key: string): Promise<void>;
  /**
   * Marks the object as in use now, keeping its bytes: the age that expiry counts restarts (S3's lifecycle counts
   * from the creation of the current version, so S3 copies the object onto itself; a folder sets its modification
   * time). Returns false, touching nothing, when the object does not exist.
   */
  touch(key: string): Promise<boolean>;
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

/** A read of an object version that does not exist (never written, or expired from a versioned bucket). */
export class VersionNotFoundError extends MissingInputError {
  constructor(
    readonly store: string,
    readonly key: string,
    readonly version: string,
  ) {
    super(`${store}: no version "${version}" of "${key}" (was it deleted, or expired as a noncurrent version?)`);
  }
}

/**
 * A conditional put whose condition did not hold: another writer changed the object since it was read (`ifMatch`) or
 * created it first (`ifNoneMatch`). Transient: reading again and re-applying the change can succeed.
 */
export class PreconditionFailedError extends TransientError {
  constructor(
    readonly store: string,
    readonly key: string,
    readonly condition: PutCondition,
    options?: { cause?: unknown },
  ) {
    const expected = condition.ifMatch !== undefined ? `still to be the version with etag ${condition.ifMatch}` : 'not to exist yet';
    super(`${store}: conditional write of "${key}" refused: the object was expected ${expected}, and it is not`, options);
  }
}

/** Whether a put carries a condition (plain puts skip the conditional path). */
export function isConditional(condition: PutCondition | undefined): condition is PutCondition {
  return condition !== undefined && (condition.ifMatch !== undefined || condition.ifNoneMatch !== undefined);
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
