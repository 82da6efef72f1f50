import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { parseExperiment } from '../config/experiment.js';
import { resolveDataRoot } from '../data/data-root.js';
import { scanTable } from '../data/read-table.js';
import { planExperiment, planText, type ProfileFile } from '../cost/plan.js';
import { loadPrices } from '../cost/prices.js';
import { FsBlobStore } from '../store/fs-store.js';

/** Streams each dataset file through the data module (the same parser a run uses) to count rows and text length. */
export function readingProfiler(dataRoot: string): ProfileFile {
  const data = new FsBlobStore(dataRoot);
  return async (_dataset, _part, file, spec) => {
    let chars = 0;
    const { rows } = await scanTable(data, file, { labels: spec.labels, onBadRow: spec.onBadRow }, (example) => {
      chars += example.text.length;
    });
    return { rows, meanChars: rows === 0 ? 0 : chars / rows };
  };
}

interface PlanFlags {
  dataRoot?: string;
  quick?: boolean;
  prices?: string;
  spot?: boolean;
  startupSeconds?: string;
  retentionDays?: string;
  json?: boolean;
}

/**
 * `textshift plan <experiment>`: cost and time on AWS before running. `profile` counts the rows of a dataset file;
 * by default the files are read from the data root.
 */
export function registerPlanCommand(program: Command, profile?: ProfileFile): void {
  program
    .command('plan')
    .description('estimate the AWS cost and time of an experiment before running it (reads the datasets to size them)')
    .argument('<experiment>', 'experiment JSON file, e.g. experiments/sst2-imdb.json')
    .option('--data-root <dir>', 'folder holding the datasets (default: $TEXTSHIFT_DATA, ./data, ../shared/data)')
    .option('--quick', "plan the experiment's `quick` subsample")
    .option('--prices <file>', 'price file overriding entries of the bundled AWS prices')
    .option('--spot', 'price the GPU training instances at the Spot price')
    .option('--startup-seconds <s>', 'billed start-up time per Batch job', '180')
    .option('--retention-days <d>', 'days the run objects stay in S3', '30')
    .option('--json', 'print the plan as JSON')
    .action(async (experiment: string, opts: PlanFlags) => {
      try {
        const exp = parseExperiment(await readExperiment(experiment), experiment);
        const prices = await loadPrices(opts.prices);
        const profiler = profile ?? readingProfiler(resolveDataRoot(opts.dataRoot !== undefined ? { flag: opts.dataRoot } : {}).dir);
        const plan = await planExperiment(exp, profiler, prices, {
          quick: opts.quick ?? false,
          cost: {
            batchMarket: opts.spot ? 'spot' : 'on-demand',
            batchStartupSeconds: nonNegative(opts.startupSeconds, '--startup-seconds'),
            s3RetentionDays: nonNegative(opts.retentionDays, '--retention-days'),
          },
        });
        process.stdout.write(opts.json ? `${JSON.stringify(plan, null, 2)}\n` : planText(plan));
      } catch (err) {
        process.stderr.write(`textshift plan failed: ${(err as Error).message}\n`);
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
