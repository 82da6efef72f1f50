import type { Command } from 'commander';
import { resolveDataRoot } from '../data/data-root.js';
import { FsBlobStore } from '../store/fs-store.js';
import { costText } from '../cost/cost.js';
import { resultsTable, resultsText } from '../report/results-table.js';
import type { CostReport } from '../cost/cost.js';
import { runKeys } from '../run/keys.js';
import { runLocal } from '../workflow/local-runner.js';
import { lineReporter } from '../run/reporter.js';
import { ttyReporter } from './tty-reporter.js';
import { formatSeconds } from '../format/text.js';
import { redact } from '../errors/redact.js';

/** `textshift run <experiment>`: the whole experiment on this machine, a folder as the object store. */
export function registerRunCommand(program: Command): void {
  program
    .command('run')
    .description('run an experiment locally (a folder is the object store); re-running the same experiment resumes it')
    .argument('<experiment>', 'experiment JSON file, e.g. experiments/sst2-imdb.json')
    .option('--out <dir>', 'local object store folder', 'out')
    .option('--data-root <dir>', 'folder holding the datasets (default: $TEXTSHIFT_DATA, ./data, ../shared/data)')
    .option('--quick', "run the experiment's documented `quick` subsample (a few minutes)")
    .option('--full', "ignore the experiment's per-family `subsample` caps (e.g. embed all 50k IMDB reviews: about an hour on 2 cores)")
    .option('--run-id <id>', 'explicit run id (default: derived from the experiment, so a re-run resumes)')
    .action(async (experiment: string, opts: { out: string; dataRoot?: string; quick?: boolean; full?: boolean; runId?: string }) => {
      const tty = process.stderr.isTTY ? ttyReporter() : undefined;
      const reporter = tty ?? lineReporter();
      const t0 = Date.now();
      try {
        const root = resolveDataRoot(opts.dataRoot !== undefined ? { flag: opts.dataRoot } : {});
        reporter.log(`data: ${root.dir} (${root.source})`);
        const store = new FsBlobStore(opts.out);
        const run = await runLocal({
          store,
          data: new FsBlobStore(root.dir),
          experimentPath: experiment,
          quick: opts.quick ?? false,
          full: opts.full ?? false,
          reporter,
          ...(opts.runId ? { runId: opts.runId } : {}),
        });
        tty?.stop();
        const k = runKeys(run.runId);
        const costBuf = await store.get(k.report('cost.json'));
        process.stdout.write(`\nRun ${run.runId} finished in ${formatSeconds((Date.now() - t0) / 1000)}\n\n`);
        process.stdout.write(`Test accuracy (rows: model, columns: dataset)\n${resultsText(resultsTable(run.results))}\n`);
        if (costBuf) process.stdout.write(`\n${costText(JSON.parse(costBuf.toString('utf8')) as CostReport)}\n`);
        process.stdout.write(`\nArtifacts in ${store.root}/${k.root}: report/results.md, report/report.html, report/cost.md, checkpoints.zip, manifest.json\n`);
      } catch (err) {
        tty?.stop();
        process.stderr.write(`\ntextshift run failed: ${redact((err as Error).message)}\n`);
        process.exitCode = 1;
      }
    });
}
