import { Duration } from 'aws-cdk-lib';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { acknowledge } from '../nag.js';
import type * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import { Construct } from 'constructs';
import { PREFIXES } from '#src/run/keys.js';

export interface TriggerProps {
  bucket: s3.IBucket;
  stateMachine: sfn.IStateMachine;
}

/** The object-key pattern whose uploads start a run. */
export const EXPERIMENT_KEY_PATTERN = `${PREFIXES.experiments}*.json`;

/**
 * How EventBridge retries starting a run (StartExecution throttled, the service briefly unavailable) before the upload's
 * event goes to the dead-letter queue. Two hours outlasts a transient outage; a cause that lasts longer (a deleted or
 * misconfigured state machine) needs a person, whom the DLQ's alarm calls, and the event waits there 14 days to be
 * replayed. EventBridge's defaults (185 attempts over 24 hours) would leave an upload silently unstarted for a day.
 */
export const UPLOAD_DELIVERY = { retryAttempts: 20, maxEventAgeHours: 2, deadLetterRetentionDays: 14 } as const;

/**
 * Upload -> run: an EventBridge rule on the bucket's Object Created events for experiment files starts the
 * state machine with `{bucket, key, uploadId}`. EventBridge delivers at least once and a rule target cannot
 * name the execution, so the state machine itself turns the upload into a named run (see Workflow).
 */
export class Trigger extends Construct {
  readonly rule: events.Rule;
  /** Upload events EventBridge could not deliver to the state machine (after UPLOAD_DELIVERY's retries). */
  readonly deadLetters: sqs.Queue;

  constructor(scope: Construct, id: string, props: TriggerProps) {
    super(scope, id);

    // Only experiment files start runs; everything the workflow writes (runs/, cache/) never matches.
    this.rule = new events.Rule(this, 'ExperimentUploaded', {
      description: `Starts a textshift run when ${EXPERIMENT_KEY_PATTERN} is uploaded`,
      eventPattern: {
        source: ['aws.s3'],
        detailType: ['Object Created'],
        detail: {
          bucket: { name: [props.bucket.bucketName] },
          object: { key: events.Match.wildcard(EXPERIMENT_KEY_PATTERN) },
        },
      },
    });

    // Encrypted at rest (SQS-managed keys, which EventBridge may send to without a key policy) and TLS-only, like the bucket.
    this.deadLetters = new sqs.Queue(this, 'UndeliveredUploads', {
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: Duration.days(UPLOAD_DELIVERY.deadLetterRetentionDays),
    });
    acknowledge(
      this.deadLetters,
      'AwsSolutions-SQS3',
      'This queue is itself the dead-letter queue of the upload rule\'s target (EventBridge sends to it; cdk-nag only recognises SQS redrive policies).',
    );

    // The object's version id (the bucket is versioned) identifies the upload: the same in every delivery of one
    // upload, new for every upload of the key. It is also what the run reads, so a later upload of the same key never
    // changes a run already started. (The event's sequencer would identify it too on AWS, but LocalStack 4.14 sends
    // one constant sequencer for every upload.)
    this.rule.addTarget(
      new targets.SfnStateMachine(props.stateMachine, {
        input: events.RuleTargetInput.fromObject({
          bucket: events.EventField.fromPath('$.detail.bucket.name'),
          key: events.EventField.fromPath('$.detail.object.key'),
          uploadId: events.EventField.fromPath('$.detail.object.version-id'),
        }),
        retryAttempts: UPLOAD_DELIVERY.retryAttempts,
        maxEventAge: Duration.hours(UPLOAD_DELIVERY.maxEventAgeHours),
        deadLetterQueue: this.deadLetters,
      }),
    );
  }
}
