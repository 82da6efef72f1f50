import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { computeCost, costMarkdown, type CostLine, type RunUsage } from '../../../src/cost/cost.js';
import { bundledPriceTable, loadPrices, parsePriceFile } from '../../../src/cost/prices.js';
import type { StageUsage } from '../../../src/run/records.js';
import { sampleUsage } from '../../fixtures/report/sample-run.js';

const u = (kind: StageUsage['kind'], seconds: number, memoryMb: number, invocations: number, put: number, get: number, list: number): StageUsage => ({
  kind, seconds, memoryMb, invocations, requests: { put, get, list }, bytesWritten: 0,
});

// Bundled prices (us-east-1): Lambda $0.0000166667 per GB-second, $0.20 per 1M requests; Step Functions $0.025
// per 1K transitions; g4dn.xlarge $0.526 on-demand, $0.2104 spot per hour; S3 $0.005 per 1K PUT/COPY/POST/LIST,
// $0.0004 per 1K GET, $0.023 per GB-month.
const usage: RunUsage = {
  basis: 'measured',
  stages: {
    prepare: [u('lambda', 10, 2048, 1, 4, 2, 1)],
    featurize: [u('lambda', 120, 3072, 1, 20, 40, 2), u('lambda', 60, 1024, 3, 10, 10, 0)],
    train: [u('batch', 600, 15360, 2, 30, 50, 3)],
    report: [u('local', 30, 700, 1, 7, 8, 0)],
  },
  stateTransitions: 40,
  storedBytes: 2 * 1024 ** 3,
};

function lineOf(lines: CostLine[], service: string, item: string, stage?: string): CostLine {
  const l = lines.find((x) => x.service === service && x.item === item && x.stage === stage);
  if (l === undefined) throw new Error(`no line ${service} ${item} ${stage ?? ''}`);
  return l;
}

describe('cost report arithmetic (hand-computed)', () => {
  const report = computeCost(usage, bundledPriceTable(), { s3RetentionDays: 73, lambdaMemoryMb: { report: 1024 }, lambdaArchitecture: 'x86' });

  it('Lambda: GB-seconds = seconds × memory GB, requests per 1M', () => {
    // prepare: 10 s × 2048/1024 GB = 20 GB-s; 20 × 0.0000166667 = 0.000333334
    expect(lineOf(report.lines, 'Lambda', 'compute', 'prepare')).toMatchObject({ quantity: 20, unit: 'GB-second', unitPrice: 0.0000166667, amount: 20, amountUnit: 'GB-second' });
    expect(lineOf(report.lines, 'Lambda', 'compute', 'prepare').cost).toBeCloseTo(0.000333334, 12);
    // featurize: 120 s × 3 GB + 60 s × 1 GB = 360 + 60 = 420 GB-s; 420 × 0.0000166667 = 0.007000014
    expect(lineOf(report.lines, 'Lambda', 'compute', 'featurize').quantity).toBe(420);
    expect(lineOf(report.lines, 'Lambda', 'compute', 'featurize').cost).toBeCloseTo(0.007000014, 12);
    // featurize requests: 1 + 3 = 4 = 0.000004 M; × $0.20 = 0.0000008
    expect(lineOf(report.lines, 'Lambda', 'requests', 'featurize')).toMatchObject({ unit: '1M requests', unitPrice: 0.2, amount: 4, amountUnit: 'request' });
    expect(lineOf(report.lines, 'Lambda', 'requests', 'featurize').quantity).toBeCloseTo(0.000004, 15);
    expect(lineOf(report.lines, 'Lambda', 'requests', 'featurize').cost).toBeCloseTo(0.0000008, 15);
    // report ran locally (700 MB RSS) -> a Lambda with configured 1024 MB: 30 s × 1 GB = 30 GB-s; × 0.0000166667 = 0.000500001
    expect(lineOf(report.lines, 'Lambda', 'compute', 'report').quantity).toBe(30);
    expect(lineOf(report.lines, 'Lambda', 'compute', 'report').cost).toBeCloseTo(0.000500001, 12);
  });

  it('Batch: (job seconds + start-up × jobs) instance-seconds at the on-demand hourly price', () => {
    // 600 s + 180 s × 2 jobs = 960 s = 0.2666667 h; × $0.526 = 0.14026667
    const l = lineOf(report.lines, 'Batch', 'g4dn.xlarge on-demand', 'train');
    expect(l).toMatchObject({ unit: 'instance-hour', unitPrice: 0.526, priceKey: 'ec2.g4dn.xlarge.on-demand' });
    expect(l.quantity).toBeCloseTo(960 / 3600, 12);
    expect(l.cost).toBeCloseTo(0.14026667, 8);
    // Spot with 60 s start-up: 600 + 60 × 2 = 720 s = 0.2 h; × $0.2104 = 0.04208
    const spot = computeCost(usage, bundledPriceTable(), { batchMarket: 'spot', batchStartupSeconds: 60 });
    const s = lineOf(spot.lines, 'Batch', 'g4dn.xlarge spot', 'train');
    expect(s.quantity).toBeCloseTo(0.2, 12);
    expect(s.cost).toBeCloseTo(0.04208, 10);
  });

  it('Step Functions: transitions per 1K', () => {
    // 40 transitions = 0.04 K; × $0.025 = 0.001
    const l = lineOf(report.lines, 'Step Functions', 'state transitions');
    expect(l.quantity).toBeCloseTo(0.04, 12);
    expect(l.cost).toBeCloseTo(0.001, 12);
  });

  it('S3: PUT+LIST and GET per 1K, storage GB-months prorated over the retention', () => {
    // put+list: prepare 4+1, featurize 20+2 and 10+0, train 30+3, report 7+0 = 5 + 32 + 33 + 7 = 77 = 0.077 K; × $0.005 = 0.000385
    const puts = lineOf(report.lines, 'S3', 'PUT/COPY/POST/LIST requests');
    expect(puts.quantity).toBeCloseTo(0.077, 12);
    expect(puts.cost).toBeCloseTo(0.000385, 12);
    // get: 2 + 40 + 10 + 50 + 8 = 110 = 0.11 K; × $0.0004 = 0.000044
    const gets = lineOf(report.lines, 'S3', 'GET requests');
    expect(gets.quantity).toBeCloseTo(0.11, 12);
    expect(gets.cost).toBeCloseTo(0.000044, 12);
    // 2 GiB kept 73 days = 73 × 24 / 730 = 2.4 months -> 4.8 GB-month; × $0.023 = 0.1104
    const storage = lineOf(report.lines, 'S3', 'storage');
    expect(storage.quantity).toBeCloseTo(4.8, 12);
    expect(storage.cost).toBeCloseTo(0.1104, 12);
  });

  it('the total is the sum of the lines, and the report names its prices', () => {
    // Lambda compute: 0.000333334 + 0.007000014 + 0.000500001 = 0.007833349
    // Lambda requests: (1 + 4 + 1) / 1e6 × 0.2 = 0.0000012
    // Batch 0.140266667, Step Functions 0.001, S3 0.000385 + 0.000044 + 0.1104 = 0.110829
    // total = 0.007833349 + 0.0000012 + 0.140266667 + 0.001 + 0.110829 = 0.259930216
    expect(report.total).toBeCloseTo(0.259930216, 8);
    expect(report.lines).toHaveLength(3 * 2 + 1 + 1 + 3);
    expect(report.label).toBe('estimate: what this run would cost on AWS');
    expect(report).toMatchObject({ currency: 'USD', regions: ['us-east-1'], priceDates: ['2025-06-01'] });
    expect(report.sources['lambda.x86.gb-second']).toBe('https://aws.amazon.com/lambda/pricing/');
    const md = costMarkdown(report);
    expect(md).toContain('# Cost report (estimate: what this run would cost on AWS)');
    expect(md).toContain('| Batch | g4dn.xlarge on-demand (train) | 960 instance-seconds | $0.526 / instance-hour | $0.1403 |');
    expect(md).toContain('| Lambda | requests (featurize) | 4 requests | $0.20 / 1M requests | <$0.0001 |');
    expect(md).toContain('| Lambda | compute (prepare) | 20 GB-seconds | $0.0000166667 / GB-second | $0.0003 |');
    expect(md).toContain('| **total** | | | | **$0.2599** |');
  });

  it('labels a billed AWS run as such', () => {
    expect(computeCost({ ...usage, basis: 'billed' }, bundledPriceTable()).label).toBe('AWS cost of this run, from its billed usage');
  });

  it('prices the sample run fixture without error', () => {
    const r = computeCost(sampleUsage(), bundledPriceTable());
    // train: 512.6 s + 180 s × 2 = 872.6 s = 0.24238889 h × 0.526 = 0.12749656
    expect(lineOf(r.lines, 'Batch', 'g4dn.xlarge on-demand', 'train').cost).toBeCloseTo(0.12749656, 7);
  });
});

describe('cost report errors', () => {
  it('names the stage of a local usage without an AWS target', () => {
    const bad: RunUsage = { ...usage, stages: { tokenize: [u('local', 1, 128, 1, 0, 0, 0)] } };
    expect(() => computeCost(bad, bundledPriceTable())).toThrow('usage of stage "tokenize" entry 0: kind "local" but no AWS target for stage "tokenize"');
  });

  it('rejects negative or non-finite usage, naming the field', () => {
    const bad: RunUsage = { ...usage, stages: { prepare: [u('lambda', -1, 128, 1, 0, 0, 0)] } };
    expect(() => computeCost(bad, bundledPriceTable())).toThrow('usage of stage "prepare" entry 0: seconds: expected a finite number >= 0, got -1');
    expect(() => computeCost({ ...usage, storedBytes: Number.NaN }, bundledPriceTable())).toThrow('storedBytes');
  });

  it('names a missing price (an instance type without a price entry)', () => {
    expect(() => computeCost(usage, bundledPriceTable(), { batchInstanceType: 'p5.48xlarge' })).toThrow('no price "ec2.p5.48xlarge.on-demand"');
  });
});

describe('price files', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'textshift-prices-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('a user file overrides entries by key and keeps the rest', async () => {
    const path = join(dir, 'spot.json');
    await writeFile(path, JSON.stringify({
      version: 'my-spot-quote-1',
      prices: {
        'ec2.g4dn.xlarge.spot': {
          price: 0.18, unit: 'instance-hour', region: 'eu-west-1', date: '2026-11-01', currency: 'USD',
          source: 'https://aws.amazon.com/ec2/spot/pricing/',
        },
      },
    }));
    const prices = await loadPrices(path);
    expect(prices.versions).toEqual(['2025-06-01.1', 'my-spot-quote-1']);
    const r = computeCost(usage, prices, { batchMarket: 'spot' });
    // 960 s = 0.2666667 h × $0.18 = 0.048
    expect(lineOf(r.lines, 'Batch', 'g4dn.xlarge spot', 'train').cost).toBeCloseTo(0.048, 10);
    expect(r.regions).toEqual(['eu-west-1', 'us-east-1']);
    // Untouched entries come from the bundled file.
    expect(lineOf(r.lines, 'Step Functions', 'state transitions').unitPrice).toBe(0.025);
  });

  it('a price quoted per request instead of per 1K gives the same cost', () => {
    const base = bundledPriceTable();
    const perRequest = { ...base, prices: { ...base.prices, 's3.standard.get': { ...base.prices['s3.standard.get']!, price: 0.0000004, unit: 'request' as const } } };
    const r = computeCost(usage, perRequest);
    // 110 requests × $0.0000004 = 0.000044
    expect(lineOf(r.lines, 'S3', 'GET requests')).toMatchObject({ quantity: 110, unit: 'request' });
    expect(lineOf(r.lines, 'S3', 'GET requests').cost).toBeCloseTo(0.000044, 12);
  });

  it('rejects a price in a unit of the wrong kind, naming the key', () => {
    const base = bundledPriceTable();
    const wrong = { ...base, prices: { ...base.prices, 's3.standard.get': { ...base.prices['s3.standard.get']!, unit: 'GB-month' as const } } };
    expect(() => computeCost(usage, wrong)).toThrow('price "s3.standard.get" is quoted per GB-month; expected a unit of request');
  });

  it('reports every invalid field of a price file with its path', () => {
    const text = JSON.stringify({ version: 'x', prices: { 'lambda.requests': { price: -1, unit: 'per request', region: 'us-east-1', date: '2025-13-01', currency: 'usd', source: 'aws' } } });
    let message = '';
    try {
      parsePriceFile(text, 'my-prices.json');
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toContain('my-prices.json: invalid price file');
    for (const field of ['price', 'unit', 'date', 'currency', 'source']) expect(message).toContain(`prices.lambda.requests.${field}:`);
  });

  it('names a price file that does not exist or is not JSON', async () => {
    await expect(loadPrices(join(dir, 'missing.json'))).rejects.toThrow(`cannot read price file ${join(dir, 'missing.json')}`);
    expect(() => parsePriceFile('{', 'broken.json')).toThrow('broken.json: price file is not valid JSON');
  });

  it('rejects prices in two currencies', () => {
    const base = bundledPriceTable();
    const eur = { ...base, prices: { ...base.prices, 's3.standard.get': { ...base.prices['s3.standard.get']!, currency: 'EUR' } } };
    expect(() => computeCost(usage, eur)).toThrow('prices mix currencies');
  });
});
