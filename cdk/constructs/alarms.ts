import { Duration } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as actions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as subscriptions from 'aws-cdk-lib/aws-sns-subscriptions';
import type * as sqs from 'aws-cdk-lib/aws-sqs';
import type * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import { Construct } from 'constructs';
import { acknowledge } from '../nag.js';

export interface RunAlarmsProps {
  stateMachine: sfn.StateMachine;
  /** The upload trigger's dead-letter queue. */
  deadLetters: sqs.IQueue;
  /** Subscribed to every alarm (cdk.json `alarmEmail`); unset, the alarms show in the console only. */
  email?: string;
}

/** How often the alarms look: a failed run is known within five minutes. */
const PERIOD = Duration.minutes(5);

/**
 * Alarms on what costs money or loses a run without anyone watching: executions that failed (a stage failed, or
 * Prepare refused the run over a cap) or timed out (maxRunHours), and uploads EventBridge could not turn into a run
 * (messages in the trigger's dead-letter queue). Each fires on one occurrence in five minutes.
 */
export class RunAlarms extends Construct {
  readonly alarms: cloudwatch.Alarm[];
  /** Where the alarms notify, when an e-mail address is configured. */
  readonly topic?: sns.Topic;

  constructor(scope: Construct, id: string, props: RunAlarmsProps) {
    super(scope, id);
    const atLeastOnce = (name: string, metric: cloudwatch.IMetric, description: string) =>
      new cloudwatch.Alarm(this, name, {
        metric,
        threshold: 1,
        evaluationPeriods: 1,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        // No executions, no data: nothing is wrong.
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
        alarmDescription: description,
      });
    this.alarms = [
      atLeastOnce(
        'ExecutionsFailed',
        props.stateMachine.metricFailed({ period: PERIOD, statistic: cloudwatch.Stats.SUM }),
        'A textshift run failed: its manifest (runs/<id>/manifest.json) and report.html say in which stage and why.',
      ),
      atLeastOnce(
        'ExecutionsTimedOut',
        props.stateMachine.metricTimedOut({ period: PERIOD, statistic: cloudwatch.Stats.SUM }),
        'A textshift run outlived maxRunHours and was stopped; redrive it, or raise maxRunHours.',
      ),
      atLeastOnce(
        'UploadsUndelivered',
        props.deadLetters.metricApproximateNumberOfMessagesVisible({ period: PERIOD, statistic: cloudwatch.Stats.MAXIMUM }),
        'An uploaded experiment could not start a run: its event is in the trigger\'s dead-letter queue (kept 14 days).',
      ),
    ];

    if (props.email === undefined) return;
    // Alarm notifications name the alarm and its state only. CloudWatch cannot publish to a topic encrypted with the
    // AWS-managed SNS key, and a customer-managed key would be billed monthly for no secret.
    this.topic = new sns.Topic(this, 'Topic', { displayName: 'textshift alarms', enforceSSL: true });
    acknowledge(
      this.topic,
      'AwsSolutions-SNS2',
      'Alarm notifications carry only alarm names and states; CloudWatch cannot publish to a topic encrypted with the AWS-managed key.',
    );
    this.topic.addSubscription(new subscriptions.EmailSubscription(props.email));
    for (const alarm of this.alarms) alarm.addAlarmAction(new actions.SnsAction(this.topic));
  }
}
