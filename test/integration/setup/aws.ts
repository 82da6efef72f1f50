/** What integration tests need to talk to the emulator the globalSetup found or started. */
import { randomBytes } from 'node:crypto';
import {
  AbortMultipartUploadCommand,
  CreateBucketCommand,
  DeleteBucketCommand,
  DeleteObjectsCommand,
  ListMultipartUploadsCommand,
  ListObjectVersionsCommand,
  PutBucketVersioningCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { inject } from 'vitest';

declare module 'vitest' {
  export interface ProvidedContext {
    /** e.g. http://127.0.0.1:4566; empty when the target is a real AWS account (TEXTSHIFT_IT_AWS=1). */
    awsEndpoint: string;
    /** e.g. "localstack 4.14.0", or "real AWS us-east-1" */
    awsEmulator: string;
  }
}

/** Whether the run targets a real AWS account (TEXTSHIFT_IT_AWS=1) instead of an emulator. */
export function onRealAws(): boolean {
  return inject('awsEndpoint') === '';
}

/** Endpoint, region and the dummy credentials every emulator accepts; on real AWS, the region and the default chain. */
export function awsClientConfig(): { endpoint?: string; region: string; credentials?: { accessKeyId: string; secretAccessKey: string } } {
  if (onRealAws()) return { region: process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION ?? 'us-east-1' };
  return {
    endpoint: inject('awsEndpoint'),
    region: 'us-east-1',
    credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
  };
}

/** An S3 client for the emulator (path-style: bucket names need no DNS), or for the real account. */
export function emulatorS3(): S3Client {
  return new S3Client({ ...awsClientConfig(), forcePathStyle: !onRealAws() });
}

/** A bucket name no other test uses. */
export function randomBucketName(): string {
  return `textshift-it-${randomBytes(6).toString('hex')}`;
}

/**
 * Creates a bucket with a random name, versioned when asked (as the stack's data bucket is); the returned function
 * empties it (every version) and removes it.
 */
export async function createTestBucket(s3: S3Client, options: { versioned?: boolean } = {}): Promise<{ bucket: string; remove(): Promise<void> }> {
  const bucket = randomBucketName();
  // Outside us-east-1 (a real account's region) S3 wants the region named at creation.
  const region = await s3.config.region();
  await s3.send(new CreateBucketCommand({ Bucket: bucket, ...(region === 'us-east-1' ? {} : { CreateBucketConfiguration: { LocationConstraint: region as never } }) }));
  if (options.versioned) {
    await s3.send(new PutBucketVersioningCommand({ Bucket: bucket, VersioningConfiguration: { Status: 'Enabled' } }));
  }
  return { bucket, remove: () => removeBucket(s3, bucket) };
}

async function removeBucket(s3: S3Client, bucket: string): Promise<void> {
  // Every version and delete marker (an unversioned bucket lists each object once, with version "null").
  let markers: { KeyMarker?: string; VersionIdMarker?: string } = {};
  for (;;) {
    const page = await s3.send(new ListObjectVersionsCommand({ Bucket: bucket, ...markers }));
    const keys = [...(page.Versions ?? []), ...(page.DeleteMarkers ?? [])].flatMap((o) => (o.Key ? [{ Key: o.Key, VersionId: o.VersionId }] : []));
    if (keys.length > 0) await s3.send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: keys } }));
    if (!page.IsTruncated) break;
    markers = { KeyMarker: page.NextKeyMarker, VersionIdMarker: page.NextVersionIdMarker };
  }
  const uploads = await s3.send(new ListMultipartUploadsCommand({ Bucket: bucket }));
  for (const u of uploads.Uploads ?? []) {
    await s3.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: u.Key, UploadId: u.UploadId }));
  }
  await s3.send(new DeleteBucketCommand({ Bucket: bucket }));
}
