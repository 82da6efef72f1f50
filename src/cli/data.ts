/** `textshift data ...`: getting the public datasets onto this machine. */
import type { Command } from 'commander';
import { fetchDatasets, SOURCE_ENV_VARS } from '../data/fetch.js';
import { redact } from '../errors/redact.js';

/** Registers `data fetch [--dest DIR]`. */
export function registerDataCommand(program: Command): void {
  const data = program.command('data').description('Manage the datasets the experiments read.');
  data
    .command('fetch')
    .description(
      'Download SST-2 (GitHub clairett/pytorch-sentiment-classification) and the IMDB Large Movie Review archive ' +
        '(ai.stanford.edu), verify sha256 and write sst2/{train,dev,test}.tsv, imdb.csv.gz and imdb_index.csv.gz. ' +
        `Mirrors: set ${SOURCE_ENV_VARS.sst2BaseUrl} and ${SOURCE_ENV_VARS.imdbUrl} (http(s):// or file:// URLs).`,
    )
    .option('--dest <dir>', 'output folder', './data')
    .action(async (opts: { dest: string }) => {
      try {
        const outputs = await fetchDatasets({ dest: opts.dest, log: (line) => console.error(redact(line)) });
        for (const o of outputs) console.log(`${o.action.padEnd(15)} ${o.path}  sha256 ${o.sha256}`);
      } catch (err) {
        console.error(`textshift data fetch: ${redact((err as Error).message)}`);
        process.exitCode = 1;
      }
    });
}
