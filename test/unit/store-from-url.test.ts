import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { FsBlobStore } from '../../src/store/fs-store.js';
import { S3BlobStore } from '../../src/store/s3-store.js';
import { storeFromUrl } from '../../src/store/index.js';

// Building a store sends no request, so these stay offline.
describe('storeFromUrl', () => {
  it('s3://bucket/prefix opens an S3BlobStore on that bucket and prefix', () => {
    const store = storeFromUrl('s3://textshift-runs/teams/nlp/', {});
    expect(store).toBeInstanceOf(S3BlobStore);
    const s3 = store as S3BlobStore;
    expect([s3.bucket, s3.prefix, s3.url]).toEqual(['textshift-runs', 'teams/nlp', 's3://textshift-runs/teams/nlp']);
    expect((storeFromUrl('s3://textshift-runs', {}) as S3BlobStore).prefix).toBe('');
  });

  it('sends requests to TEXTSHIFT_AWS_ENDPOINT in path style, with dummy credentials when none are set', async () => {
    const s3 = storeFromUrl('s3://textshift-runs', { TEXTSHIFT_AWS_ENDPOINT: 'http://127.0.0.1:4566' }) as S3BlobStore;
    const endpoint = await s3.client.config.endpoint?.();
    expect(`${endpoint?.protocol}//${endpoint?.hostname}:${endpoint?.port}`).toBe('http://127.0.0.1:4566');
    expect(s3.client.config.forcePathStyle).toBe(true);
    expect(await s3.client.config.region()).toBe('us-east-1');
    expect(await s3.client.config.credentials()).toMatchObject({ accessKeyId: 'test', secretAccessKey: 'test' });
  });

  it('honours AWS_ENDPOINT_URL and AWS_REGION', async () => {
    const s3 = storeFromUrl('s3://textshift-runs', {
      AWS_ENDPOINT_URL: 'http://minio.internal:9000',
      AWS_REGION: 'eu-west-1',
    }) as S3BlobStore;
    expect((await s3.client.config.endpoint?.())?.hostname).toBe('minio.internal');
    expect(await s3.client.config.region()).toBe('eu-west-1');
  });

  it('file:// URLs and plain paths open a folder store', () => {
    const dir = join(tmpdir(), 'textshift store');
    const fromUrl = storeFromUrl(pathToFileURL(dir).href, {});
    expect(fromUrl).toBeInstanceOf(FsBlobStore);
    expect((fromUrl as FsBlobStore).root).toBe(dir);
    expect((storeFromUrl(dir, {}) as FsBlobStore).root).toBe(dir);
  });

  it('rejects other schemes and malformed S3 URLs, saying what was expected', () => {
    expect(() => storeFromUrl('https://example.com/bucket', {})).toThrow(
      'unsupported store location "https://example.com/bucket": expected s3://bucket/prefix, file:///dir or a folder path',
    );
    expect(() => storeFromUrl('s3://', {})).toThrow('invalid S3 URL "s3://": expected s3://bucket or s3://bucket/prefix');
    expect(() => storeFromUrl('s3://Bad_Bucket/x', {})).toThrow('invalid S3 bucket name "Bad_Bucket"');
    expect(() => storeFromUrl('s3://textshift-runs/../x', {})).toThrow('invalid object key "../x"');
  });
});
