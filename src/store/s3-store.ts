import { Readable } from 'node:stream';
import {
  CopyObjectCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  PutObjectCommand,
  type S3Client,
  paginateListObjectsV2,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { observable } from './aws-calls.js';
import {
  NotFoundError,
  PreconditionFailedError,
  VersionNotFoundError,
  isConditional,
  validateKey,
  type BlobInfo,
  type BlobStore,
  type BlobWithInfo,
  type PutCondition,
  type PutStreamOptions,
  type ReadOptions,
} from './blob-store.js';
import { partSizeFor, S3_MULTIPART } from './s3-limits.js';
import { s3ClientFromEnv } from './s3-client.js';
import { ConfigError, InternalError } from '../errors/index.js';

/** Options of an S3BlobStore; endpoint, region and credentials live in the client the caller builds. */
export interface S3BlobStoreOptions {
  bucket: string;
  /** Folder inside the bucket that plays the role of the store's root (no leading or trailing '/'). */
  prefix?: string;
  /** Defaults to `s3ClientFromEnv()`: endpoint, region and credentials by textshift's one S3 rule. */
  client?: S3Client;
  /** Keys per ListObjectsV2 page (S3 returns at most 1000); a small value exercises pagination in tests. */
  listPageSize?: number;
  /**
   * Bytes per multipart part of a putStream without a size hint (S3's minimum is 5 MiB), and the least a hinted one
   * uses; bodies below one part go in a single PUT.
   */
  partSize?: number;
}

/** An operation on a bucket that does not exist (or that these credentials cannot see). */
export class BucketNotFoundError extends ConfigError {
  constructor(
    readonly bucket: string,
    options?: { cause?: unknown },
  ) {
    super(`S3 bucket "${bucket}" does not exist (create it first or check the bucket name and region)`, options);
  }
}

/** What S3 accepts as a bucket name: 3-63 lowercase letters, digits, "." or "-", starting and ending alphanumeric. */
export const S3_BUCKET_NAME = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;

/**
 * An S3 bucket (optionally a prefix in it) as a BlobStore; key `a/b.json` is object `<prefix>/a/b.json`.
 *
 * Atomic commit comes from S3 itself: a single-part PUT becomes visible only once the whole body has arrived, and a
 * multipart upload stays invisible until CompleteMultipartUpload. So readers see the old object, no object or the
 * whole new one. putStream aborts its multipart upload when the body stream fails, so no object and no orphaned
 * parts are left behind.
 */
export class S3BlobStore implements BlobStore {
  readonly url: string;
  readonly bucket: string;
  readonly prefix: string;
  readonly client: S3Client;
  private readonly listPageSize: number;
  private readonly partSize: number;
  /** Set once the bucket has been seen to exist, so a HEAD miss costs one extra request at most once. */
  private bucketSeen = false;

  constructor(options: S3BlobStoreOptions) {
    if (!S3_BUCKET_NAME.test(options.bucket)) {
      throw new ConfigError(`invalid S3 bucket name "${options.bucket}": expected 3-63 lowercase letters, digits, "." or "-"`);
    }
    const prefix = (options.prefix ?? '').replace(/^\/+|\/+$/g, '');
    if (prefix !== '') validateKey(prefix);
    const partSize = options.partSize ?? S3_MULTIPART.minPartBytes;
    if (partSize < S3_MULTIPART.minPartBytes) throw new ConfigError(`S3 partSize ${partSize} is below the 5 MiB minimum of multipart uploads`);
    this.bucket = options.bucket;
    this.prefix = prefix;
    // Every client the store sends through is observable, so tests see its requests (see aws-calls.ts).
    this.client = observable(options.client ?? s3ClientFromEnv());
    this.listPageSize = options.listPageSize ?? 1000;
    this.partSize = partSize;
    this.url = `s3://${this.bucket}${prefix ? `/${prefix}` : ''}`;
  }

  async get(key: string, options?: ReadOptions): Promise<Buffer | undefined> {
    return (await this.getWithInfo(key, options))?.body;
  }

  async getOrThrow(key: string, options?: ReadOptions): Promise<Buffer> {
    const body = await this.get(key, options);
    if (body === undefined) throw new NotFoundError(this.url, key);
    return body;
  }

  async getStream(key: string, options?: ReadOptions): Promise<Readable> {
    try {
      const res = await this.client.send(this.getCommand(key, options));
      if (res.Body === undefined) return Readable.from([]);
      if (!(res.Body instanceof Readable)) throw new InternalError(`${this.url}: S3 returned a non-stream body for "${key}"`);
      return res.Body;
    } catch (err) {
      throw this.readError(err, key, options) ?? new NotFoundError(this.url, key);
    }
  }

  async getWithInfo(key: string, options?: ReadOptions): Promise<BlobWithInfo | undefined> {
    try {
      const res = await this.client.send(this.getCommand(key, options));
      const body = res.Body === undefined ? Buffer.alloc(0) : Buffer.from(await res.Body.transformToByteArray());
      return { body, info: infoOf(key, res.ContentLength ?? body.length, res.ETag, res.VersionId) };
    } catch (err) {
      const failure = this.readError(err, key, options);
      if (failure) throw failure;
      return undefined;
    }
  }

  async put(key: string, body: Buffer | Uint8Array | string, condition?: PutCondition): Promise<void> {
    const objectKey = this.objectKey(key);
    try {
      // An explicit length: the SDK cannot infer it for an empty string and would warn about a stream of unknown length.
      const ContentLength = typeof body === 'string' ? Buffer.byteLength(body) : body.byteLength;
      const conditions = isConditional(condition) ? { IfMatch: condition.ifMatch, IfNoneMatch: condition.ifNoneMatch } : {};
      await this.client.send(new PutObjectCommand({ Bucket: this.bucket, Key: objectKey, Body: body, ContentLength, ...conditions }));
    } catch (err) {
      // 412: the condition does not hold. 409 ConditionalRequestConflict: a concurrent conditional write of the key won.
      // NoSuchKey: If-Match on an object that no longer exists.
      const refused = ['PreconditionFailed', 'ConditionalRequestConflict', 'NoSuchKey'];
      if (isConditional(condition) && refused.includes(errorName(err) ?? '')) throw new PreconditionFailedError(this.url, key, condition, { cause: err });
      throw this.translate(err);
    }
  }

  async putStream(key: string, body: Readable, options: PutStreamOptions = {}): Promise<void> {
    const objectKey = this.objectKey(key);
    // Parts sized from the hint fit the object in S3's 10,000 parts (fixed 5 MiB parts stop at 48.8 GiB); an object
    // over S3's largest is refused here, before a byte is sent.
    let partSize: number;
    try {
      partSize = Math.max(this.partSize, partSizeFor(options.sizeHint, `${this.url}: "${key}"`));
    } catch (err) {
      body.destroy();
      throw err;
    }
    // Upload sends one PUT when the body fits in one part, else a multipart upload; on any failure (including a
    // body stream that errors or is destroyed) it aborts the multipart upload (leavePartsOnError is false). The hint
    // is not passed as ContentLength: it may be an upper bound, and Upload fails a body of another length.
    const upload = new Upload({
      client: this.client,
      params: { Bucket: this.bucket, Key: objectKey, Body: body },
      partSize,
      leavePartsOnError: false,
    });
    try {
      await upload.done();
    } catch (err) {
      throw this.translate(err);
    }
  }

  async head(key: string): Promise<BlobInfo | undefined> {
    const objectKey = this.objectKey(key);
    try {
      const res = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: objectKey }));
      return infoOf(key, res.ContentLength ?? 0, res.ETag, res.VersionId);
    } catch (err) {
      // A HEAD response has no body, so a missing key and a missing bucket both arrive as a bare 404.
      if (errorName(err) !== 'NotFound' && errorName(err) !== 'NoSuchKey') throw this.translate(err);
      await this.assertBucketExists();
      return undefined;
    }
  }

  async list(prefix: string): Promise<BlobInfo[]> {
    const root = this.prefix ? `${this.prefix}/` : '';
    const out: BlobInfo[] = [];
    try {
      const pages = paginateListObjectsV2(
        { client: this.client, pageSize: this.listPageSize },
        { Bucket: this.bucket, Prefix: root + prefix },
      );
      for await (const page of pages) {
        for (const obj of page.Contents ?? []) {
          // Keys ending in '/' are console "folder" markers, not objects a folder store could hold.
          if (obj.Key === undefined || obj.Key.endsWith('/')) continue;
          out.push(infoOf(obj.Key.slice(root.length), obj.Size ?? 0, obj.ETag, undefined));
        }
      }
    } catch (err) {
      throw this.translate(err);
    }
    this.bucketSeen = true;
    return out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }

  async delete(key: string): Promise<void> {
    const objectKey = this.objectKey(key);
    try {
      await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: objectKey }));
    } catch (err) {
      throw this.translate(err);
    }
  }

  async touch(key: string): Promise<boolean> {
    const objectKey = this.objectKey(key);
    // S3 copies an object onto itself only when something else changes: the metadata says when it was last used.
    const source = `${this.bucket}/${objectKey.split('/').map(encodeURIComponent).join('/')}`;
    try {
      await this.client.send(
        new CopyObjectCommand({ Bucket: this.bucket, Key: objectKey, CopySource: source, MetadataDirective: 'REPLACE', Metadata: { 'last-used': new Date().toISOString() } }),
      );
      return true;
    } catch (err) {
      if (errorName(err) === 'NoSuchKey') return false;
      throw this.translate(err);
    }
  }

  /** The bucket's object key of a store key (validated). */
  objectKey(key: string): string {
    validateKey(key);
    return this.prefix ? `${this.prefix}/${key}` : key;
  }

  /** GetObject of a key, at a version when one is asked for. */
  private getCommand(key: string, options: ReadOptions | undefined): GetObjectCommand {
    const version = options?.version === undefined ? {} : { VersionId: options.version };
    return new GetObjectCommand({ Bucket: this.bucket, Key: this.objectKey(key), ...version });
  }

  /** The error a failed GET throws; undefined for a missing key read without a version (not an error for `get`). */
  private readError(err: unknown, key: string, options: ReadOptions | undefined): unknown {
    const name = errorName(err);
    if (options?.version !== undefined && (name === 'NoSuchVersion' || name === 'NoSuchKey')) return new VersionNotFoundError(this.url, key, options.version);
    if (name === 'NoSuchKey') return undefined;
    return this.translate(err);
  }

  private async assertBucketExists(): Promise<void> {
    if (this.bucketSeen) return;
    try {
      await this.client.send(new HeadBucketCommand({ Bucket: this.bucket }));
      this.bucketSeen = true;
    } catch (err) {
      const name = errorName(err);
      if (name === 'NotFound' || name === 'NoSuchBucket') throw new BucketNotFoundError(this.bucket, { cause: err });
      throw err;
    }
  }

  /** Names the bucket in a missing-bucket error; other errors pass through unchanged. */
  private translate(err: unknown): unknown {
    return errorName(err) === 'NoSuchBucket' ? new BucketNotFoundError(this.bucket, { cause: err }) : err;
  }
}

/** The S3BlobStore an `s3://bucket/prefix` URL names, reached by the rule of `s3ClientConfig` (endpoint, region, credentials). */
export function s3StoreFromUrl(url: string, env: NodeJS.ProcessEnv = process.env): S3BlobStore {
  const match = /^s3:\/\/([^/]+)\/?(.*)$/.exec(url);
  if (!match?.[1]) throw new ConfigError(`invalid S3 URL "${url}": expected s3://bucket or s3://bucket/prefix`);
  return new S3BlobStore({ bucket: match[1], prefix: match[2] ?? '', client: s3ClientFromEnv(env) });
}

/** BlobInfo from an S3 response; a bucket that was never versioned returns no VersionId. */
function infoOf(key: string, size: number, etag: string | undefined, version: string | undefined): BlobInfo {
  return { key, size, ...(etag === undefined ? {} : { etag }), ...(version === undefined ? {} : { version }) };
}

function errorName(err: unknown): string | undefined {
  return err instanceof Error ? err.name : undefined;
}
