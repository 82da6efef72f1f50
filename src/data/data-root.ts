import { statSync } from 'node:fs';
import { resolve } from 'node:path';
import { MissingDatasetError } from './errors.js';

/** Where the local data folder was found. */
export interface DataRoot {
  /** Absolute path of the folder. */
  dir: string;
  /** Which rule chose it. */
  source: '--data-root' | 'TEXTSHIFT_DATA' | './data' | '../shared/data';
  /** Every candidate looked at, in order, with its rule (for messages). */
  tried: string[];
}

/** Inputs of resolveDataRoot. */
export interface DataRootOptions {
  /** The `--data-root` flag. */
  flag?: string;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}

/**
 * The local data folder: `--data-root`, else `TEXTSHIFT_DATA`, else `./data`, else `../shared/data` (relative to cwd).
 * A folder named explicitly (flag or variable) must exist: falling back past it would silently use other data.
 * Throws MissingDatasetError listing every path tried when none is found.
 */
export function resolveDataRoot(options: DataRootOptions = {}): DataRoot {
  const cwd = options.cwd ?? process.cwd();
  const env = options.env ?? process.env;
  const tried: string[] = [];
  const explicit: [DataRoot['source'], string | undefined][] = [
    ['--data-root', options.flag],
    ['TEXTSHIFT_DATA', env.TEXTSHIFT_DATA],
  ];
  for (const [source, value] of explicit) {
    if (value === undefined || value === '') continue;
    const dir = resolve(cwd, value);
    tried.push(`${dir} (${source})`);
    if (!isDirectory(dir)) throw new MissingDatasetError(`data folder ${dir} (from ${source})`, tried);
    return { dir, source, tried };
  }
  const defaults: [DataRoot['source'], string][] = [
    ['./data', resolve(cwd, 'data')],
    ['../shared/data', resolve(cwd, '..', 'shared', 'data')],
  ];
  for (const [source, dir] of defaults) {
    tried.push(`${dir} (${source})`);
    if (isDirectory(dir)) return { dir, source, tried };
  }
  throw new MissingDatasetError('a data folder (--data-root, TEXTSHIFT_DATA, ./data or ../shared/data)', tried);
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}
