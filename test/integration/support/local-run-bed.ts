/** A bucket in the emulator holding the tiny run's inputs, and local workflows of synthesized stacks that run on it. */
import { GetCallerIdentityCommand } from '@aws-sdk/client-sts';
import { S3BlobStore } from '../../../src/store/s3-store.js';
import { awsClientConfig, createTestBucket } from '../setup/aws.js';
import type { DeployClients, SynthesizedStack } from './deploy.js';
import { LocalWorkflow } from './local-workflow.js';
import { uploadTinyRunInputs } from './run-inputs.js';

export interface LocalRunBed {
  bucket: string;
  /** The bucket through the product's own S3 BlobStore, for reading what a run wrote. */
  store: S3BlobStore;
  /** Where tiny.json is in the bucket. */
  experimentKey: string;
  /**
   * The stack's state machine, ready to execute locally against this bucket (`trainerEnv`: see LocalWorkflowOptions;
   * `endpoint`: where handlers and the trainer reach S3, the emulator unless a test puts a proxy in between;
   * `accessKeyIds`: the access key id of each actor, see LocalWorkflowOptions).
   */
  workflow(stack: SynthesizedStack, trainerEnv?: Record<string, string>, endpoint?: string, accessKeyIds?: Record<string, string>): LocalWorkflow;
  /** Restores the environment the in-process handlers were given and removes the bucket. */
  dispose(): Promise<void>;
}

/** Creates a bucket, versioned as the stack's data bucket is, with tiny.json and its datasets in the emulator the clients point at. */
export async function localRunBed(clients: DeployClients): Promise<LocalRunBed> {
  const config = awsClientConfig();
  if (!config.endpoint) throw new Error('local workflow runs need an emulator endpoint');
  const { Account } = await clients.sts.send(new GetCallerIdentityCommand({}));
  const { bucket, remove } = await createTestBucket(clients.s3, { versioned: true });
  const workflows: LocalWorkflow[] = [];
  try {
    const experimentKey = await uploadTinyRunInputs(clients.s3, bucket);
    return {
      bucket,
      store: new S3BlobStore({ bucket, client: clients.s3 }),
      experimentKey,
      workflow(stack, trainerEnv, endpoint, accessKeyIds) {
        const w = new LocalWorkflow(stack, {
          bucket,
          account: Account!,
          region: config.region,
          // What the function and job roles would provide, pointed at the emulator (TEXTSHIFT_AWS_ENDPOINT too: it wins
          // over AWS_ENDPOINT_URL, and the test process has it).
          awsEnv: {
            AWS_ENDPOINT_URL: endpoint ?? config.endpoint!,
            TEXTSHIFT_AWS_ENDPOINT: endpoint ?? config.endpoint!,
            AWS_REGION: config.region,
            AWS_ACCESS_KEY_ID: 'test',
            AWS_SECRET_ACCESS_KEY: 'test',
          },
          ...(trainerEnv ? { trainerEnv } : {}),
          ...(accessKeyIds ? { accessKeyIds } : {}),
        });
        workflows.push(w);
        return w;
      },
      async dispose() {
        // Newest first: each workflow saved the values the one before it had set.
        for (const w of workflows.reverse()) w.restoreEnvironment();
        await remove();
      },
    };
  } catch (err) {
    await remove();
    throw err;
  }
}
