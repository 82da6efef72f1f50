import * as iam from 'aws-cdk-lib/aws-iam';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import { acknowledge, nagRef } from '../nag.js';

/** Key patterns (`runs/*`, `runs/*\/manifest.json`) a principal may read or write in the data bucket. */
export interface PrefixAccess {
  read: string[];
  write: string[];
  /** Keys among `write` that are written by streamed uploads (BlobStore.putStream), which may be multipart. */
  streamed?: string[];
  /** Keys among `read` that are read at a pinned version (GetObject with VersionId authorizes as GetObjectVersion). */
  versions?: string[];
}

/**
 * Grants exactly the object operations the BlobStore performs, on the given key patterns only:
 * reads (GetObject, which also covers HEAD), writes (PutObject, which also covers every step of a multipart
 * upload), AbortMultipartUpload where streamed uploads write (a failed multipart upload is aborted, so no parts
 * are left behind), GetObjectVersion where a run reads its pinned input versions, and listing. Never DeleteObject: nothing the stages write is ever deleted. ListBucket is
 * granted on the bucket without a prefix condition because S3 answers a read of a missing key with 403 instead
 * of 404 when the caller may not list the bucket, and the stages' idempotent "does this output exist yet?"
 * checks depend on a real 404. It reveals key names, never contents.
 */
export function grantPrefixes(role: iam.Role, bucket: s3.IBucket, access: PrefixAccess): void {
  const objects = (patterns: string[]) => patterns.map((p) => bucket.arnForObjects(p));
  const streamed = access.streamed ?? [];
  const versions = access.versions ?? [];
  role.addToPrincipalPolicy(new iam.PolicyStatement({ actions: ['s3:ListBucket'], resources: [bucket.bucketArn] }));
  if (access.read.length > 0) {
    role.addToPrincipalPolicy(new iam.PolicyStatement({ actions: ['s3:GetObject'], resources: objects(access.read) }));
  }
  if (access.write.length > 0) {
    role.addToPrincipalPolicy(new iam.PolicyStatement({ actions: ['s3:PutObject'], resources: objects(access.write) }));
  }
  if (streamed.length > 0) {
    role.addToPrincipalPolicy(new iam.PolicyStatement({ actions: ['s3:AbortMultipartUpload'], resources: objects(streamed) }));
  }
  if (versions.length > 0) {
    role.addToPrincipalPolicy(new iam.PolicyStatement({ actions: ['s3:GetObjectVersion'], resources: objects(versions) }));
  }
  const reason =
    `Object access is limited to the key patterns this role uses (read ${access.read.join(', ') || 'nothing'}; ` +
    `write ${access.write.join(', ') || 'nothing'}); the keys below them are run- and content-specific.`;
  for (const pattern of new Set([...access.read, ...access.write, ...streamed, ...versions])) {
    acknowledge(role, `AwsSolutions-IAM5[Resource::${nagRef(role, bucket.bucketArn)}/${pattern}]`, reason);
  }
}
