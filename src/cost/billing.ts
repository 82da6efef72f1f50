/**
 * Billed usage of a run on AWS, from the records AWS keeps of it: the Step Functions execution history (state
 * transitions, which task ran when, Lambda request ids, Batch job ids), Batch DescribeJobs (start and stop time
 * of every job attempt) and the Lambda REPORT log lines (billed duration and memory of every invocation).
 *
 * Pure: the records come in as plain data shaped like the AWS API responses (the field names of the SDK's
 * HistoryEvent and JobDetail), fetched by the edge through `BillingApis` (functions/report/billing-client.ts).
 */
import type { StageUsage } from '../run/records.js';
import type { RunUsage } from './cost.js';
import { MissingInputError } from '../errors/index.js';
import { childExecutionTransitions } from './transitions.js';

/** The fields of a Step Functions `HistoryEvent` (GetExecutionHistory) that billing reads. */
export interface HistoryEvent {
  id: number;
  previousEventId?: number;
  timestamp: Date | string | number;
  type: string;
  taskScheduledEventDetails?: { resourceType: string; resource: string; parameters?: string };
  taskSubmittedEventDetails?: { resourceType: string; resource: string; output?: string };
  taskSucceededEventDetails?: { resourceType: string; resource: string; output?: string };
  taskFailedEventDetails?: { resourceType: string; resource: string; error?: string; cause?: string };
  taskTimedOutEventDetails?: { resourceType: string; resource: string; error?: string; cause?: string };
}

/** The fields of a Batch `JobDetail` (DescribeJobs) that billing reads; times are Unix milliseconds. */
export interface BatchJob {
  jobId: string;
  jobName?: string;
  parameters?: Record<string, string>;
  startedAt?: number;
  stoppedAt?: number;
  attempts?: { startedAt?: number; stoppedAt?: number }[];
  container?: { resourceRequirements?: { type: string; value: string }[] };
}

/** One Lambda invocation's REPORT log line. */
export interface LambdaReport {
  requestId: string;
  durationMs: number;
  billedDurationMs: number;
  memoryMb: number;
  initDurationMs?: number;
}

/** The AWS reads billing needs; the edge implements them with the SDK, tests with recorded responses. */
export interface BillingApis {
  /** Every event of the execution, oldest first (all pages; execution data included). */
  executionHistory(executionArn: string): Promise<HistoryEvent[]>;
  /** DescribeJobs for these ids (jobs Batch no longer knows are missing from the answer). */
  describeJobs(jobIds: string[]): Promise<BatchJob[]>;
  /** The messages of the REPORT lines a function logged in [startMs, endMs]. */
  lambdaReportLines(functionName: string, startMs: number, endMs: number): Promise<string[]>;
}

/** What billing needs besides the AWS records. */
export interface BilledUsageOptions {
  executionArn: string;
  /** Stage name -> Lambda function name in this deployment (`prepare` -> `textshift-prepare`, ...). */
  functions: Record<string, string>;
  /** Configured memory per stage, for invocations whose REPORT line was not found. */
  memoryMb: Record<string, number>;
  /** The run's measured usage: S3 requests and stored bytes come from it (AWS bills those per bucket, not per run). */
  measured: RunUsage;
  /** The invocation computing the report, still running (its REPORT line does not exist yet). */
  current?: { stage: string; seconds: number; memoryMb: number };
  /** Clock for the log-search window (default Date.now). */
  now?: () => number;
}

const REPORT_TEXT =
  /^REPORT RequestId: (\S+)\s+Duration: ([\d.]+) ms\s+Billed Duration: (\d+) ms\s+Memory Size: (\d+) MB(?:\s+Max Memory Used: \d+ MB)?(?:\s+Init Duration: ([\d.]+) ms)?/;

/**
 * Parses a Lambda REPORT line: the text format (`REPORT RequestId: <id>\tDuration: 12.34 ms\tBilled Duration:
 * 13 ms\tMemory Size: 1024 MB\t...`) or the JSON log format's `platform.report` record. Other lines: undefined.
 */
export function parseLambdaReport(message: string): LambdaReport | undefined {
  const text = REPORT_TEXT.exec(message.trim());
  if (text) {
    const report: LambdaReport = { requestId: text[1]!, durationMs: Number(text[2]), billedDurationMs: Number(text[3]), memoryMb: Number(text[4]) };
    if (text[5] !== undefined) report.initDurationMs = Number(text[5]);
    return report;
  }
  if (!message.includes('platform.report')) return undefined;
  try {
    const json = JSON.parse(message) as { type?: string; record?: { requestId?: string; metrics?: Record<string, number> } };
    const m = json.record?.metrics;
    if (json.type !== 'platform.report' || !json.record?.requestId || m?.billedDurationMs === undefined || m.memorySizeMB === undefined) return undefined;
    const report: LambdaReport = { requestId: json.record.requestId, durationMs: m.durationMs ?? m.billedDurationMs, billedDurationMs: m.billedDurationMs, memoryMb: m.memorySizeMB };
    if (m.initDurationMs !== undefined) report.initDurationMs = m.initDurationMs;
    return report;
  } catch {
    return undefined;
  }
}

/** One attempt of a Task state as the history records it (a retry is another attempt). */
export interface TaskAttempt {
  resourceType: string;
  resource: string;
  /** `FunctionName` of a Lambda task (name, ARN or partial ARN, as the definition gives it). */
  functionName?: string;
  /** The Lambda invocation's request id, from a successful task's response metadata. */
  requestId?: string;
  jobId?: string;
  startedMs?: number;
  endedMs?: number;
  outcome: 'succeeded' | 'failed' | 'timed out' | 'unfinished';
}

const ms = (t: HistoryEvent['timestamp']) => (t instanceof Date ? t.getTime() : typeof t === 'number' ? t : Date.parse(t));

function parseJson(text: string | undefined): Record<string, unknown> | undefined {
  if (!text) return undefined;
  try {
    const v = JSON.parse(text) as unknown;
    return v !== null && typeof v === 'object' ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/** Every task attempt of an execution, linked by the events' previousEventId chain (Map iterations interleave). */
export function taskAttempts(events: HistoryEvent[]): TaskAttempt[] {
  const attempts = new Map<number, TaskAttempt>();
  /** Event id -> the TaskScheduled id it descends from. */
  const scheduledOf = new Map<number, number>();
  for (const e of events) {
    if (e.type === 'TaskScheduled' && e.taskScheduledEventDetails) {
      const d = e.taskScheduledEventDetails;
      const attempt: TaskAttempt = { resourceType: d.resourceType, resource: d.resource, outcome: 'unfinished' };
      const fn = parseJson(d.parameters)?.FunctionName;
      if (typeof fn === 'string') attempt.functionName = fn;
      attempts.set(e.id, attempt);
      scheduledOf.set(e.id, e.id);
      continue;
    }
    const origin = e.previousEventId === undefined ? undefined : scheduledOf.get(e.previousEventId);
    const attempt = origin === undefined ? undefined : attempts.get(origin);
    if (!attempt || origin === undefined) continue;
    scheduledOf.set(e.id, origin);
    const jobIdIn = (json: Record<string, unknown> | undefined) => (typeof json?.JobId === 'string' ? json.JobId : undefined);
    switch (e.type) {
      case 'TaskStarted':
        attempt.startedMs = ms(e.timestamp);
        break;
      case 'TaskSubmitted':
        attempt.jobId ??= jobIdIn(parseJson(e.taskSubmittedEventDetails?.output));
        break;
      case 'TaskSucceeded': {
        const out = parseJson(e.taskSucceededEventDetails?.output);
        const requestId = (out?.SdkResponseMetadata as { RequestId?: unknown } | undefined)?.RequestId;
        if (typeof requestId === 'string') attempt.requestId = requestId;
        attempt.jobId ??= jobIdIn(out);
        attempt.endedMs = ms(e.timestamp);
        attempt.outcome = 'succeeded';
        break;
      }
      case 'TaskFailed':
        attempt.jobId ??= jobIdIn(parseJson(e.taskFailedEventDetails?.cause));
        attempt.endedMs = ms(e.timestamp);
        attempt.outcome = 'failed';
        break;
      case 'TaskTimedOut':
        attempt.endedMs = ms(e.timestamp);
        attempt.outcome = 'timed out';
        break;
    }
  }
  return [...attempts.values()];
}

/**
 * State transitions Step Functions bills for the execution: every state entered (Map iterations included) plus
 * every task retry, which the history shows as another TaskScheduled within the same state entry.
 */
export function stateTransitions(events: HistoryEvent[]): number {
  let entered = 0;
  let taskEntered = 0;
  let scheduled = 0;
  for (const e of events) {
    if (e.type.endsWith('StateEntered')) entered++;
    if (e.type === 'TaskStateEntered') taskEntered++;
    if (e.type === 'TaskScheduled') scheduled++;
  }
  return entered + Math.max(0, scheduled - taskEntered);
}

/** The function name in a Lambda `FunctionName` (name, `name:qualifier`, full or partial ARN). */
export function functionNameOf(functionName: string): string {
  const parts = functionName.split(':');
  const i = parts.indexOf('function');
  return i >= 0 ? parts[i + 1]! : parts[0]!;
}

/** Seconds of a Batch job's attempts (each attempt runs its own container, so each is a start-up too). */
function jobRuns(job: BatchJob): number[] {
  const runs = (job.attempts ?? []).filter((a) => a.startedAt !== undefined && a.stoppedAt !== undefined).map((a) => (a.stoppedAt! - a.startedAt!) / 1000);
  if (runs.length === 0 && job.startedAt !== undefined && job.stoppedAt !== undefined) runs.push((job.stoppedAt - job.startedAt) / 1000);
  return runs;
}

function jobMemoryMb(job: BatchJob): number {
  const memory = job.container?.resourceRequirements?.find((r) => r.type === 'MEMORY')?.value;
  return memory === undefined ? 0 : Number(memory);
}

const NO_REQUESTS = { put: 0, get: 0, list: 0 };

/** Lambda usage of one stage: one entry per memory size, seconds and invocations summed. */
function lambdaEntries(invocations: { seconds: number; memoryMb: number }[]): StageUsage[] {
  const byMemory = new Map<number, StageUsage>();
  for (const inv of invocations) {
    const entry = byMemory.get(inv.memoryMb) ?? { seconds: 0, memoryMb: inv.memoryMb, kind: 'lambda', invocations: 0, requests: { ...NO_REQUESTS }, bytesWritten: 0 };
    entry.seconds += inv.seconds;
    entry.invocations += 1;
    byMemory.set(inv.memoryMb, entry);
  }
  return [...byMemory.values()];
}

/** The inputs `billedUsage` turns into a RunUsage: the AWS records, already fetched. */
export interface BillingRecords {
  history: HistoryEvent[];
  jobs: BatchJob[];
  reports: LambdaReport[];
}

/**
 * Turns an execution's AWS records into the run's billed usage: Lambda seconds are REPORT billed durations at
 * the reported memory (falling back to the history's task duration at the configured memory), Batch seconds
 * the job attempts' start-to-stop times (falling back to the task's duration in the history, which includes
 * queueing), state transitions from the history; S3 requests and stored bytes are the measured ones. `notes`
 * say which fallbacks were used.
 */
export function billedUsage(records: BillingRecords, o: Omit<BilledUsageOptions, 'executionArn' | 'now'>): RunUsage {
  const stageOfFunction = new Map(Object.entries(o.functions).map(([stage, fn]) => [fn, stage]));
  const reports = new Map(records.reports.map((r) => [r.requestId, r]));
  const jobs = new Map(records.jobs.map((j) => [j.jobId, j]));
  const lambda = new Map<string, { seconds: number; memoryMb: number }[]>();
  const batch: StageUsage[] = [];
  let fromHistory = 0;
  let lambdaCount = 0;
  const missingJobs: string[] = [];
  const unknownFunctions = new Set<string>();

  for (const a of taskAttempts(records.history)) {
    // A Lambda task without an end is the invocation writing this report (`current`), or one cut off by an
    // aborted execution, whose billed time the history cannot tell.
    if (a.resourceType === 'lambda' && a.functionName !== undefined && a.outcome !== 'unfinished') {
      const fn = functionNameOf(a.functionName);
      const stage = stageOfFunction.get(fn);
      if (stage === undefined) {
        unknownFunctions.add(fn);
        continue;
      }
      lambdaCount++;
      const report = a.requestId === undefined ? undefined : reports.get(a.requestId);
      let invocation: { seconds: number; memoryMb: number } | undefined;
      if (report) invocation = { seconds: report.billedDurationMs / 1000, memoryMb: report.memoryMb };
      else if (a.startedMs !== undefined && a.endedMs !== undefined) {
        fromHistory++;
        invocation = { seconds: Math.ceil(a.endedMs - a.startedMs) / 1000, memoryMb: o.memoryMb[stage] ?? 0 };
      }
      if (invocation) lambda.set(stage, [...(lambda.get(stage) ?? []), invocation]);
    } else if (a.resourceType === 'batch') {
      const job = a.jobId === undefined ? undefined : jobs.get(a.jobId);
      if (job) {
        for (const seconds of jobRuns(job)) {
          batch.push({ seconds, memoryMb: jobMemoryMb(job), kind: 'batch', invocations: 1, requests: { ...NO_REQUESTS }, bytesWritten: 0 });
        }
      } else if (a.startedMs !== undefined && a.endedMs !== undefined) {
        missingJobs.push(a.jobId ?? '(no job id)');
        batch.push({ seconds: (a.endedMs - a.startedMs) / 1000, memoryMb: 0, kind: 'batch', invocations: 1, requests: { ...NO_REQUESTS }, bytesWritten: 0 });
      }
    }
  }
  if (o.current) lambda.set(o.current.stage, [...(lambda.get(o.current.stage) ?? []), { seconds: o.current.seconds, memoryMb: o.current.memoryMb }]);

  // A Distributed Map (Featurize) runs its tasks in child executions, whose histories are not in this one: their
  // Lambda time is the measured time at the configured memory, their transitions the count for that many shards.
  const distributed = records.history.some((e) => e.type === 'MapRunStarted');
  const featurizeMeasured = o.measured.stages.featurize ?? [];
  const shards = featurizeMeasured.reduce((n, e) => n + e.invocations, 0);

  const stages: Record<string, StageUsage[]> = {};
  for (const [stage, invocations] of lambda) stages[stage] = lambdaEntries(invocations);
  if (distributed && !stages.featurize && shards > 0) {
    const seconds = featurizeMeasured.reduce((t, e) => t + e.seconds, 0);
    stages.featurize = [{ seconds, memoryMb: o.memoryMb.featurize ?? 0, kind: 'lambda', invocations: shards, requests: { ...NO_REQUESTS }, bytesWritten: 0 }];
  }
  if (batch.length > 0) stages.train = batch;
  // S3 requests as measured, attached to the stage that made them (a compute-free entry where AWS billed none).
  for (const [stage, entries] of Object.entries(o.measured.stages)) {
    const requests = { ...NO_REQUESTS };
    let bytesWritten = 0;
    for (const e of entries) {
      requests.put += e.requests.put;
      requests.get += e.requests.get;
      requests.list += e.requests.list;
      bytesWritten += e.bytesWritten;
    }
    const target = stages[stage]?.[0];
    if (target) {
      target.requests = requests;
      target.bytesWritten = bytesWritten;
    } else if (requests.put + requests.get + requests.list > 0) {
      stages[stage] = [{ seconds: 0, memoryMb: 0, kind: 'lambda', invocations: 0, requests, bytesWritten }];
    }
  }

  const notes = [
    `Lambda: ${lambdaCount - fromHistory} of ${lambdaCount} invocations priced from their REPORT billed duration` +
      (fromHistory > 0 ? `, ${fromHistory} from the execution history's task duration at the configured memory` : '') +
      (o.current ? `; the ${o.current.stage} invocation writing this report is priced up to the cost computation` : '') +
      '.',
    `Batch: job attempt run times from DescribeJobs` +
      (missingJobs.length > 0 ? `, except ${missingJobs.join(', ')} (unknown to Batch): their task duration in the history, queueing included` : '') +
      '.',
    'Step Functions: transitions counted in this execution\'s history (an upload\'s short intake execution is not included)' +
      (distributed ? `, plus ${childExecutionTransitions(shards)} for the Featurize Distributed Map's child executions of ${shards} shards (their histories are their own)` : '') +
      '.',
    'S3: requests and stored bytes as measured by the stages.',
  ];
  if (distributed) notes.push(`Lambda: the ${shards} featurize invocations ran in the Distributed Map's child executions: priced from the time the stages measured, at the configured memory.`);
  if (unknownFunctions.size > 0) notes.push(`Not priced: Lambda tasks of functions outside this deployment (${[...unknownFunctions].join(', ')}).`);
  return {
    basis: 'billed',
    stages,
    stateTransitions: stateTransitions(records.history) + (distributed ? childExecutionTransitions(shards) : 0),
    storedBytes: o.measured.storedBytes,
    notes,
  };
}

/**
 * Reads the execution's records through `apis` and returns its billed usage: the history, then DescribeJobs
 * for the Batch jobs it ran, then each deployment function's REPORT lines from the execution's start on.
 */
export async function collectBilledUsage(apis: BillingApis, o: BilledUsageOptions): Promise<RunUsage> {
  const history = await apis.executionHistory(o.executionArn);
  if (history.length === 0) throw new MissingInputError(`execution ${o.executionArn} has no history`);
  const attempts = taskAttempts(history);
  const jobIds = [...new Set(attempts.flatMap((a) => (a.jobId === undefined ? [] : [a.jobId])))];
  const jobs = jobIds.length > 0 ? await apis.describeJobs(jobIds) : [];
  // Log events carry the time they were written; a minute either side covers clock skew and log delivery.
  const start = Math.min(...history.map((e) => ms(e.timestamp))) - 60_000;
  const end = (o.now ?? Date.now)() + 60_000;
  const reports: LambdaReport[] = [];
  for (const fn of new Set(Object.values(o.functions))) {
    for (const line of await apis.lambdaReportLines(fn, start, end)) {
      const r = parseLambdaReport(line);
      if (r) reports.push(r);
    }
  }
  return billedUsage({ history, jobs, reports }, o);
}
