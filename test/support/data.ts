/**
 * The real datasets (SST-2, IMDB) for the tests that read them, found exactly as the CLI finds them when started at
 * the repository root: `$TEXTSHIFT_DATA`, else `./data`, else `../shared/data`. Resolved on each call, inside the
 * test or hook that needs it, so a missing folder fails that test with every path tried instead of skipping it.
 */
import { join } from 'node:path';
import { resolveDataRoot } from '../../src/data/data-root.js';
import { repoRoot } from './cli.js';

/** The data folder's absolute path; throws MissingDatasetError listing the paths tried when there is none. */
export function dataRoot(): string {
  return resolveDataRoot({ cwd: repoRoot }).dir;
}

/** Absolute path of a file in the data folder, e.g. `dataFile('sst2/train.tsv')`. */
export function dataFile(relative: string): string {
  return join(dataRoot(), relative);
}
