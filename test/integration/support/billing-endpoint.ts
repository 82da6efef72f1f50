/**
 * A loopback HTTP endpoint that answers the three billing APIs (Step Functions GetExecutionHistory, Batch
 * DescribeJobs, CloudWatch Logs FilterLogEvents) from the recorded responses in test/fixtures/billing, on their
 * wire protocols (awsJson1_0, restJson1, awsJson1_1). With AWS_ENDPOINT_URL pointing at it, the Report stage's
 * real SDK clients (functions/report/billing-client.ts) make their real requests, and they can be recorded.
 */
import { readFileSync } from 'node:fs';
import { type IncomingMessage, type ServerResponse, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { RECORDED_EXECUTION_ARN } from '../../fixtures/billing/recorded-apis.js';

const fixture = <T>(file: string) => JSON.parse(readFileSync(new URL(`../../fixtures/billing/${file}`, import.meta.url), 'utf8')) as T;

type Answer = { status: number; type: string; body: unknown };

function json10(body: unknown, status = 200): Answer {
  return { status, type: 'application/x-amz-json-1.0', body };
}

function json11(body: unknown, status = 200): Answer {
  return { status, type: 'application/x-amz-json-1.1', body };
}

/** What each API answers, as the service would for the recorded execution. */
function answer(req: IncomingMessage, input: Record<string, unknown>): Answer {
  const target = req.headers['x-amz-target'];
  if (target === 'AWSStepFunctions.GetExecutionHistory') {
    if (input.executionArn !== RECORDED_EXECUTION_ARN) return json10({ __type: 'ExecutionDoesNotExist', message: `Execution Does Not Exist: '${String(input.executionArn)}'` }, 400);
    // On the wire, timestamps are epoch seconds.
    const { events } = fixture<{ events: { timestamp: string }[] }>('get-execution-history.json');
    return json10({ events: events.map((e) => ({ ...e, timestamp: Date.parse(e.timestamp) / 1000 })) });
  }
  if (target === 'Logs_20140328.FilterLogEvents') {
    const group = fixture<Record<string, { events: { timestamp: number }[] }>>('filter-log-events.json')[String(input.logGroupName)];
    if (!group) return json11({ __type: 'ResourceNotFoundException', message: 'The specified log group does not exist.' }, 400);
    const [start, end] = [Number(input.startTime ?? 0), Number(input.endTime ?? Number.MAX_SAFE_INTEGER)];
    return json11({ ...group, events: group.events.filter((e) => e.timestamp >= start && e.timestamp <= end) });
  }
  if (req.method === 'POST' && req.url === '/v1/describejobs') {
    const ids = (input.jobs ?? []) as string[];
    const { jobs } = fixture<{ jobs: { jobId: string }[] }>('describe-jobs.json');
    return { status: 200, type: 'application/json', body: { jobs: jobs.filter((j) => ids.includes(j.jobId)) } };
  }
  return { status: 400, type: 'application/json', body: { message: `the billing endpoint does not answer ${req.method} ${req.url} (${String(target)})` } };
}

async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  const text = Buffer.concat(chunks).toString('utf8');
  const { status, type, body } = answer(req, text === '' ? {} : (JSON.parse(text) as Record<string, unknown>));
  res.writeHead(status, { 'content-type': type }).end(JSON.stringify(body));
}

/** Starts the endpoint on a free loopback port; `close` stops it. */
export async function billingEndpoint(): Promise<{ url: string; close(): Promise<void> }> {
  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => res.writeHead(500).end(String(err)));
  });
  await new Promise<void>((ready) => server.listen(0, '127.0.0.1', ready));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}`, close: () => new Promise((done) => server.close(() => done())) };
}
