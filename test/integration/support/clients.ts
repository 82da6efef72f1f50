/** The AWS clients integration tests use, pointed at the target the globalSetup chose (emulator or real AWS). */
import { EventBridgeClient } from '@aws-sdk/client-eventbridge';
import { SFNClient } from '@aws-sdk/client-sfn';
import { STSClient } from '@aws-sdk/client-sts';
import { awsClientConfig, emulatorS3 } from '../setup/aws.js';
import type { DeployClients } from './deploy.js';

/** S3, Step Functions, EventBridge and STS clients for the test target; `destroy` closes them all. */
export function targetClients(): DeployClients & { destroy(): void } {
  const config = awsClientConfig();
  const clients = { s3: emulatorS3(), sfn: new SFNClient(config), events: new EventBridgeClient(config), sts: new STSClient(config) };
  return { ...clients, destroy: () => Object.values(clients).forEach((c) => c.destroy()) };
}
