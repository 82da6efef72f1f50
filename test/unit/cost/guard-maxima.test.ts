// Property: an experiment at and around the schema's maxima (EXPERIMENT_LIMITS), on data from tiny to huge and on
// deployments at their bounds, is either refused by the guard with a reason, or the plan it passes is within every
// limit the guard knows, re-checked here from the plan's own numbers. No check throws, and no number is NaN or
// infinite. Randomised with a fixed seed, plus the all-maxima corner.
import { describe, expect, it } from 'vitest';
import { EXPERIMENT_LIMITS, parseExperiment, type Experiment } from '../../../src/config/experiment.js';
import { checkRun, runCheckText } from '../../../src/cost/guard.js';
import { planExperiment, type FileProfile, type Plan } from '../../../src/cost/plan.js';
import { bundledPriceTable } from '../../../src/cost/prices.js';
import { PermanentError } from '../../../src/errors/index.js';
import { MT19937 } from '../../../src/random/mt19937.js';
import { partSizeFor, S3_MULTIPART, UNSIZED_UPLOAD_MAX_BYTES, UPLOAD_BUFFERED_PARTS } from '../../../src/store/s3-limits.js';
import { DATASET_A, contextDeployment } from '../../support/plan-fixtures.js';

const L = EXPERIMENT_LIMITS;
const MiB = 1024 * 1024;
const SOURCE = 'experiments/maxima.json';
const rng = MT19937.fromSeed(20);
const pick = <T>(items: readonly T[]): T => items[Math.floor(rng.nextDouble() * items.length)]!;
/** A bound's minimum, just under its maximum, and the maximum. */
const around = (max: number, min = 1) => [min, Math.max(min, max - 1), max];

/** Deployments at cdk.json's defaults and at the bounds its schema allows. */
const DEPLOYMENTS = [
  {},
  { featurizeMemoryMb: 128, reportMemoryMb: 128, featurizeTimeoutSeconds: 1, prepareTimeoutSeconds: 1, reportTimeoutSeconds: 1, trainerTimeoutMinutes: 1, trainerMemoryMiB: 1 },
  { featurizeMemoryMb: 10_240, reportMemoryMb: 10_240, featurizeTimeoutSeconds: 900, prepareTimeoutSeconds: 900, reportTimeoutSeconds: 900, trainerTimeoutMinutes: 10_000, trainerMemoryMiB: 1_000_000 },
];

function feature(kind: 'bow' | 'use' | 'bert'): object {
  if (kind === 'bow') return { kind, maxFeatures: pick(around(L.maxFeatures)), fitOn: { dataset: 'a', split: 'train' }, shardSize: pick([undefined, ...around(L.shardSize.max, L.shardSize.min)]) };
  if (kind === 'use') return { kind, batchSize: pick(around(L.encoderBatchSize)), shardSize: pick([undefined, ...around(L.shardSize.max, L.shardSize.min)]) };
  return {
    kind,
    model: pick(['all-minilm-l6-v2', 'an-unknown-bert']),
    maxLength: pick(around(L.maxLength, 2)),
    batchSize: pick(around(L.encoderBatchSize)),
    shardSize: pick([undefined, ...around(L.bertShardSize.max, L.bertShardSize.min)]),
  };
}

/** A random experiment whose every bounded field is at its minimum, just under its maximum, or at its maximum. */
function randomExperiment(): Experiment {
  const families = pick(around(L.featureFamilies));
  const features: Record<string, object> = {};
  for (let f = 0; f < families; f++) features[`f${f}`] = feature(pick(['bow', 'use', 'bert'] as const));
  const epochs = pick(around(L.epochs));
  const stages = Array.from({ length: pick(around(L.stages)) }, (_, i) => ({ name: `s${i}`, dataset: 'a', ...(i > 0 && rng.nextDouble() < 0.5 ? { from: `s${i - 1}` } : {}) }));
  const exp = {
    name: 'maxima',
    datasets: { a: DATASET_A },
    features,
    model: { hidden: Array.from({ length: pick(around(L.hiddenLayers)) }, () => pick(around(L.hiddenSize))) },
    training: { epochs, checkpointEvery: pick([1, 2, epochs]), batchSize: pick(around(L.trainingBatchSize)) },
    stages,
    evaluation: { datasets: ['a'] },
    ...(rng.nextDouble() < 0.5 ? { budgetUsd: 250 } : {}),
  };
  return parseExperiment(JSON.stringify(exp), SOURCE);
}

/** Every number anywhere in `value` that is NaN or infinite, by path. */
function nonFinite(value: unknown, path = '$'): string[] {
  if (typeof value === 'number') return Number.isFinite(value) ? [] : [`${path} = ${value}`];
  if (Array.isArray(value)) return value.flatMap((v, i) => nonFinite(v, `${path}[${i}]`));
  if (value !== null && typeof value === 'object') return Object.entries(value).flatMap(([k, v]) => nonFinite(v, `${path}.${k}`));
  return [];
}

/** Which limits a plan breaks, recomputed from its numbers and its deployment, independently of the guard's lines. */
function broken(plan: Plan, exp: Experiment): string[] {
  const dep = plan.deployment;
  const out: string[] = [];
  const shards = plan.parts.reduce((a, p) => a + p.shards, 0);
  if (shards > L.shardsPerRun) out.push(`${shards} shards`);
  if (plan.prepare.seconds > dep.prepareTimeoutSeconds) out.push('prepare time');
  for (const p of plan.parts) if (p.shardSeconds > dep.featurizeTimeoutSeconds) out.push(`shard ${p.feature} ${p.part} ${p.shardSeconds} s`);
  for (const j of plan.jobs) {
    if (j.runningSeconds > dep.trainerTimeoutMinutes * 60) out.push(`job ${j.feature} ${j.runningSeconds} s`);
    if (j.memory.features + j.memory.model + j.memory.runtime > dep.trainerMemoryMiB * MiB) out.push(`job ${j.feature} memory`);
    if (j.largestObjectBytes > UNSIZED_UPLOAD_MAX_BYTES) out.push(`${j.feature} checkpoint object`);
  }
  if (plan.prepare.largestSplitBytes > UNSIZED_UPLOAD_MAX_BYTES) out.push('split object');
  if (plan.archive.bytes > S3_MULTIPART.maxObjectBytes) out.push('archive size');
  else {
    const part = partSizeFor(plan.archive.bytes);
    if (Math.ceil(plan.archive.bytes / part) > S3_MULTIPART.maxParts) out.push('archive parts');
    if (UPLOAD_BUFFERED_PARTS * part + plan.model.runtimeMemoryMiB.report * MiB > dep.pricing.lambdaMemoryMb.report * MiB) out.push('report memory');
  }
  const report = plan.stages.find((s) => s.stage === 'report')!;
  if (report.computeSeconds > dep.reportTimeoutSeconds) out.push('report time');
  if (plan.cost.total > (exp.budgetUsd ?? dep.budget.maxRunCostUsd)) out.push('cost');
  return out;
}

const CASES = 300;

describe('the guard at and around the schema maxima', () => {
  it(`${CASES} seeded experiments: refused with a reason, or within every limit; never an exception, NaN or Infinity`, async () => {
    const outcomes = { passed: 0, refused: 0 };
    const reasons = new Set<string>();
    for (let n = 0; n < CASES; n++) {
      const exp = randomExperiment();
      const overrides = pick(DEPLOYMENTS);
      const dep = contextDeployment(overrides);
      const file: FileProfile = { rows: pick([10, 1_000, 100_000, 10_000_000]), meanChars: pick([1, 420, 5_000, 100_000]) };
      const mode = { quick: rng.nextDouble() < 0.2, full: rng.nextDouble() < 0.5 };
      const label = `case ${n}: ${JSON.stringify({ overrides, file, mode, features: exp.features, hidden: exp.model.hidden, training: exp.training, stages: exp.stages.length })}`;

      const plan = await planExperiment(exp, async () => file, bundledPriceTable(), { deployment: dep, ...mode });
      const check = checkRun(plan, exp, dep.budget, SOURCE);
      expect(nonFinite(plan), label).toEqual([]);
      expect(nonFinite(check), label).toEqual([]);
      expect(runCheckText(check), label).not.toMatch(/NaN|Infinity|undefined/);

      const breaks = broken(plan, exp);
      if (check.refusals.length > 0) {
        outcomes.refused += 1;
        for (const r of check.refusals) {
          expect(r, label).toBeInstanceOf(PermanentError);
          expect(r.message, label).toMatch(new RegExp(`^${SOURCE.replace(/[./]/g, '\\$&')}: .{40,}`));
          expect(r.message, label).not.toMatch(/NaN|Infinity|undefined/);
        }
        for (const l of check.limits) if (!l.within) reasons.add(l.name);
        // A refusal names a limit the plan really breaks (or the budget ceiling, which no plan number shows).
        if (exp.budgetUsd === undefined || exp.budgetUsd <= dep.budget.maxRunCostCeilingUsd) expect(breaks, label).not.toEqual([]);
      } else {
        outcomes.passed += 1;
        expect(breaks, label).toEqual([]);
        expect(check.limits.every((l) => l.within), label).toBe(true);
      }
    }
    // Both outcomes, and refusals for each kind of limit a stage can reach within the schema.
    expect(outcomes.passed).toBeGreaterThan(10);
    expect(outcomes.refused).toBeGreaterThan(10);
    expect([...reasons].sort()).toEqual(['archive', 'memory', 'objects', 'prepare', 'report', 'shard', 'train']);
  });

  it('the all-maxima experiment is refused, naming the archive over 5 TiB, the Report time and the cost', async () => {
    const features = Object.fromEntries(
      Array.from({ length: L.featureFamilies }, (_, f) => [`f${f}`, { kind: 'bow', maxFeatures: L.maxFeatures, fitOn: { dataset: 'a', split: 'train' }, shardSize: L.shardSize.max }]),
    );
    const exp = parseExperiment(
      JSON.stringify({
        name: 'maxima',
        datasets: { a: DATASET_A },
        features,
        model: { hidden: Array(L.hiddenLayers).fill(L.hiddenSize) },
        training: { epochs: L.epochs, checkpointEvery: 1, batchSize: L.trainingBatchSize },
        stages: Array.from({ length: L.stages }, (_, i) => ({ name: `s${i}`, dataset: 'a' })),
        evaluation: { datasets: ['a'] },
      }),
      SOURCE,
    );
    const dep = contextDeployment();
    const plan = await planExperiment(exp, async () => ({ rows: 1_000, meanChars: 420 }), bundledPriceTable(), { deployment: dep });
    const check = checkRun(plan, exp, dep.budget, SOURCE);
    expect(nonFinite(plan)).toEqual([]);
    expect(check.limits.filter((l) => !l.within).map((l) => l.name)).toEqual(['archive', 'report']);
    expect(check.refusals.map((r) => r.name)).toEqual(['ConfigError', 'ConfigError', 'BudgetExceededError']);
    // 10 families × 10 stages × 1001 checkpoints × 12 bytes × 438,980,610 parameters
    expect(check.refusals[0]!.message).toBe(
      "experiments/maxima.json: checkpoints.zip plans at 479.6 TiB, above S3's largest object of 5 TiB (Amazon S3 multipart upload limits); " +
        'checkpoint less often (training.checkpointEvery, now 1), train fewer epochs, or train a smaller model',
    );
  });
});
