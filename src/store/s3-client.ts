import { S3Client, type S3ClientConfig } from '@aws-sdk/client-s3';
import { observable } from './aws-calls.js';

/** The environment variables that decide how S3 is reached; read here only, by `s3ClientConfig`. */
export const S3_ENV = {
  /** An AWS emulator (the test setup and `scripts/emulator` set it): wins over the standard variables below. */
  emulatorEndpoint: 'TEXTSHIFT_AWS_ENDPOINT',
  /** The AWS SDKs' S3-only endpoint override (MinIO, a VPC interface endpoint). */
  s3Endpoint: 'AWS_ENDPOINT_URL_S3',
  /** The AWS SDKs' endpoint override for every service. */
  endpoint: 'AWS_ENDPOINT_URL',
  /** Region of the requests; Lambda sets it, and the stack sets it on the trainer job. */
  region: 'AWS_REGION',
  /** Region used when AWS_REGION is unset (the AWS CLI's name for it). */
  defaultRegion: 'AWS_DEFAULT_REGION',
  /** Static credentials; when set (or AWS_PROFILE is), the emulator gets no dummy credentials. */
  accessKeyId: 'AWS_ACCESS_KEY_ID',
  /** A named profile of the shared AWS config files. */
  profile: 'AWS_PROFILE',
} as const;

/** Credentials emulators accept (they check none); only ever given to TEXTSHIFT_AWS_ENDPOINT. */
const EMULATOR_CREDENTIALS = { accessKeyId: 'test', secretAccessKey: 'test' };
/** The region of requests to an endpoint override when the environment names none (emulators accept any). */
const OVERRIDE_REGION = 'us-east-1';

/**
 * The one rule for reaching S3, used by every store textshift opens (`s3://` locations and the deployment's bucket):
 * - Endpoint: the first non-empty of TEXTSHIFT_AWS_ENDPOINT, AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL; none means AWS.
 * - With an endpoint override, buckets are addressed by path (emulators and private endpoints rarely resolve
 *   bucket subdomains) and the region defaults to us-east-1 when AWS_REGION and AWS_DEFAULT_REGION are unset.
 * - Without one, the region is AWS_REGION, else AWS_DEFAULT_REGION, else the SDK's own chain (profile), and a
 *   bucket in another region is followed by its redirect.
 * - Dummy credentials only for TEXTSHIFT_AWS_ENDPOINT, and only when neither AWS_ACCESS_KEY_ID nor AWS_PROFILE is
 *   set: a standard override may be a real service that needs the real credential chain.
 */
export function s3ClientConfig(env: NodeJS.ProcessEnv = process.env): S3ClientConfig {
  const value = (name: string) => env[name] || undefined;
  const emulator = value(S3_ENV.emulatorEndpoint);
  const endpoint = emulator ?? value(S3_ENV.s3Endpoint) ?? value(S3_ENV.endpoint);
  const region = value(S3_ENV.region) ?? value(S3_ENV.defaultRegion);
  const dummyCredentials = emulator !== undefined && !value(S3_ENV.accessKeyId) && !value(S3_ENV.profile);
  return {
    ...(endpoint
      ? { endpoint, forcePathStyle: true, region: region ?? OVERRIDE_REGION }
      : { followRegionRedirects: true, ...(region ? { region } : {}) }),
    // A copy each time: the SDK annotates the credentials object it is given.
    ...(dummyCredentials ? { credentials: { ...EMULATOR_CREDENTIALS } } : {}),
  };
}

/**
 * An S3 client that follows `s3ClientConfig`'s rule for this environment, observable by tests (aws-calls.ts). The
 * product builds its S3 clients here only (eslint.config.js refuses a bare one elsewhere).
 */
export function s3ClientFromEnv(env: NodeJS.ProcessEnv = process.env): S3Client {
  return observable(new S3Client(s3ClientConfig(env)));
}
