import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import type * as s3 from 'aws-cdk-lib/aws-s3';
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
 * Upload -> run: an EventBridge rule on the bucket's Object Created events for experiment files starts the
 * state machine with `{bucket, key, uploadId}`. EventBridge delivers at least once and a rule target cannot
 * name the execution, so the state machine itself turns the upload into a named run (see Workflow).
 */
export class Trigger extends Construct {
  readonly rule: events.Rule;

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
      }),
    );
  }
}
