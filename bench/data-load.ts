import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseExperiment } from '../src/config/experiment.js';
import { FsBlobStore } from '../src/store/fs-store.js';
import { resolveDataRoot } from '../src/data/data-root.js';
import { planDataset } from '../src/data/load-dataset.js';

/** Result of one benchmark run. */
export interface LoadBench {
  name: string;
  /** Wall-clock seconds. */
  seconds: number;
  /** Process CPU seconds (user + system, zlib's worker threads included). */
  cpuSeconds: number;
  rows: number;
}

/**
 * Reads the default experiment's IMDB dataset once, as Prepare's first pass does (50,000 rows of `imdb.csv.gz`:
 * gunzip, sha256, CSV parse, UTF-8 and label checks, two splits of the row indices) from the resolved data root.
 * Target: under ~3 s.
 */
export async function benchLoadImdb(dataRoot?: string): Promise<LoadBench> {
  const root = resolveDataRoot({ flag: dataRoot, cwd: fileURLToPath(new URL('..', import.meta.url)) });
  const experimentPath = fileURLToPath(new URL('../experiments/sst2-imdb.json', import.meta.url));
  const experiment = parseExperiment(readFileSync(experimentPath, 'utf8'), experimentPath);
  const spec = experiment.datasets.imdb;
  if (spec === undefined) throw new Error(`${experimentPath}: no dataset "imdb"`);
  const start = performance.now();
  const cpu = process.cpuUsage();
  const loaded = await planDataset('imdb', spec, new FsBlobStore(root.dir), experiment.seed);
  const used = process.cpuUsage(cpu);
  return {
    name: 'data: load imdb.csv.gz',
    seconds: (performance.now() - start) / 1000,
    cpuSeconds: (used.user + used.system) / 1e6,
    rows: loaded.files.reduce((sum, f) => sum + f.rows, 0),
  };
}
