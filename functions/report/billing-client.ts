// The AWS edge of billing: the SDK calls behind src/cost/billing.ts's BillingApis (execution history, Batch
// DescribeJobs, Lambda REPORT lines from CloudWatch Logs), mapped onto its plain record types.
import { BatchClient, DescribeJobsCommand } from '@aws-sdk/client-batch';
import { CloudWatchLogsClient, paginateFilterLogEvents } from '@aws-sdk/client-cloudwatch-logs';
import { SFNClient, paginateGetExecutionHistory } from '@aws-sdk/client-sfn';
import type { BatchJob, BillingApis, HistoryEvent } from '#src/cost/billing.js';
import { observable } from '#src/store/aws-calls.js';

/** DescribeJobs accepts at most this many job ids per call. */
const DESCRIBE_JOBS_MAX = 100;

/** BillingApis on the SDK's default clients (region and credentials from the Lambda environment). */
export function awsBillingApis(): BillingApis {
  const sfn = new SFNClient({});
  const batch = new BatchClient({});
  const logs = new CloudWatchLogsClient({});
  // Tests see these requests too (src/store/aws-calls.ts); eslint.config.js refuses a client built elsewhere.
  for (const client of [sfn, batch, logs]) observable(client);
  return {
    async executionHistory(executionArn) {
      const events: HistoryEvent[] = [];
      for await (const page of paginateGetExecutionHistory({ client: sfn }, { executionArn, includeExecutionData: true, maxResults: 1000 })) {
        for (const e of page.events ?? []) {
          if (e.id === undefined || e.type === undefined || e.timestamp === undefined) continue;
          events.push({ ...e, id: e.id, type: e.type, timestamp: e.timestamp } as HistoryEvent);
        }
      }
      return events;
    },
    async describeJobs(jobIds) {
      const jobs: BatchJob[] = [];
      for (let i = 0; i < jobIds.length; i += DESCRIBE_JOBS_MAX) {
        const out = await batch.send(new DescribeJobsCommand({ jobs: jobIds.slice(i, i + DESCRIBE_JOBS_MAX) }));
        for (const j of out.jobs ?? []) {
          if (j.jobId === undefined) continue;
          jobs.push({
            jobId: j.jobId,
            ...(j.jobName === undefined ? {} : { jobName: j.jobName }),
            ...(j.parameters === undefined ? {} : { parameters: j.parameters }),
            ...(j.startedAt === undefined ? {} : { startedAt: j.startedAt }),
            ...(j.stoppedAt === undefined ? {} : { stoppedAt: j.stoppedAt }),
            attempts: (j.attempts ?? []).map((a) => ({ startedAt: a.startedAt, stoppedAt: a.stoppedAt })),
            container: {
              resourceRequirements: (j.container?.resourceRequirements ?? []).flatMap((r) =>
                r.type === undefined || r.value === undefined ? [] : [{ type: r.type, value: r.value }],
              ),
            },
          });
        }
      }
      return jobs;
    },
    async lambdaReportLines(functionName, startMs, endMs) {
      const lines: string[] = [];
      // Text-format REPORT lines, or the JSON log format's platform.report records.
      const filter = { logGroupName: `/aws/lambda/${functionName}`, startTime: startMs, endTime: endMs, filterPattern: '?"REPORT RequestId" ?"platform.report"' };
      for await (const page of paginateFilterLogEvents({ client: logs }, filter)) {
        for (const e of page.events ?? []) if (e.message) lines.push(e.message);
      }
      return lines;
    },
  };
}
