/**
 * The per-run guard: what Prepare checks of a run's plan before any compute, and `textshift plan` shows. A run may
 * plan at most EXPERIMENT_LIMITS.shardsPerRun featurize shards, and its estimated cost must stay within its limit:
 * the deployment's maxRunCostUsd, or the experiment's `budgetUsd`, which may not be above the deployment's
 * maxRunCostCeilingUsd.
 */
import { EXPERIMENT_LIMITS, type Experiment } from '../config/experiment.js';
import { passLabel } from '../config/encoder-passes.js';
import type { PlanDeployment, RunBudget } from '../config/deployment.js';
import { BudgetExceededError, ConfigError, type PermanentError } from '../errors/index.js';
import type { BlobStore } from '../store/blob-store.js';
import { formatMoney } from './cost.js';
import { planExperiment, type Plan, type ProfileFile } from './plan.js';
import { bundledPriceTable } from './prices.js';

/** What the guard found for one run's plan. */
export interface RunCheck {
  /** Featurize shards the run plans, and the most one run may plan. */
  /** `byFamily`: per encoder pass, its families joined by "+" (src/config/encoder-passes.ts). */
  shards: { planned: number; max: number; byFamily: Record<string, number> };
  /** The plan's cost estimate (USD), the run's limit and where the limit comes from. */
  cost: { estimateUsd: number; limitUsd: number; limitFrom: 'maxRunCostUsd' | 'budgetUsd'; ceilingUsd: number };
  /** Why the run would be refused, most fundamental first; empty when it may run. */
  refusals: PermanentError[];
}

/** Checks a run's plan against the shard limit and its cost limit; `source` names the experiment file in messages. */
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
  return { shards: { planned, max, byFamily }, cost: { estimateUsd, limitUsd, limitFrom, ceilingUsd }, refusals };
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

/** The check for the terminal: the shard count and the cost against their limits, then whether Prepare runs the run. */
export function runCheckText(check: RunCheck): string {
  const { shards, cost } = check;
  const where = cost.limitFrom === 'budgetUsd' ? 'budgetUsd in the experiment' : 'maxRunCostUsd in cdk.json';
  const lines = [
    'Limits:',
    `  shards  ${shards.planned.toLocaleString('en-US')} planned, at most ${shards.max.toLocaleString('en-US')} per run`,
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
