/**
 * Benchmark of the Prepare stage at scale: the default experiment on a data root whose `imdb.csv.gz` holds the real
 * reviews repeated k times (200,000 rows at 4x; about 1 GB of CSV at 16x), run in a child process so its peak RSS
 * is Prepare's alone.
 */
import { createReadStream, createWriteStream, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createGunzip, createGzip } from 'node:zlib';
import { FsBlobStore } from '../src/store/fs-store.js';
import { silentReporter } from '../src/run/reporter.js';
import { readManifest } from '../src/run/manifest.js';
import { prepare } from '../src/workflow/stages/prepare.js';
import { planDeploymentOf } from '../src/config/deployment.js';
import { repositoryDeployment } from '../src/workflow/local-runner.js';

/** A generated data root and the experiment that reads it. */
export interface ScaledData {
  dir: string;
  experimentPath: string;
  /** Bytes of the IMDB CSV after decompression. */
  csvBytes: number;
}

/**
 * Writes into `dir` a data root holding SST-2 (links to `source`) and IMDB with its data rows repeated `times` times,
 * gzipped (`gzip`) or as a plain CSV, plus the default experiment (`experiment`) pointing at it.
 */
export async function scaledDataRoot(source: string, dir: string, experiment: string, times: number, gzip = true): Promise<ScaledData> {
  mkdirSync(join(dir, 'data'), { recursive: true });
  symlinkSync(join(source, 'sst2'), join(dir, 'data', 'sst2'));
  const chunks: Buffer[] = [];
  for await (const chunk of createReadStream(join(source, 'imdb.csv.gz')).pipe(createGunzip())) chunks.push(chunk as Buffer);
  const csv = Buffer.concat(chunks);
  const headerEnd = csv.indexOf('\n') + 1;
  const body = csv.subarray(headerEnd, csv.at(-1) === 0x0a ? csv.length : undefined);
  const ending = csv.at(-1) === 0x0a ? Buffer.alloc(0) : Buffer.from('\n');
  const name = gzip ? 'imdb.csv.gz' : 'imdb.csv';
  async function* repeated(): AsyncGenerator<Buffer> {
    yield csv.subarray(0, headerEnd);
    for (let i = 0; i < times; i++) yield Buffer.concat([body, ending]);
  }
  const out = createWriteStream(join(dir, 'data', name));
  await (gzip ? pipeline(repeated, createGzip(), out) : pipeline(repeated, out));
  const exp = JSON.parse(readFileSync(experiment, 'utf8')) as { datasets: { imdb: { files: { all: { path: string } } } } };
  exp.datasets.imdb.files.all.path = name;
  const experimentPath = join(dir, 'experiment.json');
  writeFileSync(experimentPath, JSON.stringify(exp));
  return { dir: join(dir, 'data'), experimentPath, csvBytes: headerEnd + times * (body.length + ending.length) };
}

/** What one Prepare run measured. */
export interface PrepareBench {
  wall: number;
  cpu: number;
  rssMb: number;
  note: string;
}

/** Runs Prepare alone on the experiment and data root, in this process, with a fresh run store under `out`. */
export async function benchPrepare(experimentPath: string, dataRoot: string, out: string): Promise<PrepareBench> {
  const store = new FsBlobStore(join(out, 'store'));
  await store.put('experiments/bench.json', readFileSync(experimentPath));
  const t0 = performance.now();
  const cpu = process.cpuUsage();
  // The default deployment at its cost ceiling, so the guard sizes the data (part of Prepare's time) but refuses nothing.
  const deployment = planDeploymentOf(await repositoryDeployment({ maxRunCostUsd: '250' }));
  const plan = await prepare({ store, data: new FsBlobStore(dataRoot), reporter: silentReporter }, { experimentKey: 'experiments/bench.json' }, { deployment });
  const used = process.cpuUsage(cpu);
  const rows = (await readManifest(store, plan.runId)).inputs.imdb?.[0]?.rows;
  return {
    wall: (performance.now() - t0) / 1000,
    cpu: (used.user + used.system) / 1e6,
    rssMb: process.resourceUsage().maxRSS / 1024,
    note: `${rows} IMDB rows, ${plan.shardPlan.count} shards`,
  };
}
