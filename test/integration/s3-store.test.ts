import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { GetObjectCommand, HeadObjectCommand, ListMultipartUploadsCommand, type S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, inject, it, onTestFinished } from 'vitest';
import { BucketNotFoundError, S3BlobStore } from '../../src/store/s3-store.js';
import { storeFromUrl } from '../../src/store/index.js';
import { describeBlobStoreContract } from '../support/blob-store-contract.js';
import { createTestBucket, emulatorS3, randomBucketName } from './setup/aws.js';

const MiB = 1024 * 1024;
const emulator = `${inject('awsEmulator')} at ${inject('awsEndpoint')}`;
let s3: S3Client;

beforeAll(() => {
  s3 = emulatorS3();
});
afterAll(() => s3.destroy());

/** A store on a fresh bucket with a random name (versioned when asked), removed after the test. */
async function bucketStore(options: { prefix?: string; listPageSize?: number; versioned?: boolean } = {}) {
  const { versioned, ...storeOptions } = options;
  const { bucket, remove } = await createTestBucket(s3, { versioned: versioned ?? false });
  return { store: new S3BlobStore({ bucket, client: s3, ...storeOptions }), bucket, cleanup: remove };
}

function stream(body: Buffer, chunk = 256 * 1024, failAfter?: number): Readable {
  return Readable.from(
    (function* () {
      for (let at = 0; at < body.length; at += chunk) {
        if (failAfter !== undefined && at >= failAfter) throw new Error('upload interrupted');
        yield body.subarray(at, at + chunk);
      }
    })(),
  );
}

const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

// Listing pages of 5 keys force the paginator through several ListObjectsV2 calls without writing 1000+ objects.
// The bucket is versioned, as the stack's data bucket is.
describeBlobStoreContract(`S3BlobStore against the emulator (${emulator})`, {
  create: () => bucketStore({ listPageSize: 5, versioned: true }),
  listPageSize: 5,
  largeBodyBytes: 12 * MiB,
  versioned: true,
  modifiedAt: async (store, key) => {
    const s3Store = store as S3BlobStore;
    const head = await s3Store.client.send(new HeadObjectCommand({ Bucket: s3Store.bucket, Key: s3Store.objectKey(key) }));
    return head.LastModified!.getTime();
  },
});

describe(`S3BlobStore against the emulator (${emulator}): S3 specifics`, () => {
  it('putStream of 12 MiB goes up as a 3-part multipart upload and reads back byte for byte', async () => {
    const { store, bucket, cleanup } = await bucketStore();
    onTestFinished(cleanup);
    const body = Buffer.alloc(12 * MiB);
    for (let i = 0; i < body.length; i += 4096) body.writeUInt32LE(i, i);
    await store.putStream('runs/r1/checkpoints.zip', stream(body));

    const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: 'runs/r1/checkpoints.zip' }));
    // A completed multipart upload's ETag is "<md5 of part md5s>-<part count>"; 12 MiB in 5 MiB parts is 3 parts.
    expect(head.ETag).toMatch(/-3"$/);
    // The store reports S3's ETag as S3 sends it (quoted), the form a conditional put's If-Match takes.
    expect((await store.head('runs/r1/checkpoints.zip'))?.etag).toBe(head.ETag);
    expect(head.ContentLength).toBe(12 * MiB);
    expect(sha256(await store.getOrThrow('runs/r1/checkpoints.zip'))).toBe(sha256(body));
  });

  it('an interrupted multipart putStream leaves neither an object nor a pending upload with its parts', async () => {
    const { store, bucket, cleanup } = await bucketStore();
    onTestFinished(cleanup);
    // Fails after two full parts have been sent.
    await expect(store.putStream('runs/r1/checkpoints.zip', stream(Buffer.alloc(16 * MiB, 1), 256 * 1024, 11 * MiB))).rejects.toThrow(
      'upload interrupted',
    );
    expect(await store.head('runs/r1/checkpoints.zip')).toBeUndefined();
    const pending = await s3.send(new ListMultipartUploadsCommand({ Bucket: bucket }));
    expect(pending.Uploads ?? []).toEqual([]);
  });

  it('a putStream declaring a 60 GiB body sends parts sized to fit 10,000 (7 MiB), not 5 MiB parts that stop at 48.8 GiB', async () => {
    const { store, bucket, cleanup } = await bucketStore();
    onTestFinished(cleanup);
    const body = Buffer.alloc(20 * MiB);
    for (let i = 0; i < body.length; i += 4096) body.writeUInt32LE(i, i);
    // 60 GiB / 10,000 = 6.1 MiB -> 7 MiB parts: 20 MiB goes up as 7 + 7 + 6 (5 MiB parts would make 4).
    await store.putStream('runs/r1/checkpoints.zip', stream(body), { sizeHint: 60 * 1024 * MiB });
    const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: 'runs/r1/checkpoints.zip' }));
    expect(head.ETag).toMatch(/-3"$/);
    expect(sha256(await store.getOrThrow('runs/r1/checkpoints.zip'))).toBe(sha256(body));
  });

  it("a putStream declaring more than S3's 5 TiB is refused before anything is sent", async () => {
    const { store, bucket, cleanup } = await bucketStore();
    onTestFinished(cleanup);
    const body = stream(Buffer.alloc(MiB));
    await expect(store.putStream('runs/r1/checkpoints.zip', body, { sizeHint: 6 * 1024 ** 4 })).rejects.toThrow(
      `${store.url}: "runs/r1/checkpoints.zip" is 6 TiB, above S3's largest object of 5 TiB (Amazon S3 multipart upload limits)`,
    );
    expect(body.destroyed).toBe(true);
    expect(await store.head('runs/r1/checkpoints.zip')).toBeUndefined();
    expect((await s3.send(new ListMultipartUploadsCommand({ Bucket: bucket }))).Uploads ?? []).toEqual([]);
  });

  it('keys live under the prefix in the bucket, and list strips the prefix', async () => {
    const { store, bucket, cleanup } = await bucketStore({ prefix: 'teams/nlp/' });
    onTestFinished(cleanup);
    expect(store.url).toBe(`s3://${bucket}/teams/nlp`);
    await store.put('runs/r1/manifest.json', '{"status":"done"}');
    const raw = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: 'teams/nlp/runs/r1/manifest.json' }));
    expect(await raw.Body?.transformToString()).toBe('{"status":"done"}');
    await new S3BlobStore({ bucket, client: s3 }).put('elsewhere.json', '{}');
    expect(await store.list('')).toEqual([{ key: 'runs/r1/manifest.json', size: 17, etag: expect.any(String) }]);
  });

  it('in a bucket without versioning, objects have an etag (the MD5 S3 reports) and no version', async () => {
    const { store, bucket, cleanup } = await bucketStore();
    onTestFinished(cleanup);
    await store.put('experiments/x.json', '{"name":"x"}');
    const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: 'experiments/x.json' }));
    const info = { key: 'experiments/x.json', size: 12, etag: head.ETag };
    expect(await store.head('experiments/x.json')).toEqual(info);
    expect((await store.getWithInfo('experiments/x.json'))?.info).toEqual(info);
    expect(head.ETag).toBe(`"${createHash('md5').update('{"name":"x"}').digest('hex')}"`);
  });

  it('every operation on a missing bucket throws BucketNotFoundError naming the bucket', async () => {
    const bucket = randomBucketName();
    const store = new S3BlobStore({ bucket, client: s3 });
    const operations: Array<[string, () => Promise<unknown>]> = [
      ['get', () => store.get('a.json')],
      ['getOrThrow', () => store.getOrThrow('a.json')],
      ['getStream', () => store.getStream('a.json')],
      ['head', () => store.head('a.json')],
      ['put', () => store.put('a.json', '{}')],
      ['putStream', () => store.putStream('a.json', stream(Buffer.from('{}')))],
      ['list', () => store.list('')],
      ['delete', () => store.delete('a.json')],
    ];
    for (const [name, operation] of operations) {
      const err = await operation().then(
        () => new Error(`${name} succeeded`),
        (e: unknown) => e,
      );
      expect(err, name).toBeInstanceOf(BucketNotFoundError);
      expect((err as Error).message, name).toContain(`S3 bucket "${bucket}" does not exist`);
    }
  });

  it('storeFromUrl("s3://bucket/prefix") reaches the emulator through TEXTSHIFT_AWS_ENDPOINT', async () => {
    const { bucket, remove } = await createTestBucket(s3);
    onTestFinished(remove);
    const store = storeFromUrl(`s3://${bucket}/exp`, {
      TEXTSHIFT_AWS_ENDPOINT: inject('awsEndpoint'),
    });
    expect(store).toBeInstanceOf(S3BlobStore);
    await store.put('experiments/x.json', '{"name":"x"}');
    const raw = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: 'exp/experiments/x.json' }));
    expect(await raw.Body?.transformToString()).toBe('{"name":"x"}');
  });
});
