import { App, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from './nag.js';
import { readConfig } from '#src/config/deployment.js';
import { TextshiftStack, type TextshiftStackProps } from './textshift-stack.js';

/**
 * Adds the textshift stack to an app, named and configured from the app's context, with the cdk-nag
 * AWS Solutions checks applied (an unsuppressed finding is an error annotation, so `cdk synth` fails).
 * `workflowVariant` builds a test variant of the state machine (tests only; the app never passes one).
 */
export function addTextshiftStack(app: App, workflowVariant?: TextshiftStackProps['workflowVariant']): TextshiftStack {
  const config = readConfig((key) => app.node.tryGetContext(key));
  const stack = new TextshiftStack(app, config.stackName, {
    config,
    ...(workflowVariant ? { workflowVariant } : {}),
    description: 'textshift: S3-triggered text-classifier transfer experiments (Step Functions, Lambda, Batch GPU)',
    // Looking up an existing VPC needs a concrete account and region; a new VPC keeps the stack environment-agnostic.
    env: config.vpcId
      ? { account: process.env.CDK_DEFAULT_ACCOUNT, region: process.env.CDK_DEFAULT_REGION }
      : undefined,
  });
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app, { verbose: true }));
  return stack;
}
