// The run guard Prepare applies and `textshift plan` shows: the shard count and the planned cost against their
// limits (the deployment's maxRunCostUsd, or the experiment's budgetUsd within maxRunCostCeilingUsd).
import { describe, expect, it } from 'vitest';
import { parseExperiment } from '../../../src/config/experiment.js';
import { checkRun, enforceRunCheck, runCheckText } from '../../../src/cost/guard.js';
import { planExperiment, type FileProfile } from '../../../src/cost/plan.js';
import { bundledPriceTable } from '../../../src/cost/prices.js';
import { BudgetExceededError, ConfigError } from '../../../src/errors/index.js';
import { DATASET_A, contextDeployment } from '../../support/plan-fixtures.js';

/** One dataset "a" (a file split 80/20 into train/val, and a test file) and one USE family. */
const experiment = (extra: object = {}, shardSize = 2000) =>
  parseExperiment(
    JSON.stringify({
      name: 'guarded',
      datasets: {
        a: DATASET_A,
      },
      features: { use: { kind: 'use', shardSize } },
      stages: [{ name: '1', dataset: 'a' }],
      evaluation: { datasets: ['a'] },
      ...extra,
    }),
    'experiments/guarded.json',
  );
const deployment = contextDeployment;
const planOf = (exp: ReturnType<typeof experiment>, rows: number, dep = deployment()) =>
  planExperiment(exp, async (): Promise<FileProfile> => ({ rows, meanChars: 420 }), bundledPriceTable(), { deployment: dep });

describe('run guard (shards and cost against their limits)', () => {
  it("passes a run within cdk.json's default limit and says so", async () => {
    const exp = experiment();
    const plan = await planOf(exp, 1000);
    const check = checkRun(plan, exp, deployment().budget, 'experiments/guarded.json');
    expect(check.refusals).toEqual([]);
    expect(check.cost).toEqual({ estimateUsd: plan.cost.total, limitUsd: 25, limitFrom: 'maxRunCostUsd', ceilingUsd: 250 });
    // 800 train + 200 val + 1000 test rows in shards of 2000: one shard each.
    expect(check.shards).toEqual({ planned: 3, max: 100_000, byFamily: { use: 3 } });
    expect(() => enforceRunCheck(check)).not.toThrow();
    expect(runCheckText(check)).toContain('Within limits: Prepare runs this experiment.');
  });

  it('refuses an estimate above maxRunCostUsd, naming the estimate, the limit and how to raise it', async () => {
    const exp = experiment();
    const dep = deployment({ maxRunCostUsd: 0.001 });
    const plan = await planOf(exp, 1000, dep);
    expect(plan.cost.total).toBeGreaterThan(0.001);
    const check = checkRun(plan, exp, dep.budget, 'experiments/guarded.json');
    expect(check.refusals).toHaveLength(1);
    const [refusal] = check.refusals;
    expect(refusal).toBeInstanceOf(BudgetExceededError);
    expect(refusal!.retryable).toBe(false);
    const estimate = `$${plan.cost.total.toFixed(4)}`;
    expect(refusal!.message).toBe(
      `experiments/guarded.json: the run's estimated cost ${estimate} is above its limit $0.001 (maxRunCostUsd in cdk.json). ` +
        'To run it, set "budgetUsd" in the experiment (at most $250, this deployment\'s maxRunCostCeilingUsd), or raise ' +
        'maxRunCostUsd in cdk.json (cdk deploy -c maxRunCostUsd=...); textshift plan shows the estimate line by line',
    );
    expect(() => enforceRunCheck(check)).toThrow(refusal!);
    expect(runCheckText(check)).toContain(`cost    estimate ${estimate}, limit $0.001 (maxRunCostUsd in cdk.json; an experiment may set budgetUsd up to $250)`);
    expect(runCheckText(check)).toContain('Prepare would refuse this run:');
  });

  it("budgetUsd replaces the deployment's limit, up to the ceiling; above the ceiling the run is refused whatever it costs", async () => {
    const dep = deployment({ maxRunCostUsd: 0.001, maxRunCostCeilingUsd: 100 });
    const raised = experiment({ budgetUsd: 50 });
    const plan = await planOf(raised, 1000, dep);
    const ok = checkRun(plan, raised, dep.budget, 'experiments/guarded.json');
    expect(ok.refusals).toEqual([]);
    expect(ok.cost).toMatchObject({ limitUsd: 50, limitFrom: 'budgetUsd', ceilingUsd: 100 });

    // A budget below the estimate is the run's own limit: refused, and the message says to raise budgetUsd.
    const tight = experiment({ budgetUsd: 0.0001 });
    const [low] = checkRun(plan, tight, dep.budget, 'experiments/guarded.json').refusals;
    expect(low).toBeInstanceOf(BudgetExceededError);
    expect(low!.message).toMatch(/is above its limit \$0\.0001 \(budgetUsd in the experiment\)\. To run it, raise budgetUsd \(at most \$100, /);

    const greedy = experiment({ budgetUsd: 500 });
    const refused = checkRun(plan, greedy, dep.budget, 'experiments/guarded.json');
    expect(refused.refusals.map((r) => [r.name, r.message])).toEqual([
      [
        'BudgetExceededError',
        "experiments/guarded.json: budgetUsd $500 is above this deployment's ceiling $100 (maxRunCostCeilingUsd in cdk.json); " +
          'lower budgetUsd, or raise the ceiling (cdk deploy -c maxRunCostCeilingUsd=...)',
      ],
    ]);
  });

  it('refuses a run planning more featurize shards than a run may, naming the count, the limit and the families', async () => {
    // 1,000,000-row files in shards of 10: train 80,000 + val 20,000 + test 100,000 = 200,000 shards.
    const exp = experiment({}, 10);
    const plan = await planOf(exp, 1_000_000);
    const check = checkRun(plan, exp, { maxRunCostUsd: 1e9, maxRunCostCeilingUsd: 1e9 }, 'experiments/guarded.json');
    expect(check.shards.planned).toBe(200_000);
    expect(check.refusals).toHaveLength(1);
    expect(check.refusals[0]).toBeInstanceOf(ConfigError);
    expect(check.refusals[0]!.message).toBe(
      'experiments/guarded.json: the run plans 200,000 featurize shards (use 200,000), more than the 100,000 a run may plan; ' +
        'raise features.<family>.shardSize (at most 100000) or subsample the data',
    );
    expect(runCheckText(check)).toContain('shards  200,000 planned, at most 100,000 per run');
  });
});
