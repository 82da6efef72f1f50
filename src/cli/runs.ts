import type { Command } from 'commander';
import { compareResults, comparisonText, listRuns, loadRunResults, runsText } from '../report/runs.js';
import { FsBlobStore } from '../store/fs-store.js';
import { redact } from '../errors/redact.js';

/** `textshift runs`: the runs in the local object store with status, duration, best accuracies and cost. */
export function registerRunsCommand(program: Command): void {
  program
    .command('runs')
    .description('list past runs: id, experiment, status, duration, best test accuracy per dataset, cost')
    .option('--out <dir>', 'local object store folder', 'out')
    .option('--json', 'print the list as JSON')
    .action(async (opts: { out: string; json?: boolean }) => {
      try {
        const runs = await listRuns(new FsBlobStore(opts.out));
        process.stdout.write(opts.json ? `${JSON.stringify(runs, null, 2)}\n` : runsText(runs));
      } catch (err) {
        process.stderr.write(`textshift runs failed: ${redact((err as Error).message)}\n`);
        process.exitCode = 1;
      }
    });
}

/** `textshift compare <runA> <runB>`: both results tables side by side with B − A per model and dataset. */
export function registerCompareCommand(program: Command): void {
  program
    .command('compare')
    .description('show two runs\' test accuracies side by side with the difference (B − A)')
    .argument('<runA>', 'run id (see `textshift runs`)')
    .argument('<runB>', 'run id')
    .option('--out <dir>', 'local object store folder', 'out')
    .option('--json', 'print the comparison as JSON')
    .action(async (runA: string, runB: string, opts: { out: string; json?: boolean }) => {
      try {
        const store = new FsBlobStore(opts.out);
        const comparison = compareResults(await loadRunResults(store, runA), await loadRunResults(store, runB));
        process.stdout.write(opts.json ? `${JSON.stringify(comparison, null, 2)}\n` : comparisonText(comparison));
      } catch (err) {
        process.stderr.write(`textshift compare failed: ${redact((err as Error).message)}\n`);
        process.exitCode = 1;
      }
    });
}
