import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { acknowledge } from '../nag.js';
import { Construct } from 'constructs';
import { PREFIXES } from '#src/run/keys.js';

export interface StorageProps {
  /** Days after which `cache/` objects (recomputable feature vectors) expire. */
  cacheExpiryDays: number;
}

/**
 * The one data bucket (experiments, datasets, models, runs, cache: the same layout as a local folder store)
 * and the bucket its server access logs go to.
 */
export class Storage extends Construct {
  readonly bucket: s3.Bucket;
  readonly accessLogs: s3.Bucket;

  constructor(scope: Construct, id: string, props: StorageProps) {
    super(scope, id);

    // Access logs live in their own bucket: logging the data bucket into itself would log the log writes.
    this.accessLogs = new s3.Bucket(this, 'AccessLogs', {
      encryption: s3.BucketEncryption.S3_MANAGED,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      enforceSSL: true,
      minimumTLSVersion: 1.2,
      lifecycleRules: [{ id: 'expire-access-logs', expiration: Duration.days(365) }],
      removalPolicy: RemovalPolicy.RETAIN,
    });
    acknowledge(
      this.accessLogs,
      'AwsSolutions-S1',
      'This is the access-log bucket itself; logging it would log its own log deliveries.',
    );

    // Experiments, inputs, models and every run artifact; retained on stack deletion so results outlive the stack.
    this.bucket = new s3.Bucket(this, 'Data', {
      encryption: s3.BucketEncryption.S3_MANAGED,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      enforceSSL: true,
      minimumTLSVersion: 1.2,
      versioned: true,
      serverAccessLogsBucket: this.accessLogs,
      serverAccessLogsPrefix: 'data/',
      lifecycleRules: [
        {
          // Feature vectors are a cache keyed by content hash: anything expired is recomputed on demand. Expiry counts
          // from the creation of an entry's current version, and Featurize copies an entry onto itself when a run
          // uses it (s3:GetObject and s3:PutObject on cache/, which it holds), so entries in use never expire; the
          // version that copy replaces is noncurrent and goes a day later.
          id: 'expire-feature-cache',
          prefix: PREFIXES.cache,
          expiration: Duration.days(props.cacheExpiryDays),
          noncurrentVersionExpiration: Duration.days(1),
        },
        {
          // Versioning protects against overwrites; old versions are kept for a month, not forever.
          id: 'expire-noncurrent-versions',
          noncurrentVersionExpiration: Duration.days(30),
          abortIncompleteMultipartUploadAfter: Duration.days(1),
        },
      ],
      removalPolicy: RemovalPolicy.RETAIN,
    });

    // EventBridge notifications set on the bucket resource itself (the L2 `eventBridgeEnabled` prop would add a
    // custom-resource Lambda to do the same), so uploads under experiments/ can start a run.
    const cfnBucket = this.bucket.node.defaultChild as s3.CfnBucket;
    cfnBucket.notificationConfiguration = { eventBridgeConfiguration: { eventBridgeEnabled: true } };
  }
}
