import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { CONTEXT_KEYS, planDeploymentOf } from '../config/deployment.js';
import { parseExperiment } from '../config/experiment.js';
import { resolveDataRoot } from '../data/data-root.js';
import { checkRun, runCheckText } from '../cost/guard.js';
import { planExperiment, planText, readingProfiler, type ProfileFile } from '../cost/plan.js';
import { loadPrices } from '../cost/prices.js';
import { FsBlobStore } from '../store/fs-store.js';
import { redact } from '../errors/redact.js';
import { repositoryDeployment } from '../workflow/local-runner.js';

interface PlanFlags {
  dataRoot?: string;
  out: string;
  quick?: boolean;
  full?: boolean;
  context: string[];
  prices?: string;
  spot?: boolean;
  startupSeconds?: string;
  retentionDays?: string;
  json?: boolean;
}

/**
 * `textshift plan <experiment>`: cost and time on AWS before running, and the check Prepare makes of them (shards and
 * cost against their limits); exits non-zero when Prepare would refuse the run. `profile` counts the rows of a
 * dataset file; by default the files are read from the data root.
 */
export function registerPlanCommand(program: Command, profile?: ProfileFile): void {
  program
    .command('plan')
    .description('estimate the AWS cost and time of an experiment before running it (reads the datasets to size them)')
    .argument('<experiment>', 'experiment JSON file, e.g. experiments/sst2-imdb.json')
    .option('--data-root <dir>', 'folder holding the datasets (default: $TEXTSHIFT_DATA, ./data, ../shared/data)')
    .option('--out <dir>', 'local object store folder whose models/ give a bert family its model size', 'out')
    .option('--quick', "plan the experiment's `quick` subsample")
    .option('--full', "ignore the experiment's per-family `subsample` caps, as `textshift run --full` does")
    .option('-c, --context <key=value>', 'a deployment setting over cdk.json, as `cdk deploy -c` takes it (repeatable), e.g. -c maxRunCostUsd=50', collect, [])
    .option('--prices <file>', 'price file overriding entries of the bundled AWS prices')
    .option('--spot', 'price the GPU training instances at the Spot price')
    .option('--startup-seconds <s>', 'billed start-up time per Batch job', '180')
    .option('--retention-days <d>', 'days the run objects stay in S3', '30')
    .option('--json', 'print the plan as JSON')
    .action(async (experiment: string, opts: PlanFlags) => {
      try {
        const exp = parseExperiment(await readExperiment(experiment), experiment);
        const prices = await loadPrices(opts.prices);
        const deployment = planDeploymentOf(await repositoryDeployment(contextOverrides(opts.context)));
        const profiler = profile ?? readingProfiler(new FsBlobStore(resolveDataRoot(opts.dataRoot !== undefined ? { flag: opts.dataRoot } : {}).dir));
        const plan = await planExperiment(exp, profiler, prices, {
          deployment,
          quick: opts.quick ?? false,
          full: opts.full ?? false,
          models: new FsBlobStore(opts.out),
          cost: {
            ...(opts.spot ? { batchMarket: 'spot' as const } : {}),
            batchStartupSeconds: nonNegative(opts.startupSeconds, '--startup-seconds'),
            s3RetentionDays: nonNegative(opts.retentionDays, '--retention-days'),
          },
        });
        const check = checkRun(plan, exp, deployment.budget, experiment);
        if (opts.json) {
          const refusals = check.refusals.map((r) => ({ error: r.name, message: r.message }));
          process.stdout.write(`${JSON.stringify({ ...plan, check: { ...check, refusals } }, null, 2)}\n`);
        } else {
          process.stdout.write(`${planText(plan)}\n${runCheckText(check)}`);
        }
        if (check.refusals.length > 0) {
          process.stderr.write(`textshift plan: Prepare would refuse this run: ${check.refusals.map((r) => r.message).join('; ')}\n`);
          process.exitCode = 1;
        }
      } catch (err) {
        process.stderr.write(`textshift plan failed: ${redact((err as Error).message)}\n`);
        process.exitCode = 1;
      }
    });
}

async function readExperiment(path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    throw new Error(`cannot read experiment ${path}: ${(err as Error).message}`);
  }
}

function nonNegative(value: string | undefined, flag: string): number {
  const n = Number(value);
  if (value === undefined || !Number.isFinite(n) || n < 0) throw new Error(`${flag}: expected a number >= 0, got "${value}"`);
  return n;
}

/** Commander's accumulator of a repeatable option. */
function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

/** `key=value` settings (as `cdk deploy -c` takes them) as an object; a malformed one names itself. */
function contextOverrides(pairs: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const pair of pairs) {
    const at = pair.indexOf('=');
    if (at <= 0) throw new Error(`--context ${pair}: expected key=value, e.g. maxRunCostUsd=50`);
    const key = pair.slice(0, at);
    if (!(CONTEXT_KEYS as string[]).includes(key)) throw new Error(`--context ${pair}: unknown deployment setting "${key}"; expected one of ${CONTEXT_KEYS.join(', ')}`);
    out[key] = pair.slice(at + 1);
  }
  return out;
}
