import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { FsBlobStore } from '../../../src/store/fs-store.js';
import { S3BlobStore } from '../../../src/store/s3-store.js';
import { s3ClientConfig, storeFromUrl } from '../../../src/store/index.js';

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

// One rule for every S3 store (s3:// locations and the deployment's bucket alike).
describe('s3ClientConfig', () => {
  const emulator = 'http://127.0.0.1:4566';

  it('takes the endpoint from TEXTSHIFT_AWS_ENDPOINT, else AWS_ENDPOINT_URL_S3, else AWS_ENDPOINT_URL; empty is unset', () => {
    const all = { TEXTSHIFT_AWS_ENDPOINT: emulator, AWS_ENDPOINT_URL_S3: 'http://s3.internal', AWS_ENDPOINT_URL: 'http://all.internal' };
    expect(s3ClientConfig(all).endpoint).toBe(emulator);
    expect(s3ClientConfig({ ...all, TEXTSHIFT_AWS_ENDPOINT: '' }).endpoint).toBe('http://s3.internal');
    expect(s3ClientConfig({ AWS_ENDPOINT_URL: 'http://all.internal' }).endpoint).toBe('http://all.internal');
  });

  it('with an endpoint override: path style, region from AWS_REGION, else AWS_DEFAULT_REGION, else us-east-1', () => {
    const url = 'http://s3.internal';
    expect(s3ClientConfig({ AWS_ENDPOINT_URL_S3: url })).toEqual({ endpoint: url, forcePathStyle: true, region: 'us-east-1' });
    expect(s3ClientConfig({ AWS_ENDPOINT_URL_S3: url, AWS_DEFAULT_REGION: 'eu-west-1' }).region).toBe('eu-west-1');
    expect(s3ClientConfig({ AWS_ENDPOINT_URL_S3: url, AWS_DEFAULT_REGION: 'eu-west-1', AWS_REGION: 'eu-central-1' }).region).toBe('eu-central-1');
  });

  it('dummy credentials only for the emulator variable, and only when no credentials or profile are set', () => {
    expect(s3ClientConfig({ TEXTSHIFT_AWS_ENDPOINT: emulator }).credentials).toEqual({ accessKeyId: 'test', secretAccessKey: 'test' });
    expect(s3ClientConfig({ TEXTSHIFT_AWS_ENDPOINT: emulator, AWS_ACCESS_KEY_ID: 'AKIA' }).credentials).toBeUndefined();
    expect(s3ClientConfig({ TEXTSHIFT_AWS_ENDPOINT: emulator, AWS_PROFILE: 'dev' }).credentials).toBeUndefined();
    // A standard override may be a real service: the SDK's credential chain stays in charge.
    expect(s3ClientConfig({ AWS_ENDPOINT_URL: emulator }).credentials).toBeUndefined();
  });

  it('on AWS (no override): virtual-hosted buckets, redirects to the bucket\'s region followed, region from the environment', () => {
    expect(s3ClientConfig({})).toEqual({ followRegionRedirects: true });
    expect(s3ClientConfig({ AWS_DEFAULT_REGION: 'eu-west-1' })).toEqual({ followRegionRedirects: true, region: 'eu-west-1' });
  });
});
