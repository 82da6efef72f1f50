/**
 * Benchmark of the bag-of-words path on the real data: fit on SST-2 train (10,000 terms), transform SST-2 and all
 * 50,000 IMDB reviews, encode/decode the IMDB matrix as `.csr`. Times are wall and CPU milliseconds (CPU time is
 * the steadier number on a shared machine).
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { parse } from 'csv-parse/sync';
import { fitBow, transformBow } from '../src/features/bow.js';
import { decodeCsr, encodeCsr, nnz, type Csr } from '../src/matrix/csr.js';

/** Wall-clock and CPU time of one measured step. */
export interface Timing {
  wallMs: number;
  cpuMs: number;
}

/** What benchBow measured. */
export interface BowBenchResult {
  maxFeatures: number;
  sst2: { documents: number; fit: Timing; transform: Timing; nnzPerRow: number };
  imdb: { documents: number; megabytes: number; transform: Timing; nnzPerRow: number; megabytesPerSecond: number };
  csr: { bytes: number; encode: Timing; decode: Timing };
}

function timed<T>(run: () => T): [T, Timing] {
  const cpu = process.cpuUsage();
  const start = performance.now();
  const value = run();
  const wallMs = performance.now() - start;
  const used = process.cpuUsage(cpu);
  return [value, { wallMs: Math.round(wallMs), cpuMs: Math.round((used.user + used.system) / 1000) }];
}

const perRow = (x: Csr) => Math.round((100 * nnz(x)) / x.rows) / 100;

/** Runs the benchmark on `dataRoot` (holding sst2/train.tsv and imdb.csv.gz, see the data README). */
export async function benchBow(dataRoot: string, maxFeatures = 10000): Promise<BowBenchResult> {
  const sst2 = (parse(await readFile(join(dataRoot, 'sst2/train.tsv')), { delimiter: '\t', quote: false }) as string[][]).map(
    (row) => row[0]!,
  );
  const imdb = (parse(gunzipSync(await readFile(join(dataRoot, 'imdb.csv.gz'))), { from_line: 2 }) as string[][]).map(
    (row) => row[0]!,
  );
  const megabytes = imdb.reduce((sum, text) => sum + Buffer.byteLength(text), 0) / 1e6;

  const [vocab, fit] = timed(() => fitBow(sst2, maxFeatures));
  const [xSst2, sst2Transform] = timed(() => transformBow(vocab, sst2));
  const [xImdb, imdbTransform] = timed(() => transformBow(vocab, imdb));
  const [bytes, encode] = timed(() => encodeCsr(xImdb));
  const [, decode] = timed(() => decodeCsr(bytes));

  return {
    maxFeatures,
    sst2: { documents: sst2.length, fit, transform: sst2Transform, nnzPerRow: perRow(xSst2) },
    imdb: {
      documents: imdb.length,
      megabytes: Math.round(megabytes * 10) / 10,
      transform: imdbTransform,
      nnzPerRow: perRow(xImdb),
      megabytesPerSecond: Math.round((megabytes / imdbTransform.wallMs) * 1000 * 10) / 10,
    },
    csr: { bytes: bytes.byteLength, encode, decode },
  };
}
