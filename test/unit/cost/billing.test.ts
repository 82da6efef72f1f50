// Billed usage of an AWS run from recorded-shape API responses (test/fixtures/billing, README there has the
// hand computation): execution history, Batch DescribeJobs and Lambda REPORT lines -> RunUsage -> cost lines.
import { describe, expect, it } from 'vitest';
import { billedUsage, collectBilledUsage, functionNameOf, parseLambdaReport, stateTransitions, taskAttempts } from '../../../src/cost/billing.js';
import { computeCost, costMarkdown, type RunUsage } from '../../../src/cost/cost.js';
import { bundledPriceTable } from '../../../src/cost/prices.js';
import { RECORDED_EXECUTION_ARN, RECORDED_FUNCTIONS, recordedApis, recordedHistory } from '../../fixtures/billing/recorded-apis.js';

const T0 = Date.parse('2026-11-20T10:00:00.000Z');
const lambdaUsage = (seconds: number, memoryMb: number, invocations: number) => ({ seconds, memoryMb, kind: 'local' as const, invocations });
/** What the stages measured (S3 requests and bytes are the part billing keeps). */
const measured: RunUsage = {
  basis: 'measured',
  stages: {
    prepare: [{ ...lambdaUsage(40, 500, 1), requests: { put: 12, get: 3, list: 1 }, bytesWritten: 1000 }],
    featurize: [{ ...lambdaUsage(5, 1024, 2), requests: { put: 4, get: 6, list: 0 }, bytesWritten: 2000 }],
    train: [{ ...lambdaUsage(1400, 900, 1), requests: { put: 30, get: 10, list: 2 }, bytesWritten: 5000 }],
    report: [{ ...lambdaUsage(2, 300, 1), requests: { put: 20, get: 15, list: 3 }, bytesWritten: 7000 }],
  },
  stateTransitions: 13,
  storedBytes: 123_456_789,
};
const options = {
  executionArn: RECORDED_EXECUTION_ARN,
  functions: RECORDED_FUNCTIONS,
  memoryMb: { prepare: 3008, featurize: 2048, report: 1024, markFailed: 256 },
  measured,
  current: { stage: 'report', seconds: 1.5, memoryMb: 1024 },
  now: () => T0 + 1_983_000,
};
const noRequests = { put: 0, get: 0, list: 0 };

describe('Lambda REPORT lines', () => {
  it('parses the text format, with and without an init duration', () => {
    expect(
      parseLambdaReport('REPORT RequestId: a1f0c3d2-6b7e-4f81-9c2d-3e4f5a6b7c8d\tDuration: 41203.17 ms\tBilled Duration: 41204 ms\tMemory Size: 3008 MB\tMax Memory Used: 1830 MB\tInit Duration: 512.33 ms\t\n'),
    ).toEqual({ requestId: 'a1f0c3d2-6b7e-4f81-9c2d-3e4f5a6b7c8d', durationMs: 41203.17, billedDurationMs: 41204, memoryMb: 3008, initDurationMs: 512.33 });
    expect(parseLambdaReport('REPORT RequestId: b1\tDuration: 1872.66 ms\tBilled Duration: 1873 ms\tMemory Size: 2048 MB\tMax Memory Used: 598 MB\t')).toEqual({
      requestId: 'b1',
      durationMs: 1872.66,
      billedDurationMs: 1873,
      memoryMb: 2048,
    });
  });

  it('parses the JSON log format\'s platform.report record', () => {
    const line = JSON.stringify({
      time: '2026-11-20T10:00:43.890Z',
      type: 'platform.report',
      record: { requestId: 'b0', metrics: { durationMs: 2100.42, billedDurationMs: 2101, memorySizeMB: 2048, maxMemoryUsedMB: 611, initDurationMs: 1410.08 }, status: 'success' },
    });
    expect(parseLambdaReport(line)).toEqual({ requestId: 'b0', durationMs: 2100.42, billedDurationMs: 2101, memoryMb: 2048, initDurationMs: 1410.08 });
  });

  it('ignores every other line', () => {
    for (const line of ['START RequestId: b0 Version: $LATEST', 'END RequestId: b0', 'XRAY TraceId: 1-5e1b4151 SegmentId: 6b7e', '{"type":"platform.start"}', 'REPORT nonsense']) {
      expect(parseLambdaReport(line), line).toBeUndefined();
    }
  });
});

describe('execution history', () => {
  it('counts state transitions: 9 states entered + 1 retry', () => {
    expect(stateTransitions(recordedHistory())).toBe(10);
  });

  it('links each task attempt\'s events through interleaved Map iterations', () => {
    const attempts = taskAttempts(recordedHistory());
    expect(attempts.map((a) => [functionNameOf(a.functionName ?? 'batch'), a.outcome, a.requestId ?? a.jobId, a.endedMs === undefined ? undefined : a.endedMs - a.startedMs!])).toEqual([
      ['textshift-prepare', 'succeeded', 'a1f0c3d2-6b7e-4f81-9c2d-3e4f5a6b7c8d', 41_350],
      ['textshift-featurize', 'succeeded', 'b0e1d2c3-4a5b-4c6d-8e7f-9a0b1c2d3e4f', 2250],
      ['textshift-featurize', 'failed', undefined, 2250],
      ['textshift-featurize', 'succeeded', 'b1c2d3e4-5f6a-4b7c-9d8e-0f1a2b3c4d5e', 1950],
      ['batch', 'succeeded', '7d2f4c1e-5b3a-4e8f-9a6d-0c1b2e3f4a5b', 1_930_550],
      ['textshift-report', 'unfinished', undefined, undefined],
    ]);
  });

  it('names functions from a name, a qualified name, a partial or a full ARN', () => {
    for (const name of ['textshift-prepare', 'textshift-prepare:$LATEST', '123456789012:function:textshift-prepare', 'arn:aws:lambda:eu-west-1:123456789012:function:textshift-prepare:7']) {
      expect(functionNameOf(name), name).toBe('textshift-prepare');
    }
  });
});

describe('billed usage from the recorded responses', () => {
  it('prices Lambda by REPORT billed durations, Batch by job attempts, keeps measured S3 requests and bytes', async () => {
    const apis = recordedApis();
    const usage = await collectBilledUsage(apis, options);
    expect(usage.basis).toBe('billed');
    expect(usage.stateTransitions).toBe(10);
    expect(usage.storedBytes).toBe(123_456_789);
    expect(usage.stages.prepare).toEqual([
      { seconds: 41.204, memoryMb: 3008, kind: 'lambda', invocations: 1, requests: { put: 12, get: 3, list: 1 }, bytesWritten: 1000 },
    ]);
    // 2101 ms (REPORT) + 2250 ms (the failed attempt: no request id, so its history duration) + 1873 ms (REPORT).
    expect(usage.stages.featurize).toEqual([
      { seconds: expect.closeTo(6.224, 9), memoryMb: 2048, kind: 'lambda', invocations: 3, requests: { put: 4, get: 6, list: 0 }, bytesWritten: 2000 },
    ]);
    // One job, two attempts: the Spot-interrupted one (600 s) and the one that finished (900.5 s).
    expect(usage.stages.train).toEqual([
      { seconds: 600, memoryMb: 15000, kind: 'batch', invocations: 1, requests: { put: 30, get: 10, list: 2 }, bytesWritten: 5000 },
      { seconds: 900.5, memoryMb: 15000, kind: 'batch', invocations: 1, requests: noRequests, bytesWritten: 0 },
    ]);
    expect(usage.stages.report).toEqual([{ seconds: 1.5, memoryMb: 1024, kind: 'lambda', invocations: 1, requests: { put: 20, get: 15, list: 3 }, bytesWritten: 7000 }]);
    expect(usage.notes).toEqual([
      'Lambda: 3 of 4 invocations priced from their REPORT billed duration, 1 from the execution history\'s task duration at the configured memory; the report invocation writing this report is priced up to the cost computation.',
      'Batch: job attempt run times from DescribeJobs.',
      'Step Functions: transitions counted in this execution\'s history (an upload\'s short intake execution is not included).',
      'S3: requests and stored bytes as measured by the stages.',
    ]);
    // One DescribeJobs for the run's job; each function's REPORT lines from a minute before the execution started
    // to a minute after now (the other run's REPORT line in the prepare group is in the window but not counted).
    expect(apis.calls).toEqual([
      ['executionHistory', RECORDED_EXECUTION_ARN],
      ['describeJobs', ['7d2f4c1e-5b3a-4e8f-9a6d-0c1b2e3f4a5b']],
      ...Object.values(RECORDED_FUNCTIONS).map((fn) => ['lambdaReportLines', fn, T0 - 60_000, T0 + 1_983_000 + 60_000]),
    ]);
  });

  it('cost lines from billed usage, by hand', async () => {
    const usage = await collectBilledUsage(recordedApis(), options);
    const cost = computeCost(usage, bundledPriceTable(), { batchInstanceType: 'g4dn.xlarge', batchMarket: 'on-demand', batchStartupSeconds: 180 });
    const line = (service: string, item: string, stage?: string) => cost.lines.find((l) => l.service === service && l.item === item && l.stage === stage)!;
    expect(cost.label).toBe('AWS cost of this run, from its billed usage');
    // 41.204 s × 3008/1024 GB = 121.03675 GB-s × $0.0000133334 (arm64, what the stack deploys) = 0.00161383140245.
    expect(line('Lambda', 'compute', 'prepare').amount).toBeCloseTo(121.03675, 9);
    expect(line('Lambda', 'compute', 'prepare').cost).toBeCloseTo(0.00161383140245, 12);
    expect(line('Lambda', 'compute', 'prepare').unitPrice).toBe(0.0000133334);
    // 6.224 s × 2 GB = 12.448 GB-s; 3 requests.
    expect(line('Lambda', 'compute', 'featurize').amount).toBeCloseTo(12.448, 9);
    expect(line('Lambda', 'requests', 'featurize').amount).toBe(3);
    // 600 + 900.5 s + 2 attempts × 180 s start-up = 1860.5 instance-seconds × $0.526/h.
    const batch = line('Batch', 'g4dn.xlarge on-demand', 'train');
    expect(batch.amount).toBe(1860.5);
    expect(batch.cost).toBeCloseTo(0.2718397222222222, 12);
    // 10 transitions × $0.025/1K.
    expect(line('Step Functions', 'state transitions').cost).toBeCloseTo(0.00025, 12);
    // put + list: 12+1 + 4 + 30+2 + 20+3 = 72; get: 3 + 6 + 10 + 15 = 34.
    expect(line('S3', 'PUT/COPY/POST/LIST requests').amount).toBe(72);
    expect(line('S3', 'GET requests').amount).toBe(34);
    expect(cost.notes).toEqual(usage.notes);
    expect(costMarkdown(cost)).toContain('\nNotes:\n- Lambda: 3 of 4 invocations priced from their REPORT billed duration');
  });

  it('a job Batch no longer knows falls back to its task duration in the history, and says so', async () => {
    const usage = await collectBilledUsage(recordedApis({ jobsExpired: true }), options);
    // TaskStarted 10:00:51.450 -> TaskSucceeded 10:33:02.000: queueing and both attempts.
    expect(usage.stages.train).toEqual([
      { seconds: 1930.55, memoryMb: 0, kind: 'batch', invocations: 1, requests: { put: 30, get: 10, list: 2 }, bytesWritten: 5000 },
    ]);
    expect(usage.notes![1]).toBe(
      'Batch: job attempt run times from DescribeJobs, except 7d2f4c1e-5b3a-4e8f-9a6d-0c1b2e3f4a5b (unknown to Batch): their task duration in the history, queueing included.',
    );
  });

  it('without REPORT lines every invocation is priced from the history at the configured memory', () => {
    const usage = billedUsage({ history: recordedHistory(), jobs: [], reports: [] }, { ...options, current: undefined });
    expect(usage.stages.prepare![0]).toMatchObject({ seconds: 41.35, memoryMb: 3008, invocations: 1 });
    expect(usage.stages.featurize![0]).toMatchObject({ seconds: expect.closeTo(2.25 + 2.25 + 1.95, 9), memoryMb: 2048, invocations: 3 });
    // No current invocation given: the report stage keeps only its measured S3 requests, with no compute.
    expect(usage.stages.report).toEqual([{ seconds: 0, memoryMb: 0, kind: 'lambda', invocations: 0, requests: { put: 20, get: 15, list: 3 }, bytesWritten: 7000 }]);
    expect(usage.notes![0]).toBe('Lambda: 0 of 4 invocations priced from their REPORT billed duration, 4 from the execution history\'s task duration at the configured memory.');
  });

  it('a Distributed Map\'s child executions are not in the history: featurize is priced from the measured time at the configured memory, and its children\'s transitions counted', () => {
    const at = (id: number, type: string) => ({ id, timestamp: T0 + id * 1000, type });
    const history = [at(1, 'ExecutionStarted'), at(2, 'MapStateEntered'), at(3, 'MapRunStarted'), at(4, 'MapRunSucceeded'), at(5, 'MapStateExited')];
    const usage = billedUsage({ history, jobs: [], reports: [] }, { ...options, current: undefined });
    // The 2 measured shard invocations (5 s in all) at the featurize function's 2048 MB, with their measured S3 requests.
    expect(usage.stages.featurize).toEqual([{ seconds: 5, memoryMb: 2048, kind: 'lambda', invocations: 2, requests: { put: 4, get: 6, list: 0 }, bytesWritten: 2000 }]);
    // 1 Map state entered here; 2 children (one shard each): starting each and its batch Map (2 x 2), and 2 shard tasks.
    expect(usage.stateTransitions).toBe(1 + 4 + 2);
    expect(usage.notes).toContain('Lambda: the 2 featurize invocations ran in the Distributed Map\'s child executions: priced from the time the stages measured, at the configured memory.');
    expect(usage.notes![2]).toContain('plus 6 for the Featurize Distributed Map\'s child executions of 2 shards');
  });

  it('an execution that does not exist, or has no history, is an error (the Report stage then uses measured usage)', async () => {
    await expect(collectBilledUsage(recordedApis(), { ...options, executionArn: `${RECORDED_EXECUTION_ARN}-other` })).rejects.toThrow(/Execution Does Not Exist/);
    const empty = { ...recordedApis(), executionHistory: async () => [] };
    await expect(collectBilledUsage(empty, options)).rejects.toThrow(`execution ${RECORDED_EXECUTION_ARN} has no history`);
  });
});
