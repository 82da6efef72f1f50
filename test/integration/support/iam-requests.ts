/**
 * What IAM authorizes for an SDK call: its action, the resource ARN and the request's condition keys, per the AWS
 * Service Authorization Reference (S3, Step Functions, Batch, CloudWatch Logs). A command this module does not
 * know throws, so a new kind of call cannot pass the conformance test unexamined.
 */
import type { RecordedCall } from './aws-call-recorder.js';

/** One authorization request: `principal` does `action` on `resource` with these condition keys. */
export interface IamRequest {
  action: string;
  resource: string;
  context: Record<string, string>;
}

/** Account and region of the deployment the calls were made in (ARNs of regional resources need them). */
export interface Where {
  account: string;
  region: string;
}

/**
 * On AWS the SDK sends every request to an https:// endpoint, and Node's TLS negotiates version 1.2 at least; the
 * bucket policy's Denies of plain HTTP and of TLS below 1.2 see these values.
 */
const S3_TRANSPORT = { 'aws:SecureTransport': 'true', 's3:TlsVersion': '1.2' };

/** Object requests and the action S3 authorizes each as (HEAD as GetObject). */
const S3_OBJECT_ACTIONS: Record<string, string> = {
  GetObjectCommand: 's3:GetObject',
  HeadObjectCommand: 's3:GetObject',
  PutObjectCommand: 's3:PutObject',
  // A multipart upload is authorized as PutObject at every step.
  CreateMultipartUploadCommand: 's3:PutObject',
  UploadPartCommand: 's3:PutObject',
  CompleteMultipartUploadCommand: 's3:PutObject',
  AbortMultipartUploadCommand: 's3:AbortMultipartUpload',
  DeleteObjectCommand: 's3:DeleteObject',
  // What the recorder at the HTTP layer may see from a client other than the product's stores.
  ListPartsCommand: 's3:ListMultipartUploadParts',
};

/** The version in a copy source ("bucket/key?versionId=v"), which makes the read a GetObjectVersion. */
function copySourceRequest(source: string): IamRequest {
  const [encoded = '', query = ''] = source.replace(/^\//, '').split('?');
  // The SDK caller URL-encodes the source's key (x-amz-copy-source); IAM sees the key itself.
  const path = decodeURIComponent(encoded);
  const action = new URLSearchParams(query).has('versionId') ? 's3:GetObjectVersion' : 's3:GetObject';
  return { action, resource: `arn:aws:s3:::${path}`, context: S3_TRANSPORT };
}

/** Errors S3 answers a read of a missing key with (NoSuchKey for GET, a bare 404 for HEAD). */
const MISSING_KEY_ERRORS = new Set(['NoSuchKey', 'NotFound']);

function required(call: RecordedCall, name: string): string {
  const value = call.params[name];
  if (typeof value !== 'string' || value === '') throw new Error(`${call.stage}: ${call.command} without ${name}: ${JSON.stringify(call.params)}`);
  return value;
}

function s3Requests(call: RecordedCall): IamRequest[] {
  // ListBuckets is authorized on no bucket.
  if (call.command === 'ListBucketsCommand') return [{ action: 's3:ListAllMyBuckets', resource: '*', context: S3_TRANSPORT }];
  const bucketArn = `arn:aws:s3:::${required(call, 'Bucket')}`;
  const objectAction = S3_OBJECT_ACTIONS[call.command];
  if (objectAction) {
    // A read or delete of a given version is authorized as GetObjectVersion or DeleteObjectVersion (S3 API reference).
    const versioned = call.params.VersionId !== undefined;
    const action = versioned && objectAction === 's3:GetObject' ? 's3:GetObjectVersion' : versioned && objectAction === 's3:DeleteObject' ? 's3:DeleteObjectVersion' : objectAction;
    const requests = [{ action, resource: `${bucketArn}/${required(call, 'Key')}`, context: S3_TRANSPORT }];
    // S3 answers a read of a missing key with 404 only when the caller may list the bucket (else 403 AccessDenied),
    // and the stages' "does this output exist yet?" checks rely on the 404.
    if (objectAction === 's3:GetObject' && call.error !== undefined && MISSING_KEY_ERRORS.has(call.error)) {
      requests.push({ action: 's3:ListBucket', resource: bucketArn, context: S3_TRANSPORT });
    }
    return requests;
  }
  switch (call.command) {
    case 'ListObjectsV2Command': {
      const context: Record<string, string> = { ...S3_TRANSPORT, 's3:prefix': String(call.params.Prefix ?? '') };
      if (call.params.MaxKeys !== undefined) context['s3:max-keys'] = String(call.params.MaxKeys);
      if (call.params.Delimiter !== undefined) context['s3:delimiter'] = String(call.params.Delimiter);
      return [{ action: 's3:ListBucket', resource: bucketArn, context }];
    }
    case 'HeadBucketCommand':
      return [{ action: 's3:ListBucket', resource: bucketArn, context: S3_TRANSPORT }];
    case 'ListObjectsCommand':
      return [{ action: 's3:ListBucket', resource: bucketArn, context: { ...S3_TRANSPORT, 's3:prefix': String(call.params.Prefix ?? '') } }];
    case 'ListObjectVersionsCommand':
      return [{ action: 's3:ListBucketVersions', resource: bucketArn, context: { ...S3_TRANSPORT, 's3:prefix': String(call.params.Prefix ?? '') } }];
    case 'ListMultipartUploadsCommand':
      return [{ action: 's3:ListBucketMultipartUploads', resource: bucketArn, context: S3_TRANSPORT }];
    // A copy writes its target and reads its source.
    case 'CopyObjectCommand':
    case 'UploadPartCopyCommand':
      return [{ action: 's3:PutObject', resource: `${bucketArn}/${required(call, 'Key')}`, context: S3_TRANSPORT }, copySourceRequest(required(call, 'CopySource'))];
    // DeleteObjects is authorized as DeleteObject of each key it names.
    case 'DeleteObjectsCommand': {
      const keys = call.params.Keys;
      if (!Array.isArray(keys)) throw new Error(`${call.stage}: DeleteObjects without Keys`);
      return keys.map((key) => ({ action: 's3:DeleteObject', resource: `${bucketArn}/${key}`, context: S3_TRANSPORT }));
    }
    default:
      throw new Error(`${call.stage}: no IAM mapping for S3 ${call.command} (add it to iam-requests.ts)`);
  }
}

/** The IAM requests behind one recorded SDK call. */
export function iamRequestsOf(call: RecordedCall, where: Where): IamRequest[] {
  const command = `${call.client}.${call.command}`;
  switch (call.client) {
    case 'S3Client':
      return s3Requests(call);
    case 'SFNClient':
      if (call.command === 'GetExecutionHistoryCommand') return [{ action: 'states:GetExecutionHistory', resource: required(call, 'executionArn'), context: {} }];
      break;
    case 'BatchClient':
      // DescribeJobs supports no resource-level permissions: it is authorized on "*".
      if (call.command === 'DescribeJobsCommand') return [{ action: 'batch:DescribeJobs', resource: '*', context: {} }];
      break;
    case 'CloudWatchLogsClient':
      if (call.command === 'FilterLogEventsCommand') {
        const group = required(call, 'logGroupName');
        return [{ action: 'logs:FilterLogEvents', resource: `arn:aws:logs:${where.region}:${where.account}:log-group:${group}`, context: {} }];
      }
      break;
    case 'STSClient':
      // Every principal may ask who it is: no policy can deny GetCallerIdentity.
      if (call.command === 'GetCallerIdentityCommand') return [];
      break;
  }
  throw new Error(`${call.stage}: no IAM mapping for ${command} (add it to iam-requests.ts)`);
}
