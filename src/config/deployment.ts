import { readFile } from 'node:fs/promises';
import { z } from 'zod';
import { ConfigError } from '../errors/index.js';

/**
 * Deployment settings, read from CDK context (`cdk.json` defaults, overridden with `-c key=value`). Values given on
 * the command line arrive as strings, so numbers and booleans are coerced; anything else fails with the key name
 * and what was expected. The stack and a local run's cost estimate both read them here.
 */

const positiveInt = z.coerce.number().int().positive();
const bool = z.union([z.boolean(), z.enum(['true', 'false']).transform((v) => v === 'true')]);
const list = z
  .union([z.array(z.string()), z.string().transform((v) => v.split(',').map((s) => s.trim()))])
  .pipe(z.array(z.string().min(1, 'expected a non-empty name')).min(1, 'expected at least one entry'));
const MEMORY_MB = { min: 128, max: 10240 };
const memoryMb = z.coerce.number().int().min(MEMORY_MB.min).max(MEMORY_MB.max);
const timeoutSeconds = z.coerce.number().int().min(1).max(900);
const imageDigest = z.string().regex(/^sha256:[0-9a-f]{64}$/, 'expected an image digest "sha256:<64 hex digits>"');
// The retention periods CloudWatch Logs accepts.
const RETENTION_DAYS = [1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653];
const retentionDays = z.coerce
  .number()
  .refine((d) => RETENTION_DAYS.includes(d), `expected one of ${RETENTION_DAYS.join(', ')} (CloudWatch Logs retention)`);

/** An amount of US dollars: positive and finite. */
const usd = z.coerce.number().positive().finite();

/**
 * The per-run cost guard: Prepare plans every run (as `textshift plan` does) and refuses one whose estimate is above
 * its limit, before any compute. The limit is maxRunCostUsd, or the experiment's `budgetUsd`, which may not be above
 * maxRunCostCeilingUsd.
 */
const costGuardContext = {
  maxRunCostUsd: usd,
  maxRunCostCeilingUsd: usd,
};

/**
 * Spend across runs (src/cost/spend-ledger.ts): Prepare admits a run only while fewer than maxConcurrentRuns runs of
 * the deployment hold a slot, and while today's (UTC) planned spend plus the run's estimate stays within
 * maxDailyCostUsd. maxRunHours is the state machine's execution timeout, so a run can hold its slot no longer: a run
 * stopped or timed out (which never reaches Report or MarkFailed to release it) frees its slot then. alarmEmail, when
 * set, is subscribed to the alarms on failed executions and undelivered uploads. 100 runs at once is far above what one
 * trainer compute environment serves; a Standard execution lasts at most a year.
 */
const spendContext = {
  maxConcurrentRuns: positiveInt.max(100),
  maxDailyCostUsd: usd,
  maxRunHours: positiveInt.max(8760),
  alarmEmail: z.email('expected an e-mail address').optional(),
};

/** The stage functions a deployment creates, by the names the cost report and the context keys use. */
export const FUNCTION_NAMES = ['prepare', 'featurize', 'report', 'markFailed'] as const;
export type FunctionName = (typeof FUNCTION_NAMES)[number];

/**
 * Time and concurrency limits of a run on AWS (AWS documentation gives the bounds the emulator cannot check):
 * `trainerRunnableTimeoutMinutes` is how long a training job may wait RUNNABLE (no instance capacity, no quota)
 * before the job queue cancels it; Batch accepts 600 to 86,400 seconds (JobStateTimeLimitAction maxTimeSeconds).
 * `trainConcurrency` bounds the training jobs of a run at once (the Train Map's MaxConcurrency; an Inline Map runs
 * at most 40 iterations at once).
 */
const TIME_LIMITS = {
  trainerRunnableTimeoutMinutes: z.coerce.number().int().min(10).max(1440),
  trainConcurrency: positiveInt.max(40),
};

const Context = z.strictObject({
  stackName: z.string().regex(/^[A-Za-z][A-Za-z0-9-]{0,127}$/, 'expected a CloudFormation stack name'),
  prefix: z.string().regex(/^[a-z][a-z0-9-]{1,30}$/, 'expected 2-31 lower-case letters, digits or "-"'),
  cacheExpiryDays: positiveInt,
  // A Distributed Map runs up to 10,000 child executions at once; 1,000 is Lambda's default concurrency per account.
  featurizeConcurrency: positiveInt.max(1000),
  prepareMemoryMb: memoryMb,
  prepareTimeoutSeconds: timeoutSeconds,
  featurizeMemoryMb: memoryMb,
  featurizeTimeoutSeconds: timeoutSeconds,
  reportMemoryMb: memoryMb,
  reportTimeoutSeconds: timeoutSeconds,
  markFailedMemoryMb: memoryMb,
  markFailedTimeoutSeconds: timeoutSeconds,
  logRetentionDays: retentionDays,
  vpcId: z.string().regex(/^vpc-[0-9a-f]+$/, 'expected a VPC id such as vpc-0123abcd').optional(),
  trainerCompute: z.enum(['gpu', 'cpu']),
  gpuInstanceTypes: list,
  cpuInstanceTypes: list,
  trainerSpot: bool,
  trainerMaxVcpus: positiveInt,
  trainerVcpus: positiveInt,
  trainerMemoryMiB: positiveInt,
  trainerTimeoutMinutes: positiveInt,
  trainerImage: z
    .string()
    .regex(/^[a-z0-9][a-z0-9._/-]*:[A-Za-z0-9._-]+$/, 'expected "<ecr repository name>:<tag>"')
    .optional(),
  // The trainer image's base images, pinned by digest (containers/trainer/Dockerfile); needed when it is built.
  trainerNodeImageDigest: imageDigest.optional(),
  trainerCudaImageDigest: imageDigest.optional(),
  ...costGuardContext,
  ...TIME_LIMITS,
  ...spendContext,
}).superRefine((c, ctx) => {
  if (c.maxRunCostUsd > c.maxRunCostCeilingUsd) {
    ctx.addIssue({ code: 'custom', path: ['maxRunCostUsd'], message: `expected at most maxRunCostCeilingUsd (${c.maxRunCostCeilingUsd}), got ${c.maxRunCostUsd}` });
  }
  // Otherwise a budgetUsd the deployment allows could never be admitted on any day.
  if (c.maxDailyCostUsd < c.maxRunCostCeilingUsd) {
    ctx.addIssue({
      code: 'custom',
      path: ['maxDailyCostUsd'],
      message: `expected at least maxRunCostCeilingUsd (${c.maxRunCostCeilingUsd}), so a run at the ceiling fits in a day, got ${c.maxDailyCostUsd}; lower maxRunCostCeilingUsd too`,
    });
  }
});

export type DeployConfig = z.infer<typeof Context> & {
  functions: Record<FunctionName, { memoryMb: number; timeoutSeconds: number }>;
};

/** The context keys a deployment reads, in the order docs/aws.md lists them. */
export const CONTEXT_KEYS = Object.keys(Context.shape) as (keyof typeof Context.shape)[];

/** Reads and validates every deployment setting; `get` returns a context value or undefined. */
export function readConfig(get: (key: string) => unknown): DeployConfig {
  const raw: Record<string, unknown> = {};
  for (const key of CONTEXT_KEYS) {
    const value = get(key);
    // An empty `-c vpcId=` means "not set", so optional keys can be cleared from the command line.
    if (value !== undefined && value !== '') raw[key] = value;
  }
  const parsed = Context.safeParse(raw);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `  context "${i.path.join('.')}": ${i.message}`);
    throw new ConfigError(`invalid deployment context (cdk.json or -c):\n${problems.join('\n')}`);
  }
  const c = parsed.data;
  const fn = (name: FunctionName) => ({
    memoryMb: c[`${name}MemoryMb`],
    timeoutSeconds: c[`${name}TimeoutSeconds`],
  });
  return {
    ...c,
    functions: { prepare: fn('prepare'), featurize: fn('featurize'), report: fn('report'), markFailed: fn('markFailed') },
  };
}

/**
 * The deployment settings of a `cdk.json` file (its `context`) with `overrides` on top (as `-c key=value` gives
 * them), validated as `cdk synth` validates them; undefined when the file does not exist.
 */
export async function readConfigFile(file: URL | string, overrides: Record<string, unknown> = {}): Promise<DeployConfig | undefined> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  let context: Record<string, unknown>;
  try {
    context = (JSON.parse(text) as { context?: Record<string, unknown> }).context ?? {};
  } catch (err) {
    throw new ConfigError(`${String(file)} is not valid JSON: ${(err as Error).message}`);
  }
  return readConfig((key) => overrides[key] ?? context[key]);
}

/** The instance types the trainer's compute environment runs: the GPU list or the CPU list, as configured. */
export function trainerInstanceTypes(config: DeployConfig): string[] {
  return config.trainerCompute === 'gpu' ? config.gpuInstanceTypes : config.cpuInstanceTypes;
}

/**
 * The pricing choices a deployment makes (the deployment's part of the cost report's CostOptions): the trainer's
 * first instance type and its market, and the configured memory of every stage function.
 */
export const DeploymentCostOptions = z.strictObject({
  batchInstanceType: z.string().min(1),
  batchMarket: z.enum(['on-demand', 'spot']),
  lambdaMemoryMb: z.record(z.enum(FUNCTION_NAMES), z.number().int().min(MEMORY_MB.min).max(MEMORY_MB.max)),
});
export type DeploymentCostOptions = z.infer<typeof DeploymentCostOptions>;

/** The pricing choices of a deployment config: what the stack tells the Report function and a local run estimates with. */
export function costOptionsOf(config: DeployConfig): DeploymentCostOptions {
  const memory = (fn: FunctionName) => config.functions[fn].memoryMb;
  return {
    batchInstanceType: trainerInstanceTypes(config)[0]!,
    batchMarket: config.trainerSpot ? 'spot' : 'on-demand',
    lambdaMemoryMb: { prepare: memory('prepare'), featurize: memory('featurize'), report: memory('report'), markFailed: memory('markFailed') },
  };
}

/** A deployment's per-run cost limits, in USD (cdk.json `maxRunCostUsd`, `maxRunCostCeilingUsd`). */
export const RunBudget = z
  .strictObject({ maxRunCostUsd: z.number().positive().finite(), maxRunCostCeilingUsd: z.number().positive().finite() })
  .refine((b) => b.maxRunCostUsd <= b.maxRunCostCeilingUsd, { message: 'expected maxRunCostUsd <= maxRunCostCeilingUsd', path: ['maxRunCostUsd'] });
export type RunBudget = z.infer<typeof RunBudget>;

/**
 * A deployment's caps across runs (cdk.json `maxConcurrentRuns`, `maxDailyCostUsd`) and how long a run may hold its
 * slot (`maxRunHours`, the state machine's execution timeout).
 */
export const SpendCaps = z.strictObject({
  maxConcurrentRuns: z.number().int().positive(),
  maxDailyCostUsd: z.number().positive().finite(),
  maxRunHours: z.number().int().positive(),
});
export type SpendCaps = z.infer<typeof SpendCaps>;

/**
 * What `textshift plan` and Prepare's cost guard assume of a deployment: its pricing choices (with each function's
 * memory), how many featurize shards run at once, the time and memory limits a run's stages run under, and its
 * per-run cost limits. One source: `planDeploymentOf` a deployment config (cdk.json), which the stack passes to the
 * Prepare function and a local run and `textshift plan` read from the repository.
 */
export const PlanDeployment = z.strictObject({
  pricing: DeploymentCostOptions,
  featurizeConcurrency: z.number().int().positive(),
  /** The featurize function's timeout: a family without `shardSize` gets shards that take at most a third of it. */
  featurizeTimeoutSeconds: z.number().int().min(1).max(900),
  prepareTimeoutSeconds: z.number().int().min(1).max(900),
  reportTimeoutSeconds: z.number().int().min(1).max(900),
  /** A training job attempt's time limit once running (the job definition's timeout) and its container's memory. */
  trainerTimeoutMinutes: z.number().int().positive(),
  trainerMemoryMiB: z.number().int().positive(),
  budget: RunBudget,
  /**
   * The caps across runs, which Prepare applies when they are given: the stack gives them to the Prepare function
   * (`deployedPlanDeploymentOf`). A local run and `textshift plan` leave them out: a local run is billed nothing and
   * its concurrency is bounded by the machine (and by its run lock).
   */
  spend: SpendCaps.optional(),
});
export type PlanDeployment = z.infer<typeof PlanDeployment>;

/** What a plan and the cost guard assume of a deployment config. */
export function planDeploymentOf(config: DeployConfig): PlanDeployment {
  return {
    pricing: costOptionsOf(config),
    featurizeConcurrency: config.featurizeConcurrency,
    featurizeTimeoutSeconds: config.featurizeTimeoutSeconds,
    prepareTimeoutSeconds: config.prepareTimeoutSeconds,
    reportTimeoutSeconds: config.reportTimeoutSeconds,
    trainerTimeoutMinutes: config.trainerTimeoutMinutes,
    trainerMemoryMiB: config.trainerMemoryMiB,
    budget: { maxRunCostUsd: config.maxRunCostUsd, maxRunCostCeilingUsd: config.maxRunCostCeilingUsd },
  };
}

/** A deployment's caps across runs. */
export function spendCapsOf(config: DeployConfig): SpendCaps {
  return { maxConcurrentRuns: config.maxConcurrentRuns, maxDailyCostUsd: config.maxDailyCostUsd, maxRunHours: config.maxRunHours };
}

/** What the stack tells the Prepare function: the plan deployment with the caps across runs, which only a deployment applies. */
export function deployedPlanDeploymentOf(config: DeployConfig): PlanDeployment {
  return { ...planDeploymentOf(config), spend: spendCapsOf(config) };
}
