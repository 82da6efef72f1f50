import type { StageUsage } from '../run/records.js';
import { PRICE_UNITS, priceFor, type BaseUnit, type PriceTable } from './prices.js';
import { alignColumns } from '../format/text.js';
import { ConfigError, InvalidInputError } from '../errors/index.js';

/**
 * What a run used, the input of the cost report. A local run fills it from measured usage (each stage's
 * StageUsage says where the stage would run on AWS, or is `local` and mapped by `CostOptions.awsTargets`);
 * an AWS run fills it from its own records: Lambda billed durations (REPORT lines), Batch DescribeJobs
 * start/stop times, the execution history's transition count and the bucket's stored bytes.
 */
export interface RunUsage {
  /** `measured`: a local run (an estimate of the AWS cost); `billed`: an AWS run's records; `planned`: `textshift plan`. */
  basis: 'measured' | 'billed' | 'planned';
  /** Stage name -> one entry per invocation, job or aggregated batch of them. */
  stages: Record<string, StageUsage[]>;
  /** Step Functions state transitions of the execution (Standard workflows bill each one). */
  stateTransitions: number;
  /** Bytes the run leaves in the bucket (its run folder plus the cache entries it created). */
  storedBytes: number;
  /** How the usage was obtained and what it leaves out, in words (shown with the cost report). */
  notes?: string[];
}

/** Pricing choices that are not in the usage. */
export interface CostOptions {
  /** GPU instance the Batch compute environment runs (a price `ec2.<type>.<market>` must exist). */
  batchInstanceType: string;
  batchMarket: 'on-demand' | 'spot';
  /** Instance time billed per job before the container runs (boot, ECS agent, image pull). */
  batchStartupSeconds: number;
  /** How long the run's objects are kept; storage is billed for the stored bytes over this period. */
  s3RetentionDays: number;
  /** Where a stage whose usage kind is `local` would run on AWS. */
  awsTargets: Record<string, 'lambda' | 'batch'>;
  /** Configured Lambda memory per stage; replaces measured memory (Lambda bills configured memory). */
  lambdaMemoryMb: Record<string, number>;
  /** Lambda architecture (a price `lambda.<arch>.gb-second` must exist); the stack deploys arm64. */
  lambdaArchitecture: 'arm64' | 'x86';
}

/** Defaults: the deployment's GPU type on demand, arm64 Lambdas, 3 minutes of job start-up, objects kept 30 days. */
export const DEFAULT_COST_OPTIONS: CostOptions = {
  batchInstanceType: 'g4dn.xlarge',
  batchMarket: 'on-demand',
  batchStartupSeconds: 180,
  s3RetentionDays: 30,
  awsTargets: { prepare: 'lambda', featurize: 'lambda', train: 'batch', report: 'lambda', markFailed: 'lambda' },
  lambdaMemoryMb: {},
  lambdaArchitecture: 'arm64',
};

/** Hours AWS counts in a month for GB-month proration. */
export const HOURS_PER_MONTH = 730;
const GIB = 1024 ** 3;

/** One priced line of the cost report. */
export interface CostLine {
  service: 'Lambda' | 'Step Functions' | 'Batch' | 'S3';
  item: string;
  stage?: string;
  /** Amount in the price's unit (e.g. 0.5 for 500 requests priced per 1K requests). */
  quantity: number;
  /** The same amount in its base unit (e.g. 500 requests), as measured. */
  amount: number;
  amountUnit: BaseUnit;
  unit: string;
  unitPrice: number;
  cost: number;
  priceKey: string;
  /** How the quantity was derived, in words. */
  basis: string;
}

/** `cost.json`. */
export interface CostReport {
  label: string;
  basis: RunUsage['basis'];
  currency: string;
  regions: string[];
  priceVersions: string[];
  priceDates: string[];
  sources: Record<string, string>;
  options: CostOptions;
  lines: CostLine[];
  total: number;
  /** The usage's notes (e.g. which records billed usage came from, or why it fell back to measured usage). */
  notes: string[];
}

/** The label a cost report carries for each usage basis. */
export const COST_LABELS: Record<RunUsage['basis'], string> = {
  measured: 'estimate: what this run would cost on AWS',
  billed: 'AWS cost of this run, from its billed usage',
  planned: 'estimate before running, from the plan throughput model',
};

/** Prices every line of a run's usage. Throws on a stage without an AWS target or a missing price. */
export function computeCost(usage: RunUsage, prices: PriceTable, options: Partial<CostOptions> = {}): CostReport {
  const opts: CostOptions = { ...DEFAULT_COST_OPTIONS, ...options };
  checkNonNegative(usage.stateTransitions, 'stateTransitions');
  checkNonNegative(usage.storedBytes, 'storedBytes');
  const lines: CostLine[] = [];
  const used = new Set<string>();
  // amount is in the base unit (requests, seconds, ...); the price may be quoted per 1K, per hour, ...
  const line = (fields: Omit<CostLine, 'quantity' | 'amount' | 'amountUnit' | 'unit' | 'unitPrice' | 'cost'>, base: BaseUnit, amount: number) => {
    const entry = priceFor(prices, fields.priceKey, base);
    used.add(fields.priceKey);
    const quantity = amount / PRICE_UNITS[entry.unit].per;
    lines.push({ ...fields, quantity, amount, amountUnit: base, unit: entry.unit, unitPrice: entry.price, cost: quantity * entry.price });
  };

  let puts = 0;
  let gets = 0;
  for (const [stage, entries] of Object.entries(usage.stages)) {
    let gbSeconds = 0;
    let requests = 0;
    let instanceSeconds = 0;
    let jobs = 0;
    for (const [i, u] of entries.entries()) {
      const where = `usage of stage "${stage}" entry ${i}`;
      for (const [field, value] of Object.entries({ seconds: u.seconds, memoryMb: u.memoryMb, invocations: u.invocations, ...u.requests })) {
        checkNonNegative(value, `${where}: ${field}`);
      }
      puts += u.requests.put + u.requests.list;
      gets += u.requests.get;
      // Stage names may carry a qualifier (`train:bow`); the part before ':' names the kind of stage.
      const target = u.kind === 'local' ? (opts.awsTargets[stage] ?? opts.awsTargets[stage.split(':')[0]!]) : u.kind;
      if (target === undefined) {
        throw new ConfigError(`${where}: kind "local" but no AWS target for stage "${stage}"; set awsTargets.${stage} to "lambda" or "batch"`);
      }
      if (target === 'lambda') {
        gbSeconds += (u.seconds * (opts.lambdaMemoryMb[stage] ?? opts.lambdaMemoryMb[stage.split(':')[0]!] ?? u.memoryMb)) / 1024;
        requests += u.invocations;
      } else {
        instanceSeconds += u.seconds + opts.batchStartupSeconds * u.invocations;
        jobs += u.invocations;
      }
    }
    const memory = opts.lambdaMemoryMb[stage] ?? opts.lambdaMemoryMb[stage.split(':')[0]!];
    if (requests > 0 || gbSeconds > 0) {
      const basis = memory === undefined ? 'seconds × memory (GB) per invocation' : `seconds × configured ${memory} MB`;
      line({ service: 'Lambda', item: 'compute', stage, priceKey: `lambda.${opts.lambdaArchitecture}.gb-second`, basis }, 'GB-second', gbSeconds);
      line({ service: 'Lambda', item: 'requests', stage, priceKey: 'lambda.requests', basis: 'invocations' }, 'request', requests);
    }
    if (instanceSeconds > 0) {
      line(
        {
          service: 'Batch', item: `${opts.batchInstanceType} ${opts.batchMarket}`, stage,
          priceKey: `ec2.${opts.batchInstanceType}.${opts.batchMarket}`,
          basis: `job seconds + ${opts.batchStartupSeconds} s start-up × ${jobs} job(s)`,
        },
        'instance-second',
        instanceSeconds,
      );
    }
  }
  line(
    { service: 'Step Functions', item: 'state transitions', priceKey: 'stepfunctions.standard.transitions', basis: 'Standard workflow transitions' },
    'state transition',
    usage.stateTransitions,
  );
  line({ service: 'S3', item: 'PUT/COPY/POST/LIST requests', priceKey: 's3.standard.put-copy-post-list', basis: 'put + list requests of all stages' }, 'request', puts);
  line({ service: 'S3', item: 'GET requests', priceKey: 's3.standard.get', basis: 'get requests of all stages' }, 'request', gets);
  checkNonNegative(opts.s3RetentionDays, 's3RetentionDays');
  line(
    {
      service: 'S3', item: 'storage', priceKey: 's3.standard.storage',
      basis: `${usage.storedBytes} bytes kept ${opts.s3RetentionDays} days (GB = 2^30 bytes, month = ${HOURS_PER_MONTH} h)`,
    },
    'GB-month',
    (usage.storedBytes / GIB) * ((opts.s3RetentionDays * 24) / HOURS_PER_MONTH),
  );

  const entries = [...used].map((key) => ({ key, ...prices.prices[key]! }));
  const currencies = new Set(entries.map((e) => e.currency));
  if (currencies.size > 1) throw new ConfigError(`prices mix currencies ${[...currencies].join(', ')}; cannot add them up`);
  return {
    label: COST_LABELS[usage.basis],
    basis: usage.basis,
    currency: [...currencies][0] ?? 'USD',
    regions: [...new Set(entries.map((e) => e.region))].sort(),
    priceVersions: prices.versions,
    priceDates: [...new Set(entries.map((e) => e.date))].sort(),
    sources: Object.fromEntries(entries.map((e) => [e.key, e.source])),
    options: opts,
    lines,
    total: lines.reduce((sum, l) => sum + l.cost, 0),
    notes: usage.notes ?? [],
  };
}

/** Money for people: 4 decimals, "<0.0001" for a non-zero amount below that. */
export function formatMoney(amount: number, currency: string): string {
  const symbol = currency === 'USD' ? '$' : `${currency} `;
  if (amount > 0 && amount < 0.00005) return `<${symbol}0.0001`;
  return `${symbol}${amount.toFixed(4)}`;
}

/** A quantity for people: integers as is, otherwise up to 6 significant digits. */
export function formatQuantity(q: number): string {
  return Number.isInteger(q) ? String(q) : String(Number(q.toPrecision(6)));
}

/** The measured amount in words, e.g. "14 requests", "872.6 instance-seconds". */
export function formatAmount(l: CostLine): string {
  return `${formatQuantity(l.amount)} ${l.amountUnit}${l.amount === 1 ? '' : 's'}`;
}

/** The unit price in words, e.g. "$0.20 / 1M requests" (every significant digit kept). */
export function formatUnitPrice(l: CostLine, currency: string): string {
  const symbol = currency === 'USD' ? '$' : `${currency} `;
  const [int, frac = ''] = l.unitPrice.toFixed(12).replace(/0+$/, '').split('.');
  return `${symbol}${int}.${frac.padEnd(2, '0')} / ${l.unit}`;
}

function lineCells(report: CostReport, l: CostLine): string[] {
  return [
    l.service,
    l.stage === undefined ? l.item : `${l.item} (${l.stage})`,
    formatAmount(l),
    formatUnitPrice(l, report.currency),
    formatMoney(l.cost, report.currency),
  ];
}

/** `cost.md`: the label, every line, the total, and where the prices came from. */
export function costMarkdown(report: CostReport): string {
  const out = [
    `# Cost report (${report.label})`,
    '',
    '| service | item | amount | unit price | cost |',
    '|---|---|---:|---:|---:|',
    ...report.lines.map((l) => `| ${lineCells(report, l).join(' | ')} |`),
    `| **total** | | | | **${formatMoney(report.total, report.currency)}** |`,
    '',
    `Prices: ${report.currency}, region ${report.regions.join(', ')}, recorded ${report.priceDates.join(', ')} ` +
      `(price table ${report.priceVersions.join(' + ')}). Batch: ${report.options.batchInstanceType} ${report.options.batchMarket}, ` +
      `${report.options.batchStartupSeconds} s start-up per job. S3 storage kept ${report.options.s3RetentionDays} days. Free tiers are not subtracted.`,
    '',
    'Sources:',
    ...Object.entries(report.sources).map(([k, url]) => `- \`${k}\`: ${url}`),
    ...(report.notes.length > 0 ? ['', 'Notes:', ...report.notes.map((n) => `- ${n}`)] : []),
  ];
  return `${out.join('\n')}\n`;
}

/** The cost report as an aligned plain-text table for the terminal. */
export function costText(report: CostReport): string {
  const rows = [['service', 'item', 'amount', 'unit price', 'cost'], ...report.lines.map((l) => lineCells(report, l))];
  rows.push(['total', '', '', '', formatMoney(report.total, report.currency)]);
  return `Cost (${report.label}):\n${alignColumns(rows, ['left', 'left', 'right', 'right', 'right'])}`;
}

function checkNonNegative(value: number, what: string): void {
  if (!Number.isFinite(value) || value < 0) throw new InvalidInputError(`${what}: expected a finite number >= 0, got ${value}`);
}
