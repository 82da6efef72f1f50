/**
 * The per-run guard: what Prepare checks of a run's plan before any compute, and `textshift plan` shows. A run may
 * plan at most EXPERIMENT_LIMITS.shardsPerRun featurize shards; every stage must fit the limits it runs under (time,
 * memory, S3's multipart limits; see `limitChecks`); and its estimated cost must stay within its limit: the
 * deployment's maxRunCostUsd, or the experiment's `budgetUsd`, which may not be above the deployment's
 * maxRunCostCeilingUsd.
 */
import { EXPERIMENT_LIMITS, type Experiment } from '../config/experiment.js';
import { passLabel } from '../config/encoder-passes.js';
import type { PlanDeployment, RunBudget } from '../config/deployment.js';
import { BudgetExceededError, ConfigError, type PermanentError } from '../errors/index.js';
import type { BlobStore } from '../store/blob-store.js';
import { partSizeFor, S3_MULTIPART, UNSIZED_UPLOAD_MAX_BYTES, UPLOAD_BUFFERED_PARTS } from '../store/s3-limits.js';
import { formatBytes, formatDuration } from '../format/text.js';
import { STAGES } from '../run/graph.js';
import { SHARD_TIME_SHARE } from '../features/throughput.js';
import { formatMoney } from './cost.js';
import { planExperiment, type Plan, type PlannedJob, type PlannedPart, type ProfileFile } from './plan.js';
import { bundledPriceTable } from './prices.js';

/** One limit a run can hit, as the Limits lines show it: what the plan needs at its worst, and what is allowed. */
export interface LimitCheck {
  /** The line's label: `prepare`, `shard`, `train`, `memory`, `objects`, `archive` or `report`. */
  name: string;
  /** The plan's worst case and the limit, with where the limit comes from (a cdk.json key, an AWS limit). */
  text: string;
  within: boolean;
}

/** What the guard found for one run's plan. */
export interface RunCheck {
  /** Featurize shards the run plans, and the most one run may plan. */
  /** `byFamily`: per encoder pass, its families joined by "+" (src/config/encoder-passes.ts). */
  shards: { planned: number; max: number; byFamily: Record<string, number> };
  /** The plan's cost estimate (USD), the run's limit and where the limit comes from. */
  cost: { estimateUsd: number; limitUsd: number; limitFrom: 'maxRunCostUsd' | 'budgetUsd'; ceilingUsd: number };
  /** Every time, memory and object-size limit of the run's stages, in stage order. */
  limits: LimitCheck[];
  /** Why the run would be refused, most fundamental first; empty when it may run. */
  refusals: PermanentError[];
}

/**
 * Checks a run's plan against the shard limit, the limits of the deployment it plans for (`plan.deployment`) and its
 * cost limit; `source` names the experiment file in messages.
 */
export function checkRun(plan: Plan, exp: Experiment, budget: RunBudget, source: string): RunCheck {
  const byFamily: Record<string, number> = {};
  // Keyed by encoder pass: families that differ only in pooling share one pass's shards.
  for (const p of plan.parts) byFamily[passLabel(p)] = (byFamily[passLabel(p)] ?? 0) + p.shards;
  const planned = Object.values(byFamily).reduce((a, n) => a + n, 0);
  const max = EXPERIMENT_LIMITS.shardsPerRun;
  const ceilingUsd = budget.maxRunCostCeilingUsd;
  const limitFrom = exp.budgetUsd === undefined ? 'maxRunCostUsd' : 'budgetUsd';
  const limitUsd = exp.budgetUsd ?? budget.maxRunCostUsd;
  if (plan.cost.currency !== 'USD') {
    throw new ConfigError(`the cost guard compares US dollars, but the price table is in ${plan.cost.currency}; price the run in USD`);
  }
  const estimateUsd = plan.cost.total;
  const refusals: PermanentError[] = [];

  if (planned > max) {
    const families = Object.entries(byFamily).map(([f, n]) => `${f} ${n.toLocaleString('en-US')}`).join(', ');
    refusals.push(
      new ConfigError(
        `${source}: the run plans ${planned.toLocaleString('en-US')} featurize shards (${families}), more than the ${max.toLocaleString('en-US')} ` +
          `a run may plan; raise features.<family>.shardSize (at most ${EXPERIMENT_LIMITS.shardSize.max}) or subsample the data`,
      ),
    );
  }
  const limits = limitChecks(plan, exp, source);
  for (const l of limits) refusals.push(...l.refusals);
  if (exp.budgetUsd !== undefined && exp.budgetUsd > ceilingUsd) {
    refusals.push(
      new BudgetExceededError(
        `${source}: budgetUsd ${usd(exp.budgetUsd)} is above this deployment's ceiling ${usd(ceilingUsd)} (maxRunCostCeilingUsd in cdk.json); ` +
          `lower budgetUsd, or raise the ceiling (cdk deploy -c maxRunCostCeilingUsd=...)`,
      ),
    );
  } else if (estimateUsd > limitUsd) {
    refusals.push(new BudgetExceededError(`${source}: ${overLimit(estimateUsd, limitUsd, limitFrom, ceilingUsd)}`));
  }
  return {
    shards: { planned, max, byFamily },
    cost: { estimateUsd, limitUsd, limitFrom, ceilingUsd },
    limits: limits.map(({ name, text, within }) => ({ name, text, within })),
    refusals,
  };
}

/**
 * Prepare's guard: plans the run from the sizes of its data files (`profile`) and the model records in `models` (as
 * `textshift plan` does, at the bundled prices and the deployment's settings) and throws the first reason to refuse
 * it, before anything of the run is computed. Returns the check and the plan it judged (whose model shapes size the
 * run's shards, so the shards written are the shards judged).
 */
export async function guardRun(
  exp: Experiment,
  inputs: { profile: ProfileFile; models: BlobStore },
  deployment: PlanDeployment,
  run: { source: string; quick: boolean; full: boolean },
): Promise<{ check: RunCheck; plan: Plan }> {
  const plan = await planExperiment(exp, inputs.profile, bundledPriceTable(), {
    deployment, quick: run.quick, full: run.full, models: inputs.models,
  });
  const check = checkRun(plan, exp, deployment.budget, run.source);
  enforceRunCheck(check);
  return { check, plan };
}

/** Throws the first reason the check found to refuse the run; returns when it may run. */
export function enforceRunCheck(check: RunCheck): void {
  const [first] = check.refusals;
  if (first) throw first;
}

/** The check for the terminal: the shard count, each stage limit and the cost against their limits, then whether Prepare runs the run. */
export function runCheckText(check: RunCheck): string {
  const { shards, cost } = check;
  const where = cost.limitFrom === 'budgetUsd' ? 'budgetUsd in the experiment' : 'maxRunCostUsd in cdk.json';
  const lines = [
    'Limits:',
    `  shards  ${shards.planned.toLocaleString('en-US')} planned, at most ${shards.max.toLocaleString('en-US')} per run`,
    ...check.limits.map((l) => `  ${l.name.padEnd(7)} ${l.text}${l.within ? '' : ': over'}`),
    `  cost    estimate ${formatMoney(cost.estimateUsd, 'USD')}, limit ${usd(cost.limitUsd)} (${where}; an experiment may set budgetUsd up to ${usd(cost.ceilingUsd)})`,
    check.refusals.length === 0
      ? 'Within limits: Prepare runs this experiment.'
      : `Prepare would refuse this run:\n${check.refusals.map((r) => `  - ${r.message}`).join('\n')}`,
  ];
  return `${lines.join('\n')}\n`;
}

/** Why an estimate above its limit is refused, with how to raise the limit. */
function overLimit(estimateUsd: number, limitUsd: number, limitFrom: RunCheck['cost']['limitFrom'], ceilingUsd: number): string {
  const head = `the run's estimated cost ${formatMoney(estimateUsd, 'USD')} is above its limit ${usd(limitUsd)}`;
  if (limitFrom === 'budgetUsd') {
    return (
      `${head} (budgetUsd in the experiment). To run it, raise budgetUsd (at most ${usd(ceilingUsd)}, this deployment's ` +
      'maxRunCostCeilingUsd in cdk.json), or shrink the run; textshift plan shows the estimate line by line'
    );
  }
  return (
    `${head} (maxRunCostUsd in cdk.json). To run it, set "budgetUsd" in the experiment (at most ${usd(ceilingUsd)}, this ` +
    "deployment's maxRunCostCeilingUsd), or raise maxRunCostUsd in cdk.json (cdk deploy -c maxRunCostUsd=...); textshift plan " +
    'shows the estimate line by line'
  );
}

/** A configured amount of US dollars as it was given, e.g. `$25`, `$0.01`. */
function usd(amount: number): string {
  return `$${amount}`;
}

/** A limit check with the refusals of a plan that breaks it (one per family or pass over it). */
export type CheckedLimit = LimitCheck & { refusals: PermanentError[] };

const MiB = 1024 * 1024;
const LAMBDA_MAX_TIMEOUT_SECONDS = 900;
const LAMBDA_MAX_MEMORY_MB = 10_240;
/** Attempts of a training job (the job definition's retry strategy, src/run/graph.ts). */
const TRAIN_ATTEMPTS = STAGES.flatMap((s) => (s.aws.on === 'batch' ? [s.aws.attempts] : []))[0]!;

/**
 * Every time, memory and object-size limit the run's stages run under, against the plan's worst case, in stage
 * order: Prepare's time; each encoder pass's longest featurize shard against the Featurize timeout; each training
 * job's running time against one attempt's time limit (a timed-out attempt is not retried) and its memory against
 * the job's; the largest object streamed without a size (5 MiB parts, at most 10,000); checkpoints.zip against S3's
 * largest object and the memory its upload parts take in Report; Report's time, archive included, against its timeout.
 */
export function limitChecks(plan: Plan, exp: Experiment, source: string): CheckedLimit[] {
  const dep = plan.deployment;
  const refuse = (message: string) => new ConfigError(`${source}: ${message}`);
  const out: CheckedLimit[] = [];
  const line = (name: string, text: string, refusals: PermanentError[]) => out.push({ name, text, within: refusals.length === 0, refusals });

  const prepare = plan.prepare.seconds;
  const prepareLimit = dep.prepareTimeoutSeconds;
  line('prepare', `${secs(prepare)} planned, limit ${secs(prepareLimit)} (prepareTimeoutSeconds in cdk.json)`, prepare <= prepareLimit ? [] : [
    refuse(
      `Prepare plans at ${secs(prepare)} to read, split and store the datasets, above the Prepare function's timeout of ${secs(prepareLimit)} ` +
        `(prepareTimeoutSeconds in cdk.json; Lambda allows at most ${LAMBDA_MAX_TIMEOUT_SECONDS} s); ${raise('prepareTimeoutSeconds', prepareLimit)}read less data`,
    ),
  ]);

  // The longest shard of each encoder pass: a full shard of its largest part.
  const worstShards = new Map<string, PlannedPart>();
  for (const p of plan.parts) {
    const worst = worstShards.get(p.feature);
    if (worst === undefined || p.shardSeconds > worst.shardSeconds) worstShards.set(p.feature, p);
  }
  const featurizeLimit = dep.featurizeTimeoutSeconds;
  const longest = maxBy([...worstShards.values()], (p) => p.shardSeconds);
  line(
    'shard',
    `${longest ? `longest ${secs(longest.shardSeconds)} (${passLabel(longest)} ${longest.dataset}/${longest.part})` : 'no shards'}, ` +
      `limit ${secs(featurizeLimit)} (featurizeTimeoutSeconds in cdk.json)`,
    [...worstShards.values()].filter((p) => p.shardSeconds > featurizeLimit).map((p) => {
      const rows = Math.min(p.rows, plan.rowsPerShard[p.feature] ?? p.rows);
      const start = p.shardSeconds - rows * p.secondsPerRow;
      const spec = exp.features[p.feature]!;
      const bounds = spec.kind === 'bert' ? EXPERIMENT_LIMITS.bertShardSize : EXPERIMENT_LIMITS.shardSize;
      const fits = Math.min(bounds.max, Math.floor((featurizeLimit * SHARD_TIME_SHARE - start) / p.secondsPerRow));
      const fix =
        fits >= bounds.min
          ? `Set shardSize of ${p.feature} to at most ${fits.toLocaleString('en-US')} (a shard in a third of the timeout, as the planner sizes them)` +
            (spec.shardSize === undefined ? '' : ', or remove it to let the planner size shards')
          : `No shard of ${bounds.min} rows fits: ${raise('featurizeTimeoutSeconds', featurizeLimit)}raise featurizeMemoryMb (more vCPUs; at most ` +
            `${LAMBDA_MAX_MEMORY_MB.toLocaleString('en-US')} MB)${spec.kind === 'bert' ? ', or lower maxLength' : ''}`;
      return refuse(
        `a featurize shard of ${passLabel(p)} on ${p.dataset}/${p.part} plans at ${secs(p.shardSeconds)} (${rows.toLocaleString('en-US')} rows at ` +
          `${p.secondsPerRow.toPrecision(3)} s each, plus ${secs(start)} to start), above the Featurize function's timeout of ${secs(featurizeLimit)} ` +
          `(featurizeTimeoutSeconds in cdk.json; Lambda allows at most ${LAMBDA_MAX_TIMEOUT_SECONDS} s). ${fix}`,
      );
    }),
  );

  const jobLimit = dep.trainerTimeoutMinutes * 60;
  const slowest = maxBy(plan.jobs, (j) => j.runningSeconds);
  line(
    'train',
    `longest job ${formatDuration(slowest?.runningSeconds ?? 0)}${slowest ? ` (${slowest.feature})` : ''}, limit ${dep.trainerTimeoutMinutes} min ` +
      '(trainerTimeoutMinutes in cdk.json; a timed-out job is not retried)',
    plan.jobs.filter((j) => j.runningSeconds > jobLimit).map((j) =>
      refuse(
        `the training job of ${j.feature} plans to run ${formatDuration(j.runningSeconds)} (${j.parameters.toLocaleString('en-US')} parameters, ` +
          `${exp.stages.length} stage(s) × ${exp.training.epochs} epochs), above a job's time limit of ${dep.trainerTimeoutMinutes} min ` +
          `(trainerTimeoutMinutes in cdk.json). Its ${TRAIN_ATTEMPTS} attempts retry exit 75 and Spot reclaims, not a timeout, so retries add no ` +
          `time: raise trainerTimeoutMinutes to at least ${Math.ceil(j.runningSeconds / 60).toLocaleString('en-US')}, or train fewer epochs or a smaller model`,
      ),
    ),
  );

  const memoryLimit = dep.trainerMemoryMiB * MiB;
  const held = (j: PlannedJob) => j.memory.features + j.memory.model + j.memory.runtime;
  const fullest = maxBy(plan.jobs, held);
  line(
    'memory',
    `training job at most ${formatBytes(fullest ? held(fullest) : 0)}${fullest ? ` (${fullest.feature})` : ''}, limit ${formatBytes(memoryLimit)} ` +
      '(trainerMemoryMiB in cdk.json)',
    plan.jobs.filter((j) => held(j) > memoryLimit).map((j) =>
      refuse(
        `the training job of ${j.feature} plans to hold ${formatBytes(held(j))} (features of its largest stage ${formatBytes(j.memory.features)}, ` +
          `model and Adam state ${formatBytes(j.memory.model)}, runtime ${formatBytes(j.memory.runtime)}), above the job's memory of ` +
          `${dep.trainerMemoryMiB.toLocaleString('en-US')} MiB (trainerMemoryMiB in cdk.json). Raise trainerMemoryMiB (on instance types that have it), ` +
          'subsample the data, or train a smaller model',
      ),
    ),
  );

  // Objects streamed without a size hint go up in 5 MiB parts: checkpoint files, stored splits.
  const streamed = [
    ...plan.jobs.map((j) => ({ what: `${j.feature}'s optimizer.safetensors`, bytes: j.largestObjectBytes })),
    { what: 'the largest stored split', bytes: plan.prepare.largestSplitBytes },
  ];
  const biggest = maxBy(streamed, (o) => o.bytes)!;
  const unsized = `${formatBytes(UNSIZED_UPLOAD_MAX_BYTES)} (${S3_MULTIPART.maxParts.toLocaleString('en-US')} parts of 5 MiB: S3 multipart upload limits)`;
  line(
    'objects',
    `largest ${formatBytes(biggest.bytes)} (${biggest.what}), limit ${unsized}`,
    streamed.filter((o) => o.bytes > UNSIZED_UPLOAD_MAX_BYTES).map((o) =>
      refuse(`${o.what} plans at ${formatBytes(o.bytes)}, above the ${unsized} an object streamed without its size can reach; train a smaller model or read less data`),
    ),
  );

  const archive = plan.archive;
  const lessArchive = `checkpoint less often (training.checkpointEvery, now ${exp.training.checkpointEvery}), train fewer epochs, or train a smaller model`;
  if (archive.bytes > S3_MULTIPART.maxObjectBytes) {
    line('archive', `checkpoints.zip ${formatBytes(archive.bytes)}, limit ${formatBytes(S3_MULTIPART.maxObjectBytes)} (S3's largest object)`, [
      refuse(`checkpoints.zip plans at ${formatBytes(archive.bytes)}, above S3's largest object of ${formatBytes(S3_MULTIPART.maxObjectBytes)} (Amazon S3 multipart upload limits); ${lessArchive}`),
    ]);
  } else {
    const partSize = partSizeFor(archive.bytes, 'checkpoints.zip');
    const reportMb = dep.pricing.lambdaMemoryMb.report;
    const reportHolds = UPLOAD_BUFFERED_PARTS * partSize + plan.model.runtimeMemoryMiB.report * MiB;
    line(
      'archive',
      `checkpoints.zip ${formatBytes(archive.bytes)} in ${formatBytes(partSize)} parts (S3: at most ${S3_MULTIPART.maxParts.toLocaleString('en-US')}); ` +
        `Report holds ${formatBytes(reportHolds)}, limit ${reportMb.toLocaleString('en-US')} MB (reportMemoryMb in cdk.json)`,
      reportHolds <= reportMb * MiB ? [] : [
        refuse(
          `checkpoints.zip plans at ${formatBytes(archive.bytes)}, uploaded in parts of ${formatBytes(partSize)} (at most ` +
            `${S3_MULTIPART.maxParts.toLocaleString('en-US')}: Amazon S3 multipart upload limits), of which Report holds ${UPLOAD_BUFFERED_PARTS} at once ` +
            `besides its runtime: ${formatBytes(reportHolds)}, above the Report function's memory of ${reportMb.toLocaleString('en-US')} MB ` +
            `(reportMemoryMb in cdk.json; Lambda allows at most ${LAMBDA_MAX_MEMORY_MB.toLocaleString('en-US')} MB). Raise reportMemoryMb, or ${lessArchive}`,
        ),
      ],
    );
  }

  const reportLimit = dep.reportTimeoutSeconds;
  const report = plan.model.reportSeconds + archive.streamSeconds;
  const rate = `${plan.model.archiveBytesPerSecond / 1e6} MB/s`;
  const params = Math.max(0, ...plan.jobs.map((j) => j.parameters));
  line('report', `${secs(report)} planned (checkpoints.zip at ${rate}), limit ${secs(reportLimit)} (reportTimeoutSeconds in cdk.json)`, report <= reportLimit ? [] : [
    refuse(
      `Report plans at ${secs(report)}: it streams checkpoints.zip (${formatBytes(archive.bytes)}, ${archive.entries.toLocaleString('en-US')} files) in ` +
        `${secs(archive.streamSeconds)} at an assumed ${rate}, plus ${secs(plan.model.reportSeconds)} for the report, above the Report function's ` +
        `timeout of ${secs(reportLimit)} (reportTimeoutSeconds in cdk.json; Lambda allows at most ${LAMBDA_MAX_TIMEOUT_SECONDS} s). To run it, ` +
        `${raise('reportTimeoutSeconds', reportLimit)}${lessArchive} (the largest has ${params.toLocaleString('en-US')} parameters)`,
    ),
  ]);
  return out;
}

/** "raise <key> (at most 900), or " while a Lambda timeout can still be raised; empty at the maximum. */
function raise(key: string, seconds: number): string {
  return seconds < LAMBDA_MAX_TIMEOUT_SECONDS ? `raise ${key} (at most ${LAMBDA_MAX_TIMEOUT_SECONDS}), or ` : '';
}

/** Seconds as the limit lines state them: `5,739 s`, `0.4 s`. */
function secs(seconds: number): string {
  return seconds < 10 ? `${Number(seconds.toFixed(1))} s` : `${Math.round(seconds).toLocaleString('en-US')} s`;
}

/** The item with the largest key, or undefined for none. */
function maxBy<T>(items: readonly T[], key: (item: T) => number): T | undefined {
  let best: T | undefined;
  for (const item of items) if (best === undefined || key(item) > key(best)) best = item;
  return best;
}
